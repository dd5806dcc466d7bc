"""`siaga backup` and `siaga restore` (stack/backup.py) round trip on a real PostgreSQL: the
records and the recordings come back whole; a second backup costs only what changed; a damaged
backup, an unfinished one, or a database that already holds records is refused."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from db import events as ev
from db.command import CommandError
from db.events import HangupBy
from db.writer import RecordWriter
from stack.backup import MANIFEST, RECORDINGS, backup, restore, verify

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
S = timedelta(seconds=1)


async def write_all(dsn: str, events: list[ev.RecordEvent], spool: Path) -> None:
    writer = RecordWriter(dsn, spool)
    await writer.start()
    for event in events:
        writer.write(event)
    await writer.wait_replayed(timeout=30)
    await writer.close()


async def fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


def day_of_calls(count: int) -> list[ev.RecordEvent]:
    out = []
    for i in range(count):
        cid = f"b{i}"
        at = T0 + i * 60 * S
        out += [
            ev.call_arrived(cid, f"08110000{i:04d}", at=at),
            ev.call_connected(cid, "1001", at=at + 5 * S),
            ev.call_ended(cid, HangupBy.CALLER, at=at + 50 * S),
        ]
    return out


def recordings(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(os.urandom(4096) + name.encode())


async def snapshot(dsn: str) -> list[tuple]:
    rows = await fetch(
        dsn, "SELECT call_id, outcome, operator_id, ended_at FROM calls ORDER BY call_id"
    )
    return [tuple(r) for r in rows]


async def test_a_backup_restores_records_and_recordings_into_a_new_database(
    pg_dsn: str, pg_empty_dsn: str, tmp_path: Path
):
    await write_all(pg_dsn, day_of_calls(20), tmp_path / "spool.jsonl")
    before = await snapshot(pg_dsn)
    rec = tmp_path / "recordings"
    recordings(rec, [f"b{i}.wav" for i in range(5)])
    report = backup(pg_dsn, rec, tmp_path / "backups")
    assert report.recordings == 5 and report.linked == 0
    assert (report.folder / MANIFEST).exists()
    assert oct(report.folder.stat().st_mode)[-3:] == "700"

    lost = tmp_path / "new-machine-recordings"  # the machine is gone: a new one, empty
    result = await restore(pg_empty_dsn, lost, report.folder)
    assert await snapshot(pg_empty_dsn) == before
    assert result.recordings_restored == 5
    assert sorted(p.name for p in lost.iterdir()) == sorted(p.name for p in rec.iterdir())
    for name in rec.iterdir():
        assert (lost / name.name).read_bytes() == name.read_bytes()


async def test_a_second_backup_links_what_did_not_change(pg_dsn: str, tmp_path: Path):
    rec = tmp_path / "recordings"
    recordings(rec, ["a.wav", "b.wav"])
    first = backup(pg_dsn, rec, tmp_path / "backups")
    recordings(rec, ["c.wav"])
    (rec / "b.wav").write_bytes(b"changed")
    second = backup(pg_dsn, rec, tmp_path / "backups")
    assert second.recordings == 3 and second.linked == 1
    a1, a2 = first.folder / RECORDINGS / "a.wav", second.folder / RECORDINGS / "a.wav"
    assert a1.stat().st_ino == a2.stat().st_ino
    assert (second.folder / RECORDINGS / "b.wav").read_bytes() == b"changed"
    assert (first.folder / RECORDINGS / "b.wav").read_bytes() != b"changed"
    verify(first.folder)
    verify(second.folder)


async def test_restore_refuses_damage_an_unfinished_backup_and_a_database_with_records(
    pg_dsn: str, pg_empty_dsn: str, tmp_path: Path
):
    await write_all(pg_dsn, day_of_calls(2), tmp_path / "spool.jsonl")
    rec = tmp_path / "recordings"
    recordings(rec, ["a.wav"])
    report = backup(pg_dsn, rec, tmp_path / "backups")
    with pytest.raises(CommandError, match="already holds records"):
        await restore(pg_dsn, rec, report.folder)
    await restore(pg_dsn, rec, report.folder, replace=True)  # told to: it may

    damaged = report.folder / RECORDINGS / "a.wav"
    damaged.write_bytes(b"bit rot")
    with pytest.raises(CommandError, match=r"a\.wav is damaged"):
        await restore(pg_empty_dsn, tmp_path / "elsewhere", report.folder)
    assert await fetch(pg_empty_dsn, "SELECT 1 FROM pg_tables WHERE tablename = 'calls'") == []
    (report.folder / MANIFEST).unlink()
    with pytest.raises(CommandError, match="not a finished backup"):
        await restore(pg_empty_dsn, tmp_path / "elsewhere", report.folder)


async def test_a_recording_that_differs_is_kept_not_overwritten(
    pg_dsn: str, pg_empty_dsn: str, tmp_path: Path
):
    rec = tmp_path / "recordings"
    recordings(rec, ["a.wav", "b.wav"])
    report = backup(pg_dsn, rec, tmp_path / "backups")
    (rec / "a.wav").write_bytes(b"newer take")
    (rec / "b.wav").unlink()
    result = await restore(pg_empty_dsn, rec, report.folder)
    assert result.recordings_differing == ("a.wav",)
    assert result.recordings_restored == 1
    assert (rec / "a.wav").read_bytes() == b"newer take"
