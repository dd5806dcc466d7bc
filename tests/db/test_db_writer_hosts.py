"""The writer given several hosts (a primary and its standby, docs/ha.md) connects to one that
takes writes, giving each host its own connect timeout."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from db_support import fetchval

from db import events as ev
from db.writer import RecordWriter

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose kernel completes the TCP handshake while nobody ever answers: a host that
    swallows packets, as a dead machine behind a live switch does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


async def test_a_silent_first_host_costs_one_timeout_not_the_records(
    pg_dsn: str, silent_port: int, tmp_path: Path
) -> None:
    parts = urlsplit(pg_dsn)
    userinfo, _, real = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@127.0.0.1:{silent_port},{real}"
    dsn = parts._replace(netloc=netloc, query="target_session_attrs=read-write").geturl()
    writer = RecordWriter(dsn, tmp_path / "journal.jsonl", connect_timeout_s=1.0)
    await writer.start()
    try:
        writer.write(ev.call_arrived("c1", "112", at=T0))
        await writer.wait_replayed(timeout=8)
        assert writer.db_reachable
    finally:
        await writer.close()
    assert await fetchval(pg_dsn, "SELECT count(*) FROM call_events WHERE call_id = 'c1'") == 1
