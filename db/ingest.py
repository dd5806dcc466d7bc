"""Committing record events: one `ingest_events(...)` call (db/functions/ingest.sql) inserts a
batch idempotently on event_id and re-derives, in the same transaction, the rows it touches.
The record writer commits its batches with `ingest`, and so does the AGI server for the few
records it must see committed at once (a block set on a caller number)."""

from __future__ import annotations

from collections.abc import Sequence

from db.events import RecordEvent
from db.queryable import Queryable

_INGEST_EVENTS = (
    "SELECT ingest_events($1::uuid[], $2::text[], $3::text[], $4::text[],"
    " $5::timestamptz[], $6::jsonb[])"
)


async def ingest(
    db: Queryable, events: Sequence[RecordEvent], *, timeout: float | None = None
) -> int:
    """Commit the events; return how many were new (the others were already recorded)."""
    inserted: int = await db.fetchval(
        _INGEST_EVENTS,
        [e.event_id for e in events],
        [e.kind.value for e in events],
        [e.call_id for e in events],
        [e.operator_id for e in events],
        [e.at for e in events],
        [e.data_json for e in events],
        timeout=timeout,
    )
    return inserted
