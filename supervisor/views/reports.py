"""The reports page: db/reports.py by hour, day or month, as tables and SVG charts, exported
as CSV (a table) or XLSX (every table); the shift summary for the handover; and the admin's
audit page."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from aiohttp import web

from db.reports import (
    NENA_THRESHOLDS,
    SERVICE_GOAL_SECONDS,
    Bucket,
    Period,
    Report,
    build_report,
)
from supervisor import queries, store
from supervisor.charts import Series, percent_bars, stacked_bars
from supervisor.console import Console
from supervisor.http import client_of, console_of, lang_of, render, require_session
from supervisor.i18n import translate
from supervisor.report_export import table_csv, tables_xlsx
from supervisor.report_tables import (
    TABLE_KEYS,
    ReportTables,
    bucket_label,
    category_targets,
    level_at,
    level_at_target,
    shown,
)
from supervisor.roles import Permission, allowed
from supervisor.shift import open_callbacks, owed_dispositions, shift_window, window_input
from supervisor.store import AuditAction

MAX_DAYS = 366
MAX_HOUR_DAYS = 31  # hourly rows beyond a month: shown by day instead
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _day(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        return default


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


async def _report(request: web.Request) -> tuple[Report, date, date]:
    console = console_of(request)
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
        thresholds=NENA_THRESHOLDS,
        targets=category_targets(console.config),
    )
    return report, first, last


async def page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    user = require_session(request).user
    lang = lang_of(request)
    report, first, last = await _report(request)
    tables = ReportTables(report, console.config, lang)
    query = urlencode({"from": first.isoformat(), "to": last.isoformat(), "by": report.bucket})
    return render(
        request,
        "reports.html",
        first=first.isoformat(),
        last=last.isoformat(),
        by=report.bucket.value,
        buckets=[b.value for b in Bucket],
        report=report,
        sl_at_targets=level_at_target(report.total),
        nena=[(seconds, level_at(report.total, seconds)) for seconds in NENA_THRESHOLDS],
        tables=tables.all(console.operator_name),
        shown=shown,
        export_query=query,
        may_export=allowed(user.role, Permission.EXPORT),
        charts=_charts(report, lang),
    )


def _charts(report: Report, lang: str) -> list[object]:
    labels = [bucket_label(s.bucket, report.bucket) for s in report.by_bucket]
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
        translate("reports.chart_sl_goal", lang).format(seconds=f"{SERVICE_GOAL_SECONDS:g}"),
        labels,
        [level_at(s, SERVICE_GOAL_SECONDS) for s in report.by_bucket],
    )
    return [calls, service]


async def _audit_export(request: web.Request, what: str) -> None:
    console = console_of(request)
    session = require_session(request)
    await store.audit(
        console.db,
        AuditAction.REPORT_EXPORT,
        username=session.user.username,
        role=session.user.role.value,
        target=what,
        client=client_of(request),
        detail={"query": request.query_string},
    )


def _attachment(body: bytes, content_type: str, name: str) -> web.Response:
    return web.Response(
        body=body,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


async def export_csv(request: web.Request) -> web.StreamResponse:
    """One table of the report (?table=categories, buckets, routes, human or operators)."""
    console = console_of(request)
    key = request.query.get("table", TABLE_KEYS[0])
    if key not in TABLE_KEYS:
        raise web.HTTPNotFound()
    report, first, last = await _report(request)
    tables = ReportTables(report, console.config, lang_of(request)).all(console.operator_name)
    table = next(t for t in tables if t.key == key)
    await _audit_export(request, f"{key}.csv")
    return _attachment(
        table_csv(table), "text/csv; charset=utf-8", f"siaga-{key}-{first}_{last}.csv"
    )


async def export_xlsx(request: web.Request) -> web.StreamResponse:
    """Every table of the report, a sheet each."""
    console = console_of(request)
    lang = lang_of(request)
    report, first, last = await _report(request)
    tables = ReportTables(report, console.config, lang).all(console.operator_name)
    about = [
        (translate("reports.title", lang), console.config.centre.name),
        (translate("reports.from", lang), first.isoformat()),
        (translate("reports.to", lang), last.isoformat()),
        (translate("reports.by", lang), translate("reports." + report.bucket.value, lang)),
        (translate("reports.zone", lang), report.tz),
        (translate("reports.made_at", lang), console.now().isoformat(timespec="seconds")),
        (translate("reports.sl", lang), translate("reports.sl_rule", lang)),
    ]
    await _audit_export(request, "report.xlsx")
    return _attachment(tables_xlsx(tables, about), XLSX_TYPE, f"siaga-report-{first}_{last}.xlsx")


async def shift_page(request: web.Request) -> web.StreamResponse:
    """The shift summary for the handover: printable, the notes typed in are not stored."""
    console = console_of(request)
    lang = lang_of(request)
    window = shift_window(
        request.query.get("start"), request.query.get("end"), console.now(), console.zone
    )
    report = await build_report(
        console.db,
        window,
        tz=console.settings.tz,
        bucket=Bucket.HOUR,
        thresholds=NENA_THRESHOLDS,
        targets=category_targets(console.config),
    )
    tables = ReportTables(report, console.config, lang)
    return render(
        request,
        "shift.html",
        start=window_input(window.start, console.zone),
        end=window_input(window.end, console.zone),
        report=report,
        sl_at_targets=level_at_target(report.total),
        nena=[(seconds, level_at(report.total, seconds)) for seconds in NENA_THRESHOLDS],
        tables=[
            tables.outcomes(),
            tables.categories(),
            tables.operators(console.operator_name),
        ],
        shown=shown,
        open_callbacks=await open_callbacks(console.db, queries.CallbackRules.of(console.config)),
        owed=await owed_dispositions(console.db, window),
        operator_name=console.operator_name,
    )


async def audit_page(request: web.Request) -> web.StreamResponse:
    console: Console = console_of(request)
    return render(
        request,
        "audit.html",
        entries=await store.audit_entries(console.db, limit=500),
    )
