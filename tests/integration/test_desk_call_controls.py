"""Call controls of the desk on the real stack: a SIPp caller reaches operator A (a SIPp phone),
A conferences operator B (another SIPp phone) through the console's adapter, B answers and is
joined, A leaves; caller and B stay bridged, then B hangs up from the desk. The records in
PostgreSQL name B from the hand-over on, and the ACD put A to wrap-up and B on the call. On
the way B puts the caller on hold: the caller hears music and stays bridged and recorded. B's
desk (the picture /operator/events sends) shows the call while B is conferenced in beside A,
and asks B for their own disposition after the call."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from integration.conftest import WINDOW, recording_of

from ari_app.call import CallState
from ari_app.call.states import HandOffStatus, SideKind
from queues.states import OperatorState
from supervisor.console import Console, ConsoleSettings
from supervisor.live import AppCentre
from supervisor.views.desk import DeskFeed
from testbed.sandbox import simulated_operator
from testbed.sipp import Sipp, answer_scenario, caller_scenario

pytestmark = pytest.mark.integration


async def _true(value: bool) -> bool:
    return value


async def test_a_colleague_takes_the_call_over_and_hangs_up_from_the_desk(
    start_app, stack_config, stack_dsn, asterisk, ari, records, db, wait
):
    port = stack_config.asterisk.sip_port
    phones = [Sipp(answer_scenario(ring_ms=300), port, server=True) for _ in range(2)]
    for phone in phones:
        await phone.start()
    tag = uuid.uuid4().hex[:6]
    operators = tuple(
        simulated_operator(
            f"{name}-{tag}",
            f"PJSIP/trunk/sip:{name}@127.0.0.1:{phone.local_port}",
            skills=("medical", "general"),
        )
        for name, phone in zip(("a", "b"), phones, strict=True)
    )
    app = await start_app(operators=operators)
    centre = AppCentre(app)
    # Development mode: the session's shared database may hold the development users an
    # earlier test's console made; only the desk feed is used here.
    console = Console(ConsoleSettings(dsn=stack_dsn, dev_mode=True), app.config, centre)
    await console.start()

    async def desk(operator_id: str):
        """What the operator's desk stream sends now (a new feed: nothing cached)."""
        return await DeskFeed(console, operator_id, "en").picture()

    caller = Sipp(
        caller_scenario(caller_id="0812555777", digits="1", delay_ms=500, hold_ms=60000), port
    )
    await caller.start()
    try:

        async def connected():
            found = [a for a in app.calls.values() if a.machine.state is CallState.CONNECTED]
            return found[0] if found else None

        actor = await wait(connected, what="operator A to answer the SIPp caller")
        call_id, first = actor.call_id, actor.machine.operator_id
        second = next(op.id for op in operators if op.id != first)
        first_leg = actor.machine.connected_leg()

        await centre.conference(call_id, first, second, None)

        async def three_in_the_bridge():
            bridge = await ari.get_bridge(actor.bridge_id)
            return len(bridge.channels) == 3

        await wait(three_in_the_bridge, what="B to answer and join caller and A")
        (hand_off,) = next(c for c in centre.live_calls() if c.call_id == call_id).hand_offs
        assert (hand_off.kind, hand_off.name, hand_off.status) == (
            SideKind.COLLEAGUE,
            second,
            HandOffStatus.ANSWERED,
        )
        assert app.acd_core.operator_state(second) is OperatorState.ON_CALL
        # No ghost call: B's desk shows the call, and that A is still on it.
        pop = (await desk(second))["call"]
        assert pop is not None and (pop["call_id"], pop["live"]) == (call_id, True)
        assert pop["number"] == "0812555777" and pop["state"] == "connected"
        assert pop["with_operator"] == next(op.name for op in operators if op.id == first)
        assert (await desk(first))["call"]["with_operator"] is None  # A's desk as before

        await centre.leave(call_id, first)

        async def a_gone():
            bridge = await ari.get_bridge(actor.bridge_id)
            channels = set(bridge.channels)
            return first_leg not in channels and len(channels) == 2 and call_id in channels

        await wait(a_gone, what="A to leave caller and B bridged")
        assert actor.machine.state is CallState.CONNECTED
        assert actor.machine.operator_id == second
        pop = (await desk(second))["call"]
        assert (pop["call_id"], pop["with_operator"]) == (call_id, None)  # B's call in full
        assert app.acd_core.operator_state(second) is OperatorState.ON_CALL
        assert app.acd_core.operator_state(first) in (
            OperatorState.WRAP_UP,
            OperatorState.AVAILABLE,  # the test's wrap-up is half a second
        )

        # B puts the caller on hold for 2 s: music to the caller, who never leaves the bridge
        # (nor its recording); then takes them back. Nobody speaks in this call: the music is
        # all the recording holds once the menu is over.
        await centre.hold(call_id, second, True)
        await wait(lambda: _true(actor.machine.held), what="the caller on hold")
        await asyncio.sleep(2.0)
        bridge = await ari.get_bridge(actor.bridge_id)
        assert call_id in bridge.channels and len(bridge.channels) == 2
        await centre.hold(call_id, second, False)
        await wait(lambda: _true(not actor.machine.held), what="the caller taken back")

        await centre.hang_up(call_id, second)  # B, from the desk

        async def ended():
            row = await records.call(call_id)
            return row if row is not None and row["ended_at"] is not None else None

        row = await wait(ended, what="the call's end in PostgreSQL")
        assert (row["outcome"], row["hangup_by"]) == ("answered", "operator")
        assert row["operator_id"] == first  # who answered the call
        assert row["agencies"] == []
        events = await records.events(call_id)
        kinds = [(e["kind"], e["operator_id"]) for e in events]
        assert (
            kinds.index(("call_connected", first))
            < kinds.index(("call_connected", second))
            < kinds.index(("call_transferred", first))
            < kinds.index(("call_ended", second))
        )
        (transferred,) = [e for e in events if e["kind"] == "call_transferred"]
        assert transferred["to"] == second and "agency" not in transferred

        # B is asked for their own disposition too (not only the operator who answered).
        async def b_asked():
            data = await desk(second)
            return data if [o["call_id"] for o in data["owed"]] == [call_id] else None

        data = await wait(b_asked, what="B's desk to ask for the disposition")
        assert data["call"]["call_id"] == call_id
        assert ("flag_set", None) in kinds  # on_hold
        assert [e["flag"] for e in events if e["kind"] == "flag_set"] == ["on_hold"]

        # MixMonitor writes the frames that flow, and nobody speaks in this call: past the
        # menu, the recording is the music the caller heard on hold (it fades in).
        windows = await recording_of(call_id, asterisk, wait)
        music = [rms for rms, _ in windows[-int(2.0 / WINDOW) :]]
        heard = sum(1 for rms in music if rms > 0.003) * WINDOW
        assert len(windows) * WINDOW >= 2.5 and heard >= 1.0, f"no music on hold: {windows}"

        async def states():
            rows = await db.fetch(
                "SELECT operator_id, state, reason FROM operator_state_changes"
                " WHERE operator_id = ANY($1) ORDER BY at, change_id",
                [first, second],
            )
            return [tuple(r) for r in rows] if len(rows) >= 6 else None

        changes = await wait(states, what="the operators' state changes in PostgreSQL")
        assert (first, "wrap_up", "handed_over") in changes
        assert (second, "on_call", "joined") in changes
        assert (second, "wrap_up", "call_ended") in changes
        for name, phone in zip(("a", "b"), phones, strict=True):
            assert f"INVITE sip:{name}@" in phone.messages()  # both phones really rang
    finally:
        await console.close()
        await caller.stop()
        for phone in phones:
            await phone.stop()
