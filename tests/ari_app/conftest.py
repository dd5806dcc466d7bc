"""Shared fixtures of the ARI app's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ari_app.call.machine import CallMachine


@pytest.fixture(autouse=True)
def strict_transitions() -> Iterator[None]:
    """A call moving where its transition table does not allow fails the test."""
    CallMachine.strict = True
    yield
    CallMachine.strict = False
