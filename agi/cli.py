"""`siaga block`, `siaga unblock`, `siaga blocks`: registered on the main CLI's subparsers by
`register(subparsers, get_dsn)`. Exit codes (given by `stack/cli.py` for what the handlers
raise, db/command.py): 0 done, 1 database error or nothing to unblock, 2 bad arguments.

A block is time-limited, has a reason and an author, and is audited: blocking and unblocking
append events to the journal, nothing is ever deleted. A blocked caller is still answered (a
warning first, then the lowest priority), never dropped.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from agi.records import Block, block, list_blocks, unblock
from agi.screening import is_anonymous, national_form
from db.command import CommandError, run_database_command
from db.reports import DEFAULT_TZ

GetDsn = Callable[[argparse.Namespace], str]
DEFAULT_HOURS = 24.0


def register(
    subparsers: Any,
    get_dsn: GetDsn,
    *,
    default_hours: Callable[[argparse.Namespace], float] | None = None,
) -> None:
    """`default_hours(args)` gives `--hours` when it is not given (siaga.toml's block_hours)."""
    hours_of = default_hours or (lambda args: DEFAULT_HOURS)

    p = subparsers.add_parser("block", help="block a caller number for a time (still answered)")
    p.add_argument("number")
    p.add_argument("--hours", type=_hours, help=f"how long (default {DEFAULT_HOURS:g})")
    p.add_argument("--reason", required=True, help="why, for the audit trail")
    p.add_argument("--by", default=None, help="author (default: the login name)")
    p.set_defaults(
        func=lambda args: run_database_command(_block(get_dsn(args), args, hours_of(args)))
    )

    u = subparsers.add_parser("unblock", help="lift every active block on a caller number")
    u.add_argument("number")
    u.add_argument("--reason", default=None)
    u.add_argument("--by", default=None, help="author (default: the login name)")
    u.set_defaults(func=lambda args: run_database_command(_unblock(get_dsn(args), args)))

    b = subparsers.add_parser("blocks", help="list blocked caller numbers")
    b.add_argument("--number", help="only this number (any written form)")
    b.add_argument("--all", action="store_true", help="also expired and lifted blocks")
    b.add_argument("--limit", type=int, default=1000)
    b.add_argument("--tz", default=DEFAULT_TZ, help="time zone for display")
    b.add_argument("--json", action="store_true", help="JSON for machines")
    b.set_defaults(func=lambda args: run_database_command(_blocks(get_dsn(args), args)))


# -- handlers --------------------------------------------------------------------------------


async def _block(dsn: str, args: argparse.Namespace, default_hours: float) -> int:
    number = _number(args.number)
    hours = args.hours if args.hours is not None else default_hours
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        event = await block(
            conn, number, hours=hours, reason=args.reason, set_by=_author(args), now=now
        )
    finally:
        await conn.close()
    print(f"blocked {number} until {event.data['until']} (block {event.event_id})")
    return 0


async def _unblock(dsn: str, args: argparse.Namespace) -> int:
    number = _number(args.number)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        cleared = await unblock(
            conn, number, cleared_by=_author(args), reason=args.reason, now=datetime.now(UTC)
        )
    finally:
        await conn.close()
    if not cleared:
        raise CommandError(f"{number} has no active block")
    for item in cleared:
        print(f"unblocked {item.number} (block {item.flag_id})")
    return 0


async def _blocks(dsn: str, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await list_blocks(
            conn, now, number=args.number, include_inactive=args.all, limit=args.limit
        )
    finally:
        await conn.close()
    if args.json:
        print(json.dumps([block_json(row, now) for row in rows], ensure_ascii=False, indent=2))
    else:
        print(blocks_table(rows, now, ZoneInfo(args.tz)))
    return 0


# -- output ----------------------------------------------------------------------------------


def status(row: Block, now: datetime) -> str:
    if row.cleared_at is not None:
        return "lifted"
    return "active" if row.active(now) else "expired"


def block_json(row: Block, now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {"status": status(row, now)}
    for item in dataclasses.fields(row):
        out[item.name] = _jsonable(getattr(row, item.name))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def blocks_table(rows: list[Block], now: datetime, tz: ZoneInfo) -> str:
    if not rows:
        return "no blocks"
    header = ("number", "status", "set", "until", "by", "reason")
    body = [
        (
            row.number,
            status(row, now),
            _when(row.set_at, tz),
            _when(row.expires_at, tz),
            row.set_by or "",
            _one_line(row.reason or ""),
        )
        for row in rows
    ]
    widths = [max(len(str(r[i])) for r in (header, *body)) for i in range(len(header))]
    lines = [
        "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in (header, *body)
    ]
    return "\n".join(lines)


def _when(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:60]


# -- argument types --------------------------------------------------------------------------


def _number(text: str) -> str:
    number = national_form(text)
    if is_anonymous(number) or not any(ch.isdigit() for ch in number):
        raise argparse.ArgumentTypeError(f"not a caller number: {text!r}")
    return number


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"hours must be a number: {text!r}") from exc
    if not 0 < hours <= 24 * 366:
        raise argparse.ArgumentTypeError("hours must be more than 0 and at most 8784")
    return hours


def _author(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
