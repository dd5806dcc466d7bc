"""Estimated wait: recent handle times per category."""

from __future__ import annotations

import pytest

from queues.ewt import HandleTimes, estimate_wait


def test_mean_of_the_last_window_or_the_default() -> None:
    times = HandleTimes(window=3, default_seconds=90)
    assert times.mean("medical") == 90
    for seconds in (100, 200, 300, 400):
        times.record("medical", seconds)
    assert times.mean("medical") == pytest.approx(300)
    assert times.mean("fire") == 90


def test_negative_handle_times_count_as_zero() -> None:
    times = HandleTimes(window=2, default_seconds=90)
    times.record("fire", -5)
    assert times.mean("fire") == 0


def test_estimate_scales_with_position_and_operators() -> None:
    assert estimate_wait(4, 60, 2) == pytest.approx(120)
    assert estimate_wait(1, 60, 0) is None
