"""The actor of one call: one task and one bounded inbox per call (design.md §2.2).

It turns the ARI events of its channels into events of the pure `CallMachine`, and carries out
the machine's commands over REST, in order. The caller's channel id is the call id; the actor also
owns the call's bridge, its playbacks and the channels that ring operators for it.
"""

from __future__ import annotations

import asyncio
import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from ari_app.ari.errors import (
    AriAllocationFailed,
    AriError,
    AriNotFound,
    AriNotInStasis,
    AriUnprocessable,
)
from ari_app.ari.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    ChannelTalkingStarted,
    Dial,
    PlaybackFinished,
    ResourceKind,
    StasisEnd,
    StasisStart,
)
from ari_app.ari.models import Channel
from ari_app.ari.rest import SnoopDirection
from ari_app.call import (
    Adopted,
    AgencyAnswered,
    AgencyRequested,
    Answer,
    BridgeAgency,
    BridgeOperator,
    CallerTalking,
    CallEvent,
    CallMachine,
    CallState,
    ChangePriority,
    Command,
    ContinueToFallback,
    CreateBridge,
    DeferHold,
    DestroyBridge,
    DialAgency,
    DigitPressed,
    DropLeg,
    EnableTalkDetect,
    Enqueue,
    FinishCall,
    HandOver,
    HangUp,
    HoldDue,
    HungUp,
    LeaveQueue,
    OfferWithdrawn,
    OperatorConnected,
    OperatorDigit,
    OperatorRinging,
    Party,
    Play,
    PositionKnown,
    PromptFinished,
    Record,
    Requeue,
    ResumeConversation,
    SaveQueueState,
    Started,
    StartMoh,
    StartTimer,
    StopMoh,
    StopPlayback,
    StopTalkDetect,
    TimerFired,
)
from ari_app.ivr import Language
from ari_app.router import Inbox
from queues import events as acd
from queues.states import CancelReason, OfferFailure

if TYPE_CHECKING:
    from ari_app.app import SiagaApp

log = structlog.get_logger(__name__)

# Q.850 causes of an operator leg that ended before it was answered.
_BUSY_CAUSES = {17}
_REJECTED_CAUSES = {21}
_NO_ANSWER_CAUSES = {18, 19}
_UNREACHABLE_CAUSES = {1, 2, 3, 20, 27, 29, 34, 38, 41, 42, 58}
_DISPLAY_UNSAFE = re.compile(r"[^0-9A-Za-z+*#]")


class NotConnectedError(Exception):
    """Listening in needs a connected call."""


class OperatorLeg(enum.Enum):
    RINGING = "ringing"
    ANSWERED = "answered"
    CONNECTED = "connected"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class RingOperator:
    """The ACD offered the call to this operator: ring the operator's phone."""

    operator_id: str


@dataclass(frozen=True, slots=True)
class CancelRing:
    operator_id: str
    reason: CancelReason


class ListenMode(enum.StrEnum):
    LISTEN = "listen"  # the supervisor hears caller and operator, nobody hears the supervisor
    WHISPER = "whisper"  # ... and the operator (only) hears the supervisor
    BARGE = "barge"  # the supervisor joins the conversation


@dataclass(frozen=True, slots=True)
class Listen:
    """Ring a supervisor's phone (`dial`) and let them listen, whisper or barge in."""

    dial: str
    mode: ListenMode


@dataclass(frozen=True, slots=True)
class AddAgency:
    agency: str


class SideKind(enum.StrEnum):
    AGENCY = "agency"
    SUPERVISOR = "supervisor"
    SNOOP = "snoop"


@dataclass
class SideLeg:
    """A channel of the call that is not caller or operator: an agency, a supervisor, a snoop."""

    kind: SideKind
    name: str  # agency code, or the listen mode
    channel_id: str
    peer: str = ""  # supervisor <-> its snoop channel
    bridge_id: str = ""  # a listen/whisper supervisor's own bridge
    gone: bool = False


@dataclass(frozen=True, slots=True)
class Leg:
    operator_id: str
    channel_id: str


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


def screened_start(channel: Channel) -> Started:
    """The call's start, with what screening (AGI `screen`, before Stasis) found out."""
    variables = channel.channelvars
    flags = {f.strip() for f in variables.get("SIAGA_FLAGS", "").split(",") if f.strip()}
    if variables.get("SIAGA_REPEAT", "0") not in ("", "0"):
        flags.add("repeat")
    lang = variables.get("SIAGA_LANG", "")
    return Started(
        caller_number=channel.caller.number,
        caller_name=channel.caller.name,
        flags=frozenset(flags),
        language=Language(lang) if lang in ("id", "en") else None,
    )


# Commands on the caller's own channel: a 404/409 answer to one means the caller is gone.
ON_THE_CALLERS_CHANNEL = (
    Answer,
    CreateBridge,
    EnableTalkDetect,
    Play,
    SaveQueueState,
    StopTalkDetect,
)

QUEUE_VARIABLE = "SIAGA_QUEUE"
FALLBACK_CONTEXT = "siaga-fallback"


def encode_queue_state(category: str, priority: int, flags: frozenset[str]) -> str:
    return f"{category};{priority};{','.join(sorted(flags))}"


def decode_queue_state(value: str) -> tuple[str | None, int | None, frozenset[str]]:
    """Inverse of encode_queue_state; anything unreadable means "not queued yet"."""
    parts = value.split(";")
    if len(parts) != 3 or not parts[0]:
        return None, None, frozenset()
    try:
        priority = int(parts[1])
    except ValueError:
        return parts[0], None, frozenset()
    return parts[0], priority, frozenset(f for f in parts[2].split(",") if f)


def display_number(number: str) -> str:
    """A caller number as the operator's phone shows it: hostile caller ids stay harmless."""
    return _DISPLAY_UNSAFE.sub("", number)[:32] or "unknown"


class CallActor:
    def __init__(self, app: SiagaApp, channel: Channel, arrival: float) -> None:
        self.app = app
        self.call_id = channel.id
        self.channel = channel
        self.arrival = arrival  # monotonic, at Asterisk's arrival of the call
        self.started = app.clock()  # when the app got the call
        self.machine = CallMachine(self.call_id, app.config)
        self.inbox = Inbox()
        self.bridge_id = f"{self.call_id}-bridge"
        self.legs: dict[str, Leg] = {}  # operator leg channel id -> leg
        self.leg_state: dict[str, OperatorLeg] = {}
        self.leg_dialstatus: dict[str, str] = {}
        self.side: dict[str, SideLeg] = {}
        self.ring_count = 0
        self.timers: list[asyncio.TimerHandle] = []
        self.log = log.bind(call_id=self.call_id)
        self.task: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        return (
            self.machine.state.final
            and not self._live_legs()
            and all(leg.gone for leg in self.side.values())
        )

    async def deliver(self, event: object) -> None:
        await self.inbox.put(event)

    def post(self, event: object) -> None:
        """From synchronous code (ACD decisions, timers): never lose the event."""
        if not self.inbox.put_nowait(event):
            asyncio.get_running_loop().create_task(self.inbox.put(event))

    def start(self) -> None:
        self.app.router.register(ResourceKind.CHANNEL, self.call_id, self)
        self.app.router.register(ResourceKind.BRIDGE, self.bridge_id, self)
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"call-{self.call_id}")

    async def run(self) -> None:
        try:
            while not self.done:
                item = await self.inbox.get()
                try:
                    await self._handle(item)
                except Exception:
                    # One bad event must not leave a 112 caller stranded: log it and go on.
                    self.log.exception("call.event_failed", item=repr(item)[:300])
        finally:
            for handle in self.timers:
                handle.cancel()
            self.app.call_finished(self)

    # -- translating ARI events

    async def _handle(self, item: object) -> None:
        match item:
            case StasisStart(channel=channel) if channel.id == self.call_id:
                await self._feed(screened_start(channel))
            case StasisStart(channel=channel) if channel.id in self.legs:
                await self._leg_answered(self.legs[channel.id])
            case ChannelDtmfReceived(channel=channel, digit=digit) if channel.id == self.call_id:
                await self._feed(DigitPressed(digit, self.app.clock()))
            case ChannelDtmfReceived(channel=channel, digit=digit) if (
                self.leg_state.get(channel.id) is OperatorLeg.CONNECTED
            ):
                await self._feed(OperatorDigit(digit))
            case StasisStart(channel=channel) if channel.id in self.side:
                await self._side_answered(self.side[channel.id])
            case (
                ChannelHangupRequest(channel=channel)
                | StasisEnd(channel=channel)
                | ChannelDestroyed(channel=channel)
            ) if channel.id in self.side:
                await self._side_ended(self.side[channel.id], getattr(item, "cause", None))
            case PlaybackFinished(playback=playback):
                self.app.router.unregister(ResourceKind.PLAYBACK, playback.id)
                await self._feed(PromptFinished(playback.id))
            case ChannelTalkingStarted(channel=channel) if channel.id == self.call_id:
                await self._feed(CallerTalking())
            case (
                ChannelHangupRequest(channel=channel)
                | StasisEnd(channel=channel)
                | ChannelDestroyed(channel=channel)
            ) if channel.id == self.call_id:
                cause = getattr(item, "cause", None)
                await self._feed(HungUp(Party.CALLER, str(cause or "")))
            case Dial(peer=peer, dialstatus=status) if peer.id in self.legs and status:
                self.leg_dialstatus[peer.id] = status
            case ChannelDestroyed(channel=channel, cause=cause) if channel.id in self.legs:
                await self._leg_ended(self.legs[channel.id], cause)
            case ChannelHangupRequest(channel=channel) | StasisEnd(channel=channel) if (
                channel.id in self.legs and self.leg_state.get(channel.id) is OperatorLeg.CONNECTED
            ):
                # A ringing leg ends for good with ChannelDestroyed, which carries the cause
                # (busy, rejected...); a connected operator hanging up matters at once.
                await self._leg_ended(self.legs[channel.id], None)
            case RingOperator(operator_id=operator_id):
                await self._ring(operator_id)
            case CancelRing(operator_id=operator_id, reason=reason):
                await self._cancel_ring(operator_id, reason)
            case TimerFired() | PositionKnown() | Adopted() | HungUp() | HandOver() | HoldDue():
                await self._feed(item)
            case AddAgency(agency=agency):
                await self._feed(AgencyRequested(agency))
            case Listen():
                await self._listen(item)
            case _:
                pass  # events of our resources that change nothing (e.g. ChannelStateChange)

    async def _feed(self, event: CallEvent) -> None:
        pending: list[CallEvent] = [event]
        while pending:
            commands = self.machine.handle(pending.pop(0))
            for command in commands:
                try:
                    await self._execute(command)
                except (AriNotFound, AriNotInStasis, AriUnprocessable) as exc:
                    if isinstance(command, BridgeOperator):
                        # The operator's leg vanished before it joined: not a conversation
                        # (nothing recorded as connected); the caller goes back in line.
                        self.log.info("call.operator_gone_before_bridge", status=exc.status)
                        pending.append(HungUp(Party.OPERATOR, "gone", at=self.app.clock()))
                        break
                    if not isinstance(command, ON_THE_CALLERS_CHANNEL):
                        # A recording, music or an agency leg failing is no reason to drop
                        # a 112 caller.
                        self.log.warning(
                            "call.command_failed", command=type(command).__name__, error=str(exc)
                        )
                        continue
                    # The caller hung up under us (design §2.4): a normal event, not a crash.
                    self.log.info(
                        "call.channel_gone", command=type(command).__name__, status=exc.status
                    )
                    pending.append(HungUp(Party.CALLER, "gone"))
                    break
                except AriError as exc:
                    self.log.warning(
                        "call.command_failed", command=type(command).__name__, error=str(exc)
                    )

    # -- operator legs

    def _live_legs(self) -> list[Leg]:
        return [
            leg for cid, leg in self.legs.items() if self.leg_state.get(cid) is not OperatorLeg.GONE
        ]

    def _leg_of(self, operator_id: str) -> tuple[str, Leg] | None:
        for cid, leg in self.legs.items():
            if leg.operator_id == operator_id and self.leg_state[cid] is OperatorLeg.RINGING:
                return cid, leg
        return None

    async def _ring(self, operator_id: str) -> None:
        if self.machine.state not in (CallState.QUEUED, CallState.OFFERED):
            self.app.acd(acd.OfferFailed(self.call_id, operator_id, OfferFailure.UNREACHABLE))
            return
        operator = self.app.operators[operator_id]
        self.ring_count += 1
        channel_id = f"{self.call_id}-op{self.ring_count}"
        leg = Leg(operator_id, channel_id)
        # Ids before requests (design §2.3): the leg's events may beat the HTTP response.
        self.legs[channel_id] = leg
        self.leg_state[channel_id] = OperatorLeg.RINGING
        self.app.router.register(ResourceKind.CHANNEL, channel_id, self)
        await self._feed(OperatorRinging(operator_id))
        self.app.metrics.rung(operator_id, self.app.clock())
        category = (self.machine.category or "call").upper()
        number = display_number(self.channel.caller.number)
        try:
            await self.app.rest.originate(
                operator.dial_string,
                channel_id=channel_id,
                app=self.app.config.asterisk.app,
                app_args=f"operator,{self.call_id},{operator_id}",
                caller_id=f'"{category} {number}" <{number}>',
                timeout=int(self.app.config.acd.ring_timeout_seconds) + 5,
                variables={"SIAGA_CALL_ID": self.call_id},
                # The caller's codecs, not "any audio": offered everything, a Local or
                # multi-codec phone picks another format (slin192 for Local) and every frame
                # between the two is translated. It also shares the caller's linkedid.
                originator=self.call_id,
            )
        except AriError as exc:
            # No registered contact ("Allocation failed") or any refusal: the phone is not
            # reachable now; the ACD retries that operator after a short delay.
            reason = OfferFailure.UNREACHABLE
            self.log.info(
                "call.ring_failed",
                operator=operator_id,
                error=str(exc),
                allocation_failed=isinstance(exc, AriAllocationFailed),
            )
            self.leg_state[channel_id] = OperatorLeg.GONE
            self.app.router.unregister(ResourceKind.CHANNEL, channel_id)
            await self._feed(OfferWithdrawn(operator_id, reason.value))
            self.app.acd(acd.OfferFailed(self.call_id, operator_id, reason))

    async def _cancel_ring(self, operator_id: str, reason: CancelReason) -> None:
        found = self._leg_of(operator_id)
        if found is None:
            return
        channel_id, _ = found
        self.leg_state[channel_id] = OperatorLeg.GONE
        await self.app.rest.hangup(channel_id)
        await self._feed(OfferWithdrawn(operator_id, reason.value))

    async def _leg_answered(self, leg: Leg) -> None:
        if self.leg_state.get(leg.channel_id) is not OperatorLeg.RINGING:
            await self.app.rest.hangup(leg.channel_id)  # a leg we gave up on answered late
            return
        accepted = self.app.acd_answered(self.call_id, leg.operator_id)
        if not accepted or self.machine.state not in (CallState.QUEUED, CallState.OFFERED):
            self.leg_state[leg.channel_id] = OperatorLeg.GONE
            await self.app.rest.hangup(leg.channel_id)
            return
        self.leg_state[leg.channel_id] = OperatorLeg.CONNECTED
        await self._feed(OperatorConnected(leg.operator_id, leg.channel_id, self.app.clock()))

    async def _leg_ended(self, leg: Leg, cause: int | None) -> None:
        state = self.leg_state.get(leg.channel_id)
        if state is OperatorLeg.GONE or state is None:
            if state is OperatorLeg.GONE:
                self.app.router.unregister(ResourceKind.CHANNEL, leg.channel_id)
            return
        self.leg_state[leg.channel_id] = OperatorLeg.GONE
        self.app.router.unregister(ResourceKind.CHANNEL, leg.channel_id)
        if state is OperatorLeg.RINGING:
            dialstatus = self.leg_dialstatus.get(leg.channel_id, "")
            failure = offer_failure(cause, dialstatus)
            self.log.info(
                "call.offer_failed",
                operator=leg.operator_id,
                cause=cause,
                dialstatus=dialstatus,
                failure=failure.value,
            )
            await self._feed(OfferWithdrawn(leg.operator_id, failure.value))
            self.app.acd(acd.OfferFailed(self.call_id, leg.operator_id, failure))
        elif state is OperatorLeg.CONNECTED:
            await self._feed(HungUp(Party.OPERATOR, str(cause or ""), at=self.app.clock()))

    # -- commands

    async def _execute(self, command: Command) -> None:
        rest = self.app.rest
        match command:
            case Record():
                self.app.record(
                    command.kind,
                    call_id=self.call_id,
                    operator_id=command.operator_id,
                    data=dict(command.data),
                    at=self._arrived_at() if command.kind == "call_arrived" else None,
                )
            case Answer():
                await rest.answer(self.call_id)
                self.app.metrics.answered(self.started, self.app.clock())
            case CreateBridge():
                await rest.create_bridge(self.bridge_id, name=f"siaga-{self.call_id}"[:64])
                await rest.add_channel(self.bridge_id, self.call_id)
            case EnableTalkDetect():
                await rest.set_variable(self.call_id, "TALK_DETECT(set)", "")
            case Play(playback_id=playback_id, prompts=prompts, language=language):
                self.app.router.register(ResourceKind.PLAYBACK, playback_id, self)
                media = [self.app.prompt_uri(name, language.value) for name in prompts]
                await rest.play(self.call_id, media, playback_id=playback_id)
            case StopPlayback(playback_id=playback_id):
                await rest.stop_playback(playback_id)
            # Music on the caller's channel, not the bridge's: bridge music is an extra
            # "Announcer" channel with a thread of its own for every waiting caller.
            case StartMoh():
                await rest.start_moh(self.call_id)
            case StopMoh():
                await rest.stop_moh(self.call_id)
            case StartTimer(timer=timer, seconds=seconds, generation=generation):
                loop = asyncio.get_running_loop()
                self.timers = [h for h in self.timers if not h.cancelled()]
                self.timers.append(
                    loop.call_later(seconds, self.post, TimerFired(timer, generation))
                )
            case Requeue() if self.app.draining:
                # Shutting down: no operator of ours will take it; the fallback will.
                self.app.acd(acd.CallEnded(self.call_id))
                self.post(HandOver())
            case Requeue():
                self.app.acd(acd.CallEnded(self.call_id))
                machine = self.machine
                self.app.acd(
                    acd.CallQueued(
                        self.call_id,
                        machine.category or "",
                        self.arrival,
                        machine.priority,
                        frozenset(machine.flags),
                    )
                )
            case ResumeConversation():
                self.app.acd(
                    acd.CallAdopted(
                        self.call_id,
                        command.category,
                        self.arrival,
                        command.operator_id,
                        command.priority,
                        command.flags,
                    )
                )
            case Enqueue(category=category, priority=priority, flags=flags):
                self.app.acd(acd.CallQueued(self.call_id, category, self.arrival, priority, flags))
            case SaveQueueState(category=category, priority=priority, flags=flags):
                await rest.set_variable(
                    self.call_id, QUEUE_VARIABLE, encode_queue_state(category, priority, flags)
                )
            case StopTalkDetect():
                await rest.set_variable(self.call_id, "TALK_DETECT(remove)", "")
            case DeferHold():
                # Behind the ACD's offer, if it made one while this call was being queued.
                self.post(HoldDue())
            case ChangePriority(priority=priority):
                await rest.set_variable(
                    self.call_id,
                    QUEUE_VARIABLE,
                    encode_queue_state(
                        self.machine.category or "", priority, frozenset(self.machine.flags)
                    ),
                )
                flags = frozenset(self.machine.flags)  # e.g. cannot_speak, for the live board
                self.app.acd(acd.CallPriorityChanged(self.call_id, priority, flags))
            case BridgeOperator(channel_id=channel_id):
                await rest.add_channel(self.bridge_id, channel_id)
            case LeaveQueue():
                self.app.acd(acd.CallHungUp(self.call_id))
                for leg in self._live_legs():
                    self.leg_state[leg.channel_id] = OperatorLeg.GONE
                    await rest.hangup(leg.channel_id)
            case FinishCall():
                self.app.acd(acd.CallEnded(self.call_id))
            case HangUp(party=Party.CALLER):
                await rest.hangup(self.call_id)
            case HangUp(party=Party.OPERATOR):
                for leg in self._live_legs():
                    self.leg_state[leg.channel_id] = OperatorLeg.GONE
                    await rest.hangup(leg.channel_id)
            case HangUp(party=Party.AGENCY):
                await self._hang_up_side(SideKind.AGENCY)
            case HangUp():
                pass
            case DestroyBridge():
                await self._hang_up_side(SideKind.SUPERVISOR, SideKind.SNOOP)
                await rest.destroy_bridge(self.bridge_id)
            case ContinueToFallback():
                await rest.continue_in_dialplan(
                    self.call_id, context=FALLBACK_CONTEXT, extension="s", priority=1
                )
            case DialAgency(agency=agency):
                await self._dial_agency(agency)
            case BridgeAgency(channel_id=channel_id):
                await rest.add_channel(self.bridge_id, channel_id)
            case DropLeg(channel_id=channel_id):
                if channel_id in self.side:
                    self.side[channel_id].gone = True
                await rest.hangup(channel_id)

    # -- agencies and supervisors

    def _side_leg(self, kind: SideKind, name: str) -> SideLeg:
        channel_id = f"{self.call_id}-{kind.value[:3]}{len(self.side) + 1}"
        leg = SideLeg(kind, name, channel_id)
        # Ids before requests (design §2.3).
        self.side[channel_id] = leg
        self.app.router.register(ResourceKind.CHANNEL, channel_id, self)
        return leg

    async def _dial_agency(self, code: str) -> None:
        agency = next(a for a in self.app.config.agencies if a.code == code)
        leg = self._side_leg(SideKind.AGENCY, code)
        number = display_number(self.channel.caller.number)
        try:
            await self.app.rest.originate(
                agency.dial,
                channel_id=leg.channel_id,
                app=self.app.config.asterisk.app,
                app_args=f"agency,{self.call_id},{code}",
                caller_id=f'"112 {number}" <{number}>',
                timeout=60,
                originator=self.call_id,
            )
        except AriError as exc:
            self.log.warning("call.agency_unreachable", agency=code, error=str(exc))
            leg.gone = True
            await self._feed(HungUp(Party.AGENCY, "unreachable", agency=code))

    async def _listen(self, request: Listen) -> None:
        if self.machine.state is not CallState.CONNECTED:
            raise NotConnectedError(self.call_id)
        leg = self._side_leg(SideKind.SUPERVISOR, request.mode.value)
        await self.app.rest.originate(
            request.dial,
            channel_id=leg.channel_id,
            app=self.app.config.asterisk.app,
            app_args=f"supervisor,{self.call_id},{request.mode.value}",
            caller_id=f'"{request.mode.value.upper()} 112" <112>',
            timeout=30,
        )

    async def _side_answered(self, leg: SideLeg) -> None:
        rest = self.app.rest
        if leg.gone or self.machine.state is not CallState.CONNECTED:
            leg.gone = True
            await rest.hangup(leg.channel_id)
            return
        if leg.kind is SideKind.AGENCY:
            await self._feed(AgencyAnswered(leg.name, leg.channel_id))
        elif leg.kind is SideKind.SUPERVISOR and leg.name == ListenMode.BARGE:
            await rest.add_channel(self.bridge_id, leg.channel_id)
        elif leg.kind is SideKind.SUPERVISOR:
            # Spy on the operator's leg: its snoop hears both sides of the conversation, and
            # in whisper mode what the supervisor says goes out to the operator alone.
            operator_leg = next(
                cid for cid, state in self.leg_state.items() if state is OperatorLeg.CONNECTED
            )
            snoop = self._side_leg(SideKind.SNOOP, leg.name)
            snoop.peer, leg.peer = leg.channel_id, snoop.channel_id
            leg.bridge_id = f"{leg.channel_id}-bridge"
            await rest.create_bridge(leg.bridge_id, name=f"listen-{self.call_id}"[:64])
            await rest.snoop(
                operator_leg,
                app=self.app.config.asterisk.app,
                app_args=f"snoop,{self.call_id}",
                snoop_id=snoop.channel_id,
                spy=SnoopDirection.BOTH,
                whisper=SnoopDirection.OUT
                if leg.name == ListenMode.WHISPER
                else SnoopDirection.NONE,
            )
        elif leg.kind is SideKind.SNOOP:
            supervisor = self.side[leg.peer]
            await rest.add_channel(supervisor.bridge_id, [supervisor.channel_id, leg.channel_id])
            self.app.record(
                "flag_set", call_id=self.call_id, data={"flag": f"supervisor_{supervisor.name}"}
            )

    async def _side_ended(self, leg: SideLeg, cause: int | None) -> None:
        was_gone, leg.gone = leg.gone, True
        if leg.kind is SideKind.AGENCY and not was_gone:
            await self._feed(HungUp(Party.AGENCY, str(cause or ""), agency=leg.name))
        elif leg.kind in (SideKind.SUPERVISOR, SideKind.SNOOP) and leg.peer:
            peer = self.side[leg.peer]
            if not peer.gone:
                peer.gone = True
                await self.app.rest.hangup(peer.channel_id)
            bridge = leg.bridge_id or peer.bridge_id
            if bridge:
                await self.app.rest.destroy_bridge(bridge)

    async def _hang_up_side(self, *kinds: SideKind) -> None:
        for leg in self.side.values():
            if leg.kind in kinds and not leg.gone:
                leg.gone = True
                await self.app.rest.hangup(leg.channel_id)

    def adopt_operator_leg(self, operator_id: str, channel_id: str) -> None:
        """A conversation found in Asterisk after a restart: its operator leg is ours again."""
        self.legs[channel_id] = Leg(operator_id, channel_id)
        self.leg_state[channel_id] = OperatorLeg.CONNECTED
        self.app.router.register(ResourceKind.CHANNEL, channel_id, self)

    def _arrived_at(self) -> datetime:
        created = self.channel.creationtime
        return created if created is not None else datetime.now(UTC)
