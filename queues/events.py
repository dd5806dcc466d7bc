"""Events the IO shell feeds to `Acd.handle(event, now)`.

Events carry facts, never time: the shell passes the monotonic `now` with each one. Events about
a call or an offer the engine no longer holds are stale (the caller can hang up at any moment)
and are ignored; events with bad values raise `InvalidEvent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from queues.states import OfferFailure


@dataclass(frozen=True, slots=True)
class CallQueued:
    """A call enters the queue, or re-enters it (e.g. after an app restart).

    `arrival` is the original arrival at Asterisk on the shell's monotonic clock: it orders the
    call and survives re-queues. `priority` None takes the category's priority. `tried`: the
    overflow targets (`str(OverflowTarget)`) the call already went to and came back from (a
    partner centre that did not answer): no overflow sends it there again.
    """

    call_id: str
    category: str
    arrival: float
    priority: int | None = None
    flags: frozenset[str] = frozenset()
    tried: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CallAdopted:
    """A conversation already going on when the shell (re)started: the call is connected to
    this operator, who is on that call from now on (no offer, no ring)."""

    call_id: str
    category: str
    arrival: float
    operator_id: str
    priority: int | None = None
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CallPriorityChanged:
    """E.g. a caller who cannot speak bumped to priority 0; the arrival time is kept."""

    call_id: str
    priority: int
    flags: frozenset[str] | None = None  # the call's flags now, if they changed with it


@dataclass(frozen=True, slots=True)
class CallHungUp:
    """The caller hung up, wherever the call was (waiting, ringing an operator, connected)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over (talk ended, transferred away...); a connected operator goes to wrap-up."""

    call_id: str


@dataclass(frozen=True, slots=True)
class OperatorJoined:
    """A colleague the call's operator conferenced in answered and joined the conversation:
    they are on this call too from now on (no offers), beside its operator."""

    call_id: str
    operator_id: str


@dataclass(frozen=True, slots=True)
class OperatorLeft:
    """An operator left a conversation that goes on without them: the call's operator, whose
    colleague (`OperatorJoined`) takes the call over, or that colleague leaving again. The
    one who left goes to wrap-up."""

    call_id: str
    operator_id: str


@dataclass(frozen=True, slots=True)
class OperatorLoggedIn:
    """Log in, or update the skills of an operator already logged in.

    `skills` maps skill -> level: 1 primary, 2 secondary (when no primary operator is free,
    and the call has waited its category's `secondary_after_seconds`).
    """

    operator_id: str
    skills: Mapping[str, int] = field(hash=False)

    def __post_init__(self) -> None:
        # A read-only copy: the caller's dict may change after the event was made.
        skills = dict(self.skills) if isinstance(self.skills, Mapping) else self.skills
        object.__setattr__(self, "skills", MappingProxyType(skills))


@dataclass(frozen=True, slots=True)
class OperatorLoggedOut:
    """Immediate at an idle point or while ringing; after the call when on a call."""

    operator_id: str


@dataclass(frozen=True, slots=True)
class OperatorPaused:
    """Pause with a reason; while on a call it applies when the call ends."""

    operator_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OperatorReady:
    """Unpause, or end wrap-up early, or withdraw a pause requested during a call."""

    operator_id: str


@dataclass(frozen=True, slots=True)
class OperatorRegistration:
    """The SIP registration of an operator's phone; unregistered operators get no offers."""

    operator_id: str
    registered: bool


@dataclass(frozen=True, slots=True)
class OfferAnswered:
    call_id: str
    operator_id: str


@dataclass(frozen=True, slots=True)
class OfferFailed:
    call_id: str
    operator_id: str
    reason: OfferFailure


@dataclass(frozen=True, slots=True)
class OfferTimedOut:
    """The shell's own ring timeout fired; handled like the engine's (a no-answer)."""

    call_id: str
    operator_id: str


@dataclass(frozen=True, slots=True)
class DispositionGiven:
    """The operator gave the disposition of a call they were connected to (during the call or
    after it): it is no longer owed. With `disposition_block_after_seconds` set, an operator
    owes one from the end of each connected call, and one owed that long keeps offers away."""

    operator_id: str
    call_id: str


@dataclass(frozen=True, slots=True)
class OffersHeld:
    """While `held`, no call is offered: calls queue in their order, timers run and overflow
    rules apply as usual. The shell holds offers while it is still learning what Asterisk has
    (a takeover adopting each node's conversations and waiting callers, docs/ha.md), so that
    no operator is offered a call while talking, and no caller is offered before an older one
    that is not adopted yet."""

    held: bool


@dataclass(frozen=True, slots=True)
class Tick:
    """Nothing happened but time passed: fire the timers due at `now`."""


Event = (
    CallQueued
    | CallAdopted
    | CallPriorityChanged
    | CallHungUp
    | CallEnded
    | OperatorJoined
    | OperatorLeft
    | OperatorLoggedIn
    | OperatorLoggedOut
    | OperatorPaused
    | OperatorReady
    | OperatorRegistration
    | OfferAnswered
    | OfferFailed
    | OfferTimedOut
    | DispositionGiven
    | OffersHeld
    | Tick
)
