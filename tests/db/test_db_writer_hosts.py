"""The writer given several hosts (a primary and its standby, docs/ha.md) connects to one that
takes writes, giving each host its own connect timeout."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from db_support import fetchval

from db import events as ev
from db.writer import RecordWriter

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


async def test_a_silent_first_host_costs_one_timeout_not_the_records(
    pg_dsn: str, behind_a_silent_host: Callable[[str], str], tmp_path: Path
) -> None:
    dsn = behind_a_silent_host(pg_dsn)
    writer = RecordWriter(dsn, tmp_path / "journal.jsonl", connect_timeout_s=1.0)
    await writer.start()
    try:
        writer.write(ev.call_arrived("c1", "112", at=T0))
        await writer.wait_replayed(timeout=8)
        assert writer.db_reachable
    finally:
        await writer.close()
    assert await fetchval(pg_dsn, "SELECT count(*) FROM call_events WHERE call_id = 'c1'") == 1
