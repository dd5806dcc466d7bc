"""The chaos test at full size: callers at a steady rate on the real stack while the app, PostgreSQL
and Asterisk are killed at random moments; then every call in Asterisk's own record compared
with Siaga's records. Prints JSON (and writes it to --out).

    .venv/bin/python -m bench.chaos                      # 10 calls/s for 2 min, one run
    .venv/bin/python -m bench.chaos --runs 3             # the acceptance: three clean runs
    .venv/bin/python -m bench.chaos --rate 3 --duration 40 --app-kills 2 --postgres-kills 1

Full size: 10 calls/s for 120 s, 10 app kills (SIGKILL of `siaga run`'s process group, back
after 0-10 s), 2 PostgreSQL kills and 1 Asterisk kill (kill -9, restarted). The harness is
testbed/chaos.py; `tests/integration/test_chaos.py` runs it scaled down in `make test`.
Each run's seed is printed (`--seed` repeats a run's fault moments; run N uses seed + N).

Per run: `calls_placed` (SIPp's), `asterisk_calls` (in Asterisk's record), `kills` by kind and
`faults` (when each happened and came back), `missing` (no `calls` row), `wrong` (times off
by more than 1 s, wrong outcome, not closed, fallback not flagged, another operator),
`duplicates` (a call_arrived, call_ended or call_abandoned written twice), `open` (rows not
closed), `extra` (rows of no call Asterisk saw), with the first few of each under `examples`.
`clean` is all of those zero. Exit status 0 only when every run is clean.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from siaga.logging import configure_logging
from testbed.chaos import ChaosPlan, run_chaos


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of arrivals")
    parser.add_argument("--app-kills", type=int, default=10)
    parser.add_argument("--postgres-kills", type=int, default=2)
    parser.add_argument("--asterisk-kills", type=int, default=1)
    parser.add_argument("--operators", type=int, default=0, help="0: enough for the rate")
    parser.add_argument("--seed", type=int, help="default: a random one (printed)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep each run's folder and logs")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(f"chaos: seed {seed}", file=sys.stderr, flush=True)
    runs = []
    for n in range(args.runs):
        plan = ChaosPlan(
            rate=args.rate,
            duration=args.duration,
            app_kills=args.app_kills,
            postgres_kills=args.postgres_kills,
            asterisk_kills=args.asterisk_kills,
            seed=seed + n,
            operators=args.operators,
        )
        try:
            runs.append(await run_chaos(plan, keep=args.keep))
        except Exception as exc:  # a broken run is reported, the next one runs
            runs.append({"seed": plan.seed, "error": repr(exc), "trace": traceback.format_exc()})
    return {
        "benchmark": "chaos",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "clean_runs": sum(1 for r in runs if r.get("clean")),
        "runs": runs,
    }


def cli() -> int:
    args = parse_args()
    # Logs to stderr: stdout carries only the JSON.
    configure_logging("console")
    result = asyncio.run(main(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if result["clean_runs"] == len(result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(cli())
