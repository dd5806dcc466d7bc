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
from typing import TypeGuard

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
from ari_app.call.events import (
    CallerTalking,
    CallEvent,
    CommandFailed,
    DigitPressed,
    HungUp,
    LegAnswered,
    LegDialStatus,
    LegHungUp,
    OperatorDigit,
    PromptFinished,
    Started,
)
from ari_app.call.failures import ends_the_batch
from ari_app.call.machine import CallMachine
from ari_app.call.states import Party
from ari_app.executors import EXECUTORS, CallShell
from ari_app.ivr import Language
from ari_app.router import Inbox

log = structlog.get_logger(__name__)
_CALL_EVENTS = frozenset(CallEvent.__args__)


def is_call_event(item: object) -> TypeGuard[CallEvent]:
    return type(item) in _CALL_EVENTS  # a set lookup per inbox item, not 25 isinstance checks


def screened_start(channel: Channel, since_arrival: float = 0.0) -> Started:
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
        since_arrival=max(0.0, since_arrival),
    )


class CallActor:
    def __init__(self, shell: CallShell, channel: Channel, arrival: float) -> None:
        self.shell = shell
        self.call_id = channel.id
        self.rest = shell.rest_for(channel.id)
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
                    event = item if is_call_event(item) else self.translate(item)
                    if event is not None:
                        await self.feed(event)
                except Exception:
                    # One bad event must not leave a 112 caller stranded: log it and go on.
                    log.exception("call.event_failed", call_id=self.call_id, item=repr(item)[:300])
        finally:
            for handle in self.timers:
                handle.cancel()
            self.shell.call_finished(self.call_id)

    def translate(self, item: object) -> CallEvent | None:
        """An ARI event of one of the call's resources, as the machine's event (or None)."""
        now, machine, call_id = self.shell.clock(), self.machine, self.call_id
        match item:
            case StasisStart(channel=channel) if channel.id == call_id:
                return screened_start(channel, now - self.arrival)
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
                    reply = await EXECUTORS[type(command)](self, command)
                except AriError as exc:
                    failed = CommandFailed(command, exc.status, self.shell.clock())
                    pending.append(failed)
                    if ends_the_batch(command, exc.status):
                        break
                    continue
                if reply is not None:
                    pending.append(reply)

    def register(self, kind: ResourceKind, resource_id: str) -> None:
        self.shell.router.register(kind, resource_id, self)
