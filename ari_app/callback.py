"""Calling back a caller who hung up before an operator came: the IO shell of one callback.

The rules (who rings first, what ends the callback, what the record says) live in the pure
`ari_app.call.callback`; this actor turns ARI events of its two channels into the machine's
events and carries its commands out over REST, one at a time, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from ari_app.ari.errors import AriError
from ari_app.ari.events import (
    ChannelDestroyed,
    ChannelHangupRequest,
    ResourceKind,
    StasisEnd,
    StasisStart,
)
from ari_app.ari.rest import AriRest
from ari_app.call.callback import (
    AddToBridge,
    Answered,
    Begin,
    Broken,
    CallbackEvent,
    CallbackMachine,
    Command,
    CreateBridge,
    DestroyBridge,
    DialCaller,
    Ended,
    Finished,
    HangUp,
    Leg,
    PauseOperator,
    ReadyOperator,
    RingOperator,
    Unreachable,
    UpdateRecord,
)
from ari_app.router import Inbox, Router
from db.events import Fact, Facts
from siaga.config import Config, OperatorConfig

log = structlog.get_logger(__name__)

CALLER_RING_SECONDS = 30


class CallbackHost(Protocol):
    """What a callback needs of the app around it (SiagaApp is one)."""

    def rest_of_any_node(self) -> AriRest:
        """The Asterisk to place the callback on (with several nodes, a connected one)."""
        ...

    @property
    def config(self) -> Config: ...

    @property
    def operators(self) -> Mapping[str, OperatorConfig]: ...

    @property
    def router(self) -> Router: ...

    @property
    def callbacks(self) -> MutableMapping[str, CallbackActor]:
        """The running callbacks by call id; a finished one removes itself."""
        ...

    def record(self, fact: Fact, *, call_id: str | None) -> None: ...

    def operator_pause(self, operator_id: str, reason: str) -> None: ...

    def operator_ready(self, operator_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class CallbackIds:
    """The ids of a callback's resources, chosen before the requests that create them (their
    events may beat the HTTP response)."""

    name: str  # the callback's own: cb-<call id>

    @classmethod
    def of(cls, call_id: str) -> CallbackIds:
        return cls(f"cb-{call_id}"[:60])

    @property
    def operator_channel(self) -> str:
        return f"{self.name}-op"

    @property
    def caller_channel(self) -> str:
        return f"{self.name}-caller"

    @property
    def bridge(self) -> str:
        return f"{self.name}-bridge"

    def channel(self, leg: Leg) -> str:
        return self.operator_channel if leg is Leg.OPERATOR else self.caller_channel

    def leg(self, channel_id: str) -> Leg | None:
        if channel_id == self.operator_channel:
            return Leg.OPERATOR
        if channel_id == self.caller_channel:
            return Leg.CALLER
        return None


def callback_event(ids: CallbackIds, event: object) -> CallbackEvent | None:
    """The machine's event for an ARI event of the callback's channels (None: no meaning)."""
    match event:
        case StasisStart(channel=channel) if (leg := ids.leg(channel.id)) is not None:
            return Answered(leg)
        case (
            ChannelDestroyed(channel=channel)
            | ChannelHangupRequest(channel=channel)
            | StasisEnd(channel=channel)
        ) if (leg := ids.leg(channel.id)) is not None:
            return Ended(leg)
    return None


class CallbackActor:
    def __init__(self, app: CallbackHost, call_id: str, number: str, operator_id: str) -> None:
        self.app = app
        self.call_id = call_id  # the abandoned call this callback belongs to
        self.number = number
        self.operator_id = operator_id
        self.ids = CallbackIds.of(call_id)
        self.rest = app.rest_of_any_node()  # all of its legs on one Asterisk
        self.machine = CallbackMachine(call_id, operator_id)
        self.inbox = Inbox()
        self.log = log.bind(call_id=call_id, operator=operator_id)
        self.task: asyncio.Task[None] | None = None

    async def deliver(self, event: object) -> None:
        await self.inbox.put(event)

    def start(self) -> None:
        for leg in Leg:
            self.app.router.register(ResourceKind.CHANNEL, self.ids.channel(leg), self)
        self.task = asyncio.get_running_loop().create_task(self.run(), name=self.ids.name)

    async def run(self) -> None:
        try:
            await self.feed(Begin())
            while not self.machine.done:
                event = callback_event(self.ids, await self.inbox.get())
                if event is not None:
                    await self.feed(event)
        except Exception as exc:
            # An operator must not stay paused, nor a phone off the hook, because of a bug here.
            self.log.exception("callback.failed")
            await self.feed(Broken(f"{type(exc).__name__}: {exc}"))

    async def feed(self, event: CallbackEvent) -> None:
        pending: list[CallbackEvent] = [event]
        while pending:
            for command in self.machine.handle(pending.pop(0)):
                follow_up = await self._execute(command)
                if follow_up is not None:
                    pending.append(follow_up)
                    break  # the rest of these commands assumed the step had worked

    async def _execute(self, command: Command) -> CallbackEvent | None:
        """Carry one command out; a request that fails becomes the machine's next event."""
        try:
            await self._carry_out(command)
        except AriError as exc:
            self.log.warning(
                "callback.command_failed", command=type(command).__name__, error=str(exc)
            )
            match command:
                case RingOperator():
                    return Unreachable(Leg.OPERATOR, str(exc))
                case DialCaller():
                    return Unreachable(Leg.CALLER, str(exc))
                case CreateBridge() | AddToBridge():
                    return Broken(str(exc))
        # A hang-up or a bridge removal that fails leaves nothing more to do (and one already
        # gone is a success: AriRest treats the 404 so).
        return None

    async def _carry_out(self, command: Command) -> None:
        app, rest, ids = self.app, self.rest, self.ids
        asterisk = app.config.asterisk
        match command:
            case UpdateRecord(status=status, owner=owner, outcome=outcome):
                fact = Facts.callback_updated(
                    status=status.value,
                    owner=owner,
                    outcome=outcome.value if outcome is not None else None,
                    operator_id=self.operator_id,
                )
                app.record(fact, call_id=self.call_id)
            case PauseOperator(reason=reason):
                app.operator_pause(self.operator_id, reason)
            case ReadyOperator():
                app.operator_ready(self.operator_id)
            case RingOperator():
                await rest.originate(
                    app.operators[self.operator_id].dial_string,
                    channel_id=ids.operator_channel,
                    app=asterisk.app,
                    app_args=f"callback,{self.call_id}",
                    caller_id=f'"CALLBACK {self.number}" <{self.number}>',
                    timeout=int(app.config.acd.ring_timeout_seconds),
                )
            case CreateBridge():
                await rest.create_bridge(ids.bridge, name=ids.name)
            case AddToBridge(leg=leg):
                await rest.add_channel(ids.bridge, ids.channel(leg))
            case DialCaller():
                await rest.originate(
                    asterisk.callback_dial.format(number=self.number),
                    channel_id=ids.caller_channel,
                    app=asterisk.app,
                    app_args=f"callback,{self.call_id}",
                    caller_id=f'"112" <{asterisk.emergency_number}>',
                    timeout=CALLER_RING_SECONDS,
                )
            case HangUp(leg=leg):
                await rest.hangup(ids.channel(leg))
            case DestroyBridge():
                await rest.destroy_bridge(ids.bridge)
            case Finished():
                self.app.router.forget(self)
                self.app.callbacks.pop(self.call_id, None)
                self.log.info("callback.done", outcome=self.machine.outcome)
