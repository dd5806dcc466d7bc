"""Reconciliation: every call Asterisk saw gets a true row, whatever failed in between.

Asterisk's own record (db/cel.py) is compared with the `calls` rows, at start-up and then every
minute (`Reconciler`, run by `siaga run`):
- a call Asterisk saw that the records lack (the app was dead, or killed before its facts
  were durable) gets its arrival, its operator, its end;
- a call Asterisk shows as ended that the records show as open is closed with Asterisk's times
  (the app was killed between the caller's hang-up and its record of it);
- a call whose channel is gone without a hang-up in Asterisk's record (Asterisk was killed) is
  closed at its last event, by the system, reason `pbx_restart`;
- an open row Asterisk's record does not know, whose channel is gone, is closed now (reason
  `gone_while_app_away`: a PBX whose record is off or lost);
- the open rows of a node the active app lost, for calls that arrived before it went down, are
  closed now by the system, reason `node_lost` (`LostNodeCloser`): their node's record died
  with it;
- a closed row that lacks what Asterisk's record proves gets it: the arrival, the operator who
  answered (the app was killed as the operator's leg joined the caller, and the next app adopted
  the conversation and recorded its end), the fallback's part. What its writers decided stays:
  the end, who hung up, an answer the app took back as a pocket answer.
Every row touched is flagged `reconciled` (and `pbx_restart`, `fallback` where that is what
happened). The facts' event ids are derived from the call (`fact_id`), as the fallback
recorder's are: reconciling twice, or after the fallback recorder, writes nothing new.

`plan` is pure; `Reconciler` is its IO shell: it follows the file, asks PostgreSQL for the rows
of the calls it holds, and writes the facts through the record writer (durable, in order).
With several Asterisk nodes (`[[asterisk.nodes]]`) each node's `siaga run` reconciles its own
node: its CEL file, its Asterisk's channels (`pbx_now`), and only the calls whose ids carry
its name (`node`): another node's live call is not gone because this Asterisk lacks it.
See docs/architecture.md §5.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import asyncpg
import structlog

from db.cel import AsteriskCall, CelEvent, asterisk_calls, event_time, parse_line
from db.events import (
    FALLBACK_FLAG,
    JSON,
    NODE_LOST,
    EventKind,
    HangupBy,
    RecordEvent,
    fact_id,
    flag_fact_id,
)
from db.hosts import HostRotation

log = structlog.get_logger(__name__)

RECONCILED_FLAG = "reconciled"
PBX_RESTART = "pbx_restart"  # the flag, and the end reason, of a call Asterisk lost
GONE_WHILE_AWAY = "gone_while_app_away"

SETTLE = timedelta(seconds=5)  # the app writes a call's end within this of the hang-up
LOST_NODE_CONNECT_TIMEOUT = 5.0  # each database host's


class Journal(Protocol):
    def write(self, event: RecordEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """What the `calls` row says."""

    call_id: str
    arrived: bool
    connected: bool
    abandoned: bool
    ended: bool
    flags: frozenset[str] = frozenset()
    # Every operator the records show connected, those whose answer the app took back as a
    # pocket answer (offer_failed `hung_up_at_once`) included: the app's judgement, not to
    # be overruled by Asterisk's record of the leg in the bridge.
    connections: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PbxNow:
    """What Asterisk says now: the ids of its channels, and when it started."""

    live: frozenset[str]
    started_at: datetime | None


class _Started(Protocol):
    @property
    def startup_time(self) -> datetime | None: ...


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


class AsteriskRest(Protocol):
    """The two ARI requests `pbx_now` makes (`ari_app.ari.rest.AriRest` has them)."""

    async def asterisk_info(self) -> _Started: ...

    async def list_channels(self) -> Sequence[_HasId]: ...


async def pbx_now(rest: AsteriskRest) -> PbxNow:
    """What an Asterisk says now, asked over its ARI: an `ask_pbx` for a node whose ARI is
    not the app's (the standby's own node)."""
    info = await rest.asterisk_info()
    live = frozenset(channel.id for channel in await rest.list_channels())
    return PbxNow(live, info.startup_time)


def on_node(call_id: str, node: str | None) -> bool:
    """Whether the call is the node's: every channel id its Asterisk makes starts with its
    `systemname`, the node's name, and a dash. Without a node (one box), every call is."""
    return node is None or call_id.startswith(f"{node}-")


def plan(
    seen: Iterable[AsteriskCall],
    recorded: Mapping[str, RecordedCall],
    *,
    pbx: PbxNow | None,
    now: datetime,
    settle: timedelta = SETTLE,
    node: str | None = None,
) -> tuple[list[RecordEvent], set[str]]:
    """The facts to write, and the ids of the calls that are settled (nothing more will ever
    be done for them). `pbx`: what Asterisk says now, None if it cannot be asked. `node`: only
    this node's calls are judged (`on_node`); `pbx` is that node's Asterisk."""
    events: list[RecordEvent] = []
    settled: set[str] = set()
    seen_list = [call for call in seen if on_node(call.call_id, node)]
    live = pbx.live if pbx is not None else None
    for call in seen_list:
        row = recorded.get(call.call_id)
        if call.ended_at is None:
            # Lost by Asterisk: not up now, and Asterisk started again after its last event
            # (a channel missing from one listing is not proof enough).
            lost = (
                pbx is not None
                and call.call_id not in pbx.live
                and pbx.started_at is not None
                and call.last_event_at < pbx.started_at
            )
            if not lost or now - call.last_event_at < settle:
                continue  # up, or cannot tell yet
            end, by, reason = call.last_event_at, HangupBy.SYSTEM, PBX_RESTART
        else:
            if now - call.ended_at < settle:
                continue
            end, by, reason = call.ended_at, call.hangup_by or HangupBy.CALLER, "normal"
        settled.add(call.call_id)
        if row is not None and row.ended:
            events += _missing_from_closed(call, row, end, reason)
        else:
            events += _facts_for(call, row, end, by, reason)
    known = {call.call_id for call in seen_list}
    for row in recorded.values():
        if row.ended or row.call_id in known or live is None or row.call_id in live:
            continue
        if not on_node(row.call_id, node):
            continue  # another node's call: its Asterisk, not this one, says whether it is up
        events += [
            _flag(row.call_id, RECONCILED_FLAG, now),
            _fact(
                row.call_id,
                EventKind.CALL_ENDED,
                now,
                hangup_by=HangupBy.SYSTEM.value,
                reason=GONE_WHILE_AWAY,
            ),
        ]
        settled.add(row.call_id)
    return events, settled


def _facts_for(
    call: AsteriskCall,
    row: RecordedCall | None,
    end: datetime,
    by: HangupBy,
    reason: str,
) -> list[RecordEvent]:
    cid = call.call_id
    ended = _fact(cid, EventKind.CALL_ENDED, end, hangup_by=by.value, reason=reason)
    if row is not None and row.arrived and row.abandoned and reason != PBX_RESTART:
        # The app records an abandoned call's abandon, not its end: Asterisk's hang-up time
        # completes that record; nothing was lost, so it is not flagged as reconciled.
        return [ended]
    flags = _flags(call, reason)
    out: list[RecordEvent] = []
    if row is None or not row.arrived:
        out.append(_arrival(call, flags))
    else:
        out += [_flag(cid, flag, end) for flag in flags if flag not in row.flags]
    answer = _missing_answer(call, row)
    out += answer
    connected = bool(answer) or (row is not None and row.connected)
    if not connected and by is HangupBy.CALLER and not (row is not None and row.abandoned):
        wait = (end - call.arrived_at).total_seconds()
        out.append(_fact(cid, EventKind.CALL_ABANDONED, end, wait_seconds=round(wait, 3)))
    out.append(ended)
    return out


def _missing_from_closed(
    call: AsteriskCall, row: RecordedCall, end: datetime, reason: str
) -> list[RecordEvent]:
    """What a row its writers closed lacks that Asterisk's record proves. A killed app loses
    the facts it had not yet made durable; the app that adopts the call goes on from there
    and closes the row without them."""
    answer = _missing_answer(call, row)
    if not row.arrived:
        return [_arrival(call, _flags(call, reason)), *answer]
    fallback = call.fallback and FALLBACK_FLAG not in row.flags
    if not answer and not fallback:
        return []
    flags = [RECONCILED_FLAG, FALLBACK_FLAG] if fallback else [RECONCILED_FLAG]
    return [_flag(call.call_id, flag, end) for flag in flags if flag not in row.flags] + answer


def _missing_answer(call: AsteriskCall, row: RecordedCall | None) -> list[RecordEvent]:
    """The operator's answer, if Asterisk's record shows one the records lack. Not against
    the app's judgement: an answer it took back, a caller it saw hang up first (an operator's
    leg joins the bridge even when the caller has just left it)."""
    if call.connected_at is None or call.operator_id is None:
        return []
    if row is not None and (row.connected or row.abandoned or call.operator_id in row.connections):
        return []
    return [
        _fact(
            call.call_id,
            EventKind.CALL_CONNECTED,
            call.connected_at,
            fact="connected",
            operator_id=call.operator_id,
        )
    ]


def _flags(call: AsteriskCall, reason: str) -> list[str]:
    flags = [RECONCILED_FLAG]
    if call.fallback:
        flags.append(FALLBACK_FLAG)
    if reason == PBX_RESTART:
        flags.append(PBX_RESTART)
    return flags


def _arrival(call: AsteriskCall, flags: list[str]) -> RecordEvent:
    return _fact(
        call.call_id,
        EventKind.CALL_ARRIVED,
        call.arrived_at,
        caller_number=call.caller_number,
        channel_id=call.call_id,
        flags=list[JSON](flags),
    )


def _flag(call_id: str, flag: str, at: datetime) -> RecordEvent:
    return RecordEvent.new(
        EventKind.FLAG_SET, call_id=call_id, at=at, event_id=flag_fact_id(call_id, flag), flag=flag
    )


def _fact(
    call_id: str,
    kind: EventKind,
    at: datetime,
    *,
    fact: str | None = None,
    operator_id: str | None = None,
    **data: JSON,
) -> RecordEvent:
    """A fact with its call's fact id: `fact` names it, but for the kinds a call has once,
    which have their own (db/events.py ONCE_FACTS)."""
    return RecordEvent.new(
        kind,
        call_id=call_id,
        operator_id=operator_id,
        at=at,
        event_id=None if fact is None else fact_id(call_id, fact),
        **data,
    )


def lost_node_ends(call_ids: Iterable[str], at: datetime) -> list[RecordEvent]:
    """The facts that close open rows of a node the active app lost: flagged `reconciled`,
    ended by the system at `at`, reason `node_lost`. Fact ids, as every reconciled fact's:
    closing twice (a retry, a second app) writes nothing new."""
    events: list[RecordEvent] = []
    for call_id in call_ids:
        events.append(_flag(call_id, RECONCILED_FLAG, at))
        events.append(
            _fact(
                call_id,
                EventKind.CALL_ENDED,
                at,
                hangup_by=HangupBy.SYSTEM.value,
                reason=NODE_LOST,
            )
        )
    return events


async def ended_as_lost(
    dsn: str, call_ids: Collection[str], *, timeout: float = LOST_NODE_CONNECT_TIMEOUT
) -> set[str]:
    """Which of these calls the records closed as their node's loss (`node_lost`, by an app or
    by `close_lost_node_calls`). An app that takes over after a partition finds them still up
    on their node, their callers long gone: they are hung up, not adopted (docs/ha.md)."""
    if not call_ids:
        return set()
    conn = await HostRotation(dsn, timeout=timeout).connect()
    try:
        rows = await conn.fetch(
            "SELECT call_id FROM calls WHERE call_id = ANY($1::text[]) AND end_reason = $2",
            list(call_ids),
            NODE_LOST,
        )
    finally:
        await conn.close()
    return {row["call_id"] for row in rows}


async def close_lost_node_calls(
    dsn: str,
    node: str,
    journal: Journal,
    *,
    down_since: datetime,
    owner: Callable[[str], str],
    keep: Iterable[str] = (),
    now: datetime | None = None,
) -> list[str]:
    """Close the open rows of the calls that arrived on `node` before it went down: it died
    with their media, and its own CEL file, the only record of how they ended, is on it
    (docs/ha.md). `owner(call_id)` names a call's node (a node's name may prefix another's);
    `keep`: calls the app holds, which it ends itself. Returns the ids closed. A node that was
    only out of reach, its calls still up, has them adopted again when it is back (their end
    recorded now stays: the first end is the row's)."""
    conn = await HostRotation(dsn, timeout=LOST_NODE_CONNECT_TIMEOUT).connect()
    try:
        rows = await conn.fetch(
            "SELECT call_id FROM calls WHERE ended_at IS NULL AND arrived_at < $2"
            " AND starts_with(call_id, $1::text || '-')",
            node,
            down_since,
        )
    finally:
        await conn.close()
    held = set(keep)
    lost = sorted(
        r["call_id"] for r in rows if r["call_id"] not in held and owner(r["call_id"]) == node
    )
    for event in lost_node_ends(lost, now or datetime.now(UTC)):
        journal.write(event)
    if lost:
        log.warning("reconcile.lost_node_calls_closed", node=node, calls=len(lost))
    return lost


class LostNodeCloser:
    """`close_lost_node_calls` in the background for the active app's `on_node_lost`, tried
    again while the database is away (a node killed whole may take the primary with it)."""

    def __init__(
        self,
        dsn: str,
        journal: Journal,
        owner: Callable[[str], str],
        *,
        retry_seconds: float = 5.0,
        attempts: int = 12,
        on_closed: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._on_closed = on_closed  # the ids closed (the app hangs them up if they return)
        self._journal = journal
        self._owner = owner
        self._retry = retry_seconds
        self._attempts = attempts
        self._tasks: set[asyncio.Task[list[str]]] = set()

    def __call__(self, node: str, down_since: datetime, held: frozenset[str]) -> None:
        task = asyncio.get_running_loop().create_task(self.close(node, down_since, held))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, node: str, down_since: datetime, held: frozenset[str]) -> list[str]:
        for attempt in range(1, self._attempts + 1):
            try:
                closed = await close_lost_node_calls(
                    self._dsn,
                    node,
                    self._journal,
                    down_since=down_since,
                    owner=self._owner,
                    keep=held,
                )
                if self._on_closed is not None:
                    self._on_closed(closed)
                return closed
            except Exception as exc:
                log.warning(
                    "reconcile.lost_node_unreachable_database",
                    node=node,
                    attempt=attempt,
                    error=f"{type(exc).__name__}: {exc}",
                )
                await asyncio.sleep(self._retry)
        log.error("reconcile.lost_node_calls_left_open", node=node)
        return []

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    calls: int  # calls in Asterisk's record not yet settled, at the start of the pass
    events: int  # facts written
    settled: int


AskPbx = Callable[[], Awaitable[PbxNow | None]]


class Reconciler:
    """Follows Asterisk's record file and reconciles, at start-up and every `interval` s.

    It keeps in memory the events of calls not yet settled (and of every channel for `keep`),
    so a pass reads only what Asterisk appended since the last one."""

    def __init__(
        self,
        cel_path: Path,
        dsn: str,
        journal: Journal,
        *,
        app: str,
        operators_by_interface: Mapping[str, str],
        ask_pbx: AskPbx,
        interval: float = 60.0,
        lookback: timedelta = timedelta(days=1),
        keep: timedelta = timedelta(hours=2),
        settle: timedelta = SETTLE,
        node: str | None = None,
    ) -> None:
        """`node`: the Asterisk node this reconciler is for (its name, the `systemname` that
        starts its channel ids); `cel_path` and `ask_pbx` are that node's. None: one box."""
        self.path = cel_path
        self._dsn = dsn
        self._journal = journal
        self._app = app
        self._operators = dict(operators_by_interface)
        self._ask_pbx = ask_pbx
        self._interval = interval
        self._lookback = lookback
        self._keep = keep
        self._settle = settle
        self._node = node
        self._offset = 0
        self._inode: int | None = None
        self._channels: dict[str, list[CelEvent]] = {}
        self._settled: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._ripening = False
        self.passes = 0

    def start(self, ready: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run passes until stopped; the first once `ready` returns (or after a minute)."""
        self._task = asyncio.create_task(self._run(ready), name="reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def kick(self) -> None:
        """Run a pass now (tests, and the console's "reconcile" button if one comes)."""
        self._kick.set()

    async def _run(self, ready: Callable[[], Awaitable[None]] | None) -> None:
        if ready is not None:
            try:
                async with asyncio.timeout(60):
                    await ready()
            except Exception as exc:  # reconcile with what there is
                log.warning("reconcile.not_ready", error=str(exc))
        while True:
            try:
                await self.run_once()
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("reconcile.failed", error=str(exc), file=str(self.path))
            except Exception:  # never take the stack down: try again next time
                log.exception("reconcile.crashed", file=str(self.path))
            pause = self._settle.total_seconds() if self._ripening else self._interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._kick.wait()
            self._kick.clear()

    async def run_once(self, now: datetime | None = None) -> ReconcileReport:
        now = now or datetime.now(UTC)
        await asyncio.to_thread(self._read_new, now)
        calls = asterisk_calls(self._events(), self._app, self._operators)
        pending = [
            c
            for c in calls.values()
            if c.call_id not in self._settled and on_node(c.call_id, self._node)
        ]
        pbx = await self._pbx()
        recorded = await self._recorded([c.call_id for c in pending], now)
        events, settled = plan(
            pending, recorded, pbx=pbx, now=now, settle=self._settle, node=self._node
        )
        for event in events:
            self._journal.write(event)
        self._settled |= settled
        # Calls that ended (or vanished) too recently to judge: look again once they can be.
        self._ripening = any(
            c.call_id not in settled
            and (c.ended_at is not None or (pbx is not None and c.call_id not in pbx.live))
            for c in pending
        )
        self._prune(now)
        self.passes += 1
        report = ReconcileReport(len(pending), len(events), len(settled))
        if self.passes == 1:
            log.info("reconcile.started", file=str(self.path), calls=len(pending))
        if events:
            log.info(
                "reconcile.wrote",
                calls=len({e.call_id for e in events}),
                facts=len(events),
                file=str(self.path),
            )
        return report

    async def _pbx(self) -> PbxNow | None:
        try:
            return await self._ask_pbx()
        except Exception as exc:  # ARI away: nothing is judged gone this time
            log.warning("reconcile.pbx_unknown", error=str(exc))
            return None

    async def _recorded(self, call_ids: list[str], now: datetime) -> dict[str, RecordedCall]:
        conn = await asyncpg.connect(self._dsn, timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT call_id, arrived_at IS NOT NULL AS arrived,"
                " connected_at IS NOT NULL AS connected, abandoned_at IS NOT NULL AS abandoned,"
                " ended_at IS NOT NULL AS ended, flags,"
                " ARRAY(SELECT DISTINCT e.operator_id FROM call_events e"
                "  WHERE e.call_id = calls.call_id AND e.kind = 'call_connected'"
                "  AND e.operator_id IS NOT NULL) AS connections"
                " FROM calls"
                " WHERE (call_id = ANY($1::text[])"
                " OR (ended_at IS NULL AND arrived_at > $2 AND arrived_at < $3))"
                # starts_with, not LIKE: a node's name may hold `_`, LIKE's wildcard.
                " AND ($4::text IS NULL OR starts_with(call_id, $4::text || '-'))",
                call_ids,
                now - self._lookback,
                now - self._settle,
                self._node,
            )
        finally:
            await conn.close()
        return {
            r["call_id"]: RecordedCall(
                r["call_id"],
                r["arrived"],
                r["connected"],
                r["abandoned"],
                r["ended"],
                frozenset(r["flags"] or ()),
                frozenset(r["connections"]),
            )
            for r in rows
        }

    def _events(self) -> Iterable[CelEvent]:
        for events in self._channels.values():
            yield from events

    def _read_new(self, now: datetime) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return
        if stat.st_ino != self._inode or stat.st_size < self._offset:
            self._inode, self._offset = stat.st_ino, 0  # new or rotated: read it whole
        since = now - self._lookback
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break  # Asterisk is writing this line: next time
                self._offset += len(raw)
                line = raw.decode("utf-8", errors="replace")
                at = event_time(line)
                if at is None or at < since:
                    continue
                event = parse_line(line)
                if event is not None:
                    self._channels.setdefault(event.unique_id, []).append(event)

    def _prune(self, now: datetime) -> None:
        """Forget settled calls, and channels with nothing new for `keep`."""
        for call_id in self._settled:
            self._channels.pop(call_id, None)
        stale = now - self._keep
        for channel_id in [c for c, events in self._channels.items() if events[-1].at < stale]:
            del self._channels[channel_id]
        self._settled.clear()
