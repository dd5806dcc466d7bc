"""What synchronous replication costs the record writer: bench_db.py's sustained stream and
peak, into a PostgreSQL primary with a streaming standby (pg_auto_failover, testbed/
autofailover.py), once with the primary waiting for the standby at each commit (synchronous,
pg_auto_failover's default for a pair) and once without (asynchronous). Prints JSON with the
medians of --runs runs (and writes it to --out).

    .venv/bin/python bench/bench_db_replicated.py                # 3 runs, 2,000 events/s, 10 s
    .venv/bin/python bench/bench_db_replicated.py --runs 1 --seconds 5

Durable settings (fsync on) on both nodes, all on this machine (the standby's round trip is a
loopback one: on two servers add the network's round trip, well under a millisecond on a LAN,
to each commit). Each run starts a fresh monitor and pair and measures both modes, in turns,
each into a database of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import structlog

from bench.bench_db import median_of, peak, sustained
from db.migrate import migrate
from testbed.autofailover import AutoFailoverCluster

MODES = ("synchronous", "asynchronous")


async def one_run(args: argparse.Namespace, root: Path, first: str) -> dict[str, Any]:
    cluster = AutoFailoverCluster(root / "af", settings={"shared_buffers": "128MB"})
    await asyncio.to_thread(cluster.start)
    result: dict[str, Any] = {}
    try:
        order = MODES if first == MODES[0] else tuple(reversed(MODES))
        for mode in order:
            await asyncio.to_thread(cluster.set_synchronous, mode == "synchronous")
            dsn = await asyncio.to_thread(cluster.create_database, f"bench_{mode}")
            await migrate(dsn)
            folder = root / mode
            folder.mkdir()
            result[mode] = {
                "sustained": await sustained(dsn, folder, args.rate, args.seconds, True),
                "peak": await peak(dsn, folder, args.peak_events, True),
            }
    finally:
        await asyncio.to_thread(cluster.stop)
    return result


async def main() -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=2000, help="events/s to sustain")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--peak-events", type=int, default=20_000)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    runs = []
    for index in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="siaga-bench-repl-"))
        os.chmod(root, 0o755)  # the servers run as `postgres` when we are root
        try:
            runs.append(await one_run(args, root, MODES[index % 2]))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    medians = {
        mode: {
            "committed_events_per_s": median_of(runs, mode, "sustained", "committed_events_per_s"),
            "commit_ms_p50": median_of(runs, mode, "sustained", "commit_ms", "p50"),
            "commit_ms_p99": median_of(runs, mode, "sustained", "commit_ms", "p99"),
            "commit_latency_ms_p50": median_of(runs, mode, "sustained", "commit_latency_ms", "p50"),
            "commit_latency_ms_p99": median_of(runs, mode, "sustained", "commit_latency_ms", "p99"),
            "all_stored": all(run[mode]["sustained"]["all_stored"] for run in runs),
            "peak_events_per_s": median_of(runs, mode, "peak", "events_per_s"),
        }
        for mode in MODES
    }
    result = {
        "benchmark": "db_replicated",
        "rate": args.rate,
        "seconds": args.seconds,
        "runs": runs,
        "medians": medians,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
