"""Recording retention and legal holds (stack/retention.py): the pure rule, and the purge on a
real PostgreSQL with real files, every deletion and hold in the audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from db import events as ev
from db.command import CommandError
from db.events import HangupBy
from db.writer import RecordWriter
from siaga.config import RecordingsConfig
from stack.retention import CallEnd, Recording, due, purge, set_hold

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = RecordingsConfig(retention_days=730, by_category={"information": 180, "screened": 0})


def rec(call_id: str) -> Recording:
    return Recording(call_id, Path(f"/r/{call_id}.wav"), 100)


def test_a_recording_goes_once_older_than_its_category_keeps_it():
    calls = {
        "info-old": CallEnd("information", NOW - 181 * DAY),
        "info-new": CallEnd("information", NOW - 179 * DAY),
        "medical": CallEnd("medical", NOW - 400 * DAY),  # the default: 730 days
        "medical-old": CallEnd("medical", NOW - 731 * DAY),
        "screened": CallEnd("screened", NOW - 5000 * DAY),  # 0: for ever
        "unclassified": CallEnd(None, NOW - 731 * DAY),
    }
    gone = due([rec(c) for c in calls], calls, set(), POLICY, NOW)
    assert {d.recording.call_id for d in gone} == {"info-old", "medical-old", "unclassified"}
    (info,) = [d for d in gone if d.recording.call_id == "info-old"]
    assert info.kept_days == 180 and info.age_days == 181.0 and info.category == "information"


def test_held_open_and_unknown_calls_are_never_deleted():
    calls = {
        "held": CallEnd("information", NOW - 999 * DAY),
        "open": CallEnd("information", None),
    }
    recordings = [rec("held"), rec("open"), rec("not-in-records")]
    assert due(recordings, calls, {"held"}, POLICY, NOW) == []
    assert due(recordings, calls, set(), RecordingsConfig(), NOW) == []  # 0 days: keep all


async def write(dsn: str, events: list[ev.RecordEvent], spool: Path) -> None:
    writer = RecordWriter(dsn, spool)
    await writer.start()
    for event in events:
        writer.write(event)
    await writer.wait_replayed(timeout=30)
    await writer.close()


def ended_call(call_id: str, category: str, ended: datetime) -> list[ev.RecordEvent]:
    return [
        ev.call_arrived(call_id, "0811", at=ended - 60 * timedelta(seconds=1)),
        ev.call_classified(call_id, category, at=ended - 50 * timedelta(seconds=1)),
        ev.call_ended(call_id, HangupBy.CALLER, at=ended),
    ]


async def test_purge_deletes_what_is_due_keeps_what_is_held_and_audits_both(
    pg_dsn: str, tmp_path: Path
):
    now = datetime.now(UTC)
    await write(
        pg_dsn,
        ended_call("r-old", "information", now - 200 * DAY)
        + ended_call("r-held", "information", now - 200 * DAY)
        + ended_call("r-new", "information", now - 10 * DAY),
        tmp_path / "spool.jsonl",
    )
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name in ("r-old.wav", "r-held.wav", "r-new.wav", "r-unknown.wav", "notes.txt"):
        (folder / name).write_bytes(b"RIFF" + b"\0" * 96)

    await set_hold(pg_dsn, "r-held", held=True, by="inspector", reason="inquiry 12/2026")
    with pytest.raises(CommandError, match="already held"):
        await set_hold(pg_dsn, "r-held", held=True, by="inspector", reason="again")
    with pytest.raises(CommandError, match="reason is required"):
        await set_hold(pg_dsn, "r-new", held=True, by="inspector", reason=" ")
    with pytest.raises(CommandError, match="no call"):
        await set_hold(pg_dsn, "nobody", held=True, by="inspector", reason="x")

    report = await purge(pg_dsn, folder, POLICY)
    assert report.deleted == 1 and report.bytes_freed == 100 and report.held == 1
    assert sorted(p.name for p in folder.iterdir()) == [
        "notes.txt",
        "r-held.wav",
        "r-new.wav",
        "r-unknown.wav",
    ]
    await set_hold(pg_dsn, "r-held", held=False, by="inspector", reason="inquiry closed")
    assert (await purge(pg_dsn, folder, POLICY)).deleted == 1
    assert not (folder / "r-held.wav").exists()

    conn = await asyncpg.connect(pg_dsn)
    try:
        audit = await conn.fetch(
            "SELECT action, target, username, detail::text FROM console_audit"
            " WHERE role = 'retention' ORDER BY audit_id"
        )
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute("DELETE FROM recording_holds")
    finally:
        await conn.close()
    assert [(a["action"], a["target"]) for a in audit] == [
        ("recording_held", "r-held"),
        ("recording_deleted", "r-old"),
        ("recording_released", "r-held"),
        ("recording_deleted", "r-held"),
    ]
    assert '"kept_days": 180' in audit[1]["detail"]
