"""Desk call controls in any order, against the real ACD core: whatever the operator presses and
whatever the legs do, the caller is never left alone in a conversation, the ACD has the call's
operator (and a joined colleague) on the call, and nobody on it once the call is over; a caller
on hold always has an operator to take them back."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.app import acd_config
from ari_app.call import (
    AgencyRequested,
    CallEvent,
    CallMachine,
    CallState,
    ClaimColleague,
    ColleagueClaimed,
    ColleagueRequested,
    Command,
    FinishCall,
    HangUpRequested,
    HoldRequested,
    HungUp,
    LeaveQueue,
    LeaveRequested,
    LegAnswered,
    LegHungUp,
    OperatorConnected,
    OperatorRinging,
    Party,
    ReleaseOperator,
    SideKind,
)
from ari_app.call.states import HandOffStatus
from queues import events as acd
from queues.acd import Acd
from queues.audit import audit
from queues.decisions import Decision, OperatorStateChanged
from queues.errors import AcdError
from queues.states import OperatorState
from siaga.config import Config, load_config

CONFIG: Config = load_config(Path(__file__).resolve().parents[2] / "siaga.toml")
CALL, A = "c1", "1001"
# 9999: no such operator; sup: a supervisor

# Who presses a desk control: mostly the two operators (the call's, and the colleague who may
# take it over); the ends of the call (hang up, the caller gone) are rarer, so that scripts get
# far into conferences and hand-overs.
who = st.sampled_from(("1001", "1001", "1002", "1002", "9999"))
rung = st.sampled_from(("1001", "1002", "1002", "9999", "sup"))
spec = st.one_of(
    st.tuples(st.just("colleague"), who, rung),
    st.tuples(st.just("colleague"), who, rung),
    st.tuples(st.just("answered"), st.sampled_from(("newest", "newest", "oldest", "operator"))),
    st.tuples(st.just("answered"), st.just("newest")),
    st.tuples(st.just("leave"), who),
    st.tuples(st.just("hold"), who, st.booleans()),
    st.tuples(
        st.just("leg_hung_up"),
        st.sampled_from(("newest", "oldest", "operator", "first_operator")),
        st.booleans(),
    ),
    st.tuples(
        st.just("agency"),
    ),
    st.tuples(st.just("hang_up"), who),
    st.tuples(
        st.just("caller_gone"),
    ),
)

# A conference's usual story, each chapter optional (shrinking drops them), noise between.
STORY: tuple[tuple[object, ...], ...] = (
    ("colleague", "1001", "1002"),
    ("answered", "newest"),
    ("leave", "1001"),
    ("leg_hung_up", "first_operator", True),
    ("hold", "1002", True),
    ("colleague", "1002", "sup"),
    ("answered", "newest"),
    ("leave", "1002"),
    ("leg_hung_up", "newest", False),
)


@st.composite
def scripts(draw: st.DrawFn) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for chapter in STORY:
        out += draw(st.lists(spec, max_size=3))
        # Most chapters happen (7 in 8), so that scripts get far into the story.
        if not (draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())):
            out.append(chapter)
    return out + draw(st.lists(spec, max_size=3))


class Shell:
    """What the actor does with the ACD commands, over the real ACD core."""

    def __init__(self) -> None:
        self.now = time.monotonic()
        self.acd = Acd(acd_config(CONFIG), self.now)
        for op in CONFIG.operators:
            self.feed(acd.OperatorLoggedIn(op.id, dict(op.skills)))
        category = CONFIG.categories[0].code
        self.feed(acd.CallQueued(CALL, category, self.now))
        offered = self.acd.operator_state(A) is OperatorState.OFFERED
        assert offered, "the ACD offers the call to 1001 first"
        self.feed(acd.OfferAnswered(CALL, A))

    def feed(self, event: acd.Event) -> list[Decision]:
        self.now += 0.01
        decisions = self.acd.handle(event, self.now)
        assert audit(self.acd) == []
        return decisions

    def carry_out(self, commands: list[Command]) -> list[CallEvent]:
        replies: list[CallEvent] = []
        for command in commands:
            match command:
                case ClaimColleague(operator_id=operator_id, channel_id=channel_id):
                    try:
                        decisions = self.feed(acd.OperatorJoined(CALL, operator_id))
                    except AcdError:
                        decisions = []
                    won = any(
                        isinstance(d, OperatorStateChanged) and d.new is OperatorState.ON_CALL
                        for d in decisions
                    )
                    replies.append(ColleagueClaimed(channel_id, won))
                case ReleaseOperator(operator_id=operator_id):
                    self.feed(acd.OperatorLeft(CALL, operator_id))
                case FinishCall():
                    self.feed(acd.CallEnded(CALL))
                case LeaveQueue():
                    self.feed(acd.CallHungUp(CALL))
        return replies


def channel(m: CallMachine, which: object) -> str:
    """A leg of the call: the newest or oldest side leg (agency, colleague), the connected
    operator's, or the first operator's."""
    sides = list(m.side)
    if which == "newest" and sides:
        return sides[-1]
    if which == "oldest" and sides:
        return sides[0]
    if which == "operator":
        return m.connected_leg() or "op-chan"
    return "op-chan"


def event_of(m: CallMachine, step: tuple[object, ...]) -> CallEvent:
    match step:
        case ("hang_up", who):
            return HangUpRequested(str(who))
        case ("hold", who, hold):
            return HoldRequested(str(who), bool(hold))
        case ("colleague", who, name):
            return ColleagueRequested(str(who), f"PJSIP/{name}", str(name), name != "sup")
        case ("leave", who):
            return LeaveRequested(str(who))
        case ("answered", which):
            return LegAnswered(channel(m, which))
        case ("leg_hung_up", which, destroyed):
            return LegHungUp(channel(m, which), 16, bool(destroyed))
        case ("agency",):
            return AgencyRequested("police")
        case _:
            return HungUp(Party.CALLER, "16")


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(scripts())
def test_desk_controls_never_leave_the_caller_alone_and_keep_the_acd_right(
    script: list[tuple[object, ...]],
) -> None:
    shell = Shell()
    m = CallMachine(CALL, CONFIG)
    m.state = CallState.QUEUED  # classified and waiting (the menus are test_call.py's)
    m.category = CONFIG.categories[0].code
    m.handle(OperatorRinging(A))
    m.handle(OperatorConnected(A, "op-chan"))
    assert m.state is CallState.CONNECTED
    for step in script:
        pending = [event_of(m, step)]
        while pending:
            pending += shell.carry_out(m.handle(pending.pop(0)))
        colleague = next(
            (s for s in m.side.values() if s.kind is SideKind.COLLEAGUE and not s.gone), None
        )
        answered = colleague is not None and colleague.answered
        on_call = {
            op.id
            for op in CONFIG.operators
            if shell.acd.operator_state(op.id) is OperatorState.ON_CALL
        }
        if m.state is CallState.CONNECTED:
            assert m.operator_present or m.agencies or answered, "the caller is alone"
            # On hold only while an operator is there to take them back.
            assert not m.held or m.operator_present, "the caller is left on hold"
            with_the_caller = set()
            if m.operator_present and m.operator_id is not None:
                with_the_caller.add(m.operator_id)
            if answered and colleague is not None and colleague.operator_id:
                with_the_caller.add(colleague.operator_id)
            # Those in the conversation are busy for the ACD; whoever left it is free.
            assert on_call == with_the_caller, (on_call, with_the_caller)
        elif m.state.final:
            assert on_call == set(), "an operator stays on a call that is over"
            assert all(h.status is not HandOffStatus.RINGING for h in m.hand_offs())
