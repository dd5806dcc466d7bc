"""`siaga db migrate`, `siaga calls` and `siaga report`: registered on the main CLI's
subparsers by `register(subparsers, get_dsn)`. Each handler takes the parsed args and returns 0;
what goes wrong is raised (db/command.py) and reported by `stack/cli.py`."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from db import render
from db.calllog import CallFilter, list_calls
from db.command import run_database_command
from db.events import Outcome
from db.migrate import migrate
from db.reports import DEFAULT_TZ, Bucket, Period, build_report

GetDsn = Callable[[argparse.Namespace], str]
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def register(subparsers: Any, get_dsn: GetDsn) -> None:
    db_parser = subparsers.add_parser("db", help="database administration")
    db_sub = db_parser.add_subparsers(dest="db_command", required=True)
    migrate_parser = db_sub.add_parser("migrate", help="apply pending schema migrations")
    migrate_parser.set_defaults(func=lambda args: run_database_command(_migrate(get_dsn(args))))

    calls = subparsers.add_parser("calls", help="the call log")
    calls.add_argument("--since", help="ISO date/time (local to --tz) or age like 2h, 30m, 7d")
    calls.add_argument("--until", help="ISO date/time (local to --tz) or age like 1h")
    calls.add_argument("--number", help="caller number, or any part of it")
    calls.add_argument("--category")
    calls.add_argument("--operator")
    calls.add_argument("--outcome", choices=[o.value for o in Outcome])
    calls.add_argument("--limit", type=int, default=1000)
    calls.add_argument("--tz", default=DEFAULT_TZ, type=_zone, help="time zone for input/display")
    calls.add_argument("--json", action="store_true", help="JSON for machines")
    calls.set_defaults(func=lambda args: run_database_command(_calls(get_dsn(args), args)))

    report = subparsers.add_parser("report", help="service level and operator report")
    when = report.add_mutually_exclusive_group(required=True)
    when.add_argument("--day", type=date.fromisoformat, help="one local day, YYYY-MM-DD")
    when.add_argument("--from", dest="from_day", type=date.fromisoformat, help="first day")
    report.add_argument("--to", dest="to_day", type=date.fromisoformat, help="last day (incl.)")
    report.add_argument("--by", choices=[b.value for b in Bucket], help="hour/day/month rows")
    report.add_argument("--sl", default="10,15,20", type=_thresholds, help="thresholds, s")
    report.add_argument("--short-abandon", type=float, default=5.0, help="seconds")
    report.add_argument("--tz", default=DEFAULT_TZ, type=_zone)
    fmt = report.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument(
        "--csv", action="store_true", help="call rows (operator rows with --operators)"
    )
    report.add_argument("--operators", action="store_true", help="with --csv: operator rows")
    report.set_defaults(func=lambda args: run_database_command(_report(get_dsn(args), args)))


# -- handlers --------------------------------------------------------------------------------


async def _migrate(dsn: str) -> int:
    applied = await migrate(dsn)
    print("\n".join(f"applied {name}" for name in applied) if applied else "schema up to date")
    return 0


async def _calls(dsn: str, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    where = CallFilter(
        since=parse_when(args.since, args.tz, now),
        until=parse_when(args.until, args.tz, now),
        number=args.number,
        category=args.category,
        operator=args.operator,
        outcome=Outcome(args.outcome) if args.outcome else None,
    )
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await list_calls(conn, where, limit=args.limit)
    finally:
        await conn.close()
    print(render.calls_json(rows) if args.json else render.calls_table(rows, args.tz))
    return 0


async def _report(dsn: str, args: argparse.Namespace) -> int:
    if args.day is not None and args.to_day is not None:
        raise argparse.ArgumentTypeError("--to goes with --from, not with --day")
    if args.day is not None:
        period = Period.day(args.day, args.tz)
        bucket = Bucket(args.by or Bucket.HOUR)
    else:
        period = Period.days(args.from_day, args.to_day or args.from_day, args.tz)
        bucket = Bucket(args.by or Bucket.DAY)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        report = await build_report(
            conn,
            period,
            tz=args.tz,
            bucket=bucket,
            thresholds=args.sl,
            short_abandon_seconds=args.short_abandon,
        )
    finally:
        await conn.close()
    if args.json:
        out = render.report_json(report)
    elif args.csv:
        out = render.operators_csv(report) if args.operators else render.report_csv(report)
    else:
        out = render.report_table(report)
    sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return 0


# -- argument types --------------------------------------------------------------------------


def parse_when(text: str | None, tz: str, now: datetime) -> datetime | None:
    """`2h` = two hours before now; an ISO date = its local midnight; a naive time = local."""
    if text is None:
        return None
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date/time or age: {text!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(tz))


def _zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"unknown time zone {text!r}") from exc
    return text


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"thresholds must be numbers: {text!r}") from exc
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("give one or more thresholds >= 0")
    return values
