"""The ACD engine: events in, decisions out. No IO; the shell injects a monotonic `now`."""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from queues.config import (
    AcdConfig,
    Category,
    OverflowCondition,
    OverflowRule,
    OverflowTarget,
    Strategy,
    TargetKind,
)
from queues.decisions import (
    Announce,
    CancelOffer,
    Decision,
    Offer,
    OperatorStateChanged,
    Overflow,
)
from queues.errors import (
    AcdError,
    ClockWentBackwards,
    DuplicateCall,
    InvalidEvent,
    UnknownCategory,
    UnknownOperator,
)
from queues.events import (
    CallAdopted,
    CallEnded,
    CallHungUp,
    CallPriorityChanged,
    CallQueued,
    DispositionGiven,
    Event,
    OfferAnswered,
    OfferFailed,
    OffersHeld,
    OfferTimedOut,
    OperatorJoined,
    OperatorLeft,
    OperatorLoggedIn,
    OperatorLoggedOut,
    OperatorPaused,
    OperatorReady,
    OperatorRegistration,
    Tick,
)
from queues.ewt import HandleTimes, estimate_wait
from queues.pools import HeapPool, OperatorPool, RoundRobinPool
from queues.snapshot import CategoryView, OperatorView, QueueInfo, Snapshot, WaitingCall
from queues.states import CallPlace, CancelReason, OfferFailure, OperatorState, Reason
from queues.waiting import CallKey, WaitingLine

log = structlog.get_logger(__name__)

_AVAILABLE = OperatorState.AVAILABLE
_OFFERED = OperatorState.OFFERED
_ON_CALL = OperatorState.ON_CALL
_WRAP_UP = OperatorState.WRAP_UP
_PAUSED = OperatorState.PAUSED
_LOGGED_OUT = OperatorState.LOGGED_OUT

# Timer kinds; a timer is (due, counter, kind, call_id, operator_id, token) and is checked
# against the current state when it fires, so stale timers need no cancelling.
_RING, _RETRY, _WRAP_END, _OPEN_TO_SECONDARY, _MAX_WAIT, _OWED_TOO_LONG = range(6)

_FAILURE_REASON = {
    OfferFailure.NO_ANSWER: Reason.NO_ANSWER,
    OfferFailure.BUSY: Reason.BUSY,
    OfferFailure.REJECTED: Reason.REJECTED,
    OfferFailure.UNREACHABLE: Reason.UNREACHABLE,
}
_MISSES = (Reason.NO_ANSWER, Reason.RING_TIMEOUT)
_RETRIES = (Reason.BUSY, Reason.REJECTED, Reason.UNREACHABLE)


@dataclass(slots=True, eq=False)
class _Call:
    call_id: str
    category: Category
    priority: int
    priority_explicit: bool  # set by the shell: kept when the call overflows to a category
    arrival: float
    seq: int
    flags: frozenset[str]
    key: CallKey
    category_since: float  # max-wait overflow counts from here
    visited: set[str]  # categories already tried: overflow never loops back
    tried: frozenset[str] = frozenset()  # targets it came back from (CallQueued.tried)
    place: CallPlace = CallPlace.WAITING
    offered_to: set[str] = field(default_factory=set)
    operator_id: str | None = None
    joined: set[str] = field(default_factory=set)  # colleagues conferenced in (OperatorJoined)
    # Secondary (level 2) operators may take the call from `secondary_at` on: its arrival plus
    # its category's `secondary_after_seconds`.
    secondary_at: float = 0.0
    open_to_secondary: bool = False
    overflow_at: float | None = None
    announce_at: float | None = None


@dataclass(slots=True, eq=False)
class _Operator:
    operator_id: str
    seq: int
    skills: dict[str, int] = field(default_factory=dict)
    state: OperatorState = _LOGGED_OUT
    since: float = 0.0
    reason: str = ""
    registered: bool = True  # until the shell says otherwise
    call_id: str | None = None  # the call ringing or connected
    idle_since: float = 0.0
    retry_at: float | None = None  # after busy/rejected/unreachable
    pooled: bool = False  # in the pools: may be offered a call right now
    token: int = 0  # changes with every state change; timers carry it
    calls_offered: int = 0
    calls_answered: int = 0
    consecutive_misses: int = 0
    pending_pause: str | None = None
    pending_logout: bool = False
    answered_at: float | None = None
    handled_category: str | None = None
    # The disposition rule: call id -> when its disposition became owed (the call's end), and
    # whether the current call's was given during it.
    owed: dict[str, float] = field(default_factory=dict)
    disposed_current: bool = False


class Acd:
    """The call distributor's core.

    `handle(event, now)` applies one event, fires the timers due at `now`, offers every call
    that can be offered, announces, and returns the decisions. A refused event raises an
    `AcdError` and changes nothing.
    """

    def __init__(self, config: AcdConfig, now: float) -> None:
        if not _is_time(now):
            raise InvalidEvent(f"now must be a finite number, not {now!r}")
        self.config = config
        self._now = float(now)
        self._skills = config.skills
        self._ring_all = config.strategy is Strategy.RING_ALL
        pool: type[OperatorPool] = (
            RoundRobinPool if config.strategy is Strategy.ROUND_ROBIN else HeapPool
        )
        self._pools: dict[str, tuple[OperatorPool, OperatorPool]] = {
            s: (pool(), pool()) for s in self._skills
        }
        # Per skill: every waiting call (for primary operators), and those open to secondary ones.
        self._lines = {s: WaitingLine() for s in self._skills}
        self._secondary_lines = {s: WaitingLine() for s in self._skills}
        self._calls: dict[str, _Call] = {}
        self._ops: dict[str, _Operator] = {}
        self._waiting_in = {c.code: 0 for c in config.categories}
        self._staffed = dict.fromkeys(self._skills, 0)  # logged in and registered
        self._serving = dict.fromkeys(self._skills, 0)  # ...and primary, and not paused
        self._unstaffed: set[str] = set()
        self._rules: dict[str, list[OverflowRule]] = {}
        self._max_wait: dict[str, OverflowRule] = {}
        self._no_operator: dict[str, list[tuple[str, OverflowRule]]] = {}
        for rule in config.overflow:
            if rule.condition is OverflowCondition.MAX_WAIT:
                self._max_wait[rule.category] = rule
            else:
                self._rules.setdefault(rule.category, []).append(rule)
            if rule.condition is OverflowCondition.NO_OPERATOR:
                skill = config.category(rule.category).skill
                self._no_operator.setdefault(skill, []).append((rule.category, rule))
        self._timers: list[tuple[float, int, int, str, str, int]] = []
        # A call is announced when queued (`_fresh`), then every interval: those due times
        # (now + interval) only grow in push order, so a FIFO does the work of a heap.
        self._fresh: list[tuple[str, int]] = []
        self._announcements: deque[tuple[float, str, int]] = deque()
        self._counter = itertools.count()
        self._call_seq = itertools.count()
        self._op_seq = itertools.count()
        self._dirty = False  # a call or an operator became dispatchable since the last pass
        self._held = False  # OffersHeld: no dispatch pass until released
        self._handle_times = HandleTimes(config.ewt_window, config.default_handle_seconds)
        self._out: list[Decision] = []
        self._handlers: dict[type, Callable[[Any], None]] = {
            CallQueued: self._on_call_queued,
            CallAdopted: self._on_call_adopted,
            CallPriorityChanged: self._on_priority_changed,
            CallHungUp: self._on_call_gone,
            CallEnded: self._on_call_gone,
            OperatorJoined: self._on_operator_joined,
            OperatorLeft: self._on_operator_left,
            OperatorLoggedIn: self._on_logged_in,
            OperatorLoggedOut: self._on_logged_out,
            OperatorPaused: self._on_paused,
            OperatorReady: self._on_ready,
            OperatorRegistration: self._on_registration,
            OfferAnswered: self._on_answered,
            OfferFailed: self._on_offer_failed,
            OfferTimedOut: self._on_offer_timed_out,
            DispositionGiven: self._on_disposition_given,
            OffersHeld: self._on_offers_held,
            Tick: _ignore,
        }

    # ---- the one entry point -------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Decision]:
        try:
            on_time = self._now <= now < math.inf  # also refuses NaN
        except TypeError:
            on_time = False
        if not on_time:
            if not _is_time(now):
                raise InvalidEvent(f"now must be a finite number, not {now!r}")
            raise ClockWentBackwards(f"now {now} is before the previous {self._now}")
        handler = self._handlers.get(type(event))
        if handler is None:
            raise InvalidEvent(f"not an ACD event: {event!r}")
        previous = self._now
        self._now = now
        out: list[Decision] = []
        self._out = out
        try:
            # Handlers check everything before they change anything.
            handler(event)
        except AcdError:
            self._now = previous
            raise
        if self._unstaffed:
            self._overflow_unstaffed()
        if self._timers and self._timers[0][0] <= now:
            self._run_timers()
        if self._dirty and not self._held:
            self._dispatch()
        if self._fresh or (self._announcements and self._announcements[0][0] <= now):
            self._run_announcements()
        return out

    # ---- read-only views -----------------------------------------------------------------

    @property
    def now(self) -> float:
        return self._now

    def next_due(self) -> float | None:
        """When the next timer may fire: the shell should send a `Tick` then (or earlier)."""
        dues = [self._timers[0][0]] if self._timers else []
        if self._announcements:
            dues.append(self._announcements[0][0])
        return min(dues) if dues else None

    def call_place(self, call_id: str) -> CallPlace | None:
        """Where the call is, or None when the engine no longer holds it (gone)."""
        call = self._calls.get(call_id)
        return call.place if call else None

    def call_category(self, call_id: str) -> str | None:
        call = self._calls.get(call_id)
        return call.category.code if call else None

    def operator_state(self, operator_id: str) -> OperatorState | None:
        op = self._ops.get(operator_id)
        return op.state if op else None

    def queue_info(self, call_id: str) -> QueueInfo | None:
        """Position and estimated wait of a waiting call; None for any other call."""
        call = self._calls.get(call_id)
        if call is None or call.place is not CallPlace.WAITING:
            return None
        position = self._lines[call.category.skill].position(call.key)
        return QueueInfo(position, self._ewt(call, position))

    def snapshot(self) -> Snapshot:
        now = self._now
        offered = dict.fromkeys(self._waiting_in, 0)
        connected = dict.fromkeys(self._waiting_in, 0)
        for call in self._calls.values():
            if call.place is CallPlace.OFFERED:
                offered[call.category.code] += 1
            elif call.place is CallPlace.CONNECTED:
                connected[call.category.code] += 1
        views = []
        for cat in self.config.categories:
            line = self._lines[cat.skill]
            waiting = []
            for position, key in enumerate(line, start=1):
                call = self._calls[key[3]]
                if call.category is cat:
                    waiting.append(
                        WaitingCall(
                            call.call_id,
                            now - call.arrival,
                            call.priority,
                            position,
                            call.open_to_secondary,
                            call.flags,
                        )
                    )
            views.append(
                CategoryView(
                    cat.code,
                    cat.skill,
                    cat.target_answer_seconds,
                    tuple(waiting),
                    offered[cat.code],
                    connected[cat.code],
                )
            )
        operators = tuple(
            OperatorView(
                op.operator_id,
                op.state,
                op.reason,
                now - op.since,
                op.call_id,
                op.registered,
                tuple(sorted(op.skills.items())),
                op.calls_offered,
                op.calls_answered,
                op.consecutive_misses,
                "logout"
                if op.pending_logout
                else (f"pause:{op.pending_pause}" if op.pending_pause is not None else None),
                len(op.owed),
                self._owes_too_long(op),
            )
            for op in sorted(self._ops.values(), key=lambda o: o.operator_id)
        )
        return Snapshot(now, tuple(views), operators)

    # ---- call events ---------------------------------------------------------------------

    def _new_call(self, event: CallQueued | CallAdopted) -> _Call:
        """Check a call entering the engine and build it (not yet stored)."""
        call_id = _check_id(event.call_id, "call_id")
        if not isinstance(event.category, str) or not self.config.has_category(event.category):
            raise UnknownCategory(f"call {call_id}: no category named {event.category!r}")
        if not _is_time(event.arrival):
            raise InvalidEvent(f"call {call_id}: arrival must be a finite number")
        if event.arrival > self._now:
            raise InvalidEvent(f"call {call_id}: arrival {event.arrival} is after now {self._now}")
        if event.priority is not None:
            _check_priority(event.priority, call_id)
        _check_flags(event.flags, call_id)
        if isinstance(event, CallQueued):
            _check_flags(event.tried, call_id, "tried")
        if call_id in self._calls:
            raise DuplicateCall(f"call {call_id} is already {self._calls[call_id].place}")

        category = self.config.category(event.category)
        priority = category.priority if event.priority is None else event.priority
        seq = next(self._call_seq)
        arrival = float(event.arrival)
        return _Call(
            call_id=call_id,
            category=category,
            priority=priority,
            priority_explicit=event.priority is not None,
            arrival=arrival,
            seq=seq,
            flags=event.flags,
            key=(priority, arrival, seq, call_id),
            category_since=arrival,
            visited={category.code},
            tried=event.tried if isinstance(event, CallQueued) else frozenset(),
        )

    def _on_call_queued(self, event: CallQueued) -> None:
        call = self._new_call(event)
        self._calls[call.call_id] = call
        self._open_to_secondary_at(call)
        if self.config.announce_interval_seconds is not None:
            self._fresh.append((call.call_id, call.seq))
        self._admit(call)

    def _on_priority_changed(self, event: CallPriorityChanged) -> None:
        call_id = _check_id(event.call_id, "call_id")
        _check_priority(event.priority, call_id)
        if event.flags is not None:
            _check_flags(event.flags, call_id)
        call = self._calls.get(call_id)
        if call is None:
            log.debug("stale event ignored", call_id=call_id, kind="CallPriorityChanged")
            return
        if event.flags is not None:
            call.flags = event.flags
        waiting = call.place is CallPlace.WAITING
        if waiting:
            self._take_from_lines(call)
        call.priority = event.priority
        call.priority_explicit = True
        call.key = (event.priority, call.arrival, call.seq, call_id)
        if waiting:
            self._put_in_lines(call)

    def _on_call_gone(self, event: CallHungUp | CallEnded) -> None:
        call_id = _check_id(event.call_id, "call_id")
        call = self._calls.pop(call_id, None)
        if call is None:
            log.debug("stale event ignored", call_id=call_id, kind=type(event).__name__)
            return
        if call.place is CallPlace.WAITING:
            self._take_from_lines(call)
        elif call.place is CallPlace.OFFERED:
            for operator_id in sorted(call.offered_to):
                self._out.append(CancelOffer(call_id, operator_id, CancelReason.CALLER_GONE))
                self._end_offer(self._ops[operator_id], call, Reason.CALLER_GONE)
        else:
            assert call.operator_id is not None
            self._call_over(self._ops[call.operator_id], call)
            for operator_id in sorted(call.joined):
                self._call_over(self._ops[operator_id], call)

    def _on_offers_held(self, event: OffersHeld) -> None:
        if not isinstance(event.held, bool):
            raise InvalidEvent(f"held must be true or false, not {event.held!r}")
        if self._held and not event.held:
            self._dirty = True  # everything that queued meanwhile is dispatchable now
        self._held = event.held

    def _on_call_adopted(self, event: CallAdopted) -> None:
        op = self._logged_in(event.operator_id, "take an adopted call")
        if op.state is not _AVAILABLE and op.state is not _OFFERED:
            raise InvalidEvent(f"operator {op.operator_id} is {op.state}, cannot take a call")
        call = self._new_call(event)
        if op.state is _OFFERED:
            # Asterisk says they are talking: what it shows beats an offer made before their
            # conversation was adopted (a takeover adopts each node's calls in turn).
            self._withdraw_offer(op, CancelReason.OPERATOR_BUSY)
        call.place = CallPlace.CONNECTED
        call.operator_id = op.operator_id
        call_id, category = call.call_id, call.category
        self._calls[call_id] = call
        op.answered_at = self._now
        op.handled_category = category.code
        op.disposed_current = False
        self._set_state(op, _ON_CALL, Reason.ANSWERED, call_id)

    def _on_operator_joined(self, event: OperatorJoined) -> None:
        call_id = _check_id(event.call_id, "call_id")
        op = self._logged_in(event.operator_id, "join a call")
        call = self._calls.get(call_id)
        if call is None or call.place is not CallPlace.CONNECTED:
            log.debug("stale event ignored", call_id=call_id, kind="OperatorJoined")
            return
        if op.state is _ON_CALL:
            raise InvalidEvent(f"operator {op.operator_id} is on call {op.call_id} already")
        if op.state is _OFFERED:
            self._withdraw_offer(op)  # their phone answered the colleague, not the offer
        if op.state is _PAUSED:
            op.pending_pause = op.reason  # paused they were, paused they will be after it
        self._finish_handling(op)
        op.consecutive_misses = 0  # they answered their phone, as for an offer
        op.answered_at = self._now
        op.handled_category = call.category.code
        op.disposed_current = False
        call.joined.add(op.operator_id)
        self._set_state(op, _ON_CALL, Reason.JOINED, call_id)

    def _on_operator_left(self, event: OperatorLeft) -> None:
        call_id = _check_id(event.call_id, "call_id")
        operator_id = _check_id(event.operator_id, "operator_id")
        call = self._calls.get(call_id)
        op = self._ops.get(operator_id)
        if call is None or op is None or call.place is not CallPlace.CONNECTED:
            log.debug("stale event ignored", call_id=call_id, kind="OperatorLeft")
            return
        if operator_id in call.joined:
            call.joined.discard(operator_id)  # the colleague left again
            self._call_over(op, call)
        elif operator_id == call.operator_id and call.joined:
            # The call's operator hands it over to the colleague who joined first.
            call.operator_id = min(call.joined)
            call.joined.discard(call.operator_id)
            self._call_over(op, call, Reason.HANDED_OVER)
        else:
            log.debug("stale event ignored", call_id=call_id, kind="OperatorLeft")

    # ---- offer events --------------------------------------------------------------------

    def _offer_of(self, call_id: str, operator_id: str) -> tuple[_Operator, _Call] | None:
        """The live offer of this call to this operator, or None if the event is stale."""
        op = self._ops.get(operator_id)
        call = self._calls.get(call_id)
        if op is None or call is None or op.state is not _OFFERED or op.call_id != call_id:
            log.debug("stale offer event ignored", call_id=call_id, operator=operator_id)
            return None
        return op, call

    def _on_answered(self, event: OfferAnswered) -> None:
        call_id = _check_id(event.call_id, "call_id")
        found = self._offer_of(call_id, _check_id(event.operator_id, "operator_id"))
        if found is None:
            return
        op, call = found
        for other in sorted(call.offered_to - {op.operator_id}):
            self._out.append(CancelOffer(call_id, other, CancelReason.ANSWERED_ELSEWHERE))
            self._end_offer(self._ops[other], call, Reason.ANSWERED_ELSEWHERE)
        call.offered_to.clear()
        call.place = CallPlace.CONNECTED
        call.operator_id = op.operator_id
        op.consecutive_misses = 0
        op.calls_answered += 1
        op.answered_at = self._now
        op.handled_category = call.category.code
        op.disposed_current = False
        self._set_state(op, _ON_CALL, Reason.ANSWERED, call_id)

    def _on_offer_failed(self, event: OfferFailed) -> None:
        call_id = _check_id(event.call_id, "call_id")
        operator_id = _check_id(event.operator_id, "operator_id")
        try:
            reason = _FAILURE_REASON[OfferFailure(event.reason)]
        except ValueError:
            raise InvalidEvent(
                f"offer failure {event.reason!r} is not one of {', '.join(OfferFailure)}"
            ) from None
        found = self._offer_of(call_id, operator_id)
        if found is not None:
            self._end_offer(found[0], found[1], reason)

    def _on_offer_timed_out(self, event: OfferTimedOut) -> None:
        call_id = _check_id(event.call_id, "call_id")
        found = self._offer_of(call_id, _check_id(event.operator_id, "operator_id"))
        if found is not None:
            self._end_offer(found[0], found[1], Reason.RING_TIMEOUT)

    # ---- operator events -----------------------------------------------------------------

    def _operator(self, operator_id: object) -> _Operator:
        op = self._ops.get(_check_id(operator_id, "operator_id"))
        if op is None:
            raise UnknownOperator(f"operator {operator_id} has never logged in")
        return op

    def _logged_in(self, operator_id: object, action: str) -> _Operator:
        op = self._operator(operator_id)
        if op.state is _LOGGED_OUT:
            raise InvalidEvent(f"operator {operator_id} cannot {action}: logged out")
        return op

    def _on_logged_in(self, event: OperatorLoggedIn) -> None:
        operator_id = _check_id(event.operator_id, "operator_id")
        skills = _check_skills(event.skills, operator_id)
        op = self._ops.get(operator_id)
        if op is None:
            op = self._ops[operator_id] = _Operator(operator_id, next(self._op_seq))
        if op.state is _LOGGED_OUT:
            op.skills = skills  # not counted nor pooled while logged out
            op.consecutive_misses = 0
            op.idle_since = self._now
            self._set_state(op, _AVAILABLE, Reason.LOGIN)
            return
        op.pending_logout = False  # logging in again withdraws a logout asked for on a call
        if skills != op.skills:
            status = _status(op)
            self._count(op, status, -1)
            self._unpool(op)
            op.skills = skills
            self._count(op, status, +1)
            self._sync_pool(op)

    def _on_logged_out(self, event: OperatorLoggedOut) -> None:
        op = self._operator(event.operator_id)
        if op.state is _LOGGED_OUT:
            return
        if op.state is _ON_CALL:
            op.pending_logout = True
            return
        if op.state is _OFFERED:
            self._withdraw_offer(op)
        self._finish_handling(op)
        op.pending_pause = None
        self._set_state(op, _LOGGED_OUT, Reason.LOGOUT)

    def _on_paused(self, event: OperatorPaused) -> None:
        if not isinstance(event.reason, str) or not event.reason.strip():
            raise InvalidEvent(f"operator {event.operator_id}: pause reason must be given")
        op = self._logged_in(event.operator_id, "pause")
        if op.state is _ON_CALL:
            op.pending_pause = event.reason
            return
        if op.state is _PAUSED and op.reason == event.reason:
            return
        if op.state is _OFFERED:
            self._withdraw_offer(op)
        self._finish_handling(op)
        self._set_state(op, _PAUSED, event.reason)

    def _on_ready(self, event: OperatorReady) -> None:
        op = self._logged_in(event.operator_id, "be ready")
        if op.state is _ON_CALL:
            op.pending_pause = None
        elif op.state is _PAUSED or op.state is _WRAP_UP:
            if op.state is _PAUSED:
                op.consecutive_misses = 0
            self._finish_handling(op)
            op.idle_since = self._now
            self._set_state(op, _AVAILABLE, Reason.READY)

    def _on_registration(self, event: OperatorRegistration) -> None:
        operator_id = _check_id(event.operator_id, "operator_id")
        if not isinstance(event.registered, bool):
            raise InvalidEvent(f"operator {operator_id}: registered must be true or false")
        op = self._ops.get(operator_id)
        if op is None:
            # Registration is often known before the login: remember it.
            op = self._ops[operator_id] = _Operator(operator_id, next(self._op_seq))
        if op.registered == event.registered:
            return
        before = _status(op)
        op.registered = event.registered
        self._recount(op, before)
        if not op.registered and op.state is _OFFERED:
            # An unreachable phone, not a miss.
            self._withdraw_offer(op)
            op.idle_since = self._now
            self._set_state(op, _AVAILABLE, Reason.UNREGISTERED)
        self._sync_pool(op)

    # ---- dispositions --------------------------------------------------------------------

    def _on_disposition_given(self, event: DispositionGiven) -> None:
        op = self._ops.get(_check_id(event.operator_id, "operator_id"))
        call_id = _check_id(event.call_id, "call_id")
        if op is None:  # never logged in here (e.g. since a restart): owes nothing here
            log.debug("stale event ignored", call_id=call_id, kind="DispositionGiven")
        elif op.owed.pop(call_id, None) is not None:
            self._sync_pool(op)
        elif op.state is _ON_CALL and op.call_id == call_id:
            op.disposed_current = True
        else:
            log.debug("stale event ignored", call_id=call_id, kind="DispositionGiven")

    def _owe_disposition(self, op: _Operator, call_id: str) -> None:
        """The operator's connected call ended: its disposition is owed, unless given during
        it (nothing is tracked while the rule is off)."""
        given, op.disposed_current = op.disposed_current, False
        block_after = self.config.disposition_block_after_seconds
        if block_after <= 0 or given:
            return
        op.owed[call_id] = self._now
        self._timer(self._now + block_after, _OWED_TOO_LONG, call_id, op.operator_id, 0)

    def _owes_too_long(self, op: _Operator) -> bool:
        block_after = self.config.disposition_block_after_seconds
        if block_after <= 0 or not op.owed:
            return False
        return min(op.owed.values()) + block_after <= self._now

    # ---- operators -----------------------------------------------------------------------

    def _set_state(
        self, op: _Operator, new: OperatorState, reason: str, call_id: str | None = None
    ) -> None:
        old = op.state
        before = _status(op)
        op.state = new
        op.since = self._now
        op.reason = reason
        op.call_id = call_id if (new is _OFFERED or new is _ON_CALL) else None
        op.token += 1
        if new is not _AVAILABLE:
            op.retry_at = None
        self._recount(op, before)
        self._sync_pool(op)
        self._out.append(OperatorStateChanged(op.operator_id, old, new, reason, call_id))

    def _recount(self, op: _Operator, before: tuple[bool, bool]) -> None:
        after = _status(op)
        if after != before:
            self._count(op, before, -1)
            self._count(op, after, +1)

    def _count(self, op: _Operator, status: tuple[bool, bool], sign: int) -> None:
        staffed, serving = status
        if not staffed:
            return
        for skill, level in op.skills.items():
            n = self._staffed.get(skill)
            if n is None:
                continue  # a skill no category needs
            self._staffed[skill] = n + sign
            if n + sign == 0:
                self._unstaffed.add(skill)
            if serving and level == 1:
                self._serving[skill] += sign

    def _sync_pool(self, op: _Operator) -> None:
        """Keep the pools holding exactly the operators that may be offered a call now."""
        wanted = (
            op.state is _AVAILABLE
            and op.registered
            and (op.retry_at is None or op.retry_at <= self._now)
            and not (op.owed and self._owes_too_long(op))
        )
        if wanted == op.pooled:
            return
        if not wanted:
            self._unpool(op)
            return
        strategy = self.config.strategy
        if strategy is Strategy.FEWEST_CALLS:
            key: tuple[Any, ...] = (op.calls_answered, op.idle_since, op.seq)
        else:
            key = (op.idle_since, op.seq)
        for skill, level in op.skills.items():
            pools = self._pools.get(skill)
            if pools is not None:
                pools[level - 1].add(op.operator_id, key)
        op.pooled = True
        self._dirty = True

    def _unpool(self, op: _Operator) -> None:
        if not op.pooled:
            return
        for skill, level in op.skills.items():
            pools = self._pools.get(skill)
            if pools is not None:
                pools[level - 1].discard(op.operator_id)
        op.pooled = False

    def _end_offer(self, op: _Operator, call: _Call, reason: Reason) -> None:
        """An offer ended unanswered: the operator's next state, then the call's place."""
        call.offered_to.discard(op.operator_id)
        if reason in _MISSES:
            op.consecutive_misses += 1
            if op.consecutive_misses >= self.config.max_consecutive_misses:
                self._set_state(op, _PAUSED, Reason.NO_ANSWER)
            else:
                # A miss sends the operator to the back of the longest-idle order.
                op.idle_since = self._now
                self._set_state(op, _AVAILABLE, reason)
        elif reason in _RETRIES:
            delay = self.config.retry_after_busy_seconds
            op.retry_at = self._now + delay if delay > 0 else None
            self._set_state(op, _AVAILABLE, reason)
            if op.retry_at is not None:
                self._timer(op.retry_at, _RETRY, "", op.operator_id, op.token)
        else:
            # Not the operator's doing (caller gone, ring-all lost): keep their idle order.
            self._set_state(op, _AVAILABLE, reason)
        if not call.offered_to and call.call_id in self._calls:
            self._return_to_waiting(call)

    def _withdraw_offer(
        self, op: _Operator, reason: CancelReason = CancelReason.OPERATOR_LEFT
    ) -> None:
        """The operator leaves while ringing: not a miss; the call goes back to its place."""
        assert op.call_id is not None
        call = self._calls[op.call_id]
        self._out.append(CancelOffer(call.call_id, op.operator_id, reason))
        call.offered_to.discard(op.operator_id)
        op.call_id = None
        if not call.offered_to:
            self._return_to_waiting(call)

    def _call_over(self, op: _Operator, call: _Call, reason: Reason = Reason.CALL_ENDED) -> None:
        self._owe_disposition(op, call.call_id)
        if op.pending_logout or op.pending_pause is not None:
            self._finish_handling(op)
            pause, op.pending_pause = op.pending_pause, None
            if op.pending_logout:
                op.pending_logout = False
                self._set_state(op, _LOGGED_OUT, Reason.LOGOUT, call.call_id)
            else:
                assert pause is not None
                self._set_state(op, _PAUSED, pause, call.call_id)
            return
        wrap_up = call.category.wrap_up_seconds
        if wrap_up > 0:
            self._set_state(op, _WRAP_UP, reason, call.call_id)
            self._timer(self._now + wrap_up, _WRAP_END, "", op.operator_id, op.token)
        else:
            self._finish_handling(op)
            op.idle_since = self._now
            self._set_state(op, _AVAILABLE, reason, call.call_id)

    def _finish_handling(self, op: _Operator) -> None:
        if op.answered_at is not None and op.handled_category is not None:
            self._handle_times.record(op.handled_category, self._now - op.answered_at)
        op.answered_at = None
        op.handled_category = None

    # ---- calls ---------------------------------------------------------------------------

    def _open_to_secondary_at(self, call: _Call) -> None:
        """When secondary operators may take the call, from its arrival and its category (the
        call is in no line: it is just queued, or moving to another category)."""
        call.secondary_at = due = call.arrival + call.category.secondary_after_seconds
        call.open_to_secondary = due <= self._now
        if not call.open_to_secondary:
            self._timer(due, _OPEN_TO_SECONDARY, call.call_id, "", call.seq)

    def _take_from_lines(self, call: _Call) -> None:
        skill = call.category.skill
        self._lines[skill].remove(call.key)
        if call.open_to_secondary:
            self._secondary_lines[skill].remove(call.key)
        self._waiting_in[call.category.code] -= 1

    def _put_in_lines(self, call: _Call) -> None:
        skill = call.category.skill
        call.place = CallPlace.WAITING
        self._lines[skill].add(call.key)
        if call.open_to_secondary:
            self._secondary_lines[skill].add(call.key)
        self._waiting_in[call.category.code] += 1
        self._dirty = True

    def _return_to_waiting(self, call: _Call) -> None:
        """Back to its original place: the key (priority, arrival, seq) never changed."""
        call.offered_to.clear()
        self._put_in_lines(call)
        if call.overflow_at is not None and call.overflow_at <= self._now:
            # Its maximum wait passed while it was ringing.
            self._timer(call.overflow_at, _MAX_WAIT, call.call_id, "", call.seq)

    def _admit(self, call: _Call) -> None:
        """Enter the call's category: overflow at once if a rule says so, else wait."""
        category = call.category
        for rule in self._rules.get(category.code, ()):
            if self._rule_holds(rule, category) and self._target_open(call, rule.target):
                self._overflow(call, rule)
                return
        self._put_in_lines(call)
        max_wait = self._max_wait.get(category.code)
        call.overflow_at = None
        if max_wait is not None:
            call.overflow_at = call.category_since + max_wait.threshold
            self._timer(call.overflow_at, _MAX_WAIT, call.call_id, "", call.seq)

    def _rule_holds(self, rule: OverflowRule, category: Category) -> bool:
        staffed = self._staffed[category.skill]
        condition = rule.condition
        if condition is OverflowCondition.NO_OPERATOR:
            return staffed == 0
        waiting = self._waiting_in[category.code]
        if condition is OverflowCondition.QUEUE_LENGTH:
            return waiting >= rule.threshold
        if condition is OverflowCondition.WAITING_RATIO:
            return staffed == 0 or (waiting + 1) / staffed > rule.threshold
        return False

    @staticmethod
    def _target_open(call: _Call, target: OverflowTarget) -> bool:
        if str(target) in call.tried:
            return False
        return target.kind is not TargetKind.CATEGORY or target.value not in call.visited

    def _overflow(self, call: _Call, rule: OverflowRule) -> None:
        """Move a call that is in no line to the rule's target."""
        target = rule.target
        self._out.append(Overflow(call.call_id, target, rule.condition, call.category.code))
        if target.kind is not TargetKind.CATEGORY:
            del self._calls[call.call_id]
            return
        category = self.config.category(target.value)
        call.category = category
        call.visited.add(category.code)
        call.category_since = self._now
        if not call.priority_explicit:
            call.priority = category.priority
            call.key = (call.priority, call.arrival, call.seq, call.call_id)
        self._open_to_secondary_at(call)
        self._admit(call)

    def _overflow_unstaffed(self) -> None:
        """The last operator with a skill left: calls of categories with a no-operator rule
        go to their targets instead of waiting for nobody."""
        skills, self._unstaffed = self._unstaffed, set()
        for skill in skills:
            if self._staffed[skill] or skill not in self._no_operator:
                continue
            for code, rule in self._no_operator[skill]:
                for key in list(self._lines[skill]):
                    call = self._calls[key[3]]
                    if call.category.code == code and self._target_open(call, rule.target):
                        self._take_from_lines(call)
                        self._overflow(call, rule)

    def _ewt(self, call: _Call, position: int) -> float | None:
        mean = self._handle_times.mean(call.category.code)
        return estimate_wait(position, mean, self._serving[call.category.skill])

    # ---- timers --------------------------------------------------------------------------

    def _timer(self, due: float, kind: int, call_id: str, operator_id: str, token: int) -> None:
        heapq.heappush(self._timers, (due, next(self._counter), kind, call_id, operator_id, token))

    def _run_timers(self) -> None:
        timers, now = self._timers, self._now
        while timers and timers[0][0] <= now:
            due, _, kind, call_id, operator_id, token = heapq.heappop(timers)
            if kind == _RING:
                op = self._ops[operator_id]
                if op.token == token and op.state is _OFFERED and op.call_id == call_id:
                    self._out.append(CancelOffer(call_id, operator_id, CancelReason.RING_TIMEOUT))
                    self._end_offer(op, self._calls[call_id], Reason.RING_TIMEOUT)
            elif kind == _RETRY:
                op = self._ops[operator_id]
                if op.token == token and op.retry_at == due:
                    op.retry_at = None
                    self._sync_pool(op)
            elif kind == _OWED_TOO_LONG:
                op = self._ops[operator_id]
                if call_id in op.owed:
                    self._sync_pool(op)
            elif kind == _WRAP_END:
                op = self._ops[operator_id]
                if op.token == token and op.state is _WRAP_UP:
                    self._finish_handling(op)
                    op.idle_since = now
                    self._set_state(op, _AVAILABLE, Reason.WRAP_UP_OVER)
            else:
                call = self._calls.get(call_id)
                if call is None or call.seq != token:
                    continue
                if kind == _OPEN_TO_SECONDARY:
                    # A timer of the call's previous category is stale: `secondary_at` moved.
                    if call.secondary_at == due and not call.open_to_secondary:
                        call.open_to_secondary = True
                        if call.place is CallPlace.WAITING:
                            self._secondary_lines[call.category.skill].add(call.key)
                            self._dirty = True
                elif call.overflow_at == due and call.place is CallPlace.WAITING:
                    rule = self._max_wait.get(call.category.code)
                    if rule is not None and self._target_open(call, rule.target):
                        self._take_from_lines(call)
                        self._overflow(call, rule)
                    else:
                        call.overflow_at = None
            if self._unstaffed:
                self._overflow_unstaffed()

    def _run_announcements(self) -> None:
        # The hottest loop with a long queue (every waiting caller, every interval): kept flat.
        fifo, now, calls, out = self._announcements, self._now, self._calls, self._out
        lines, serving = self._lines, self._serving
        mean_handle = self._handle_times.mean
        interval = self.config.announce_interval_seconds
        assert interval is not None
        waiting = CallPlace.WAITING
        # Calls just queued have no due time yet (None), then the FIFO's calls due by now.
        due_items: list[tuple[float | None, str, int]] = [(None, c, s) for c, s in self._fresh]
        self._fresh = []
        while fifo and fifo[0][0] <= now:
            due_items.append(fifo.popleft())
        for due, call_id, seq in due_items:
            call = calls.get(call_id)
            if call is None or call.seq != seq or call.announce_at != due:
                continue
            if call.place is waiting:
                category = call.category
                position = lines[category.skill].position(call.key)
                ewt = estimate_wait(position, mean_handle(category.code), serving[category.skill])
                out.append(Announce(call_id, position, ewt))
            elif call.place is CallPlace.CONNECTED:
                call.announce_at = None  # answered: no more announcements
                continue
            call.announce_at = next_due = now + interval
            fifo.append((next_due, call_id, seq))

    # ---- dispatch ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Offer calls until no waiting call has an eligible available operator.

        Each round takes the most urgent (priority, arrival) call among those that some
        available operator may take: the head of a skill's line when a primary operator of
        that skill is free, else the head of its secondary line when a secondary one is; a
        primary operator gets it if one is free. Pools only shrink during the loop, so it ends;
        and no operator chosen could have taken a more urgent call, as that call's line head
        would have come first.
        """
        self._dirty = False
        pools, lines, secondary_lines = self._pools, self._lines, self._secondary_lines
        skills = self._skills
        while True:
            best: CallKey | None = None
            best_skill = ""
            for skill in skills:
                primary, secondary = pools[skill]
                if primary.present:
                    head = lines[skill].head()
                elif secondary.present:
                    head = secondary_lines[skill].head()
                else:
                    continue
                if head is not None and (best is None or head < best):
                    best, best_skill = head, skill
            if best is None:
                return
            call = self._calls[best[3]]
            primary, secondary = pools[best_skill]
            if self._ring_all:
                chosen = primary.members()
                if call.open_to_secondary:
                    chosen += secondary.members()
            else:
                pool = primary if primary.present else secondary
                operator_id = pool.best()
                pool.chosen(operator_id)
                chosen = [operator_id]
            self._offer(call, chosen)

    def _offer(self, call: _Call, operator_ids: list[str]) -> None:
        self._take_from_lines(call)
        call.place = CallPlace.OFFERED
        call.offered_to = set(operator_ids)
        deadline = self._now + self.config.ring_timeout_seconds
        for operator_id in operator_ids:
            op = self._ops[operator_id]
            op.calls_offered += 1
            self._out.append(Offer(call.call_id, operator_id))
            self._set_state(op, _OFFERED, Reason.OFFER, call.call_id)
            self._timer(deadline, _RING, call.call_id, operator_id, op.token)


def _ignore(event: object) -> None:
    """A `Tick`: the timers run after every event anyway."""


def _status(op: _Operator) -> tuple[bool, bool]:
    """(staffed, serving): logged in with a registered phone; and not paused."""
    staffed = op.state is not _LOGGED_OUT and op.registered
    return staffed, staffed and op.state is not _PAUSED


def _is_time(value: object) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value)  # type: ignore[arg-type]


def _check_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{name} must be a non-empty string, not {value!r}")
    return value


def _check_priority(value: object, call_id: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidEvent(f"call {call_id}: priority must be an integer, not {value!r}")


def _check_flags(flags: object, call_id: str, name: str = "flags") -> None:
    if not isinstance(flags, frozenset) or not all(isinstance(f, str) for f in flags):
        raise InvalidEvent(f"call {call_id}: {name} must be a frozenset of strings")


def _check_skills(skills: object, operator_id: str) -> dict[str, int]:
    if not isinstance(skills, Mapping) or not skills:
        raise InvalidEvent(f"operator {operator_id}: skills must be a non-empty mapping")
    checked: dict[str, int] = {}
    for skill, level in skills.items():
        if not isinstance(skill, str) or not skill:
            raise InvalidEvent(f"operator {operator_id}: skill names must be non-empty strings")
        if level not in (1, 2) or isinstance(level, bool):
            raise InvalidEvent(
                f"operator {operator_id}: skill {skill!r} level must be 1 (primary) or "
                f"2 (secondary), not {level!r}"
            )
        checked[skill] = level
    return checked
