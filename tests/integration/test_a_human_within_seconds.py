"""A human within seconds, on the real stack with SIP phones and SIP callers (SIPp): the menu
never keeps a caller from a free operator (docs/architecture.md §2.8), and a free operator
with the category's skill at any level takes an emergency call at once."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from testbed.sipp import Sipp, SippPhone, caller_scenario

pytestmark = pytest.mark.integration

# The centre's promise, from the call's arrival at Asterisk to an operator's phone ringing.
SILENT_CALLER_RINGS_WITHIN = 8.0
# From the caller's digit to an operator's phone ringing.
DIGIT_RINGS_WITHIN = 2.0


def number() -> str:
    return f"08{uuid.uuid4().int % 10**10:010d}"


async def registered_phones(start_app, stack_config, wait, count: int):
    """The first `count` operators' SIPp phones, registered, and the app that sees them."""
    phones = []
    for operator in stack_config.operators[:count]:
        phone = SippPhone(operator.sip_user, operator.sip_password, stack_config.asterisk.sip_port)
        await phone.start()
        phones.append(phone)
    app = await start_app()

    async def registered():
        return all(op.registered for op in app.acd_core.snapshot().operators[:count])

    await wait(registered, what="the phones' registrations to reach the ACD")
    return app, phones


async def stop_all(*parties) -> None:
    for party in parties:
        if isinstance(party, SippPhone):
            await party.unregister()
        await party.stop()


async def the_call(records, wait, caller_number: str) -> asyncpg.Record:
    async def offered():
        await records.journal.wait_replayed(timeout=10)
        row = await records.db.fetchrow(
            "SELECT * FROM calls WHERE caller_number = $1", caller_number
        )
        return row if row is not None and row["offered_at"] is not None else None

    row: asyncpg.Record = await wait(offered, timeout=30, what=f"{caller_number} to ring")
    return row


async def test_a_caller_who_presses_nothing_rings_a_free_operator_within_8_s(
    start_app, stack_config, records, wait
):
    _, phones = await registered_phones(start_app, stack_config, wait, 1)
    caller_number = number()
    caller = Sipp(
        caller_scenario(caller_id=caller_number, digits="", hold_ms=12000),
        stack_config.asterisk.sip_port,
    )
    await caller.start()
    try:
        row = await the_call(records, wait, caller_number)
        await caller.wait(timeout=30)
    finally:
        await stop_all(caller, *phones)

    to_ring = (row["offered_at"] - row["arrived_at"]).total_seconds()
    assert to_ring <= SILENT_CALLER_RINGS_WITHIN, f"{to_ring:.2f} s from arrival to the ring"
    final = await records.final(row["call_id"])
    assert final["outcome"] == "answered" and final["operator_id"] == "1001"
    assert final["category"] == "general"
    assert "unclassified" in final["flags"]  # the operator sets the category from the desk


async def test_a_caller_who_presses_at_once_rings_within_2_s_of_the_digit(
    start_app, stack_config, records, wait
):
    _, phones = await registered_phones(start_app, stack_config, wait, 1)
    caller_number = number()
    # The caller presses 1 one second into the menu (barge-in), as a caller who knows 112 does.
    caller = Sipp(
        caller_scenario(caller_id=caller_number, digits="1", delay_ms=1000, hold_ms=6000),
        stack_config.asterisk.sip_port,
    )
    await caller.start()
    try:
        row = await the_call(records, wait, caller_number)
        await caller.wait(timeout=30)
    finally:
        await stop_all(caller, *phones)

    (step,) = await records.events(row["call_id"], "ivr_step")
    assert (step["input"], step["digit"]) == ("choice", "1")
    to_ring = (row["offered_at"] - step["at"]).total_seconds()
    assert to_ring <= DIGIT_RINGS_WITHIN, f"{to_ring:.2f} s from the digit to the ring"
    final = await records.final(row["call_id"])
    assert final["category"] == "medical" and final["operator_id"] == "1001"
    assert "unclassified" not in final["flags"]  # the choice was made in time and kept


async def test_a_free_secondary_operator_takes_a_medical_call_at_once(
    start_app, stack_config, records, wait
):
    # 1001 takes medical calls first (level 1); 1002 has medical at level 2.
    assert stack_config.operators[0].skills["medical"] < stack_config.operators[1].skills["medical"]
    app, phones = await registered_phones(start_app, stack_config, wait, 2)
    first, second = number(), number()
    busy = Sipp(
        caller_scenario(caller_id=first, digits="1", delay_ms=1000, hold_ms=15000),
        stack_config.asterisk.sip_port,
    )
    await busy.start()
    try:
        row = await the_call(records, wait, first)
        assert row["operator_id"] in (None, "1001")

        async def talking():
            state = app.acd_core.snapshot().operators[0].state
            return state.value == "on_call"

        await wait(talking, what="1001 to be on the first call")
        caller = Sipp(
            caller_scenario(caller_id=second, digits="1", delay_ms=1000, hold_ms=6000),
            stack_config.asterisk.sip_port,
        )
        await caller.start()
        try:
            row = await the_call(records, wait, second)
            await caller.wait(timeout=30)
        finally:
            await caller.stop()
        await busy.wait(timeout=30)
    finally:
        await stop_all(busy, *phones)

    final = await records.final(row["call_id"])
    assert final["category"] == "medical"
    assert final["operator_id"] == "1002", "the free level-2 operator took the medical call"
    waited = (row["offered_at"] - row["classified_at"]).total_seconds()
    assert waited < 1.0, f"the medical call waited {waited:.2f} s beside a free operator"
