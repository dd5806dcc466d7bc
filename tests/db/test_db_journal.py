"""The write-ahead journal file: offsets that survive cuts, cutting what PostgreSQL has, and a
failed append (a full disk) that leaves nothing behind for the next one."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.journal import Journal


def lines(prefix: str, count: int) -> list[str]:
    return [f'{{"{prefix}":{n}}}' for n in range(count)]


def test_append_returns_the_offset_after_each_line_and_read_follows_them(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    assert journal.open() == 0
    ends = journal.append(["a", "bb", "ccc"])
    assert ends == [2, 5, 9] and journal.end == 9
    assert journal.read(0, 10) == (["a", "bb", "ccc"], 9)
    assert journal.read(2, 1) == (["bb"], 5)
    assert journal.read(2, 10, until=5) == (["bb"], 5)  # not past an append still unseen
    journal.close()


def test_cutting_everything_empties_the_file_and_offsets_go_on(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.open()
    end = journal.append(lines("x", 50))[-1]
    journal.cut(end)
    assert journal.size() == 0 and (journal.start, journal.end) == (end, end)
    assert journal.append(["next"]) == [end + 5]
    assert journal.read(end, 10) == (["next"], end + 5)
    assert (tmp_path / "j.jsonl").read_text() == "next\n"
    journal.close()


def test_cutting_a_committed_part_keeps_the_tail_at_its_offsets(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.open()
    ends = journal.append(lines("x", 100))
    inode = path.stat().st_ino
    journal.cut(ends[59])
    assert path.read_text().splitlines() == lines("x", 100)[60:]
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    assert journal.read(ends[59], 1000) == (lines("x", 100)[60:], ends[-1])
    more = journal.append(["after"])
    assert path.read_text().splitlines() == lines("x", 100)[60:] + ["after"]
    assert journal.read(ends[-1], 10) == (["after"], more[0])
    journal.close()
    # A restart sees the file as it is, offsets from its first byte.
    again = Journal(path)
    assert again.open() == path.stat().st_size
    assert again.read(0, 1000)[0] == lines("x", 100)[60:] + ["after"]
    again.close()


def test_a_failed_append_leaves_nothing_for_the_next_one(small_disk: Path) -> None:
    path = small_disk / "j.jsonl"
    journal = Journal(path)
    journal.open()
    kept = journal.append(lines("kept", 10))
    with pytest.raises(OSError, match="No space left"):
        journal.append(["y" * 100_000])  # partly written before the disk was full
    assert journal.end == kept[-1]
    # The torn bytes go first, which also gives their room back.
    after = journal.append(["after"])
    assert path.read_text().splitlines() == lines("kept", 10) + ["after"]
    assert after == [kept[-1] + 6]
    journal.close()
