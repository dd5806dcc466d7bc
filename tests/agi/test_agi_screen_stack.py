"""Caller screening on the real stack: Asterisk runs the dialplan's bounded AGI `screen` against
our FastAGI server and PostgreSQL, and the app gets the variables in StasisStart."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from agi.protocol import AgiSession
from agi.records import block, caller_facts, list_blocks
from agi.screening import ScreeningSettings
from ari_app.ari.events import AriEvent, StasisStart
from db.events import RecordEvent, Verdict, call_arrived, disposition, ivr_step
from db.ingest import ingest
from testbed.sandbox import simulated_operators

pytestmark = pytest.mark.integration


def fresh_number() -> str:
    return f"0813{uuid.uuid4().int % 10**8:08d}"


def prior_calls(
    number: str, *, count: int, hours_ago: float, verdict: Verdict | None, language: str = "id"
) -> list[RecordEvent]:
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    events: list[RecordEvent] = []
    for i in range(count):
        call_id = f"prior-{uuid.uuid4().hex[:10]}"
        moment = at + timedelta(seconds=i)
        events += [
            call_arrived(call_id, number, at=moment),
            ivr_step(call_id, "main", input="digit", language=language, at=moment),
        ]
        if verdict is not None:
            events.append(disposition(call_id, "1001", verdict, at=moment + timedelta(seconds=30)))
    return events


def stasis_starts(app) -> list[StasisStart]:
    """Record the StasisStart events the app receives (what Asterisk handed over)."""
    seen: list[StasisStart] = []
    original = app._connections[""]._on_event

    async def spy(event: AriEvent) -> None:
        if isinstance(event, StasisStart):
            seen.append(event)
        await original(event)

    app._connections[""]._on_event = spy
    return seen


async def start_of(seen: list[StasisStart], call_id: str, wait) -> StasisStart:
    async def found():
        return next((s for s in seen if s.channel.id == call_id), None)

    start: StasisStart = await wait(found, what=f"StasisStart of {call_id}")
    return start


async def test_repeat_caller_reaches_the_app_with_count_history_and_language(
    start_app, agi_server, callers, pool, records, wait
):
    number = fresh_number()
    # Earlier calls were received in the international form: the same caller all the same.
    await ingest(
        pool,
        prior_calls("+62" + number[1:], count=2, hours_ago=2, verdict=Verdict.PRANK, language="en")
        + prior_calls(number, count=1, hours_ago=24 * 3, verdict=Verdict.SILENT),
    )
    app = await start_app()
    seen = stasis_starts(app)
    call_id = await callers.call(number=number, digits="1", delay=1.5, hold=8)

    start = await start_of(seen, call_id, wait)
    assert start.channel.channelvars["SIAGA_REPEAT"] == "2"  # the 3-day-old call is not recent
    assert start.channel.channelvars["SIAGA_FLAGS"] == "prank_history,silent_history"
    assert start.channel.channelvars["SIAGA_LANG"] == "en"

    async def arrived():
        return await records.events(call_id, "call_arrived")

    (event,) = await wait(arrived, what="call_arrived")
    assert set(event["flags"]) == {"repeat", "prank_history", "silent_history"}

    async def english_menu():
        return [e for e in await records.events(call_id, "ivr_step") if e.get("language") == "en"]

    # The caller's last language is the one the IVR speaks (no 9 pressed).
    await wait(english_menu, what="the IVR to run in English")
    assert agi_server.screened >= 1


async def test_a_first_time_caller_is_screened_without_a_variable_to_set(
    start_app, agi_server, callers, wait, monkeypatch
):
    sets: list[str] = []
    original = AgiSession.set_variable

    async def spy(session: AgiSession, name: str, value: str) -> None:
        sets.append(name)
        await original(session, name, value)

    monkeypatch.setattr(AgiSession, "set_variable", spy)
    app = await start_app()
    seen = stasis_starts(app)
    call_id = await callers.call(number=fresh_number(), hold=5)

    start = await start_of(seen, call_id, wait)
    assert agi_server.screened == 1
    assert sets == []  # nothing to say about a number never seen: no round trip
    assert not start.channel.channelvars.get("SIAGA_FLAGS")
    assert start.channel.channelvars.get("SIAGA_REPEAT") in ("", "0", None)


async def test_blocked_caller_is_warned_and_still_reaches_an_operator(
    start_app, agi_server, callers, pool, records
):
    number = fresh_number()
    await block(pool, number, hours=24, reason="prank calls", set_by="sup1", now=datetime.now(UTC))
    ops = simulated_operators(1, "Local/talk-3@siaga-test")
    await start_app(operators=ops)
    call_id = await callers.call(number="+62" + number[1:], hold=30)

    row = await records.final(call_id, timeout=40)
    assert "blocked" in row["flags"]
    assert row["category"] == "screened"
    assert row["priority"] == 9  # the lowest: behind every other caller
    assert row["operator_id"] == "sim1"
    assert row["outcome"] == "answered"


async def test_prank_verdicts_block_automatically_when_enabled(
    start_app, agi_server, callers, pool, wait
):
    agi_server.settings = ScreeningSettings(auto_block_pranks=2, block_hours=6)
    number = fresh_number()
    await ingest(pool, prior_calls(number, count=2, hours_ago=1, verdict=Verdict.PRANK))
    app = await start_app()
    seen = stasis_starts(app)
    call_id = await callers.call(number=number, hold=5)

    start = await start_of(seen, call_id, wait)
    assert "blocked" in start.channel.channelvars["SIAGA_FLAGS"].split(",")

    async def auto_block():
        return [
            b
            for b in await list_blocks(pool, datetime.now(UTC), number=number)
            if b.set_by == "auto"
        ]

    (made,) = await wait(auto_block, what="the automatic block to be recorded")
    assert made.expires_at is not None
    assert timedelta(hours=5.9) < made.expires_at - made.set_at <= timedelta(hours=6)


@contextlib.asynccontextmanager
async def hung_agi_server(port: int) -> AsyncIterator[None]:
    """Accepts AGI connections and never answers (a server whose event loop is stuck)."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", port, reuse_address=True)
    try:
        yield
    finally:
        server.close()
        for writer in writers:
            writer.close()  # lets Asterisk's stuck screening legs go


@pytest.mark.parametrize("failure", ["down", "hung"])
async def test_calls_reach_stasis_within_a_second_when_screening_fails(
    failure, start_app, stack_config, callers, wait
):
    app = await start_app()
    seen = stasis_starts(app)
    number = fresh_number()
    async with contextlib.AsyncExitStack() as stack:
        if failure == "hung":
            await stack.enter_async_context(hung_agi_server(stack_config.agi.port))
        call_id = await callers.call(number=number, hold=5)
        start = await start_of(seen, call_id, wait)

    # Both times are Asterisk's own: channel creation and entry into Stasis.
    assert start.timestamp is not None and start.channel.creationtime is not None
    delay = (start.timestamp - start.channel.creationtime).total_seconds()
    assert delay < 1.0, f"Stasis reached {delay:.3f} s after the call arrived"
    assert not start.channel.channelvars.get("SIAGA_FLAGS")  # unscreened, not stuck
    assert call_id in app.calls


async def test_slow_database_leaves_the_call_unscreened_not_late(
    start_app, agi_server, callers, pool, wait
):
    number = fresh_number()
    await ingest(pool, prior_calls(number, count=1, hours_ago=1, verdict=Verdict.PRANK))
    agi_server.settings = ScreeningSettings(budget_seconds=0.0001)  # no lookup is that fast
    app = await start_app()
    seen = stasis_starts(app)
    call_id = await callers.call(number=number, hold=5)

    start = await start_of(seen, call_id, wait)
    assert not start.channel.channelvars.get("SIAGA_FLAGS")
    assert agi_server.unscreened == 1 and agi_server.screened == 0


async def test_a_screening_costs_one_statement_not_two(pool):
    # asyncpg's default release resets the session (RESET ALL, UNLISTEN...): one more round
    # trip to PostgreSQL for every call to 112.
    seen: list[str] = []
    async with pool.acquire() as connection:
        connection.add_query_logger(lambda query: seen.append(query.query))
        await caller_facts(connection, fresh_number(), datetime.now(UTC), ScreeningSettings())
    assert len(seen) == 1, seen
