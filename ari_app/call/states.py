"""The states of a call and of its legs (every channel of the call but the caller's)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CallState(enum.StrEnum):
    ARRIVED = "arrived"
    IVR = "ivr"
    QUEUED = "queued"
    OFFERED = "offered"
    CONNECTED = "connected"
    ENDED = "ended"
    ABANDONED = "abandoned"

    @property
    def final(self) -> bool:
        return self in (CallState.ENDED, CallState.ABANDONED)


class Timer(enum.StrEnum):
    IVR_TIMEOUT = "ivr_timeout"
    # A prompt that fails or never reports its end must not keep a silent caller in the menus
    # for ever: from the call's start, however its prompts fare, IVR_GUARD_SECONDS at most.
    IVR_GUARD = "ivr_guard"
    # A caller who has chosen nothing this long after arrival is queued while the menu goes on
    # (ivr.queue_after_seconds).
    IVR_DEADLINE = "ivr_deadline"


class Party(enum.StrEnum):
    CALLER = "caller"
    OPERATOR = "operator"
    AGENCY = "agency"
    SYSTEM = "system"


class LegState(enum.Enum):
    """An operator's leg: rung for an offer, answered (the ACD decides whose the call is),
    bridged with the caller, gone (hung up, failed, or given up by us)."""

    RINGING = "ringing"
    ANSWERED = "answered"
    CONNECTED = "connected"
    GONE = "gone"


class ListenMode(enum.StrEnum):
    LISTEN = "listen"  # the supervisor hears caller and operator, nobody hears the supervisor
    WHISPER = "whisper"  # ... and the operator (only) hears the supervisor
    BARGE = "barge"  # the supervisor joins the conversation


class SideKind(enum.StrEnum):
    AGENCY = "agency"
    SUPERVISOR = "supervisor"
    SNOOP = "snoop"
    PARTNER = "partner"  # a partner centre the call overflowed to
    COLLEAGUE = "colleague"  # another operator, or a supervisor, conferenced in from the desk


class HandOffStatus(enum.StrEnum):
    """How a hand-off (an agency or a colleague conferenced in) is going, for the desk."""

    RINGING = "ringing"
    ANSWERED = "answered"
    FAILED = "failed"  # not reached: no answer, busy, unreachable
    LEFT = "left"  # answered, then hung up


@dataclass(frozen=True, slots=True)
class HandOff:
    kind: SideKind  # AGENCY or COLLEAGUE
    name: str  # the agency's code, the colleague's operator id or supervisor username
    status: HandOffStatus


@dataclass
class OperatorLeg:
    operator_id: str
    channel_id: str
    state: LegState
    dialstatus: str = ""  # the Dial event's, kept for the failure reason of a ringing leg

    @property
    def live(self) -> bool:
        return self.state is not LegState.GONE


@dataclass
class SideLeg:
    """A channel of the call that is not caller or operator: an agency, a supervisor, a snoop,
    a partner centre."""

    kind: SideKind
    name: str  # agency code, the listen mode, or the partner's dial string
    channel_id: str
    peer: str = ""  # supervisor <-> its snoop channel
    bridge_id: str = ""  # a listen/whisper supervisor's own bridge
    gone: bool = False
    answered: bool = False  # an agency or a colleague that joined the conversation
    operator_id: str = ""  # a colleague who is an operator of the ACD ("" for a supervisor)

    def hand_off(self) -> HandOff:
        if not self.gone:
            status = HandOffStatus.ANSWERED if self.answered else HandOffStatus.RINGING
        else:
            status = HandOffStatus.LEFT if self.answered else HandOffStatus.FAILED
        return HandOff(self.kind, self.name, status)
