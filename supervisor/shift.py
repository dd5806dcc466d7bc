"""The shift summary for the handover: the window asked for, and what is still open at the end
of it (callbacks not yet done, answered calls still owed a disposition)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from db.reports import Period
from supervisor import queries
from supervisor.store import Db

DEFAULT_SHIFT = timedelta(hours=8)
MAX_SHIFT = timedelta(hours=48)
_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


@dataclass(frozen=True, slots=True)
class OwedDispositions:
    operator_id: str
    calls: int


def _moment(text: str | None, zone: ZoneInfo) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text[:16], _FORMAT).replace(tzinfo=zone)
    except ValueError:
        return None


def shift_window(
    query_start: str | None, query_end: str | None, now: datetime, zone: ZoneInfo
) -> Period:
    """The shift asked for, made sane: by default the 8 hours up to now (to the minute); at
    most 48 hours; the ends swapped if given the wrong way round."""
    end = _moment(query_end, zone)
    start = _moment(query_start, zone)
    if end is None:
        end = (
            (start + DEFAULT_SHIFT)
            if start
            else now.astimezone(zone).replace(second=0, microsecond=0)
        )
    if start is None:
        start = end - DEFAULT_SHIFT
    if end < start:
        start, end = end, start
    if end == start:
        end = start + timedelta(minutes=1)
    if end - start > MAX_SHIFT:
        start = end - MAX_SHIFT
    return Period(start, end)


def window_input(moment: datetime, zone: ZoneInfo) -> str:
    """A time as a datetime-local input's value."""
    return moment.astimezone(zone).strftime(_FORMAT)


async def open_callbacks(db: Db, rules: queries.CallbackRules) -> int:
    """The entries of the desk's callback list (one per number), whenever their call was."""
    return len(await queries.open_callbacks(db, rules, limit=100_000))


async def owed_dispositions(db: Db, period: Period) -> list[OwedDispositions]:
    """Per operator: calls they were connected to within the shift, their part over, that have
    no disposition of theirs yet (as the desk and the ACD count them)."""
    rows = await queries.owed_dispositions_by_operator(db, period.start, period.end)
    return [OwedDispositions(operator_id, calls) for operator_id, calls in rows]
