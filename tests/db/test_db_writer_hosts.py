"""The writer given several hosts (a primary and its standby, docs/ha.md) connects to one that
takes writes, giving each host its own connect timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from db_support import fetchval

from db import events as ev
from db import hosts
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


async def test_a_pool_behind_a_silent_first_host_connects_to_the_next(
    pg_dsn: str, behind_a_silent_host: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The console's and the AGI server's pools: asyncpg's own multi-host connect would spend
    # its whole timeout (60 s) on the silent host.
    monkeypatch.setattr(hosts, "POOL_CONNECT_TIMEOUT", 1.0)
    pool = await hosts.create_pool(behind_a_silent_host(pg_dsn), min_size=1, max_size=2)
    try:
        async with asyncio.timeout(3):
            assert await pool.fetchval("SELECT count(*) FROM call_events") == 0
    finally:
        await pool.close()


async def test_the_host_found_once_is_asked_first_by_every_later_connection(
    pg_dsn: str, behind_a_silent_host: Callable[[str], str]
) -> None:
    dsn = behind_a_silent_host(pg_dsn)
    first = await hosts.HostRotation(dsn, timeout=1.0).connect()  # the silent host: 1 s
    await first.close()
    async with asyncio.timeout(0.9):  # straight to the host that answered
        later = await hosts.HostRotation(dsn, timeout=1.0).connect()
    await later.close()
