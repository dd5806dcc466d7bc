"""Not one call unrecorded, on the production shape (`siaga run` in a process of its own,
`embedded = false`, the shipped operators on SIP phones): the app is SIGKILLed at the worst
moments, and after the restart every call is in the records as Asterisk saw it (db/cel.py),
no operator is left in a silent call, and the next call reaches them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from test_asterisk_record import read_record

from ari_app.ari.errors import AriNotFound
from db.events import FALLBACK_FLAG
from db.reconcile import RECONCILED_FLAG
from testbed.sipp import Sipp, SippPhone, caller_scenario

pytestmark = pytest.mark.integration

SECOND = timedelta(seconds=1)


def number() -> str:
    return f"08{uuid.uuid4().int % 10**10:010d}"


@pytest.fixture
async def phone(stack_config):
    """Operator 1001 (the shipped siaga.toml's) on a SIPp phone that answers every call."""
    operator = stack_config.operators[0]
    phone = SippPhone(operator.sip_user, operator.sip_password, stack_config.asterisk.sip_port)
    await phone.start()
    yield phone
    await phone.unregister()
    await phone.stop()


def caller(stack_config, caller_number, *, digits="1", hold_ms=4000):
    return Sipp(
        caller_scenario(caller_id=caller_number, digits=digits, delay_ms=600, hold_ms=hold_ms),
        stack_config.asterisk.sip_port,
    )


async def row_of(db, caller_number):
    return await db.fetchrow("SELECT * FROM calls WHERE caller_number = $1", caller_number)


async def phone_channels(ari, stack_config) -> list[str]:
    endpoint = await ari.get_endpoint("PJSIP", stack_config.operators[0].sip_user)
    return list(endpoint.channel_ids)


async def closed_row(db, wait, caller_number, *, timeout=30.0):
    async def closed():
        row = await row_of(db, caller_number)
        return row if row is not None and row["ended_at"] is not None else None

    row = await wait(closed, timeout=timeout, what=f"{caller_number}'s row to be closed")
    return row


def assert_as_asterisk_saw_it(row, asterisk, stack_config):
    seen = read_record(asterisk, stack_config)[row["call_id"]]
    assert seen.ended_at is not None
    assert abs(row["arrived_at"] - seen.arrived_at) < SECOND
    assert abs(row["connected_at"] - seen.connected_at) < SECOND
    assert abs(row["ended_at"] - seen.ended_at) < SECOND
    assert row["outcome"] == "answered"
    assert row["operator_id"] == stack_config.operators[0].id
    assert row["hangup_by"] == seen.hangup_by.value
    assert row["talk_seconds"] > 2
    return seen


async def next_call_reaches_the_operator(stack_config, db, wait):
    """A new 112 call rings the operator's phone and is answered by them."""
    again = number()
    call = caller(stack_config, again, hold_ms=1500)
    await call.start()
    try:
        await call.wait(timeout=40)
    finally:
        await call.stop()
    row = await closed_row(db, wait, again)
    assert row["operator_id"] == stack_config.operators[0].id
    assert row["outcome"] == "answered"


async def test_a_sigkill_just_after_a_call_ends_leaves_it_closed_and_true(
    siaga_run, phone, stack_config, asterisk, ari, db, wait
):
    run = siaga_run(phones=True)
    await run.start()
    caller_number = number()
    call = caller(stack_config, caller_number)
    await call.start()

    async def connected():
        row = await row_of(db, caller_number)
        return row if row is not None and row["connected_at"] is not None else None

    call_id = (await wait(connected, what="the caller to reach 1001"))["call_id"]

    async def caller_gone():
        try:
            await ari.get_channel(call_id)
        except AriNotFound:
            return True
        return False

    # The worst moment: the caller's channel is gone, the app is taking the call down.
    await wait(caller_gone, poll=0.01, timeout=20, what="the caller to hang up")
    await run.kill()
    await call.wait(timeout=10)

    await run.start()
    row = await closed_row(db, wait, caller_number)
    assert_as_asterisk_saw_it(row, asterisk, stack_config)
    assert row["hangup_by"] == "caller"
    kinds = await db.fetch(
        "SELECT kind, count(*) AS n FROM call_events WHERE call_id = $1 GROUP BY kind", call_id
    )
    counts = {r["kind"]: r["n"] for r in kinds}
    assert counts["call_arrived"] == 1 and counts["call_ended"] == 1, counts

    async def phone_free():
        return not await phone_channels(ari, stack_config)

    await wait(phone_free, timeout=5, what="no leg left on 1001's phone")
    await next_call_reaches_the_operator(stack_config, db, wait)


async def test_a_caller_who_hangs_up_while_the_app_is_dead_is_closed_and_frees_the_operator(
    siaga_run, phone, stack_config, asterisk, ari, db, wait
):
    run = siaga_run(phones=True)
    await run.start()
    caller_number = number()
    call = caller(stack_config, caller_number, hold_ms=5000)
    await call.start()

    async def connected():
        row = await row_of(db, caller_number)
        return row if row is not None and row["connected_at"] is not None else None

    await wait(connected, what="the caller to reach 1001")
    await run.kill()  # mid-conversation: the caller hangs up while nobody listens
    await call.wait(timeout=20)
    await asyncio.sleep(1)
    assert await phone_channels(ari, stack_config), "the operator's leg outlived its call"
    row = await row_of(db, caller_number)
    assert row["ended_at"] is None, "nobody could have recorded the end"

    await run.start()
    row = await closed_row(db, wait, caller_number)
    assert_as_asterisk_saw_it(row, asterisk, stack_config)
    assert row["hangup_by"] == "caller"
    assert RECONCILED_FLAG in row["flags"]
    assert not await phone_channels(ari, stack_config)
    await next_call_reaches_the_operator(stack_config, db, wait)


async def test_a_fallback_call_taken_while_the_app_was_dead_is_in_calls_and_the_report(
    siaga_run, phone, stack_config, asterisk, db, wait, tmp_path
):
    run = siaga_run(phones=True)
    await run.start()
    await run.kill()
    caller_number = number()
    call = caller(stack_config, caller_number, digits="", hold_ms=3000)
    await call.start()
    await call.wait(timeout=40)  # the fallback queue rang 1001's phone, which answered
    assert await row_of(db, caller_number) is None, "the app was dead: nobody wrote it yet"

    await run.start()
    row = await closed_row(db, wait, caller_number)
    seen = assert_as_asterisk_saw_it(row, asterisk, stack_config)
    assert seen.fallback
    assert FALLBACK_FLAG in row["flags"]

    async def siaga(*args):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "stack.cli",
            "--config",
            str(run.config),
            *args,
            env={**os.environ, **run.env},
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        assert process.returncode == 0, args
        return json.loads(out)

    listed = await siaga("calls", "--number", caller_number, "--json")
    (entry,) = listed
    assert entry["call_id"] == row["call_id"]
    assert FALLBACK_FLAG in entry["flags"] and entry["operator_id"] == "1001"
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    report = await siaga("report", "--day", today, "--tz", "UTC", "--json")
    routes = {r["route"]: r for r in report["by_route"]}
    assert routes[FALLBACK_FLAG]["answered"] >= 1
