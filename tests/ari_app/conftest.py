"""Fixtures shared by the ARI client's and the app's tests.

`fake` is an in-process fake of Asterisk's ARI (ari_fake_server.py) speaking the real wire
protocol; ari_samples.py builds the JSON Asterisk 22 sends. This folder holds a conftest and
no __init__.py, so both helper modules import by name from every test below it.
`strict_transitions`: a call moving where its transition table does not allow fails the test.
`no_task_outlives_its_test`: the calls a test leaves mid-flight end with it. The event loop
is the session's, and a task it keeps only weakly (an actor waiting on its inbox, once its app
is dropped) is otherwise destroyed by the garbage collector at a random later moment, logging
"Task was destroyed but it is pending!" into whichever test runs then.
"""

from __future__ import annotations

import asyncio
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


@pytest.fixture(autouse=True)
async def no_task_outlives_its_test() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    left = [task for task in asyncio.all_tasks() - before if task is not asyncio.current_task()]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
