"""The app killed between the caller's hang-up and its own: the operator's phone must not stay in a
silent call. A new app hangs up every leg whose call is gone, at once, and rings that operator
for the next call (ari_app/call/adoption.py: plan_resync)."""

from __future__ import annotations

import asyncio

import pytest

from ari_app.ari.errors import AriNotFound
from ari_app.ari.models import ChannelState
from ari_app.call import CallState
from queues.states import OperatorState
from testbed.sipp import SippPhone

pytestmark = pytest.mark.integration

HUNG_UP_WITHIN = 2.0


async def test_the_operator_leg_of_a_call_gone_while_the_app_was_dead_is_hung_up(
    start_app, callers, ari, stack_config, wait
):
    operator = stack_config.operators[0]
    phone = SippPhone(operator.sip_user, operator.sip_password, stack_config.asterisk.sip_port)
    await phone.start()
    try:
        first = await start_app()

        async def registered(app):
            return app.acd_core.snapshot().operators[0].registered

        await wait(lambda: registered(first), what="the phone's registration to reach the ACD")
        call_id = await callers.call(number="0814000001", digits="1", delay=0.2, hold=0)

        async def talking():
            actor = first.calls.get(call_id)
            return actor is not None and actor.machine.state is CallState.CONNECTED

        await wait(talking, what="the operator to answer")
        assert first.calls[call_id].machine.operator_id == operator.id
        (leg,) = first.calls[call_id].machine.legs

        await first.stop()  # killed: nothing hung up, nothing more read
        await ari.hangup(call_id)  # the caller hangs up while no app is there
        await asyncio.sleep(0.5)
        stranded = await ari.get_channel(leg)
        assert stranded.state is ChannelState.UP, "the operator is left in a silent call"
        bridge = f"{call_id}-bridge"
        assert bridge in {b.id for b in await ari.list_bridges()}
        technology, resource = operator.dial_string.split("/", 1)
        endpoint = await ari.get_endpoint(technology, resource)
        assert leg in endpoint.channel_ids  # in use: the fallback queue would not ring them

        second = await start_app()

        async def leg_gone():
            try:
                await ari.get_channel(leg)
            except AriNotFound:
                return True
            return False

        await wait(leg_gone, timeout=HUNG_UP_WITHIN, what="the stranded operator leg's hang-up")

        async def endpoint_free():
            # Asterisk drops a channel from its endpoint's list a moment after the channel
            # itself is gone (a stasis message of its own).
            return (await ari.get_endpoint(technology, resource)).channel_ids == ()

        # Free for the fallback queue (ringinuse = no) too.
        await wait(endpoint_free, timeout=HUNG_UP_WITHIN, what="the operator's endpoint free")
        assert bridge not in {b.id for b in await ari.list_bridges()}, "nobody else destroys it"
        await wait(lambda: registered(second), what="the phone's registration in the new app")
        assert second.acd_core.operator_state(operator.id) is OperatorState.AVAILABLE
        assert second.calls == {}

        after = await callers.call(number="0814000002", digits="1", delay=0.2, hold=0)

        async def answered_by_the_operator():
            actor = second.calls.get(after)
            return (
                actor is not None
                and actor.machine.state is CallState.CONNECTED
                and actor.machine.operator_id == operator.id
            )

        await wait(answered_by_the_operator, timeout=15, what="the next call to reach the phone")
    finally:
        await phone.unregister()
        await phone.stop()
