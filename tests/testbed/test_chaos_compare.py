"""The chaos run's verdict (testbed/chaos_compare.py): each call in Asterisk's own record
against its `calls` row."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from db.cel import AsteriskCall
from db.events import HangupBy
from testbed.chaos_compare import CallRow, Duplicate, compare, expected_outcome

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def seen(
    call_id: str,
    *,
    connected_at: datetime | None = None,
    operator_id: str | None = None,
    ended_at: datetime | None = None,
    hangup_by: HangupBy | None = None,
    fallback: bool = False,
) -> AsteriskCall:
    """A call as Asterisk's record has it."""
    return AsteriskCall(
        call_id=call_id,
        channel=f"PJSIP/trunk-{call_id}",
        caller_number="08111",
        arrived_at=T0,
        answered_at=T0,
        connected_at=connected_at,
        operator_id=operator_id,
        ended_at=ended_at,
        hangup_by=hangup_by,
        fallback=fallback,
        last_event_at=ended_at or at(15),
    )


def row(call_id: str, **changes: object) -> CallRow:
    base = CallRow(
        call_id=call_id,
        arrived_at=T0,
        connected_at=None,
        abandoned_at=None,
        ended_at=None,
        outcome="ongoing",
        operator_id=None,
        flags=(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


ANSWERED = seen(
    "a", connected_at=at(3), operator_id="2001", ended_at=at(10), hangup_by=HangupBy.CALLER
)
ANSWERED_ROW = row(
    "a", connected_at=at(3.2), operator_id="2001", ended_at=at(10.1), outcome="answered"
)


def test_a_call_recorded_as_asterisk_saw_it_is_clean() -> None:
    result = compare({"a": ANSWERED}, {"a": ANSWERED_ROW}, [])
    assert result.clean
    assert result.summary()["missing"] == 0 and result.summary()["wrong"] == 0


def test_a_call_with_no_row_is_missing_and_a_row_of_no_call_is_extra() -> None:
    result = compare({"a": ANSWERED}, {"b": replace(ANSWERED_ROW, call_id="b")}, [])
    assert result.missing == ["a"]
    assert result.extra == ["b"]
    assert not result.clean


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"arrived_at": at(1.5)}, "arrival off by 1.500 s"),
        ({"connected_at": at(4.5)}, "answer off by 1.500 s"),
        ({"connected_at": None, "outcome": "abandoned", "abandoned_at": at(3)}, "answer: records"),
        ({"ended_at": at(12)}, "end off by 2.000 s"),
        ({"outcome": "unanswered"}, "outcome unanswered, expected answered"),
        ({"operator_id": "2002"}, "operator 2002, Asterisk 2001"),
        ({"ended_at": None}, "not closed"),
    ],
)
def test_each_way_a_row_can_be_wrong_is_named(changes: dict[str, object], why: str) -> None:
    result = compare({"a": ANSWERED}, {"a": replace(ANSWERED_ROW, **changes)}, [])  # type: ignore[arg-type]
    assert result.wrong is not None and len(result.wrong) == 1
    call_id, reasons = result.wrong[0]
    assert call_id == "a"
    assert any(reason.startswith(why) for reason in reasons), reasons


def test_a_second_within_the_tolerance_is_not_wrong() -> None:
    close = replace(ANSWERED_ROW, arrived_at=at(0.99), ended_at=at(10.99))
    assert compare({"a": ANSWERED}, {"a": close}, []).wrong == []


def test_a_fallback_call_must_carry_the_fallback_flag() -> None:
    fallback = replace(ANSWERED, fallback=True)
    unflagged = compare({"a": fallback}, {"a": ANSWERED_ROW}, [])
    assert unflagged.wrong == [("a", ["fallback not flagged"])]
    flagged = compare({"a": fallback}, {"a": replace(ANSWERED_ROW, flags=("fallback",))}, [])
    assert flagged.clean
    assert flagged.fallback_calls == 1


def test_an_abandoned_call_ends_with_its_abandon() -> None:
    gone = seen("g", ended_at=at(3), hangup_by=HangupBy.CALLER)
    abandoned = row("g", abandoned_at=at(3.1), outcome="abandoned")
    assert compare({"g": gone}, {"g": abandoned}, []).clean


def test_a_call_cut_by_asterisks_death_has_no_end_to_compare_but_must_be_closed() -> None:
    cut = seen("c")  # no hang-up in the record, and no channel left
    closed = row("c", ended_at=at(20), outcome="unanswered")
    result = compare({"c": cut}, {"c": closed}, [], live=())
    assert result.clean and result.cut_calls == 1 and result.asterisk_open == []
    assert compare({"c": cut}, {"c": row("c")}, []).open == ["c"]


def test_a_call_still_up_in_asterisk_is_reported() -> None:
    result = compare({"u": seen("u")}, {"u": row("u")}, [], live={"u", "other"})
    assert result.asterisk_open == ["u"]
    assert result.cut_calls == 0
    assert result.open == ["u"]


def test_duplicates_and_open_rows_count_even_without_asterisks_record() -> None:
    twice = [Duplicate("a", "call_arrived", 2)]
    result = compare(None, {"a": ANSWERED_ROW, "o": row("o")}, twice)
    assert result.duplicates == twice
    assert result.open == ["o"]
    summary = result.summary()
    assert summary["missing"] is None and summary["asterisk_calls"] is None
    assert summary["duplicates"] == 1 and summary["open"] == 1
    assert not result.clean


@pytest.mark.parametrize(
    ("call", "outcome"),
    [
        (ANSWERED, "answered"),
        (replace(ANSWERED, fallback=True), "answered"),
        (seen("x", ended_at=at(2), hangup_by=HangupBy.CALLER), "abandoned"),
        (seen("x", ended_at=at(2), hangup_by=HangupBy.CALLER, fallback=True), "abandoned"),
        (seen("x", ended_at=at(2), hangup_by=HangupBy.SYSTEM, fallback=True), "fallback"),
        (seen("x"), "unanswered"),  # cut by Asterisk's death
        (seen("x", fallback=True), "fallback"),
    ],
)
def test_the_expected_outcome_follows_the_calls_derivation(
    call: AsteriskCall, outcome: str
) -> None:
    assert expected_outcome(call) == outcome
