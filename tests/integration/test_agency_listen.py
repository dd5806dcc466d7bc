"""An operator adds an agency to a call and may leave once it answers; a supervisor listens in
and really hears the conversation."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest

from ari_app.call import CallState
from ari_app.call.states import ListenMode
from siaga.config import AgencyConfig, OperatorConfig
from testbed.sandbox import simulated_operator
from testbed.sipp import Sipp, SippPhone, answer_scenario, caller_scenario

pytestmark = pytest.mark.integration


def operator(name: str, dial: str) -> OperatorConfig:
    return simulated_operator(name, dial, skills=("medical", "general"))


async def connected_call(app, wait, timeout=20.0):
    async def found():
        return [a for a in app.calls.values() if a.machine.state is CallState.CONNECTED]

    return (await wait(found, timeout=timeout, what="a connected call"))[0]


async def test_agency_joins_and_operator_leaves(
    start_app, stack_config, callers, ari, records, wait
):
    agency_phone = Sipp(answer_scenario(ring_ms=300), stack_config.asterisk.sip_port, server=True)
    await agency_phone.start()
    police = AgencyConfig(
        code="police",
        name="Polisi 110",
        digit="1",
        dial=f"PJSIP/trunk/sip:110@127.0.0.1:{agency_phone.local_port}",
    )
    app = await start_app(
        operators=(operator("op", "Local/operator@siaga-test"),), agencies=(police,)
    )
    try:
        call_id = await callers.call(number="0812555111", digits="1", delay=0.3, hold=60)
        actor = await connected_call(app, wait)
        assert actor.call_id == call_id
        app.add_agency(call_id, "police")

        async def agency_in_bridge():
            bridge = await ari.get_bridge(actor.bridge_id)
            return "police" in actor.machine.agencies and len(bridge.channels) == 3

        await wait(agency_in_bridge, what="the agency to join the bridge")
        operator_leg = next(iter(actor.machine.legs))
        await ari.hangup(operator_leg)  # the operator leaves; caller and agency go on

        async def operator_gone():
            bridge = await ari.get_bridge(actor.bridge_id)
            return not actor.machine.operator_present and len(bridge.channels) == 2

        await wait(operator_gone, what="the operator to leave the bridge")
        assert actor.machine.state is CallState.CONNECTED
        await ari.hangup(call_id)
        row = await records.final(call_id)
        assert row["outcome"] == "answered"
        assert row["agencies"] == ["police"]
        kinds = [e["kind"] for e in await records.events(call_id)]
        assert (
            kinds.index("agency_added")
            < kinds.index("call_transferred")
            < kinds.index("call_ended")
        )
        assert "110@" in agency_phone.messages()  # the agency really received the INVITE
    finally:
        await agency_phone.stop()


async def test_operator_adds_agency_with_star_1_from_the_phone(
    start_app, stack_config, callers, records, wait
):
    me = stack_config.operators[0]
    phone = SippPhone(
        me.sip_user,
        me.sip_password,
        stack_config.asterisk.sip_port,
        answer=answer_scenario(ring_ms=100, digits="*1", digits_after_ms=1500),
    )
    await phone.start()
    fire = AgencyConfig(code="fire", name="Damkar 113", digit="1", dial="Local/operator@siaga-test")
    app = await start_app(agencies=(fire,))
    try:

        async def registered():
            return any(o.registered for o in app.snapshot().operators)

        await wait(registered, what="1001 to register")
        call_id = await callers.call(number="0812555222", digits="1", delay=0.3, hold=60)

        async def joined():
            # The record is written once the agency's leg is in the bridge.
            return await records.events(call_id, "agency_added")

        events = await wait(joined, timeout=20, what="*1 on the operator's phone to add the agency")
        assert [e["agency"] for e in events] == ["fire"]
        assert "fire" in app.calls[call_id].machine.agencies
    finally:
        await phone.unregister()
        await phone.stop()


async def test_supervisor_listening_hears_the_conversation(
    start_app, stack_config, asterisk, ari, wait
):
    app = await start_app(operators=(operator("op", "Local/operator@siaga-test"),))
    # A SIP caller who speaks (a recorded voice) after pressing 1.
    caller = Sipp(
        caller_scenario(
            caller_id="0812555333",
            digits="1",
            delay_ms=500,
            play_voice=True,
            voice_after_ms=2500,
            hold_ms=15000,
        ),
        stack_config.asterisk.sip_port,
    )
    await caller.start()
    try:
        actor = await connected_call(app, wait)
        app.listen(actor.call_id, "Local/operator@siaga-test", ListenMode.LISTEN)

        async def listening():
            sides = [leg for leg in actor.machine.side.values() if leg.bridge_id]
            if not sides:
                return None
            try:
                bridge = await ari.get_bridge(sides[0].bridge_id)
            except Exception:
                return None
            return bridge if len(bridge.channels) == 2 else None

        bridge = await wait(listening, what="the supervisor and the snoop in one bridge")
        name = f"listen-{uuid.uuid4().hex[:8]}"
        await ari.record_bridge(bridge.id, name, format="wav")
        await asyncio.sleep(4)
        await ari.stop_recording(name)
        await asyncio.sleep(0.5)
        wav = asterisk.recordings_dir / f"{name}.wav"
        stats = await asyncio.to_thread(
            subprocess.run, ["sox", str(wav), "-n", "stat"], capture_output=True, text=True
        )
        rms = float(
            next(
                line.split(":")[1]
                for line in stats.stderr.splitlines()
                if line.startswith("RMS     amplitude")
            )
        )
        assert rms > 0.002, f"the supervisor heard silence (RMS {rms})"  # silence is ~0
    finally:
        await caller.stop()


async def test_callback_rings_the_operator_then_the_caller(
    start_app, stack_config, ari, records, wait, callers
):
    import dataclasses

    # First a caller who gave up waiting: nobody was there to take the call.
    app = await start_app()
    gave_up = await callers.call(number="0812555444", digits="1", delay=0.3, hold=3)
    assert (await records.final(gave_up))["outcome"] == "abandoned"
    await app.stop()

    phone = Sipp(answer_scenario(ring_ms=300), stack_config.asterisk.sip_port, server=True)
    await phone.start()
    asterisk_config = dataclasses.replace(
        stack_config.asterisk,
        callback_dial=f"PJSIP/trunk/sip:{{number}}@127.0.0.1:{phone.local_port}",
    )
    app = await start_app(
        operators=(operator("op", "Local/operator@siaga-test"),), asterisk=asterisk_config
    )
    try:
        app.callback(gave_up, "0812555444", "op")

        async def talking():
            try:
                bridge = await ari.get_bridge(f"cb-{gave_up}-bridge")
            except Exception:
                return False
            return len(bridge.channels) == 2

        await wait(talking, what="operator and caller to meet in the callback bridge")
        assert "sip:0812555444@" in phone.messages()
        await ari.hangup(f"cb-{gave_up}-caller")  # the caller hangs up after talking

        async def done():
            return gave_up not in app.callbacks

        await wait(done, what="the callback to finish")
        await records.journal.wait_replayed(timeout=10)
        row = await records.db.fetchrow("SELECT * FROM callbacks WHERE call_id=$1", gave_up)
        assert (row["status"], row["outcome"], row["owner"]) == ("done", "answered", "op")
        assert app.snapshot().operators[0].state.value == "available"
    finally:
        await phone.stop()
