"""Estimated wait from the recent handle times (talk + wrap-up) of each category."""

from __future__ import annotations

from collections import deque


class HandleTimes:
    """The last `window` handle times per category, and their mean."""

    __slots__ = ("_default", "_means", "_times", "_window")

    def __init__(self, window: int, default_seconds: float) -> None:
        self._window = window
        self._default = default_seconds
        self._times: dict[str, deque[float]] = {}
        self._means: dict[str, float] = {}  # announcements ask far more often than calls end

    def record(self, category: str, seconds: float) -> None:
        times = self._times.get(category)
        if times is None:
            times = self._times[category] = deque(maxlen=self._window)
        times.append(max(0.0, seconds))
        self._means[category] = sum(times) / len(times)

    def mean(self, category: str) -> float:
        return self._means.get(category, self._default)


def estimate_wait(position: int, mean_handle_seconds: float, serving: int) -> float | None:
    """Seconds until a caller at `position` is offered, with `serving` operators working that
    skill; None when nobody serves it (the wait cannot be estimated)."""
    if serving <= 0:
        return None
    return position * mean_handle_seconds / serving
