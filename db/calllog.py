"""Queries behind `siaga calls`: the call log, one call's timeline, a number's active flags."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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
_CALLS = (
    _SELECT
    + """WHERE ($1::timestamptz IS NULL OR c.arrived_at >= $1)
  AND ($2::timestamptz IS NULL OR c.arrived_at < $2)
  AND ($3::text IS NULL OR strpos(c.caller_number, $3) > 0)
  AND ($4::text IS NULL OR c.category = $4)
  AND ($5::text IS NULL OR c.operator_id = $5)
  AND ($6::text IS NULL OR c.outcome = $6)
  AND ($7::text IS NULL OR v.verdict = $7)
  AND c.flags @> $8::text[]
ORDER BY c.arrived_at DESC NULLS LAST, c.call_id
LIMIT $9
"""
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


async def list_calls(db: Queryable, where: CallFilter, *, limit: int = 1000) -> list[CallRow]:
    rows = await db.fetch(
        _CALLS,
        where.since,
        where.until,
        where.number,
        where.category,
        where.operator,
        Outcome(where.outcome).value if where.outcome else None,
        where.verdict,
        list(where.flags),
        limit,
    )
    return [call_row(row) for row in rows]


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
