"""Overflow to a partner centre on the real stack: a medical rule "no_operator" with nobody
logged in sends the caller to the partner (a SIPp on the trunk), who is rung and bridged with
the caller; a partner that does not answer puts the caller back into our queue at their place.
The records say overflow, the rule, the target and the outcome."""

from __future__ import annotations

import dataclasses

import pytest

from ari_app.ari.models import ChannelState
from ari_app.call import CallState
from queues.config import OverflowCondition, OverflowRule, OverflowTarget, TargetKind
from queues.states import CallPlace
from testbed.sipp import partner_centre, partner_dial

pytestmark = pytest.mark.integration


def no_operator_rule(dial: str) -> tuple[OverflowRule, ...]:
    target = OverflowTarget(TargetKind.NUMBER, dial)
    return (OverflowRule("medical", OverflowCondition.NO_OPERATOR, target),)


async def test_no_operator_sends_the_call_to_the_partner_who_answers(
    start_app, stack_config, callers, ari, records, wait
):
    partner = partner_centre(stack_config.asterisk.sip_port)
    await partner.start()
    try:
        dial = partner_dial(partner)
        app = await start_app(
            overflow=no_operator_rule(dial),
            acd=dataclasses.replace(stack_config.acd, login_on_start=False),
        )
        call_id = await callers.call(number="0812777001", digits="1", delay=0.3, hold=6)

        async def with_partner():
            actor = app.calls.get(call_id)
            if actor is None or actor.machine.state is not CallState.CONNECTED:
                return False
            bridge = await ari.get_bridge(actor.bridge_id)
            return len(bridge.channels) == 2  # the caller and the partner

        await wait(with_partner, timeout=20, what="the partner to join the caller")
        row = await records.final(call_id)
        assert "overflow" in row["flags"]
        assert row["agencies"] == [dial]
        assert row["hangup_by"] == "caller"
        (flag,) = await records.events(call_id, "flag_set")
        assert (flag["flag"], flag["rule"], flag["target"], flag["from_category"]) == (
            "overflow",
            "no_operator",
            f"number:{dial}",
            "medical",
        )
        (outcome,) = await records.events(call_id, "overflow_outcome")
        assert (outcome["partner"], outcome["outcome"], outcome["rule"]) == (
            dial,
            "answered",
            "no_operator",
        )
        assert "INVITE sip:112@" in partner.messages()  # the partner really was rung
    finally:
        await partner.stop()


async def test_a_busy_partner_puts_the_caller_back_in_line(
    start_app, stack_config, callers, ari, records, wait
):
    partner = partner_centre(stack_config.asterisk.sip_port, respond=486)
    await partner.start()
    try:
        dial = partner_dial(partner)
        app = await start_app(
            overflow=no_operator_rule(dial),
            acd=dataclasses.replace(stack_config.acd, login_on_start=False),
        )
        call_id = await callers.call(number="0812777002", digits="1", delay=0.3, hold=60)

        async def failed():
            return await records.events(call_id, "overflow_outcome")

        (outcome,) = await wait(failed, timeout=20, what="the partner's refusal on record")
        assert (outcome["partner"], outcome["outcome"]) == (dial, "failed")

        async def back_in_line():
            return app.acd_core.call_place(call_id) is CallPlace.WAITING

        await wait(back_in_line, timeout=10, what="the caller back in our queue")
        actor = app.calls[call_id]
        assert actor.machine.state is CallState.QUEUED
        assert (await ari.get_channel(call_id)).state is ChannelState.UP  # never hung up on
        await ari.hangup(call_id)
        row = await records.final(call_id)
        assert row["outcome"] == "abandoned"
        assert "overflow" in row["flags"] and row["agencies"] == []
    finally:
        await partner.stop()
