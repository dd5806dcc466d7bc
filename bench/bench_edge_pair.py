"""The pair of Kamailio edges (docs/ha.md "A pair of edges"), timed on hosts made of network
namespaces (testbed/ha.py with `edge_pair`: two edges sharing the edge's address by
keepalived, two Asterisk nodes without an app, an operator's phone registered at the shared
address, SIPp callers). Prints JSON (and writes it to --out):

- for each kind of failure (`edge`: the machine holding the shared address is lost, its
  processes killed and its link down; `kamailio`: the holder's Kamailio alone is killed, its
  keepalived lives on), --kills times under a steady 2 calls/s, each followed by bringing the
  part back (it rejoins as the backup):
  - `takeover_s`: seconds from the kill until the other edge holds the shared address;
  - `answer_max_s`: the longest a call sent in the 10 s after the kill rang before it was
    answered (SIPp's own times; a call sent while nobody held the address is answered on a
    retransmission of its INVITE);
  - `unanswered`: calls sent from the kill on and never answered;
  - `failed_calls`: kills after which SIPp counted a failed call (any: one cut while up, a
    BYE lost);
  with the p50 and max of each over the kills;
- `ring_before_s`: p50 of the same ring time for calls sent before the kills (the baseline).

With --runs, the medians of the p50s and maxima over the runs.

    .venv/bin/python -m bench.bench_edge_pair                        # 3 runs of 10 kills each
    .venv/bin/python -m bench.bench_edge_pair --runs 1 --kills 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from bench.stats import pct
from pbx.provision import ensure_asterisk_root, render_prompts
from siaga.config import load_config
from testbed.ha import HaTopology, ha_topology
from testbed.sipp import read_call_times

EXAMPLE = Path(__file__).resolve().parents[1] / "siaga.toml"
KINDS = ("edge", "kamailio")
RATE = 2.0  # calls a second
AFTER_S = 10.0  # calls sent this long after the kill are the failover's


async def holder(ha: HaTopology, not_: str | None = None) -> str:
    return await asyncio.to_thread(ha.wait_edge_holder, 30.0, not_=not_)


async def one_kill(ha: HaTopology, kind: str) -> dict[str, Any]:
    first = await holder(ha)
    sipp = ha.callers(calls=int(RATE * 16), rate=RATE, hold_ms=2000, timeline=True)
    await sipp.start()
    await asyncio.sleep(4)
    killed_at = time.time()
    if kind == "edge":
        await asyncio.to_thread(ha.kill_edge, first)
    else:
        await asyncio.to_thread(ha.edges[first].kill)
    await holder(ha, not_=first)
    takeover = time.time() - killed_at
    assert sipp.process is not None
    await asyncio.wait_for(sipp.process.wait(), 120)
    times = read_call_times(sipp.workdir / "calls.log")
    if sipp.process.returncode == 0 and all("answered" in t for t in times.values()):
        shutil.rmtree(sipp.workdir, ignore_errors=True)
    else:  # kept for a look at what failed
        for name, kamailio in ha.edges.items():
            shutil.copy(kamailio.layout.log_file, sipp.workdir / f"{name}.log")
        print(f"failed calls: {sipp.workdir}, killed at {killed_at}", file=sys.stderr)
    after = [t for t in times.values() if killed_at <= t["invite"] < killed_at + AFTER_S]
    rings = [t["answered"] - t["invite"] for t in after if "answered" in t]
    before = [
        t["answered"] - t["invite"]
        for t in times.values()
        if t["invite"] < killed_at and "answered" in t
    ]
    # Back as the backup, with the registrations, before the next kill.
    if kind == "edge":
        await asyncio.to_thread(ha.start_edge, first)
    else:
        await asyncio.to_thread(ha.edges[first].start)
    await asyncio.sleep(3)
    return {
        "takeover_s": round(takeover, 3),
        "answer_max_s": round(max(rings), 3) if rings else -1.0,
        "unanswered": len(after)
        - len(rings)
        + sum(
            1 for t in times.values() if t["invite"] >= killed_at + AFTER_S and "answered" not in t
        ),
        "failed_calls": int((sipp.process.returncode or 0) != 0),
        "ring_before": before,
    }


def summary(kills: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"kills": len(kills)}
    for key in ("takeover_s", "answer_max_s"):
        values = [k[key] for k in kills]
        out[key] = {"p50": pct(values, 50), "max": max(values)}
    out["unanswered"] = sum(k["unanswered"] for k in kills)
    out["failed_calls"] = sum(k["failed_calls"] for k in kills)
    return out


async def one_run(kills: int, kinds: list[str]) -> dict[str, Any]:
    base = load_config(EXAMPLE)
    base = dataclasses.replace(base, operators=base.operators[:1])
    root, prompts = ensure_asterisk_root(), render_prompts()
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    with ha_topology(root, prompts, base, edge_pair=True) as ha:
        phone = ha.operator_phone()
        await phone.start()
        try:
            for _ in range(kills):
                for kind in kinds:
                    results[kind].append(await one_kill(ha, kind))
        finally:
            with contextlib.suppress(Exception):
                await phone.unregister()
            await phone.stop()
    rings = [r for kills_ in results.values() for k in kills_ for r in k["ring_before"]]
    return {"ring_before_s": pct(rings, 50), **{k: summary(v) for k, v in results.items()}}


def median_of(runs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("takeover_s", "answer_max_s"):
        out[key] = {
            stat: statistics.median(run[kind][key][stat] for run in runs) for stat in ("p50", "max")
        }
    for key in ("unanswered", "failed_calls"):
        out[key] = [run[kind][key] for run in runs]
    return out


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=10, help="kills of each kind per run")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    runs = [await one_run(args.kills, args.kinds) for _ in range(args.runs)]
    result = {
        "runs": runs,
        "median": {
            "ring_before_s": statistics.median(run["ring_before_s"] for run in runs),
            **{kind: median_of(runs, kind) for kind in args.kinds},
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
