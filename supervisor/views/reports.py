"""The reports page: db/reports.py by hour, day or month, as tables and SVG charts; and the
admin's audit page."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from aiohttp import web

from db.reports import Bucket, Period, Report, build_report
from supervisor import store
from supervisor.board import category_label
from supervisor.charts import Series, percent_bars, stacked_bars
from supervisor.console import Console
from supervisor.http import console_of, lang_of, render
from supervisor.i18n import label, translate

MAX_DAYS = 366
MAX_HOUR_DAYS = 31  # hourly rows beyond a month: shown by day instead


def _day(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        return default


def bucket_label(bucket: datetime | None, by: Bucket) -> str:
    if bucket is None:
        return "-"
    if by is Bucket.HOUR:
        return bucket.strftime("%m-%d %H:00")
    if by is Bucket.DAY:
        return bucket.strftime("%Y-%m-%d")
    return bucket.strftime("%Y-%m")


def report_range(
    query_from: str | None, query_to: str | None, query_by: str | None, today: date
) -> tuple[date, date, Bucket]:
    """The period and bucket asked for, made sane: at most a year, hours within a month."""
    first = _day(query_from, today)
    last = _day(query_to, first)
    if last < first:
        first, last = last, first
    if (last - first).days >= MAX_DAYS:
        first = last - timedelta(days=MAX_DAYS - 1)
    try:
        by = Bucket(query_by or Bucket.HOUR.value)
    except ValueError:
        by = Bucket.HOUR
    if by is Bucket.HOUR and (last - first).days >= MAX_HOUR_DAYS:
        by = Bucket.DAY
    return first, last, by


async def page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    lang = lang_of(request)
    first, last, by = report_range(
        request.query.get("from"),
        request.query.get("to"),
        request.query.get("by"),
        console.now().date(),
    )
    report = await build_report(
        console.db,
        Period.days(first, last, console.settings.tz),
        tz=console.settings.tz,
        bucket=by,
    )
    category_rows = [
        (category_label(console.config, s.category, lang), s) for s in report.by_category
    ]
    return render(
        request,
        "reports.html",
        first=first.isoformat(),
        last=last.isoformat(),
        by=by.value,
        buckets=[b.value for b in Bucket],
        report=report,
        bucket_rows=[(bucket_label(s.bucket, by), s) for s in report.by_bucket],
        category_rows=category_rows,
        human_rows=[(translate("reports.total", lang), report.total), *category_rows],
        route_rows=[(label("route.", s.route or "", lang), s) for s in report.by_route],
        operator_name=console.operator_name,
        charts=_charts(report, by, lang),
    )


def _charts(report: Report, by: Bucket, lang: str) -> list[object]:
    labels = [bucket_label(s.bucket, by) for s in report.by_bucket]
    calls = stacked_bars(
        translate("reports.chart_calls", lang),
        labels,
        [
            Series(
                translate("board.answered", lang),
                "bar-answered",
                [s.answered for s in report.by_bucket],
            ),
            Series(
                translate("board.abandoned", lang),
                "bar-abandoned",
                [s.abandoned + s.abandoned_short for s in report.by_bucket],
            ),
        ],
    )
    service = percent_bars(
        translate("reports.chart_sl", lang),
        labels,
        [s.service_levels[0].ratio if s.service_levels else None for s in report.by_bucket],
    )
    return [calls, service]


async def audit_page(request: web.Request) -> web.StreamResponse:
    console: Console = console_of(request)
    return render(
        request,
        "audit.html",
        entries=await store.audit_entries(console.db, limit=500),
    )
