"""Pure helpers of the call log pages: reading the search form, the page and order asked for
(kept in every link with the filters), and CSV cells that a spreadsheet will not run as
formulas."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from db.calllog import CallFilter, CallSort, ExportRow
from db.events import Outcome, Verdict
from supervisor.queries import FLAG_CHOICES

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?[0-9][0-9 .]*$")
_CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

CSV_COLUMNS = (
    "call_id",
    "arrived_at",
    "caller_number",
    "caller_name",
    "category",
    "priority",
    "operator_id",
    "outcome",
    "verdict",
    "wait_seconds",
    "talk_seconds",
    "flags",
    "agencies",
    "hangup_by",
    "end_reason",
    # reports: the latest disposition's notes and incident location
    "notes",
    "location",
)
PAGE_SIZES = (50, 100)
PAGING_KEYS = ("sort", "dir", "page", "size")


@dataclass(frozen=True, slots=True)
class SearchForm:
    """The search as the user typed it (shown back in the form) and as a query filter."""

    values: Mapping[str, str]
    flags: tuple[str, ...]
    where: CallFilter
    invalid: bool


@dataclass(frozen=True, slots=True)
class Paging:
    """Which page of the call log, in which order: `page` counts from 1."""

    sort: CallSort = CallSort.TIME
    descending: bool = True
    page: int = 1
    size: int = PAGE_SIZES[0]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def last_page(self, total: int) -> int:
        return max(1, -(-total // self.size))


def parse_paging(query: Mapping[str, str]) -> Paging:
    """The page and order asked for; anything unknown falls back to the default."""
    try:
        sort = CallSort(query.get("sort", ""))
    except ValueError:
        sort = CallSort.TIME
    descending = query.get("dir", "desc") != "asc"
    try:
        page = max(1, min(int(query.get("page", "1")), 1_000_000))
    except ValueError:
        page = 1
    try:
        size = int(query.get("size", ""))
    except ValueError:
        size = PAGE_SIZES[0]
    return Paging(sort, descending, page, size if size in PAGE_SIZES else PAGE_SIZES[0])


def paging_link(filters: Iterable[tuple[str, str]], paging: Paging, **changes: object) -> str:
    """The query string of the call log with the same filters and `paging` changed; a new
    order starts again at page 1."""
    if "sort" in changes or "descending" in changes or "size" in changes:
        changes.setdefault("page", 1)
    chosen = replace(paging, **changes)  # type: ignore[arg-type]
    kept = [(key, value) for key, value in filters if key not in PAGING_KEYS]
    kept += [
        ("sort", chosen.sort.value),
        ("dir", "desc" if chosen.descending else "asc"),
        ("page", str(chosen.page)),
        ("size", str(chosen.size)),
    ]
    return urlencode(kept)


def sort_link(filters: Iterable[tuple[str, str]], paging: Paging, sort: str) -> str:
    """A column heading's link: its order, flipped when it is the current one."""
    column = CallSort(sort)
    if column is paging.sort:
        return paging_link(filters, paging, descending=not paging.descending)
    # Times, waits and talk are most useful longest/newest first; names A to Z.
    first_descending = column in (CallSort.TIME, CallSort.WAIT, CallSort.TALK)
    return paging_link(filters, paging, sort=column, descending=first_descending)


def valid_call_id(call_id: str) -> bool:
    """Asterisk channel ids (and the tests' ids): safe as a file name."""
    return _CALL_ID.match(call_id) is not None and ".." not in call_id


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_search(
    query: Mapping[str, str],
    flags: Iterable[str],
    zone: ZoneInfo,
    *,
    categories: Iterable[str],
    operator: str | None = None,
) -> SearchForm:
    """Read the call log's query string; an operator id given forces the operator filter."""
    keys = ("number", "from", "to", "category", "operator", "outcome", "verdict")
    values = {key: query.get(key, "").strip()[:64] for key in keys}
    invalid = False
    since = until = None
    if values["from"]:
        first = _day(values["from"])
        invalid |= first is None
        since = datetime.combine(first, time(), zone) if first else None
    if values["to"]:
        last = _day(values["to"])
        invalid |= last is None
        until = datetime.combine(last + timedelta(days=1), time(), zone) if last else None

    def choice(key: str, allowed: Iterable[str]) -> str | None:
        nonlocal invalid
        value = values[key]
        if not value:
            return None
        if value not in set(allowed):
            invalid = True
            return None
        return value

    chosen_flags = tuple(sorted({f for f in flags if f in FLAG_CHOICES}))
    where = CallFilter(
        since=since,
        until=until,
        number=values["number"] or None,
        category=choice("category", categories),
        operator=operator if operator is not None else (values["operator"] or None),
        outcome=choice("outcome", [o.value for o in Outcome]),
        verdict=choice("verdict", [v.value for v in Verdict]),
        flags=chosen_flags,
    )
    return SearchForm(values=values, flags=chosen_flags, where=where, invalid=invalid)


def csv_cell(value: object) -> str:
    """Text for a CSV cell; text a spreadsheet would run as a formula gets a leading '."""
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        value = ";".join(str(v) for v in value)
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def csv_row(export: ExportRow, zone: ZoneInfo) -> list[str]:
    row = export.call
    arrived = row.arrived_at.astimezone(zone).isoformat() if row.arrived_at else None
    values: dict[str, object] = {
        "call_id": row.call_id,
        "arrived_at": arrived,
        "caller_number": row.caller_number,
        "caller_name": row.caller_name,
        "category": row.category,
        "priority": row.priority,
        "operator_id": row.operator_id,
        "outcome": row.outcome,
        "verdict": row.verdict,
        "wait_seconds": row.wait_seconds,
        "talk_seconds": row.talk_seconds,
        "flags": row.flags,
        "agencies": row.agencies,
        "hangup_by": row.hangup_by,
        "end_reason": row.end_reason,
        "notes": export.notes,
        "location": export.location,
    }
    return [csv_cell(values[column]) for column in CSV_COLUMNS]
