"""Benchmark of the pure ACD core (queues/): prints one JSON object on stdout.

1. Dispatch decision time with 10,000 waiting calls and 500 operators over 6 categories: the
   time of one `Acd.handle` that ends in an `Offer`, both ways a dispatch starts (an operator
   becomes free; a call arrives while an operator is free). Target p99 <= 100 us.
2. Throughput of 100,000 mixed events (arrivals, answers, failed offers, hang-ups, call ends,
   pauses, ticks; offers are the engine's own decisions). Target >= 50,000 events/s, counted on
   the time spent inside `Acd.handle` (the driver that plays the phones is not timed).

Each figure is the median over `--repeat` runs. Run: `.venv/bin/python -m bench.bench_acd`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import platform
import random
import statistics
import sys
import time
from typing import Any

import structlog

from queues import (
    Acd,
    AcdConfig,
    Announce,
    CallEnded,
    CallHungUp,
    CallQueued,
    Category,
    Offer,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
    OperatorLoggedIn,
    OperatorPaused,
    OperatorReady,
    OperatorState,
    OperatorStateChanged,
    Tick,
)

TARGET_P99_US = 100.0
TARGET_EVENTS_PER_S = 50_000.0

# The shipped waits before secondary operators may take a call: emergencies at once.
CATEGORIES = (
    Category("medical", "Medis", "Medical", 1, "medical", 10, 0, 0),
    Category("fire", "Kebakaran", "Fire", 1, "fire", 10, 0, 0),
    Category("police", "Polisi", "Police", 1, "police", 10, 0, 0),
    Category("disaster", "Bencana", "Disaster", 1, "disaster", 10, 0, 0),
    Category("general", "Darurat umum", "General emergency", 2, "general", 10, 0, 0),
    Category("information", "Informasi", "Information", 5, "information", 60, 0, 30),
)
SKILLS = tuple(c.skill for c in CATEGORIES)


def _config(wrap_up: bool, secondary_after: float | None) -> AcdConfig:
    categories = tuple(
        dataclasses.replace(
            c,
            wrap_up_seconds=3 if wrap_up else 0,
            secondary_after_seconds=(
                c.secondary_after_seconds if secondary_after is None else secondary_after
            ),
        )
        for c in CATEGORIES
    )
    return AcdConfig(categories, announce_interval_seconds=30.0)


def _skills(rng: random.Random) -> dict[str, int]:
    primary = rng.sample(SKILLS, rng.randint(1, 3))
    skills = dict.fromkeys(primary, 1)
    for skill in rng.sample(SKILLS, 2):
        skills.setdefault(skill, 2)
    return skills


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def bench_dispatch(
    seed: int, waiting: int, operators: int, samples: int, secondary_after: float | None
) -> dict[str, float]:
    """Time the `handle` calls that end in one `Offer`, with `waiting` calls queued.

    Half the samples: an operator's call ends and they get the most urgent waiting call they
    may take. The other half: a call arrives in the one category with no backlog and goes to
    one of its idle operators, while the 10,000 calls of the other categories wait.
    """
    rng = random.Random(seed)
    now = 10_000.0
    acd = Acd(_config(False, secondary_after), now)
    quiet = CATEGORIES[-1]
    busy_categories = [c.code for c in CATEGORIES if c is not quiet]
    quiet_ops = [f"q{i:03d}" for i in range(max(1, operators // 50))]
    busy_ops = [f"op{i:04d}" for i in range(operators - len(quiet_ops))]
    for op in busy_ops:
        skills = {s: level for s, level in _skills(rng).items() if s != quiet.skill}
        acd.handle(OperatorLoggedIn(op, skills or {busy_categories[0]: 1}), now)
    for op in quiet_ops:
        acd.handle(OperatorLoggedIn(op, {quiet.skill: 1}), now)
    # Every busy operator on a call, so the queue builds up behind them.
    on_call: dict[str, str] = {}
    for op in busy_ops:
        call_id = f"busy-{op}"
        for decision in acd.handle(CallQueued(call_id, rng.choice(busy_categories), now), now):
            if isinstance(decision, Offer):
                acd.handle(OfferAnswered(decision.call_id, decision.operator_id), now)
                on_call[decision.call_id] = decision.operator_id
    next_call = 0
    for _ in range(waiting):
        # Young enough that few calls of a category with a secondary wait have passed it.
        arrival = now - rng.uniform(0, 25)
        acd.handle(CallQueued(f"w{next_call}", rng.choice(busy_categories), arrival), now)
        next_call += 1

    timings: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for i in range(samples):
            now += 0.001
            event: Any
            if i % 2 == 0:
                call_id = rng.choice(list(on_call))
                expected = on_call.pop(call_id)
                event = CallEnded(call_id)
            else:
                expected = ""
                event = CallQueued(f"w{next_call}", quiet.code, now)
                next_call += 1
            start = time.perf_counter_ns()
            decisions = acd.handle(event, now)
            timings.append((time.perf_counter_ns() - start) / 1000)
            offers = [d for d in decisions if isinstance(d, Offer)]
            assert len(offers) == 1, decisions
            offer = offers[0]
            assert offer.operator_id == expected if expected else offer.operator_id in quiet_ops
            acd.handle(OfferAnswered(offer.call_id, offer.operator_id), now)
            if expected:
                # Keep the backlog at `waiting` calls.
                on_call[offer.call_id] = offer.operator_id
                acd.handle(CallQueued(f"w{next_call}", rng.choice(busy_categories), now), now)
                next_call += 1
            else:
                acd.handle(CallEnded(offer.call_id), now)
    finally:
        gc.enable()
    timings.sort()
    return {
        "p50_us": _percentile(timings, 0.50),
        "p99_us": _percentile(timings, 0.99),
        "max_us": timings[-1],
        "samples": len(timings),
    }


class _Phones:
    """Plays the operators' phones and the callers for the mixed-event run."""

    def __init__(self) -> None:
        self.ringing: dict[str, str] = {}  # operator -> call
        self.connected: dict[str, str] = {}  # call -> operator
        self.waiting: set[str] = set()
        self.paused: set[str] = set()

    def follow(self, decisions: list[Any]) -> None:
        for d in decisions:
            if isinstance(d, Offer):
                self.ringing[d.operator_id] = d.call_id
                self.waiting.discard(d.call_id)
            elif isinstance(d, OperatorStateChanged):
                if d.old is OperatorState.OFFERED and d.new is not OperatorState.ON_CALL:
                    call_id = self.ringing.pop(d.operator_id, None)
                    if call_id is not None and d.reason != "caller_gone":
                        self.waiting.add(call_id)
                if d.new is OperatorState.PAUSED:
                    self.paused.add(d.operator_id)
                elif d.old is OperatorState.PAUSED:
                    self.paused.discard(d.operator_id)


def bench_mixed(
    seed: int, events: int, operators: int, backlog: int, secondary_after: float | None
) -> dict[str, float]:
    rng = random.Random(seed)
    now = 10_000.0
    acd = Acd(_config(True, secondary_after), now)
    phones = _Phones()
    op_ids = [f"op{i:04d}" for i in range(operators)]
    for op in op_ids:
        phones.follow(acd.handle(OperatorLoggedIn(op, _skills(rng)), now))
    next_call = 0
    for _ in range(backlog):
        # The burst builds up over one announcement interval, as it would on a real day.
        now += 30.0 / backlog
        call_id = f"b{next_call}"
        next_call += 1
        phones.waiting.add(call_id)
        phones.follow(acd.handle(CallQueued(call_id, rng.choice(CATEGORIES).code, now), now))

    spent_ns = 0
    decided = 0
    announced = 0
    started_at = now
    kinds: dict[str, int] = {}
    gc.collect()
    gc.disable()
    wall = time.perf_counter()
    try:
        for _ in range(events):
            roll = rng.random()
            event: Any
            if roll < 0.27:
                call_id = f"m{next_call}"
                next_call += 1
                phones.waiting.add(call_id)
                event = CallQueued(call_id, rng.choice(CATEGORIES).code, now)
            elif roll < 0.50 and phones.ringing:
                op, call_id = phones.ringing.popitem()
                phones.connected[call_id] = op
                event = OfferAnswered(call_id, op)
            elif roll < 0.54 and phones.ringing:
                op = rng.choice(list(phones.ringing))
                call_id = phones.ringing[op]
                reason = rng.choice((OfferFailure.NO_ANSWER, OfferFailure.BUSY))
                event = OfferFailed(call_id, op, reason)
            elif roll < 0.58 and phones.waiting:
                call_id = phones.waiting.pop()
                event = CallHungUp(call_id)
            elif roll < 0.80 and phones.connected:
                call_id, _op = phones.connected.popitem()
                event = CallEnded(call_id)
            elif roll < 0.82 and phones.paused:
                event = OperatorReady(phones.paused.pop())
            elif roll < 0.83:
                event = OperatorPaused(rng.choice(op_ids), "break")
            else:
                # ~100 events per simulated second: a heavy burst for 500 operators.
                now += rng.uniform(0.01, 0.1)
                event = Tick()
            start = time.perf_counter_ns()
            decisions = acd.handle(event, now)
            spent_ns += time.perf_counter_ns() - start
            decided += len(decisions)
            announced += sum(1 for d in decisions if type(d) is Announce)
            phones.follow(decisions)
            name = type(event).__name__
            kinds[name] = kinds.get(name, 0) + 1
    finally:
        gc.enable()
    wall_s = time.perf_counter() - wall
    snapshot = acd.snapshot()
    return {
        "events": events,
        "events_per_s": events / (spent_ns / 1e9),
        "events_per_s_with_driver": events / wall_s,
        "waiting_at_end": sum(len(c.waiting) for c in snapshot.categories),
        "decisions": decided,
        "announcements": announced,
        "simulated_seconds": now - started_at,
        "event_mix": kinds,  # type: ignore[dict-item]
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--operators", type=int, default=500)
    parser.add_argument("--samples", type=int, default=4_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=112)
    parser.add_argument(
        "--secondary-after",
        type=float,
        default=None,
        help="secondary_after_seconds for every category (default: the shipped ones)",
    )
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    dispatch_runs = []
    mixed_runs = []
    for run in range(args.repeat):
        dispatch_runs.append(
            bench_dispatch(
                args.seed + run, args.waiting, args.operators, args.samples, args.secondary_after
            )
        )
        mixed_runs.append(
            bench_mixed(
                args.seed + run, args.events, args.operators, args.backlog, args.secondary_after
            )
        )

    def median(runs: list[dict[str, Any]], key: str) -> float:
        return round(float(statistics.median(r[key] for r in runs)), 2)

    result = {
        "benchmark": "acd_core",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "secondary_after_seconds": (
            "shipped" if args.secondary_after is None else args.secondary_after
        ),
        "command": "python -m bench.bench_acd " + " ".join(sys.argv[1:] if argv is None else argv),
        "dispatch": {
            "waiting_calls": args.waiting,
            "operators": args.operators,
            "categories": len(CATEGORIES),
            "samples_per_run": args.samples,
            "p50_us": median(dispatch_runs, "p50_us"),
            "p99_us": median(dispatch_runs, "p99_us"),
            "max_us": median(dispatch_runs, "max_us"),
            "target_p99_us": TARGET_P99_US,
            "meets_target": median(dispatch_runs, "p99_us") <= TARGET_P99_US,
        },
        "mixed": {
            "events_per_run": args.events,
            "operators": args.operators,
            "initial_backlog": args.backlog,
            "events_per_s": median(mixed_runs, "events_per_s"),
            "events_per_s_with_driver": median(mixed_runs, "events_per_s_with_driver"),
            "target_events_per_s": TARGET_EVENTS_PER_S,
            "meets_target": median(mixed_runs, "events_per_s") >= TARGET_EVENTS_PER_S,
            "simulated_seconds": median(mixed_runs, "simulated_seconds"),
            "decisions": median(mixed_runs, "decisions"),
            "announcements": median(mixed_runs, "announcements"),
            "waiting_at_end": median(mixed_runs, "waiting_at_end"),
            "event_mix_last_run": mixed_runs[-1]["event_mix"],
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
