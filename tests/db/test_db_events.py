"""RecordEvent: normalisation, validation and the journal line format (no database)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db import events as ev
from db.events import EventKind, RecordEvent, RecordOnlyFailure
from queues.states import OfferFailure, OperatorState

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def test_at_is_utc_and_truncated_to_the_millisecond() -> None:
    wib = timezone(timedelta(hours=7))
    event = ev.call_arrived("c1", "112", at=datetime(2024, 5, 1, 8, 0, 0, 123987, tzinfo=wib))
    assert event.at == datetime(2024, 5, 1, 1, 0, 0, 123000, tzinfo=UTC)
    assert event.at.utcoffset() == timedelta(0)


def test_naive_time_and_non_json_data_fail_where_the_event_is_made() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ev.call_arrived("c1", "112", at=datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="non-finite"):
        RecordEvent.new(EventKind.IVR_STEP, call_id="c1", x=float("nan"))
    with pytest.raises(TypeError, match="not JSON"):
        RecordEvent.new(EventKind.IVR_STEP, call_id="c1", x={1, 2})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ev.disposition("c1", "op", "not-a-verdict")  # type: ignore[arg-type]


def test_helpers_put_documented_keys_in_data_and_drop_absent_ones() -> None:
    event = ev.call_classified("c1", "medical", priority=1, flags=["silent"])
    assert event.kind is EventKind.CALL_CLASSIFIED
    assert event.data == {"category": "medical", "priority": 1, "flags": ["silent"]}
    failed = ev.offer_failed("c1", "op1", OfferFailure.NO_ANSWER)
    assert failed.operator_id == "op1" and failed.data == {"reason": "no_answer"}
    state = ev.operator_state("op1", OperatorState.PAUSED, reason="toilet")
    assert state.call_id is None and state.data == {"state": "paused", "reason": "toilet"}


def test_states_and_offer_failures_are_recorded_as_the_strings_already_stored() -> None:
    # Rows in PostgreSQL and the SQL that derives and reports on them hold these strings.
    states = [ev.operator_state("op1", state).data["state"] for state in OperatorState]
    assert states == ["logged_out", "available", "offered", "on_call", "wrap_up", "paused"]
    failures = [*OfferFailure, *RecordOnlyFailure]
    reasons = [ev.offer_failed("c1", "op1", reason).data["reason"] for reason in failures]
    assert reasons == ["no_answer", "busy", "rejected", "unreachable", "hung_up_at_once"]
    with pytest.raises(ValueError, match="not an offer failure"):
        ev.offer_failed("c1", "op1", "answered")  # type: ignore[arg-type]


def test_nul_and_lone_surrogates_become_replacement_characters() -> None:
    event = ev.call_arrived("c\x00", "0812\x00", caller_name="a\ud800b")
    assert event.call_id == "c\ufffd"
    assert event.data["caller_number"] == "0812\ufffd"
    assert event.data["caller_name"] == "a\ufffdb"
    json.loads(event.data_json)


@given(
    data=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    call_id=st.none() | st.text(max_size=30),
    micros=st.integers(0, 10**12),
)
def test_journal_line_round_trips(
    data: dict[str, ev.JSON], call_id: str | None, micros: int
) -> None:
    at = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    event = RecordEvent(uuid.uuid4(), EventKind.FLAG_SET, call_id, "op", at, data)
    line = event.to_line()
    assert "\n" not in line
    back = RecordEvent.from_line(line)
    assert back == event
    assert back.data_json == event.data_json


def test_unknown_line_format_is_refused() -> None:
    line = ev.flag_set("c1", "repeat").to_line().replace('"v":1', '"v":99')
    with pytest.raises(ValueError, match="spool format"):
        RecordEvent.from_line(line)


def test_a_fact_is_a_record_event_before_its_call_id_and_time() -> None:
    fact = ev.Facts.call_abandoned(position=2, wait_seconds=None, state="queue")
    assert fact == ev.Fact(EventKind.CALL_ABANDONED, {"position": 2, "state": "queue"})
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    event = fact.stamp(call_id="c1", at=at)
    assert (event.kind, event.call_id, event.at, dict(event.data)) == (
        EventKind.CALL_ABANDONED,
        "c1",
        at,
        {"position": 2, "state": "queue"},
    )
    # The constructors with a call id and a time are the same facts, stamped.
    same = ev.call_abandoned("c1", position=2, at=at)
    assert (same.kind, dict(same.data)) == (EventKind.CALL_ABANDONED, {"position": 2})


def test_a_fact_keeps_its_operator() -> None:
    event = ev.Facts.offer_failed("1001", "busy").stamp(call_id="c1")
    assert (event.operator_id, dict(event.data)) == ("1001", {"reason": "busy"})
    with pytest.raises(ValueError):
        ev.offer_failed("c1", "1001", "answered_elsewhere")  # type: ignore[arg-type]
