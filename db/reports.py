"""Supervisor and Kominfo figures, computed in SQL (db/functions/reports.sql) and returned as
dataclasses.

Definitions:
- a call counts in the period (and hour/day/month bucket, in the report's time zone) of its
  arrival at Asterisk;
- wait = operator connected (or caller hung up) minus arrival; an IVR greeting is no answer;
- "within T s" is wait <= T. Service level(T) = answered within T / (answered + abandoned),
  where abandons within `short_abandon_seconds` are left out and counted apart
  (`abandoned_short`); service level at target: the same with each call's own category's
  answer target for T (the centre's goal, 15 s, for a call never classified);
- ASA = mean wait of answered calls; longest wait over answered and abandoned calls;
- time to a human: time to ring = first offer (an operator's phone rings) minus arrival, over
  the calls offered (a call never offered, e.g. abandoned in the menu, is left out); time to
  answer = the wait of the answered calls. p50/p90/p99 are nearest-rank percentiles: pN is the
  smallest time that N % of those calls took no longer than (of 10 calls: the 5th, the 9th and
  the 10th shortest);
- a call's route is how the caller got to the queue, from its flags, first match wins:
  `fallback` (flag fallback), `overflow` (overflow), `cannot_speak` (cannot_speak, the 55
  path), `no_input` (unclassified: the menu did not classify the call in time, because the
  caller pressed nothing (flagged silent or spoke too) or no valid digit (invalid_input);
  older records carry only silent or invalid_input), `screened` (blocked: a blocked number
  skips the menu), `digit` (a valid digit in time). A call never classified (gone in the
  menu) chose nothing either: `no_input`. Service level and the other figures are given per
  route like per category;
- prank/silent shares are of the calls that have a disposition (a call's latest one counts);
- operator times are the time spent in each state within the period, logged in = every state
  but logged_out, pause split by reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from db.queryable import Queryable

DEFAULT_TZ = "Asia/Jakarta"
DEFAULT_THRESHOLDS: tuple[int, ...] = (10, 15, 20)
DEFAULT_SHORT_ABANDON_SECONDS = 5
# NENA-STA-020: 90 % of the calls answered within 15 s (and 95 % within 20 s).
SERVICE_GOAL_SECONDS = 15.0
SERVICE_GOAL_RATIO = 0.90
# The report's service levels besides each category's own target: NENA's 15 s and 20 s.
NENA_THRESHOLDS: tuple[float, ...] = (SERVICE_GOAL_SECONDS, 20.0)


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class Route(StrEnum):
    """How the caller got to the queue, in the order the rule tries them (reports.sql)."""

    FALLBACK = "fallback"
    OVERFLOW = "overflow"
    CANNOT_SPEAK = "cannot_speak"
    NO_INPUT = "no_input"
    SCREENED = "screened"
    DIGIT = "digit"


@dataclass(frozen=True)
class Period:
    """The half-open interval [start, end)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Period bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("Period end must be after its start")

    @classmethod
    def day(cls, day: date, tz: str = DEFAULT_TZ) -> Period:
        return cls.days(day, day, tz)

    @classmethod
    def days(cls, first: date, last: date, tz: str = DEFAULT_TZ) -> Period:
        """From the start of `first` to the end of `last` (inclusive), local time in `tz`."""
        zone = ZoneInfo(tz)
        return cls(
            datetime.combine(first, time(), zone),
            datetime.combine(last + timedelta(days=1), time(), zone),
        )


@dataclass(frozen=True)
class ServiceLevel:
    threshold_seconds: float
    answered_within: int
    ratio: float | None  # None when nothing was answered or abandoned


@dataclass(frozen=True)
class Percentiles:
    """Nearest-rank percentiles of a time, in seconds, over `calls` calls (None: no calls)."""

    calls: int
    p50: float | None
    p90: float | None
    p99: float | None


@dataclass(frozen=True)
class CallStats:
    scope: str  # "total", "category", "route" or the bucket ("hour", "day", "month")
    category: str | None  # set for scope "category" ("unclassified" if never classified)
    bucket: datetime | None  # start of the bucket, local time in the report's zone
    route: Route | None  # set for scope "route"
    received: int
    answered: int
    abandoned: int  # after more than short_abandon_seconds
    abandoned_short: int
    unanswered: int
    fallback: int
    ongoing: int
    service_levels: tuple[ServiceLevel, ...]
    asa_seconds: float | None
    longest_wait_seconds: float | None
    disposed: int
    prank: int
    silent: int
    prank_share: float | None
    silent_share: float | None
    to_ring: Percentiles  # arrival to the first offer, calls offered
    to_answer: Percentiles  # arrival to the answer, calls answered
    # Answered within each one's own category's target (build_report with `targets`).
    answered_within_target: int | None = None


@dataclass(frozen=True)
class OperatorStats:
    operator_id: str
    name: str | None
    logged_in_seconds: float
    available_seconds: float
    ringing_seconds: float
    talk_seconds: float
    wrap_up_seconds: float
    paused_seconds: float
    pause_by_reason: Mapping[str, float]
    calls_connected: int
    offers: int
    offers_failed: int


@dataclass(frozen=True)
class Report:
    period: Period
    tz: str
    bucket: Bucket
    thresholds: tuple[float, ...]
    short_abandon_seconds: float
    total: CallStats
    by_category: tuple[CallStats, ...]
    by_bucket: tuple[CallStats, ...]
    by_route: tuple[CallStats, ...]  # in Route order, routes with calls only
    operators: tuple[OperatorStats, ...] = field(default=())


async def call_stats(
    db: Queryable,
    period: Period,
    *,
    tz: str = DEFAULT_TZ,
    bucket: Bucket = Bucket.HOUR,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    short_abandon_seconds: float = DEFAULT_SHORT_ABANDON_SECONDS,
) -> list[CallStats]:
    """Rows: the total first, then per category, then per bucket, then per route."""
    zone = ZoneInfo(tz)  # raises on an unknown zone before PostgreSQL would
    rows = await db.fetch(
        "SELECT * FROM report_calls($1, $2, $3, $4, $5::numeric[], $6)",
        period.start,
        period.end,
        Bucket(bucket).value,
        tz,
        [Decimal(str(t)) for t in thresholds],
        Decimal(str(short_abandon_seconds)),
    )
    # GROUPING SETS always yields the total row, even for an empty period.
    return [_call_stats(row, thresholds, zone, Bucket(bucket)) for row in rows]


async def operator_stats(
    db: Queryable, period: Period, *, now: datetime | None = None
) -> list[OperatorStats]:
    now = now or datetime.now(UTC)
    states = await db.fetch(
        "SELECT * FROM report_operator_states($1, $2, $3)", period.start, period.end, now
    )
    calls = await db.fetch("SELECT * FROM report_operator_calls($1, $2)", period.start, period.end)
    names = {
        row["operator_id"]: row["name"]
        for row in await db.fetch("SELECT operator_id, name FROM operators")
    }
    seconds: dict[str, dict[str, float]] = {}
    pauses: dict[str, dict[str, float]] = {}
    for row in states:
        value = float(row["seconds"])
        per_state = seconds.setdefault(row["operator_id"], {})
        per_state[row["state"]] = per_state.get(row["state"], 0.0) + value
        if row["state"] == "paused":
            reasons = pauses.setdefault(row["operator_id"], {})
            reason = row["reason"] or "unspecified"
            reasons[reason] = reasons.get(reason, 0.0) + value
    counts = {row["operator_id"]: row for row in calls}
    result = []
    for operator_id in sorted(set(seconds) | set(counts)):
        per_state = seconds.get(operator_id, {})
        count = counts.get(operator_id)
        result.append(
            OperatorStats(
                operator_id=operator_id,
                name=names.get(operator_id),
                logged_in_seconds=round(
                    sum(v for k, v in per_state.items() if k != "logged_out"), 3
                ),
                available_seconds=per_state.get("available", 0.0),
                ringing_seconds=per_state.get("offered", 0.0),
                talk_seconds=per_state.get("on_call", 0.0),
                wrap_up_seconds=per_state.get("wrap_up", 0.0),
                paused_seconds=per_state.get("paused", 0.0),
                pause_by_reason=dict(sorted(pauses.get(operator_id, {}).items())),
                calls_connected=count["connected"] if count else 0,
                offers=count["offers"] if count else 0,
                offers_failed=count["offers_failed"] if count else 0,
            )
        )
    return result


async def build_report(
    db: Queryable,
    period: Period,
    *,
    tz: str = DEFAULT_TZ,
    bucket: Bucket = Bucket.HOUR,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    short_abandon_seconds: float = DEFAULT_SHORT_ABANDON_SECONDS,
    now: datetime | None = None,
    targets: Mapping[str, float] | None = None,
) -> Report:
    """`targets`: each category's answer target; with them every row also counts the calls
    answered within their own category's target (`SERVICE_GOAL_SECONDS` for any other)."""
    stats = await call_stats(
        db,
        period,
        tz=tz,
        bucket=bucket,
        thresholds=thresholds,
        short_abandon_seconds=short_abandon_seconds,
    )
    if targets is not None:
        within = await _within_targets(db, period, tz, Bucket(bucket), targets)
        stats = [replace(s, answered_within_target=within.get(_key(s), 0)) for s in stats]
    return Report(
        period=period,
        tz=tz,
        bucket=Bucket(bucket),
        thresholds=tuple(thresholds),
        short_abandon_seconds=short_abandon_seconds,
        total=stats[0],
        by_category=tuple(s for s in stats if s.scope == "category"),
        by_bucket=tuple(s for s in stats if s.scope not in ("total", "category", "route")),
        by_route=tuple(s for route in Route for s in stats if s.route is route),
        operators=tuple(await operator_stats(db, period, now=now)),
    )


_RowKey = tuple[str, str | None, datetime | None, str | None]


def _key(stats: CallStats) -> _RowKey:
    scope = stats.scope if stats.scope in ("total", "category", "route") else "bucket"
    bucket = stats.bucket.replace(tzinfo=None) if stats.bucket is not None else None
    return (scope, stats.category, bucket, stats.route.value if stats.route else None)


async def _within_targets(
    db: Queryable, period: Period, tz: str, bucket: Bucket, targets: Mapping[str, float]
) -> dict[_RowKey, int]:
    rows = await db.fetch(
        "SELECT * FROM report_within_targets($1, $2, $3, $4, $5::text[], $6::numeric[], $7)",
        period.start,
        period.end,
        bucket.value,
        tz,
        list(targets),
        [Decimal(str(t)) for t in targets.values()],
        Decimal(str(SERVICE_GOAL_SECONDS)),
    )
    return {
        (row["scope"], row["category"], row["bucket"], row["route"]): int(row["answered_within"])
        for row in rows
    }


def _call_stats(row: Any, thresholds: Sequence[float], zone: ZoneInfo, bucket: Bucket) -> CallStats:
    answered = int(row["answered"])
    abandoned = int(row["abandoned"])
    denominator = answered + abandoned
    levels = tuple(
        ServiceLevel(
            threshold_seconds=threshold,
            answered_within=int(within),
            ratio=(int(within) / denominator) if denominator else None,
        )
        for threshold, within in zip(thresholds, row["answered_within"], strict=True)
    )
    disposed = int(row["disposed"])
    local_bucket = row["bucket"].replace(tzinfo=zone) if row["bucket"] is not None else None
    scope = row["scope"] if row["scope"] != "bucket" else bucket.value
    return CallStats(
        scope=scope,
        category=row["category"],
        bucket=local_bucket,
        route=Route(row["route"]) if row["route"] is not None else None,
        received=int(row["received"]),
        answered=answered,
        abandoned=abandoned,
        abandoned_short=int(row["abandoned_short"]),
        unanswered=int(row["unanswered"]),
        fallback=int(row["fallback"]),
        ongoing=int(row["ongoing"]),
        service_levels=levels,
        asa_seconds=_float(row["asa_seconds"]),
        longest_wait_seconds=_float(row["longest_wait_seconds"]),
        disposed=disposed,
        prank=int(row["prank"]),
        silent=int(row["silent"]),
        prank_share=int(row["prank"]) / disposed if disposed else None,
        silent_share=int(row["silent"]) / disposed if disposed else None,
        to_ring=_percentiles(row["rung"], row["to_ring_seconds"]),
        to_answer=_percentiles(answered, row["to_answer_seconds"]),
    )


def _percentiles(calls: int, values: Sequence[Decimal] | None) -> Percentiles:
    p50, p90, p99 = values if values is not None else (None, None, None)
    return Percentiles(int(calls), _float(p50), _float(p90), _float(p99))


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
