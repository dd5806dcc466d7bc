"""The record writer: the app hands it events; it gets them into PostgreSQL without ever making
a call wait, and without losing one when PostgreSQL is down, slow or the process crashes.

- `write(event)` appends to an in-memory queue and returns: no await, no I/O, no exception.
  Call it from the event loop's thread.
- One task takes whatever has queued (at most `max_batch`) and commits it with one
  `db.ingest.ingest(...)`: inserts are idempotent on event_id and the derived rows are
  re-computed from the events.
- It lets a batch gather for `gather_ms` after its first event. Each commit re-plans and
  re-derives the calls it touches, so committing each event as it comes cost PostgreSQL about
  four commits per call and as much CPU as the app itself (bench/README.md). `flush()`,
  `close()` and a full batch cut the wait short.
- If that fails or takes longer than `batch_ms`, the batch is appended to the journal file
  (fsync'd). From then on every new batch goes behind it in the journal, so the database
  receives events in the order they were written; the journal is replayed, oldest first, as
  soon as PostgreSQL answers again, and emptied when it is all in.
- At start-up a journal left by a crash is replayed first, for the same reason.
- An event PostgreSQL refuses as data (SQLSTATE class 22/23) is isolated from its batch and
  kept in `<journal>.rejected`; everything else counts as an outage and is retried.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from db.events import RecordEvent
from db.ingest import ingest
from db.journal import Journal

log = structlog.get_logger(__name__)

_DATA_ERROR_CLASSES = ("22", "23")


class BatchPath(StrEnum):
    DB = "db"  # committed straight to PostgreSQL
    JOURNAL = "journal"  # appended to the journal file
    REPLAY = "replay"  # committed to PostgreSQL from the journal


@dataclass(frozen=True)
class BatchReport:
    """Told to the `on_batch` hook after each batch (the benchmark measures with it)."""

    path: BatchPath
    size: int
    inserted: int  # new rows in call_events (size - inserted were already there)
    seconds: float  # time of the commit or of the append + fsync
    oldest_wait_seconds: float  # from write() of the oldest event to durable; 0 for replay


@dataclass(frozen=True)
class WriterStats:
    enqueued: int
    written: int
    spooled: int
    replayed: int
    duplicates: int
    rejected: int
    in_memory: int
    journal_backlog: bool
    db_reachable: bool


class _DataRefused(Exception):
    """PostgreSQL refused the batch's content (not an outage)."""


class RecordWriter:
    def __init__(
        self,
        dsn: str,
        spool_path: Path,
        *,
        batch_ms: int = 200,
        gather_ms: int = 100,
        max_batch: int = 1000,
        replay_timeout_s: float = 10.0,
        connect_timeout_s: float = 1.0,
        retry_min_s: float = 0.2,
        retry_max_s: float = 5.0,
        health_interval_s: float = 5.0,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._journal = Journal(spool_path)
        self._commit_timeout = batch_ms / 1000
        self._gather = gather_ms / 1000
        self._max_batch = max_batch
        self._replay_timeout = replay_timeout_s
        self._connect_timeout = connect_timeout_s
        self._retry_min = retry_min_s
        self._retry_max = retry_max_s
        self._health_interval = health_interval_s
        self._on_batch = on_batch

        self._queue: collections.deque[tuple[float, RecordEvent]] = collections.deque()
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()  # commit what is gathered now
        self._hurry_until = 0  # ... and everything enqueued up to this count
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._closing = False
        self._closed = False

        self._backlog = False  # the journal holds events not yet in PostgreSQL
        self._replay_offset = 0
        self._db_ok = False
        self._down_logged = False
        self._retry_delay = retry_min_s
        self._next_try = 0.0

        self._enqueued = 0
        self._settled = 0  # events durable (PostgreSQL or journal) or rejected
        self._written = 0
        self._spooled = 0
        self._replayed = 0
        self._duplicates = 0
        self._rejected = 0

    # -- public API --------------------------------------------------------------------------

    @property
    def db_reachable(self) -> bool:
        return self._db_ok

    @property
    def written(self) -> int:
        return self._written

    @property
    def spooled(self) -> int:
        return self._spooled

    @property
    def replayed(self) -> int:
        return self._replayed

    def stats(self) -> WriterStats:
        return WriterStats(
            enqueued=self._enqueued,
            written=self._written,
            spooled=self._spooled,
            replayed=self._replayed,
            duplicates=self._duplicates,
            rejected=self._rejected,
            in_memory=len(self._queue),
            journal_backlog=self._backlog,
            db_reachable=self._db_ok,
        )

    async def start(self) -> None:
        size = await asyncio.to_thread(self._journal.open)
        if size:
            self._backlog = True
            log.warning("journal_found_at_start", bytes=size, file=str(self._journal.path))
        self._task = asyncio.create_task(self._run(), name="record-writer")

    def write(self, event: RecordEvent) -> None:
        try:
            if self._closed:
                # Too late for the task: a synchronous append is still better than a loss.
                self._journal.append([event.to_line()])
                self._spooled += 1
                log.error("record_written_after_close", event_id=str(event.event_id))
                return
            self._queue.append((time.monotonic(), event))
            self._enqueued += 1
            self._wake.set()
            if len(self._queue) >= self._max_batch:
                self._hurry.set()
        except Exception:
            log.exception("record_write_failed", event_id=str(getattr(event, "event_id", "?")))

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every event written so far is durable: in PostgreSQL or the journal."""
        target = self._enqueued
        self._hurry_until = max(self._hurry_until, target)
        self._hurry.set()
        self._wake.set()
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(lambda: self._settled >= target)

    async def wait_replayed(self, timeout: float | None = None) -> None:
        """Wait until memory and journal are both empty: everything is in PostgreSQL."""
        async with asyncio.timeout(timeout), self._progress:
            # Settled, not merely out of memory: a batch may be in flight.
            await self._progress.wait_for(
                lambda: self._settled >= self._enqueued and not self._backlog
            )

    async def close(self, timeout: float = 10.0) -> None:
        """Make everything in memory durable, then stop. A journal backlog stays on disk for
        the next start."""
        self._closing = True
        self._hurry.set()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        self._closed = True
        # Events written between the task's end and now.
        leftovers = [event.to_line() for _, event in self._queue]
        self._queue.clear()
        if leftovers:
            await asyncio.to_thread(self._journal.append, leftovers)
            self._spooled += len(leftovers)
        await self._drop_connection()
        self._journal.close()

    # -- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._drain_memory()
                if self._closing:
                    return
                if self._backlog and time.monotonic() >= self._next_try:
                    await self._replay_chunk()
                    continue
                await self._idle()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug here must not stop the journal: log, breathe, go on.
                log.exception("record_writer_loop_error")
                await asyncio.sleep(self._retry_min)

    async def _idle(self) -> None:
        if self._backlog:
            timeout = max(0.0, self._next_try - time.monotonic())
        else:
            timeout = self._health_interval
        self._wake.clear()
        if self._queue or self._closing:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            if not self._backlog:
                await self._health_check()

    async def _gather_batch(self) -> None:
        """Wait until the oldest queued event is `gather_ms` old, unless hurried."""
        if self._backlog or len(self._queue) >= self._max_batch:
            return  # behind the journal only the order matters: no waiting there
        if self._settled >= self._hurry_until and not self._closing:
            self._hurry.clear()
        if self._hurry.is_set():
            return
        delay = self._queue[0][0] + self._gather - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), delay)

    async def _drain_memory(self) -> None:
        if self._queue:
            await self._gather_batch()
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
            try:
                await self._persist(batch)
            except asyncio.CancelledError:
                # Cancelled mid-commit: we cannot know whether it committed, so journal it
                # (a replay is idempotent) rather than lose it.
                self._journal.append([event.to_line() for _, event in batch])
                self._spooled += len(batch)
                raise
            except Exception:
                # The journal itself failed (disk full?): keep the batch in memory, retry.
                log.exception("journal_append_failed", file=str(self._journal.path))
                self._queue.extendleft(reversed(batch))
                await asyncio.sleep(self._retry_max)
                return
            await self._settle(len(batch))

    async def _persist(self, batch: list[tuple[float, RecordEvent]]) -> None:
        events = [event for _, event in batch]
        oldest = batch[0][0]
        direct = not self._backlog and time.monotonic() >= self._next_try
        if direct and await self._commit(events, BatchPath.DB, self._commit_timeout, oldest):
            return
        started = time.monotonic()
        await asyncio.to_thread(self._journal.append, [event.to_line() for event in events])
        if not self._backlog:
            log.warning("journal_spooling_started", file=str(self._journal.path))
        self._backlog = True
        self._spooled += len(events)
        self._report(BatchPath.JOURNAL, len(events), 0, started, oldest)

    async def _replay_chunk(self) -> None:
        lines, end = await asyncio.to_thread(
            self._journal.read, self._replay_offset, self._max_batch
        )
        if not lines:
            if end >= await asyncio.to_thread(self._journal.size):
                await asyncio.to_thread(self._journal.clear)
                self._replay_offset = 0
                self._backlog = False
                log.info("journal_replayed", replayed=self._replayed)
                await self._settle(0)
            return
        events: list[RecordEvent] = []
        bad: list[str] = []
        for line in lines:
            try:
                events.append(RecordEvent.from_line(line))
            except (ValueError, KeyError, TypeError):
                bad.append(line)
        if bad:
            await asyncio.to_thread(self._journal.reject, bad, "unreadable journal line")
            self._rejected += len(bad)
        if events and not await self._commit(events, BatchPath.REPLAY, self._replay_timeout):
            return
        self._replay_offset = end

    async def _commit(
        self,
        events: Sequence[RecordEvent],
        path: BatchPath,
        timeout: float,
        oldest: float | None = None,
    ) -> bool:
        """Commit events; False if PostgreSQL is unavailable (the caller journals them)."""
        started = time.monotonic()
        try:
            conn = await self._connection()
            try:
                inserted = await self._ingest(conn, events, timeout)
            except _DataRefused:
                inserted = await self._commit_one_by_one(conn, events, timeout)
        except Exception as exc:
            # Connection refused, timeout, shutdown, missing schema, or a bug: the events go
            # to the journal and are retried; no failure here may cost a record.
            await self._mark_down(exc)
            return False
        self._mark_up()
        if path is BatchPath.REPLAY:
            self._replayed += len(events)
        else:
            self._written += len(events)
        self._duplicates += len(events) - inserted
        self._report(path, len(events), inserted, started, oldest)
        return True

    async def _commit_one_by_one(
        self, conn: Any, events: Sequence[RecordEvent], timeout: float
    ) -> int:
        inserted = 0
        for event in events:
            try:
                inserted += await self._ingest(conn, [event], timeout)
            except _DataRefused as refused:
                await asyncio.to_thread(
                    self._journal.reject, [event.to_line()], f"refused by PostgreSQL: {refused}"
                )
                self._rejected += 1
        return inserted

    async def _ingest(self, conn: Any, events: Sequence[RecordEvent], timeout: float) -> int:
        try:
            return await ingest(conn, events, timeout=timeout)
        except asyncpg.PostgresError as exc:
            sqlstate = getattr(exc, "sqlstate", None) or ""
            if sqlstate[:2] in _DATA_ERROR_CLASSES:
                raise _DataRefused(f"{sqlstate} {exc}") from exc
            raise

    # -- connection --------------------------------------------------------------------------

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=self._connect_timeout,
                server_settings={"application_name": "siaga-record-writer"},
            )
        return self._conn

    async def _health_check(self) -> None:
        try:
            conn = await self._connection()
            await conn.fetchval("SELECT 1", timeout=self._connect_timeout)
        except Exception as exc:
            await self._mark_down(exc)
        else:
            self._mark_up()

    def _mark_up(self) -> None:
        if not self._db_ok:
            log.info("database_reachable")
        self._db_ok = True
        self._down_logged = False
        self._retry_delay = self._retry_min
        self._next_try = 0.0

    async def _mark_down(self, exc: BaseException) -> None:
        if not self._down_logged:
            log.warning("database_unreachable", error=f"{type(exc).__name__}: {exc}")
            self._down_logged = True
        self._db_ok = False
        self._next_try = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self._retry_max)
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    # -- bookkeeping -------------------------------------------------------------------------

    async def _settle(self, count: int) -> None:
        async with self._progress:
            self._settled += count
            self._progress.notify_all()

    def _report(
        self, path: BatchPath, size: int, inserted: int, started: float, oldest: float | None
    ) -> None:
        if self._on_batch is None:
            return
        now = time.monotonic()
        report = BatchReport(
            path=path,
            size=size,
            inserted=inserted,
            seconds=now - started,
            oldest_wait_seconds=0.0 if oldest is None else now - oldest,
        )
        try:
            self._on_batch(report)
        except Exception:
            log.exception("on_batch_hook_failed")
