"""One 112 call's state machine: pure, `handle(event) -> list[Command]`.

The machine knows nothing of ARI, asyncio or SQL: the call's actor (ari_app/actor.py) turns ARI
events into these events and carries the commands out. Every rule of the call's life is here:
what the caller hears, what the records say, which operator legs ring, which answer wins, which
leg is hung up, what a failed command means. So the rules can be tested in microseconds and
fuzzed with events in any order. Where a call may go is data: `transitions.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog

from ari_app.call.commands import (
    Answer,
    BridgeAgency,
    BridgeColleague,
    BridgeOperator,
    BridgeSupervisor,
    ChangePriority,
    ClaimColleague,
    ClaimOffer,
    Command,
    ContinueToFallback,
    CreateBridge,
    CreateListenBridge,
    DeferHold,
    DestroyBridge,
    DestroyListenBridge,
    DialAgency,
    DialColleague,
    DialPartner,
    DialSupervisor,
    Disconnect,
    EnableTalkDetect,
    Enqueue,
    FinishCall,
    HangUpLeg,
    JoinListenBridge,
    LeaveQueue,
    Play,
    ReleaseOperator,
    ReportOfferFailure,
    Requeue,
    ResumeConversation,
    RingOperator,
    SaveQueueState,
    Snoop,
    StartMoh,
    StartTimer,
    StopMoh,
    StopPlayback,
    StopTalkDetect,
)
from ari_app.call.events import (
    Adopted,
    AgencyAnswered,
    AgencyRequested,
    CallerTalking,
    CallEvent,
    ColleagueClaimed,
    ColleagueRequested,
    CommandFailed,
    DigitPressed,
    HandOver,
    HangUpRequested,
    HoldDue,
    HoldRequested,
    HungUp,
    LeaveRequested,
    LegAnswered,
    LegDialStatus,
    LegHungUp,
    ListenRequested,
    OfferClaimed,
    OfferWithdrawn,
    OperatorConnected,
    OperatorDigit,
    OperatorRinging,
    Overflowed,
    PositionKnown,
    PromptFinished,
    Queued,
    RingCancelled,
    RingRequested,
    Started,
    TimerFired,
)
from ari_app.call.failures import Failure, failure_of, offer_failure
from ari_app.call.overflow import PartnerAttempt
from ari_app.call.states import (
    CallState,
    HandOff,
    LegState,
    ListenMode,
    OperatorLeg,
    Party,
    SideKind,
    SideLeg,
    Timer,
)
from ari_app.call.transitions import IllegalTransition, allowed
from ari_app.ivr import UNCLASSIFIED, Classified, Ivr, Language, PlayMenu, Step
from db.events import Facts, HangupBy, RecordOnlyFailure
from queues.config import TargetKind
from queues.events import OfferFailed
from queues.states import OfferFailure
from siaga.config import Config

log = structlog.get_logger(__name__)

# Two 5s pressed within this many seconds while waiting: "I cannot speak" (the 55 path).
CANNOT_SPEAK_WINDOW = 3.0
CANNOT_SPEAK_PRIORITY = 0
SCREENED_CATEGORY = "screened"
GHOST_ANSWER_SECONDS = 2.0
IVR_GUARD_SECONDS = 90.0  # a language switch and a sub-menu, prompts and timeouts, fit in it
POSITIONS_SPOKEN = 20  # prompts position_1 ... position_20 (pbx/provision.py)
WAITING = (CallState.QUEUED, CallState.OFFERED)
ON_HOLD = "on_hold"  # the flag of a call whose operator put the caller on hold


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
    held: bool = False  # the caller on hold by the operator (music to their ear, still bridged)
    position: int | None = None  # the last the ACD gave (queued, announced)
    queued_at: float | None = None
    # Queued at the deadline before the caller chose: the menu goes on until they choose, it
    # times out, or an operator answers.
    menu_open: bool = False
    draining: bool = False  # the app is shutting down: no operator of ours takes it again
    legs: dict[str, OperatorLeg] = field(default_factory=dict)  # by channel id
    side: dict[str, SideLeg] = field(default_factory=dict)  # by channel id
    partner: PartnerAttempt | None = None  # an overflow to a partner centre under way
    overflow_tried: set[str] = field(default_factory=set)  # targets it came back from
    _queued_recorded: bool = False
    _playbacks: int = 0
    _rings: int = 0
    _sides: int = 0  # side legs ever made: their channel ids stay unique
    _generations: dict[Timer, int] = field(default_factory=dict)
    _armed: dict[Timer, int] = field(default_factory=dict)
    # A move the table does not list raises (the tests, tests/ari_app/conftest.py) or is
    # logged as an error (in service).
    strict: ClassVar[bool] = False

    @property
    def language(self) -> Language:
        return self.ivr.language if self.ivr else Language(self.config.centre.language)

    @property
    def finished(self) -> bool:
        """Final, and none of its legs still up: the actor may stop."""
        return (
            self.state.final
            and not any(leg.live for leg in self.legs.values())
            and all(leg.gone for leg in self.side.values())
        )

    def hand_offs(self) -> tuple[HandOff, ...]:
        """The agencies and colleagues conferenced in, and how each is going (for the desk)."""
        return tuple(
            leg.hand_off()
            for leg in self.side.values()
            if leg.kind in (SideKind.AGENCY, SideKind.COLLEAGUE)
        )

    def joined_operators(self) -> tuple[str, ...]:
        """The operator colleagues in the conversation beside the call's operator (their desks
        show the call too)."""
        leg = self._colleague()
        return (leg.operator_id,) if leg and leg.answered and leg.operator_id else ()

    def connected_leg(self) -> str | None:
        """The channel of the operator in the conversation, if any."""
        for leg in self.legs.values():
            if leg.state is LegState.CONNECTED:
                return leg.channel_id
        return None

    def handle(self, event: CallEvent) -> list[Command]:
        if self.state.final:
            # Late events of a finished call (e.g. a duplicate hangup) change nothing; a leg
            # that answers now is not wanted.
            return self._late_leg(event)
        before = self.state
        commands = _HANDLERS[type(event)](self, event)
        if self.state is not before:
            if self.state not in allowed(before, type(event)):
                self._illegal(before, event)
            log.info(
                "call.transition",
                call_id=self.call_id,
                operator=self.operator_id,
                old=before.value,
                new=self.state.value,
                trigger=type(event).__name__,
            )
        return commands

    def _illegal(self, before: CallState, event: CallEvent) -> None:
        move = f"{before} -> {self.state} on {type(event).__name__}"
        if CallMachine.strict:
            raise IllegalTransition(move)
        # In service the call goes on with its commands: a 112 caller is not dropped for a bug.
        log.error("call.illegal_transition", call_id=self.call_id, move=move)

    # -- arrival and IVR

    def _started(self, event: Started) -> list[Command]:
        if self.state is not CallState.ARRIVED:
            return []
        self.state = CallState.IVR
        self.flags |= set(event.flags)
        self.ivr = Ivr(self.config.ivr, language=event.language or self.language)
        commands: list[Command] = [
            Facts.call_arrived(
                event.caller_number, caller_name=event.caller_name, flags=sorted(self.flags)
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
        # The menu never keeps a caller from a free operator: from the call's arrival at
        # Asterisk, a caller who has chosen nothing by then is queued while it goes on.
        left = max(0.0, self.config.ivr.queue_after_seconds - event.since_arrival)
        deadline = StartTimer(Timer.IVR_DEADLINE, left, self._arm(Timer.IVR_DEADLINE))
        return [*commands, *self._play_menu(self.ivr.start()), guard, deadline]

    def _adopted(self, event: Adopted) -> list[Command]:
        if self.state is not CallState.ARRIVED:
            return []
        self.flags |= set(event.flags)
        self._queued_recorded = True  # its first arrival in the queue is on record already
        adopted = Facts.flag_set("adopted")
        # What the last app died before doing: answer the caller, put them in their bridge.
        setup: list[Command] = [] if event.answered else [Answer()]
        if not event.bridged and event.operator_id is None:
            setup.append(CreateBridge())
        if event.category is None or not self._has_category(event.category):
            self.state = CallState.IVR
            self.ivr = Ivr(self.config.ivr, language=self.language)
            return [adopted, *setup, *self._play_menu(self.ivr.start())]
        category = self.config.category(event.category)
        self.category = category.code
        self.priority = category.priority if event.priority is None else event.priority
        flags = frozenset(self.flags)
        if event.operator_id is not None:
            self.state = CallState.CONNECTED
            self.operator_id = event.operator_id
            self.operator_present = True
            if event.operator_channel is not None:
                self.legs[event.operator_channel] = OperatorLeg(
                    event.operator_id, event.operator_channel, LegState.CONNECTED
                )
            return [
                adopted,
                ResumeConversation(event.operator_id, category.code, self.priority, flags),
            ]
        self.state = CallState.QUEUED
        self.moh = True
        return [
            adopted,
            *setup,
            Enqueue(category.code, self.priority, flags),
            SaveQueueState(category.code, self.priority, flags),
            StopTalkDetect(),
            StartMoh(),
        ]

    def _hand_over(self, _: HandOver | None = None) -> list[Command]:
        if self.state is CallState.CONNECTED:
            self.draining = True  # a conversation is finished, not moved
            return []
        if self.state not in (CallState.IVR, *WAITING):
            return []
        self.draining = True
        self.state = CallState.ENDED
        commands: list[Command] = [*self._stop_playing(), *self._leave_queue()]
        return commands + [
            # Not an end: the dialplan fallback goes on with the call, and the fallback
            # recorder (AMI) writes what happens next under the same call id.
            Facts.flag_set("handed_to_fallback"),
            *self._destroy_bridge(),
            ContinueToFallback(),
        ]

    def _has_category(self, code: str) -> bool:
        return any(c.code == code for c in self.config.categories)

    def _digit(self, event: DigitPressed) -> list[Command]:
        if (self.state is CallState.IVR or self.menu_open) and self.ivr is not None:
            steps_before = len(self.ivr.steps)
            outcome = self.ivr.digit(event.digit)
            commands = self._steps(self.ivr.steps[steps_before:])
            self._armed.pop(Timer.IVR_TIMEOUT, None)  # the digit cancels the running timeout
            if isinstance(outcome, PlayMenu):
                return commands + self._play_menu(outcome)
            if isinstance(outcome, Classified):
                return commands + self._menu_done(outcome)
            return commands
        if self.state in WAITING:
            return self._waiting_digit(event)
        return []

    def _play_menu(self, menu: PlayMenu) -> list[Command]:
        prompts = ("invalid", menu.prompt) if menu.apology else (menu.prompt,)
        return self._play(prompts, menu.language)

    def _prompt_finished(self, event: PromptFinished) -> list[Command]:
        if event.playback_id != self.playing:
            return []  # a stopped prompt's late event
        self.playing = None
        if self.state is CallState.IVR or self.menu_open:
            return [
                StartTimer(
                    Timer.IVR_TIMEOUT,
                    self.config.ivr.timeout_seconds,
                    self._arm(Timer.IVR_TIMEOUT),
                )
            ]
        if self.state in WAITING and not self.moh:
            self.moh = True
            return [StartMoh()]
        return []

    def _timer(self, event: TimerFired) -> list[Command]:
        if event.generation != self._armed.get(event.timer):
            return []  # cancelled or superseded: a digit or a new prompt came first
        del self._armed[event.timer]
        if event.timer is Timer.IVR_DEADLINE:
            return self._queue_unclassified() if self.state is CallState.IVR else []
        if event.timer in (Timer.IVR_TIMEOUT, Timer.IVR_GUARD) and (
            (self.state is CallState.IVR or self.menu_open) and self.ivr
        ):
            steps_before = len(self.ivr.steps)
            outcome = self.ivr.timed_out()
            commands = self._steps(self.ivr.steps[steps_before:])
            return commands + (self._menu_done(outcome) if outcome else [])
        return []

    def _menu_done(self, outcome: Classified) -> list[Command]:
        self._armed.clear()  # the menu's timers: timeout, guard, deadline
        if self.state is CallState.IVR:
            return self._classified(outcome)
        return self._chosen_while_queued(outcome)

    def _queue_unclassified(self) -> list[Command]:
        """Nothing chosen by the deadline: queue the call as `no_input` now, flagged
        `unclassified`, in its place by arrival. The menu goes on: a choice made while the call
        waits still counts (_chosen_while_queued)."""
        category = self.config.category(self.config.ivr.no_input)
        self.category = category.code
        self.flags.add(UNCLASSIFIED)
        self.priority = category.priority
        self.state = CallState.QUEUED
        self.menu_open = True
        self._queued_recorded = False
        self.hold_due = "hold_emergency"  # once the menu is done (_hold saves the place now)
        flags = frozenset(self.flags)
        # Recorded as a classification by nobody, so the call log shows where it waits; a later
        # choice is a second classification, and the latest wins.
        classified = Facts.call_classified(
            category.code, priority=self.priority, flags=sorted(flags), language=self.language.value
        )
        return [
            classified,
            Enqueue(category.code, self.priority, flags),
            DeferHold(),
        ]

    def _chosen_while_queued(self, outcome: Classified) -> list[Command]:
        """The menu classified a call that waits already (queued at the deadline): the choice
        is recorded; a waiting call moves to its category's line, keeping its place by arrival;
        a ringing one keeps ringing (the operator sees the choice on the desk)."""
        before, self.menu_open = self.category, False
        category = self.config.category(outcome.category)
        self.category = category.code
        self.flags |= outcome.flags
        self.priority = CANNOT_SPEAK_PRIORITY if "cannot_speak" in self.flags else category.priority
        flags = frozenset(self.flags)
        commands: list[Command] = [
            *self._stop_playing(),
            Facts.call_classified(
                category.code,
                priority=self.priority,
                flags=sorted(flags),
                language=self.language.value,
            ),
        ]
        if category.code != before and self.state is CallState.QUEUED:
            commands.append(Requeue())
        commands += [SaveQueueState(category.code, self.priority, flags), StopTalkDetect()]
        self.hold_due = None
        hold = "hold_emergency" if self._is_emergency() else "hold_position"
        return commands + self._play((hold,), self.language)

    def _talking(self, _: CallerTalking) -> list[Command]:
        if self.ivr is not None:
            self.ivr.talking()
        return []

    def _steps(self, steps: list[Step]) -> list[Command]:
        return [
            Facts.ivr_step(s.menu, input=s.kind.value, digit=s.digit, language=s.language.value)
            for s in steps
        ]

    def _classified(self, outcome: Classified, prompt: str | None = None) -> list[Command]:
        category = self.config.category(outcome.category)
        self.category = category.code
        self.flags |= outcome.flags
        self.priority = CANNOT_SPEAK_PRIORITY if "cannot_speak" in self.flags else category.priority
        self.state = CallState.QUEUED
        self._queued_recorded = False
        self._armed.pop(Timer.IVR_DEADLINE, None)
        flags = frozenset(self.flags)
        commands: list[Command] = [*self._stop_playing()]
        commands += [
            Facts.call_classified(
                category.code,
                priority=self.priority,
                flags=sorted(flags),
                language=self.language.value,
            ),
            Enqueue(category.code, self.priority, flags),
        ]
        self.hold_due = prompt or ("hold_emergency" if self._is_emergency() else "hold_position")
        return [*commands, DeferHold()]

    def _queued(self, event: Queued) -> list[Command]:
        # Offered at once, the call was next in line: position 1.
        self.position = 1 if event.position is None else event.position
        self.queued_at = event.at or None
        if self._queued_recorded or self.state not in WAITING:
            return []  # adopted or requeued: its arrival in the queue is on record already
        self._queued_recorded = True
        return [Facts.call_queued(category=self.category, position=self.position)]

    def _hold(self, _: HoldDue) -> list[Command]:
        hold, self.hold_due = self.hold_due, None
        if hold is None or self.state not in WAITING:
            return []  # connected, gone or handed over meanwhile
        save = SaveQueueState(self.category or "", self.priority or 0, frozenset(self.flags))
        if self.menu_open:
            return [save]  # the menu goes on, and talk detection with it
        # In this order: a channel's variable set while it plays a prompt waits for the
        # prompt's end (one control thread per channel).
        commands: list[Command] = [save, StopTalkDetect()]
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
            Facts.flag_set("cannot_speak"),
            ChangePriority(CANNOT_SPEAK_PRIORITY),
        ]
        if self.moh:
            self.moh = False
            commands.append(StopMoh())
        return commands + self._play(("cannot_speak",), self.language)

    def _announce_position(self, event: PositionKnown) -> list[Command]:
        if self.state not in WAITING:
            return []
        self.position = event.position
        if self.playing or self.hold_due is not None or self.menu_open:
            return []  # the hold prompt (or the menu) comes first
        if self._is_emergency():
            hold = "hold_emergency"  # help is coming: a number in a queue would not comfort
        elif 1 <= event.position <= POSITIONS_SPOKEN:
            hold = f"position_{event.position}"
        else:
            hold = "position_many"
        commands: list[Command] = [
            Facts.call_announced(position=event.position, ewt_seconds=event.ewt_seconds)
        ]
        if self.moh:
            self.moh = False
            commands.append(StopMoh())
        return commands + self._play((hold,), self.language)

    # -- offers: what the ACD decided, and what the operators' legs did

    def _ring_requested(self, event: RingRequested) -> list[Command]:
        operator_id = event.operator_id
        if self.state not in WAITING:
            return [self._offer_failed(operator_id, OfferFailure.UNREACHABLE)]
        self._rings += 1
        channel_id = f"{self.call_id}-op{self._rings}"
        self.legs[channel_id] = OperatorLeg(operator_id, channel_id, LegState.RINGING)
        return [*self._ringing(OperatorRinging(operator_id)), RingOperator(operator_id, channel_id)]

    def _ringing(self, event: OperatorRinging) -> list[Command]:
        if self.state not in WAITING:
            return []
        self.state = CallState.OFFERED
        self.ringing.add(event.operator_id)
        return [Facts.call_offered(event.operator_id)]

    def _ring_cancelled(self, event: RingCancelled) -> list[Command]:
        leg = next(
            (
                leg
                for leg in self.legs.values()
                if leg.operator_id == event.operator_id and leg.state is LegState.RINGING
            ),
            None,
        )
        if leg is None:
            return []
        leg.state = LegState.GONE
        withdrawn = self._withdrawn(OfferWithdrawn(event.operator_id, event.reason.value))
        return [HangUpLeg(leg.channel_id), *withdrawn]

    def _withdrawn(self, event: OfferWithdrawn) -> list[Command]:
        if event.operator_id not in self.ringing:
            return []
        self.ringing.discard(event.operator_id)
        if self.state is CallState.OFFERED and not self.ringing:
            self.state = CallState.QUEUED
        return [Facts.offer_failed(event.operator_id, event.reason)]

    def _leg_answered(self, event: LegAnswered) -> list[Command]:
        if event.channel_id in self.side:
            return self._side_answered(self.side[event.channel_id])
        leg = self.legs.get(event.channel_id)
        if leg is None:
            return []
        if leg.state is not LegState.RINGING:
            leg.state = LegState.GONE
            return [HangUpLeg(leg.channel_id)]  # a leg we gave up on answered late
        leg.state = LegState.ANSWERED
        return [ClaimOffer(leg.operator_id, leg.channel_id)]

    def _offer_claimed(self, event: OfferClaimed) -> list[Command]:
        leg = self.legs.get(event.channel_id)
        if leg is None or leg.state is not LegState.ANSWERED:
            return []
        if not event.won or self.state not in WAITING:
            leg.state = LegState.GONE  # ring-all: another operator was faster
            return [HangUpLeg(leg.channel_id)]
        return self._connected(OperatorConnected(leg.operator_id, leg.channel_id, event.at))

    def _connected(self, event: OperatorConnected) -> list[Command]:
        if self.state not in WAITING:
            # The call moved on (e.g. a second ring-all answer): that operator must not stay.
            return []
        self.state = CallState.CONNECTED
        self.operator_id = event.operator_id
        self.operator_present = True
        self.connected_at = event.at
        self.ringing.clear()
        leg = self.legs.setdefault(
            event.channel_id, OperatorLeg(event.operator_id, event.channel_id, LegState.CONNECTED)
        )
        leg.state = LegState.CONNECTED
        commands: list[Command] = [*self._stop_playing()]
        if self.moh:
            self.moh = False
            commands.append(StopMoh())
        # No recording to start: the dialplan makes the recording of every call from its arrival.
        commands += [
            BridgeOperator(event.operator_id, event.channel_id),
            Facts.call_connected(event.operator_id),
        ]
        if self.menu_open:
            # Answered while the menu still ran (queued at the deadline): the menu is over.
            self.menu_open = False
            self._armed.clear()
            commands.append(StopTalkDetect())
        return commands

    def _dial_status(self, event: LegDialStatus) -> list[Command]:
        leg = self.legs.get(event.channel_id)
        if leg is not None and event.status:
            leg.dialstatus = event.status
        return []

    def _leg_hung_up(self, event: LegHungUp) -> list[Command]:
        if event.channel_id in self.side:
            return self._side_ended(self.side[event.channel_id], event.cause)
        leg = self.legs.get(event.channel_id)
        if leg is None or leg.state is LegState.GONE:
            return []
        if leg.state is LegState.CONNECTED:
            leg.state = LegState.GONE
            cause = str(event.cause or "")
            return self._hung_up(HungUp(Party.OPERATOR, cause, at=event.at))
        if not event.destroyed:
            # A ringing leg ends for good with its destruction, which carries the cause
            # (busy, rejected...); a connected operator hanging up matters at once.
            return []
        leg.state = LegState.GONE
        failure = offer_failure(event.cause, leg.dialstatus)
        log.info(
            "call.offer_failed",
            call_id=self.call_id,
            operator=leg.operator_id,
            cause=event.cause,
            dialstatus=leg.dialstatus,
            failure=failure.value,
        )
        withdrawn = self._withdrawn(OfferWithdrawn(leg.operator_id, failure.value))
        return [*withdrawn, self._offer_failed(leg.operator_id, failure)]

    def _offer_failed(self, operator_id: str, failure: OfferFailure) -> ReportOfferFailure:
        return ReportOfferFailure(OfferFailed(self.call_id, operator_id, failure))

    # -- commands that failed in Asterisk

    def _command_failed(self, event: CommandFailed) -> list[Command]:
        command, failure = event.command, failure_of(event.command, event.status)
        log.info(
            "call.command_failed",
            call_id=self.call_id,
            command=type(command).__name__,
            status=event.status,
            failure=failure.value,
        )
        if failure is Failure.CALLER_GONE:
            return self._hung_up(HungUp(Party.CALLER, "gone"))  # the caller hung up under us
        if failure is Failure.OPERATOR_GONE and isinstance(command, BridgeOperator):
            # The operator's leg (or the call's bridge) vanished before it joined: not a
            # conversation; back in line. The leg is hung up all the same: were it the bridge
            # that was missing, the answered operator would be left in a silent call.
            leg = self.legs.get(command.channel_id)
            if leg is not None:
                leg.state = LegState.GONE
            requeue = self._hung_up(HungUp(Party.OPERATOR, "gone", at=event.at))
            return [HangUpLeg(command.channel_id), *requeue]
        if failure is Failure.LEG_UNREACHABLE:
            return self._unreachable(command)
        return []

    def _unreachable(self, command: Command) -> list[Command]:
        if isinstance(command, RingOperator):
            # No registered contact ("Allocation failed") or any refusal: the ACD retries
            # that operator after a short delay.
            leg = self.legs[command.channel_id]
            leg.state = LegState.GONE
            failure = OfferFailure.UNREACHABLE
            withdrawn = self._withdrawn(OfferWithdrawn(command.operator_id, failure.value))
            return [*withdrawn, self._offer_failed(command.operator_id, failure)]
        if isinstance(command, DialPartner):
            return self._partner_gone(self.side[command.channel_id], None)
        if isinstance(command, DialAgency | DialSupervisor | DialColleague):
            self.side[command.channel_id].gone = True
        if isinstance(command, DialAgency):
            return self._agency_gone(HungUp(Party.AGENCY, "unreachable", agency=command.agency))
        return []

    # -- the end

    def _hung_up(self, event: HungUp) -> list[Command]:
        if event.party is Party.AGENCY:
            return self._agency_gone(event)
        if event.party is Party.CALLER and self.state is CallState.ARRIVED:
            self.state = CallState.ABANDONED  # gone before the app saw it start
            return [Facts.call_abandoned(state="arrived", cause=event.cause)]
        if event.party is Party.CALLER and self.state is not CallState.CONNECTED:
            self.state = CallState.ABANDONED
            waited = event.at - self.queued_at if self.queued_at and event.at else None
            return [
                *self._leave_queue(),
                Facts.call_abandoned(
                    position=self.position,
                    wait_seconds=waited,
                    state=self._abandoned_in(),
                    cause=event.cause,
                    category=self.category,
                ),
                *self._destroy_bridge(),
            ]
        if event.party is Party.SYSTEM and self.state in (CallState.IVR, *WAITING):
            # Cut by the system (e.g. Asterisk restarted): not the caller's doing.
            self.state = CallState.ENDED
            return [
                *self._leave_queue(),
                Facts.call_ended(HangupBy.SYSTEM, reason=event.cause),
                *self._destroy_bridge(),
            ]
        if self.state is CallState.CONNECTED and self.partner is not None:
            return self._partner_call_over(event)
        if self.state is not CallState.CONNECTED or self.operator_id is None:
            return []  # an operator leg hanging up before it was connected is an offer matter
        if event.party is Party.OPERATOR:
            if not self.operator_present:
                return []
            colleague = self._colleague()
            if colleague is not None and colleague.answered:
                return self._hand_over_to(colleague)
            if self._ghost_answer(event):
                return self._requeue_after_ghost_answer()
            if self.agencies:
                self.operator_present = False
                # The operator hands the caller over to the agency and leaves: the call goes
                # on between caller and agency; the operator goes to wrap-up.
                return [
                    Facts.call_transferred(
                        ",".join(sorted(self.agencies)), operator_id=self.operator_id
                    ),
                    FinishCall(self.operator_id),
                    # A colleague still ringing was the operator's to talk to: not wanted now.
                    *self._hang_up_side(SideKind.COLLEAGUE),
                    *self._take_back(),
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
        ghost = Facts.offer_failed(operator_id, RecordOnlyFailure.HUNG_UP_AT_ONCE)
        self.held = False  # back in line: the waiting music, not the operator's hold
        if self.draining:
            # Shutting down: no operator of ours will take it; the fallback will.
            return [ghost, FinishCall(operator_id), *self._hand_over()]
        self.moh = True
        return [ghost, Requeue(operator_id), StartMoh()]

    def _end(self, by: Party, cause: str, *, hang_up_operator: bool = False) -> list[Command]:
        assert self.operator_id is not None
        self.state = CallState.ENDED
        # Only an operator or an agency ends a conversation for the caller; a system hangup
        # (e.g. a PBX restart) never hangs up on a caller who may still be there. The caller is
        # hung up before the end is recorded: were the app killed in between, a restarted app
        # would find a caller "recorded as ended" still up and take them for a new waiting
        # call; this way round a kill loses at most the record, which the reconciliation gives
        # back with Asterisk's time (docs/architecture.md §5.1).
        ending = by in (Party.OPERATOR, Party.AGENCY)
        commands: list[Command] = [Disconnect()] if ending else []
        commands += [
            Facts.call_ended(
                HangupBy(by.value),
                cause=cause or None,
                reason=cause if by is Party.SYSTEM else "normal",
                operator_id=self.operator_id,
            ),
        ]
        if self.operator_present:
            self.operator_present = False
            commands.append(FinishCall(self.operator_id))
        if by is Party.OPERATOR and not hang_up_operator:
            for leg in self.legs.values():
                if leg.state is LegState.CONNECTED:
                    leg.state = LegState.GONE  # the operator hung up: nothing to hang up
        commands += self._hang_up_legs()
        commands += self._hang_up_side(SideKind.AGENCY)
        return commands + self._destroy_bridge()

    def _leave_queue(self) -> list[Command]:
        """Tell the ACD the caller is gone, and stop ringing the operators."""
        return [LeaveQueue(), *self._hang_up_legs()]

    def _hang_up_legs(self) -> list[Command]:
        commands: list[Command] = []
        for leg in self.legs.values():
            if leg.live:
                leg.state = LegState.GONE
                commands.append(HangUpLeg(leg.channel_id))
        return commands

    def _destroy_bridge(self) -> list[Command]:
        # Listeners go with the conversation, and so does a partner centre.
        commands = self._hang_up_side(
            SideKind.SUPERVISOR, SideKind.SNOOP, SideKind.PARTNER, SideKind.COLLEAGUE
        )
        for leg in self.side.values():
            if leg.bridge_id:
                commands.append(DestroyListenBridge(leg.bridge_id))
                leg.bridge_id = ""
        return [*commands, DestroyBridge()]

    def _hang_up_side(self, *kinds: SideKind) -> list[Command]:
        commands: list[Command] = []
        for leg in self.side.values():
            if leg.kind in kinds and not leg.gone:
                leg.gone = True
                commands.append(HangUpLeg(leg.channel_id))
        return commands

    def _late_leg(self, event: CallEvent) -> list[Command]:
        if not isinstance(event, LegAnswered):
            return []
        leg = self.legs.get(event.channel_id)
        side = self.side.get(event.channel_id)
        if leg is not None:
            leg.state = LegState.GONE
        elif side is not None:
            side.gone = True
        else:
            return []
        return [HangUpLeg(event.channel_id)]

    # -- agencies and supervisors

    def _side_leg(self, kind: SideKind, name: str) -> SideLeg:
        channel_id = ""
        # Never an id the call holds already: a colleague's leg that became the operator's,
        # or one adopted after a restart under the same name.
        while not channel_id or channel_id in self.legs or channel_id in self.side:
            self._sides += 1
            channel_id = f"{self.call_id}-{kind.value[:3]}{self._sides}"
        leg = SideLeg(kind, name, channel_id)
        self.side[channel_id] = leg
        return leg

    def _agency_requested(self, event: AgencyRequested) -> list[Command]:
        code = event.agency
        known = {a.code for a in self.config.agencies}
        if (
            self.state is not CallState.CONNECTED
            or self.operator_id is None  # with a partner centre: theirs to add agencies
            or code not in known
            or code in self.agencies
            or code in self.dialing_agencies
        ):
            return []
        self.dialing_agencies.add(code)
        leg = self._side_leg(SideKind.AGENCY, code)
        return [DialAgency(code, leg.channel_id), Facts.flag_set(f"agency_requested:{code}")]

    def _agency_answered(self, event: AgencyAnswered) -> list[Command]:
        if self.state is not CallState.CONNECTED or event.agency not in self.dialing_agencies:
            if event.channel_id in self.side:
                self.side[event.channel_id].gone = True
            return [HangUpLeg(event.channel_id)]
        self.dialing_agencies.discard(event.agency)
        self.agencies.add(event.agency)
        if event.channel_id in self.side:
            self.side[event.channel_id].answered = True
        return [
            BridgeAgency(event.agency, event.channel_id),
            Facts.agency_added(event.agency, operator_id=self.operator_id),
        ]

    def _agency_gone(self, event: HungUp) -> list[Command]:
        self.dialing_agencies.discard(event.agency)
        if event.agency not in self.agencies:
            return []
        self.agencies.discard(event.agency)
        if self.state is CallState.CONNECTED and self._caller_alone():
            return self._end(Party.AGENCY, event.cause)
        return []

    def _listen_requested(self, event: ListenRequested) -> list[Command]:
        if self.state is not CallState.CONNECTED:
            log.info("call.listen_refused", call_id=self.call_id, state=self.state.value)
            return []
        leg = self._side_leg(SideKind.SUPERVISOR, event.mode.value)
        return [DialSupervisor(event.dial, event.mode, leg.channel_id)]

    def _side_answered(self, leg: SideLeg) -> list[Command]:
        if leg.kind is SideKind.PARTNER:
            return self._partner_answered(leg)
        operator_channel = self.connected_leg()
        if leg.gone or self.state is not CallState.CONNECTED:
            leg.gone = True
            return [HangUpLeg(leg.channel_id)]
        if leg.kind is SideKind.AGENCY:
            return self._agency_answered(AgencyAnswered(leg.name, leg.channel_id))
        if leg.kind is SideKind.COLLEAGUE:
            if leg.operator_id:
                return [ClaimColleague(leg.operator_id, leg.channel_id)]
            return self._colleague_joined(leg)
        if leg.kind is SideKind.SNOOP:
            supervisor = self.side[leg.peer]
            channels = (supervisor.channel_id, leg.channel_id)
            return [
                JoinListenBridge(supervisor.bridge_id, channels),
                Facts.flag_set(f"supervisor_{supervisor.name}"),
            ]
        if leg.name == ListenMode.BARGE:
            return [BridgeSupervisor(leg.channel_id)]
        if operator_channel is None:
            leg.gone = True  # the operator left: nobody to listen to
            return [HangUpLeg(leg.channel_id)]
        snoop = self._side_leg(SideKind.SNOOP, leg.name)
        snoop.peer, leg.peer = leg.channel_id, snoop.channel_id
        leg.bridge_id = f"{leg.channel_id}-bridge"
        whisper = leg.name == ListenMode.WHISPER
        return [
            CreateListenBridge(leg.bridge_id),
            Snoop(operator_channel, snoop.channel_id, whisper),
        ]

    def _side_ended(self, leg: SideLeg, cause: int | None) -> list[Command]:
        if leg.kind is SideKind.PARTNER:
            return self._partner_gone(leg, cause)
        if leg.kind is SideKind.COLLEAGUE:
            return self._colleague_gone(leg, cause)
        was_gone, leg.gone = leg.gone, True
        if leg.kind is SideKind.AGENCY:
            if was_gone:
                return []
            return self._agency_gone(HungUp(Party.AGENCY, str(cause or ""), agency=leg.name))
        if not leg.peer:
            return []
        peer = self.side[leg.peer]
        commands: list[Command] = []
        if not peer.gone:
            peer.gone = True
            commands.append(HangUpLeg(peer.channel_id))
        for owner in (leg, peer):
            if owner.bridge_id:
                commands.append(DestroyListenBridge(owner.bridge_id))
                owner.bridge_id = ""
        return commands

    def _operator_digit(self, event: OperatorDigit) -> list[Command]:
        digit = event.digit
        if self.state is not CallState.CONNECTED:
            return []
        if digit == "*":
            self.operator_keys = "*"
            return []
        keys, self.operator_keys = self.operator_keys + digit, ""
        if len(keys) == 2 and keys.startswith("*"):
            for agency in self.config.agencies:
                if agency.digit == keys[1]:
                    return self._agency_requested(AgencyRequested(agency.code))
        return []

    # -- desk call controls: hang up; a colleague conferenced in, who may take the call over

    def _caller_alone(self) -> bool:
        """No operator, agency or colleague left in the conversation with the caller."""
        colleague = self._colleague()
        return (
            not self.operator_present
            and not self.agencies
            and (colleague is None or not colleague.answered)
        )

    def _is_operator(self, operator_id: str) -> bool:
        return (
            self.state is CallState.CONNECTED
            and self.operator_present
            and self.operator_id == operator_id
        )

    def _colleague(self) -> SideLeg | None:
        """The colleague conferenced in (ringing or joined) and not gone; one at a time."""
        return next(
            (leg for leg in self.side.values() if leg.kind is SideKind.COLLEAGUE and not leg.gone),
            None,
        )

    def _joined_colleague(self, operator_id: str) -> SideLeg | None:
        """The leg of this operator, conferenced in beside the call's operator, if they are."""
        leg = self._colleague()
        if self.state is CallState.CONNECTED and leg and leg.answered and operator_id:
            return leg if leg.operator_id == operator_id else None
        return None

    def _colleague_hangs_up(self, leg: SideLeg) -> list[Command]:
        """A colleague's hang up (or leave) on the desk ends their own leg only: the caller
        stays with the call's operator. Their leg's end releases them (`_colleague_gone`)."""
        log.info("call.colleague_leaves", call_id=self.call_id, operator=leg.operator_id)
        return [HangUpLeg(leg.channel_id)]

    def _hang_up_requested(self, event: HangUpRequested) -> list[Command]:
        joined = self._joined_colleague(event.operator_id)
        if joined is not None:
            return self._colleague_hangs_up(joined)
        if not self._is_operator(event.operator_id):
            log.info("call.hangup_refused", call_id=self.call_id, operator=event.operator_id)
            return []
        # The caller is hung up first, then the operator's own phone: recorded as ended by the
        # operator, as if they had hung up their phone.
        return self._end(Party.OPERATOR, "", hang_up_operator=True)

    def _hold_requested(self, event: HoldRequested) -> list[Command]:
        if not self._is_operator(event.operator_id) or event.hold == self.held:
            return []
        self.held = event.hold
        if event.hold:
            return [StartMoh(), Facts.flag_set(ON_HOLD)]
        return [StopMoh()]

    def _take_back(self) -> list[Command]:
        """Off hold: whoever the caller is left with must hear them."""
        if not self.held:
            return []
        self.held = False
        return [StopMoh()]

    def _colleague_requested(self, event: ColleagueRequested) -> list[Command]:
        if (
            not self._is_operator(event.operator_id)
            or event.name == self.operator_id
            or self._colleague() is not None
        ):
            log.info("call.colleague_refused", call_id=self.call_id, colleague=event.name)
            return []
        leg = self._side_leg(SideKind.COLLEAGUE, event.name)
        leg.operator_id = event.name if event.colleague_operator else ""
        return [DialColleague(event.dial, leg.channel_id, event.name, leg.operator_id)]

    def _colleague_claimed(self, event: ColleagueClaimed) -> list[Command]:
        leg = self.side.get(event.channel_id)
        if leg is None or leg.answered:
            return []
        if not event.won:
            # The ACD would not put them on this call (they took another one meanwhile).
            leg.gone = True
            return [HangUpLeg(leg.channel_id)]
        if leg.gone or self.state is not CallState.CONNECTED:
            leg.gone = True
            return [HangUpLeg(leg.channel_id), ReleaseOperator(leg.operator_id)]
        return self._colleague_joined(leg)

    def _colleague_joined(self, leg: SideLeg) -> list[Command]:
        leg.answered = True
        # An operator's connection counts for them (transfers included, in the reports); a
        # supervisor joining is the barge flag the listen feature sets too.
        joined = (
            Facts.call_connected(leg.operator_id)
            if leg.operator_id
            else Facts.flag_set(f"supervisor_{ListenMode.BARGE.value}")
        )
        return [BridgeColleague(leg.channel_id), joined]

    def _leave_requested(self, event: LeaveRequested) -> list[Command]:
        joined = self._joined_colleague(event.operator_id)
        if joined is not None:
            return self._colleague_hangs_up(joined)
        colleague = self._colleague()
        if not self._is_operator(event.operator_id) or colleague is None or not colleague.answered:
            log.info("call.leave_refused", call_id=self.call_id, operator=event.operator_id)
            return []
        commands: list[Command] = []
        for leg in self.legs.values():
            if leg.state is LegState.CONNECTED:
                leg.state = LegState.GONE
                commands.append(HangUpLeg(leg.channel_id))
        return commands + self._hand_over_to(colleague)

    def _hand_over_to(self, colleague: SideLeg) -> list[Command]:
        """The call's operator left the colleague who answered with the caller: the call is
        theirs now. An operator colleague becomes the call's operator (their desk shows it,
        they may hang up, add agencies...); a supervisor stays in the conversation until
        they hang up."""
        assert self.operator_id is not None
        previous = self.operator_id
        commands: list[Command] = [
            Facts.call_transferred(to=colleague.name, operator_id=previous),
            *self._take_back(),  # held, the caller is the colleague's to talk to now
        ]
        if not colleague.operator_id:
            self.operator_present = False
            return [*commands, FinishCall(previous)]
        del self.side[colleague.channel_id]
        self.legs[colleague.channel_id] = OperatorLeg(
            colleague.operator_id, colleague.channel_id, LegState.CONNECTED
        )
        self.operator_id = colleague.operator_id
        self.connected_at = None  # a colleague's leg is no pocket answer
        log.info("call.handed_over", call_id=self.call_id, operator=self.operator_id)
        return [*commands, ReleaseOperator(previous)]

    def _colleague_gone(self, leg: SideLeg, cause: int | None) -> list[Command]:
        was_gone, leg.gone = leg.gone, True
        if was_gone or not leg.answered or self.state is not CallState.CONNECTED:
            return []  # a ring that failed: the desk shows it
        if self.operator_present or self.agencies:
            # The colleague left again; the conversation goes on without them.
            return [ReleaseOperator(leg.operator_id)] if leg.operator_id else []
        # A supervisor who had taken the call over hung up: the caller would be alone.
        return self._end(Party.OPERATOR, str(cause or ""))

    # -- overflow: the ACD sent the call out of its category

    def _overflowed(self, event: Overflowed) -> list[Command]:
        if self.state not in WAITING or self.partner is not None:
            return []  # gone, handed over, or already with a partner: the ACD holds it no more
        self.flags.add("overflow")  # for the live board; the app records the flag itself
        target = event.target
        if target.kind is TargetKind.CATEGORY:
            # Still queued, with its arrival: only its place on the channel changes.
            self.category = target.value
            flags = frozenset(self.flags)
            return [SaveQueueState(self.category, self.priority or 0, flags)]
        if target.kind is not TargetKind.NUMBER:
            log.warning("call.overflow_unsupported", call_id=self.call_id, target=str(target))
            return self._back_in_line(str(target))
        leg = self._side_leg(SideKind.PARTNER, target.value)
        self.partner = PartnerAttempt(target, event.rule, leg.channel_id)
        commands = self.partner.ring()
        if self.menu_open:
            # Queued before choosing: the partner takes the call as it is, the menu is over (a
            # choice now would queue the call again while the partner rings).
            self.menu_open = False
            self._armed.clear()
            commands.append(StopTalkDetect())
        return commands

    def _partner_answered(self, leg: SideLeg) -> list[Command]:
        partner = self.partner
        if (
            leg.gone
            or partner is None
            or partner.channel_id != leg.channel_id
            or self.state is not CallState.QUEUED
        ):
            leg.gone = True
            return [HangUpLeg(leg.channel_id)]
        self.state = CallState.CONNECTED
        commands: list[Command] = [*self._stop_playing()]
        if self.moh:
            self.moh = False
            commands.append(StopMoh())
        return commands + partner.on_answer()

    def _partner_gone(self, leg: SideLeg, cause: int | None) -> list[Command]:
        was_gone, leg.gone = leg.gone, True
        partner = self.partner
        if was_gone or partner is None or partner.channel_id != leg.channel_id:
            return []
        if partner.answered:
            # The partner centre ended the conversation: the call is over for the caller too.
            if self.state is not CallState.CONNECTED:
                return []
            self.state = CallState.ENDED
            ended = Facts.call_ended(HangupBy.AGENCY, cause=str(cause or "") or None)
            return [ended, Disconnect(), *self._destroy_bridge()]
        self.partner = None
        return [*partner.on_failure(str(cause or "")), *self._back_in_line(str(partner.target))]

    def _back_in_line(self, target: str) -> list[Command]:
        """The caller goes back into our queue at their place (their arrival is kept), and
        the ACD does not send them to that target again."""
        self.overflow_tried.add(target)
        if self.state not in WAITING or self.category is None:
            return []
        tried = frozenset(self.overflow_tried)
        return [Enqueue(self.category, self.priority or 0, frozenset(self.flags), tried)]

    def _partner_call_over(self, event: HungUp) -> list[Command]:
        self.state = CallState.ENDED
        system = event.party is Party.SYSTEM
        by = HangupBy.SYSTEM if system else HangupBy.CALLER
        reason = event.cause if system else "normal"
        ended = Facts.call_ended(by, reason=reason, cause=event.cause or None)
        return [ended, *self._destroy_bridge()]

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


Handler = Callable[[CallMachine, Any], list[Command]]

_HANDLERS: dict[type, Handler] = {
    Started: CallMachine._started,
    Adopted: CallMachine._adopted,
    HandOver: CallMachine._hand_over,
    DigitPressed: CallMachine._digit,
    PromptFinished: CallMachine._prompt_finished,
    TimerFired: CallMachine._timer,
    CallerTalking: CallMachine._talking,
    Queued: CallMachine._queued,
    RingRequested: CallMachine._ring_requested,
    RingCancelled: CallMachine._ring_cancelled,
    LegAnswered: CallMachine._leg_answered,
    OfferClaimed: CallMachine._offer_claimed,
    LegDialStatus: CallMachine._dial_status,
    LegHungUp: CallMachine._leg_hung_up,
    CommandFailed: CallMachine._command_failed,
    OperatorRinging: CallMachine._ringing,
    OfferWithdrawn: CallMachine._withdrawn,
    OperatorConnected: CallMachine._connected,
    PositionKnown: CallMachine._announce_position,
    HungUp: CallMachine._hung_up,
    AgencyRequested: CallMachine._agency_requested,
    AgencyAnswered: CallMachine._agency_answered,
    ListenRequested: CallMachine._listen_requested,
    OperatorDigit: CallMachine._operator_digit,
    HangUpRequested: CallMachine._hang_up_requested,
    ColleagueRequested: CallMachine._colleague_requested,
    ColleagueClaimed: CallMachine._colleague_claimed,
    LeaveRequested: CallMachine._leave_requested,
    HoldRequested: CallMachine._hold_requested,
    HoldDue: CallMachine._hold,
    Overflowed: CallMachine._overflowed,
}
