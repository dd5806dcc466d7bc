"""The chaos run's verdict: every call in Asterisk's own record (db/cel.py) against its `calls`
row and `call_events` (testbed/chaos.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from agi.fallback import operators_by_interface
from db.cel import AsteriskCall, asterisk_calls, parse_lines
from db.events import FALLBACK_FLAG, ONCE_FACTS
from pbx.asterisk import AsteriskInstance
from siaga.config import Config
from testbed.chaos_stack import live_channel_ids

# A call's timestamps in the records must be within this of Asterisk's.
TOLERANCE_SECONDS = 1.0


def asterisk_record(instance: AsteriskInstance, config: Config) -> dict[str, AsteriskCall]:
    """Asterisk's own record of the calls (its CEL file, read with db/cel.py)."""
    path = instance.outside(instance.layout.cel_file)
    with path.open(encoding="utf-8", errors="replace") as lines:
        return asterisk_calls(
            parse_lines(lines), config.asterisk.app, operators_by_interface(config)
        )


@dataclass(frozen=True, slots=True)
class CallRow:
    call_id: str
    arrived_at: datetime | None
    connected_at: datetime | None
    abandoned_at: datetime | None
    ended_at: datetime | None
    outcome: str
    operator_id: str | None
    flags: tuple[str, ...]

    @property
    def end(self) -> datetime | None:
        # An abandoned call ends with its `call_abandoned`; it has no `call_ended`.
        return self.ended_at or self.abandoned_at

    @property
    def closed(self) -> bool:
        return self.outcome != "ongoing" and self.end is not None


@dataclass(frozen=True, slots=True)
class Duplicate:
    call_id: str
    kind: str
    count: int


async def read_records(dsn: str) -> tuple[dict[str, CallRow], list[Duplicate]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT call_id, arrived_at, connected_at, abandoned_at, ended_at, outcome,"
            " operator_id, flags FROM calls"
        )
        twice = await conn.fetch(
            "SELECT call_id, kind, count(*) AS n FROM call_events WHERE kind = ANY($1::text[])"
            " GROUP BY call_id, kind HAVING count(*) > 1 ORDER BY call_id, kind",
            [kind.value for kind in ONCE_FACTS],
        )
    finally:
        await conn.close()
    calls = {
        r["call_id"]: CallRow(
            call_id=r["call_id"],
            arrived_at=r["arrived_at"],
            connected_at=r["connected_at"],
            abandoned_at=r["abandoned_at"],
            ended_at=r["ended_at"],
            outcome=r["outcome"],
            operator_id=r["operator_id"],
            flags=tuple(r["flags"]),
        )
        for r in rows
    }
    return calls, [Duplicate(r["call_id"], r["kind"], r["n"]) for r in twice]


def expected_outcome(call: AsteriskCall) -> str:
    """The `calls.outcome` a call with this Asterisk record must have (db/functions/
    refresh_calls.sql: answered, then abandoned, then fallback, then unanswered)."""
    if call.connected_at is not None:
        return "answered"
    if call.hangup_by == "caller":
        return "abandoned"  # gone before anyone answered, in the menu, queue or fallback
    if call.fallback:
        return "fallback"
    return "unanswered"


@dataclass
class Comparison:
    """What the records got right and wrong against Asterisk's own record (None: there was
    no Asterisk record to compare with, only the records' own checks were made)."""

    rows: int
    duplicates: list[Duplicate]
    open: list[str]
    asterisk_calls: int | None = None
    missing: list[str] | None = None
    wrong: list[tuple[str, list[str]]] | None = None
    extra: list[str] | None = None
    asterisk_open: list[str] | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    fallback_calls: int | None = None
    cut_calls: int | None = None

    @property
    def clean(self) -> bool:
        return (
            self.missing == []
            and self.wrong == []
            and not self.duplicates
            and not self.open
            and self.extra == []
        )

    def summary(self, examples: int = 10) -> dict[str, Any]:
        def count(items: Sequence[Any] | None) -> int | None:
            return None if items is None else len(items)

        return {
            "asterisk_calls": self.asterisk_calls,
            "rows": self.rows,
            "missing": count(self.missing),
            "wrong": count(self.wrong),
            "duplicates": len(self.duplicates),
            "open": len(self.open),
            "extra": count(self.extra),
            "asterisk_open": count(self.asterisk_open),
            "fallback_calls": self.fallback_calls,
            "cut_by_restart": self.cut_calls,
            "outcomes": self.outcomes,
            "clean": self.clean,
            "examples": {
                "missing": (self.missing or [])[:examples],
                "wrong": [{"call_id": c, "why": why} for c, why in (self.wrong or [])[:examples]],
                "duplicates": [asdict(d) for d in self.duplicates[:examples]],
                "open": self.open[:examples],
                "extra": (self.extra or [])[:examples],
                "asterisk_open": (self.asterisk_open or [])[:examples],
            },
        }


def _off(label: str, ours: datetime | None, theirs: datetime | None) -> str | None:
    if ours is None and theirs is None:
        return None
    if ours is None or theirs is None:
        return f"{label}: records {_iso(ours)}, Asterisk {_iso(theirs)}"
    gap = abs((ours - theirs).total_seconds())
    if gap > TOLERANCE_SECONDS:
        return f"{label} off by {gap:.3f} s"
    return None


def _iso(at: datetime | None) -> str:
    return at.isoformat() if at is not None else "none"


def compare(
    asterisk: Mapping[str, AsteriskCall] | None,
    rows: Mapping[str, CallRow],
    duplicates: Sequence[Duplicate],
    live: Collection[str] = (),
) -> Comparison:
    """Every call in Asterisk's record against its `calls` row (the one place that knows
    what right means). `live`: the channels still up in Asterisk; a call with no hang-up in
    the record and no channel was cut by Asterisk's death."""
    open_rows = sorted(c for c, row in rows.items() if not row.closed)
    result = Comparison(rows=len(rows), duplicates=list(duplicates), open=open_rows)
    result.outcomes = dict(Counter(row.outcome for row in rows.values()))
    if asterisk is None:
        return result
    result.asterisk_calls = len(asterisk)
    result.missing, result.wrong, result.asterisk_open = [], [], []
    for call_id, call in sorted(asterisk.items(), key=lambda item: item[1].arrived_at):
        if call.ended_at is None and call_id in live:
            result.asterisk_open.append(call_id)
        row = rows.get(call_id)
        if row is None:
            result.missing.append(call_id)
            continue
        why = [
            reason
            for reason in (
                _off("arrival", row.arrived_at, call.arrived_at),
                _off("answer", row.connected_at, call.connected_at),
                # A call cut by Asterisk's death has no end in Asterisk's record.
                None if call.ended_at is None else _off("end", row.end, call.ended_at),
            )
            if reason is not None
        ]
        expected = expected_outcome(call)
        if row.outcome != expected:
            why.append(f"outcome {row.outcome}, expected {expected}")
        if not row.closed:
            why.append("not closed")
        if call.fallback and FALLBACK_FLAG not in row.flags:
            why.append("fallback not flagged")
        if call.operator_id is not None and row.operator_id != call.operator_id:
            why.append(f"operator {row.operator_id}, Asterisk {call.operator_id}")
        if why:
            result.wrong.append((call_id, why))
    result.extra = sorted(set(rows) - set(asterisk))
    result.fallback_calls = sum(1 for c in asterisk.values() if c.fallback)
    result.cut_calls = sum(
        1 for c in asterisk.values() if c.ended_at is None and c.call_id not in live
    )
    return result


async def compare_now(
    dsn: str, instance: AsteriskInstance, config: Config
) -> tuple[Comparison, str | None]:
    """The comparison as things stand, and why Asterisk's record was missing if it was."""
    rows, duplicates = await read_records(dsn)
    live = await asyncio.to_thread(live_channel_ids, instance)
    try:
        asterisk = await asyncio.to_thread(asterisk_record, instance, config)
    except OSError as exc:
        return compare(None, rows, duplicates), f"{type(exc).__name__}: {exc}"
    return compare(asterisk, rows, duplicates, live or ()), None
