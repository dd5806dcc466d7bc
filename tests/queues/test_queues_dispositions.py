"""The disposition rule of the ACD core: an operator owing a disposition past
`disposition_block_after_seconds` is offered no call until it is given."""

from __future__ import annotations

import pytest
from test_queues_acd import CATEGORIES, ON, Centre, offers

from queues import AcdConfig, CallEnded, DispositionGiven, InvalidConfig, OperatorReady

BLOCK = 30.0


def operator_view(centre: Centre, operator_id: str):  # type: ignore[no-untyped-def]
    return next(v for v in centre.acd.snapshot().operators if v.operator_id == operator_id)


def one_call_done(centre: Centre, call_id: str = "c1") -> None:
    """1001 takes a medical call and it ends; wrap-up (5 s) cut short."""
    assert offers(centre.call(call_id, "medical")) == [(call_id, "1001")]
    centre.connect(call_id, "1001")
    centre(CallEnded(call_id), after=10)
    centre(OperatorReady("1001"))
    assert centre.acd.operator_state("1001") is ON.AVAILABLE


def test_a_disposition_owed_too_long_keeps_offers_away_until_it_is_given() -> None:
    centre = Centre(disposition_block_after_seconds=BLOCK)
    centre.login("1001", medical=1)
    one_call_done(centre)
    view = operator_view(centre, "1001")
    assert (view.dispositions_owed, view.held_for_disposition) == (1, False)
    # Owed, but not yet for long: calls are still offered.
    assert offers(centre.call("c2", "medical", after=1)) == [("c2", "1001")]
    centre.connect("c2", "1001")
    centre(CallEnded("c2"), after=5)
    centre(OperatorReady("1001"))
    # c1's disposition owed for 30 s now (the timer fires without any other event).
    centre(DispositionGiven("1001", "c2"))
    assert offers(centre.call("c3", "medical", after=BLOCK)) == []
    view = operator_view(centre, "1001")
    assert (view.state, view.dispositions_owed, view.held_for_disposition) == (
        ON.AVAILABLE,
        1,
        True,
    )
    # Giving it brings the waiting call at once.
    assert offers(centre(DispositionGiven("1001", "c1"), after=2)) == [("c3", "1001")]
    assert operator_view(centre, "1001").dispositions_owed == 0


def test_the_timer_alone_holds_a_waiting_operator_back() -> None:
    centre = Centre(disposition_block_after_seconds=BLOCK)
    centre.login("1001", medical=1)
    one_call_done(centre)
    centre.login("1002", medical=1)  # longest idle from now on is 1001
    centre(OperatorReady("1001"), after=BLOCK)  # nothing but time passed
    assert operator_view(centre, "1001").held_for_disposition
    assert offers(centre.call("c2", "medical")) == [("c2", "1002")]


def test_a_disposition_given_during_the_call_is_not_owed() -> None:
    centre = Centre(disposition_block_after_seconds=BLOCK)
    centre.login("1001", medical=1)
    assert offers(centre.call("c1", "medical")) == [("c1", "1001")]
    centre.connect("c1", "1001")
    centre(DispositionGiven("1001", "c1"), after=3)
    centre(CallEnded("c1"), after=3)
    centre(OperatorReady("1001"))
    assert operator_view(centre, "1001").dispositions_owed == 0
    assert offers(centre.call("c2", "medical", after=BLOCK + 1)) == [("c2", "1001")]


def test_the_rule_off_tracks_nothing_and_never_holds_an_operator() -> None:
    centre = Centre()
    centre.login("1001", medical=1)
    one_call_done(centre)
    assert operator_view(centre, "1001").dispositions_owed == 0
    assert offers(centre.call("c2", "medical", after=10 * BLOCK)) == [("c2", "1001")]


def test_stale_dispositions_are_ignored() -> None:
    centre = Centre(disposition_block_after_seconds=BLOCK)
    centre.login("1001", medical=1)
    assert centre(DispositionGiven("1001", "never")) == []
    assert centre(DispositionGiven("nobody", "never")) == []
    one_call_done(centre)
    centre(DispositionGiven("1002", "c1"))  # someone else's: 1001 still owes it
    assert operator_view(centre, "1001").dispositions_owed == 1


def test_the_setting_must_not_be_negative() -> None:
    with pytest.raises(InvalidConfig, match="disposition_block_after_seconds"):
        AcdConfig(CATEGORIES, disposition_block_after_seconds=-1)
