"""PostgreSQL stopped mid-stream (`pg_ctl stop -m immediate`) while the app keeps writing:
after it is back, every event is present exactly once, in the order written."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from db_support import fetch

from db import events as ev
from db.migrate import migrate
from db.writer import BatchPath, BatchReport, RecordWriter
from testbed.cluster import PgCluster

T0 = datetime(2024, 5, 1, tzinfo=UTC)


async def test_outage_mid_stream_loses_nothing(own_pg_cluster: PgCluster, tmp_path: Path) -> None:
    cluster = own_pg_cluster
    await migrate(cluster.dsn)
    journal = tmp_path / "journal.jsonl"
    paths: list[BatchPath] = []

    def seen(report: BatchReport) -> None:
        paths.append(report.path)

    writer = RecordWriter(cluster.dsn, journal, retry_min_s=0.05, retry_max_s=0.2, on_batch=seen)
    await writer.start()
    written: list[ev.RecordEvent] = []
    reachable_during_outage: list[bool] = []

    async def produce(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(20):
                n = len(written)
                event = ev.call_arrived(f"c{n // 5}", "112", at=T0 + timedelta(seconds=n))
                if n % 5:
                    event = ev.ivr_step(f"c{n // 5}", f"step{n % 5}", at=T0 + timedelta(seconds=n))
                writer.write(event)
                written.append(event)
            await asyncio.sleep(0.01)  # ~2,000 events/s

    await produce(0.6)
    # The server stops and comes back while the producer keeps going; the cluster commands
    # run in a thread so that the event loop (the "calls") never waits for them.
    stop = asyncio.create_task(asyncio.to_thread(cluster.stop, "immediate"))
    await produce(0.3)
    await stop
    await produce(0.8)
    reachable_during_outage.append(writer.db_reachable)
    during = len(written)
    start = asyncio.create_task(asyncio.to_thread(cluster.start))
    await produce(0.3)
    await start
    await produce(0.6)

    await writer.wait_replayed(timeout=60)
    stats = writer.stats()
    await writer.close()

    rows = await fetch(cluster.dsn, "SELECT event_id FROM call_events ORDER BY seq")
    assert len(rows) == len(written) > during
    assert [r["event_id"] for r in rows] == [e.event_id for e in written]
    assert reachable_during_outage == [False]
    # Every event went into the journal first; those PostgreSQL missed came back from it.
    assert stats.spooled == len(written) and stats.replayed > 0
    # A commit that timed out on our side may still have landed: its events are journaled
    # too and come back as duplicates on replay. The rows above are the real proof.
    assert stats.written + stats.replayed >= len(written)
    assert stats.written + stats.replayed - stats.duplicates <= len(written)
    assert stats.db_reachable and not stats.journal_backlog and stats.in_memory == 0
    assert BatchPath.REPLAY in paths and paths[-1] is not BatchPath.JOURNAL
    assert journal.stat().st_size == 0

    calls = await fetch(cluster.dsn, "SELECT count(*) AS n, sum(events) AS e FROM calls")
    assert (calls[0]["n"], calls[0]["e"]) == ((len(written) + 4) // 5, len(written))
