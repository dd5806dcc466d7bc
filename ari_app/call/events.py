"""What happens to a call: the events its machine is fed (by the actor, from ARI events, the ACD's
decisions, timers, and the outcome of its own commands)."""

from __future__ import annotations

from dataclasses import dataclass

from ari_app.call.commands import Command
from ari_app.call.states import ListenMode, Party, Timer
from ari_app.ivr import Language
from queues.config import OverflowTarget
from queues.states import CancelReason


@dataclass(frozen=True, slots=True)
class Started:
    """The caller's channel entered the app (StasisStart)."""

    caller_number: str
    caller_name: str
    flags: frozenset[str] = frozenset()
    language: Language | None = None  # the caller's last language, from screening
    since_arrival: float = 0.0  # seconds from the call's arrival at Asterisk to StasisStart


@dataclass(frozen=True, slots=True)
class Adopted:
    """The call was already in the app when this process started (a restart): it resumes
    where it was, without a second arrival record. `category` None: it was still in the IVR.
    A conversation names its operator and the operator's channel."""

    category: str | None = None
    priority: int | None = None
    flags: frozenset[str] = frozenset()
    operator_id: str | None = None
    operator_channel: str | None = None
    # A caller the last app had not yet answered, or not yet put in its bridge, when it died:
    # the new one does it (a missing bridge would fail every operator's answer).
    answered: bool = True
    bridged: bool = True


@dataclass(frozen=True, slots=True)
class HandOver:
    """The app is shutting down: a call not yet with an operator goes to the dialplan fallback
    (ring-all queue), which takes calls while the app is away."""


@dataclass(frozen=True, slots=True)
class DigitPressed:
    digit: str
    at: float  # monotonic seconds


@dataclass(frozen=True, slots=True)
class PromptFinished:
    playback_id: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer: Timer
    generation: int


@dataclass(frozen=True, slots=True)
class CallerTalking:
    """Talk detection heard the caller."""


@dataclass(frozen=True, slots=True)
class Queued:
    """The ACD took the call in (fed back for `Enqueue`): its position, None when the ACD
    offered it at once."""

    position: int | None
    at: float = 0.0  # monotonic seconds


@dataclass(frozen=True, slots=True)
class RingRequested:
    """The ACD offered the call to this operator: ring the operator's phone."""

    operator_id: str


@dataclass(frozen=True, slots=True)
class RingCancelled:
    """The ACD withdrew its offer to this operator (answered elsewhere, caller gone...)."""

    operator_id: str
    reason: CancelReason


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """A leg of the call (operator, agency, supervisor, snoop) answered: it entered the app."""

    channel_id: str
    at: float = 0.0  # monotonic seconds


@dataclass(frozen=True, slots=True)
class OfferClaimed:
    """Fed back for `ClaimOffer`: whether the ACD gave the call to the answering operator
    (ring-all: the first answer wins)."""

    channel_id: str
    won: bool
    at: float = 0.0  # monotonic seconds


@dataclass(frozen=True, slots=True)
class LegDialStatus:
    """The dial status of a ringing leg (BUSY, NOANSWER...), the reason if it fails."""

    channel_id: str
    status: str


@dataclass(frozen=True, slots=True)
class LegHungUp:
    """A leg of the call hung up (`destroyed`: the channel is gone, with its Q.850 cause)."""

    channel_id: str
    cause: int | None = None
    destroyed: bool = False
    at: float = 0.0  # monotonic seconds


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """A command of this call failed in Asterisk: `status` is the HTTP status, None when no
    answer came. The machine decides what it means (`ari_app/call/failures.py`)."""

    command: Command
    status: int | None
    at: float = 0.0  # monotonic seconds


@dataclass(frozen=True, slots=True)
class OperatorRinging:
    """The operator's phone is being rung for this call (what `RingRequested` comes to)."""

    operator_id: str


@dataclass(frozen=True, slots=True)
class OfferWithdrawn:
    """An operator's ringing ended without a connection (no answer, busy, cancelled...)."""

    operator_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OperatorConnected:
    """The ACD gave the call to this operator, whose answered channel waits to be bridged."""

    operator_id: str
    channel_id: str
    at: float = 0.0  # monotonic seconds


@dataclass(frozen=True, slots=True)
class PositionKnown:
    """The ACD's queue information for an announcement."""

    position: int
    ewt_seconds: float | None


@dataclass(frozen=True, slots=True)
class HungUp:
    """A party's channel hung up or vanished.

    `agency` names the agency for Party.AGENCY."""

    party: Party
    cause: str = ""
    agency: str = ""
    at: float = 0.0  # monotonic seconds; 0 when unknown


@dataclass(frozen=True, slots=True)
class AgencyRequested:
    """Add an agency (police 110, fire 113...) to the conversation: console or `*1` + digit."""

    agency: str


@dataclass(frozen=True, slots=True)
class AgencyAnswered:
    agency: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class HangUpRequested:
    """The call's operator ends the call from the desk: the caller is hung up. From an operator
    colleague conferenced in beside them: their own leg only (as `LeaveRequested`)."""

    operator_id: str


@dataclass(frozen=True, slots=True)
class ColleagueRequested:
    """The call's operator conferences a colleague in from the desk: another operator
    (`operator_id`, their phone `dial`) or a supervisor (`operator_id` "": their phone)."""

    operator_id: str  # who asks: the call's operator
    dial: str
    name: str  # the colleague's operator id, or the supervisor's username
    colleague_operator: bool  # the colleague is an operator of the ACD


@dataclass(frozen=True, slots=True)
class ColleagueClaimed:
    """Fed back for `ClaimColleague`: whether the ACD put the answering operator on the call
    (not when they took another call meanwhile)."""

    channel_id: str
    won: bool


@dataclass(frozen=True, slots=True)
class LeaveRequested:
    """The call's operator leaves the conversation to the colleague who answered; an operator
    colleague conferenced in beside them leaves it to them (their own leg hung up)."""

    operator_id: str


@dataclass(frozen=True, slots=True)
class HoldRequested:
    """The call's operator puts the caller on hold from the desk (`hold` True) or takes them
    back (False). The caller stays in the call's bridge, and so in its recording; only their
    ear gets music instead of the conversation."""

    operator_id: str
    hold: bool


@dataclass(frozen=True, slots=True)
class ListenRequested:
    """Ring a supervisor's phone (`dial`) and let them listen, whisper or barge in."""

    dial: str
    mode: ListenMode


@dataclass(frozen=True, slots=True)
class OperatorDigit:
    """A DTMF digit from the connected operator's phone (feature keys during a call)."""

    digit: str


@dataclass(frozen=True, slots=True)
class Overflowed:
    """The ACD sent the call out of its category (queues' `Overflow`), because `rule` held: to
    another category (still queued, same arrival) or out of the queue, to a partner centre."""

    target: OverflowTarget
    rule: str  # the OverflowCondition that held
    from_category: str


@dataclass(frozen=True, slots=True)
class HoldDue:
    """Fed back by the shell for `DeferHold`, once the decisions already waiting are done."""


CallEvent = (
    Started
    | Adopted
    | HandOver
    | DigitPressed
    | PromptFinished
    | TimerFired
    | CallerTalking
    | Queued
    | RingRequested
    | RingCancelled
    | LegAnswered
    | OfferClaimed
    | LegDialStatus
    | LegHungUp
    | CommandFailed
    | OperatorRinging
    | OfferWithdrawn
    | OperatorConnected
    | PositionKnown
    | HungUp
    | AgencyRequested
    | AgencyAnswered
    | ListenRequested
    | HangUpRequested
    | ColleagueRequested
    | ColleagueClaimed
    | LeaveRequested
    | HoldRequested
    | OperatorDigit
    | HoldDue
    | Overflowed
)
