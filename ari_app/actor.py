"""The actor of one call: one task and one bounded inbox per call (docs/architecture.md).

It only translates: ARI events of its channels into events of the pure `CallMachine`, and the
machine's commands into REST requests and ACD events, in order, through a table of small
executors. Every rule (which leg wins, what a failed request means...) is the machine's. The
caller's channel id is the call id; the machine names every other resource of the call, and
the actor registers each id with the router before the request that creates it (its events may
beat the HTTP response).
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from ari_app.ari.errors import AriError
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
from ari_app.call import commands as c
from ari_app.call.adoption import QUEUE_VARIABLE, encode_queue_state
from ari_app.call.events import (
    CallerTalking,
    CallEvent,
    CommandFailed,
    DigitPressed,
    HoldDue,
    HungUp,
    LegAnswered,
    LegDialStatus,
    LegHungUp,
    OfferClaimed,
    OperatorDigit,
    PromptFinished,
    Queued,
    Started,
    TimerFired,
)
from ari_app.call.failures import ends_the_batch
from ari_app.call.machine import CallMachine
from ari_app.call.states import Party
from ari_app.ivr import Language
from ari_app.metrics import Metrics
from ari_app.router import Inbox, Router
from db.events import EventKind, Fact
from queues import events as acd
from queues.decisions import Decision
from siaga.config import Config, OperatorConfig

log = structlog.get_logger(__name__)

FALLBACK_CONTEXT = "siaga-fallback"
_DISPLAY_UNSAFE = re.compile(r"[^0-9A-Za-z+*#]")


class CallRest(Protocol):
    """The REST requests a call makes (`AriRest` is one)."""

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app: str,
        app_args: str | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        variables: Mapping[str, str] | None = None,
        originator: str | None = None,
    ) -> object: ...
    async def answer(self, channel_id: str) -> None: ...
    async def hangup(self, channel_id: str) -> None: ...
    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
    ) -> None: ...
    async def start_moh(self, channel_id: str) -> None: ...
    async def stop_moh(self, channel_id: str) -> None: ...
    async def set_variable(self, channel_id: str, variable: str, value: str) -> None: ...
    async def play(
        self, channel_id: str, media: str | Sequence[str], *, playback_id: str
    ) -> object: ...
    async def stop_playback(self, playback_id: str) -> None: ...
    async def snoop(
        self,
        channel_id: str,
        *,
        app: str,
        snoop_id: str,
        spy: SnoopDirection = ...,
        whisper: SnoopDirection = ...,
        app_args: str | None = None,
    ) -> object: ...
    async def create_bridge(self, bridge_id: str, *, name: str | None = None) -> object: ...
    async def destroy_bridge(self, bridge_id: str) -> None: ...
    async def add_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None: ...


class CallShell(Protocol):
    """What a call's actor needs from the running app (`SiagaApp` is one)."""

    @property
    def config(self) -> Config: ...
    @property
    def operators(self) -> Mapping[str, OperatorConfig]: ...
    @property
    def router(self) -> Router: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def rest(self) -> CallRest: ...
    def clock(self) -> float: ...
    def to_acd(self, event: acd.Event) -> list[Decision]: ...
    def offer_answered(self, call_id: str, operator_id: str) -> bool: ...
    def queue_position(self, call_id: str) -> int | None: ...
    def record(self, fact: Fact, *, call_id: str | None, at: datetime | None = None) -> None: ...
    def prompt_uri(self, name: str, language: str) -> str: ...
    def call_finished(self, actor: CallActor) -> None: ...


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


def display_number(number: str) -> str:
    """A caller number as the operator's phone shows it: hostile caller ids stay harmless."""
    return _DISPLAY_UNSAFE.sub("", number)[:32] or "unknown"


class CallActor:
    def __init__(self, shell: CallShell, channel: Channel, arrival: float) -> None:
        self.shell = shell
        self.call_id = channel.id
        self.channel = channel
        self.arrival = arrival  # monotonic, at Asterisk's arrival of the call
        self.started = shell.clock()  # when the app got the call
        self.machine = CallMachine(self.call_id, shell.config)
        self.inbox = Inbox()
        self.bridge_id = f"{self.call_id}-bridge"
        self.timers: list[asyncio.TimerHandle] = []
        self.task: asyncio.Task[None] | None = None

    async def deliver(self, event: object) -> None:
        await self.inbox.put(event)

    def post(self, event: object) -> None:
        """From synchronous code (ACD decisions, timers): never lose the event."""
        if not self.inbox.put_nowait(event):
            asyncio.get_running_loop().create_task(self.inbox.put(event))

    def start(self) -> None:
        self.shell.router.register(ResourceKind.CHANNEL, self.call_id, self)
        self.shell.router.register(ResourceKind.BRIDGE, self.bridge_id, self)
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"call-{self.call_id}")

    async def run(self) -> None:
        try:
            while not self.machine.finished:
                item = await self.inbox.get()
                try:
                    event = item if isinstance(item, CallEvent) else self.translate(item)
                    if event is not None:
                        await self.feed(event)
                except Exception:
                    # One bad event must not leave a 112 caller stranded: log it and go on.
                    log.exception("call.event_failed", call_id=self.call_id, item=repr(item)[:300])
        finally:
            for handle in self.timers:
                handle.cancel()
            self.shell.call_finished(self)

    def translate(self, item: object) -> CallEvent | None:
        """An ARI event of one of the call's resources, as the machine's event (or None)."""
        now, machine, call_id = self.shell.clock(), self.machine, self.call_id
        match item:
            case StasisStart(channel=channel) if channel.id == call_id:
                return screened_start(channel)
            case StasisStart(channel=channel):
                return LegAnswered(channel.id, now)
            case ChannelDtmfReceived(channel=channel, digit=digit) if channel.id == call_id:
                return DigitPressed(digit, now)
            case ChannelDtmfReceived(channel=channel, digit=digit):
                return OperatorDigit(digit) if channel.id == machine.connected_leg() else None
            case ChannelTalkingStarted(channel=channel) if channel.id == call_id:
                return CallerTalking()
            case PlaybackFinished(playback=playback):
                self.shell.router.unregister(ResourceKind.PLAYBACK, playback.id)
                return PromptFinished(playback.id)
            case Dial(peer=peer, dialstatus=status) if status:
                return LegDialStatus(peer.id, status)
            case (
                ChannelHangupRequest(channel=channel)
                | StasisEnd(channel=channel)
                | ChannelDestroyed(channel=channel)
            ) if channel.id == call_id:
                return HungUp(Party.CALLER, str(getattr(item, "cause", None) or ""), at=now)
            case (
                ChannelHangupRequest(channel=channel)
                | StasisEnd(channel=channel)
                | ChannelDestroyed(channel=channel)
            ):
                destroyed = isinstance(item, ChannelDestroyed)
                if destroyed:
                    self.shell.router.unregister(ResourceKind.CHANNEL, channel.id)
                return LegHungUp(channel.id, getattr(item, "cause", None), destroyed, now)
        return None  # events of our resources that change nothing (e.g. ChannelStateChange)

    async def feed(self, event: CallEvent) -> None:
        """Feed the machine and carry its commands out, with what they report back."""
        pending: collections.deque[CallEvent] = collections.deque([event])
        while pending:
            for command in self.machine.handle(pending.popleft()):
                try:
                    reply = await _EXECUTORS[type(command)](self, command)
                except AriError as exc:
                    failed = CommandFailed(command, exc.status, self.shell.clock())
                    pending.append(failed)
                    if ends_the_batch(command, exc.status):
                        break
                    continue
                if reply is not None:
                    pending.append(reply)

    def arrived_at(self) -> datetime:
        created = self.channel.creationtime
        return created if created is not None else datetime.now(UTC)

    def register(self, kind: ResourceKind, resource_id: str) -> None:
        self.shell.router.register(kind, resource_id, self)

    async def originate(
        self, dial: str, channel_id: str, args: str, caller_id: str, timeout: int, **more: Any
    ) -> None:
        self.register(ResourceKind.CHANNEL, channel_id)
        await self.shell.rest.originate(
            dial,
            channel_id=channel_id,
            app=self.shell.config.asterisk.app,
            app_args=args,
            caller_id=caller_id,
            timeout=timeout,
            **more,
        )


# ---- executors: one small function per command ---------------------------------------------

Reply = CallEvent | None
Executor = Callable[[CallActor, Any], Awaitable[Reply]]
_EXECUTORS: dict[type, Executor] = {}


def _executes(*types: type) -> Callable[[Executor], Executor]:
    def register(executor: Executor) -> Executor:
        for command_type in types:
            _EXECUTORS[command_type] = executor
        return executor

    return register


@_executes(Fact)
async def _record(actor: CallActor, fact: Fact) -> Reply:
    at = actor.arrived_at() if fact.kind is EventKind.CALL_ARRIVED else None
    actor.shell.record(fact, call_id=actor.call_id, at=at)
    return None


@_executes(c.Answer)
async def _answer(actor: CallActor, _: c.Answer) -> Reply:
    await actor.shell.rest.answer(actor.call_id)
    actor.shell.metrics.answered(actor.started, actor.shell.clock())
    return None


@_executes(c.CreateBridge)
async def _create_bridge(actor: CallActor, _: c.CreateBridge) -> Reply:
    rest = actor.shell.rest
    await rest.create_bridge(actor.bridge_id, name=f"siaga-{actor.call_id}"[:64])
    await rest.add_channel(actor.bridge_id, actor.call_id)
    return None


@_executes(c.EnableTalkDetect, c.StopTalkDetect)
async def _talk_detect(actor: CallActor, command: c.EnableTalkDetect | c.StopTalkDetect) -> Reply:
    action = "set" if isinstance(command, c.EnableTalkDetect) else "remove"
    await actor.shell.rest.set_variable(actor.call_id, f"TALK_DETECT({action})", "")
    return None


@_executes(c.Play)
async def _play(actor: CallActor, command: c.Play) -> Reply:
    actor.register(ResourceKind.PLAYBACK, command.playback_id)
    language = command.language.value
    media = [actor.shell.prompt_uri(name, language) for name in command.prompts]
    await actor.shell.rest.play(actor.call_id, media, playback_id=command.playback_id)
    return None


@_executes(c.StopPlayback)
async def _stop_playback(actor: CallActor, command: c.StopPlayback) -> Reply:
    await actor.shell.rest.stop_playback(command.playback_id)
    return None


# Music on the caller's channel, not the bridge's: bridge music is an extra "Announcer"
# channel with a thread of its own for every waiting caller.
@_executes(c.StartMoh)
async def _start_moh(actor: CallActor, _: c.StartMoh) -> Reply:
    await actor.shell.rest.start_moh(actor.call_id)
    return None


@_executes(c.StopMoh)
async def _stop_moh(actor: CallActor, _: c.StopMoh) -> Reply:
    await actor.shell.rest.stop_moh(actor.call_id)
    return None


@_executes(c.StartTimer)
async def _start_timer(actor: CallActor, command: c.StartTimer) -> Reply:
    loop = asyncio.get_running_loop()
    fired = TimerFired(command.timer, command.generation)
    actor.timers = [h for h in actor.timers if not h.cancelled()]
    actor.timers.append(loop.call_later(command.seconds, actor.post, fired))
    return None


@_executes(c.DeferHold)
async def _defer_hold(actor: CallActor, _: c.DeferHold) -> Reply:
    actor.post(HoldDue())  # behind the ACD's offer, if it made one while the call was queued
    return None


@_executes(c.Enqueue)
async def _enqueue(actor: CallActor, command: c.Enqueue) -> Reply:
    shell = actor.shell
    queued = acd.CallQueued(
        actor.call_id, command.category, actor.arrival, command.priority, command.flags
    )
    shell.to_acd(queued)
    return Queued(shell.queue_position(actor.call_id), shell.clock())


@_executes(c.SaveQueueState)
async def _save_queue_state(actor: CallActor, command: c.SaveQueueState) -> Reply:
    value = encode_queue_state(command.category, command.priority, command.flags)
    await actor.shell.rest.set_variable(actor.call_id, QUEUE_VARIABLE, value)
    return None


@_executes(c.ChangePriority)
async def _change_priority(actor: CallActor, command: c.ChangePriority) -> Reply:
    machine, flags = actor.machine, frozenset(actor.machine.flags)
    value = encode_queue_state(machine.category or "", command.priority, flags)
    await actor.shell.rest.set_variable(actor.call_id, QUEUE_VARIABLE, value)
    # The flags (e.g. cannot_speak) go along, for the live board.
    actor.shell.to_acd(acd.CallPriorityChanged(actor.call_id, command.priority, flags))
    return None


@_executes(c.Requeue)
async def _requeue(actor: CallActor, _: c.Requeue) -> Reply:
    machine = actor.machine
    actor.shell.to_acd(acd.CallEnded(actor.call_id))
    category, flags = machine.category or "", frozenset(machine.flags)
    queued = acd.CallQueued(actor.call_id, category, actor.arrival, machine.priority, flags)
    actor.shell.to_acd(queued)
    return None


@_executes(c.ResumeConversation)
async def _resume(actor: CallActor, command: c.ResumeConversation) -> Reply:
    adopted = acd.CallAdopted(
        actor.call_id,
        command.category,
        actor.arrival,
        command.operator_id,
        command.priority,
        command.flags,
    )
    actor.shell.to_acd(adopted)
    return None


@_executes(c.LeaveQueue, c.FinishCall, c.ReportOfferFailure)
async def _tell_acd(
    actor: CallActor, command: c.LeaveQueue | c.FinishCall | c.ReportOfferFailure
) -> Reply:
    if isinstance(command, c.ReportOfferFailure):
        actor.shell.to_acd(command.event)
    elif isinstance(command, c.LeaveQueue):
        actor.shell.to_acd(acd.CallHungUp(actor.call_id))
    else:
        actor.shell.to_acd(acd.CallEnded(actor.call_id))  # the operator goes to wrap-up
    return None


@_executes(c.ClaimOffer)
async def _claim_offer(actor: CallActor, command: c.ClaimOffer) -> Reply:
    won = actor.shell.offer_answered(actor.call_id, command.operator_id)
    return OfferClaimed(command.channel_id, won, actor.shell.clock())


@_executes(c.BridgeOperator, c.BridgeAgency, c.BridgeSupervisor)
async def _bridge(
    actor: CallActor, command: c.BridgeOperator | c.BridgeAgency | c.BridgeSupervisor
) -> Reply:
    await actor.shell.rest.add_channel(actor.bridge_id, command.channel_id)
    return None


@_executes(c.Disconnect)
async def _disconnect(actor: CallActor, _: c.Disconnect) -> Reply:
    await actor.shell.rest.hangup(actor.call_id)
    return None


@_executes(c.HangUpLeg)
async def _hang_up_leg(actor: CallActor, command: c.HangUpLeg) -> Reply:
    await actor.shell.rest.hangup(command.channel_id)
    return None


@_executes(c.DestroyBridge, c.DestroyListenBridge)
async def _destroy_bridge(
    actor: CallActor, command: c.DestroyBridge | c.DestroyListenBridge
) -> Reply:
    bridge = command.bridge_id if isinstance(command, c.DestroyListenBridge) else actor.bridge_id
    await actor.shell.rest.destroy_bridge(bridge)
    return None


@_executes(c.ContinueToFallback)
async def _to_fallback(actor: CallActor, _: c.ContinueToFallback) -> Reply:
    rest = actor.shell.rest
    await rest.continue_in_dialplan(
        actor.call_id, context=FALLBACK_CONTEXT, extension="s", priority=1
    )
    return None


@_executes(c.RingOperator)
async def _ring_operator(actor: CallActor, command: c.RingOperator) -> Reply:
    shell, operator_id = actor.shell, command.operator_id
    shell.metrics.rung(operator_id, shell.clock())
    category = (actor.machine.category or "call").upper()
    number = display_number(actor.channel.caller.number)
    await actor.originate(
        shell.operators[operator_id].dial_string,
        command.channel_id,
        f"operator,{actor.call_id},{operator_id}",
        f'"{category} {number}" <{number}>',
        int(shell.config.acd.ring_timeout_seconds) + 5,
        variables={"SIAGA_CALL_ID": actor.call_id},
        # The caller's codecs, not "any audio": offered everything, a Local or multi-codec
        # phone picks another format (slin192 for Local) and every frame between the two is
        # translated. It also shares the caller's linkedid.
        originator=actor.call_id,
    )
    return None


@_executes(c.DialAgency)
async def _dial_agency(actor: CallActor, command: c.DialAgency) -> Reply:
    agency = next(a for a in actor.shell.config.agencies if a.code == command.agency)
    number = display_number(actor.channel.caller.number)
    args = f"agency,{actor.call_id},{agency.code}"
    caller_id = f'"112 {number}" <{number}>'
    await actor.originate(
        agency.dial, command.channel_id, args, caller_id, 60, originator=actor.call_id
    )
    return None


@_executes(c.DialSupervisor)
async def _dial_supervisor(actor: CallActor, command: c.DialSupervisor) -> Reply:
    mode = command.mode.value
    args, caller_id = f"supervisor,{actor.call_id},{mode}", f'"{mode.upper()} 112" <112>'
    await actor.originate(command.dial, command.channel_id, args, caller_id, 30)
    return None


@_executes(c.CreateListenBridge)
async def _create_listen_bridge(actor: CallActor, command: c.CreateListenBridge) -> Reply:
    await actor.shell.rest.create_bridge(command.bridge_id, name=f"listen-{actor.call_id}"[:64])
    return None


@_executes(c.Snoop)
async def _snoop(actor: CallActor, command: c.Snoop) -> Reply:
    actor.register(ResourceKind.CHANNEL, command.snoop_id)
    await actor.shell.rest.snoop(
        command.operator_channel,
        app=actor.shell.config.asterisk.app,
        app_args=f"snoop,{actor.call_id}",
        snoop_id=command.snoop_id,
        spy=SnoopDirection.BOTH,
        whisper=SnoopDirection.OUT if command.whisper else SnoopDirection.NONE,
    )
    return None


@_executes(c.JoinListenBridge)
async def _join_listen_bridge(actor: CallActor, command: c.JoinListenBridge) -> Reply:
    await actor.shell.rest.add_channel(command.bridge_id, list(command.channel_ids))
    return None
