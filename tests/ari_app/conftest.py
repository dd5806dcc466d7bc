"""Fixtures shared by the ARI client's and the app's tests.

`fake` is an in-process fake of Asterisk's ARI (ari_fake_server.py) speaking the real wire
protocol; ari_samples.py builds the JSON Asterisk 22 sends. This folder holds a conftest and
no __init__.py, so both helper modules import by name from every test below it.
`strict_transitions`: a call moving where its transition table does not allow fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from ari_fake_server import FakeAri, running_fake

from ari_app.call.machine import CallMachine


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with running_fake() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture(autouse=True)
def strict_transitions() -> Iterator[None]:
    CallMachine.strict = True
    yield
    CallMachine.strict = False
