"""One 112 call's state machine: pure, `handle(event) -> list[Command]`.

    arrived -> ivr -> queued <-> offered -> connected -> ended
                 \\______\\________\\-> abandoned (the caller hung up before an operator came)

The machine knows nothing of ARI, asyncio or SQL: the call's actor (ari_app/actor.py) turns ARI
events into these events and carries the commands out. Every command that changes what the
caller hears, or what the records say, comes from here, so the rules can be tested in
microseconds and fuzzed with events in any order.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from ari_app.ivr import Classified, Ivr, Language, PlayMenu, Step
from siaga.config import Config

log = structlog.get_logger(__name__)

# Two 5s pressed within this many seconds while waiting: "I cannot speak" (the 55 path).
CANNOT_SPEAK_WINDOW = 3.0
CANNOT_SPEAK_PRIORITY = 0
SCREENED_CATEGORY = "screened"
GHOST_ANSWER_SECONDS = 2.0
IVR_GUARD_SECONDS = 90.0  # a language switch and a sub-menu, prompts and timeouts, fit in it
POSITIONS_SPOKEN = 20  # prompts position_1 ... position_20 (pbx/provision.py)


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


class Party(enum.StrEnum):
    CALLER = "caller"
    OPERATOR = "operator"
    AGENCY = "agency"
    SYSTEM = "system"


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """The caller's channel entered the app (StasisStart)."""

    caller_number: str
    caller_name: str
    flags: frozenset[str] = frozenset()
    language: Language | None = None  # the caller's last language, from screening


@dataclass(frozen=True, slots=True)
class Adopted:
    """The call was already in the app when this process started (a restart): it resumes
    where it was, without a second arrival record. `category` None: it was still in the IVR."""

    category: str | None = None
    priority: int | None = None
    flags: frozenset[str] = frozenset()
    operator_id: str | None = None


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
class OperatorRinging:
    """The ACD offered the call to this operator and the operator's phone is being rung."""

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
    """A party's channel hung up or vanished (a 404/409 on a command counts the same).

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
class OperatorDigit:
    """A DTMF digit from the connected operator's phone (feature keys during a call)."""

    digit: str


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
    | OperatorRinging
    | OfferWithdrawn
    | OperatorConnected
    | PositionKnown
    | HungUp
    | AgencyRequested
    | AgencyAnswered
    | OperatorDigit
    | HoldDue
)

# ---- commands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    pass


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
    """The operator hung up at once: end their part, and queue the call again in its place."""

    operator_id: str


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
class HangUp:
    party: Party


@dataclass(frozen=True, slots=True)
class DestroyBridge:
    pass


@dataclass(frozen=True, slots=True)
class DialAgency:
    agency: str


@dataclass(frozen=True, slots=True)
class BridgeAgency:
    agency: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class ContinueToFallback:
    """Leave the app: the caller's channel goes on in the dialplan's fallback context."""


@dataclass(frozen=True, slots=True)
class DropLeg:
    """Hang up a leg the call does not want (e.g. an agency answering after the call ended)."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class Record:
    """Append to the call's records; the actor stamps the time and the event id."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)
    operator_id: str | None = None


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
    | HangUp
    | DestroyBridge
    | DialAgency
    | BridgeAgency
    | DropLeg
    | ContinueToFallback
    | Record
)


# ---- the machine --------------------------------------------------------------------------


@dataclass
class CallMachine:
    call_id: str
    config: Config
    state: CallState = CallState.ARRIVED
    ivr: Ivr | None = None
    category: str | None = None
    priority: int | None = None
    flags: set[str] = field(default_factory=set)
    operator_id: str | None = None
    ringing: set[str] = field(default_factory=set)
    playing: str | None = None
    moh: bool = False
    last_five_at: float | None = None
    operator_present: bool = False
    connected_at: float | None = None
    agencies: set[str] = field(default_factory=set)  # answered and in the bridge
    hold_due: str | None = None  # the hold prompt of a call just queued (DeferHold)
    dialing_agencies: set[str] = field(default_factory=set)
    operator_keys: str = ""
    _playbacks: int = 0
    _generations: dict[Timer, int] = field(default_factory=dict)
    _armed: dict[Timer, int] = field(default_factory=dict)

    @property
    def language(self) -> Language:
        return self.ivr.language if self.ivr else Language(self.config.centre.language)

    def handle(self, event: CallEvent) -> list[Command]:
        if self.state.final:
            return []  # late events of a finished call (e.g. a duplicate hangup) change nothing
        before = self.state
        commands = self._dispatch(event)
        if self.state is not before:
            log.info(
                "call.transition",
                call_id=self.call_id,
                operator=self.operator_id,
                old=before.value,
                new=self.state.value,
                trigger=type(event).__name__,
            )
        return commands

    def _dispatch(self, event: CallEvent) -> list[Command]:
        match event:
            case Started():
                return self._started(event)
            case Adopted():
                return self._adopted(event)
            case HandOver():
                return self._hand_over()
            case DigitPressed():
                return self._digit(event)
            case PromptFinished():
                return self._prompt_finished(event)
            case TimerFired():
                return self._timer(event)
            case CallerTalking():
                if self.ivr is not None:
                    self.ivr.talking()
                return []
            case OperatorRinging():
                return self._ringing(event)
            case OfferWithdrawn():
                return self._withdrawn(event)
            case OperatorConnected():
                return self._connected(event)
            case PositionKnown():
                return self._announce_position(event)
            case HungUp():
                return self._hung_up(event)
            case AgencyRequested():
                return self._agency_requested(event.agency)
            case AgencyAnswered():
                return self._agency_answered(event)
            case OperatorDigit():
                return self._operator_digit(event.digit)
            case HoldDue():
                return self._hold()

    # -- arrival and IVR

    def _started(self, event: Started) -> list[Command]:
        if self.state is not CallState.ARRIVED:
            return []
        self.state = CallState.IVR
        self.flags |= set(event.flags)
        self.ivr = Ivr(self.config.ivr, language=event.language or self.language)
        commands: list[Command] = [
            Record(
                "call_arrived",
                {
                    "caller_number": event.caller_number,
                    "caller_name": event.caller_name,
                    "flags": sorted(self.flags),
                },
            ),
            Answer(),
            CreateBridge(),
            EnableTalkDetect(),
        ]
        if "blocked" in self.flags:
            # A blocked number (prank calls) still reaches a human, behind everyone else,
            # after a warning: it may be a real emergency this time.
            category = (
                SCREENED_CATEGORY
                if self._has_category(SCREENED_CATEGORY)
                else self.config.ivr.no_input
            )
            return commands + self._classified(Classified(category, frozenset()), "blocked")
        guard = StartTimer(Timer.IVR_GUARD, IVR_GUARD_SECONDS, self._arm(Timer.IVR_GUARD))
        return [*commands, *self._play_menu(self.ivr.start()), guard]

    def _adopted(self, event: Adopted) -> list[Command]:
        if self.state is not CallState.ARRIVED:
            return []
        self.flags |= set(event.flags)
        adopted = Record("flag_set", {"flag": "adopted"})
        if event.category is None or not self._has_category(event.category):
            self.state = CallState.IVR
            self.ivr = Ivr(self.config.ivr, language=self.language)
            return [adopted, *self._play_menu(self.ivr.start())]
        category = self.config.category(event.category)
        self.category = category.code
        self.priority = category.priority if event.priority is None else event.priority
        flags = frozenset(self.flags)
        if event.operator_id is not None:
            self.state = CallState.CONNECTED
            self.operator_id = event.operator_id
            self.operator_present = True
            return [
                adopted,
                ResumeConversation(event.operator_id, category.code, self.priority, flags),
            ]
        self.state = CallState.QUEUED
        self.moh = True
        return [
            adopted,
            Enqueue(category.code, self.priority, flags),
            SaveQueueState(category.code, self.priority, flags),
            StopTalkDetect(),
            StartMoh(),
        ]

    def _hand_over(self) -> list[Command]:
        if self.state not in (CallState.IVR, CallState.QUEUED, CallState.OFFERED):
            return []  # a conversation is finished, not moved
        self.state = CallState.ENDED
        commands: list[Command] = [*self._stop_playing()]
        return commands + [
            LeaveQueue(),
            # Not an end: the dialplan fallback goes on with the call, and the fallback
            # recorder (AMI) writes what happens next under the same call id.
            Record("flag_set", {"flag": "handed_to_fallback"}),
            DestroyBridge(),
            ContinueToFallback(),
        ]

    def _has_category(self, code: str) -> bool:
        return any(c.code == code for c in self.config.categories)

    def _digit(self, event: DigitPressed) -> list[Command]:
        if self.state is CallState.IVR and self.ivr is not None:
            steps_before = len(self.ivr.steps)
            outcome = self.ivr.digit(event.digit)
            commands = self._steps(self.ivr.steps[steps_before:])
            self._armed.pop(Timer.IVR_TIMEOUT, None)  # the digit cancels the running timeout
            if isinstance(outcome, PlayMenu):
                return commands + self._play_menu(outcome)
            if isinstance(outcome, Classified):
                return commands + self._classified(outcome)
            return commands
        if self.state in (CallState.QUEUED, CallState.OFFERED):
            return self._waiting_digit(event)
        return []

    def _play_menu(self, menu: PlayMenu) -> list[Command]:
        prompts = ("invalid", menu.prompt) if menu.apology else (menu.prompt,)
        return self._play(prompts, menu.language)

    def _prompt_finished(self, event: PromptFinished) -> list[Command]:
        if event.playback_id != self.playing:
            return []  # a stopped prompt's late event
        self.playing = None
        if self.state is CallState.IVR:
            return [
                StartTimer(
                    Timer.IVR_TIMEOUT,
                    self.config.ivr.timeout_seconds,
                    self._arm(Timer.IVR_TIMEOUT),
                )
            ]
        if self.state in (CallState.QUEUED, CallState.OFFERED) and not self.moh:
            self.moh = True
            return [StartMoh()]
        return []

    def _timer(self, event: TimerFired) -> list[Command]:
        if event.generation != self._armed.get(event.timer):
            return []  # cancelled or superseded: a digit or a new prompt came first
        del self._armed[event.timer]
        if event.timer in (Timer.IVR_TIMEOUT, Timer.IVR_GUARD) and (
            self.state is CallState.IVR and self.ivr
        ):
            self._armed.clear()
            steps_before = len(self.ivr.steps)
            outcome = self.ivr.timed_out()
            commands = self._steps(self.ivr.steps[steps_before:])
            return commands + (self._classified(outcome) if outcome else [])
        return []

    def _steps(self, steps: list[Step]) -> list[Command]:
        return [
            Record(
                "ivr_step",
                {
                    "menu": s.menu,
                    "input": s.kind.value,
                    "digit": s.digit,
                    "language": s.language.value,
                },
            )
            for s in steps
        ]

    def _classified(self, outcome: Classified, prompt: str | None = None) -> list[Command]:
        category = self.config.category(outcome.category)
        self.category = category.code
        self.flags |= outcome.flags
        self.priority = CANNOT_SPEAK_PRIORITY if "cannot_speak" in self.flags else category.priority
        self.state = CallState.QUEUED
        flags = frozenset(self.flags)
        commands: list[Command] = [*self._stop_playing()]
        commands += [
            Record(
                "call_classified",
                {
                    "category": category.code,
                    "priority": self.priority,
                    "flags": sorted(flags),
                    "language": self.language.value,
                },
            ),
            Enqueue(category.code, self.priority, flags),
            Record("call_queued", {"category": category.code, "priority": self.priority}),
        ]
        self.hold_due = prompt or ("hold_emergency" if self._is_emergency() else "hold_position")
        return [*commands, DeferHold()]

    def _hold(self) -> list[Command]:
        hold, self.hold_due = self.hold_due, None
        if hold is None or self.state not in (CallState.QUEUED, CallState.OFFERED):
            return []  # connected, gone or handed over meanwhile
        commands: list[Command] = [
            # In this order: a channel's variable set while it plays a prompt waits for the
            # prompt's end (one control thread per channel).
            SaveQueueState(self.category or "", self.priority or 0, frozenset(self.flags)),
            StopTalkDetect(),
        ]
        if self.playing is not None or self.moh:
            return commands  # something else is playing already (e.g. the 55 confirmation)
        return commands + self._play((hold,), self.language)

    def _is_emergency(self) -> bool:
        # Emergency categories are the ones reachable in one digit from the main menu.
        main = self.config.ivr.menus["main"].choices.values()
        return self.category in main or self.category == self.config.ivr.no_input

    # -- waiting

    def _waiting_digit(self, event: DigitPressed) -> list[Command]:
        if event.digit != "5":
            self.last_five_at = None
            return []
        if self.last_five_at is None or event.at - self.last_five_at > CANNOT_SPEAK_WINDOW:
            self.last_five_at = event.at
            return []
        self.last_five_at = None
        if "cannot_speak" in self.flags:
            return []
        self.flags.add("cannot_speak")
        self.priority = CANNOT_SPEAK_PRIORITY
        commands: list[Command] = [
            Record("flag_set", {"flag": "cannot_speak"}),
            ChangePriority(CANNOT_SPEAK_PRIORITY),
        ]
        if self.moh:
            self.moh = False
            commands.append(StopMoh())
        return commands + self._play(("cannot_speak",), self.language)

    def _announce_position(self, event: PositionKnown) -> list[Command]:
        if self.state not in (CallState.QUEUED, CallState.OFFERED) or self.playing:
            return []
        if self.hold_due is not None:
            return []  # the hold prompt comes first, as when it is playing
        if self._is_emergency():
            hold = "hold_emergency"  # help is coming: a number in a queue would not comfort
        elif 1 <= event.position <= POSITIONS_SPOKEN:
            hold = f"position_{event.position}"
        else:
            hold = "position_many"
        commands: list[Command] = [
            Record("call_announced", {"position": event.position, "ewt_seconds": event.ewt_seconds})
        ]
        if self.moh:
            self.moh = False
            commands.append(StopMoh())
        return commands + self._play((hold,), self.language)

    # -- offers

    def _ringing(self, event: OperatorRinging) -> list[Command]:
        if self.state not in (CallState.QUEUED, CallState.OFFERED):
            return []
        self.state = CallState.OFFERED
        self.ringing.add(event.operator_id)
        return [Record("call_offered", operator_id=event.operator_id)]

    def _withdrawn(self, event: OfferWithdrawn) -> list[Command]:
        if event.operator_id not in self.ringing:
            return []
        self.ringing.discard(event.operator_id)
        if self.state is CallState.OFFERED and not self.ringing:
            self.state = CallState.QUEUED
        return [Record("offer_failed", {"reason": event.reason}, operator_id=event.operator_id)]

    def _connected(self, event: OperatorConnected) -> list[Command]:
        if self.state not in (CallState.QUEUED, CallState.OFFERED):
            # The call moved on (e.g. a second ring-all answer): that operator must not stay.
            return []
        self.state = CallState.CONNECTED
        self.operator_id = event.operator_id
        self.operator_present = True
        self.connected_at = event.at
        self.ringing.clear()
        commands: list[Command] = [*self._stop_playing()]
        if self.moh:
            self.moh = False
            commands.append(StopMoh())
        # No recording to start: the dialplan records every call from its arrival on.
        return commands + [
            BridgeOperator(event.operator_id, event.channel_id),
            Record("call_connected", operator_id=event.operator_id),
        ]

    # -- the end

    def _hung_up(self, event: HungUp) -> list[Command]:
        if event.party is Party.AGENCY:
            return self._agency_gone(event)
        if event.party is Party.CALLER and self.state is CallState.ARRIVED:
            self.state = CallState.ABANDONED  # gone before the app saw it start
            return [Record("call_abandoned", {"state": "arrived", "cause": event.cause})]
        if event.party is Party.CALLER and self.state is not CallState.CONNECTED:
            self.state = CallState.ABANDONED
            return [
                LeaveQueue(),
                Record(
                    "call_abandoned",
                    {
                        "state": self._abandoned_in(),
                        "cause": event.cause,
                        "category": self.category,
                    },
                ),
                DestroyBridge(),
            ]
        if event.party is Party.SYSTEM and self.state in (
            CallState.IVR,
            CallState.QUEUED,
            CallState.OFFERED,
        ):
            # Cut by the system (e.g. Asterisk restarted): not the caller's doing.
            self.state = CallState.ENDED
            return [
                LeaveQueue(),
                Record("call_ended", {"hangup_by": "system", "reason": event.cause}),
                DestroyBridge(),
            ]
        if self.state is not CallState.CONNECTED or self.operator_id is None:
            return []  # an operator leg hanging up before it was connected is an offer matter
        if event.party is Party.OPERATOR:
            if not self.operator_present:
                return []
            if self._ghost_answer(event):
                return self._requeue_after_ghost_answer()
            if self.agencies:
                self.operator_present = False
                # The operator hands the caller over to the agency and leaves: the call goes
                # on between caller and agency; the operator goes to wrap-up.
                return [
                    Record(
                        "call_transferred",
                        {"agency": ",".join(sorted(self.agencies))},
                        operator_id=self.operator_id,
                    ),
                    FinishCall(self.operator_id),
                ]
        return self._end(event.party, event.cause)

    def _ghost_answer(self, event: HungUp) -> bool:
        # An operator whose phone answers and hangs up at once (a pocket answer, a faulty
        # headset) must not end an emergency call: the caller goes back to their place.
        if self.agencies or not self.connected_at or event.at <= 0:
            return False  # 0 or None: the time is not known
        return event.at - self.connected_at < GHOST_ANSWER_SECONDS

    def _requeue_after_ghost_answer(self) -> list[Command]:
        assert self.operator_id is not None and self.category is not None
        operator_id, self.operator_id = self.operator_id, None
        self.operator_present = False
        self.connected_at = None
        self.state = CallState.QUEUED
        self.moh = True
        return [
            Record("offer_failed", {"reason": "hung_up_at_once"}, operator_id=operator_id),
            Requeue(operator_id),
            StartMoh(),
        ]

    def _end(self, by: Party, cause: str) -> list[Command]:
        assert self.operator_id is not None
        self.state = CallState.ENDED
        commands: list[Command] = [
            Record(
                "call_ended",
                {
                    "hangup_by": by.value,
                    "cause": cause,
                    "reason": cause if by is Party.SYSTEM else "normal",
                },
                operator_id=self.operator_id,
            ),
        ]
        if self.operator_present:
            self.operator_present = False
            commands.append(FinishCall(self.operator_id))
            if by is not Party.OPERATOR:
                commands.append(HangUp(Party.OPERATOR))
        if self.agencies or self.dialing_agencies:
            commands.append(HangUp(Party.AGENCY))
        # Only an operator or an agency ends a conversation for the caller; a system hangup
        # (e.g. a PBX restart) never hangs up on a caller who may still be there.
        if by in (Party.OPERATOR, Party.AGENCY):
            commands.append(HangUp(Party.CALLER))
        return commands + [DestroyBridge()]

    # -- agencies

    def _agency_requested(self, code: str) -> list[Command]:
        known = {a.code for a in self.config.agencies}
        if (
            self.state is not CallState.CONNECTED
            or code not in known
            or code in self.agencies
            or code in self.dialing_agencies
        ):
            return []
        self.dialing_agencies.add(code)
        return [DialAgency(code), Record("flag_set", {"flag": f"agency_requested:{code}"})]

    def _agency_answered(self, event: AgencyAnswered) -> list[Command]:
        if self.state is not CallState.CONNECTED or event.agency not in self.dialing_agencies:
            return [DropLeg(event.channel_id)]
        self.dialing_agencies.discard(event.agency)
        self.agencies.add(event.agency)
        return [
            BridgeAgency(event.agency, event.channel_id),
            Record("agency_added", {"agency": event.agency}, operator_id=self.operator_id),
        ]

    def _agency_gone(self, event: HungUp) -> list[Command]:
        self.dialing_agencies.discard(event.agency)
        if event.agency not in self.agencies:
            return []
        self.agencies.discard(event.agency)
        if self.state is CallState.CONNECTED and not self.operator_present and not self.agencies:
            return self._end(Party.AGENCY, event.cause)  # the caller would be alone
        return []

    def _operator_digit(self, digit: str) -> list[Command]:
        if self.state is not CallState.CONNECTED:
            return []
        if digit == "*":
            self.operator_keys = "*"
            return []
        keys, self.operator_keys = self.operator_keys + digit, ""
        if len(keys) == 2 and keys.startswith("*"):
            for agency in self.config.agencies:
                if agency.digit == keys[1]:
                    return self._agency_requested(agency.code)
        return []

    def _abandoned_in(self) -> str:
        return "ivr" if self.category is None else "queue"

    # -- helpers

    def _play(self, prompts: tuple[str, ...], language: Language) -> list[Command]:
        commands = self._stop_playing()
        self._playbacks += 1
        self.playing = f"{self.call_id}-p{self._playbacks}"
        return [*commands, Play(self.playing, prompts, language)]

    def _stop_playing(self) -> list[Command]:
        if self.playing is None:
            return []
        playing, self.playing = self.playing, None
        return [StopPlayback(playing)]

    def _arm(self, timer: Timer) -> int:
        """A new generation for a timer being started; only the armed one may fire."""
        self._generations[timer] = self._generations.get(timer, 0) + 1
        self._armed[timer] = self._generations[timer]
        return self._generations[timer]
