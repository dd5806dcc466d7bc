"""Failure test 4 of the high-availability plan (docs/ha.md): under a steady stream of record
events through the real RecordWriter, the PostgreSQL primary is killed (SIGKILL, keeper and
server); pg_auto_failover promotes the streaming standby, the writer carries on to it (the
journal holding the events meanwhile), and every event written is on the new primary exactly
once. The killed node, started again, rejoins as the standby by itself."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import structlog

from db.migrate import migrate
from db.writer import BatchPath, BatchReport, RecordWriter
from testbed.autofailover import AutoFailoverCluster, steady_events

pytestmark = pytest.mark.integration

log = structlog.get_logger(__name__)

EVENTS_PER_SECOND = 200
# The monitor's timings (testbed.autofailover.FAST_FAILOVER) promote in about 3 s; the slack is
# for a loaded 2-core machine.
PROMOTED_WITHIN = 15.0


@pytest.fixture
def cluster() -> Iterator[AutoFailoverCluster]:
    root = Path(tempfile.mkdtemp(prefix="siaga-pgaf-"))
    root.chmod(0o755)  # the servers run as `postgres` when we are root
    cluster = AutoFailoverCluster(root / "af", settings={"fsync": "off"})
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


async def event_ids(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT event_id::text FROM call_events")
    finally:
        await conn.close()
    return [row["event_id"] for row in rows]


async def test_primary_killed_standby_promoted_no_record_lost_or_doubled(
    cluster: AutoFailoverCluster, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(cluster.node_dsn("node_a"))
    try:
        # pg_auto_failover's default for a pair: the primary waits for its standby at commit,
        # which is what makes a committed record survive the primary's death.
        assert await conn.fetchval("SHOW synchronous_standby_names") != ""
    finally:
        await conn.close()
    await migrate(cluster.dsn)

    commits: list[float] = []

    def on_batch(report: BatchReport) -> None:
        if report.path is not BatchPath.JOURNAL:  # a commit, not a journal append
            commits.append(time.monotonic())

    writer = RecordWriter(
        cluster.dsn,
        tmp_path / "journal.jsonl",
        connect_timeout_s=1.0,
        retry_max_s=0.5,
        on_batch=on_batch,
    )
    await writer.start()
    written: list[str] = []
    stop = asyncio.Event()

    producer = asyncio.create_task(steady_events(writer, EVENTS_PER_SECOND, stop, written))
    try:
        await asyncio.sleep(2)
        assert writer.written > 0  # committed to node_a before the kill
        await asyncio.to_thread(cluster.kill, "node_a")
        killed = time.monotonic()
        while not await asyncio.to_thread(cluster.writable, "node_b"):
            assert time.monotonic() - killed < PROMOTED_WITHIN, cluster.states()
            await asyncio.sleep(0.1)
        seen = time.monotonic()
        promoted = seen - killed
        # Not before: a backend of the killed server may finish a commit in flight.
        while not [t for t in commits if t > seen]:
            assert time.monotonic() - killed < PROMOTED_WITHIN + 5, writer.stats()
            await asyncio.sleep(0.05)
        resumed = min(t for t in commits if t > seen) - killed
        log.info("records_failover", promoted_s=round(promoted, 2), writer_s=round(resumed, 2))
        await asyncio.sleep(2)  # events keep coming after the failover
    finally:
        stop.set()
        await producer
    await writer.flush(timeout=10)
    await writer.wait_replayed(timeout=30)
    stats = writer.stats()
    await writer.close()

    on_b = await event_ids(cluster.node_dsn("node_b"))
    assert len(on_b) == len(set(on_b))  # none twice (event_id is also the primary key)
    assert sorted(on_b) == sorted(written)  # none lost
    assert stats.rejected == 0
    assert len(written) > 4 * EVENTS_PER_SECOND * 0.8

    # The old primary, started again, is rewound and rejoins as the standby on its own.
    await asyncio.to_thread(cluster.run, cluster.nodes["node_a"])
    rejoined = await asyncio.to_thread(cluster.wait_state, "node_a", "secondary", 60)
    await asyncio.to_thread(cluster.wait_state, "node_b", "primary", 30)
    log.info("records_rejoin", rejoined_s=round(rejoined, 2))
    assert sorted(await event_ids(cluster.node_dsn("node_a"))) == sorted(written)
