"""A colleague conferenced in beside the call's operator, as the desk needs it: the machine
names them (`joined_operators`, so their desk shows the call), and their hang up or leave from
the desk ends their own leg only, never the caller's."""

from __future__ import annotations

from test_call_controls import A_LEG, A, B, colleague_joined, colleague_rung

from ari_app.call import (
    CallState,
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
)


def test_only_a_colleague_in_the_conversation_is_joined() -> None:
    m, leg = colleague_rung()
    assert m.joined_operators() == ()  # still ringing
    m, leg = colleague_joined()
    assert m.joined_operators() == (B,)
    m.handle(LegHungUp(leg, 16))
    assert m.joined_operators() == ()


def test_a_supervisor_colleague_is_no_joined_operator() -> None:
    m, leg = colleague_rung("sup", operator=False)
    m.handle(LegAnswered(leg))
    assert m.joined_operators() == ()


def test_the_colleague_hanging_up_on_the_desk_leaves_their_own_leg_only() -> None:
    for request in (HangUpRequested(B), LeaveRequested(B)):
        m, leg = colleague_joined()
        assert m.handle(request) == [HangUpLeg(leg)]
        assert (m.state, m.operator_id, m.connected_leg()) == (CallState.CONNECTED, A, A_LEG)
        # Their leg's end frees them in the ACD; the caller stays with A.
        assert m.handle(LegHungUp(leg, 16, destroyed=True)) == [ReleaseOperator(B)]
        assert m.hand_offs() == (HandOff(SideKind.COLLEAGUE, B, HandOffStatus.LEFT),)
        assert m.state is CallState.CONNECTED and m.joined_operators() == ()


def test_a_colleague_does_not_hold_and_a_ringing_one_does_nothing() -> None:
    m, _ = colleague_joined()
    assert m.handle(HoldRequested(B, True)) == []
    m, _ = colleague_rung()
    assert m.handle(HangUpRequested(B)) == [] and m.handle(LeaveRequested(B)) == []
    assert m.state is CallState.CONNECTED


def test_after_the_hand_over_the_colleague_is_the_operator_not_joined() -> None:
    m, leg = colleague_joined()
    m.handle(LeaveRequested(A))
    assert (m.operator_id, m.joined_operators()) == (B, ())
    assert HangUpLeg(leg) in m.handle(HangUpRequested(B))  # ends the call now, as its operator
    assert m.state is CallState.ENDED
