"""Queries behind `siaga calls` and the console's call log: the call log (paged, sorted, or
exported whole), one call's timeline, a number's active flags."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from db.events import JSON, Outcome
from db.queryable import Queryable

_SELECT = """
SELECT c.call_id, c.caller_number, c.caller_name, c.arrived_at, c.connected_at, c.abandoned_at,
       c.ended_at, c.category, c.priority, c.operator_id, c.outcome, c.wait_seconds,
       c.talk_seconds, c.hangup_by, c.end_reason, c.flags, c.agencies, v.verdict
FROM calls c
LEFT JOIN call_verdicts v USING (call_id)
"""
_ONE = _SELECT + "WHERE c.call_id = $1"
_WHERE = """WHERE ($1::timestamptz IS NULL OR c.arrived_at >= $1)
  AND ($2::timestamptz IS NULL OR c.arrived_at < $2)
  AND ($3::text IS NULL OR strpos(c.caller_number, $3) > 0)
  AND ($4::text IS NULL OR c.category = $4)
  AND ($5::text IS NULL OR c.operator_id = $5)
  AND ($6::text IS NULL OR c.outcome = $6)
  AND ($7::text IS NULL OR v.verdict = $7)
  AND c.flags @> $8::text[]
"""
_COUNT = "SELECT count(*) FROM calls c LEFT JOIN call_verdicts v USING (call_id)\n" + _WHERE
# The export's extra columns: the notes and incident location of the call's latest
# disposition (the one its verdict comes from, call_verdicts).
_EXPORT = (
    _SELECT.replace("v.verdict\n", "v.verdict, d.notes, d.location::text AS location\n")
    + """LEFT JOIN LATERAL (
    SELECT notes, location FROM dispositions x WHERE x.call_id = c.call_id
    ORDER BY x.at DESC, x.disposition_id DESC LIMIT 1) d ON true
"""
    + _WHERE
    # Keyset: the rows after the last one of the previous batch, newest first.
    + """  AND ($9::timestamptz IS NULL
       OR (coalesce(c.arrived_at, $12), c.call_id) < ($9, $10::text))
ORDER BY coalesce(c.arrived_at, $12) DESC, c.call_id DESC
LIMIT $11
"""
)
# Stands in for a missing arrival in the keyset: before every real one.
_NO_ARRIVAL = datetime(1970, 1, 1, tzinfo=UTC)


class CallSort(StrEnum):
    """The call log's orders: arrival time, wait, talk time (the call's duration with an
    operator), category, operator."""

    TIME = "time"
    WAIT = "wait"
    TALK = "talk"
    CATEGORY = "category"
    OPERATOR = "operator"


_SORT_COLUMN = {
    CallSort.TIME: "c.arrived_at",
    CallSort.WAIT: "c.wait_seconds",
    CallSort.TALK: "c.talk_seconds",
    CallSort.CATEGORY: "c.category",
    CallSort.OPERATOR: "c.operator_id",
}


def _calls_query(sort: CallSort, descending: bool) -> str:
    """The page query; only the whitelisted column and direction are put into the text."""
    direction = "DESC" if descending else "ASC"
    return (
        _SELECT
        + _WHERE
        + f"ORDER BY {_SORT_COLUMN[CallSort(sort)]} {direction} NULLS LAST,"
        + " c.arrived_at DESC NULLS LAST, c.call_id\nLIMIT $9 OFFSET $10\n"
    )


@dataclass(frozen=True)
class CallFilter:
    """All given conditions must hold; `number` matches any part of the number as received;
    `flags`: every listed flag is on the call."""

    since: datetime | None = None
    until: datetime | None = None
    number: str | None = None
    category: str | None = None
    operator: str | None = None
    outcome: str | None = None
    verdict: str | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallRow:
    call_id: str
    caller_number: str | None
    caller_name: str | None
    arrived_at: datetime | None
    connected_at: datetime | None
    abandoned_at: datetime | None
    ended_at: datetime | None
    category: str | None
    priority: int | None
    operator_id: str | None
    outcome: str
    wait_seconds: float | None
    talk_seconds: float | None
    hangup_by: str | None
    end_reason: str | None
    flags: tuple[str, ...]
    agencies: tuple[str, ...]
    verdict: str | None


@dataclass(frozen=True)
class ExportRow:
    """A call as the CSV export has it: with its latest disposition's notes and location."""

    call: CallRow
    notes: str | None
    location: str | None


@dataclass(frozen=True)
class TimelineEntry:
    event_id: uuid.UUID
    kind: str
    operator_id: str | None
    at: datetime
    data: dict[str, JSON]


@dataclass(frozen=True)
class CallerFlag:
    flag_id: uuid.UUID
    number: str
    flag: str
    reason: str | None
    set_by: str | None
    set_at: datetime
    expires_at: datetime | None


def _filter_args(where: CallFilter) -> tuple[object, ...]:
    return (
        where.since,
        where.until,
        where.number,
        where.category,
        where.operator,
        Outcome(where.outcome).value if where.outcome else None,
        where.verdict,
        list(where.flags),
    )


async def list_calls(
    db: Queryable,
    where: CallFilter,
    *,
    limit: int = 1000,
    offset: int = 0,
    sort: CallSort = CallSort.TIME,
    descending: bool = True,
) -> list[CallRow]:
    """One page of the matching calls; ties (and calls without the sorted value, last) in
    arrival order, newest first."""
    rows = await db.fetch(
        _calls_query(sort, descending), *_filter_args(where), limit, max(0, offset)
    )
    return [call_row(row) for row in rows]


async def count_calls(db: Queryable, where: CallFilter) -> int:
    count: int = await db.fetchval(_COUNT, *_filter_args(where))
    return count


async def export_calls(
    db: Queryable, where: CallFilter, *, batch: int = 1000
) -> AsyncIterator[ExportRow]:
    """Every matching call, newest first, with its latest notes and location, read in batches
    so that no number of calls is held in memory at once."""
    after: tuple[datetime, str] | None = None
    while True:
        rows = await db.fetch(
            _EXPORT,
            *_filter_args(where),
            after[0] if after else None,
            after[1] if after else None,
            batch,
            _NO_ARRIVAL,
        )
        for row in rows:
            yield ExportRow(call_row(row), row["notes"], location_text(row["location"]))
        if len(rows) < batch:
            return
        last = rows[-1]
        after = (last["arrived_at"] or _NO_ARRIVAL, last["call_id"])


async def get_call(db: Queryable, call_id: str) -> CallRow | None:
    rows = await db.fetch(_ONE, call_id)
    return call_row(rows[0]) if rows else None


async def call_timeline(db: Queryable, call_id: str) -> list[TimelineEntry]:
    rows = await db.fetch(
        "SELECT event_id, kind, operator_id, at, data::text AS data FROM call_events"
        " WHERE call_id = $1 ORDER BY at, seq",
        call_id,
    )
    return [
        TimelineEntry(
            event_id=row["event_id"],
            kind=row["kind"],
            operator_id=row["operator_id"],
            at=row["at"],
            data=json.loads(row["data"]),
        )
        for row in rows
    ]


async def active_caller_flags(db: Queryable, number: str) -> list[CallerFlag]:
    rows = await db.fetch(
        "SELECT flag_id, number, flag, reason, set_by, set_at, expires_at"
        " FROM caller_flags_active WHERE number = $1 ORDER BY set_at",
        number,
    )
    return [CallerFlag(**dict(row)) for row in rows]


def call_row(row: Any) -> CallRow:
    """A `calls` row (with the latest verdict as `verdict`) as a CallRow."""
    return CallRow(
        call_id=row["call_id"],
        caller_number=row["caller_number"],
        caller_name=row["caller_name"],
        arrived_at=row["arrived_at"],
        connected_at=row["connected_at"],
        abandoned_at=row["abandoned_at"],
        ended_at=row["ended_at"],
        category=row["category"],
        priority=row["priority"],
        operator_id=row["operator_id"],
        outcome=row["outcome"],
        wait_seconds=_float(row["wait_seconds"]),
        talk_seconds=_float(row["talk_seconds"]),
        hangup_by=row["hangup_by"],
        end_reason=row["end_reason"],
        flags=tuple(row["flags"]),
        agencies=tuple(row["agencies"]),
        verdict=row["verdict"],
    )


def location_text(raw: str | None) -> str | None:
    """A disposition's location (jsonb as text): a string as itself, anything else as JSON."""
    if raw is None:
        return None
    value = json.loads(raw)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def row_to_json(row: CallRow) -> dict[str, Any]:
    """The `--json` shape of a call: timestamps ISO 8601 in UTC with milliseconds."""
    out: dict[str, Any] = {}
    for key, value in row.__dict__.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat(timespec="milliseconds")
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    return out
