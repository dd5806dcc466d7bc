"""Text, JSON and CSV renderings of the call log and reports (what the CLI prints).

Tables are for eyes: cells are made printable and cut to a width. JSON and CSV are for
machines: values exact, timestamps ISO 8601.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from db.calllog import CallRow, row_to_json
from db.reports import CallStats, Report

MAX_CELL = 40


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain aligned text: left-aligned text, right-aligned numbers, two spaces apart."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def calls_table(rows: Sequence[CallRow], tz: str) -> str:
    zone = ZoneInfo(tz)
    headers = ["arrived", "call", "number", "name", "category", "operator", "outcome",
               "wait s", "talk s", "flags", "verdict"]  # fmt: skip
    body = [
        [
            _local(r.arrived_at, zone),
            r.call_id,
            r.caller_number,
            r.caller_name,
            r.category,
            r.operator_id,
            r.outcome,
            r.wait_seconds,
            r.talk_seconds,
            ",".join(r.flags) or None,
            r.verdict,
        ]
        for r in rows
    ]
    return table(headers, body) + f"\n({len(rows)} calls, times in {tz})"


def calls_json(rows: Sequence[CallRow]) -> str:
    return json.dumps([row_to_json(r) for r in rows], ensure_ascii=False, indent=2)


def report_table(report: Report) -> str:
    zone = ZoneInfo(report.tz)
    period = (
        f"{_local(report.period.start, zone)} to {_local(report.period.end, zone)} ({report.tz})"
    )
    short = f"{report.short_abandon_seconds:g}"
    headers = ["scope", "category/bucket/route", "received", "answered", "abandoned",
               f"aband<={short}s", "unanswered", "fallback", "ongoing",
               *(f"SL{t:g}s" for t in report.thresholds),
               "ASA s", "longest s", "prank", "silent"]  # fmt: skip
    rows = [
        [
            s.scope,
            _row_label(s, zone),
            s.received,
            s.answered,
            s.abandoned,
            s.abandoned_short,
            s.unanswered,
            s.fallback,
            s.ongoing,
            *(_percent(level.ratio) for level in s.service_levels),
            s.asa_seconds,
            s.longest_wait_seconds,
            _count_share(s.prank, s.prank_share),
            _count_share(s.silent, s.silent_share),
        ]
        for s in _all_stats(report)
    ]
    human_headers = ["scope", "category", "offered", "ring p50", "ring p90", "ring p99",
                     "answered", "answer p50", "answer p90", "answer p99"]  # fmt: skip
    human_rows = [
        [
            s.scope,
            s.category,
            s.to_ring.calls,
            s.to_ring.p50,
            s.to_ring.p90,
            s.to_ring.p99,
            s.to_answer.calls,
            s.to_answer.p50,
            s.to_answer.p90,
            s.to_answer.p99,
        ]
        for s in (report.total, *report.by_category)
    ]
    op_headers = ["operator", "name", "logged in", "available", "ringing", "talk", "wrap-up",
                  "paused", "pause by reason", "connected", "offers", "failed"]  # fmt: skip
    op_rows = [
        [
            o.operator_id,
            o.name,
            _hms(o.logged_in_seconds),
            _hms(o.available_seconds),
            _hms(o.ringing_seconds),
            _hms(o.talk_seconds),
            _hms(o.wrap_up_seconds),
            _hms(o.paused_seconds),
            ", ".join(f"{k} {_hms(v)}" for k, v in o.pause_by_reason.items()),
            o.calls_connected,
            o.offers,
            o.offers_failed,
        ]
        for o in report.operators
    ]
    return (
        f"Calls {period}\n{table(headers, rows)}\n\n"
        f"Time to a human, seconds from arrival\n{table(human_headers, human_rows)}\n\n"
        f"Operators\n{table(op_headers, op_rows)}\n"
        "SL = answered within T s / (answered + abandoned), abandons within "
        f"{short}s apart; prank/silent shares are of calls with a disposition.\n"
        "Route = how the caller got there, first match: fallback, overflow, cannot_speak, "
        "no_input, screened, digit.\n"
        "Ring = to the first offer (calls offered), answer = to the answer; pN = nearest rank."
    )


def report_json(report: Report) -> str:
    return json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2, default=_jsonable)


def report_csv(report: Report) -> str:
    thresholds = [f"{t:g}" for t in report.thresholds]
    headers = ["scope", "category", "bucket", "route", "received", "answered", "abandoned",
               "abandoned_short", "unanswered", "fallback", "ongoing",
               *(f"answered_within_{t}" for t in thresholds),
               *(f"service_level_{t}" for t in thresholds),
               "asa_seconds", "longest_wait_seconds", "disposed", "prank", "silent",
               "prank_share", "silent_share",
               *(f"{time}_{column}" for time in ("to_ring", "to_answer")
                 for column in ("calls", "p50", "p90", "p99"))]  # fmt: skip
    return _csv(headers, [_stats_csv_row(s) for s in _all_stats(report)])


def operators_csv(report: Report) -> str:
    headers = ["operator_id", "name", "logged_in_seconds", "available_seconds",
               "ringing_seconds", "talk_seconds", "wrap_up_seconds", "paused_seconds",
               "pause_by_reason", "calls_connected", "offers", "offers_failed"]  # fmt: skip
    rows = [
        [
            o.operator_id,
            o.name,
            o.logged_in_seconds,
            o.available_seconds,
            o.ringing_seconds,
            o.talk_seconds,
            o.wrap_up_seconds,
            o.paused_seconds,
            json.dumps(dict(o.pause_by_reason), ensure_ascii=False),
            o.calls_connected,
            o.offers,
            o.offers_failed,
        ]
        for o in report.operators
    ]
    return _csv(headers, rows)


# -- helpers ---------------------------------------------------------------------------------


def _all_stats(report: Report) -> list[CallStats]:
    return [report.total, *report.by_category, *report.by_bucket, *report.by_route]


def _row_label(s: CallStats, zone: ZoneInfo) -> str | None:
    if s.category is not None:
        return s.category
    if s.route is not None:
        return s.route.value
    return _local(s.bucket, zone)


def _stats_csv_row(s: CallStats) -> list[object]:
    return [
        s.scope,
        s.category,
        s.bucket.isoformat() if s.bucket else None,
        s.route,
        s.received,
        s.answered,
        s.abandoned,
        s.abandoned_short,
        s.unanswered,
        s.fallback,
        s.ongoing,
        *(level.answered_within for level in s.service_levels),
        *(level.ratio for level in s.service_levels),
        s.asa_seconds,
        s.longest_wait_seconds,
        s.disposed,
        s.prank,
        s.silent,
        s.prank_share,
        s.silent_share,
        *(
            value
            for time in (s.to_ring, s.to_answer)
            for value in (time.calls, time.p50, time.p90, time.p99)
        ),
    ]


def _csv(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def _jsonable(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    text = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    # Control characters would break the layout (or the terminal): show them as '?'.
    text = "".join("?" if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _local(value: datetime | None, zone: ZoneInfo) -> str | None:
    return None if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


def _count_share(count: int, share: float | None) -> str:
    return str(count) if share is None else f"{count} ({share * 100:.1f}%)"


def _hms(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
