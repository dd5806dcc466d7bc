"""Reports on a hand-built day (db_sample_day) equal the hand-computed figures."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import db_sample_day as day
import pytest
from db_support import write_all

from db.reports import Bucket, Percentiles, Period, Report, Route, build_report, call_stats


@pytest.fixture
async def day_dsn(pg_dsn: str, tmp_path: Path) -> str:
    events = day.all_events()
    random.Random(7).shuffle(events)  # arrival order must not matter
    await write_all(pg_dsn, events, tmp_path / "journal.jsonl", max_batch=17)
    return pg_dsn


async def _report(dsn: str, **options: Any) -> Report:
    conn = await asyncpg.connect(dsn)
    try:
        return await build_report(
            conn, Period.day(day.DAY, day.TZ), tz=day.TZ, now=day.NOW, **options
        )
    finally:
        await conn.close()


async def test_day_totals_equal_hand_computed_figures(day_dsn: str) -> None:
    report = await _report(day_dsn)
    total = report.total
    expected = day.TOTAL
    for key in ("received", "answered", "abandoned", "abandoned_short", "unanswered",
                "fallback", "ongoing", "disposed", "prank", "silent"):  # fmt: skip
        assert getattr(total, key) == expected[key], key
    assert [s.threshold_seconds for s in total.service_levels] == [10, 15, 20]
    assert [s.answered_within for s in total.service_levels] == expected["answered_within"]
    assert [s.ratio for s in total.service_levels] == pytest.approx(expected["ratios"])
    assert total.asa_seconds == pytest.approx(expected["asa_seconds"])
    assert total.longest_wait_seconds == expected["longest_wait_seconds"]
    assert total.prank_share == pytest.approx(0.25)
    assert total.silent_share == pytest.approx(0.25)


async def test_per_category(day_dsn: str) -> None:
    report = await _report(day_dsn)
    by = {s.category: s for s in report.by_category}
    assert set(by) == {"fire", "medical", "police", "unclassified"}

    medical = by["medical"]  # A1, A2, D1, F1
    assert (medical.received, medical.answered, medical.ongoing, medical.unanswered) == (4, 2, 1, 1)
    assert [s.ratio for s in medical.service_levels] == [0.5, 1.0, 1.0]
    assert medical.asa_seconds == 10.0 and medical.longest_wait_seconds == 12.0
    assert (medical.disposed, medical.prank, medical.prank_share) == (2, 1, 0.5)

    fire = by["fire"]  # A3 18 s, A4 25.5 s
    assert [s.ratio for s in fire.service_levels] == [0.0, 0.0, 0.5]
    assert fire.asa_seconds == 21.75 and fire.longest_wait_seconds == 25.5

    police = by["police"]  # B1 short abandon, B2 abandoned after 30 s
    assert (police.abandoned, police.abandoned_short) == (1, 1)
    assert [s.ratio for s in police.service_levels] == [0.0, 0.0, 0.0]
    assert police.asa_seconds is None and police.longest_wait_seconds == 30.0

    other = by["unclassified"]  # B3 short abandon at exactly 5 s, C1 fallback
    assert (other.abandoned_short, other.fallback, other.received) == (1, 1, 2)
    assert [s.ratio for s in other.service_levels] == [None, None, None]


async def test_per_hour_in_local_time(day_dsn: str) -> None:
    report = await _report(day_dsn)
    assert report.bucket is Bucket.HOUR
    hours = {(s.bucket.hour if s.bucket else None): s.received for s in report.by_bucket}
    assert hours == {8: 2, 9: 3, 10: 2, 11: 2, 12: 1}
    offsets = {s.bucket.utcoffset() if s.bucket else None for s in report.by_bucket}
    assert offsets == {timedelta(hours=7)}


async def test_per_day_and_month_buckets(day_dsn: str) -> None:
    conn = await asyncpg.connect(day_dsn)
    try:
        period = Period.days(day.DAY.replace(day=1), day.DAY.replace(day=2), day.TZ)
        days = await call_stats(conn, period, tz=day.TZ, bucket=Bucket.DAY)
        months = await call_stats(
            conn, Period.days(day.DAY.replace(month=4, day=1), day.DAY, day.TZ),
            tz=day.TZ, bucket=Bucket.MONTH,
        )  # fmt: skip
    finally:
        await conn.close()
    assert {s.bucket.day: s.received for s in days if s.bucket} == {1: 10, 2: 1}
    assert {s.bucket.month: s.received for s in months if s.bucket} == {4: 1, 5: 10}


async def test_thresholds_and_short_abandon_are_configurable(day_dsn: str) -> None:
    report = await _report(day_dsn, thresholds=(12, 25.5), short_abandon_seconds=2)
    total = report.total
    # No abandon is within 2 s now: B1, B2, B3 all count, the denominator is 4 + 3.
    assert (total.abandoned, total.abandoned_short) == (3, 0)
    assert [s.answered_within for s in total.service_levels] == [2, 4]
    assert [s.ratio for s in total.service_levels] == pytest.approx([2 / 7, 4 / 7])


async def test_operator_times(day_dsn: str) -> None:
    report = await _report(day_dsn)
    got = {o.operator_id: o for o in report.operators}
    assert sorted(got) == sorted(day.OPERATORS)
    for operator_id, expected in day.OPERATORS.items():
        for key, value in expected.items():
            actual = getattr(got[operator_id], key)
            assert actual == (pytest.approx(value) if isinstance(value, float) else value), (
                operator_id,
                key,
            )


async def test_empty_period_gives_zero_totals(day_dsn: str) -> None:
    conn = await asyncpg.connect(day_dsn)
    try:
        period = Period.day(day.DAY.replace(year=2030), day.TZ)
        stats = await call_stats(conn, period, tz=day.TZ)
    finally:
        await conn.close()
    assert len(stats) == 1 and stats[0].scope == "total"
    assert stats[0].received == 0 and stats[0].asa_seconds is None
    assert [s.ratio for s in stats[0].service_levels] == [None, None, None]


@pytest.fixture
async def routes_dsn(pg_dsn: str, tmp_path: Path) -> str:
    await write_all(pg_dsn, day.routes_calls(), tmp_path / "journal.jsonl")
    return pg_dsn


async def _routes_report(dsn: str) -> Report:
    conn = await asyncpg.connect(dsn)
    try:
        return await build_report(conn, Period.day(day.ROUTES_DAY, day.TZ), tz=day.TZ)
    finally:
        await conn.close()


def _times(p: Percentiles) -> tuple[int, float | None, float | None, float | None]:
    return (p.calls, p.p50, p.p90, p.p99)


async def test_time_to_ring_and_to_answer_percentiles(routes_dsn: str) -> None:
    report = await _routes_report(routes_dsn)
    total = report.total
    assert (total.received, total.answered, total.abandoned) == (13, 10, 1)
    # Q1, Q2 (gone in the menu) and G1 (fallback) never rang anyone: 10 calls, not 13.
    assert _times(total.to_ring) == day.ROUTES_TOTAL["to_ring"]
    assert _times(total.to_answer) == day.ROUTES_TOTAL["to_answer"]
    by = {s.category: s for s in report.by_category}
    assert set(by) == set(day.ROUTES_BY_CATEGORY)
    for category, expected in day.ROUTES_BY_CATEGORY.items():
        assert _times(by[category].to_ring) == expected["to_ring"], category
        assert _times(by[category].to_answer) == expected["to_answer"], category


async def test_service_level_by_route(routes_dsn: str) -> None:
    report = await _routes_report(routes_dsn)
    assert [s.scope for s in report.by_route] == ["route"] * len(day.ROUTES_SL)
    assert [s.route for s in report.by_route] == list(Route)  # in the order of the rule
    assert [r.value for r in Route] == list(day.ROUTES_SL)
    for s in report.by_route:
        expected = day.ROUTES_SL[str(s.route)]
        assert s.received == expected["received"], s.route
        assert [level.ratio for level in s.service_levels] == pytest.approx(expected["ratios"]), (
            s.route
        )
    assert sum(s.received for s in report.by_route) == report.total.received
    assert [level.ratio for level in report.total.service_levels] == pytest.approx(
        day.ROUTES_TOTAL["ratios"]
    )
    # Route rows are neither categories nor buckets.
    assert all(s.route is None for s in (*report.by_category, *report.by_bucket))


async def test_the_sample_day_by_route_and_time_to_a_human(day_dsn: str) -> None:
    report = await _report(day_dsn)
    routes = {s.route: s.received for s in report.by_route}
    # C1 came through the fallback; B3 hung up in the menu; the others chose a digit.
    assert routes == {Route.FALLBACK: 1, Route.NO_INPUT: 1, Route.DIGIT: 8}
    # A1 rang op2 after 2 s; A2-A4 rang 2 s before their answer (10, 16, 23.5).
    assert _times(report.total.to_ring) == (4, 10.0, 23.5, 23.5)
    assert _times(report.total.to_answer) == (4, 12.0, 25.5, 25.5)
