"""What a call's machine asks for: the commands the actor carries out, in order."""

from __future__ import annotations

from dataclasses import dataclass

from ari_app.call.states import ListenMode, Timer
from ari_app.ivr import Language
from db.events import Fact
from queues.events import OfferFailed


@dataclass(frozen=True, slots=True)
class Answer:
    """Take the caller's call: answer it, then disarm the dialplan's stranded-call guard,
    which sends a call no app took to the fallback."""


@dataclass(frozen=True, slots=True)
class CreateBridge:
    """The call's own mixing bridge, holding the caller from now on (waiting callers must be
    able to press keys: a holding bridge sends no DTMF events)."""


@dataclass(frozen=True, slots=True)
class EnableTalkDetect:
    pass


@dataclass(frozen=True, slots=True)
class Play:
    playback_id: str
    prompts: tuple[str, ...]  # prompt names, played in order as one playback
    language: Language


@dataclass(frozen=True, slots=True)
class StopPlayback:
    playback_id: str


@dataclass(frozen=True, slots=True)
class StartMoh:
    pass


@dataclass(frozen=True, slots=True)
class StopMoh:
    pass


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer: Timer
    seconds: float
    generation: int


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Put the call in the ACD's queue (which may offer it to an operator at once)."""

    category: str
    priority: int
    flags: frozenset[str]
    tried: frozenset[str] = frozenset()  # overflow targets it came back from (CallQueued's)


@dataclass(frozen=True, slots=True)
class SaveQueueState:
    """Keep the call's place on its channel, so that an app restarted after a crash can queue
    it again where it was (Asterisk keeps the call; the app's memory is gone)."""

    category: str
    priority: int
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class StopTalkDetect:
    """Talk detection only tells `spoke` from `silent` in the menus, and it runs a DSP on
    every audio frame: it stops once the call is queued."""


@dataclass(frozen=True, slots=True)
class DeferHold:
    """Feed `HoldDue` back once the decisions already waiting for this call are carried out.

    Queued, a call may be offered at once; the operator's phone must not wait behind the
    caller's own requests (the place kept on the channel, the hold prompt). Those go one at a
    time through the caller's channel and, on a loaded Asterisk, take far longer than the
    originate that rings the operator."""


@dataclass(frozen=True, slots=True)
class Requeue:
    """Queue the call again in its place (its arrival), as it is now (category, priority,
    flags): after an operator hung up at once (`operator_id`), or when a caller queued before
    choosing chose a category while still waiting."""

    operator_id: str | None = None


@dataclass(frozen=True, slots=True)
class ResumeConversation:
    """Tell the ACD this adopted call is connected to this operator."""

    operator_id: str
    category: str
    priority: int
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class ChangePriority:
    priority: int


@dataclass(frozen=True, slots=True)
class BridgeOperator:
    operator_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class LeaveQueue:
    """Tell the ACD the caller is gone (waiting or ringing operators)."""


@dataclass(frozen=True, slots=True)
class FinishCall:
    """Tell the ACD the conversation is over: the operator goes to wrap-up."""

    operator_id: str


@dataclass(frozen=True, slots=True)
class DestroyBridge:
    pass


@dataclass(frozen=True, slots=True)
class BridgeAgency:
    agency: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class ContinueToFallback:
    """Leave the app: the caller's channel goes on in the dialplan's fallback context."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Hang up on the caller (only ever after an operator or an agency ended the call)."""


@dataclass(frozen=True, slots=True)
class HangUpLeg:
    """Hang up a leg of the call (an operator, agency, supervisor or snoop channel)."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class RingOperator:
    """Ring the operator's phone on a new leg; its id is made here, before the request."""

    operator_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class ClaimOffer:
    """The operator answered: ask the ACD whether the call is theirs (fed back: OfferClaimed)."""

    operator_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class ReportOfferFailure:
    """Tell the ACD the operator was not reached (it retries them later, or pauses them)."""

    event: OfferFailed


@dataclass(frozen=True, slots=True)
class DialAgency:
    agency: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class DialPartner:
    """Ring a partner centre (a dial string over the trunk) on a new leg of the call."""

    dial: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class BridgePartner:
    """The partner centre answered: it joins the caller in the call's bridge."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class DialSupervisor:
    dial: str
    mode: ListenMode
    channel_id: str


@dataclass(frozen=True, slots=True)
class DialColleague:
    """Ring a colleague's phone (another operator, or a supervisor) on a new leg."""

    dial: str
    channel_id: str
    name: str
    operator_id: str = ""  # the colleague's operator id ("" for a supervisor)


@dataclass(frozen=True, slots=True)
class ClaimColleague:
    """An operator conferenced in answered: put them on the call in the ACD (fed back:
    `ColleagueClaimed`)."""

    operator_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class BridgeColleague:
    """The colleague joins the conversation."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class ReleaseOperator:
    """Tell the ACD this operator left a conversation that goes on (to wrap-up); the call's
    operator leaving hands the call over to the colleague who joined."""

    operator_id: str


@dataclass(frozen=True, slots=True)
class BridgeSupervisor:
    """A barging supervisor joins the conversation."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class CreateListenBridge:
    bridge_id: str


@dataclass(frozen=True, slots=True)
class Snoop:
    """Spy on the operator's leg: the snoop channel hears both sides of the conversation;
    `whisper`: what the supervisor says goes out to the operator alone."""

    operator_channel: str
    snoop_id: str
    whisper: bool


@dataclass(frozen=True, slots=True)
class JoinListenBridge:
    bridge_id: str
    channel_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DestroyListenBridge:
    bridge_id: str


Command = (
    Answer
    | CreateBridge
    | EnableTalkDetect
    | Play
    | StopPlayback
    | StartMoh
    | StopMoh
    | StartTimer
    | Enqueue
    | SaveQueueState
    | StopTalkDetect
    | DeferHold
    | ChangePriority
    | ResumeConversation
    | Requeue
    | BridgeOperator
    | LeaveQueue
    | FinishCall
    | Disconnect
    | DestroyBridge
    | BridgeAgency
    | ContinueToFallback
    | HangUpLeg
    | RingOperator
    | ClaimOffer
    | ReportOfferFailure
    | DialAgency
    | DialPartner
    | BridgePartner
    | DialSupervisor
    | BridgeSupervisor
    | DialColleague
    | ClaimColleague
    | BridgeColleague
    | ReleaseOperator
    | CreateListenBridge
    | Snoop
    | JoinListenBridge
    | DestroyListenBridge
    | Fact  # append to the call's records; the actor stamps the call id and the time
)
