"""A colleague conferenced into a call (OperatorJoined), who may take it over (OperatorLeft): the
ACD knows the first operator is free (wrap-up) and the colleague busy."""

from __future__ import annotations

import pytest
from test_queues_acd import ON, Centre, cancels, changes, offers

from queues import CallEnded, CancelReason, InvalidEvent, OperatorPaused, Reason
from queues.audit import audit
from queues.events import OperatorJoined, OperatorLeft


@pytest.fixture(autouse=True)
def consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    """After every event of these tests, the engine's indexes agree (queues/audit.py)."""
    handle = Centre.__call__

    def checked(self: Centre, *args: object, **kwargs: object) -> object:
        decisions = handle(self, *args, **kwargs)  # type: ignore[arg-type]
        assert audit(self.acd) == []
        return decisions

    monkeypatch.setattr(Centre, "__call__", checked)


def on_call(centre: Centre) -> str:
    centre.login("a", medical=1)
    centre.login("b", medical=1)
    call_id = "c1"
    (offer,) = offers(centre.call(call_id, "medical"))
    centre.connect(call_id, offer[1])
    assert offer[1] == "a"  # the longest idle
    return call_id


def test_a_joined_colleague_is_on_the_call_and_gets_no_offer() -> None:
    centre = Centre()
    call_id = on_call(centre)
    decisions = centre(OperatorJoined(call_id, "b"))
    assert changes(decisions) == [("b", ON.AVAILABLE, ON.ON_CALL, Reason.JOINED)]
    assert offers(centre.call("c2", "medical")) == []  # both busy now


def test_the_operator_leaving_hands_the_call_over_and_goes_to_wrap_up() -> None:
    centre = Centre()
    call_id = on_call(centre)
    centre(OperatorJoined(call_id, "b"))
    decisions = centre(OperatorLeft(call_id, "a"))
    assert changes(decisions) == [("a", ON.ON_CALL, ON.WRAP_UP, Reason.HANDED_OVER)]
    assert centre.acd.operator_state("b") is ON.ON_CALL
    # The call is b's now: its end frees b.
    assert changes(centre(CallEnded(call_id))) == [("b", ON.ON_CALL, ON.WRAP_UP, Reason.CALL_ENDED)]


def test_a_colleague_leaving_again_goes_to_wrap_up_and_the_call_stays_with_its_operator() -> None:
    centre = Centre()
    call_id = on_call(centre)
    centre(OperatorJoined(call_id, "b"))
    assert changes(centre(OperatorLeft(call_id, "b"))) == [
        ("b", ON.ON_CALL, ON.WRAP_UP, Reason.CALL_ENDED)
    ]
    assert centre.acd.operator_state("a") is ON.ON_CALL


def test_the_end_of_a_conference_frees_both() -> None:
    centre = Centre()
    call_id = on_call(centre)
    centre(OperatorJoined(call_id, "b"))
    assert {c[0] for c in changes(centre(CallEnded(call_id)))} == {"a", "b"}


def test_a_colleague_rung_for_an_offer_meanwhile_loses_the_offer() -> None:
    centre = Centre()
    call_id = on_call(centre)
    assert offers(centre.call("c2", "medical")) == [("c2", "b")]
    decisions = centre(OperatorJoined(call_id, "b"))
    assert cancels(decisions) == [("c2", "b", CancelReason.OPERATOR_LEFT)]
    assert centre.acd.operator_state("b") is ON.ON_CALL


def test_a_paused_colleague_is_paused_again_after_the_call() -> None:
    centre = Centre()
    call_id = on_call(centre)
    centre(OperatorPaused("b", "break"))
    centre(OperatorJoined(call_id, "b"))
    assert changes(centre(CallEnded(call_id)))[-1] == ("b", ON.ON_CALL, ON.PAUSED, "break")


def test_an_operator_on_another_call_cannot_join() -> None:
    centre = Centre()
    call_id = on_call(centre)
    centre.busy("b")
    with pytest.raises(InvalidEvent):
        centre(OperatorJoined(call_id, "b"))


def test_leaving_without_a_colleague_or_a_call_is_stale() -> None:
    centre = Centre()
    call_id = on_call(centre)
    assert centre(OperatorLeft(call_id, "a")) == []
    assert centre.acd.operator_state("a") is ON.ON_CALL
    assert centre(OperatorLeft("gone", "a")) == []
