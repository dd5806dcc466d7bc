"""Stateful property tests of the ACD engine: random interleavings of every event.

A shadow model follows the engine only through the events the test sends and the decisions the
engine returns; after every step the shadow and the engine must agree, and the shadow checks
the rules: no call lost, one call per operator, offers only to operators that may take them,
strict (priority, arrival) order for each operator, primary operators first, no emergency call
waiting beside a free operator with its skill at any level, nothing left undispatched,
re-queued calls in their place. Colleagues join connected calls and leave them (the call's
operator handing the call over to the colleague who joined first); with the disposition rule on
(one machine), every operator whose part of a connected call ends owes its disposition until
`DispositionGiven`, and one owed too long is offered nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from queues import (
    Acd,
    AcdConfig,
    AcdError,
    Announce,
    CallEnded,
    CallHungUp,
    CallPlace,
    CallPriorityChanged,
    CallQueued,
    CancelOffer,
    CancelReason,
    Category,
    Decision,
    DispositionGiven,
    Event,
    InvalidEvent,
    Offer,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
    OffersHeld,
    OfferTimedOut,
    OperatorJoined,
    OperatorLeft,
    OperatorLoggedIn,
    OperatorLoggedOut,
    OperatorPaused,
    OperatorReady,
    OperatorRegistration,
    OperatorState,
    OperatorStateChanged,
    Overflow,
    OverflowCondition,
    OverflowRule,
    OverflowTarget,
    Reason,
    Strategy,
    TargetKind,
    Tick,
    UnknownOperator,
)
from queues.audit import audit

# a and b are emergencies (secondary operators at once); d overflows to c, which waits longer
# for a primary operator: the call closes to secondary operators again for a while.
CATEGORIES = (
    Category("a", "A", "A", 1, "sa", 10, 2, 0),
    Category("b", "B", "B", 1, "sb", 10, 0, 0),
    Category("c", "C", "C", 3, "sc", 30, 1, 10),
    Category("d", "D", "D", 2, "sd", 30, 0, 5),
)
EMERGENCIES = {c.code for c in CATEGORIES if c.secondary_after_seconds == 0}
OVERFLOW = (
    OverflowRule("b", OverflowCondition.MAX_WAIT, OverflowTarget(TargetKind.CATEGORY, "a"), 25),
    OverflowRule("a", OverflowCondition.MAX_WAIT, OverflowTarget(TargetKind.CATEGORY, "b"), 40),
    OverflowRule(
        "a", OverflowCondition.QUEUE_LENGTH, OverflowTarget(TargetKind.NUMBER, "+6221"), 5
    ),
    OverflowRule("c", OverflowCondition.NO_OPERATOR, OverflowTarget(TargetKind.ROUTE, "fallback")),
    OverflowRule(
        "d", OverflowCondition.WAITING_RATIO, OverflowTarget(TargetKind.CATEGORY, "c"), 2.0
    ),
)
RING_TIMEOUT = 8.0
MAX_MISSES = 2
RETRY = 3.0
OPERATORS = ("o1", "o2", "o3", "o4")
SKILL_NAMES = ("sa", "sb", "sc", "sd", "sx")  # sx: a skill no category needs
IDLE = (OperatorState.AVAILABLE, OperatorState.WRAP_UP, OperatorState.PAUSED)

skills_strategy = st.dictionaries(
    st.sampled_from(SKILL_NAMES), st.sampled_from((1, 1, 2)), min_size=1, max_size=4
)


@dataclass
class ShadowCall:
    category: str
    arrival: float
    priority: int
    explicit: bool
    seq: int
    category_since: float

    def key(self) -> tuple[int, float, int]:
        return (self.priority, self.arrival, self.seq)


class AcdMachine(RuleBasedStateMachine):
    strategy = Strategy.LONGEST_IDLE
    disposition_block = 0.0  # the disposition rule, off (0) but in one machine

    def __init__(self) -> None:
        super().__init__()
        self.config = AcdConfig(
            CATEGORIES,
            strategy=self.strategy,
            ring_timeout_seconds=RING_TIMEOUT,
            max_consecutive_misses=MAX_MISSES,
            retry_after_busy_seconds=RETRY,
            overflow=OVERFLOW,
            announce_interval_seconds=5.0,
            disposition_block_after_seconds=self.disposition_block,
        )
        self.now = 100.0
        self.acd = Acd(self.config, self.now)
        self.seq = 0
        self.calls: dict[str, ShadowCall] = {}
        self.ever: set[str] = set()
        self.gone: dict[str, float] = {}  # gone call id -> its arrival, for re-queues
        self.offers: set[tuple[str, str]] = set()
        self.connected: dict[str, str] = {}
        self.state: dict[str, OperatorState] = {}
        self.skills: dict[str, dict[str, int]] = {}
        self.registered: dict[str, bool] = {}
        self.retry_until: dict[str, float] = {}
        self.misses: dict[str, int] = {}
        self.announced: dict[str, int] = {}
        self.step_offers: set[tuple[str, str]] = set()
        self.joined: dict[str, str] = {}  # colleague -> the connected call they joined
        self.owed: dict[str, dict[str, float]] = {}  # operator -> call id -> owed since
        self.disposed: set[str] = set()  # operators who gave their call's disposition on it
        self.held = False  # OffersHeld: a takeover adopting what Asterisk has

    # ---- sending events --------------------------------------------------------------------

    def send(self, event: Event) -> list[Decision]:
        decisions = self.acd.handle(event, self.now)
        self.step_offers = set()
        self.announced = {}
        for decision in decisions:
            self.follow(decision)
        return decisions

    def send_refused(self, event: Event, error: type[AcdError]) -> None:
        before = self.acd.snapshot()
        with pytest.raises(error):
            self.acd.handle(event, self.now)
        assert self.acd.snapshot() == before

    # ---- the shadow follows the decisions ----------------------------------------------------

    def waiting(self) -> list[str]:
        busy = {c for c, _ in self.offers} | set(self.connected)
        return [c for c in self.calls if c not in busy]

    def level(self, call_id: str, operator_id: str) -> int | None:
        """The operator's level of the call's skill, or None."""
        skill = self.config.category(self.calls[call_id].category).skill
        return self.skills.get(operator_id, {}).get(skill)

    def eligible(self, call_id: str, operator_id: str) -> bool:
        call = self.calls[call_id]
        level = self.level(call_id, operator_id)
        if level == 1:
            return True
        # The engine's own sum: `now - arrival >= wait` may round the other way.
        wait = self.config.category(call.category).secondary_after_seconds
        return level == 2 and call.arrival + wait <= self.now

    def dispatchable(self, operator_id: str) -> bool:
        return (
            self.state.get(operator_id) is OperatorState.AVAILABLE
            and self.registered.get(operator_id, True)
            and self.retry_until.get(operator_id, -math.inf) <= self.now
            and not self.held_for_disposition(operator_id)
        )

    def held_for_disposition(self, operator_id: str) -> bool:
        owed = self.owed.get(operator_id)
        # The engine's own sum, as `eligible` does.
        return bool(owed) and min(owed.values()) + self.disposition_block <= self.now

    def part_over(self, call_id: str, operator_id: str) -> None:
        """The operator's part of a connected call ended: its disposition is owed (rule on),
        unless they gave it during the call."""
        given = operator_id in self.disposed
        self.disposed.discard(operator_id)
        if self.disposition_block > 0 and not given:
            self.owed.setdefault(operator_id, {})[call_id] = self.now

    def connected_call_over(self, call_id: str) -> None:
        """A connected call ended: its operator's part and every joined colleague's."""
        self.part_over(call_id, self.connected.pop(call_id))
        for colleague in sorted(op for op, c in self.joined.items() if c == call_id):
            del self.joined[colleague]
            self.part_over(call_id, colleague)

    def on_call(self, operator_id: str) -> str | None:
        """The connected call the operator is on: theirs, or one they joined."""
        mine = [c for c, op in self.connected.items() if op == operator_id]
        return mine[0] if mine else self.joined.get(operator_id)

    def staffed(self, skill: str) -> int:
        return sum(
            1
            for op, state in self.state.items()
            if state is not OperatorState.LOGGED_OUT
            and self.registered.get(op, True)
            and skill in self.skills.get(op, {})
        )

    def follow(self, decision: Decision) -> None:
        if isinstance(decision, Offer):
            self.follow_offer(decision)
        elif isinstance(decision, CancelOffer):
            pair = (decision.call_id, decision.operator_id)
            assert pair in self.offers, f"{decision} cancels no live offer"
            self.offers.discard(pair)
            if decision.reason is CancelReason.RING_TIMEOUT:
                self.misses[decision.operator_id] = self.misses.get(decision.operator_id, 0) + 1
        elif isinstance(decision, OperatorStateChanged):
            op = decision.operator_id
            assert decision.old is self.state.get(op, OperatorState.LOGGED_OUT), decision
            self.state[op] = decision.new
            retry = decision.new is OperatorState.AVAILABLE and decision.reason in (
                Reason.BUSY,
                Reason.REJECTED,
                Reason.UNREACHABLE,
            )
            self.retry_until[op] = self.now + RETRY if retry else -math.inf
        elif isinstance(decision, Overflow):
            self.follow_overflow(decision)
        else:
            assert isinstance(decision, Announce)
            assert decision.call_id in self.waiting(), f"{decision} for a call not waiting"
            self.announced[decision.call_id] = decision.position

    def follow_offer(self, offer: Offer) -> None:
        call_id, op = offer.call_id, offer.operator_id
        assert not self.held, f"{offer}: offers are held"
        assert call_id in self.calls, f"{offer}: the call is gone"
        assert call_id not in self.connected
        earlier = {pair for pair in self.offers if pair[0] == call_id}
        if earlier:
            # Only ring-all rings several operators, all in the same dispatch.
            assert self.strategy is Strategy.RING_ALL and earlier <= self.step_offers, offer
        assert all(pair[1] != op for pair in self.offers), f"{offer}: operator already ringing"
        assert op not in self.connected.values(), f"{offer}: operator on a call"
        assert self.dispatchable(op), f"{offer}: operator {self.state.get(op)} not available"
        assert self.eligible(call_id, op), f"{offer}: operator lacks the skill"
        # No call is served before a more urgent call that the same operator could have taken.
        key = self.calls[call_id].key()
        for other in self.waiting():
            if other != call_id and self.eligible(other, op):
                assert self.calls[other].key() > key, f"{offer} jumps over {other}"
        # A secondary operator only when no primary one is free (ring-all rings them together).
        if self.strategy is not Strategy.RING_ALL and self.level(call_id, op) == 2:
            for other_op in self.state:
                primary = self.dispatchable(other_op) and self.level(call_id, other_op) == 1
                assert not primary, f"{offer}: primary operator {other_op} is free"
        self.offers.add((call_id, op))
        self.step_offers.add((call_id, op))

    def follow_overflow(self, overflow: Overflow) -> None:
        call = self.calls.get(overflow.call_id)
        assert call is not None and overflow.call_id in self.waiting(), overflow
        assert overflow.from_category == call.category
        category = self.config.category(call.category)
        others = sum(
            1
            for c in self.waiting()
            if c != overflow.call_id and self.calls[c].category == category.code
        )
        staffed = self.staffed(category.skill)
        rule = next(
            r for r in OVERFLOW if r.category == call.category and r.condition is overflow.condition
        )
        if rule.condition is OverflowCondition.NO_OPERATOR:
            assert staffed == 0, overflow
        elif rule.condition is OverflowCondition.MAX_WAIT:
            assert self.now - call.category_since >= rule.threshold, overflow
        elif rule.condition is OverflowCondition.QUEUE_LENGTH:
            assert others >= rule.threshold, overflow
        else:
            assert staffed == 0 or (others + 1) / staffed > rule.threshold, overflow
        assert overflow.target == rule.target
        if overflow.target.kind is TargetKind.CATEGORY:
            call.category = overflow.target.value
            call.category_since = self.now
            if not call.explicit:
                call.priority = self.config.category(call.category).priority
        else:
            del self.calls[overflow.call_id]
            self.gone[overflow.call_id] = call.arrival

    # ---- rules: calls ----------------------------------------------------------------------

    @initialize(skills=st.lists(skills_strategy, min_size=3, max_size=3))
    def operators_log_in(self, skills: list[dict[str, int]]) -> None:
        # Start staffed, so that offers are common from the first steps; the fourth operator
        # stays unknown until a login or a registration.
        for op, op_skills in zip(OPERATORS, skills, strict=False):
            self.login_event(op, op_skills)

    def queue(self, call_id: str, category: str, arrival: float, priority: int | None) -> None:
        self.calls[call_id] = ShadowCall(
            category,
            arrival,
            self.config.category(category).priority if priority is None else priority,
            priority is not None,
            self.seq,
            arrival,
        )
        self.seq += 1
        self.ever.add(call_id)
        self.gone.pop(call_id, None)
        self.send(CallQueued(call_id, category, arrival, priority))
        if call_id in self.waiting():
            assert call_id in self.announced, f"{call_id} waits unannounced"

    @rule(
        category=st.sampled_from([c.code for c in CATEGORIES]),
        age=st.floats(0, 30),
        priority=st.none() | st.integers(0, 4),
    )
    def arrive(self, category: str, age: float, priority: int | None) -> None:
        self.queue(f"c{len(self.ever)}", category, self.now - age, priority)

    @precondition(lambda self: self.gone)
    @rule(data=st.data(), category=st.sampled_from([c.code for c in CATEGORIES]))
    def requeue_gone_call(self, data: st.DataObject, category: str) -> None:
        # As after an app restart: the same call back with its original arrival.
        call_id = data.draw(st.sampled_from(sorted(self.gone)))
        self.queue(call_id, category, self.gone[call_id], None)

    @precondition(lambda self: self.ever)
    @rule(data=st.data(), ended=st.booleans())
    def call_leaves(self, data: st.DataObject, ended: bool) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.ever)))
        call = self.calls.pop(call_id, None)
        if call is not None:
            self.gone[call_id] = call.arrival
            if call_id in self.connected:
                self.connected_call_over(call_id)
        self.send(CallEnded(call_id) if ended else CallHungUp(call_id))
        assert self.acd.call_place(call_id) is None
        assert not any(pair[0] == call_id for pair in self.offers), "ringing for a gone call"

    @precondition(lambda self: self.ever)
    @rule(data=st.data(), priority=st.integers(0, 4))
    def change_priority(self, data: st.DataObject, priority: int) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.ever)))
        if call_id in self.calls:
            self.calls[call_id].priority = priority
            self.calls[call_id].explicit = True
        self.send(CallPriorityChanged(call_id, priority))

    # ---- rules: offers -----------------------------------------------------------------------

    @precondition(lambda self: self.offers)
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        call_id, op = data.draw(st.sampled_from(sorted(self.offers)))
        self.offers.discard((call_id, op))
        self.connected[call_id] = op
        self.misses[op] = 0
        self.disposed.discard(op)
        self.send(OfferAnswered(call_id, op))
        assert self.state[op] is OperatorState.ON_CALL
        assert not any(pair[0] == call_id for pair in self.offers), "others still ringing"

    @precondition(lambda self: self.offers)
    @rule()
    def answer_first_offer(self) -> None:
        # A second way to answer: answers are what lets calls end and operators wrap up.
        call_id, op = min(self.offers)
        self.offers.discard((call_id, op))
        self.connected[call_id] = op
        self.misses[op] = 0
        self.disposed.discard(op)
        self.send(OfferAnswered(call_id, op))
        assert self.state[op] is OperatorState.ON_CALL

    @precondition(lambda self: self.connected)
    @rule()
    def first_connected_call_ends(self) -> None:
        call_id = min(self.connected)
        self.connected_call_over(call_id)
        self.gone[call_id] = self.calls.pop(call_id).arrival
        self.send(CallEnded(call_id))
        assert self.acd.call_place(call_id) is None

    @precondition(lambda self: self.offers)
    @rule(data=st.data(), failure=st.sampled_from(OfferFailure) | st.none())
    def offer_fails(self, data: st.DataObject, failure: OfferFailure | None) -> None:
        call_id, op = data.draw(st.sampled_from(sorted(self.offers)))
        self.offers.discard((call_id, op))
        if failure in (None, OfferFailure.NO_ANSWER):
            self.misses[op] = self.misses.get(op, 0) + 1
        self.send(
            OfferTimedOut(call_id, op) if failure is None else OfferFailed(call_id, op, failure)
        )

    @precondition(lambda self: self.ever)
    @rule(data=st.data(), op=st.sampled_from(OPERATORS), kind=st.integers(0, 2))
    def stale_offer_event(self, data: st.DataObject, op: str, kind: int) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.ever)))
        if (call_id, op) in self.offers:
            return
        before = self.acd.snapshot()
        events: list[Event] = [
            OfferAnswered(call_id, op),
            OfferFailed(call_id, op, OfferFailure.BUSY),
            OfferTimedOut(call_id, op),
        ]
        assert self.send(events[kind]) == []
        assert self.acd.snapshot() == before

    # ---- rules: colleagues and dispositions ----------------------------------------------------

    @precondition(lambda self: self.connected)
    @rule(data=st.data(), op=st.sampled_from(OPERATORS))
    def colleague_joins(self, data: st.DataObject, op: str) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.connected)))
        event = OperatorJoined(call_id, op)
        if self.state.get(op, OperatorState.LOGGED_OUT) in (
            OperatorState.LOGGED_OUT,
            OperatorState.ON_CALL,  # the call's own operator too
        ):
            self.send_refused(event, AcdError)
            return
        self.joined[op] = call_id
        self.misses[op] = 0  # they answered their phone
        self.disposed.discard(op)
        self.send(event)
        assert self.state[op] is OperatorState.ON_CALL
        assert all(pair[1] != op for pair in self.offers), "a joined colleague still ringing"

    @precondition(lambda self: self.connected)
    @rule(data=st.data(), colleague=st.booleans())
    def operator_leaves(self, data: st.DataObject, colleague: bool) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.connected)))
        joined = sorted(op for op, c in self.joined.items() if c == call_id)
        if colleague and joined:
            op = data.draw(st.sampled_from(joined))
            del self.joined[op]
        else:
            op = self.connected[call_id]
            if not joined:  # nobody to hand the call over to: a stale event
                before = self.acd.snapshot()
                assert self.send(OperatorLeft(call_id, op)) == []
                assert self.acd.snapshot() == before
                return
            # The colleague who joined first takes the call over.
            self.connected[call_id] = joined[0]
            del self.joined[joined[0]]
        self.part_over(call_id, op)
        self.send(OperatorLeft(call_id, op))
        assert self.state[op] is not OperatorState.ON_CALL

    @precondition(lambda self: self.disposition_block > 0)
    @rule(data=st.data(), op=st.sampled_from(OPERATORS))
    def disposition_given(self, data: st.DataObject, op: str) -> None:
        owed = sorted(self.owed.get(op, {}))
        current = self.on_call(op)
        choices = owed + ([current] if current else []) + ["never-a-call"]
        call_id = data.draw(st.sampled_from(choices))
        if call_id in owed:
            del self.owed[op][call_id]
        elif call_id == current:
            self.disposed.add(op)
        self.send(DispositionGiven(op, call_id))

    # ---- rules: operators --------------------------------------------------------------------

    def login_event(self, op: str, skills: dict[str, int]) -> None:
        was = self.state.get(op, OperatorState.LOGGED_OUT)
        if was is OperatorState.LOGGED_OUT:
            self.misses[op] = 0
        self.skills[op] = dict(skills)
        self.send(OperatorLoggedIn(op, skills))
        if was is OperatorState.LOGGED_OUT:
            assert self.state[op] in (OperatorState.AVAILABLE, OperatorState.OFFERED)
        else:
            assert self.state[op] is was or was is OperatorState.AVAILABLE

    @rule(op=st.sampled_from(OPERATORS), skills=skills_strategy)
    def login(self, op: str, skills: dict[str, int]) -> None:
        self.login_event(op, skills)

    @rule(op=st.sampled_from(OPERATORS))
    def logout(self, op: str) -> None:
        if op not in self.state:
            self.send_refused(OperatorLoggedOut(op), UnknownOperator)
            return
        was = self.state[op]
        self.send(OperatorLoggedOut(op))
        expected = (
            OperatorState.ON_CALL if was is OperatorState.ON_CALL else OperatorState.LOGGED_OUT
        )
        assert self.state[op] is expected

    @rule(op=st.sampled_from(OPERATORS), reason=st.sampled_from(("break", "meal")))
    def pause(self, op: str, reason: str) -> None:
        was = self.state.get(op)
        if was is None:
            self.send_refused(OperatorPaused(op, reason), UnknownOperator)
        elif was is OperatorState.LOGGED_OUT:
            self.send_refused(OperatorPaused(op, reason), InvalidEvent)
        else:
            self.send(OperatorPaused(op, reason))
            expected = (
                OperatorState.ON_CALL if was is OperatorState.ON_CALL else OperatorState.PAUSED
            )
            assert self.state[op] is expected

    @rule(op=st.sampled_from(OPERATORS))
    def ready(self, op: str) -> None:
        was = self.state.get(op)
        if was is None:
            self.send_refused(OperatorReady(op), UnknownOperator)
        elif was is OperatorState.LOGGED_OUT:
            self.send_refused(OperatorReady(op), InvalidEvent)
        else:
            if was is OperatorState.PAUSED:
                self.misses[op] = 0
            self.send(OperatorReady(op))
            if was in (OperatorState.PAUSED, OperatorState.WRAP_UP):
                assert self.state[op] in (OperatorState.AVAILABLE, OperatorState.OFFERED)

    @rule(op=st.sampled_from(OPERATORS), registered=st.booleans())
    def registration(self, op: str, registered: bool) -> None:
        self.registered[op] = registered
        self.state.setdefault(op, OperatorState.LOGGED_OUT)
        self.send(OperatorRegistration(op, registered))
        if not registered:
            assert all(pair[1] != op for pair in self.offers)

    @rule(held=st.booleans())
    def hold_offers(self, held: bool) -> None:
        self.held = held
        self.send(OffersHeld(held))

    # ---- rules: time -------------------------------------------------------------------------

    @rule(dt=st.sampled_from((0.0, 0.5, 1.0, 2.5, 3.0, 5.0, 8.0, 10.0, 30.0)))
    def tick(self, dt: float) -> None:
        self.now += dt
        self.send(Tick())

    # ---- invariants --------------------------------------------------------------------------

    @invariant()
    def engine_is_consistent(self) -> None:
        assert audit(self.acd) == []

    @invariant()
    def every_call_is_in_exactly_one_place(self) -> None:
        ringing = {c for c, _ in self.offers}
        for call_id in self.ever:
            place = self.acd.call_place(call_id)
            if call_id not in self.calls:
                assert place is None, f"{call_id} should be gone, engine has it {place}"
                continue
            assert self.acd.call_category(call_id) == self.calls[call_id].category
            if call_id in self.connected:
                assert place is CallPlace.CONNECTED and call_id not in ringing
            elif call_id in ringing:
                assert place is CallPlace.OFFERED
            else:
                assert place is CallPlace.WAITING, f"{call_id}: {place}"

    @invariant()
    def operators_have_at_most_one_call(self) -> None:
        holders = [op for _, op in self.offers] + list(self.connected.values()) + list(self.joined)
        assert len(holders) == len(set(holders)), holders
        for op, state in self.state.items():
            assert self.acd.operator_state(op) is state
            has = op in holders
            assert has == (state in (OperatorState.OFFERED, OperatorState.ON_CALL)), (op, state)
        for call_id, op in self.connected.items():
            assert self.state[op] is OperatorState.ON_CALL, (call_id, op)
        for op, call_id in self.joined.items():
            assert call_id in self.connected, (op, call_id)
            assert self.state[op] is OperatorState.ON_CALL, (call_id, op)

    @invariant()
    def no_waiting_call_with_an_eligible_available_operator(self) -> None:
        if self.held:
            return  # they wait for the release, in their order
        for call_id in self.waiting():
            for op in self.state:
                assert not (self.dispatchable(op) and self.eligible(call_id, op)), (call_id, op)

    @invariant()
    def no_emergency_call_waits_beside_a_free_operator_with_its_skill(self) -> None:
        if self.held:
            return
        for call_id in self.waiting():
            if self.calls[call_id].category in EMERGENCIES:
                for op in self.state:
                    free = self.dispatchable(op) and self.level(call_id, op) is not None
                    assert not free, f"emergency {call_id} waits while {op} is free"

    @invariant()
    def waiting_calls_keep_their_place(self) -> None:
        waiting = self.waiting()
        for call_id in waiting:
            call = self.calls[call_id]
            skill = self.config.category(call.category).skill
            ahead = sum(
                1
                for other in waiting
                if self.config.category(self.calls[other].category).skill == skill
                and self.calls[other].key() < call.key()
            )
            info = self.acd.queue_info(call_id)
            assert info is not None and info.position == ahead + 1, (call_id, info, ahead)
            if call_id in self.announced:
                assert self.announced[call_id] == ahead + 1
        snapshot = {w.call_id: w for v in self.acd.snapshot().categories for w in v.waiting}
        assert set(snapshot) == set(waiting)
        for call_id, view in snapshot.items():
            assert view.age_seconds == self.now - self.calls[call_id].arrival

    @invariant()
    def misses_pause_the_operator_and_dispositions_are_owed(self) -> None:
        for view in self.acd.snapshot().operators:
            misses = self.misses.get(view.operator_id, 0)
            assert view.consecutive_misses == misses, (view, misses)
            if misses >= MAX_MISSES:
                assert view.state in (OperatorState.PAUSED, OperatorState.LOGGED_OUT), view
            # The disposition rule (one snapshot a step for both: the test's time is in them).
            owed = self.owed.get(view.operator_id, {})
            assert view.dispositions_owed == len(owed), (view, owed)
            assert view.held_for_disposition == self.held_for_disposition(view.operator_id)


def _machine(strategy: Strategy, disposition_block: float = 0.0) -> type[AcdMachine]:
    return type(
        f"AcdMachine_{strategy.value}",
        (AcdMachine,),
        {"strategy": strategy, "disposition_block": disposition_block},
    )


_settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestLongestIdle = _machine(Strategy.LONGEST_IDLE).TestCase
TestLongestIdle.settings = _settings
TestFewestCalls = _machine(Strategy.FEWEST_CALLS, disposition_block=20.0).TestCase
TestFewestCalls.settings = _settings
TestRoundRobin = _machine(Strategy.ROUND_ROBIN).TestCase
TestRoundRobin.settings = _settings
TestRingAll = _machine(Strategy.RING_ALL).TestCase
TestRingAll.settings = _settings
