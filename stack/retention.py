"""Recording retention: a call's recording is deleted once it is older than its category keeps
it (`[recordings]` in siaga.toml), unless it is under legal hold.

`due` is pure: the recordings found, what the records say of their calls, the holds, the
policy and the time in; the recordings to delete out. `purge` is its IO shell, run daily by
`siaga run` and by `siaga recordings purge`: each deletion goes into the console's audit
(action `recording_deleted`, by `retention`), with the call's category, its age and the days
kept. Holds are set and released with `siaga recordings hold|release` (audited too), kept in
the append-only table `recording_holds`.

What is never deleted: a recording under hold; one of a call still open, or whose records
are missing (the reconciliation may not have written them yet: age alone says nothing of its
category); anything in the folder that is not `<call id>.wav`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import structlog

from db.command import CommandError
from siaga.config import RecordingsConfig
from supervisor.store import AuditAction, audit

log = structlog.get_logger(__name__)

AUDIT_ROLE = "retention"
SUFFIX = ".wav"  # MixMonitor writes <call id>.wav (dialplan/templates/extensions.conf)


@dataclass(frozen=True, slots=True)
class Recording:
    call_id: str
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class CallEnd:
    category: str | None
    ended_at: datetime | None  # None: still open


@dataclass(frozen=True, slots=True)
class Deletion:
    recording: Recording
    category: str | None
    age_days: float
    kept_days: int


def due(
    recordings: Iterable[Recording],
    calls: Mapping[str, CallEnd],
    held: set[str],
    policy: RecordingsConfig,
    now: datetime,
) -> list[Deletion]:
    out = []
    for rec in recordings:
        call = calls.get(rec.call_id)
        if rec.call_id in held or call is None or call.ended_at is None:
            continue
        days = policy.days_for(call.category)
        age = now - call.ended_at
        if days > 0 and age > timedelta(days=days):
            out.append(Deletion(rec, call.category, round(age / timedelta(days=1), 1), days))
    return out


def find_recordings(folder: Path) -> list[Recording]:
    if not folder.is_dir():
        return []
    return [
        Recording(p.name.removesuffix(SUFFIX), p, p.stat().st_size)
        for p in folder.iterdir()
        if p.is_file() and p.name.endswith(SUFFIX)
    ]


@dataclass(frozen=True, slots=True)
class PurgeReport:
    examined: int
    deleted: int
    bytes_freed: int
    held: int


async def purge(
    dsn: str, folder: Path, policy: RecordingsConfig, *, now: datetime | None = None
) -> PurgeReport:
    now = now or datetime.now(UTC)
    recordings = await asyncio.to_thread(find_recordings, folder)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        ids = [r.call_id for r in recordings]
        rows = await conn.fetch(
            "SELECT call_id, category, ended_at FROM calls WHERE call_id = ANY($1::text[])", ids
        )
        calls = {r["call_id"]: CallEnd(r["category"], r["ended_at"]) for r in rows}
        held = await holds(conn, ids)
        deletions = due(recordings, calls, held, policy, now)
        freed = 0
        for deletion in deletions:
            rec = deletion.recording
            try:
                await asyncio.to_thread(rec.path.unlink)
            except FileNotFoundError:
                continue
            freed += rec.size
            await audit(
                conn,
                AuditAction.RECORDING_DELETED,
                username=None,
                role=AUDIT_ROLE,
                target=rec.call_id,
                detail={
                    "category": deletion.category,
                    "age_days": deletion.age_days,
                    "kept_days": deletion.kept_days,
                    "bytes": rec.size,
                },
            )
            log.info("retention.deleted", call_id=rec.call_id, age_days=deletion.age_days)
    finally:
        await conn.close()
    report = PurgeReport(len(recordings), len(deletions), freed, len(held))
    log.info("retention.done", **dataclasses.asdict(report))
    return report


async def holds(conn: asyncpg.Connection, call_ids: list[str] | None = None) -> set[str]:
    """The calls whose recording is held now: the latest row of each says so."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (call_id) call_id, held FROM recording_holds"
        " WHERE $1::text[] IS NULL OR call_id = ANY($1::text[])"
        " ORDER BY call_id, hold_id DESC",
        call_ids,
    )
    return {r["call_id"] for r in rows if r["held"]}


async def set_hold(dsn: str, call_id: str, *, held: bool, by: str, reason: str) -> None:
    if not reason.strip():
        raise CommandError("a reason is required (it goes into the audit)")
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction():
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT FROM calls WHERE call_id = $1)", call_id
            ):
                raise CommandError(f"no call {call_id!r} in the records")
            now_held = call_id in await holds(conn, [call_id])
            if now_held == held:
                raise CommandError(f"{call_id}: already {'held' if held else 'not held'}")
            await conn.execute(
                "INSERT INTO recording_holds (call_id, held, by_user, reason)"
                " VALUES ($1, $2, $3, $4)",
                call_id,
                held,
                by,
                reason,
            )
            await audit(
                conn,
                AuditAction.RECORDING_HELD if held else AuditAction.RECORDING_RELEASED,
                username=by,
                role=AUDIT_ROLE,
                target=call_id,
                detail={"reason": reason},
            )
    finally:
        await conn.close()


class RetentionJob:
    """`purge` at start-up and then every `interval` (a day); never takes the stack down."""

    def __init__(
        self, dsn: str, folder: Path, policy: RecordingsConfig, interval: float = 86400.0
    ) -> None:
        self._dsn, self._folder, self._policy, self._interval = dsn, folder, policy, interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await purge(self._dsn, self._folder, self._policy)
            except Exception:
                log.exception("retention.failed", folder=str(self._folder))
            await asyncio.sleep(self._interval)
