"""Calling back a caller who hung up before an operator came (a 112 caller who gave up may be the
one who needed help most).

The operator's phone rings first; once the operator answers, the caller is dialled over the
trunk, and both meet in a bridge. The operator is paused (reason `callback`) meanwhile, so the
ACD offers them nothing else, and made ready again at the end. Every step updates the callback
record of the original call.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from typing import TYPE_CHECKING

import structlog

from ari_app.ari.errors import AriError
from ari_app.ari.events import ChannelDestroyed, ChannelHangupRequest, ResourceKind, StasisEnd
from ari_app.ari.events import StasisStart as AriStasisStart
from ari_app.router import Inbox
from db.events import Facts

if TYPE_CHECKING:
    from ari_app.app import SiagaApp

log = structlog.get_logger(__name__)


class CallbackStep(enum.StrEnum):
    RINGING_OPERATOR = "ringing_operator"
    DIALLING_CALLER = "dialling_caller"
    CONNECTED = "connected"
    DONE = "done"


class CallbackActor:
    def __init__(self, app: SiagaApp, call_id: str, number: str, operator_id: str) -> None:
        self.app = app
        self.call_id = call_id  # the abandoned call this callback belongs to
        self.number = number
        self.operator_id = operator_id
        self.id = f"cb-{call_id}"[:60]
        self.operator_channel = f"{self.id}-op"
        self.caller_channel = f"{self.id}-caller"
        self.bridge_id = f"{self.id}-bridge"
        self.step = CallbackStep.RINGING_OPERATOR
        self.outcome = ""
        self.inbox = Inbox()
        self.log = log.bind(call_id=call_id, operator=operator_id)
        self.task: asyncio.Task[None] | None = None

    async def deliver(self, event: object) -> None:
        await self.inbox.put(event)

    def start(self) -> None:
        for channel in (self.operator_channel, self.caller_channel):
            self.app.router.register(ResourceKind.CHANNEL, channel, self)
        self.task = asyncio.get_running_loop().create_task(self._run(), name=self.id)

    async def _run(self) -> None:
        app = self.app
        self._update("claimed", owner=self.operator_id)
        app.operator_pause(self.operator_id, "callback")
        try:
            operator = app.operators[self.operator_id]
            await app.rest.originate(
                operator.dial_string,
                channel_id=self.operator_channel,
                app=app.config.asterisk.app,
                app_args=f"callback,{self.call_id}",
                caller_id=f'"CALLBACK {self.number}" <{self.number}>',
                timeout=int(app.config.acd.ring_timeout_seconds),
            )
            while self.step is not CallbackStep.DONE:
                await self._handle(await self.inbox.get())
        except AriError as exc:
            self.log.warning("callback.failed", error=str(exc))
            self.outcome = self.outcome or "operator_unreachable"
        finally:
            await self._finish()

    async def _handle(self, event: object) -> None:
        rest = self.app.rest
        match event:
            case AriStasisStart(channel=channel) if channel.id == self.operator_channel:
                self.step = CallbackStep.DIALLING_CALLER
                await rest.create_bridge(self.bridge_id, name=self.id)
                await rest.add_channel(self.bridge_id, self.operator_channel)
                await rest.originate(
                    self.app.config.asterisk.callback_dial.format(number=self.number),
                    channel_id=self.caller_channel,
                    app=self.app.config.asterisk.app,
                    app_args=f"callback,{self.call_id}",
                    caller_id=f'"112" <{self.app.config.asterisk.emergency_number}>',
                    timeout=30,
                )
            case AriStasisStart(channel=channel) if channel.id == self.caller_channel:
                self.step = CallbackStep.CONNECTED
                self.outcome = "answered"
                await rest.add_channel(self.bridge_id, self.caller_channel)
                self.log.info("callback.connected")
            case (
                ChannelDestroyed(channel=channel)
                | ChannelHangupRequest(channel=channel)
                | StasisEnd(channel=channel)
            ):
                if channel.id == self.operator_channel and not self.outcome:
                    self.outcome = "operator_no_answer"
                elif channel.id == self.caller_channel and not self.outcome:
                    self.outcome = "no_answer"
                self.step = CallbackStep.DONE

    async def _finish(self) -> None:
        for channel in (self.operator_channel, self.caller_channel):
            with contextlib.suppress(AriError):
                await self.app.rest.hangup(channel)
            self.app.router.unregister(ResourceKind.CHANNEL, channel)
        with contextlib.suppress(AriError):
            await self.app.rest.destroy_bridge(self.bridge_id)
        self._update("done", outcome=self.outcome or "failed")
        self.app.operator_ready(self.operator_id)
        self.app.callbacks.pop(self.call_id, None)
        self.log.info("callback.done", outcome=self.outcome)

    def _update(self, status: str, **data: str) -> None:
        fact = Facts.callback_updated(status=status, operator_id=self.operator_id, **data)
        self.app.record(fact, call_id=self.call_id)
