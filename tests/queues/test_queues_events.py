"""Events are frozen facts."""

from __future__ import annotations

import dataclasses

import pytest

from queues import CallQueued, OperatorLoggedIn


def test_login_skills_are_a_frozen_copy() -> None:
    skills = {"medical": 1}
    event = OperatorLoggedIn("1001", skills)
    skills["fire"] = 1
    assert dict(event.skills) == {"medical": 1}
    with pytest.raises(TypeError):
        event.skills["fire"] = 1  # type: ignore[index]
    # Hashable although it holds a mapping; equality still compares the skills.
    assert len({event, OperatorLoggedIn("1001", {"medical": 1})}) == 1
    assert event != OperatorLoggedIn("1001", {"medical": 2})


def test_events_cannot_be_changed() -> None:
    event = CallQueued("c1", "medical", 12.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.arrival = 0.0  # type: ignore[misc]
    assert event.priority is None and event.flags == frozenset()
