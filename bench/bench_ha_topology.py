"""Failover and scale-out, timed on the whole high-availability topology as hosts
(testbed/topology.py: the Kamailio edge and the pg_auto_failover monitor, two nodes each with
Asterisk, PostgreSQL and a `siaga run` with [ha], SIPp callers and operators). Prints JSON (and
writes it to --out):

- for each kind of failure (`node`: a node's host whole; `app`: the active app alone;
  `postgres`: the PostgreSQL primary; `asterisk`: the Asterisk of the active app's node;
  `partition`: the active app's host cut off, its link set down until the stream ends),
  --kills times under a steady stream of callers, each followed by bringing the part back:
  - `failover_s`: seconds from the kill until the part's replacement serves: the standby app
    says it is active (`node`, `app`, `partition`), the standby PostgreSQL takes writes
    (`postgres`), Kamailio has the node out of its set (`asterisk`);
  - `partition` also gives, from Asterisk's record of the operator legs originated, the
    cut-off app's last offer (`old_last_offer_s`, none: -1) and the new active's first
    (`new_first_offer_s`), seconds after the cut; `overlaps` counts the kills where the first
    came before the last (two apps offering at once: must be 0); `old_stopped_s`: when the
    cut-off app halted by itself (its lease, or alone: ari_app/isolation.py; none: -1);
  - `service_s`: seconds from the kill until new calls are answered normally again (from SIPp:
    every call sent since then answered within 1 s, testbed.topology.disturbed_until);
  - `answer_max_s`: the longest a call sent in the 10 s after the kill rang before it was
    answered (from SIPp; a stranded call is answered by the fallback 2 s after it came in);
  - `active_again_s` (`postgres`): until an app is active again (the active app's lease lives in
    a session on the primary: it halts, and an app takes the lease on the new primary);
  - calls lost: `cut` (in conversation or answered before the kill, then cut: by the nodes'
    CEL, not ended by the caller) apart from `unanswered` (sent from the kill on, never
    answered: refused or timed out) and `no_human` (answered, never connected to an operator);
  - `to_human_s`: from the caller's INVITE to an operator connected (CEL), calls sent in the
    10 s after the kill: p50 and max;
  with the p50 and max of each over the kills;
- `throughput`: calls a second completed (connected to an operator) with the same operators
  (--operators, enough that they are not what limits), with both nodes in Kamailio's set,
  then with one (node_b's Asterisk stopped);
- `cpu_per_call`: CPU seconds per call of each node's host (Asterisk, app, PostgreSQL), by
  program, during the throughput runs: what one more machine would carry.

With --runs, the medians of the p50s and maxima over the runs.

    .venv/bin/python -m bench.bench_ha_topology                      # 3 runs of 10 kills each
    .venv/bin/python -m bench.bench_ha_topology --runs 1 --kills 2

Everything runs on this machine: two cores for two Asterisks, three PostgreSQL servers,
Kamailio, two apps and SIPp. The failover timings are the testbed's (OPTIONS every second, a
1 s timeout, pg_auto_failover's FAST_FAILOVER, a 2 s lease).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from bench.stats import pct, until
from db.events import HangupBy
from pbx.provision import ensure_asterisk_root, render_prompts
from testbed.ha import NODE_NAMES
from testbed.topology import (
    CallFate,
    Topology,
    disturbed_until,
    fates,
    topology,
)

KINDS = ("node", "app", "postgres", "asterisk", "partition")
RATE = 2.0  # calls a second during the kills
HOLD_MS = 3000
BEFORE_S = 4.0  # the stream runs this long before the kill
AFTER_S = 12.0  # and this long after it
HUMAN_WINDOW_S = 10.0  # time to a human: calls sent this long after the kill
GIVE_UP_S = 60.0
TIMES = ("failover_s", "service_s", "answer_max_s", "active_again_s", "to_human_max_s")
PARTITION_TIMES = ("new_first_offer_s", "old_last_offer_s", "old_stopped_s")


def by_node(bed: Topology) -> dict[str, list[Any]]:
    return {node: bed.asterisk_calls(node) for node in NODE_NAMES}


async def kill(bed: Topology, kind: str) -> tuple[float, float, dict[str, float]]:
    """Kill one part of `kind`; (the kill's time, seconds until its replacement serves,
    anything else measured)."""
    active = bed.active()
    assert active is not None
    standby = bed.other(active)
    extra: dict[str, float] = {}
    if kind == "node":
        at = await bed.kill_node(active)
        return at, await bed.wait_active(standby, at, GIVE_UP_S), extra
    if kind == "app":
        at = await bed.kill_app(active)
        return at, await bed.wait_active(standby, at, GIVE_UP_S), extra
    if kind == "partition":
        at = await bed.partition(active)
        return at, await bed.wait_active(standby, at, GIVE_UP_S), extra
    if kind == "postgres":
        primary, at = await bed.kill_primary()
        survivor = bed.other(primary)

        async def promoted() -> bool:
            return await asyncio.to_thread(bed.cluster.writable, survivor)

        took = await until(promoted, "the standby promoted")

        async def serving() -> bool:
            return await asyncio.to_thread(bed.active) is not None

        extra["active_again_s"] = round(await until(serving, "an app active") + took, 2)
        return at, took, extra
    if kind == "asterisk":
        at = await bed.kill_asterisk(active)

        async def out() -> bool:
            return not (await asyncio.to_thread(bed.dispatcher))[active]

        return at, await until(out, "the node out of Kamailio's set"), extra
    raise ValueError(kind)


def lost(calls: list[CallFate], killed_at: float) -> dict[str, int]:
    cut = [
        f
        for f in calls
        if f.answered is not None
        and f.answered < killed_at
        and (f.call is None or f.call.hangup_by is not HangupBy.CALLER)
    ]
    after = [f for f in calls if f.invite >= killed_at]
    return {
        "cut": len(cut),
        "unanswered": sum(1 for f in after if f.answered is None),
        "no_human": sum(1 for f in after if f.answered is not None and f.human is None),
    }


def offer_gap(bed: Topology, cut_off: str, cut_at: float, healed_at: float) -> dict[str, float]:
    """The cut-off app's last offer and the new active's first, seconds after the cut, and
    whether the first came before the last (two apps offering at once)."""
    old, new = bed.offers_around(cut_off, cut_at, healed_at)
    last_old = max(old, default=cut_at - 1)
    first_new = min(new, default=healed_at)
    return {
        "old_last_offer_s": round(last_old - cut_at, 2),
        "new_first_offer_s": round(first_new - cut_at, 2),
        "overlaps": int(bool(old and new) and first_new <= last_old),
    }


async def one_kill(bed: Topology, kind: str) -> dict[str, Any]:
    active = await bed.ensure_whole()
    calls = int(RATE * (BEFORE_S + AFTER_S))
    stream = bed.callers(rate=RATE, calls=calls, hold_ms=HOLD_MS)
    await stream.start()
    await asyncio.sleep(BEFORE_S)
    killed_at, failover_s, extra = await kill(bed, kind)
    await stream.wait(timeout=AFTER_S + HOLD_MS / 1000 + 90)
    if kind == "partition":
        healed_at = time.time()
        await bed.heal(active)
        extra.update(offer_gap(bed, active, killed_at, healed_at))
        halts = bed.apps[active].halts(killed_at)
        stopped = [at for at, _ in halts if at < healed_at]
        extra["old_stopped_s"] = round(stopped[0] - killed_at, 2) if stopped else -1.0
    await asyncio.sleep(2)  # the last hang-ups into the CEL files
    seen = fates(stream, by_node(bed))
    humans = [
        f.human - f.invite
        for f in seen
        if f.human is not None and killed_at <= f.invite < killed_at + HUMAN_WINDOW_S
    ]
    answers = [
        f.answered - f.invite
        for f in seen
        if f.answered is not None and killed_at <= f.invite < killed_at + HUMAN_WINDOW_S
    ]
    row: dict[str, Any] = {
        "failover_s": round(failover_s, 2),
        "service_s": round(disturbed_until(seen, killed_at), 2),
        "answer_max_s": round(max(answers, default=0.0), 2),
        **extra,
        **lost(seen, killed_at),
        "calls": len(seen),
        "to_human_p50_s": round(pct(humans, 50) or 0.0, 2),
        "to_human_max_s": round(max(humans, default=0.0), 2),
    }
    print(json.dumps({"kind": kind, **row}), file=sys.stderr, flush=True)
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {"kills": rows}
    for key in (*TIMES, *PARTITION_TIMES):
        values = [row[key] for row in rows if key in row]
        if values:
            result[key] = {"p50": pct(values, 50), "max": max(values)}
    for key in ("cut", "unanswered", "no_human", "calls", "overlaps"):
        if any(key in row for row in rows):
            result[key] = sum(row[key] for row in rows)
    humans = [row["to_human_p50_s"] for row in rows]
    result["to_human_p50_s"] = pct(humans, 50)
    return result


async def throughput(bed: Topology, rate: float, seconds: float) -> dict[str, Any]:
    """Offer `rate` calls a second for `seconds`; calls a second connected to an operator,
    and each node host's CPU seconds per call it took, by program."""
    await asyncio.sleep(2)
    before = {node: bed.cpu_seconds(node) for node in NODE_NAMES}
    stream = bed.callers(rate=rate, calls=int(rate * seconds), hold_ms=1000)
    await stream.start()
    await stream.wait(timeout=seconds + 120)
    await asyncio.sleep(2)
    after = {node: bed.cpu_seconds(node) for node in NODE_NAMES}
    seen = fates(stream, by_node(bed))
    done = [f for f in seen if f.human is not None]
    ends = [f.call.ended_at.timestamp() for f in done if f.call and f.call.ended_at]
    span = max(ends, default=0.0) - min(f.invite for f in seen)
    cpu: dict[str, Any] = {}
    for node in NODE_NAMES:
        taken = sum(1 for f in seen if f.node == node)
        used = {
            name: after[node][name] - before[node].get(name, 0.0)
            for name in after[node]
            if after[node][name] - before[node].get(name, 0.0) > 0
        }
        cpu[node] = {
            "calls": taken,
            "cpu_s": round(sum(used.values()), 2),
            "per_call_s": round(sum(used.values()) / taken, 4) if taken else None,
            "by_program_s": {name: round(value, 2) for name, value in used.items()},
        }
    return {
        "offered_per_s": rate,
        "calls": len(seen),
        "connected": len(done),
        "completed_per_s": round(len(done) / span, 2) if span > 0 else 0.0,
        "cpu": cpu,
    }


async def scale(bed: Topology, rate: float, seconds: float) -> dict[str, Any]:
    await bed.ensure_whole()
    two = await throughput(bed, rate, seconds)
    # One node: node_b's Asterisk stopped, Kamailio takes it out of the set.
    await asyncio.to_thread(bed.ha.nodes["node_b"].stop)

    async def out() -> bool:
        return not (await asyncio.to_thread(bed.dispatcher))["node_b"]

    await until(out, "node_b out of the set")
    one = await throughput(bed, rate, seconds)
    await bed.ensure_whole()
    ratio = two["completed_per_s"] / one["completed_per_s"] if one["completed_per_s"] else None
    return {"two_nodes": two, "one_node": one, "two_over_one": ratio and round(ratio, 2)}


async def one_run(args: argparse.Namespace) -> dict[str, Any]:
    root, prompts = ensure_asterisk_root(), render_prompts()
    async with topology(root, prompts, operators=args.operators) as bed:
        result: dict[str, Any] = {}
        for kind in args.kinds if args.kills else ():
            result[kind] = summary([await one_kill(bed, kind) for _ in range(args.kills)])
        if args.seconds > 0:
            result["throughput"] = await scale(bed, args.rate, args.seconds)
    return result


def medians(runs: list[dict[str, Any]], kinds: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for kind in kinds:
        for key in (*TIMES, *PARTITION_TIMES):
            if key in runs[0][kind]:
                for stat in ("p50", "max"):
                    values = [run[kind][key][stat] for run in runs]
                    result[f"{kind}_{key}_{stat}"] = statistics.median(values)
        for key in ("cut", "unanswered", "no_human", "to_human_p50_s"):
            result[f"{kind}_{key}"] = statistics.median(run[kind][key] for run in runs)
        if "overlaps" in runs[0][kind]:
            result[f"{kind}_overlaps"] = sum(run[kind]["overlaps"] for run in runs)
    for nodes in ("two_nodes", "one_node") if "throughput" in runs[0] else ():
        result[f"{nodes}_completed_per_s"] = statistics.median(
            run["throughput"][nodes]["completed_per_s"] for run in runs
        )
        for node in NODE_NAMES:
            values = [run["throughput"][nodes]["cpu"][node]["per_call_s"] for run in runs]
            known = [v for v in values if v is not None]
            result[f"{nodes}_{node}_cpu_per_call_s"] = statistics.median(known) if known else None
    return result


async def main() -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=10, help="kills of each kind in a run")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--rate", type=float, default=8.0, help="calls/s offered (throughput)")
    parser.add_argument(
        "--operators", type=int, default=30, help="enough that they are not the bottleneck"
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="throughput run length (0: no throughput)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    runs = [await one_run(args) for _ in range(args.runs)]
    text = json.dumps(
        {
            "benchmark": "ha_topology",
            "rate_during_kills": RATE,
            "runs": runs,
            "medians": medians(runs, args.kinds if args.kills else []),
        },
        indent=2,
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
