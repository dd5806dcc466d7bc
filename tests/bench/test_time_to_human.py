"""Time to a human: the caller mix, arrivals, and calls' times paired into percentiles (pure)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from bench.bench_stack import APP_QUEUE, SIAGA, occupancy, verdict
from bench.stack_env import AmiEvent
from bench.stats import pct
from bench.time_to_human import (
    CallerKind,
    caller_mix,
    human_times,
    poisson_offsets,
    summary_s,
)

OP = "siaga-bench-op"


@dataclass
class Trace:
    arrived: float | None = None
    offered: float | None = None
    connected: float | None = None


def test_the_mix_is_seventy_twenty_ten() -> None:
    callers = caller_mix(100, random.Random(1), ["1", "2"], menu_seconds=5.0, reaction=0.3)
    counts = {k: sum(1 for c in callers if c.kind is k) for k in CallerKind}
    assert counts == {CallerKind.FIRST: 70, CallerKind.AFTER_MENU: 20, CallerKind.SILENT: 10}
    first = next(c for c in callers if c.kind is CallerKind.FIRST)
    after = next(c for c in callers if c.kind is CallerKind.AFTER_MENU)
    silent = next(c for c in callers if c.kind is CallerKind.SILENT)
    assert (first.delay, after.delay) == (0.3, 5.3)
    assert silent.digit == "" and {c.digit for c in callers if c.digit} <= {"1", "2"}
    # Mixed, not in blocks: the silent ones are not all at the end.
    assert [c.kind for c in callers[-10:]] != [CallerKind.SILENT] * 10


def test_a_small_mix_sums_to_its_count_and_never_has_more_than_ten_percent_silent() -> None:
    for count in (0, 1, 3, 7, 36, 37, 41, 95):
        callers = caller_mix(count, random.Random(2), ["1"], 5.0, 0.3)
        silent = sum(1 for c in callers if c.kind is CallerKind.SILENT)
        assert len(callers) == count and silent <= count / 10
        # So the nearest-rank p90 of all callers falls among those who pressed.
        pressed = count - silent
        assert pressed >= math.ceil(0.9 * count)


def test_poisson_arrivals_stay_in_the_window_at_about_the_rate() -> None:
    offsets = poisson_offsets(10.0, 100.0, random.Random(3))
    assert offsets == sorted(offsets) and offsets[0] > 0 and offsets[-1] < 100.0
    assert 900 < len(offsets) < 1100


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (pct(values, 50), pct(values, 90), pct(values, 99)) == (50.0, 90.0, 99.0)
    assert pct([], 50) is None
    assert summary_s([2.0, 1.0]) == {"n": 2, "p50": 1.0, "p90": 2.0, "p99": 2.0, "max": 2.0}


def test_times_are_paired_per_call_and_split_by_kind() -> None:
    calls = {
        "a": Trace(100.0, 101.0, 101.5),
        "b": Trace(200.0, 206.0, 206.4),
        "c": Trace(300.0, 311.0, None),  # rung, never answered
        "d": Trace(None, None, None),  # never reached Asterisk
    }
    kinds = {
        "a": CallerKind.FIRST,
        "b": CallerKind.AFTER_MENU,
        "c": CallerKind.SILENT,
        "d": CallerKind.FIRST,
    }
    out = human_times(calls, kinds)
    assert out["first_chance"]["to_answer_s"]["p50"] == 1.5
    assert out["first_chance"]["never_answered"] == 1
    assert out["after_menu"]["to_ringing_s"]["p50"] == 6.0
    assert out["silent"]["to_ringing_s"]["p90"] == 11.0 and out["silent"]["never_answered"] == 1
    assert out["all"]["callers"] == 4 and out["all"]["to_answer_s"]["n"] == 2
    assert out["all"]["to_ringing_s"]["p99"] == 11.0


def test_occupancy_counts_operator_channels_inside_the_window() -> None:
    def ev(name: str, at: float, n: int) -> AmiEvent:
        return AmiEvent(name, at, f"m{n};1", f"Local/{n}@{OP}-{n:08x};1")

    events = [
        ev("Newchannel", 5.0, 1),  # began before the window: only its part inside counts
        ev("Hangup", 15.0, 1),
        ev("Newchannel", 12.0, 2),
        ev("Hangup", 16.0, 2),
        ev("Newchannel", 18.0, 3),  # still up at the window's end
        AmiEvent("Newchannel", 11.0, "caller;1", "Local/caller@siaga-bench-caller-1;1"),
    ]
    # 2 operators over 10 s: 5 + 4 + 2 s busy of 20.
    assert occupancy(events, 2, 10.0, 20.0) == 0.55
    assert occupancy(events, 0, 10.0, 20.0) is None


def _level(p90: float) -> dict[str, object]:
    return {"occupancy": 0.8, "all": {"to_answer_s": {"p90": p90}}}


def test_the_time_to_human_targets() -> None:
    def targets(idle: tuple[float, float], busy: tuple[float, float]) -> dict[str, bool]:
        h = {
            "idle": {SIAGA: _level(idle[0]), APP_QUEUE: _level(idle[1])},
            "busy": {SIAGA: _level(busy[0]), APP_QUEUE: _level(busy[1])},
        }
        out = verdict({"time_to_human": h})
        return {k: v["met"] for k, v in out.items()}

    assert targets((6.9, 7.0), (8.6, 11.3)) == {"human_idle_p90_s": True, "human_busy_p90_s": True}
    # Over 8 s at idle, or slower than app_queue, or slower than it when busy: not met.
    assert targets((8.1, 9.0), (8.6, 8.6))["human_idle_p90_s"] is False
    assert targets((6.9, 6.8), (8.6, 8.6))["human_idle_p90_s"] is False
    assert targets((6.9, 7.0), (11.3, 8.6))["human_busy_p90_s"] is False


def test_the_dispatch_speedup_and_held_rate_targets() -> None:
    def dispatch(siaga_p50: float, app_queue_p50: float) -> dict[str, object]:
        return {
            SIAGA: {"median_ms": {"p50": siaga_p50, "p99": 15.0}},
            APP_QUEUE: {"median_ms": {"p50": app_queue_p50, "p99": 990.0}},
        }

    ramp = {SIAGA: {"highest_held_rate": 50}, APP_QUEUE: {"highest_held_rate": 75}}
    out = verdict({"dispatch": dispatch(6.0, 420.0), "sustained": ramp})
    assert out["dispatch_speedup_p50"]["met"] is True  # 70x
    assert out["sustained_at_least_app_queue"]["met"] is False
    assert verdict({"dispatch": dispatch(10.0, 420.0)})["dispatch_speedup_p50"]["met"] is False
