"""The record writer: the app hands it events; it makes each one durable within milliseconds
and gets it into PostgreSQL without ever making a call wait, and without losing one when
PostgreSQL is down or slow, the disk is full, or the process is killed.

- `write(event)` appends to an in-memory queue and returns: no await, no I/O, no exception.
  Call it from the event loop's thread.
- The appender task (write-ahead journal, `db/journal.py`) appends whatever has queued (at
  most `max_batch`) to the journal file and fsyncs it, one group every `group_ms` (10 ms) at
  most: the first event of a group waits that long for company, so a busy centre pays one
  fsync per group, not per event. An event counts as durable (`flush()` returns) once its
  group is fsync'd.
- The commit task takes the journaled events from memory and commits them with one
  `db.ingest.ingest(...)` per batch (at most `max_batch`): inserts are idempotent on event_id
  and the derived rows are re-computed from the events. It lets a batch gather for `gather_ms`
  (100 ms) after its oldest event was written: each commit re-plans and re-derives the calls it
  touches, so committing each event as it came cost PostgreSQL about four commits per call and
  as much CPU as the app itself (bench/README.md). `close()`, `wait_replayed()` and a full
  batch cut the wait short.
- Once everything in the journal is in PostgreSQL, the journal is truncated; under a steady
  load, where that moment may never come, the committed part is cut off (the uncommitted tail
  copied to a new file) whenever it passes `cut_bytes` (1 MiB). The journal thus holds at most
  about `cut_bytes` plus what PostgreSQL has not taken yet.
- If a commit fails or takes longer than `batch_ms` (1 s: the events are durable already, so
  only a PostgreSQL that hangs is worth giving up on), PostgreSQL is behind: the commit task
  drops the journaled events from memory and replays the journal file from the first event not
  yet committed, oldest first, as soon as PostgreSQL answers again (`replay_timeout_s` per batch),
  while new events keep going into the journal behind them; so the database receives events in
  the order they were written, and the memory stays small during an outage.
- At start-up a journal left by a crash is replayed first, for the same reason. Replaying
  commits again what a cut had not yet dropped; event_id makes that harmless.
- An event PostgreSQL refuses as data (SQLSTATE class 22/23) is isolated from its batch and
  kept in `<journal>.rejected`; everything else counts as an outage and is retried.
- If the journal cannot be appended to (disk full, I/O error, read-only), the writer logs it,
  says so in `stats()` (`journal_ok`, `journal_error`) and commits straight from memory to
  PostgreSQL (`BatchPath.DIRECT`), retrying the journal with the same back-off as the database.
  If PostgreSQL is unavailable too, the events stay in memory, in order, until either takes
  them: not bounded, because dropping a record is worse than memory, and a centre writes tens
  of events per second (an hour is ~100,000 events, about 70 MB); `in_memory` shows it.

What a SIGKILL (or a power cut) loses: at most the events written in the last `group_ms` plus
the fsync in progress, i.e. those `flush()` would still have been waiting for; nothing already
flushed. While `journal_ok` is false, whatever is not yet in PostgreSQL. Recovery is the replay
at the next start: it runs in the background (new events are journaled meanwhile), at some
10,000 events/s on the benchmark machine (bench/bench_db.py); a journal left by a running
centre holds at most about `cut_bytes` (~5,000 events: about half a second), one left by an
outage whatever PostgreSQL missed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from db.events import RecordEvent
from db.hosts import HostRotation
from db.ingest import ingest
from db.journal import Journal

log = structlog.get_logger(__name__)

_DATA_ERROR_CLASSES = ("22", "23")


class BatchPath(StrEnum):
    JOURNAL = "journal"  # appended to the journal and fsync'd: durable
    DB = "db"  # committed to PostgreSQL from memory (already in the journal)
    DIRECT = "direct"  # committed to PostgreSQL from memory, the journal failing
    REPLAY = "replay"  # committed to PostgreSQL from the journal file


@dataclass(frozen=True)
class BatchReport:
    """Told to the `on_batch` hook after each batch (the benchmark measures with it)."""

    path: BatchPath
    size: int
    inserted: int  # new rows in call_events (size - inserted were already there)
    seconds: float  # time of the commit or of the append + fsync
    oldest_wait_seconds: float  # from write() of the oldest event to now; 0 for replay


@dataclass(frozen=True)
class WriterStats:
    enqueued: int
    written: int  # committed from memory (DB and DIRECT)
    spooled: int  # appended to the journal
    replayed: int  # committed from the journal file
    duplicates: int
    rejected: int
    in_memory: int  # events not yet journaled, or journaled and waiting for their commit
    journal_backlog: bool  # PostgreSQL is behind: it gets the journal file replayed
    db_reachable: bool
    journal_ok: bool  # false: the last append failed; events go to PostgreSQL only
    journal_error: str | None  # the last journal failure, if any
    journal_bytes: int  # the journal file's size


class _DataRefused(Exception):
    """PostgreSQL refused the batch's content (not an outage)."""


class _Retry:
    """When to try again after a failure: a delay doubling from `low` up to `high`."""

    def __init__(self, low: float, high: float) -> None:
        self._low = low
        self._high = high
        self._delay = low
        self.next_try = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_try

    def failed(self) -> None:
        self.next_try = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self._high)

    def succeeded(self) -> None:
        self._delay = self._low
        self.next_try = 0.0


class RecordWriter:
    def __init__(
        self,
        dsn: str,
        spool_path: Path,
        *,
        group_ms: float = 10,
        batch_ms: int = 1000,
        gather_ms: int = 100,
        max_batch: int = 1000,
        cut_bytes: int = 1 << 20,
        replay_timeout_s: float = 10.0,
        connect_timeout_s: float = 1.0,
        retry_min_s: float = 0.2,
        retry_max_s: float = 5.0,
        health_interval_s: float = 5.0,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> None:
        self._dsn = dsn
        # Several hosts (a primary and its standby, docs/ha.md): tried in turn.
        self._journal = Journal(spool_path)
        self._group = group_ms / 1000
        self._commit_timeout = batch_ms / 1000
        self._gather = gather_ms / 1000
        self._max_batch = max_batch
        self._cut_bytes = cut_bytes
        self._replay_timeout = replay_timeout_s
        self._connect_timeout = connect_timeout_s
        self._hosts = HostRotation(
            dsn,
            timeout=connect_timeout_s,
            server_settings={"application_name": "siaga-record-writer"},
        )
        self._retry_min = retry_min_s
        self._health_interval = health_interval_s
        self._on_batch = on_batch

        # Written, not yet journaled (nor, the journal failing, committed).
        self._pending: collections.deque[tuple[float, RecordEvent]] = collections.deque()
        # Journaled, not yet committed, with the journal offset after each; empty while the
        # journal file is being replayed (it holds them).
        self._journaled: collections.deque[tuple[float, RecordEvent, int]] = collections.deque()
        # Held by whichever task took events from _pending until they are journaled or
        # committed, so that neither overtakes the other.
        self._pending_lock = asyncio.Lock()
        self._append_wake = asyncio.Event()
        self._append_hurry = asyncio.Event()  # not set by every write: groups wait for it
        self._commit_wake = asyncio.Event()
        self._commit_hurry = asyncio.Event()
        self._flush_until = 0  # append (or commit) at once every event enqueued up to this count
        self._replay_waiters = 0  # wait_replayed() callers: commit at once
        self._progress = asyncio.Condition()
        self._appender: asyncio.Task[None] | None = None
        self._committer: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._closing = False
        self._closed = False

        self._journal_end = 0  # journal offset after the last append this loop has seen
        self._committed = 0  # journal offset before which everything is in PostgreSQL
        self._backlog = False  # PostgreSQL gets the journal file from _committed on
        self._in_flight = 0  # events taken from memory, being journaled or committed
        self._journal_ok = True
        self._journal_error: str | None = None
        self._journal_retry = _Retry(retry_min_s, retry_max_s)
        self._db_ok = False
        self._down_logged = False
        self._db_retry = _Retry(retry_min_s, retry_max_s)

        self._enqueued = 0
        self._settled = 0  # events durable (journal or PostgreSQL) or rejected
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
            in_memory=len(self._pending) + len(self._journaled) + self._in_flight,
            journal_backlog=self._backlog,
            db_reachable=self._db_ok,
            journal_ok=self._journal_ok,
            journal_error=self._journal_error,
            journal_bytes=self._journal.end - self._journal.start,
        )

    async def start(self) -> None:
        try:
            await self._open_journal()
        except Exception as exc:
            # The app must run without its journal rather than not at all.
            self._journal_failed(exc)
        self._appender = asyncio.create_task(self._append_loop(), name="record-journal")
        self._committer = asyncio.create_task(self._commit_loop(), name="record-writer")

    def write(self, event: RecordEvent) -> None:
        try:
            if self._closed:
                # Too late for the tasks: a synchronous append is still better than a loss.
                self._journal.append([event.to_line()])
                self._spooled += 1
                log.error("record_written_after_close", event_id=str(event.event_id))
                return
            self._pending.append((time.monotonic(), event))
            self._enqueued += 1
            self._append_wake.set()
            if len(self._pending) >= self._max_batch:
                self._append_hurry.set()
            if not self._journal_ok:
                self._commit_wake.set()
        except Exception:
            log.exception("record_write_failed", event_id=str(getattr(event, "event_id", "?")))

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every event written so far is durable: in the journal (fsync'd), or in
        PostgreSQL while the journal is failing."""
        target = self._enqueued
        self._flush_until = max(self._flush_until, target)
        self._append_wake.set()
        self._append_hurry.set()
        self._commit_hurry.set()
        self._commit_wake.set()
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(lambda: self._settled >= target)

    async def wait_replayed(self, timeout: float | None = None) -> None:
        """Wait until memory and journal are both empty: everything is in PostgreSQL."""
        self._flush_until = max(self._flush_until, self._enqueued)
        self._replay_waiters += 1
        self._append_wake.set()
        self._append_hurry.set()
        self._commit_hurry.set()
        self._commit_wake.set()
        try:
            async with asyncio.timeout(timeout), self._progress:
                await self._progress.wait_for(self._all_in_db)
        finally:
            self._replay_waiters -= 1

    async def close(self, timeout: float = 10.0) -> None:
        """Journal everything in memory and try to commit it, then stop. What PostgreSQL did not
        take stays in the journal for the next start."""
        self._closing = True
        self._append_wake.set()
        self._append_hurry.set()
        self._commit_hurry.set()
        self._commit_wake.set()
        tasks = [task for task in (self._appender, self._committer) if task is not None]
        try:
            async with asyncio.timeout(timeout):
                for task in tasks:
                    await asyncio.shield(task)
        except TimeoutError:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._closed = True
        # Events written after the appender's end, or that the journal refused.
        leftovers = [event.to_line() for _, event in self._pending]
        self._pending.clear()
        if leftovers:
            try:
                await asyncio.to_thread(self._journal.append, leftovers)
                self._spooled += len(leftovers)
            except Exception:
                log.exception("records_lost_at_close", count=len(leftovers))
        if self._all_in_db() and self._journal.is_open:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self._journal.cut, self._journal.end)
        await self._drop_connection()
        self._journal.close()

    # -- the appender task: memory -> journal ------------------------------------------------

    async def _append_loop(self) -> None:
        try:
            while True:
                self._append_wake.clear()
                try:
                    if self._pending and (self._journal_ok or self._journal_retry.due()):
                        await self._gather_group()
                        await self._append_pending()
                        await self._cut_committed()
                        continue
                    if self._closing:
                        return
                    await self._cut_committed()
                    timeout = None
                    if self._pending:  # the journal is failing: try again later
                        timeout = max(0.0, self._journal_retry.next_try - time.monotonic())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._append_wake.wait(), timeout)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A bug here must not stop the journal: log, breathe, go on.
                    log.exception("record_journal_loop_error")
                    await asyncio.sleep(self._retry_min)
        finally:
            self._commit_wake.set()  # the commit task ends after this one when closing

    async def _gather_group(self) -> None:
        """Wait until the oldest pending event is `group_ms` old, unless hurried."""
        while self._pending and not (
            self._closing
            or self._settled < self._flush_until
            or len(self._pending) >= self._max_batch
        ):
            delay = self._pending[0][0] + self._group - time.monotonic()
            if delay <= 0:
                return
            self._append_hurry.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._append_hurry.wait(), delay)

    async def _append_pending(self) -> None:
        async with self._pending_lock:
            count = min(self._max_batch, len(self._pending))
            batch = [self._pending.popleft() for _ in range(count)]
            if not batch:
                return  # committed directly meanwhile
            started = time.monotonic()
            self._in_flight += len(batch)
            try:
                if not self._journal.is_open:
                    await self._open_journal()
                # Serialised in the thread too: a big group must not hold the event loop.
                ends = await asyncio.to_thread(self._append_lines, [e for _, e in batch])
            except asyncio.CancelledError:
                self._pending.extendleft(reversed(batch))
                raise
            except Exception as exc:
                self._pending.extendleft(reversed(batch))
                self._journal_failed(exc)
                return
            finally:
                self._in_flight -= len(batch)
            if not self._journal_ok:
                log.warning("journal_recovered", file=str(self._journal.path))
            self._journal_ok = True
            self._journal_retry.succeeded()
            self._journal_end = ends[-1]
            self._spooled += len(batch)
            if not self._backlog:  # else the replay reads them from the file
                self._journaled.extend(
                    (written_at, event, end)
                    for (written_at, event), end in zip(batch, ends, strict=True)
                )
                if len(self._journaled) >= self._max_batch:
                    self._commit_hurry.set()
            self._commit_wake.set()
        self._report(BatchPath.JOURNAL, len(batch), 0, started, batch[0][0])
        await self._settle(len(batch))

    def _append_lines(self, events: list[RecordEvent]) -> list[int]:
        return self._journal.append([event.to_line() for event in events])

    async def _open_journal(self) -> None:
        size = await asyncio.to_thread(self._journal.open)
        self._journal_end = self._committed = self._journal.end
        if size:
            # Left by a crash (or by a run without PostgreSQL): older than anything in memory.
            self._committed = self._journal.start
            self._journaled.clear()
            self._backlog = True
            log.warning("journal_found_at_start", bytes=size, file=str(self._journal.path))

    def _journal_failed(self, exc: BaseException) -> None:
        self._journal_error = f"{type(exc).__name__}: {exc}"
        if self._journal_ok:
            log.error(
                "journal_append_failed",
                error=self._journal_error,
                file=str(self._journal.path),
                fallback="committing straight to PostgreSQL",
            )
        self._journal_ok = False
        self._journal_retry.failed()
        self._commit_wake.set()

    async def _cut_committed(self) -> None:
        """Drop from the journal what PostgreSQL has: all of it when it has everything, else
        the committed part once it passes `cut_bytes`."""
        if self._backlog or not self._journal.is_open:
            return
        done = self._committed - self._journal.start
        if done <= 0 or (self._committed < self._journal_end and done < self._cut_bytes):
            return
        try:
            await asyncio.to_thread(self._journal.cut, self._committed)
        except OSError as exc:
            log.warning("journal_cut_failed", error=f"{type(exc).__name__}: {exc}")

    # -- the commit task: memory or journal -> PostgreSQL ------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            self._commit_wake.clear()
            try:
                if await self._commit_step():
                    continue
                if self._closing and self._appender is not None and self._appender.done():
                    return
                await self._idle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("record_writer_loop_error")
                await asyncio.sleep(self._retry_min)

    async def _commit_step(self) -> bool:
        """Commit one batch if there is one to commit now; False if there was nothing to do."""
        if not self._db_retry.due():
            return False
        if self._backlog:
            return not self._closing and await self._replay_chunk()
        if self._journaled:
            await self._gather_batch(self._journaled)
            await self._commit_journaled()
            return True
        if self._direct_due():
            await self._gather_batch(self._pending)
            await self._commit_direct()
            return True
        return False

    async def _idle(self) -> None:
        timeout = self._health_interval
        if not self._db_retry.due():
            timeout = self._db_retry.next_try - time.monotonic()
        try:
            await asyncio.wait_for(self._commit_wake.wait(), max(0.0, timeout))
        except TimeoutError:
            idle = not (self._backlog or self._journaled or self._pending or self._closing)
            if idle and self._db_retry.due():
                await self._health_check()

    async def _gather_batch(self, queue: collections.deque[Any]) -> None:
        """Wait until the oldest queued event is `gather_ms` old, unless hurried."""
        while queue and not self._commit_hurried(queue):
            delay = queue[0][0] + self._gather - time.monotonic()
            if delay <= 0:
                return
            self._commit_hurry.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._commit_hurry.wait(), delay)

    def _commit_hurried(self, queue: Sized) -> bool:
        direct = queue is self._pending and self._settled < self._flush_until
        return self._closing or self._replay_waiters > 0 or len(queue) >= self._max_batch or direct

    async def _commit_journaled(self) -> None:
        count = min(self._max_batch, len(self._journaled))
        batch = [self._journaled.popleft() for _ in range(count)]
        if not batch:
            return
        self._in_flight += len(batch)
        try:
            events = [event for _, event, _ in batch]
            ok = await self._commit(events, BatchPath.DB, self._commit_timeout, batch[0][0])
        finally:
            self._in_flight -= len(batch)
        if ok:
            self._committed = batch[-1][2]
            self._append_wake.set()  # the appender cuts the journal
        else:
            # They are all in the journal: PostgreSQL gets them from there, in order.
            self._journaled.clear()
            self._backlog = True
            log.warning("journal_backlog_started", file=str(self._journal.path))
        await self._settle(0)

    def _direct_due(self, locked: bool = False) -> bool:
        """Events the journal refused, with nothing older to commit first."""
        return bool(
            self._pending
            and not self._journal_ok
            and not self._journaled
            and not self._backlog
            and (locked or not self._pending_lock.locked())
        )

    async def _commit_direct(self) -> None:
        async with self._pending_lock:
            if not self._direct_due(locked=True):
                return  # the journal took them, or others, meanwhile
            count = min(self._max_batch, len(self._pending))
            batch = [self._pending.popleft() for _ in range(count)]
            events = [event for _, event in batch]
            self._in_flight += len(batch)
            try:
                # Nothing else holds these events: give PostgreSQL the replay's patience.
                ok = await self._commit(events, BatchPath.DIRECT, self._replay_timeout, batch[0][0])
            except asyncio.CancelledError:
                self._pending.extendleft(reversed(batch))
                raise
            finally:
                self._in_flight -= len(batch)
            if not ok:
                self._pending.extendleft(reversed(batch))
        if ok:
            await self._settle(len(batch))

    async def _replay_chunk(self) -> bool:
        # Not past the appends this loop has seen: those in flight go to memory or here, next.
        until = self._journal_end
        lines, end = await asyncio.to_thread(
            self._journal.read, self._committed, self._max_batch, until
        )
        if not lines:
            if end < until:
                # Only a hand on the file can do this; what is missing cannot be replayed.
                log.error("journal_shorter_than_written", missing_from=end, to=until)
                end = until
            self._committed = end
            if end < self._journal_end:
                return True  # appended while this was read: replay on
            self._backlog = False
            log.info("journal_replayed", replayed=self._replayed)
            self._append_wake.set()  # the appender cuts the journal
            await self._settle(0)
            return True
        events: list[RecordEvent] = []
        bad: list[str] = []
        for line in lines:
            try:
                events.append(RecordEvent.from_line(line))
            except (ValueError, KeyError, TypeError):
                bad.append(line)
        if bad:
            await self._reject(bad, "unreadable journal line")
        if events and not await self._commit(events, BatchPath.REPLAY, self._replay_timeout):
            return False
        self._committed = end
        return True

    async def _commit(
        self,
        events: Sequence[RecordEvent],
        path: BatchPath,
        timeout: float,
        oldest: float | None = None,
    ) -> bool:
        """Commit events; False if PostgreSQL is unavailable (the caller keeps them)."""
        started = time.monotonic()
        try:
            conn = await self._connection()
            try:
                inserted = await self._ingest(conn, events, timeout)
            except _DataRefused:
                inserted = await self._commit_one_by_one(conn, events, timeout)
        except Exception as exc:
            # Connection refused, timeout, shutdown, missing schema, or a bug: the events are
            # retried; no failure here may cost a record.
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
                await self._reject([event.to_line()], f"refused by PostgreSQL: {refused}")
        return inserted

    async def _reject(self, lines: list[str], reason: str) -> None:
        self._rejected += len(lines)
        try:
            await asyncio.to_thread(self._journal.reject, lines, reason)
        except OSError:
            # The disk is failing too: the log is the last place left for them.
            log.exception("rejected_lines_not_saved", reason=reason, lines=lines)

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
            self._conn = await self._connect()
        return self._conn

    async def _connect(self) -> Any:
        # Each host with its own timeout, the primary of last time first (db/hosts.py).
        return await self._hosts.connect()

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
        self._db_retry.succeeded()

    async def _mark_down(self, exc: BaseException) -> None:
        if not self._down_logged:
            log.warning("database_unreachable", error=f"{type(exc).__name__}: {exc}")
            self._down_logged = True
        self._db_ok = False
        self._db_retry.failed()
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    # -- bookkeeping -------------------------------------------------------------------------

    def _all_in_db(self) -> bool:
        return (
            self._settled >= self._enqueued
            and not self._pending
            and not self._journaled
            and not self._in_flight
            and not self._backlog
        )

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
