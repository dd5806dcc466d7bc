"""The call actor and the app around it, without Asterisk: ARI events in through the router, REST
requests out to a fake, the real ACD core deciding (tests/ari_app/shell_support.py)."""

from __future__ import annotations

import asyncio

from shell_support import Centre, centre, destroyed, digit, hangup, settle, stasis_start

from ari_app.call.events import PromptFinished
from ari_app.call.states import CallState, LegState
from db.events import EventKind
from queues.states import CallPlace, OperatorState

CALL = "c1"


async def queued(c: Centre) -> None:
    """A caller who pressed 0 (general, both operators' first skill): queued, offered."""
    await c.send(stasis_start(CALL), digit(CALL, "0"))
    assert c.app.calls[CALL].machine.state in (CallState.QUEUED, CallState.OFFERED)


async def connected(c: Centre) -> str:
    """Queued, rung, answered: returns the operator's leg."""
    await queued(c)
    (leg,) = c.rest.sent("originate")
    await c.send(stasis_start(leg, "operator", CALL, "1001"))
    assert c.app.calls[CALL].machine.state is CallState.CONNECTED
    return leg


async def test_a_call_is_answered_queued_and_rings_an_operator() -> None:
    c = centre(operators=["1001"])
    await queued(c)
    assert c.rest.requests[:4] == [
        ("answer", CALL),
        ("set_variable", CALL),  # the stranded-call guard disarmed: the call is the app's
        ("create_bridge", f"{CALL}-bridge"),
        ("add_channel", CALL),
    ]
    assert c.rest.variables[(CALL, "TIMEOUT(absolute)")] == "0"
    assert c.rest.sent("originate") == [f"{CALL}-op1"]
    assert c.app.acd_core.call_place(CALL) is CallPlace.OFFERED
    kinds = [e.kind for e in c.journal.events if e.call_id == CALL]
    assert kinds[:1] == [EventKind.CALL_ARRIVED]
    assert EventKind.CALL_OFFERED in kinds


async def test_ring_all_two_answers_one_wins_the_other_leg_is_hung_up() -> None:
    c = centre(strategy="ring_all")
    await queued(c)
    first, second = c.rest.sent("originate")
    # Both phones answer before the actor has seen either answer.
    await c.send(stasis_start(first, "operator", CALL), stasis_start(second, "operator", CALL))
    machine = c.app.calls[CALL].machine
    assert machine.state is CallState.CONNECTED
    winner = machine.connected_leg()
    loser = second if winner == first else first
    assert winner is not None
    assert c.rest.sent("add_channel").count(winner) == 1
    assert loser not in c.rest.sent("add_channel")
    assert loser in c.rest.sent("hangup")
    assert machine.legs[loser].state is LegState.GONE
    assert len(c.journal.of(CALL, EventKind.CALL_CONNECTED)) == 1
    assert c.app.acd_core.operator_state(machine.operator_id or "") is OperatorState.ON_CALL


async def test_an_answer_after_the_caller_hung_up_is_hung_up() -> None:
    c = centre(operators=["1001"])
    await queued(c)
    (leg,) = c.rest.sent("originate")
    await c.send(hangup(CALL))
    assert c.rest.sent("hangup") == [leg]  # the ringing phone stops
    assert len(c.journal.of(CALL, EventKind.CALL_ABANDONED)) == 1
    await c.send(stasis_start(leg, "operator", CALL, "1001"))  # the operator answers too late
    assert c.rest.sent("hangup") == [leg, leg]
    assert leg not in c.rest.sent("add_channel")
    assert c.journal.of(CALL, EventKind.CALL_CONNECTED) == []
    assert CALL not in c.app.calls


async def test_a_404_on_answer_means_the_caller_is_gone_and_the_rest_is_dropped() -> None:
    c = centre()
    c.rest.refuse("answer", CALL, 404)
    await c.send(stasis_start(CALL))
    assert c.rest.requests[0] == ("answer", CALL)
    assert c.rest.sent("create_bridge") == []  # the batch stopped at the failed command
    assert c.rest.sent("play") == []
    (abandoned,) = c.journal.of(CALL, EventKind.CALL_ABANDONED)
    assert abandoned.data["cause"] == "gone"
    assert CALL not in c.app.calls


async def test_a_500_on_music_changes_nothing() -> None:
    c = centre(operators=[])
    await c.send(stasis_start(CALL), digit(CALL, "1"))
    playing = c.app.calls[CALL].machine.playing
    assert playing is not None
    c.rest.refuse("start_moh", CALL, 500)
    await c.app.calls[CALL].feed(PromptFinished(playing))
    assert c.app.calls[CALL].machine.state is CallState.QUEUED
    assert c.journal.of(CALL, EventKind.CALL_ABANDONED) == []


async def test_a_409_bridging_the_operator_puts_the_caller_back_in_line() -> None:
    c = centre()
    await queued(c)
    (leg,) = c.rest.sent("originate")
    c.rest.refuse("add_channel", leg, 409)  # the operator's leg vanished before it joined
    await c.send(stasis_start(leg, "operator", CALL, "1001"))
    machine = c.app.calls[CALL].machine
    assert machine.state in (CallState.QUEUED, CallState.OFFERED)
    assert machine.legs[leg].state is LegState.GONE
    (ghost,) = c.journal.of(CALL, EventKind.OFFER_FAILED)
    assert ghost.data["reason"] == "hung_up_at_once"
    assert c.journal.of(CALL, EventKind.CALL_ENDED) == []
    # Queued again in the ACD: the other operator is rung.
    assert c.rest.sent("originate") == [leg, f"{CALL}-op2"]


async def test_a_ringing_leg_that_fails_busy_tells_the_acd() -> None:
    c = centre(operators=["1001"])
    await queued(c)
    (leg,) = c.rest.sent("originate")
    await c.send(hangup(leg, 17))  # not final for a ringing leg: its destruction is
    assert c.app.calls[CALL].machine.state is CallState.OFFERED
    await c.send(destroyed(leg, 17))
    (failed,) = c.journal.of(CALL, EventKind.OFFER_FAILED)
    assert failed.data["reason"] == "busy"
    assert c.app.calls[CALL].machine.state is CallState.QUEUED
    assert c.app.acd_core.call_place(CALL) is CallPlace.WAITING


async def test_a_requeue_during_shutdown_hands_the_caller_over() -> None:
    c = centre(operators=["1001"])
    leg = await connected(c)
    drain = asyncio.create_task(c.app.drain(timeout=5))
    await settle()
    assert c.app.calls[CALL].machine.state is CallState.CONNECTED  # a conversation stays
    await c.send(hangup(leg))  # the operator hangs up at once: no operator of ours is left
    assert c.rest.sent("continue") == [CALL]
    assert [e.data["flag"] for e in c.journal.of(CALL, EventKind.FLAG_SET)] == [
        "handed_to_fallback"
    ]
    assert c.journal.of(CALL, EventKind.CALL_ENDED) == []
    assert c.app.acd_core.call_place(CALL) is None
    await asyncio.wait_for(drain, 1)


async def test_an_operator_hanging_up_at_once_when_not_draining_requeues() -> None:
    c = centre(operators=["1001", "1002"])
    leg = await connected(c)
    await c.send(hangup(leg))
    assert c.rest.sent("continue") == []
    assert c.app.calls[CALL].machine.state is CallState.OFFERED  # the other operator rings
    assert c.rest.sent("originate")[-1] == f"{CALL}-op2"


async def test_the_call_queued_record_carries_the_acd_position() -> None:
    c = centre(operators=[])
    for n in (1, 2):
        await c.send(stasis_start(f"c{n}"), digit(f"c{n}", "1"))
    positions = [c.journal.of(f"c{n}", EventKind.CALL_QUEUED)[0].data for n in (1, 2)]
    assert positions == [
        {"category": "medical", "position": 1},
        {"category": "medical", "position": 2},
    ]
    await c.send(hangup("c2"))
    (abandoned,) = c.journal.of("c2", EventKind.CALL_ABANDONED)
    assert abandoned.data["position"] == 2
