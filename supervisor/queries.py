"""Read queries of the console over the call records (db/migrations 001-003): the searchable
call log, a call's page, a number's history, callbacks, blocks and today's figures."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from db.calllog import CallerFlag, CallRow, get_call
from db.events import RECORDING_FAILED, SOURCE_OPERATOR
from db.reports import CallStats, Period, call_stats
from supervisor.store import Db

BLOCK_FLAG = "blocked"  # caller_flags.flag of a block (screening marks such calls "blocked")
FLAG_CHOICES = (
    "silent",
    "cannot_speak",
    "repeat",
    "blocked",
    "fallback",
    "overflow",
    RECORDING_FAILED,
)


@dataclass(frozen=True, slots=True)
class Disposition:
    verdict: str | None
    notes: str | None
    location: str | None
    operator_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class HistoryCall:
    call_id: str
    arrived_at: datetime | None
    category: str | None
    outcome: str
    verdict: str | None
    notes: str | None


@dataclass(frozen=True, slots=True)
class Classification:
    """A call's latest `call_classified`: the category it has now, and who set it."""

    category: str | None
    by_operator: bool  # set on the console (by the call's operator or a supervisor), not the IVR


@dataclass(frozen=True, slots=True)
class Callback:
    call_id: str
    caller_number: str | None
    category: str | None
    abandoned_at: datetime | None
    status: str
    owner: str | None
    called_again: bool  # the number got through to an operator since


async def dispositions(db: Db, call_id: str) -> list[Disposition]:
    """Newest first: the first one is the call's verdict, the others its corrections' past."""
    rows = await db.fetch(
        "SELECT verdict, notes, location::text AS location, operator_id, at FROM dispositions"
        " WHERE call_id = $1 ORDER BY at DESC, disposition_id DESC",
        call_id,
    )
    return [
        Disposition(
            verdict=row["verdict"],
            notes=row["notes"],
            location=_location_text(row["location"]),
            operator_id=row["operator_id"],
            at=row["at"],
        )
        for row in rows
    ]


def _location_text(raw: str | None) -> str | None:
    if raw is None:
        return None
    value = json.loads(raw)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


async def number_history(
    db: Db, number: str, *, exclude: str | None = None, limit: int = 5
) -> list[HistoryCall]:
    rows = await db.fetch(
        "SELECT c.call_id, c.arrived_at, c.category, c.outcome, v.verdict, d.notes"
        " FROM calls c LEFT JOIN call_verdicts v USING (call_id)"
        " LEFT JOIN dispositions d ON d.call_id = c.call_id AND d.at = v.at"
        " AND d.verdict IS NOT DISTINCT FROM v.verdict"
        " WHERE c.caller_number = $1 AND c.call_id IS DISTINCT FROM $2"
        " ORDER BY c.arrived_at DESC NULLS LAST LIMIT $3",
        number,
        exclude,
        limit,
    )
    return [
        HistoryCall(
            call_id=row["call_id"],
            arrived_at=row["arrived_at"],
            category=row["category"],
            outcome=row["outcome"],
            verdict=row["verdict"],
            notes=row["notes"],
        )
        for row in rows
    ]


async def repeat_count(db: Db, number: str, *, exclude: str | None, hours: int = 24) -> int:
    """Earlier calls from this number within `hours`."""
    count: int = await db.fetchval(
        "SELECT count(*) FROM calls WHERE caller_number = $1 AND call_id IS DISTINCT FROM $2"
        " AND arrived_at > now() - make_interval(hours => $3)",
        number,
        exclude,
        hours,
    )
    return count


async def active_blocks(db: Db, number: str | None = None) -> list[CallerFlag]:
    rows = await db.fetch(
        "SELECT flag_id, number, flag, reason, set_by, set_at, expires_at"
        " FROM caller_flags_active WHERE flag = $1 AND ($2::text IS NULL OR number = $2)"
        " ORDER BY set_at DESC",
        BLOCK_FLAG,
        number,
    )
    return [CallerFlag(**dict(row)) for row in rows]


async def block_exists(db: Db, flag_id: uuid.UUID) -> bool:
    found: bool = await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM caller_flags_active WHERE flag_id = $1 AND flag = $2)",
        flag_id,
        BLOCK_FLAG,
    )
    return found


async def callbacks(db: Db, *, limit: int = 100) -> list[Callback]:
    rows = await db.fetch(
        "SELECT b.call_id, c.caller_number, c.category, b.abandoned_at, b.status, b.owner,"
        " EXISTS (SELECT 1 FROM calls later WHERE later.caller_number = c.caller_number"
        "   AND later.arrived_at > c.arrived_at AND later.outcome = 'answered') AS called_again"
        " FROM callbacks b JOIN calls c USING (call_id)"
        " WHERE b.status IN ('pending', 'claimed')"
        " ORDER BY b.abandoned_at DESC NULLS LAST LIMIT $1",
        limit,
    )
    return [
        Callback(
            call_id=row["call_id"],
            caller_number=row["caller_number"],
            category=row["category"],
            abandoned_at=row["abandoned_at"],
            status=row["status"],
            owner=row["owner"],
            called_again=row["called_again"],
        )
        for row in rows
    ]


async def callback_number(db: Db, call_id: str) -> str | None:
    number: str | None = await db.fetchval(
        "SELECT c.caller_number FROM callbacks b JOIN calls c USING (call_id) WHERE b.call_id = $1",
        call_id,
    )
    return number


async def operator_handled(db: Db, call_id: str, operator_id: str) -> bool:
    """The operator was connected to this call (the recorded truth, not the live state)."""
    found: bool = await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM call_events WHERE call_id = $1 AND operator_id = $2"
        " AND kind = 'call_connected')",
        call_id,
        operator_id,
    )
    return found


async def classification(db: Db, call_id: str) -> Classification | None:
    """The latest classification on record (the one `calls.category` is derived from)."""
    row = await db.fetchrow(
        "SELECT data ->> 'category' AS category, data ->> 'source' AS source"
        " FROM call_events WHERE call_id = $1 AND kind = 'call_classified'"
        " ORDER BY at DESC, event_id DESC LIMIT 1",
        call_id,
    )
    if row is None:
        return None
    return Classification(row["category"], row["source"] == SOURCE_OPERATOR)


async def awaiting_disposition(db: Db, operator_id: str, *, hours: int = 12) -> CallRow | None:
    """The operator's latest answered call still without a disposition."""
    call_id: str | None = await db.fetchval(
        "SELECT c.call_id FROM calls c WHERE c.operator_id = $1"
        " AND c.connected_at > now() - make_interval(hours => $2)"
        " AND NOT EXISTS (SELECT 1 FROM dispositions d WHERE d.call_id = c.call_id)"
        " ORDER BY c.connected_at DESC LIMIT 1",
        operator_id,
        hours,
    )
    return None if call_id is None else await get_call(db, call_id)


async def today_stats(db: Db, day: date, tz: str, thresholds: tuple[float, ...]) -> list[CallStats]:
    """The total first, then one row per category, then per route (report_calls,
    db/functions/reports.sql): the overflow route counts the calls overflowed today."""
    stats = await call_stats(db, Period.day(day, tz), tz=tz, thresholds=thresholds or (10.0,))
    return [s for s in stats if s.scope in ("total", "category", "route")]
