"""Failover of the records, timed: a PostgreSQL primary with its streaming standby
(pg_auto_failover, testbed/autofailover.py with its short test timings), the record writer
streaming events into it, and the primary killed (SIGKILL) --kills times, the killed node
started again each time to rejoin as the standby. Prints JSON (and writes it to --out), per
kill, the seconds from the kill:
- until the standby takes writes (`promoted_s`);
- until the writer's first commit there (`writer_s`: the first after the promotion was seen,
  as a backend of the killed server may still finish a commit in flight);
- until the killed node, started again, is the standby (`rejoin_s`, from its start);
their p50 and max, and whether every event written is on the last primary exactly once. With
--runs, the medians of those over the runs.

    .venv/bin/python -m bench.bench_pg_failover                 # 3 runs of 10 kills
    .venv/bin/python -m bench.bench_pg_failover --runs 1 --kills 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from bench.stats import pct, until
from db.migrate import migrate
from db.writer import BatchPath, BatchReport, RecordWriter
from testbed.autofailover import AutoFailoverCluster, steady_events

EVENTS_PER_SECOND = 200
GIVE_UP_S = 60.0


async def one_run(root: Path, kills: int) -> dict[str, Any]:
    cluster = AutoFailoverCluster(root / "af", settings={"fsync": "off"})
    await asyncio.to_thread(cluster.start)
    commits: list[float] = []

    def on_batch(report: BatchReport) -> None:
        if report.path is not BatchPath.JOURNAL:
            commits.append(time.monotonic())

    try:
        await migrate(cluster.dsn)
        writer = RecordWriter(
            cluster.dsn, root / "journal.jsonl", retry_max_s=0.5, on_batch=on_batch
        )
        await writer.start()
        written: list[str] = []
        stop = asyncio.Event()

        producer = asyncio.create_task(steady_events(writer, EVENTS_PER_SECOND, stop, written))
        rows: list[dict[str, float]] = []
        primary, standby = "node_a", "node_b"
        try:
            await asyncio.sleep(1)
            for _ in range(kills):
                await asyncio.to_thread(cluster.kill, primary)
                killed = time.monotonic()

                async def promoted(node: str = standby) -> bool:
                    return await asyncio.to_thread(cluster.writable, node)

                promoted_s = await until(promoted, "promotion")
                # A backend of the killed server may still finish a commit in flight just
                # after the kill: the first commit on the new primary follows its promotion.
                seen = time.monotonic()

                async def resumed(since: float = seen) -> bool:
                    return any(t > since for t in commits)

                await until(resumed, "the writer's first commit")
                writer_s = min(t for t in commits if t > seen) - killed
                await asyncio.to_thread(cluster.run, cluster.nodes[primary])
                started = time.monotonic()
                await asyncio.to_thread(cluster.wait_state, primary, "secondary", GIVE_UP_S)
                await asyncio.to_thread(cluster.wait_state, standby, "primary", GIVE_UP_S)
                rows.append(
                    {
                        "promoted_s": round(promoted_s, 2),
                        "writer_s": round(writer_s, 2),
                        "rejoin_s": round(time.monotonic() - started, 2),
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
                primary, standby = standby, primary
                await asyncio.sleep(1)
        finally:
            stop.set()
            await producer
        await writer.flush(timeout=30)
        await writer.wait_replayed(timeout=60)
        await writer.close()
        conn = await asyncpg.connect(cluster.node_dsn(primary))
        try:
            stored = [
                r["event_id"] for r in await conn.fetch("SELECT event_id::text FROM call_events")
            ]
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(cluster.stop)
    result: dict[str, Any] = {"kills": rows, "events": len(written)}
    result["exactly_once"] = len(stored) == len(set(stored)) and sorted(stored) == sorted(written)
    for key in ("promoted_s", "writer_s", "rejoin_s"):
        values = [row[key] for row in rows]
        result[key] = {"p50": pct(values, 50), "max": max(values)}
    return result


async def main() -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="siaga-bench-failover-"))
        os.chmod(root, 0o755)  # the servers run as `postgres` when we are root
        try:
            runs.append(await one_run(root, args.kills))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    medians = {
        f"{key}_{stat}": statistics.median(run[key][stat] for run in runs)
        for key in ("promoted_s", "writer_s", "rejoin_s")
        for stat in ("p50", "max")
    }
    medians["exactly_once_every_run"] = all(run["exactly_once"] for run in runs)
    text = json.dumps({"benchmark": "pg_failover", "runs": runs, "medians": medians}, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
