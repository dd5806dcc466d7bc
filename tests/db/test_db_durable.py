"""The write-ahead journal in the writer: an event is durable within the group window whatever
PostgreSQL does; the journal is cut once PostgreSQL has it and stays small under load; a full
disk sends events straight to PostgreSQL; with both gone they wait in memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from db_support import fetch, fetchval, fill

from db import events as ev
from db.events import RecordEvent
from db.journal import Journal
from db.writer import BatchPath, BatchReport, RecordWriter

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def events_of(count: int, prefix: str = "c") -> list[RecordEvent]:
    """Calls of five events: arrival then four IVR steps."""
    out: list[RecordEvent] = []
    for n in range(count):
        call_id, at = f"{prefix}{n // 5}", T0 + timedelta(seconds=n)
        if n % 5:
            out.append(ev.ivr_step(call_id, "m", at=at))
        else:
            out.append(ev.call_arrived(call_id, "112", at=at))
    return out


@asynccontextmanager
async def table_locked(dsn: str) -> AsyncIterator[None]:
    """PostgreSQL up but blocked: every commit of events waits for this lock."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE call_events IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def eventually(condition: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.005)
    return True


async def stored_ids(dsn: str) -> list[object]:
    rows = await fetch(dsn, "SELECT event_id FROM call_events ORDER BY seq")
    return [r["event_id"] for r in rows]


async def test_an_event_is_in_the_journal_within_the_group_window_while_postgres_is_blocked(
    pg_dsn: str, tmp_path: Path
) -> None:
    path = tmp_path / "j.jsonl"
    reports: list[BatchReport] = []
    # The commit starts at once and waits on the lock for up to 5 s.
    writer = RecordWriter(
        pg_dsn, path, group_ms=10, gather_ms=0, batch_ms=5000, on_batch=reports.append
    )
    await writer.start()
    event = ev.call_arrived("blocked-1", "112", at=T0)
    try:
        async with table_locked(pg_dsn):
            writer.write(event)

            def in_file() -> bool:
                return str(event.event_id) in path.read_text(encoding="utf-8")

            assert await eventually(in_file, 2.0)  # about 10 ms; the commit takes 5 s
            await writer.flush(timeout=1)  # fsync'd, the commit still waiting
            assert [r.path for r in reports] == [BatchPath.JOURNAL]
            assert reports[0].oldest_wait_seconds < 1.0
            assert await fetchval(pg_dsn, "SELECT 1") == 1  # PostgreSQL up all along
        await writer.wait_replayed(timeout=10)
    finally:
        await writer.close()
    assert await stored_ids(pg_dsn) == [event.event_id]
    assert path.stat().st_size == 0  # cut: PostgreSQL has it all


async def test_the_journal_is_cut_once_committed_and_stays_small_under_load(
    pg_dsn: str, tmp_path: Path
) -> None:
    # Slow commits: new groups are always appended while one commits, so the journal is never
    # all committed and only cutting its committed part keeps it small.
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_sleep(0.03); RETURN NULL; END $$;"
            " CREATE TRIGGER slow_commit AFTER INSERT ON call_events"
            " FOR EACH STATEMENT EXECUTE FUNCTION slow_commit()"
        )
    finally:
        await conn.close()
    path = tmp_path / "j.jsonl"
    writer = RecordWriter(pg_dsn, path, cut_bytes=32 * 1024)
    await writer.start()
    events = events_of(3000)
    sizes: list[int] = []
    files: set[int] = set()
    try:
        for start in range(0, len(events), 15):  # ~1,500 events/s for 2 s
            for event in events[start : start + 15]:
                writer.write(event)
            await asyncio.sleep(0.01)
            stat = path.stat()
            sizes.append(stat.st_size)
            files.add(stat.st_ino)
        await writer.wait_replayed(timeout=30)
        stats = writer.stats()
        assert await eventually(lambda: path.stat().st_size == 0, 2.0)
    finally:
        await writer.close()
    total = sum(len(event.to_line()) + 1 for event in events)
    assert stats.spooled == len(events)  # every event went through the journal
    assert len(files) > 1  # the committed part was cut off while the tail went on
    assert max(sizes) < total / 3, (max(sizes), total)
    assert await stored_ids(pg_dsn) == [event.event_id for event in events]


async def test_a_full_disk_sends_events_straight_to_postgres(pg_dsn: str, small_disk: Path) -> None:
    filler = fill(small_disk)
    paths: list[BatchPath] = []
    writer = RecordWriter(
        pg_dsn,
        small_disk / "j.jsonl",
        retry_min_s=0.05,
        retry_max_s=0.1,
        on_batch=lambda report: paths.append(report.path),
    )
    await writer.start()
    first = events_of(200, "full")
    try:
        for event in first:
            writer.write(event)  # raises nothing
        await writer.flush(timeout=10)  # durable: in PostgreSQL, the journal failing
        stats = writer.stats()
        assert await stored_ids(pg_dsn) == [event.event_id for event in first]
        assert not stats.journal_ok and "No space left" in (stats.journal_error or "")
        assert stats.written == len(first) and stats.spooled == 0
        assert set(paths) == {BatchPath.DIRECT}

        # Room again: the journal is tried again (within retry_max_s) and takes new events.
        filler.unlink()
        later: list[RecordEvent] = []
        end = time.monotonic() + 5
        while BatchPath.JOURNAL not in paths and time.monotonic() < end:
            later += events_of(1, f"later{len(later)}-")
            writer.write(later[-1])
            await asyncio.sleep(0.02)
        await writer.wait_replayed(timeout=10)
        assert writer.stats().journal_ok and BatchPath.JOURNAL in paths
    finally:
        await writer.close()
    assert await stored_ids(pg_dsn) == [event.event_id for event in first + later]


async def test_a_disk_filling_up_mid_stream_loses_nothing_and_keeps_the_order(
    pg_dsn: str, small_disk: Path
) -> None:
    paths: list[BatchPath] = []
    writer = RecordWriter(
        pg_dsn,
        small_disk / "j.jsonl",
        gather_ms=300,  # ~600 events in the journal at once: more than the disk holds
        retry_min_s=0.05,
        retry_max_s=0.1,
        on_batch=lambda report: paths.append(report.path),
    )
    await writer.start()
    events = events_of(2000)
    try:
        for start in range(0, len(events), 20):  # ~2,000 events/s
            for event in events[start : start + 20]:
                writer.write(event)
            await asyncio.sleep(0.01)
        await writer.wait_replayed(timeout=30)
        stats = writer.stats()
    finally:
        await writer.close()
    assert {BatchPath.JOURNAL, BatchPath.DIRECT} <= set(paths)
    assert "No space left" in (stats.journal_error or "")
    assert await stored_ids(pg_dsn) == [event.event_id for event in events]


async def test_with_journal_and_postgres_both_gone_events_wait_in_memory(
    pg_dsn: str, small_disk: Path
) -> None:
    fill(small_disk)
    writer = RecordWriter(
        pg_dsn, small_disk / "j.jsonl", replay_timeout_s=0.2, retry_min_s=0.05, retry_max_s=0.1
    )
    await writer.start()
    events = events_of(20, "both")
    try:
        async with table_locked(pg_dsn):
            for event in events:
                writer.write(event)
            with pytest.raises(TimeoutError):
                await writer.flush(timeout=1)  # nowhere durable to put them
            stats = writer.stats()
            assert stats.in_memory == len(events)
            assert not stats.journal_ok and not stats.db_reachable
        await writer.wait_replayed(timeout=10)  # PostgreSQL back: they all go in
    finally:
        await writer.close()
    assert await stored_ids(pg_dsn) == [event.event_id for event in events]


async def test_groups_appended_while_the_replay_reads_are_replayed_too(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.jsonl"
    old = events_of(500, "old")
    Journal(path).append([event.to_line() for event in old])  # left by a crash
    writer = RecordWriter(pg_dsn, path, max_batch=100)
    read = writer._journal.read

    def slow_read(offset: int, max_lines: int, until: int | None = None) -> tuple[list[str], int]:
        if offset == until:  # the replay has caught up: groups land while it looks
            time.sleep(0.1)
        return read(offset, max_lines, until)

    monkeypatch.setattr(writer._journal, "read", slow_read)
    await writer.start()
    new = events_of(60, "new")
    try:
        for event in new:  # a group every 20 ms, while the replay goes on and as it ends
            writer.write(event)
            await asyncio.sleep(0.02)
        await writer.wait_replayed(timeout=30)
    finally:
        await writer.close()
    assert await stored_ids(pg_dsn) == [event.event_id for event in old + new]
