"""The enumerations shared by events, decisions and snapshots."""

from __future__ import annotations

from enum import StrEnum


class OperatorState(StrEnum):
    """logged_out -> available -> offered -> on_call -> wrap_up -> available.

    Paused at any idle point (docs/architecture.md).
    """

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    OFFERED = "offered"  # the operator's phone is ringing with a call
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class CallPlace(StrEnum):
    """Where a call the engine holds is; a call the engine no longer holds is gone."""

    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"


class OfferFailure(StrEnum):
    """Why an offer ended unanswered, as seen by the IO shell."""

    NO_ANSWER = "no_answer"  # a miss: counts towards the auto-pause
    BUSY = "busy"  # not a miss: short retry delay
    REJECTED = "rejected"  # not a miss: short retry delay
    UNREACHABLE = "unreachable"  # not a miss: short retry delay


class CancelReason(StrEnum):
    """Why the engine withdraws an offer it made (the shell stops that operator's ringing)."""

    ANSWERED_ELSEWHERE = "answered_elsewhere"  # ring-all: another operator was faster
    CALLER_GONE = "caller_gone"
    RING_TIMEOUT = "ring_timeout"
    OPERATOR_LEFT = "operator_left"  # logged out, paused or unregistered while ringing
    # Found in a conversation while ringing: a takeover adopted a call they were already in.
    OPERATOR_BUSY = "operator_busy"


class Reason(StrEnum):
    """Reasons the engine gives in `OperatorStateChanged`; pause reasons are free text."""

    LOGIN = "login"
    LOGOUT = "logout"
    OFFER = "offer"
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"  # also the pause reason after too many consecutive misses
    RING_TIMEOUT = "ring_timeout"
    BUSY = "busy"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"
    UNREGISTERED = "unregistered"
    CALLER_GONE = "caller_gone"
    ANSWERED_ELSEWHERE = "answered_elsewhere"
    CALL_ENDED = "call_ended"
    WRAP_UP_OVER = "wrap_up_over"
    READY = "ready"
    JOINED = "joined"  # conferenced into a colleague's call (OperatorJoined)
    HANDED_OVER = "handed_over"  # left a call a colleague took over (OperatorLeft)
