"""SiagaApp's resync after a restart, without Asterisk: the channels a fake REST interface lists
are adopted (a conversation with its operator, a waiting caller in its place), stray legs hung
up; and the pure plan behind it (ari_app/call/adoption.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from shell_support import centre, channel, digit, hangup, settle, stasis_start

from ari_app.ari.models import Bridge, ChannelState, DialplanLocation
from ari_app.call.adoption import (
    QUEUE_VARIABLE,
    Adoption,
    FoundChannel,
    adopted,
    encode_queue_state,
    plan_resync,
    stale_bridges,
)
from ari_app.call.events import Adopted
from ari_app.call.states import CallState, LegState
from db.events import EventKind
from queues.states import CallPlace, OperatorState

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


async def test_resync_adopts_a_conversation_and_a_waiting_caller() -> None:
    c = centre(operators=["1001"])
    c.rest.channels = [
        # listed in no particular order; the waiting caller arrived first
        channel("waiting", created=T0),
        channel("waiting-op1", args="operator,waiting,1001", state=ChannelState.RING),
        channel("talking", created=T0 + timedelta(seconds=5)),
        channel("talking-op1", args="operator,talking,1001"),
        dataclasses.replace(channel("in-the-dialplan"), dialplan=DialplanLocation("siaga")),
    ]
    c.rest.variables[("waiting", QUEUE_VARIABLE)] = encode_queue_state(
        "general", 1, frozenset({"repeat"})
    )
    c.rest.variables[("talking", QUEUE_VARIABLE)] = encode_queue_state("medical", 1, frozenset())
    live = await c.app._resync()
    await settle()
    assert live >= {"waiting", "talking", "talking-op1", "in-the-dialplan"}
    assert "in-the-dialplan" not in c.app.calls
    assert c.rest.sent("hangup") == ["waiting-op1"]  # a ringing leg starts over
    # Conversations first, so that their operator is taken before anyone is offered.
    assert list(c.app.calls)[:2] == ["talking", "waiting"]
    talking = c.app.calls["talking"].machine
    assert talking.state is CallState.CONNECTED and talking.operator_id == "1001"
    assert talking.legs["talking-op1"].state is LegState.CONNECTED
    assert c.app.acd_core.call_place("talking") is CallPlace.CONNECTED
    assert c.app.acd_core.operator_state("1001") is OperatorState.ON_CALL
    waiting = c.app.calls["waiting"].machine
    assert waiting.state is CallState.QUEUED
    assert (waiting.category, waiting.priority) == ("general", 1)
    assert "repeat" in waiting.flags
    assert c.app.acd_core.call_place("waiting") is CallPlace.WAITING
    # The adopted operator's leg is the call's again: its hangup ends the conversation.
    await c.send(hangup("talking-op1"))
    (ended,) = c.journal.of("talking", EventKind.CALL_ENDED)
    assert ended.data["hangup_by"] == "operator" and ended.operator_id == "1001"
    assert c.app.acd_core.operator_state("1001") is OperatorState.WRAP_UP
    # Adopted, not arrived again: no second arrival, no second call_queued.
    for call_id in ("talking", "waiting"):
        assert c.journal.of(call_id, EventKind.CALL_ARRIVED) == []
        assert c.journal.of(call_id, EventKind.CALL_QUEUED) == []
        flags = [e.data["flag"] for e in c.journal.of(call_id, EventKind.FLAG_SET)]
        assert flags == ["adopted"]


async def test_resync_answers_and_bridges_a_caller_the_last_app_left_half_set_up() -> None:
    c = centre(operators=[])
    c.rest.channels = [
        channel("set-up", created=T0),
        channel("no-bridge", created=T0),
        channel("empty-bridge", created=T0),
        channel("ringing", created=T0, state=ChannelState.RING),
    ]
    for call_id in ("set-up", "no-bridge", "empty-bridge", "ringing"):
        c.rest.variables[(call_id, QUEUE_VARIABLE)] = encode_queue_state("general", 1, frozenset())
    c.rest.bridges = [
        Bridge(id="set-up-bridge", name="siaga-set-up", channels=("set-up",)),
        Bridge(id="empty-bridge-bridge", name="siaga-empty-bridge"),
    ]
    await c.app._resync()
    await settle()
    # Every operator's answer joins the caller's bridge: a caller adopted without one would
    # make each answered operator fail to join, one after another.
    assert sorted(c.rest.sent("create_bridge")) == [
        "empty-bridge-bridge",
        "no-bridge-bridge",
        "ringing-bridge",
    ]
    assert "empty-bridge-bridge" in c.rest.sent("destroy_bridge")  # made afresh
    assert c.rest.sent("answer") == ["ringing"]
    assert {x: c.app.calls[x].machine.state for x in c.app.calls} == dict.fromkeys(
        ["set-up", "no-bridge", "empty-bridge", "ringing"], CallState.QUEUED
    )


async def test_resync_ends_known_calls_whose_channels_are_gone() -> None:
    c = centre(operators=[])
    await c.send(stasis_start("gone"))
    c.rest.channels = []
    await c.app._resync()
    await settle()
    (ended,) = c.journal.of("gone", EventKind.CALL_ENDED)
    assert ended.data == {"hangup_by": "system", "reason": "pbx_restart"}
    assert "gone" not in c.app.calls


async def test_resync_hangs_up_the_operator_leg_of_a_caller_gone_and_rings_them_next() -> None:
    c = centre(operators=["1001"])
    c.rest.channels = [
        channel("gone-op1", args="operator,gone,1001"),  # the caller hung up while we were away
        channel("gone-ag", args="agency,gone,110"),
        channel("out-op1", args="operator,out,1001", state=ChannelState.RING),
        # The caller of out-op1 is live, but in the dialplan fallback.
        dataclasses.replace(channel("out"), dialplan=DialplanLocation("siaga-fallback")),
    ]
    await c.app._resync()
    await settle()
    assert c.rest.sent("hangup") == ["gone-op1", "gone-ag", "out-op1"]
    assert c.app.calls == {}
    assert c.app.acd_core.operator_state("1001") is OperatorState.AVAILABLE
    await c.send(stasis_start("next"), digit("next", "1"))
    assert c.app.acd_core.operator_state("1001") is OperatorState.OFFERED
    assert c.app.calls["next"].machine.ringing == {"1001"}


async def test_resync_destroys_the_bridges_of_calls_it_no_longer_has() -> None:
    c = centre(operators=["1001"])
    c.rest.channels = [channel("live")]  # a waiting caller to adopt
    c.rest.bridges = [
        Bridge(id="live-bridge", name="siaga-live", channels=("live",)),
        Bridge(id="gone-bridge", name="siaga-gone", channels=("gone-op1",)),
        Bridge(id="x-op1-bridge", name="listen-gone"),
        Bridge(id="cb-old-bridge", name="cb-old"),
        Bridge(id="fallback", name=""),  # the fallback queue's: not ours
    ]
    await c.app._resync()
    await settle()
    assert sorted(c.rest.sent("destroy_bridge")) == ["cb-old-bridge", "gone-bridge", "x-op1-bridge"]


def test_stale_bridges_are_ours_whose_call_or_callback_is_gone() -> None:
    bridges = [
        ("a", "siaga-c1"),
        ("b", "siaga-c2"),
        ("c", "listen-c1"),
        ("d", "listen-c3"),
        ("e", "cb-c2"),
        ("f", "cb-c4"),
        ("g", "queue-bridge"),
    ]
    assert stale_bridges(bridges, calls={"c1"}, callbacks={"c4"}) == ["b", "d", "e"]


async def test_resync_keeps_the_legs_of_a_running_callback_and_hangs_up_a_dead_ones() -> None:
    c = centre(operators=["1001", "1002"])
    asterisk = dataclasses.replace(c.app.config.asterisk, callback_dial="PJSIP/{number}@trunk")
    c.app.config = dataclasses.replace(c.app.config, asterisk=asterisk)
    c.app.callback("running", "081234567890", "1001")
    await settle()
    assert c.rest.sent("originate") == ["cb-running-op"]
    c.rest.channels = [
        channel("cb-running-op", args="callback,running", state=ChannelState.RING),
        channel("cb-old-op", args="callback,old"),  # a callback of the app before the restart
        channel("cb-old-caller", args="callback,old"),
    ]
    await c.app._resync()
    await settle()
    assert c.rest.sent("hangup") == ["cb-old-op", "cb-old-caller"]
    assert "running" in c.app.callbacks
    assert c.app.calls == {}


async def test_stopping_the_app_ends_the_tasks_of_its_running_callbacks_too() -> None:
    # A callback task left pending at stop is destroyed later by the garbage collector, with
    # an asyncio error in whatever runs then.
    c = centre(operators=["1001"])
    asterisk = dataclasses.replace(c.app.config.asterisk, callback_dial="PJSIP/{number}@trunk")
    c.app.config = dataclasses.replace(c.app.config, asterisk=asterisk)
    c.app.callback("running", "081234567890", "1001")
    await settle()
    task = c.app.callbacks["running"].task
    assert task is not None and not task.done()
    await c.app.stop()
    assert task.done()


def found(channel_id: str, args: str = "", up: bool = True, second: int = 0) -> FoundChannel:
    created = T0 + timedelta(seconds=second)
    return FoundChannel(channel_id, tuple(a for a in args.split(",") if a), up, created)


def test_the_plan_keeps_one_answered_operator_leg_and_hangs_up_the_rest() -> None:
    plan = plan_resync(
        [
            found("a", second=9),
            found("a-op1", "operator,a,1001"),
            found("a-op2", "operator,a,1002"),  # a second answered leg: not both
            found("a-sup3", "supervisor,a,listen"),
            found("b", second=1),
            found("b-op1", "operator,b,9999"),  # an operator no longer in siaga.toml
            found("orphan-op1", "operator,nobody,1001"),
        ],
        live={"a", "b", "a-op1", "a-op2", "a-sup3", "b-op1", "orphan-op1"},
        known=(),
        operators={"1001", "1002"},
    )
    assert plan.callers == [Adoption("a", "1001", "a-op1"), Adoption("b")]
    assert plan.hang_up == ["a-op2", "a-sup3", "b-op1", "orphan-op1"]
    assert plan.gone == []


def test_the_plan_orders_waiting_callers_by_arrival_and_skips_known_calls() -> None:
    plan = plan_resync(
        [found("late", second=5), found("early", second=1), found("known", second=0)],
        live={"late", "early", "known"},
        known={"known", "vanished"},
        operators=(),
    )
    assert [a.call_id for a in plan.callers] == ["early", "late"]
    assert plan.gone == ["vanished"]


def test_a_call_ended_as_its_nodes_loss_is_hung_up_with_its_legs_not_adopted() -> None:
    # Left up by a partition: its caller is gone, and adopted it would hold operator 1001.
    plan = plan_resync(
        [found("lost"), found("lost-op1", "operator,lost,1001"), found("waiting", second=3)],
        live={"lost", "lost-op1", "waiting"},
        known=(),
        operators={"1001"},
        lost={"lost"},
    )
    assert plan.callers == [Adoption("waiting")]
    assert plan.hang_up == ["lost", "lost-op1"]


def test_a_ringing_operator_leg_is_not_a_conversation() -> None:
    plan = plan_resync(
        [found("a"), found("a-op1", "operator,a,1001", up=False)],
        live={"a", "a-op1"},
        known=(),
        operators={"1001"},
    )
    assert plan.callers == [Adoption("a")]
    assert plan.hang_up == ["a-op1"]


def test_every_leg_of_a_call_that_is_gone_is_hung_up() -> None:
    # The app was killed after the caller hung up and before it hung up the operator's leg.
    plan = plan_resync(
        [
            found("gone-op1", "operator,gone,1001"),
            found("gone-ag", "agency,gone,110"),
            found("gone-partner", "partner,gone,jakarta"),
            found("gone-sup", "supervisor,gone,listen"),
            found("gone-snoop", "snoop,gone"),
        ],
        live={"gone-op1", "gone-ag", "gone-partner", "gone-sup", "gone-snoop"},
        known=(),
        operators={"1001"},
    )
    assert plan.callers == []
    assert plan.hang_up == ["gone-op1", "gone-ag", "gone-partner", "gone-sup", "gone-snoop"]


def test_the_legs_of_a_live_caller_who_is_not_ours_are_hung_up() -> None:
    # The caller is up, but in the dialplan fallback: no channel of ours, nothing to adopt.
    plan = plan_resync(
        [found("out-op1", "operator,out,1001"), found("out-ag", "agency,out,110")],
        live={"out", "out-op1", "out-ag"},
        known=(),
        operators={"1001"},
    )
    assert plan.callers == []
    assert plan.hang_up == ["out-op1", "out-ag"]


def test_the_legs_of_a_call_the_app_knows_are_its_actors() -> None:
    # A reconnect, not a restart: the call's actor keeps its legs (and ends them if it is gone).
    plan = plan_resync(
        [
            found("k"),
            found("k-op1", "operator,k,1001"),
            found("k-ag", "agency,k,110"),
            found("ended-op1", "operator,ended,1002"),
        ],
        live={"k", "k-op1", "k-ag", "ended-op1"},
        known={"k", "ended"},
        operators={"1001", "1002"},
    )
    assert plan.callers == []
    assert plan.hang_up == []
    assert plan.gone == ["ended"]


def test_only_the_legs_of_a_callback_this_app_runs_are_kept() -> None:
    # A callback's legs carry the abandoned call's id, never a live caller's.
    plan = plan_resync(
        [
            found("cb-running-op", "callback,running"),
            found("cb-running-caller", "callback,running", up=False),
            found("cb-old-op", "callback,old"),
            found("cb-old-caller", "callback,old"),
        ],
        live={"cb-running-op", "cb-running-caller", "cb-old-op", "cb-old-caller"},
        known=(),
        operators={"1001"},
        callbacks={"running"},
    )
    assert plan.callers == []
    assert plan.hang_up == ["cb-old-op", "cb-old-caller"]


def test_adopted_reads_the_place_kept_on_the_channel() -> None:
    waiting = adopted(Adoption("a"), encode_queue_state("fire", 0, frozenset({"cannot_speak"})))
    assert waiting == Adopted("fire", 0, frozenset({"cannot_speak"}))
    talking = adopted(Adoption("a", "1001", "a-op1"), "")
    assert talking == Adopted(None, None, frozenset(), "1001", "a-op1")
    assert adopted(Adoption("a"), "garbage") == Adopted()
