"""The desk's call controls in the call machine: the operator hangs up; a colleague (another
operator, or a supervisor) is conferenced in and takes the call over when the operator leaves;
the live status of every hand-off (agencies and colleagues)."""

from __future__ import annotations

from test_call import connected

from ari_app.call import (
    Adopted,
    AgencyRequested,
    BridgeColleague,
    CallState,
    ClaimColleague,
    ColleagueClaimed,
    ColleagueRequested,
    CommandFailed,
    DestroyBridge,
    DialAgency,
    DialColleague,
    Disconnect,
    FinishCall,
    HandOff,
    HandOffStatus,
    HangUpLeg,
    HangUpRequested,
    HoldRequested,
    LeaveRequested,
    LegAnswered,
    LegHungUp,
    ReleaseOperator,
    SideKind,
    StartMoh,
    StopMoh,
)
from ari_app.call.machine import CallMachine
from db.events import Facts, HangupBy

A, B = "1001", "1002"
A_LEG = "op-chan"


def colleague_rung(name: str = B, *, operator: bool = True) -> tuple[CallMachine, str]:
    m = connected(A)
    (dial,) = m.handle(ColleagueRequested(A, f"PJSIP/{name}", name, operator))
    assert isinstance(dial, DialColleague) and dial.dial == f"PJSIP/{name}"
    assert dial.operator_id == (name if operator else "")
    return m, dial.channel_id


def colleague_joined() -> tuple[CallMachine, str]:
    m, leg = colleague_rung()
    assert m.handle(LegAnswered(leg)) == [ClaimColleague(B, leg)]
    assert m.handle(ColleagueClaimed(leg, won=True)) == [
        BridgeColleague(leg),
        Facts.call_connected(B),
    ]
    return m, leg


def status(m: CallMachine) -> list[HandOff]:
    return list(m.hand_offs())


def test_the_operator_hangs_up_from_the_desk() -> None:
    m = connected(A)
    assert m.handle(HangUpRequested(A)) == [
        Disconnect(),
        Facts.call_ended(HangupBy.OPERATOR, operator_id=A),
        FinishCall(A),
        HangUpLeg(A_LEG),  # the operator's phone too
        DestroyBridge(),
    ]
    assert m.state is CallState.ENDED


def test_only_the_calls_operator_may_hang_up() -> None:
    m = connected(A)
    assert m.handle(HangUpRequested(B)) == []
    assert m.state is CallState.CONNECTED


def test_a_colleague_rings_then_joins_the_conversation() -> None:
    m, _ = colleague_rung()
    assert status(m) == [HandOff(SideKind.COLLEAGUE, B, HandOffStatus.RINGING)]
    m, _ = colleague_joined()
    assert status(m) == [HandOff(SideKind.COLLEAGUE, B, HandOffStatus.ANSWERED)]
    assert m.operator_id == A


def test_the_operator_leaves_and_the_colleague_has_the_call() -> None:
    m, leg = colleague_joined()
    assert m.handle(LeaveRequested(A)) == [
        HangUpLeg(A_LEG),
        Facts.call_transferred(to=B, operator_id=A),
        ReleaseOperator(A),  # the ACD: A to wrap-up, B the call's operator
    ]
    assert (m.state, m.operator_id, m.connected_leg()) == (CallState.CONNECTED, B, leg)
    assert m.handle(LegHungUp(A_LEG, 16, destroyed=True)) == []  # A's phone, hung up by us
    # B ends the call from the desk: the records name B.
    assert m.handle(HangUpRequested(B)) == [
        Disconnect(),
        Facts.call_ended(HangupBy.OPERATOR, operator_id=B),
        FinishCall(B),
        HangUpLeg(leg),
        DestroyBridge(),
    ]


def test_the_operator_hanging_up_their_phone_hands_over_too() -> None:
    m, leg = colleague_joined()
    assert m.handle(LegHungUp(A_LEG, 16)) == [
        Facts.call_transferred(to=B, operator_id=A),
        ReleaseOperator(A),
    ]
    assert (m.state, m.operator_id) == (CallState.CONNECTED, B)
    # The colleague hanging up their phone now ends the call, as any operator's would.
    commands = m.handle(LegHungUp(leg, 16))
    assert Facts.call_ended(HangupBy.OPERATOR, cause="16", operator_id=B) in commands
    assert FinishCall(B) in commands and Disconnect() in commands


def test_the_operator_cannot_leave_before_the_colleague_answered() -> None:
    m, leg = colleague_rung()
    assert m.handle(LeaveRequested(A)) == []
    # Hanging up their phone ends the call, as before: the ringing colleague stops ringing.
    commands = m.handle(LegHungUp(A_LEG, 16))
    assert HangUpLeg(leg) in commands
    assert m.state is CallState.ENDED


def test_a_colleague_who_took_another_call_meanwhile_is_hung_up() -> None:
    m, leg = colleague_rung()
    m.handle(LegAnswered(leg))
    assert m.handle(ColleagueClaimed(leg, won=False)) == [HangUpLeg(leg)]
    assert status(m) == [HandOff(SideKind.COLLEAGUE, B, HandOffStatus.FAILED)]
    assert m.handle(LeaveRequested(A)) == []


def test_a_colleague_leaving_again_is_free_and_the_call_stays() -> None:
    m, leg = colleague_joined()
    assert m.handle(LegHungUp(leg, 16)) == [ReleaseOperator(B)]
    assert status(m) == [HandOff(SideKind.COLLEAGUE, B, HandOffStatus.LEFT)]
    assert (m.state, m.operator_id) == (CallState.CONNECTED, A)
    # ... and another colleague may be called.
    assert m.handle(ColleagueRequested(A, "PJSIP/1003", "1003", True))


def test_an_unreachable_colleague_fails_and_another_may_be_called() -> None:
    m, leg = colleague_rung()
    dial = DialColleague(f"PJSIP/{B}", leg, B, B)
    assert m.handle(CommandFailed(dial, 500)) == []
    assert status(m) == [HandOff(SideKind.COLLEAGUE, B, HandOffStatus.FAILED)]
    assert m.handle(ColleagueRequested(A, "PJSIP/1003", "1003", True))


def test_one_colleague_at_a_time_and_never_oneself() -> None:
    m, _ = colleague_rung()
    assert m.handle(ColleagueRequested(A, "PJSIP/1003", "1003", True)) == []
    m = connected(A)
    assert m.handle(ColleagueRequested(A, f"PJSIP/{A}", A, True)) == []
    assert m.handle(ColleagueRequested(B, "PJSIP/1003", "1003", True)) == []  # not B's call


def test_a_supervisor_takes_the_call_over_until_they_hang_up() -> None:
    m, leg = colleague_rung("sup", operator=False)
    # No ACD for a supervisor: joined at once, recorded as a supervisor barging in.
    assert m.handle(LegAnswered(leg)) == [BridgeColleague(leg), Facts.flag_set("supervisor_barge")]
    assert m.handle(LegHungUp(A_LEG, 16)) == [
        Facts.call_transferred(to="sup", operator_id=A),
        FinishCall(A),  # A to wrap-up; the caller stays with the supervisor
    ]
    assert m.state is CallState.CONNECTED
    commands = m.handle(LegHungUp(leg, 16))
    assert commands[:2] == [
        Disconnect(),
        Facts.call_ended(HangupBy.OPERATOR, cause="16", operator_id=A),
    ]
    assert m.state is CallState.ENDED


def test_the_live_status_of_an_agency_hand_off() -> None:
    m = connected(A)
    (dial, _) = m.handle(AgencyRequested("police"))
    assert isinstance(dial, DialAgency)
    assert status(m) == [HandOff(SideKind.AGENCY, "police", HandOffStatus.RINGING)]
    m.handle(LegAnswered(dial.channel_id))
    assert status(m) == [HandOff(SideKind.AGENCY, "police", HandOffStatus.ANSWERED)]
    m.handle(LegHungUp(dial.channel_id, 16))
    assert status(m) == [HandOff(SideKind.AGENCY, "police", HandOffStatus.LEFT)]
    (again, _) = m.handle(AgencyRequested("police"))
    assert isinstance(again, DialAgency)
    m.handle(CommandFailed(again, 500))
    assert status(m)[-1] == HandOff(SideKind.AGENCY, "police", HandOffStatus.FAILED)


def test_hold_plays_music_to_the_caller_who_stays_bridged_and_recorded() -> None:
    m = connected(A)
    assert m.handle(HoldRequested(A, True)) == [StartMoh(), Facts.flag_set("on_hold")]
    assert m.handle(HoldRequested(A, True)) == []  # already held
    assert m.handle(HoldRequested(B, False)) == []  # not B's call
    # Held, the caller is never out of the bridge: nothing leaves it, nothing is hung up.
    assert (m.state, m.held, m.connected_leg()) == (CallState.CONNECTED, True, A_LEG)
    assert m.handle(HoldRequested(A, False)) == [StopMoh()]
    assert m.held is False


def test_a_held_caller_is_taken_back_when_the_colleague_takes_over() -> None:
    # The usual consult: the caller on hold while A briefs B, then A leaves them together.
    m, _ = colleague_joined()
    m.handle(HoldRequested(A, True))
    assert m.handle(LeaveRequested(A)) == [
        HangUpLeg(A_LEG),
        Facts.call_transferred(to=B, operator_id=A),
        StopMoh(),
        ReleaseOperator(A),
    ]
    assert m.held is False
    assert m.handle(HoldRequested(B, True)) == [StartMoh(), Facts.flag_set("on_hold")]


def test_a_held_caller_is_taken_back_when_left_to_a_supervisor_or_an_agency() -> None:
    m, leg = colleague_rung("sup", operator=False)
    m.handle(LegAnswered(leg))
    m.handle(HoldRequested(A, True))
    assert StopMoh() in m.handle(LegHungUp(A_LEG, 16))
    m = connected(A)
    (dial, _) = m.handle(AgencyRequested("police"))
    assert isinstance(dial, DialAgency)
    m.handle(LegAnswered(dial.channel_id))
    m.handle(HoldRequested(A, True))
    assert StopMoh() in m.handle(LegHungUp(A_LEG, 16))


def test_an_operator_leaving_the_caller_to_an_agency_stops_a_colleague_ringing() -> None:
    m, colleague = colleague_rung()
    (dial, _) = m.handle(AgencyRequested("police"))
    assert isinstance(dial, DialAgency)
    m.handle(LegAnswered(dial.channel_id))
    commands = m.handle(LegHungUp(A_LEG, 16))
    assert commands == [
        Facts.call_transferred("police", operator_id=A),
        FinishCall(A),
        HangUpLeg(colleague),  # the consult was A's: B's phone stops ringing
    ]


def test_a_colleague_leg_adopted_as_the_operators_after_a_restart_keeps_its_id() -> None:
    m = CallMachine("c1", connected(A).config)
    m.handle(Adopted(category="medical", operator_id=B, operator_channel="c1-col1"))
    (dial,) = m.handle(ColleagueRequested(B, "PJSIP/1001", A, True))
    assert isinstance(dial, DialColleague) and dial.channel_id != "c1-col1"
