"""The line of waiting calls: strict order and positions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queues.waiting import CallKey, WaitingLine


def test_calls_come_out_by_priority_then_arrival_then_queueing_order() -> None:
    line = WaitingLine()
    keys: list[CallKey] = [
        (5, 10.0, 0, "a"),
        (1, 30.0, 1, "b"),
        (1, 20.0, 2, "c"),
        (1, 20.0, 3, "d"),
    ]
    for key in keys:
        line.add(key)
    assert [k[3] for k in line] == ["c", "d", "b", "a"]
    assert line.head() == (1, 20.0, 2, "c")
    assert line.position((5, 10.0, 0, "a")) == 4


def test_removing_a_call_moves_the_ones_behind_it_up() -> None:
    line = WaitingLine()
    for i in range(4):
        line.add((1, float(i), i, f"c{i}"))
    line.remove((1, 1.0, 1, "c1"))
    assert line.position((1, 3.0, 3, "c3")) == 3
    assert (1, 1.0, 1, "c1") not in line
    assert len(line) == 3


def test_unknown_calls_are_errors_not_guesses() -> None:
    line = WaitingLine()
    line.add((1, 1.0, 1, "a"))
    with pytest.raises(KeyError):
        line.remove((1, 1.0, 2, "b"))
    with pytest.raises(KeyError):
        line.position((0, 0.0, 0, "z"))
    assert WaitingLine().head() is None


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 100)), max_size=40))
def test_positions_match_a_sort(pairs: list[tuple[int, float]]) -> None:
    keys = [(p, a, i, f"c{i}") for i, (p, a) in enumerate(pairs)]
    line = WaitingLine()
    for key in keys:
        line.add(key)
    expected = sorted(keys)
    assert list(line) == expected
    for rank, key in enumerate(expected, start=1):
        assert line.position(key) == rank
