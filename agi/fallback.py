"""Recording the calls the dialplan fallback handled while the ARI app was away.

`FallbackTracker` is pure: AMI events in (plain dicts), record events out. It follows calls of
the `siaga-fallback` queue: the dialplan's `UserEvent(SiagaFallback, Step: arrived|overflow)`,
the queue's own QueueCallerJoin, AgentCalled, AgentRingNoAnswer, AgentConnect, AgentComplete,
QueueCallerAbandon, and the caller's Hangup.

`FallbackRecorder` is the IO shell: panoramisk's AMI client puts events on a queue that one task
of ours feeds to the tracker and the journal.

The facts that Asterisk's own record also holds (arrival, connection, abandon, end) get event ids
derived from the call and the fact (`fact_id`), so the reconciliation from that record
(db/reconcile.py) and this recorder write each fact once between them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from panoramisk import Manager

from db.events import FALLBACK_FLAG, EventKind, HangupBy, RecordEvent, fact_id, flag_fact_id
from dialplan import ami
from queues.states import OfferFailure
from siaga.config import Config

log = structlog.get_logger(__name__)

FALLBACK_QUEUE = "siaga-fallback"
USER_EVENT = "SiagaFallback"
# The AMI user's event classes; manager.conf lets only `ami.EVENTS` through to it.
AMI_EVENT_CLASSES = ",".join(ami.READ_CLASSES)

STALE_AFTER = timedelta(hours=12)


class Journal(Protocol):
    def write(self, event: RecordEvent) -> None: ...


def operators_by_interface(config: Config) -> dict[str, str]:
    """`PJSIP/1001` -> operator id: how the fallback queue's members are named (queues.conf)."""
    return {f"PJSIP/{op.sip_user}": op.id for op in config.operators}


def epoch(text: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(text or ""), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text or "")
    except ValueError:
        return None


@dataclass
class _Abandon:
    at: datetime
    position: int | None
    wait_seconds: int | None


@dataclass
class _Call:
    number: str
    since: datetime
    connected_to: str | None = None
    hangup_by: HangupBy | None = None
    # app_queue reports a caller leaving on the queue's timeout as an abandon too: it is one
    # only if the caller's hangup follows, not the dialplan going on (overflow, queue again).
    pending_abandon: _Abandon | None = None
    overflow_to: str | None = None  # dialling the partner centre


class FallbackTracker:
    def __init__(self, operators: Mapping[str, str], queue: str = FALLBACK_QUEUE) -> None:
        self._operators = dict(operators)
        self._queue = queue
        self._calls: dict[str, _Call] = {}

    @property
    def active(self) -> frozenset[str]:
        return frozenset(self._calls)

    def handle(self, event: Mapping[str, str], now: datetime) -> list[RecordEvent]:
        name = event.get("Event", "")
        call_id = event.get("Uniqueid", "")
        if not call_id:
            return []
        if name == "UserEvent" and event.get("UserEvent") == USER_EVENT:
            return self._user_event(call_id, event, now)
        if name == "Hangup":
            return self._hangup(call_id, now)
        if name == "DialEnd":
            return self._dial_end(call_id, event, now)
        if event.get("Queue") != self._queue:
            return []
        call = self._calls.get(call_id)
        match name:
            case "QueueCallerJoin":
                if call is not None:
                    call.pending_abandon = None
                return self._arrived(call_id, event, now) + [
                    RecordEvent.new(
                        EventKind.CALL_QUEUED,
                        call_id=call_id,
                        at=now,
                        event_id=fact_id(call_id, "queued"),
                        position=_int(event.get("Position")),
                    )
                ]
            case "AgentCalled":
                return self._offered(call_id, event, now)
            case "AgentRingNoAnswer":
                return self._offer_failed(call_id, event, now)
            case "AgentConnect":
                return self._connected(call_id, event, now)
            case "AgentComplete" if call is not None:
                reason = event.get("Reason", "")
                call.hangup_by = HangupBy.OPERATOR if reason == "agent" else HangupBy.CALLER
            case "QueueCallerAbandon" if call is not None and call.connected_to is None:
                call.pending_abandon = _Abandon(
                    now, _int(event.get("Position")), _int(event.get("HoldTime"))
                )
        return []

    # -- facts

    def _user_event(
        self, call_id: str, event: Mapping[str, str], now: datetime
    ) -> list[RecordEvent]:
        step = event.get("Step", "")
        if step == "arrived":
            return self._arrived(call_id, event, epoch(event.get("Arrived")) or now)
        call = self._calls.get(call_id)
        if step == "overflow" and call is not None:
            call.pending_abandon = None
            call.overflow_to = event.get("To") or "overflow"
            return [RecordEvent.new(EventKind.FLAG_SET, call_id=call_id, at=now, flag="overflow")]
        return []

    def _dial_end(self, call_id: str, event: Mapping[str, str], now: datetime) -> list[RecordEvent]:
        call = self._calls.get(call_id)
        if call is None or call.overflow_to is None:
            return []
        to, call.overflow_to = call.overflow_to, None
        if event.get("DialStatus") != "ANSWER":
            return []
        call.hangup_by = HangupBy.OPERATOR  # the partner centre has the caller now
        return [
            RecordEvent.new(
                EventKind.CALL_TRANSFERRED, call_id=call_id, at=now, agency="overflow", to=to
            )
        ]

    def _arrived(self, call_id: str, event: Mapping[str, str], at: datetime) -> list[RecordEvent]:
        if call_id in self._calls:
            return []
        self._forget_stale(at)
        number = event.get("CallerIDNum", "")
        self._calls[call_id] = _Call(number=number, since=at)
        name = event.get("CallerIDName", "")
        return [
            RecordEvent.new(
                EventKind.CALL_ARRIVED,
                call_id=call_id,
                at=at,
                caller_number=number,
                caller_name=name if name and name != "<unknown>" else None,
                flags=[FALLBACK_FLAG],
            ),
            # Also on its own: a stranded call (docs/architecture.md) has the arrival the app
            # recorded before it died, and this arrival, with its flag, is not a second one.
            RecordEvent.new(
                EventKind.FLAG_SET,
                call_id=call_id,
                at=at,
                event_id=flag_fact_id(call_id, FALLBACK_FLAG),
                flag=FALLBACK_FLAG,
            ),
        ]

    def _forget_stale(self, now: datetime) -> None:
        # A Hangup missed while AMI was down would keep a call here for ever.
        for call_id in [c for c, call in self._calls.items() if now - call.since > STALE_AFTER]:
            del self._calls[call_id]

    def _operator(self, event: Mapping[str, str]) -> str | None:
        return self._operators.get(event.get("Interface", ""))

    def _offered(self, call_id: str, event: Mapping[str, str], now: datetime) -> list[RecordEvent]:
        operator_id = self._operator(event)
        if call_id not in self._calls or operator_id is None:
            return []
        return [
            RecordEvent.new(
                EventKind.CALL_OFFERED, call_id=call_id, operator_id=operator_id, at=now
            )
        ]

    def _offer_failed(
        self, call_id: str, event: Mapping[str, str], now: datetime
    ) -> list[RecordEvent]:
        operator_id = self._operator(event)
        if call_id not in self._calls or operator_id is None:
            return []
        return [
            RecordEvent.new(
                EventKind.OFFER_FAILED,
                call_id=call_id,
                operator_id=operator_id,
                at=now,
                reason=OfferFailure.NO_ANSWER.value,
            )
        ]

    def _connected(
        self, call_id: str, event: Mapping[str, str], now: datetime
    ) -> list[RecordEvent]:
        call = self._calls.get(call_id)
        if call is None or call.connected_to is not None:
            return []
        call.pending_abandon = None
        call.connected_to = self._operator(event) or event.get("MemberName") or "unknown"
        return [
            RecordEvent.new(
                EventKind.CALL_CONNECTED,
                call_id=call_id,
                operator_id=call.connected_to,
                at=now,
                event_id=fact_id(call_id, "connected"),
            )
        ]

    def _hangup(self, call_id: str, now: datetime) -> list[RecordEvent]:
        call = self._calls.pop(call_id, None)
        if call is None:
            return []
        out = []
        if call.pending_abandon is not None:
            abandon = call.pending_abandon
            out.append(
                RecordEvent.new(
                    EventKind.CALL_ABANDONED,
                    call_id=call_id,
                    at=abandon.at,
                    position=abandon.position,
                    wait_seconds=abandon.wait_seconds,
                )
            )
        out.append(
            RecordEvent.new(
                EventKind.CALL_ENDED,
                call_id=call_id,
                at=now,
                hangup_by=(call.hangup_by or HangupBy.CALLER).value,
                reason="normal",
            )
        )
        return out


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's client, which must not reconnect once we have stopped it."""

    stopped = False

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.stopped:
            return None
        return super().connect(*args, **kwargs)


class FallbackRecorder:
    """Listens to AMI for the whole life of the stack: the fallback matters exactly when the
    ARI side is away, so this must not depend on it."""

    def __init__(
        self,
        config: Config,
        journal: Journal,
        *,
        clock: Callable[[], datetime] | None = None,
        reconnect_seconds: int = 2,
    ) -> None:
        self.config = config
        self.journal = journal
        self.tracker = FallbackTracker(operators_by_interface(config))
        self._clock = clock or (lambda: datetime.now(UTC))
        self._reconnect = reconnect_seconds
        self._events: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._logged_in = asyncio.Event()
        self._manager: _Manager | None = None
        self._task: asyncio.Task[None] | None = None
        self.recorded = 0
        self.received: collections.Counter[str] = collections.Counter()  # by event name

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    async def start(self) -> None:
        ast = self.config.asterisk
        loop = asyncio.get_running_loop()
        self._manager = _Manager(
            loop=loop,
            host=ast.ami_host,
            port=ast.ami_port,
            username=ast.ami_user,
            secret=ast.ami_password,
            events=AMI_EVENT_CLASSES,
            reconnect_timeout=self._reconnect,
            ping_delay=10,
            ping_interval=10,
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
        )
        self._manager.register_event("*", self._on_event)
        self._task = asyncio.create_task(self._run(), name="fallback-recorder")
        self._manager.connect()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._logged_in.wait(), timeout)

    async def stop(self) -> None:
        if self._manager is not None:
            self._manager.stopped = True
            self._manager.close()
        if self._task is not None:
            # What arrived before the stop is still recorded.
            await self._events.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_login(self, manager: Any) -> None:
        log.info("fallback.ami_connected")
        self._logged_in.set()

    def _on_disconnect(self, manager: Any, exc: Any) -> None:
        if self._logged_in.is_set():
            log.warning("fallback.ami_disconnected", error=str(exc))
        self._logged_in.clear()

    def _on_event(self, manager: Any, message: Any) -> None:
        # panoramisk calls this from its protocol: only hand over, never block or raise.
        event = {str(k): _text(v) for k, v in message.items()}
        self.received[event.get("Event", "")] += 1
        self._events.put_nowait(event)

    async def _run(self) -> None:
        while True:
            event = await self._events.get()
            try:
                for record in self.tracker.handle(event, self._clock()):
                    self.journal.write(record)
                    self.recorded += 1
            except Exception:
                log.exception("fallback.event_failed", ami_event=event.get("Event"))
            finally:
                self._events.task_done()


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
