"""Where a call may go, as data: (state, event type) -> the states the event may move it to.

    arrived -> ivr -> queued <-> offered -> connected -> ended
                 \\______\\________\\-> abandoned (the caller hung up before an operator came)

An event may always leave the state as it is; any move not listed here is a bug, and the
machine raises `IllegalTransition`. The fuzz tests (tests/ari_app/test_call_fuzz.py) take their
graph from this table.
"""

from __future__ import annotations

from collections.abc import Mapping

from ari_app.call.events import (
    Adopted,
    CommandFailed,
    DigitPressed,
    HandOver,
    HangUpRequested,
    HungUp,
    LegAnswered,
    LegHungUp,
    OfferClaimed,
    OfferWithdrawn,
    OperatorConnected,
    OperatorRinging,
    RingCancelled,
    RingRequested,
    Started,
    TimerFired,
)
from ari_app.call.states import CallState

S = CallState
WAITING = frozenset({S.QUEUED, S.OFFERED})
BEFORE_AN_OPERATOR = frozenset({S.IVR, S.QUEUED, S.OFFERED})

# The caller gone before an operator came: abandoned; cut by the system: ended.
_CUT_SHORT = {s: frozenset({S.ABANDONED, S.ENDED}) for s in BEFORE_AN_OPERATOR}
# A connected operator leaving: the end, or (hung up at once) back in line; an operator who
# never joined the bridge (the leg vanished first) likewise.
_OPERATOR_LEFT = {S.CONNECTED: frozenset({S.ENDED, S.QUEUED})}
# The last ringing operator not reached: queued again.
_OFFER_ENDED = {S.OFFERED: frozenset({S.QUEUED})}

TRANSITIONS: Mapping[tuple[CallState, type], frozenset[CallState]] = {
    (S.ARRIVED, Started): frozenset({S.IVR, S.QUEUED}),  # blocked callers skip the menus
    (S.ARRIVED, Adopted): frozenset({S.IVR, S.QUEUED, S.CONNECTED}),
    (S.IVR, DigitPressed): frozenset({S.QUEUED}),
    (S.IVR, TimerFired): frozenset({S.QUEUED}),
    **{(s, HandOver): frozenset({S.ENDED}) for s in BEFORE_AN_OPERATOR},
    # ... and a conversation whose operator hung up at once during a shutdown is handed over.
    (S.CONNECTED, HungUp): frozenset({S.ENDED, S.QUEUED}),
    (S.ARRIVED, HungUp): frozenset({S.ABANDONED}),  # gone before the app saw it start
    **{(s, HungUp): t for s, t in _CUT_SHORT.items()},
    (S.QUEUED, OperatorRinging): frozenset({S.OFFERED}),
    (S.QUEUED, RingRequested): frozenset({S.OFFERED}),
    **{(s, OperatorConnected): frozenset({S.CONNECTED}) for s in WAITING},
    **{(s, OfferClaimed): frozenset({S.CONNECTED}) for s in WAITING},
    # A partner centre the call overflowed to answered (ari_app/call/overflow.py).
    (S.QUEUED, LegAnswered): frozenset({S.CONNECTED}),
    **{(s, ev): t for s, t in _OFFER_ENDED.items() for ev in (OfferWithdrawn, RingCancelled)},
    # Connected, an agency leg hanging up after the operator left also ends the call: the
    # caller would be alone.
    **{(s, LegHungUp): t for s, t in {**_OFFER_ENDED, **_OPERATOR_LEFT}.items()},
    # A failed command: the caller's channel gone (as HungUp), the operator's leg gone before
    # it joined, a ringing operator's phone not reachable.
    **{(s, CommandFailed): t for s, t in _CUT_SHORT.items()},
    (S.OFFERED, CommandFailed): frozenset({S.QUEUED, S.ABANDONED, S.ENDED}),
    (S.CONNECTED, CommandFailed): frozenset({S.ENDED, S.QUEUED}),
    # Desk call controls: the operator hangs up; a supervisor who took the call over and left.
    (S.CONNECTED, HangUpRequested): frozenset({S.ENDED}),
}


class IllegalTransition(AssertionError):
    """A move the table does not allow: a bug in the machine."""


def allowed(state: CallState, event_type: type) -> frozenset[CallState]:
    """The states an event of this type may move a call in `state` to (besides staying)."""
    return TRANSITIONS.get((state, event_type), frozenset())


def graph(event_types: set[type] | None = None) -> set[tuple[CallState, CallState]]:
    """Every (from, to) move the table allows, for these event types (all when None)."""
    return {
        (state, target)
        for (state, event_type), targets in TRANSITIONS.items()
        if event_types is None or event_type in event_types
        for target in targets
    }
