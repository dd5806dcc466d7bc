"""Asterisk's own record of each call (CEL, db/cel.py) agrees with the app's records, on the
real stack with real SIP callers and phones: the app's path and the dialplan fallback's."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from agi.fallback import operators_by_interface
from ari_app.call import CallState
from db.cel import asterisk_calls, parse_lines
from db.events import HangupBy
from testbed.sipp import Sipp, SippPhone, caller_scenario

pytestmark = pytest.mark.integration

SECOND = timedelta(seconds=1)


def number() -> str:
    return f"08{uuid.uuid4().int % 10**10:010d}"


def read_record(asterisk, config):
    path = asterisk.outside(asterisk.layout.cel_file)
    lines = path.read_text(encoding="utf-8").splitlines()
    return asterisk_calls(parse_lines(lines), config.asterisk.app, operators_by_interface(config))


async def registered_phone(stack_config, app, wait):
    operator = stack_config.operators[0]
    phone = SippPhone(operator.sip_user, operator.sip_password, stack_config.asterisk.sip_port)
    await phone.start()
    if app is not None:

        async def registered():
            return app.acd_core.snapshot().operators[0].registered

        await wait(registered, what="1001's registration to reach the ACD")
    return operator, phone


async def test_a_call_the_app_connects_is_in_asterisks_record_as_in_ours(
    start_app, stack_config, asterisk, records, wait
):
    app = await start_app()
    operator, phone = await registered_phone(stack_config, app, wait)
    caller_number = number()
    caller = Sipp(
        caller_scenario(caller_id=caller_number, digits="1", delay_ms=800, hold_ms=4000),
        stack_config.asterisk.sip_port,
    )
    await caller.start()
    try:

        async def connected():
            return [a for a in app.calls.values() if a.machine.state is CallState.CONNECTED]

        actor = (await wait(connected, what="the caller to reach 1001"))[0]
        await caller.wait(timeout=30)
    finally:
        await caller.stop()
        await phone.unregister()
        await phone.stop()
    row = await records.final(actor.call_id)

    async def ended_in_record():
        return read_record(asterisk, stack_config).get(actor.call_id, None)

    seen = await wait(ended_in_record, what="the call in Asterisk's record")
    seen = read_record(asterisk, stack_config)[actor.call_id]
    assert seen.caller_number == caller_number
    assert seen.operator_id == operator.id
    assert not seen.fallback
    assert seen.hangup_by is HangupBy.CALLER
    assert abs(seen.arrived_at - row["arrived_at"]) < SECOND
    assert abs(seen.connected_at - row["connected_at"]) < SECOND
    assert abs(seen.ended_at - row["ended_at"]) < SECOND


async def test_a_fallback_call_is_in_asterisks_record_with_its_operator(
    asterisk, stack_config, wait
):
    # No app: the dialplan's fallback queue rings the registered phone, which answers.
    operator, phone = await registered_phone(stack_config, None, wait)
    await asyncio.sleep(1)
    caller_number = number()
    caller = Sipp(
        caller_scenario(caller_id=caller_number, digits="", delay_ms=0, hold_ms=4000),
        stack_config.asterisk.sip_port,
    )
    await caller.start()
    try:
        await caller.wait(timeout=40)
    finally:
        await caller.stop()
        await phone.unregister()
        await phone.stop()

    async def in_record():
        calls = read_record(asterisk, stack_config)
        found = [c for c in calls.values() if c.caller_number == caller_number and c.ended_at]
        return found

    (seen,) = await wait(in_record, what="the fallback call in Asterisk's record")
    assert seen.fallback
    assert seen.operator_id == operator.id
    assert seen.connected_at is not None and seen.answered_at is not None
    assert seen.arrived_at <= seen.answered_at <= seen.connected_at < seen.ended_at
    assert seen.hangup_by is HangupBy.CALLER
