"""What a failure means for a call: a ringing leg that ended, a command Asterisk refused."""

from __future__ import annotations

import enum

from ari_app.call.commands import (
    Answer,
    BridgeOperator,
    Command,
    CreateBridge,
    DialAgency,
    DialColleague,
    DialPartner,
    DialSupervisor,
    EnableTalkDetect,
    Play,
    RingOperator,
    SaveQueueState,
    StopTalkDetect,
)
from queues.states import OfferFailure

# Q.850 causes of an operator leg that ended before it was answered.
_BUSY_CAUSES = {17}
_REJECTED_CAUSES = {21}
_UNREACHABLE_CAUSES = {1, 2, 3, 20, 27, 29, 34, 38, 41, 42, 58}
_DIAL_STATUS = {
    "BUSY": OfferFailure.BUSY,
    "CONGESTION": OfferFailure.UNREACHABLE,
    "CHANUNAVAIL": OfferFailure.UNREACHABLE,
    "NOANSWER": OfferFailure.NO_ANSWER,
}


def offer_failure(cause: int | None, dialstatus: str = "") -> OfferFailure:
    # The Q.850 cause is the more precise (a 603 Decline reads NOANSWER as a dial status).
    if cause in _BUSY_CAUSES:
        return OfferFailure.BUSY
    if cause in _REJECTED_CAUSES:
        return OfferFailure.REJECTED
    if cause in _UNREACHABLE_CAUSES:
        return OfferFailure.UNREACHABLE
    return _DIAL_STATUS.get(dialstatus, OfferFailure.NO_ANSWER)


# Commands on the caller's own channel: a 404/409/422 answer to one means the caller is gone.
ON_THE_CALLERS_CHANNEL = (
    Answer,
    CreateBridge,
    EnableTalkDetect,
    Play,
    SaveQueueState,
    StopTalkDetect,
)
# 404, 409, 422: the resource is gone or not ours any more; a normal event during a call.
GONE_STATUSES = frozenset({404, 409, 422})


class Failure(enum.Enum):
    CALLER_GONE = "caller_gone"  # the caller hung up under us: as if we saw the hangup
    OPERATOR_GONE = "operator_gone"  # the operator's leg vanished before it joined
    LEG_UNREACHABLE = "leg_unreachable"  # a phone we dialled could not be rung
    HARMLESS = "harmless"  # music, a prompt's stop, an agency leg...: no reason to drop a 112 call


def failure_of(command: Command, status: int | None) -> Failure:
    if isinstance(
        command, RingOperator | DialAgency | DialSupervisor | DialPartner | DialColleague
    ):
        return Failure.LEG_UNREACHABLE  # any refusal ("Allocation failed", ...)
    if status not in GONE_STATUSES:
        return Failure.HARMLESS
    if isinstance(command, BridgeOperator):
        return Failure.OPERATOR_GONE
    if isinstance(command, ON_THE_CALLERS_CHANNEL):
        return Failure.CALLER_GONE
    return Failure.HARMLESS


def ends_the_batch(command: Command, status: int | None) -> bool:
    """The commands given with a failed one are dropped when the party they were for is gone."""
    return failure_of(command, status) in (Failure.CALLER_GONE, Failure.OPERATOR_GONE)
