"""Latencies the app measures on itself, for `siaga simulate`, the benchmarks and operators'
dashboards: how long a caller waits for the app, not for a human."""

from __future__ import annotations

import collections
import statistics
from dataclasses import dataclass, field

_KEEP = 100_000


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


@dataclass
class Metrics:
    # StasisStart received -> the caller's channel answered.
    answer_ms: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=_KEEP)
    )
    # An operator freed while calls waited -> that operator's phone rung with the next call.
    dispatch_ms: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=_KEEP)
    )
    _freed_at: dict[str, float] = field(default_factory=dict)

    def answered(self, started: float, now: float) -> None:
        self.answer_ms.append((now - started) * 1000)

    def freed_for_next_call(self, operator_id: str, now: float) -> None:
        self._freed_at[operator_id] = now

    def rung(self, operator_id: str, now: float) -> None:
        freed = self._freed_at.pop(operator_id, None)
        if freed is not None:
            self.dispatch_ms.append((now - freed) * 1000)

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {"answer": _summary(self.answer_ms), "dispatch": _summary(self.dispatch_ms)}
