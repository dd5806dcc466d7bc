"""The supervisor that keeps one ARI event websocket alive and reads it, in order.

    connect: GET /asterisk/info -> websocket /ari/events?app=NAME&subscribeAll=false
    -> on_connected() (the app resyncs: GET /channels, /bridges; docs/architecture.md)
    -> connected = True -> read frames, hand each parsed event to on_event, one at a time
    -> socket closed, failed, or ended cleanly: connected = False -> back off -> reconnect

One reader, ordered dispatch (docs/architecture.md): `on_event` is awaited for each event before
the next frame is read, so events reach the consumer in exactly the order Asterisk sent
them and none is dropped. A slow consumer slows the reader (TCP back-pressure), it does
not lose events; the consumer should only route and enqueue.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import structlog

from ari_app.ari.config import AriConfig
from ari_app.ari.events import ApplicationReplaced, AriEvent, MalformedEvent, parse_message
from ari_app.ari.models import AsteriskInfo
from ari_app.ari.rest import AriRest

log = structlog.get_logger(__name__)

EventHandler = Callable[[AriEvent], Awaitable[None]]
ConnectedHook = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential back-off with "equal jitter": half fixed, half random.

    The fixed half keeps a flapping Asterisk from being hammered; the random half keeps
    several instances from reconnecting in lock-step.
    """

    initial: float = 0.1
    maximum: float = 5.0
    factor: float = 2.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return base / 2 + base / 2 * rand()


class AriConnection:
    """Keeps the event websocket of `config.app` connected until `stop()`.

    `on_event` receives every message (typed, unknown or malformed) in order.
    `on_connected` runs after every (re)connect, once the websocket is subscribed and
    before any of its events is delivered; Asterisk does not resend StasisStart after a
    reconnect, so that is where the app relists channels and bridges. It must not wait
    for events (none are delivered until it returns). If it raises, the connection is
    dropped and retried: an app that could not resync is not healthy.
    """

    def __init__(
        self,
        config: AriConfig,
        session: aiohttp.ClientSession,
        on_event: EventHandler,
        *,
        on_connected: ConnectedHook | None = None,
        rest: AriRest | None = None,
        backoff: Backoff | None = None,
        stop_grace: float = 1.0,
    ) -> None:
        self._config = config
        self._session = session
        self._on_event = on_event
        self._on_connected = on_connected
        self._rest = rest if rest is not None else AriRest.from_session(session, config)
        self._backoff = backoff or Backoff(config.backoff_initial, config.backoff_max)
        self._stop_grace = stop_grace
        self._stopping = asyncio.Event()
        self._up = asyncio.Event()
        self._first_attempt_over = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._asterisk: AsteriskInfo | None = None
        self.connects = 0  # successful (re)connects so far, for logs and tests

    @property
    def connected(self) -> bool:
        """True while the websocket is up and the last resync succeeded (for /healthz)."""
        return self._up.is_set()

    @property
    def asterisk(self) -> AsteriskInfo | None:
        """What GET /asterisk/info said at the last connect."""
        return self._asterisk

    async def wait_connected(self) -> None:
        """Return once connected (immediately if already). Wrap in a timeout if needed."""
        await self._up.wait()

    async def wait_first_attempt(self) -> None:
        """Return once the first connect attempt has ended: connected (its `on_connected`
        done) or failed. An app with several Asterisks waits for each before it lets
        operators be offered calls, so no node's calls are offered before another's older
        ones are known (docs/ha.md)."""
        await self._first_attempt_over.wait()

    def start(self) -> asyncio.Task[None]:
        """Run the supervisor in a background task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"ari-connection-{self._config.app}")
        return self._task

    def halt(self) -> None:
        """Deliver no further event and never reconnect; `stop()` still closes the socket."""
        self._stopping.set()

    async def stop(self) -> None:
        """Close the websocket and end `run()`, within about `stop_grace` seconds. Final."""
        self._stopping.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stop_grace
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), self._stop_grace)
        task = self._task
        if task is None or task.done() or task is asyncio.current_task():
            return
        done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
        if not done:
            # Stuck in a consumer or a connect attempt: cancel rather than hang shutdown.
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Connect, read, reconnect with back-off, until `stop()`."""
        if self._task is None or self._task.done():
            self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        attempt = 0
        try:
            while not self._stopping.is_set():
                started = loop.time()
                was_up = await self._connect_and_read()
                if self._stopping.is_set():
                    break
                # A session that stayed up a while was healthy: start back-off afresh.
                # One that dropped at once keeps growing, so a flapping peer is not hammered.
                if was_up and loop.time() - started >= self._backoff.maximum:
                    attempt = 0
                delay = self._backoff.delay(attempt)
                attempt += 1
                log.info("ari.reconnect_scheduled", app=self._config.app, delay=round(delay, 3))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            self._up.clear()
            self._ws = None
            log.info("ari.stopped", app=self._config.app)

    async def _connect_and_read(self) -> bool:
        """One connection's life. Returns whether it got as far as `connected`."""
        was_up = False
        try:
            self._asterisk = await self._rest.asterisk_info()
            # The session's own timeout may be minutes; a hung upgrade must not be.
            async with asyncio.timeout(self._config.connect_timeout):
                ws = await self._session.ws_connect(
                    self._config.events_url,
                    params={"app": self._config.app, "subscribeAll": "false"},
                    headers={"Authorization": self._config.authorization()},
                    heartbeat=self._config.heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_close=self._config.connect_timeout),
                    autoping=True,
                )
            async with ws:
                self._ws = ws
                if self._stopping.is_set():
                    return False
                if self._on_connected is not None:
                    await self._on_connected()
                self.connects += 1
                self._up.set()
                self._first_attempt_over.set()
                was_up = True
                log.info(
                    "ari.connected",
                    app=self._config.app,
                    asterisk=self._asterisk.version,
                    connects=self.connects,
                )
                await self._read(ws)
                log.warning("ari.disconnected", app=self._config.app, close_code=ws.close_code)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Connection refused, 401, handshake failure, a failing resync hook...:
            # all mean "not connected"; the supervisor backs off and tries again.
            log.warning(
                "ari.connection_failed",
                app=self._config.app,
                error=f"{type(exc).__name__}: {exc}",
            )
        finally:
            self._up.clear()
            self._ws = None
            self._first_attempt_over.set()
        return was_up

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # The iterator ends on CLOSE/CLOSING/CLOSED; a clean end is still a disconnect.
        async for message in ws:
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                await self._deliver(parse_message(message.data))
                if self._stopping.is_set():
                    return  # halted (e.g. by the consumer, on ApplicationReplaced)
            elif message.type == aiohttp.WSMsgType.ERROR:
                log.warning("ari.websocket_error", app=self._config.app, error=str(ws.exception()))
                return

    async def _deliver(self, event: AriEvent) -> None:
        if isinstance(event, MalformedEvent):
            log.warning("ari.malformed_event", reason=event.reason, type=event.type)
        elif isinstance(event, ApplicationReplaced):
            log.error("ari.application_replaced", app=self._config.app)
        try:
            await self._on_event(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The consumer's bug must not stop the events of every other call.
            log.exception("ari.consumer_failed", type=event.type)
