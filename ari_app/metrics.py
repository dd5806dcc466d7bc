"""Latencies and counts the app measures on itself, for `siaga simulate`, the benchmarks and
Prometheus (supervisor/metrics.py serves them at /metrics).

`answer_ms` and `dispatch_ms` keep the last samples for percentiles (how long a caller waits
for the app, not for a human); the Prometheus histograms and counters keep running totals.
"""

from __future__ import annotations

import collections
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import Metric

from queues.decisions import Decision, Offer, OperatorStateChanged
from queues.states import OperatorState, Reason

_KEEP = 100_000
# A miss: the operator's phone rang and nobody answered it (busy or unreachable phones are not
# the operator's doing).
_MISSES = frozenset({Reason.NO_ANSWER.value, Reason.RING_TIMEOUT.value})
UNCLASSIFIED = "unclassified"

# Seconds from the arrival at Asterisk to an operator answering: the NENA service level's
# measure; 10 and 15 s are the usual answer targets.
TIME_TO_HUMAN_BUCKETS = (1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
# Seconds from an operator freed (while calls wait) to their phone rung: the app's own share.
DISPATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _summary(values: collections.deque[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "max_ms": round(ordered[-1], 3),
    }


def _samples() -> collections.deque[float]:
    return collections.deque(maxlen=_KEEP)


# registry=None: each app's own, collected through `collect()`, never the process-wide registry
# (tests run many apps in one process).
def _time_to_human() -> Histogram:
    return Histogram(
        "siaga_time_to_human_seconds",
        "Seconds from a call's arrival to an operator answering it.",
        ["category"],
        buckets=TIME_TO_HUMAN_BUCKETS,
        registry=None,
    )


def _dispatch() -> Histogram:
    return Histogram(
        "siaga_dispatch_seconds",
        "Seconds from an operator freed while calls waited to their phone rung with the next.",
        buckets=DISPATCH_BUCKETS,
        registry=None,
    )


def _offers() -> Counter:
    return Counter(
        "siaga_offers", "Calls offered to an operator (their phone rung).", registry=None
    )


def _misses() -> Counter:
    return Counter(
        "siaga_offers_missed",
        "Offers the operator did not answer (no answer, ring timeout).",
        registry=None,
    )


@dataclass
class Metrics:
    # StasisStart received -> the caller's channel answered.
    answer_ms: collections.deque[float] = field(default_factory=_samples)
    # An operator freed while calls waited -> that operator's phone rung with the next call.
    dispatch_ms: collections.deque[float] = field(default_factory=_samples)
    time_to_human: Histogram = field(default_factory=_time_to_human)
    dispatch: Histogram = field(default_factory=_dispatch)
    offers: Counter = field(default_factory=_offers)
    misses: Counter = field(default_factory=_misses)
    _freed_at: dict[str, float] = field(default_factory=dict)

    def answered(self, started: float, now: float) -> None:
        self.answer_ms.append((now - started) * 1000)

    def reached_human(self, category: str | None, arrival: float, now: float) -> None:
        """An operator answered the call (and won it)."""
        self.time_to_human.labels(category or UNCLASSIFIED).observe(max(0.0, now - arrival))

    def decided(self, decision: Decision) -> None:
        """Count the ACD's offers and the misses among their ends."""
        if isinstance(decision, Offer):
            self.offers.inc()
        elif (
            isinstance(decision, OperatorStateChanged)
            and decision.old is OperatorState.OFFERED
            and decision.reason in _MISSES
        ):
            self.misses.inc()

    def freed_for_next_call(self, operator_id: str, now: float) -> None:
        self._freed_at[operator_id] = now

    def rung(self, operator_id: str, now: float) -> None:
        freed = self._freed_at.pop(operator_id, None)
        if freed is not None:
            self.dispatch_ms.append((now - freed) * 1000)
            self.dispatch.observe(now - freed)

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {"answer": _summary(self.answer_ms), "dispatch": _summary(self.dispatch_ms)}

    def collect(self) -> Iterator[Metric]:
        """The Prometheus families, for the /metrics collector."""
        for metric in (self.time_to_human, self.dispatch, self.offers, self.misses):
            yield from metric.collect()
