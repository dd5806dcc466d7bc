"""The chaos harness's pure parts: the fault schedule, the run's siaga.toml, and the comparison of
the records with Asterisk's own record (no stack)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.cel import AsteriskCall
from db.events import HangupBy
from testbed.chaos import ChaosPlan, FaultKind, fault_schedule
from testbed.chaos_compare import CallRow, Duplicate, compare, expected_outcome
from testbed.chaos_stack import (
    EXAMPLE,
    Ports,
    chaos_phones,
    chaos_settings,
    dump_toml,
    write_config,
)

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


# -- the schedule


def test_faults_are_the_planned_kinds_in_time_order_within_the_arrivals() -> None:
    plan = ChaosPlan(duration=120, app_kills=10, postgres_kills=2, asterisk_kills=1, seed=7)
    faults = fault_schedule(plan)
    kinds = [f.kind for f in faults]
    assert kinds.count(FaultKind.APP) == 10
    assert kinds.count(FaultKind.POSTGRES) == 2
    assert kinds.count(FaultKind.ASTERISK) == 1
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    assert all(0.05 * 120 <= f.at <= 0.85 * 120 for f in faults)
    assert all(0 <= f.down_for <= 10 for f in faults if f.kind is FaultKind.APP)


def test_a_seed_repeats_its_moments_and_another_seed_does_not() -> None:
    plan = ChaosPlan(seed=3)
    assert fault_schedule(plan) == fault_schedule(ChaosPlan(seed=3))
    assert fault_schedule(plan) != fault_schedule(ChaosPlan(seed=4))


# -- the run's configuration


def test_the_runs_siaga_toml_points_at_its_own_asterisk_and_postgres(tmp_path: Path) -> None:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    ports = Ports(ari=18088, ami=15038, sip=15060, web=18112, agi=14573, rtp_start=20000)
    phones = chaos_phones(3)
    dsn = "postgresql://siaga:p%40ss@127.0.0.1:6000/siaga"
    log_dir = tmp_path / "srv/siaga/chaos-1/log"
    settings = chaos_settings(example, dsn=dsn, ports=ports, phones=phones, log_dir=log_dir)
    config = write_config(tmp_path / "siaga.toml", settings)

    assert not config.asterisk.embedded and not config.database.embedded
    assert config.database.url == dsn
    assert config.asterisk.log_dir == str(log_dir)
    assert config.asterisk.ari_url == "http://127.0.0.1:18088"
    assert (config.asterisk.sip_port, config.web.port, config.agi.port) == (15060, 18112, 14573)
    assert config.asterisk.rtp_end - config.asterisk.rtp_start + 1 == 2000
    assert [(o.sip_user, o.dial_string) for o in config.operators] == [
        (p.user, f"PJSIP/{p.user}") for p in phones
    ]
    every_skill = {c.skill for c in config.categories}
    assert all(dict(o.skills) == dict.fromkeys(every_skill, 1) for o in config.operators)
    # Everything else is the example's.
    assert config.ivr.menus.keys() == {"main", "non_emergency"}
    assert [c.code for c in config.categories][:2] == ["medical", "fire"]
    assert config.acd.pause_reasons["3"] == "prayer"


def test_dump_toml_reads_back_as_written() -> None:
    data = {
        "top": "x",
        "table": {"s": 'quo"te\\', "n": 1.5, "b": False, "l": ["a", 2], "in": {"1": "one"}},
        "rows": [{"id": "a", "skills": {"x": 1}}, {"id": "b", "skills": {}}],
    }
    assert tomllib.loads(dump_toml(data)) == data


# -- the comparison


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
