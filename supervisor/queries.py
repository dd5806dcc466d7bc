"""Read queries of the console over the call records (db/migrations 001-003): the searchable
call log, a call's page, a number's history, callbacks, blocks, the dispositions owed and
today's figures."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from db.calllog import CallerFlag, CallRow, get_call, location_text
from db.events import RECORDING_FAILED, SOURCE_OPERATOR
from db.reports import CallStats, Period, call_stats
from siaga.config import Config
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
            location=location_text(row["location"]),
            operator_id=row["operator_id"],
            at=row["at"],
        )
        for row in rows
    ]


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


# A `call_connected` (e) of operator $1 that a `hung_up_at_once` of theirs did not take back (a
# pocket answer, db/functions/refresh_calls.sql): the ACD put the caller back in line, no part
# of the call was theirs and no disposition is owed for it.
def _not_a_ghost(operator: str) -> str:
    return (
        "NOT EXISTS (SELECT 1 FROM call_events g WHERE g.call_id = e.call_id"
        f" AND g.operator_id = {operator} AND g.kind = 'offer_failed'"
        " AND g.data ->> 'reason' = 'hung_up_at_once' AND g.at >= e.at)"
    )


_NOT_A_GHOST = _not_a_ghost("$1")


async def awaiting_disposition(db: Db, operator_id: str, *, hours: int = 12) -> CallRow | None:
    """The latest call the operator handled (a `call_connected` of theirs: answered, or joined
    as a colleague) still without their disposition: one disposition per operator per call."""
    call_id: str | None = await db.fetchval(
        "SELECT e.call_id FROM call_events e WHERE e.operator_id = $1"
        " AND e.kind = 'call_connected' AND e.at > now() - make_interval(hours => $2)"
        f" AND {_NOT_A_GHOST}"
        " AND NOT EXISTS (SELECT 1 FROM dispositions d"
        "   WHERE d.call_id = e.call_id AND d.operator_id = $1)"
        " ORDER BY e.at DESC, e.event_id DESC LIMIT 1",
        operator_id,
        hours,
    )
    return None if call_id is None else await get_call(db, call_id)


async def today_stats(db: Db, day: date, tz: str, thresholds: tuple[float, ...]) -> list[CallStats]:
    """The total first, then one row per category, then per route (report_calls,
    db/functions/reports.sql): the overflow route counts the calls overflowed today."""
    stats = await call_stats(db, Period.day(day, tz), tz=tz, thresholds=thresholds or (10.0,))
    return [s for s in stats if s.scope in ("total", "category", "route")]


# -- the disposition and callback workflow ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwedDisposition:
    """A call the operator was connected to, their part of it over, with no disposition of
    theirs yet."""

    call_id: str
    caller_number: str | None
    category: str | None
    connected_at: datetime | None
    ended_at: datetime | None  # the call's end, or their hand-over; None: going on without them


async def owed_dispositions(
    db: Db,
    operator_id: str,
    *,
    on_call: str | None = None,
    left: Sequence[str] = (),
    hours: int = 12,
) -> list[OwedDisposition]:
    """Oldest first: every call the operator was connected to (`call_connected`) within `hours`
    whose part of theirs is over, with no disposition of theirs yet: one per operator per call,
    as the ACD's disposition rule counts them. Their part is over when the call ended, when
    they handed it over (`call_transferred` by them), or when the live centre has it going on
    without them (`left`: a colleague who left again is recorded nowhere else); never while
    they are on it (`on_call`)."""
    rows = await db.fetch(
        "SELECT c.call_id, c.caller_number, c.category, c.connected_at,"
        "  coalesce(c.ended_at, (SELECT max(t.at) FROM call_events t WHERE t.call_id = c.call_id"
        "    AND t.operator_id = $1 AND t.kind = 'call_transferred')) AS ended_at"
        " FROM calls c"
        " WHERE c.call_id IN (SELECT e.call_id FROM call_events e WHERE e.operator_id = $1"
        "   AND e.kind = 'call_connected' AND e.at > now() - make_interval(hours => $2)"
        f"  AND {_NOT_A_GHOST})"
        " AND c.call_id IS DISTINCT FROM $3"
        " AND (c.ended_at IS NOT NULL OR c.call_id = ANY($4::text[])"
        "   OR EXISTS (SELECT 1 FROM call_events t WHERE t.call_id = c.call_id"
        "     AND t.operator_id = $1 AND t.kind = 'call_transferred'))"
        " AND NOT EXISTS (SELECT 1 FROM dispositions d"
        "   WHERE d.call_id = c.call_id AND d.operator_id = $1)"
        " ORDER BY ended_at NULLS LAST, call_id",
        operator_id,
        hours,
        on_call,
        list(left),
    )
    return [OwedDisposition(**dict(row)) for row in rows]


async def owed_dispositions_by_operator(
    db: Db, start: datetime, end: datetime
) -> list[tuple[str, int]]:
    """(operator, calls) for the connections that began in [start, end): the same rule as
    `owed_dispositions`, one per operator per call, their part recorded as over (the call ended
    or they handed it over), no disposition of theirs."""
    rows = await db.fetch(
        "SELECT e.operator_id, count(DISTINCT e.call_id) AS calls"
        " FROM call_events e JOIN calls c USING (call_id)"
        " WHERE e.kind = 'call_connected' AND e.at >= $1 AND e.at < $2"
        f" AND {_not_a_ghost('e.operator_id')}"
        " AND (c.ended_at IS NOT NULL OR EXISTS (SELECT 1 FROM call_events t"
        "   WHERE t.call_id = e.call_id AND t.operator_id = e.operator_id"
        "   AND t.kind = 'call_transferred'))"
        " AND NOT EXISTS (SELECT 1 FROM dispositions d"
        "   WHERE d.call_id = e.call_id AND d.operator_id = e.operator_id)"
        " GROUP BY e.operator_id ORDER BY e.operator_id",
        start,
        end,
    )
    return [(row["operator_id"], int(row["calls"])) for row in rows]


# The callbacks still open, one entry per number: an abandon is open while pending or claimed,
# and closed by a callback of the same number done after it. Callers who hung up within
# $1 seconds of arriving are left out. An entry is its number's first open abandon (a new one
# merges into it: counted, its time kept as the latest), its category the most urgent of them
# (the call's recorded priority, else its category's: $4 codes, $5 priorities).
_OPEN_CALLBACKS = """
    WITH open AS (
        SELECT b.call_id, c.caller_number, c.category,
               coalesce(c.priority, cp.priority) AS priority, b.abandoned_at, b.status, b.owner,
               coalesce(c.caller_number, b.call_id) AS number_key
        FROM callbacks b JOIN calls c USING (call_id)
        LEFT JOIN unnest($4::text[], $5::int[]) AS cp (code, priority) ON cp.code = c.category
        WHERE b.status IN ('pending', 'claimed')
          AND NOT (c.arrived_at IS NOT NULL AND b.abandoned_at IS NOT NULL
                   AND b.abandoned_at - c.arrived_at < make_interval(secs => $1))
          AND NOT EXISTS (
              SELECT 1 FROM callbacks done JOIN calls dc USING (call_id)
              WHERE dc.caller_number = c.caller_number AND done.status = 'done'
                AND done.updated_at >= b.abandoned_at)
    ), grouped AS (
        SELECT o.*,
               row_number() OVER (PARTITION BY number_key
                                  ORDER BY abandoned_at NULLS LAST, call_id) AS n,
               count(*) OVER (PARTITION BY number_key) AS abandons,
               max(abandoned_at) OVER (PARTITION BY number_key) AS latest_at,
               min(priority) OVER (PARTITION BY number_key) AS top_priority,
               array_agg(call_id) OVER (PARTITION BY number_key) AS call_ids,
               first_value(category) OVER (
                   PARTITION BY number_key ORDER BY priority NULLS LAST, abandoned_at
                   ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS top_category
        FROM open o
    )
"""


@dataclass(frozen=True, slots=True)
class OpenCallback:
    """One number's open callback: its first open abandon stands for all of them."""

    call_id: str
    caller_number: str | None
    category: str | None
    priority: int | None
    abandoned_at: datetime | None  # the first open abandon: the entry's age
    latest_at: datetime | None  # the latest abandon merged into it
    abandons: int
    status: str
    owner: str | None
    called_again: bool  # the number got through to an operator since the latest abandon
    call_ids: tuple[str, ...]  # every open abandon merged into the entry


@dataclass(frozen=True, slots=True)
class CallbackRules:
    """What the list needs of siaga.toml: `[callbacks] min_hangup_seconds`, and each
    category's priority (code -> priority) for calls recorded without one."""

    min_hangup_seconds: float
    priorities: Mapping[str, int]

    @classmethod
    def of(cls, config: Config) -> CallbackRules:
        return cls(
            config.callbacks.min_hangup_seconds, {c.code: c.priority for c in config.categories}
        )


async def open_callbacks(db: Db, rules: CallbackRules, *, limit: int = 100) -> list[OpenCallback]:
    """One entry per number, most urgent category first, then the oldest."""
    return await _open_callbacks(db, rules, None, limit)


async def open_callback(db: Db, rules: CallbackRules, call_id: str) -> OpenCallback | None:
    """The open entry `call_id` stands for or is merged into, if any."""
    found = await _open_callbacks(db, rules, call_id, 1)
    return found[0] if found else None


async def _open_callbacks(
    db: Db, rules: CallbackRules, call_id: str | None, limit: int
) -> list[OpenCallback]:
    rows = await db.fetch(
        _OPEN_CALLBACKS + "SELECT g.call_id, g.caller_number, g.top_category AS category,"
        " g.top_priority AS priority, g.abandoned_at, g.latest_at, g.abandons, g.status, g.owner,"
        " g.call_ids, EXISTS (SELECT 1 FROM calls later"
        "   WHERE later.caller_number = g.caller_number AND later.outcome = 'answered'"
        "   AND later.arrived_at > g.latest_at) AS called_again"
        " FROM grouped g WHERE g.n = 1 AND ($3::text IS NULL OR $3 = ANY (g.call_ids))"
        " ORDER BY g.top_priority NULLS LAST, g.abandoned_at NULLS LAST, g.call_id LIMIT $2",
        float(rules.min_hangup_seconds),
        limit,
        call_id,
        list(rules.priorities),
        list(rules.priorities.values()),
    )
    return [
        OpenCallback(
            call_id=row["call_id"],
            caller_number=row["caller_number"],
            category=row["category"],
            priority=row["priority"],
            abandoned_at=row["abandoned_at"],
            latest_at=row["latest_at"],
            abandons=row["abandons"],
            status=row["status"],
            owner=row["owner"],
            called_again=row["called_again"],
            call_ids=tuple(sorted(row["call_ids"])),
        )
        for row in rows
    ]
