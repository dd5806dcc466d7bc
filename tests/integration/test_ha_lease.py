"""One active app and a standby ([ha], docs/ha.md), on the production shape: two `siaga run`
processes against the test session's Asterisk and PostgreSQL, the shipped operator 1001 on a
SIPp phone. The active is SIGKILLed under calls; the active's lock session is terminated (its
database link lost). Asterisk's own record (the CEL file, db/cel.py) is the judge of who rang
whom and when."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from db.cel import OPERATOR_LEG, parse_lines
from stack.lease import STOP_MARGIN_SECONDS
from stack.run import LEASE_LOST_EXIT
from testbed.sipp import Sipp, SippPhone, answer_scenario, caller_scenario

pytestmark = pytest.mark.integration

LEASE = 1.5
HA = f'role = "auto"\nlease_seconds = {LEASE}'
TAKEOVER_LIMIT = 5.0  # the "the standby is active <= 5 s later"


def number() -> str:
    return f"08{uuid.uuid4().int % 10**10:010d}"


@pytest.fixture
async def phone(stack_config):
    """Operator 1001 on a SIPp phone that rings a moment, then answers every call."""
    operator = stack_config.operators[0]
    phone = SippPhone(
        operator.sip_user,
        operator.sip_password,
        stack_config.asterisk.sip_port,
        answer=answer_scenario(ring_ms=300),
    )
    await phone.start()
    yield phone
    await phone.unregister()
    await phone.stop()


def caller(stack_config, caller_number: str, hold_ms: int) -> Sipp:
    return Sipp(
        caller_scenario(caller_id=caller_number, digits="1", delay_ms=600, hold_ms=hold_ms),
        stack_config.asterisk.sip_port,
    )


async def row_of(db, caller_number):
    return await db.fetchrow("SELECT * FROM calls WHERE caller_number = $1", caller_number)


async def connected_row(db, wait, caller_number, timeout=20.0):
    async def connected():
        row = await row_of(db, caller_number)
        return row if row is not None and row["connected_at"] is not None else None

    return await wait(connected, timeout=timeout, what=f"{caller_number} to reach 1001")


async def active_and_standby(siaga_run):
    active = siaga_run(phones=True, ha=HA)
    await active.start()
    standby = siaga_run(phones=True, ha=HA)
    await standby.start(until="standby")
    assert await active.status() == "ok"
    return active, standby


async def wait_active(run, wait, timeout: float = 15.0) -> float:
    """Seconds until `run`'s /healthz says it serves."""
    started = time.monotonic()

    async def serving():
        return await run.status() in ("ok", "degraded")

    await wait(serving, timeout=timeout, poll=0.05, what="the standby to be active")
    return time.monotonic() - started


def operator_legs(asterisk, since: datetime) -> list[tuple[datetime, datetime | None, str]]:
    """Every operator leg Asterisk started since `since`: (start, end, operator), from CEL."""
    lines = asterisk.outside(asterisk.layout.cel_file).read_text(encoding="utf-8").splitlines()
    starts: dict[str, datetime] = {}
    ends: dict[str, datetime] = {}
    operators: dict[str, str] = {}
    for event in parse_lines(lines):
        if event.at < since:
            continue
        if event.kind == "CHAN_START":
            starts[event.unique_id] = event.at
        elif event.kind == "HANGUP":
            ends[event.unique_id] = event.at
        elif event.kind == "APP_START" and event.app == "Stasis":
            args = event.app_data.split(",")
            if len(args) >= 4 and args[1] == OPERATOR_LEG:
                operators[event.unique_id] = args[3]
    legs = [(starts[leg], ends.get(leg), op) for leg, op in operators.items() if leg in starts]
    return sorted(legs)


async def test_the_standby_takes_over_a_killed_active_with_calls_bridged_and_callers_in_line(
    siaga_run, phone, stack_config, ari, db, wait
):
    active, standby = await active_and_standby(siaga_run)
    talking, first, second = number(), number(), number()
    calls = [
        caller(stack_config, talking, hold_ms=12000),
        caller(stack_config, first, hold_ms=20000),
        caller(stack_config, second, hold_ms=40000),
    ]
    try:
        await calls[0].start()
        conversation = await connected_row(db, wait, talking)
        for waiting in calls[1:]:
            await waiting.start()
            await asyncio.sleep(0.5)  # they arrive in this order
        await asyncio.sleep(1.5)  # both chose their category and wait in line

        await active.kill()
        took = await wait_active(standby, wait)
        print(f"standby active {took:.2f} s after the kill")
        assert took <= TAKEOVER_LIMIT

        # The conversation stayed bridged: the caller and 1001's leg in the call's bridge.
        call_id = conversation["call_id"]
        [bridge] = [b for b in await ari.list_bridges() if b.id == f"{call_id}-bridge"]
        assert call_id in bridge.channels and len(bridge.channels) == 2, bridge

        # The waiting callers are offered in their order once 1001 is free again.
        await calls[0].wait(timeout=20)
        ended = await wait(
            lambda: _closed(db, talking), timeout=20, what="the conversation's row to be closed"
        )
        assert ended["outcome"] == "answered"
        assert ended["operator_id"] == "1001"
        assert ended["talk_seconds"] >= 8  # one conversation, across the takeover
        kinds = await db.fetch(
            "SELECT kind, count(*) AS n FROM call_events WHERE call_id = $1 GROUP BY kind",
            call_id,
        )
        counts = {r["kind"]: r["n"] for r in kinds}
        assert counts["call_arrived"] == 1 and counts["call_ended"] == 1, counts
        one = await connected_row(db, wait, first)
        two = await connected_row(db, wait, second, timeout=30)
        assert one["arrived_at"] < two["arrived_at"]
        assert one["connected_at"] < two["connected_at"]
        assert one["operator_id"] == two["operator_id"] == "1001"
    finally:
        for call in calls:
            await call.stop()
        await standby.stop()


async def _closed(db, caller_number):
    row = await row_of(db, caller_number)
    return row if row is not None and row["ended_at"] is not None else None


async def test_an_active_that_loses_its_lock_session_stops_before_the_standby_offers(
    siaga_run, phone, stack_config, asterisk, db, wait
):
    since = datetime.now(UTC)
    t0 = time.monotonic()
    active, standby = await active_and_standby(siaga_run)
    print(f"both up in {time.monotonic() - t0:.2f} s")
    # A steady stream of short calls: 1001 is offered one after another, across the handover.
    stream = Sipp(
        caller_scenario(caller_id=number(), digits="1", delay_ms=300, hold_ms=1500),
        stack_config.asterisk.sip_port,
        calls=6,
        extra=("-rp", "2000"),  # one call every 2 s
    )
    try:
        await stream.start()
        await asyncio.sleep(5)
        terminated_at = datetime.now(UTC)
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'siaga-lease' AND pid IN"
            " (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"
        )
        assert killed == 1
        assert active.process is not None
        exiting = time.monotonic()
        code = await asyncio.wait_for(active.process.wait(), 15)
        print(f"the old active exited {time.monotonic() - exiting:.2f} s after the termination")
        active.process = None
        assert code == LEASE_LOST_EXIT
        took = await wait_active(standby, wait)
        print(f"standby active {took:.2f} s after the old active exited")
        t1 = time.monotonic()
        await stream.wait(timeout=40)
        print(f"stream done {time.monotonic() - t1:.2f} s later")
    finally:
        await stream.stop()
        await standby.stop()

    legs = operator_legs(asterisk, since)
    before = [leg for leg in legs if leg[0] < terminated_at]
    after = [leg for leg in legs if leg[0] >= terminated_at]
    assert before and after, legs  # both apps offered calls
    print(f"no operator rung for {(after[0][0] - terminated_at).total_seconds():.2f} s")
    # The new active got the lock after it was let go, and waited out the lease and the
    # margin before acting: nobody rang 1001 in the handover.
    assert after[0][0] - terminated_at >= timedelta(seconds=LEASE + STOP_MARGIN_SECONDS), legs
    # Never two apps offering at once: 1001's legs never overlap.
    for (_, end, _), (start, _, _) in pairwise(legs):
        assert end is not None and end <= start, legs
