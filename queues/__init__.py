"""The pure ACD core: categories, priorities, skills and operator states (docs/architecture.md).

No IO, no asyncio, no clock: the shell builds `Acd(config, now)` and calls
`acd.handle(event, now) -> list[Decision]` with a monotonic `now` (seconds). Each call applies
the event, fires the timers due at `now` (ring timeouts, retry delays, wrap-up ends, calls
opening to secondary operators, maximum waits, announcements), offers every call that can be
offered, and returns the decisions in the order to carry them out. Refused input raises an
`AcdError` and changes nothing; events about calls or offers the engine no longer holds are
stale and ignored.

Events (`queues.events`): `CallQueued(call_id, category, arrival, priority=None, flags)`,
`CallPriorityChanged(call_id, priority)`, `CallHungUp(call_id)`, `CallEnded(call_id)`,
`OperatorLoggedIn(operator_id, skills)`, `OperatorLoggedOut`, `OperatorPaused(operator_id,
reason)`, `OperatorReady`, `OperatorRegistration(operator_id, registered)`,
`OfferAnswered(call_id, operator_id)`, `OfferFailed(call_id, operator_id, OfferFailure)`,
`OfferTimedOut(call_id, operator_id)`, `DispositionGiven(operator_id, call_id)`,
`OperatorJoined(call_id, operator_id)` and `OperatorLeft(call_id, operator_id)` (a colleague
conferenced into a call, who may take it over), `OffersHeld(held)` (no offers while the shell
adopts what Asterisk has), `Tick()`.

Decisions (`queues.decisions`): `Offer(call_id, operator_id)`, `CancelOffer(call_id,
operator_id, CancelReason)`, `Announce(call_id, position, ewt_seconds)`, `Overflow(call_id,
target, condition, from_category)`, `OperatorStateChanged(operator_id, old, new, reason,
call_id)`.

Rules:
- Priority: smaller is more urgent (0 is the top). Calls are served in strict
  (priority, arrival, queue order) across all categories; `arrival` is the original arrival at
  Asterisk and is kept through offers, re-queues, priority changes and overflows.
- An operator may take a call of a category whose skill they have at level 1; at level 2 once
  the call has waited its category's `secondary_after_seconds` since arrival (0: at once; it
  keeps its place). Primary operators are preferred: a secondary one gets the call only when
  no primary one is free. A free operator always gets the most urgent call they may take.
  Strategies: longest_idle, fewest_calls, round_robin (with memory), ring_all (the first to
  answer wins, the others get `CancelOffer`).
- An offer ends: answered (on_call); no answer or ring timeout (a miss: back of the idle order,
  paused `no_answer` after `max_consecutive_misses` in a row); busy, rejected or unreachable
  (not a miss: no offers for `retry_after_busy_seconds`). The call goes back to its place.
- Operators: logged_out -> available -> offered -> on_call -> wrap_up -> available; paused at
  any idle point. Pause or logout while ringing withdraws the offer (not a miss); during a call
  it applies when the call ends (no wrap-up). An unregistered phone gets no offers.
- Overflow rules per category, first match: no_operator, queue_length, waiting_ratio at entry
  (no_operator also when the last operator with the skill leaves), max_wait from entry to the
  category. A category target keeps the call (never back to a category it was in); route and
  number targets hand it to the shell.
- Dispositions (off unless `disposition_block_after_seconds` > 0): an operator owes one from
  the end of each call they were connected to until `DispositionGiven(operator_id, call_id)`
  (given during the call: nothing is owed); an operator owing one for that long is offered
  no call, whatever their state says, until it is given.
- Estimated wait = position x mean recent handle time of the category / primary operators
  working the skill; position counts the waiting calls of the same skill.
"""

from queues.acd import Acd
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
    InvalidConfig,
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
from queues.snapshot import CategoryView, OperatorView, QueueInfo, Snapshot, WaitingCall
from queues.states import CallPlace, CancelReason, OfferFailure, OperatorState, Reason

__all__ = [
    "Acd",
    "AcdConfig",
    "AcdError",
    "Announce",
    "CallAdopted",
    "CallEnded",
    "CallHungUp",
    "CallPlace",
    "CallPriorityChanged",
    "CallQueued",
    "CancelOffer",
    "CancelReason",
    "Category",
    "CategoryView",
    "ClockWentBackwards",
    "Decision",
    "DispositionGiven",
    "DuplicateCall",
    "Event",
    "InvalidConfig",
    "InvalidEvent",
    "Offer",
    "OfferAnswered",
    "OfferFailed",
    "OfferFailure",
    "OfferTimedOut",
    "OffersHeld",
    "OperatorJoined",
    "OperatorLeft",
    "OperatorLoggedIn",
    "OperatorLoggedOut",
    "OperatorPaused",
    "OperatorReady",
    "OperatorRegistration",
    "OperatorState",
    "OperatorStateChanged",
    "OperatorView",
    "Overflow",
    "OverflowCondition",
    "OverflowRule",
    "OverflowTarget",
    "QueueInfo",
    "Reason",
    "Snapshot",
    "Strategy",
    "TargetKind",
    "Tick",
    "UnknownCategory",
    "UnknownOperator",
    "WaitingCall",
]
