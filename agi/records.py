"""Reading and writing the records screening and blocking need.

Writes go through `db.ingest.ingest`, as the record writer's do: a block set here is an event in
`call_events` like any other, audited and never deleted, and the `caller_flags` row is derived
from it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from agi.screening import ActiveBlock, CallerFacts, ScreeningSettings, number_variants
from db.events import RecordEvent, caller_flag_cleared, caller_flag_set
from db.hosts import create_pool
from db.ingest import ingest
from db.queryable import Queryable

BLOCKED = "blocked"

# One round trip. Verdicts are each call's latest disposition (like the call_verdicts view),
# looked up through the number's own calls so that the index on caller_number does the work.
_FACTS = """
WITH recent AS (
    SELECT call_id, arrived_at FROM calls
    WHERE caller_number = ANY($1::text[])
      AND arrived_at > $2::timestamptz - make_interval(days => $3::int)
),
verdicts AS (
    SELECT DISTINCT ON (d.call_id) d.call_id, d.verdict, r.arrived_at
    FROM dispositions d JOIN recent r USING (call_id)
    ORDER BY d.call_id, d.at DESC, d.disposition_id DESC
),
day AS (SELECT $2::timestamptz - interval '24 hours' AS since)
SELECT
    (SELECT count(*) FROM recent, day WHERE arrived_at > day.since) AS calls_24h,
    (SELECT count(*) FROM verdicts, day
        WHERE verdict = 'prank' AND arrived_at > day.since) AS prank_24h,
    (SELECT count(*) FROM verdicts, day
        WHERE verdict = 'silent' AND arrived_at > day.since) AS silent_24h,
    (SELECT count(*) FROM verdicts WHERE verdict = 'prank') AS prank_history,
    (SELECT count(*) FROM verdicts WHERE verdict = 'silent') AS silent_history,
    (SELECT language FROM calls
        WHERE caller_number = ANY($1::text[]) AND language IS NOT NULL
        ORDER BY arrived_at DESC NULLS LAST LIMIT 1) AS last_language,
    b.flag_id, b.reason, b.set_by, b.expires_at
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT flag_id, reason, set_by, expires_at FROM caller_flags
    WHERE number = ANY($1::text[]) AND flag = 'blocked' AND cleared_at IS NULL
      AND (expires_at IS NULL OR expires_at > $2::timestamptz)
    ORDER BY expires_at DESC NULLS FIRST
    LIMIT 1
) AS b ON true
"""

_BLOCKS = """
SELECT flag_id, number, reason, set_by, set_at, expires_at, cleared_at, cleared_by, clear_reason
FROM caller_flags
WHERE flag = 'blocked'
  AND ($1::text[] IS NULL OR number = ANY($1::text[]))
  AND ($2::bool OR (cleared_at IS NULL AND (expires_at IS NULL OR expires_at > $3::timestamptz)))
ORDER BY set_at DESC
LIMIT $4
"""


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """The AGI server's statements run one by one in autocommit and leave no session state
    (no SET, LISTEN, cursor or advisory lock) behind; asyncpg still rolls back a transaction
    left open before it calls this."""


async def agi_pool(dsn: str) -> asyncpg.Pool:
    """The AGI server's connections. asyncpg's default reset on release (RESET ALL, UNLISTEN,
    CLOSE ALL, advisory unlock) is a round trip to PostgreSQL for every screened call."""
    return await create_pool(dsn, min_size=0, max_size=4, reset=_nothing_to_reset)


@dataclass(frozen=True, slots=True)
class Block:
    flag_id: uuid.UUID
    number: str
    reason: str | None
    set_by: str | None
    set_at: datetime
    expires_at: datetime | None
    cleared_at: datetime | None = None
    cleared_by: str | None = None
    clear_reason: str | None = None

    def active(self, now: datetime) -> bool:
        return self.cleared_at is None and (self.expires_at is None or self.expires_at > now)


async def caller_facts(
    db: Queryable, number: str, now: datetime, settings: ScreeningSettings
) -> CallerFacts:
    row = await db.fetchrow(_FACTS, number_variants(number), now, settings.history_days)
    block = (
        ActiveBlock(row["flag_id"], row["reason"], row["set_by"], row["expires_at"])
        if row["flag_id"] is not None
        else None
    )
    return CallerFacts(
        calls_24h=row["calls_24h"],
        prank_24h=row["prank_24h"],
        silent_24h=row["silent_24h"],
        prank_history=row["prank_history"],
        silent_history=row["silent_history"],
        last_language=row["last_language"],
        block=block,
    )


def block_event(
    number: str, *, hours: float, reason: str | None, set_by: str | None, now: datetime
) -> RecordEvent:
    if not 0 < hours <= 24 * 366:
        raise ValueError(f"a block lasts more than 0 and at most 8784 hours, not {hours}")
    return caller_flag_set(
        number,
        BLOCKED,
        reason=reason,
        set_by=set_by,
        until=now + timedelta(hours=hours),
        at=now,
    )


async def block(
    db: Queryable,
    number: str,
    *,
    hours: float,
    reason: str | None,
    set_by: str | None,
    now: datetime,
) -> RecordEvent:
    event = block_event(number, hours=hours, reason=reason, set_by=set_by, now=now)
    await ingest(db, [event])
    return event


async def list_blocks(
    db: Queryable,
    now: datetime,
    *,
    number: str | None = None,
    include_inactive: bool = False,
    limit: int = 1000,
) -> list[Block]:
    variants = number_variants(number) if number else None
    rows = await db.fetch(_BLOCKS, variants, include_inactive, now, limit)
    return [Block(**dict(row)) for row in rows]


async def unblock(
    db: Queryable, number: str, *, cleared_by: str | None, reason: str | None, now: datetime
) -> list[Block]:
    """Clear every active block on the number (in any written form); returns what was cleared."""
    active = await list_blocks(db, now, number=number)
    events = [
        caller_flag_cleared(b.flag_id, cleared_by=cleared_by, reason=reason, at=now) for b in active
    ]
    if events:
        await ingest(db, events)
    return active
