"""The call machine's leg rules (ari_app/call/machine.py): operator legs rung for the ACD's
offers, which answer wins, late answers, failed legs and their Q.850 causes, failed commands,
agency and supervisor legs, the shutdown, and the transition table it checks itself against."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.call import transitions
from ari_app.call.commands import (
    BridgeOperator,
    BridgeSupervisor,
    ClaimOffer,
    ContinueToFallback,
    CreateListenBridge,
    DestroyBridge,
    DestroyListenBridge,
    DialAgency,
    DialSupervisor,
    FinishCall,
    HangUpLeg,
    JoinListenBridge,
    Play,
    ReportOfferFailure,
    Requeue,
    RingOperator,
    Snoop,
    StartMoh,
)
from ari_app.call.events import (
    AgencyRequested,
    CallEvent,
    CommandFailed,
    DigitPressed,
    HandOver,
    HoldDue,
    HungUp,
    LegAnswered,
    LegDialStatus,
    LegHungUp,
    ListenRequested,
    OfferClaimed,
    Queued,
    RingCancelled,
    RingRequested,
    Started,
)
from ari_app.call.failures import offer_failure
from ari_app.call.machine import CallMachine
from ari_app.call.states import CallState, LegState, ListenMode, Party
from ari_app.call.transitions import IllegalTransition
from ari_app.ivr import Language
from db.events import Facts
from queues.events import OfferFailed
from queues.states import CancelReason, OfferFailure
from siaga.config import Config, load_config

CONFIG: Config = load_config(Path(__file__).resolve().parents[2] / "siaga.toml")
CALL = "c1"


def queued() -> CallMachine:
    m = CallMachine(CALL, CONFIG)
    m.handle(Started("0812", "Budi"))
    m.handle(DigitPressed("1", 1.0))
    m.handle(Queued(1, 1.0))
    m.handle(HoldDue())
    assert m.state is CallState.QUEUED
    return m


def rung(m: CallMachine, operator_id: str) -> str:
    commands = m.handle(RingRequested(operator_id))
    ring = commands[-1]
    assert isinstance(ring, RingOperator) and ring.operator_id == operator_id
    return ring.channel_id


def connected(at: float = 10.0) -> tuple[CallMachine, str]:
    m = queued()
    leg = rung(m, "1001")
    assert m.handle(LegAnswered(leg, at)) == [ClaimOffer("1001", leg)]
    m.handle(OfferClaimed(leg, True, at))
    assert m.state is CallState.CONNECTED
    return m, leg


# ---- operator legs ------------------------------------------------------------------------


def test_a_ring_request_makes_the_leg_id_and_records_the_offer() -> None:
    m = queued()
    assert m.handle(RingRequested("1001")) == [
        Facts.call_offered("1001"),
        RingOperator("1001", f"{CALL}-op1"),
    ]
    assert m.state is CallState.OFFERED
    assert m.legs[f"{CALL}-op1"].state is LegState.RINGING
    assert m.handle(RingRequested("1002"))[-1] == RingOperator("1002", f"{CALL}-op2")


@pytest.mark.parametrize("when", ["ivr", "connected"])
def test_a_ring_request_for_a_call_not_waiting_is_an_unreachable_offer(when: str) -> None:
    if when == "ivr":
        m = CallMachine(CALL, CONFIG)
        m.handle(Started("0812", "Budi"))
    else:
        m, _ = connected()
    failed = OfferFailed(CALL, "1002", OfferFailure.UNREACHABLE)
    assert m.handle(RingRequested("1002")) == [ReportOfferFailure(failed)]
    assert not any(leg.operator_id == "1002" for leg in m.legs.values())


def test_the_winning_answer_is_bridged() -> None:
    m = queued()
    leg = rung(m, "1001")
    m.handle(LegAnswered(leg, 10.0))
    commands = m.handle(OfferClaimed(leg, True, 10.0))
    assert BridgeOperator("1001", leg) in commands
    assert Facts.call_connected("1001") in commands
    assert m.legs[leg].state is LegState.CONNECTED
    assert m.connected_leg() == leg


def test_ring_all_the_losing_answer_is_hung_up() -> None:
    m = queued()
    first, second = rung(m, "1001"), rung(m, "1002")
    m.handle(LegAnswered(first, 10.0))
    m.handle(LegAnswered(second, 10.1))
    m.handle(OfferClaimed(first, True, 10.0))
    assert m.handle(OfferClaimed(second, False, 10.1)) == [HangUpLeg(second)]
    assert m.legs[second].state is LegState.GONE
    # The ACD's withdrawal of the loser's offer comes after: nothing left to do.
    assert m.handle(RingCancelled("1002", CancelReason.ANSWERED_ELSEWHERE)) == []
    assert m.operator_id == "1001"


def test_an_answer_the_acd_accepts_after_the_call_moved_on_is_hung_up() -> None:
    m, _ = connected()
    leg = f"{CALL}-late"
    m.legs[leg] = type(m.legs[f"{CALL}-op1"])("1002", leg, LegState.ANSWERED)
    assert m.handle(OfferClaimed(leg, True, 11.0)) == [HangUpLeg(leg)]


def test_an_answer_of_a_leg_given_up_is_hung_up_even_after_the_end() -> None:
    m = queued()
    leg = rung(m, "1001")
    m.handle(RingCancelled("1001", CancelReason.RING_TIMEOUT))
    assert m.handle(LegAnswered(leg)) == [HangUpLeg(leg)]
    m.handle(LegHungUp(leg, 16, destroyed=True))
    m.handle(HungUp(Party.CALLER, "16"))
    assert m.state is CallState.ABANDONED
    assert m.handle(LegAnswered(leg)) == [HangUpLeg(leg)]  # a final call still refuses it
    assert m.finished


def test_a_cancelled_ring_hangs_up_the_leg_and_records_why() -> None:
    m = queued()
    leg = rung(m, "1001")
    assert m.handle(RingCancelled("1001", CancelReason.RING_TIMEOUT)) == [
        HangUpLeg(leg),
        Facts.offer_failed("1001", "ring_timeout"),
    ]
    assert m.state is CallState.QUEUED


@pytest.mark.parametrize(
    ("cause", "dialstatus", "failure"),
    [
        (17, "", OfferFailure.BUSY),
        (21, "NOANSWER", OfferFailure.REJECTED),  # the cause is the more precise
        (20, "", OfferFailure.UNREACHABLE),
        (16, "BUSY", OfferFailure.BUSY),
        (16, "CHANUNAVAIL", OfferFailure.UNREACHABLE),
        (None, "", OfferFailure.NO_ANSWER),
    ],
)
def test_a_ringing_leg_that_ends_fails_the_offer_by_its_cause(
    cause: int | None, dialstatus: str, failure: OfferFailure
) -> None:
    assert offer_failure(cause, dialstatus) is failure
    m = queued()
    leg = rung(m, "1001")
    m.handle(LegDialStatus(leg, dialstatus))
    assert m.handle(LegHungUp(leg, cause, destroyed=False)) == []  # the destruction decides
    assert m.handle(LegHungUp(leg, cause, destroyed=True)) == [
        Facts.offer_failed("1001", failure.value),
        ReportOfferFailure(OfferFailed(CALL, "1001", failure)),
    ]
    assert m.state is CallState.QUEUED
    assert m.handle(LegHungUp(leg, cause, destroyed=True)) == []  # once


def test_a_connected_operator_hanging_up_ends_the_call() -> None:
    m, leg = connected(at=10.0)
    commands = m.handle(LegHungUp(leg, 16, at=60.0))
    assert m.state is CallState.ENDED
    assert FinishCall("1001") in commands and HangUpLeg(leg) not in commands
    assert m.finished


def test_a_connected_operator_hanging_up_at_once_requeues() -> None:
    m, leg = connected(at=10.0)
    assert m.handle(LegHungUp(leg, 16, at=10.5)) == [
        Facts.offer_failed("1001", "hung_up_at_once"),
        Requeue("1001"),
        StartMoh(),
    ]
    assert m.state is CallState.QUEUED


def test_during_a_shutdown_a_requeue_hands_the_caller_over() -> None:
    m, leg = connected(at=10.0)
    assert m.handle(HandOver()) == []  # a conversation is not moved
    commands = m.handle(LegHungUp(leg, 16, at=10.5))
    assert m.state is CallState.ENDED
    assert Requeue("1001") not in commands
    assert FinishCall("1001") in commands
    assert commands[-2:] == [DestroyBridge(), ContinueToFallback()]
    assert Facts.flag_set("handed_to_fallback") in commands


# ---- failed commands ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 409, 422])
def test_a_gone_status_on_the_callers_channel_means_the_caller_hung_up(status: int) -> None:
    m = queued()
    hold = Play(m.playing or "", ("hold_emergency",), Language.ID)
    commands = m.handle(CommandFailed(hold, status))
    assert m.state is CallState.ABANDONED
    assert any(getattr(c, "kind", None) == "call_abandoned" for c in commands)


@pytest.mark.parametrize("status", [500, None, 412])
def test_any_other_failure_on_the_callers_channel_changes_nothing(status: int | None) -> None:
    m = queued()
    assert m.handle(CommandFailed(Play("x", ("hold_emergency",), Language.ID), status)) == []
    assert m.state is CallState.QUEUED


def test_a_gone_operator_leg_at_bridging_puts_the_caller_back() -> None:
    m, leg = connected(at=10.0)
    commands = m.handle(CommandFailed(BridgeOperator("1001", leg), 409, at=10.1))
    assert Requeue("1001") in commands
    assert m.state is CallState.QUEUED and m.legs[leg].state is LegState.GONE


def test_a_bridge_gone_at_bridging_hangs_up_the_answered_operator_leg() -> None:
    # A 404 may name the call's bridge, not the leg: the operator who answered must not be
    # left in a silent call (and ring after ring of the next ones, as a chaos run found).
    m, leg = connected(at=10.0)
    commands = m.handle(CommandFailed(BridgeOperator("1001", leg), 404, at=10.1))
    assert commands[0] == HangUpLeg(leg)
    assert Requeue("1001") in commands


def test_an_originate_refused_is_an_unreachable_operator() -> None:
    m = queued()
    leg = rung(m, "1001")
    assert m.handle(CommandFailed(RingOperator("1001", leg), 500)) == [
        Facts.offer_failed("1001", "unreachable"),
        ReportOfferFailure(OfferFailed(CALL, "1001", OfferFailure.UNREACHABLE)),
    ]
    assert m.legs[leg].state is LegState.GONE and m.state is CallState.QUEUED


# ---- agencies and supervisors -------------------------------------------------------------


def test_an_agency_is_dialled_on_a_leg_of_the_call_and_bridged_when_it_answers() -> None:
    m, _ = connected()
    code = CONFIG.agencies[0].code
    dial = m.handle(AgencyRequested(code))[0]
    assert isinstance(dial, DialAgency) and dial.agency == code
    commands = m.handle(LegAnswered(dial.channel_id))
    assert Facts.agency_added(code, operator_id="1001") in commands


def test_an_unreachable_agency_can_be_dialled_again() -> None:
    m, _ = connected()
    code = CONFIG.agencies[0].code
    dial = m.handle(AgencyRequested(code))[0]
    assert isinstance(dial, DialAgency)
    assert m.handle(CommandFailed(dial, 500)) == []
    assert m.side[dial.channel_id].gone
    assert isinstance(m.handle(AgencyRequested(code))[0], DialAgency)


def test_a_listening_supervisor_gets_a_snoop_on_the_operator_and_a_bridge() -> None:
    m, operator_leg = connected()
    (dial,) = m.handle(ListenRequested("PJSIP/2001", ListenMode.WHISPER))
    assert isinstance(dial, DialSupervisor)
    create, snoop = m.handle(LegAnswered(dial.channel_id))
    assert isinstance(create, CreateListenBridge) and isinstance(snoop, Snoop)
    assert snoop.operator_channel == operator_leg and snoop.whisper
    assert m.handle(LegAnswered(snoop.snoop_id)) == [
        JoinListenBridge(create.bridge_id, (dial.channel_id, snoop.snoop_id)),
        Facts.flag_set("supervisor_whisper"),
    ]
    # The supervisor hangs up: the snoop goes, and the bridge.
    assert m.handle(LegHungUp(dial.channel_id)) == [
        HangUpLeg(snoop.snoop_id),
        DestroyListenBridge(create.bridge_id),
    ]
    assert m.handle(LegHungUp(snoop.snoop_id, destroyed=True)) == []


def test_a_barging_supervisor_joins_the_conversation() -> None:
    m, _ = connected()
    (dial,) = m.handle(ListenRequested("PJSIP/2001", ListenMode.BARGE))
    assert isinstance(dial, DialSupervisor)
    assert m.handle(LegAnswered(dial.channel_id)) == [BridgeSupervisor(dial.channel_id)]


def test_a_listen_request_for_a_call_not_connected_does_nothing() -> None:
    assert queued().handle(ListenRequested("PJSIP/2001", ListenMode.LISTEN)) == []


# ---- the table ----------------------------------------------------------------------------


def test_a_move_missing_from_the_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    table = dict(transitions.TRANSITIONS)
    del table[(CallState.QUEUED, RingRequested)]
    monkeypatch.setattr(transitions, "TRANSITIONS", table)
    m = queued()
    with pytest.raises(IllegalTransition):
        m.handle(RingRequested("1001"))


def test_the_table_names_only_real_states_and_events() -> None:
    events = set(CallEvent.__args__)
    for (state, event_type), targets in transitions.TRANSITIONS.items():
        assert isinstance(state, CallState) and event_type in events
        assert state not in targets and not state.final


def test_in_service_a_move_missing_from_the_table_keeps_the_call_going(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = dict(transitions.TRANSITIONS)
    del table[(CallState.QUEUED, RingRequested)]
    monkeypatch.setattr(transitions, "TRANSITIONS", table)
    monkeypatch.setattr(CallMachine, "strict", False)
    m = queued()
    assert isinstance(m.handle(RingRequested("1001"))[-1], RingOperator)  # logged, not raised
    assert m.state is CallState.OFFERED
