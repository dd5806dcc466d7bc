"""Unit tests of the ACD engine, one rule at a time."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from queues import (
    Acd,
    AcdConfig,
    Announce,
    CallEnded,
    CallHungUp,
    CallPlace,
    CallPriorityChanged,
    CallQueued,
    CancelOffer,
    CancelReason,
    Category,
    ClockWentBackwards,
    Decision,
    DuplicateCall,
    Event,
    InvalidEvent,
    Offer,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
    OfferTimedOut,
    OperatorLoggedIn,
    OperatorLoggedOut,
    OperatorPaused,
    OperatorReady,
    OperatorRegistration,
    OperatorState,
    OperatorStateChanged,
    Overflow,
    OverflowCondition,
    OverflowRule,
    OverflowTarget,
    Reason,
    Strategy,
    TargetKind,
    Tick,
    UnknownCategory,
    UnknownOperator,
)
from queues.audit import audit
from queues.defaults import default_categories

CATEGORIES = (
    Category("medical", "Medis", "Medical", 1, "medical", 10, 5),
    Category("fire", "Kebakaran", "Fire", 1, "fire", 10, 0),
    Category("info", "Informasi", "Information", 5, "info", 60, 0),
)
ON = OperatorState


class Centre:
    """An engine and its clock; `secondary_after` sets every category's secondary wait."""

    def __init__(self, secondary_after: float | None = None, **settings: Any) -> None:
        settings.setdefault("announce_interval_seconds", None)
        categories = settings.setdefault("categories", CATEGORIES)
        if secondary_after is not None:
            settings["categories"] = tuple(
                dataclasses.replace(c, secondary_after_seconds=secondary_after) for c in categories
            )
        self.config = AcdConfig(**settings)
        self.now = 1000.0
        self.acd = Acd(self.config, self.now)

    def __call__(self, event: Event, after: float = 0.0) -> list[Decision]:
        self.now += after
        return self.acd.handle(event, self.now)

    def login(self, operator_id: str, **skills: int) -> list[Decision]:
        return self(OperatorLoggedIn(operator_id, skills))

    def call(
        self, call_id: str, category: str, age: float = 0.0, after: float = 0.0, **kw: Any
    ) -> list[Decision]:
        self.now += after
        return self(CallQueued(call_id, category, self.now - age, **kw))

    def connect(self, call_id: str, operator_id: str) -> None:
        """Answer the offer of this call to this operator, which must be ringing."""
        assert self.acd.operator_state(operator_id) is ON.OFFERED
        self(OfferAnswered(call_id, operator_id))
        assert self.acd.call_place(call_id) is CallPlace.CONNECTED

    def finish(self, operator_id: str) -> list[Decision]:
        """End the operator's call and skip any wrap-up: the decisions of both."""
        view = next(v for v in self.acd.snapshot().operators if v.operator_id == operator_id)
        assert view.call_id is not None
        decisions = self(CallEnded(view.call_id))
        if self.acd.operator_state(operator_id) is ON.WRAP_UP:
            decisions += self(OperatorReady(operator_id))
        return decisions

    def busy(self, operator_id: str, category: str = "medical") -> str:
        """Put an available operator on a call of their own."""
        call_id = f"busy-{operator_id}-{self.now}"
        assert offers(self.call(call_id, category)) == [(call_id, operator_id)]
        self.connect(call_id, operator_id)
        return call_id


def offers(decisions: list[Decision]) -> list[tuple[str, str]]:
    return [(d.call_id, d.operator_id) for d in decisions if isinstance(d, Offer)]


def cancels(decisions: list[Decision]) -> list[tuple[str, str, CancelReason]]:
    return [(d.call_id, d.operator_id, d.reason) for d in decisions if isinstance(d, CancelOffer)]


def changes(decisions: list[Decision]) -> list[tuple[str, OperatorState, OperatorState, str]]:
    return [
        (d.operator_id, d.old, d.new, d.reason)
        for d in decisions
        if isinstance(d, OperatorStateChanged)
    ]


def overflows(decisions: list[Decision]) -> list[Overflow]:
    return [d for d in decisions if isinstance(d, Overflow)]


def waiting_ids(centre: Centre, category: str) -> list[str]:
    view = next(v for v in centre.acd.snapshot().categories if v.code == category)
    return [w.call_id for w in view.waiting]


@pytest.fixture
def centre() -> Centre:
    return Centre()


# ---- order -----------------------------------------------------------------------------------


def test_a_call_goes_to_an_available_operator_with_the_skill(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre.login("1002", medical=1)
    decisions = centre.call("c1", "medical")
    assert offers(decisions) == [("c1", "1002")]
    assert changes(decisions) == [("1002", ON.AVAILABLE, ON.OFFERED, Reason.OFFER)]
    assert centre.acd.call_place("c1") is CallPlace.OFFERED


def test_the_most_urgent_priority_is_served_first_across_categories(centre: Centre) -> None:
    centre.login("1001", medical=1, info=1)
    centre.busy("1001")
    centre.call("old-info", "info", age=300)
    centre.call("new-medical", "medical", age=1)
    decisions = centre.finish("1001")
    assert offers(decisions) == [("new-medical", "1001")]


def test_equal_priority_is_served_by_original_arrival_across_categories(centre: Centre) -> None:
    centre.login("1001", medical=1, fire=1)
    centre.busy("1001", "fire")
    centre.call("fire-late", "fire", age=5)
    centre.call("medical-early", "medical", age=20)
    centre.call("fire-early", "fire", age=10)
    assert offers(centre.finish("1001")) == [("medical-early", "1001")]


def test_ties_on_priority_and_arrival_keep_queueing_order(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre.busy("1001", "fire")
    for call_id in ("first", "second", "third"):
        centre(CallQueued(call_id, "fire", 900.0))
    assert waiting_ids(centre, "fire") == ["first", "second", "third"]


def test_a_requeued_call_after_a_restart_keeps_its_original_arrival() -> None:
    centre = Centre()
    centre.login("1001", fire=1)
    centre.busy("1001", "fire")
    centre.call("new", "fire", age=2)
    centre.call("re-queued", "fire", age=90)  # came back from before the restart
    assert waiting_ids(centre, "fire") == ["re-queued", "new"]
    ages = {w.call_id: w.age_seconds for v in centre.acd.snapshot().categories for w in v.waiting}
    assert ages == {"re-queued": 90, "new": 2}


def test_priority_change_moves_a_waiting_call_to_the_top_keeping_its_arrival(
    centre: Centre,
) -> None:
    centre.login("1001", info=1)
    centre.busy("1001", "info")
    centre.call("a", "info", age=30)
    centre.call("b", "info", age=20)
    centre.call("silent", "info", age=10)
    centre(CallPriorityChanged("silent", 0))
    assert waiting_ids(centre, "info") == ["silent", "a", "b"]
    view = next(w for v in centre.acd.snapshot().categories for w in v.waiting)
    assert (view.call_id, view.priority, view.age_seconds) == ("silent", 0, 10)


def test_a_priority_change_carries_the_calls_new_flags_to_the_board(centre: Centre) -> None:
    centre.login("1001", info=1)
    centre.busy("1001", "info")
    centre.call("mute", "info", age=10)
    centre(CallPriorityChanged("mute", 0, frozenset({"silent", "cannot_speak"})))
    view = next(w for v in centre.acd.snapshot().categories for w in v.waiting)
    assert view.flags == {"silent", "cannot_speak"}
    centre(CallPriorityChanged("mute", 1))  # no flags given: they stay
    view = next(w for v in centre.acd.snapshot().categories for w in v.waiting)
    assert (view.priority, view.flags) == (1, {"silent", "cannot_speak"})
    with pytest.raises(InvalidEvent):
        centre(CallPriorityChanged("mute", 0, frozenset({1})))  # type: ignore[arg-type]


def test_a_call_queued_with_an_explicit_priority_ignores_the_category_priority(
    centre: Centre,
) -> None:
    centre.login("1001", info=1, medical=1)
    centre.busy("1001")
    centre.call("medical", "medical", age=50)
    centre.call("cannot-speak", "info", age=1, priority=0)
    assert offers(centre.finish("1001")) == [("cannot-speak", "1001")]


# ---- strategies ------------------------------------------------------------------------------


def test_longest_idle_operator_gets_the_call() -> None:
    centre = Centre(strategy=Strategy.LONGEST_IDLE)
    centre.login("1001", fire=1)
    centre.login("1002", fire=1)
    centre.login("1003", fire=1)
    # 1001 takes a call and finishes it: now the most recently idle.
    call = centre.busy("1001", "fire")
    centre(CallEnded(call), after=5)
    assert offers(centre.call("c", "fire")) == [("c", "1002")]
    assert offers(centre.call("d", "fire")) == [("d", "1003")]
    assert offers(centre.call("e", "fire")) == [("e", "1001")]


def test_fewest_calls_operator_gets_the_call() -> None:
    centre = Centre(strategy=Strategy.FEWEST_CALLS)
    centre.login("1001", fire=1)
    centre.login("1002", fire=1)
    centre(OperatorPaused("1002", "break"))
    for _ in range(2):
        call = centre.busy("1001", "fire")
        centre(CallEnded(call), after=1)
    centre(OperatorReady("1002"), after=1)
    # 1001 has been idle longer, but 1002 has answered fewer calls.
    assert offers(centre.call("c", "fire")) == [("c", "1002")]


def test_round_robin_goes_on_after_the_last_operator_chosen() -> None:
    centre = Centre(strategy=Strategy.ROUND_ROBIN)
    for op in ("1001", "1002", "1003"):
        centre.login(op, fire=1)
    chosen = []
    for i in range(5):
        decisions = centre.call(f"c{i}", "fire")
        ((call_id, op),) = offers(decisions)
        chosen.append(op)
        centre(OfferAnswered(call_id, op))
        centre(CallEnded(call_id))
    assert chosen == ["1001", "1002", "1003", "1001", "1002"]


def test_round_robin_skips_busy_operators_and_remembers_its_place() -> None:
    centre = Centre(strategy=Strategy.ROUND_ROBIN)
    for op in ("1001", "1002", "1003"):
        centre.login(op, fire=1)
    assert offers(centre.call("a", "fire")) == [("a", "1001")]
    centre.connect("a", "1001")
    assert offers(centre.call("b", "fire")) == [("b", "1002")]
    centre.connect("b", "1002")
    centre(CallEnded("a"))
    assert offers(centre.call("c", "fire")) == [("c", "1003")]


def test_ring_all_rings_every_eligible_operator_and_the_first_answer_wins() -> None:
    centre = Centre(strategy=Strategy.RING_ALL)
    centre.login("1001", fire=1)
    centre.login("1002", fire=1)
    centre.login("1003", medical=1)
    assert sorted(offers(centre.call("c1", "fire"))) == [("c1", "1001"), ("c1", "1002")]
    decisions = centre(OfferAnswered("c1", "1002"))
    assert cancels(decisions) == [("c1", "1001", CancelReason.ANSWERED_ELSEWHERE)]
    assert centre.acd.operator_state("1001") is ON.AVAILABLE
    assert centre.acd.operator_state("1002") is ON.ON_CALL
    assert centre.acd.operator_state("1003") is ON.AVAILABLE
    assert offers(centre.call("c2", "fire")) == [("c2", "1001")]


def test_ring_all_call_returns_only_when_every_operator_failed() -> None:
    centre = Centre(strategy=Strategy.RING_ALL)
    centre.login("1001", fire=1)
    centre.login("1002", fire=1)
    centre.call("c1", "fire")
    centre(OfferFailed("c1", "1001", OfferFailure.BUSY))
    assert centre.acd.call_place("c1") is CallPlace.OFFERED
    centre(OfferFailed("c1", "1002", OfferFailure.REJECTED))
    assert centre.acd.call_place("c1") is CallPlace.WAITING


# ---- skills: primary and secondary operators --------------------------------------------------


def test_secondary_skill_takes_a_call_only_after_the_categorys_secondary_wait() -> None:
    centre = Centre(secondary_after=30)
    centre.login("helper", fire=2)
    assert offers(centre.call("c1", "fire", age=5)) == []
    assert offers(centre(Tick(), after=24)) == []
    assert offers(centre(Tick(), after=1)) == [("c1", "helper")]


def test_a_call_past_its_secondary_wait_goes_to_a_secondary_operator_at_once() -> None:
    centre = Centre(secondary_after=30)
    centre.login("helper", fire=2)
    assert offers(centre.call("c1", "fire", age=31)) == [("c1", "helper")]


def test_the_secondary_wait_keeps_the_calls_place_in_line() -> None:
    centre = Centre(secondary_after=30)
    centre.login("1001", fire=1)
    centre.busy("1001", "fire")
    centre.call("old", "fire", age=40)
    centre.call("young", "fire", age=1)
    # Opening to secondary operators widened who may take "old"; it is still first in line.
    assert offers(centre.finish("1001")) == [("old", "1001")]
    assert [w.open_to_secondary for w in centre.acd.snapshot().categories[1].waiting] == [False]


def test_primary_operators_are_preferred_over_secondary_ones() -> None:
    centre = Centre(secondary_after=0)
    centre.login("helper", fire=2)
    centre.busy("helper", "fire")  # no primary operator yet: the helper takes it at once
    centre.login("primary", fire=1)
    centre.finish("helper")
    assert offers(centre.call("c", "fire")) == [("c", "primary")]


def test_each_category_has_its_own_secondary_wait() -> None:
    categories = (
        Category("medical", "Medis", "Medical", 1, "medical", 10, 0, 0),
        Category("info", "Informasi", "Information", 5, "info", 60, 0, 30),
    )
    centre = Centre(categories=categories)
    centre.login("helper", medical=2, info=2)
    centre.login("other", medical=2, info=2)
    assert offers(centre.call("i", "info")) == []
    assert offers(centre.call("m", "medical", after=1)) == [("m", "helper")]
    centre.connect("m", "helper")
    assert offers(centre(Tick(), after=28)) == []
    assert offers(centre(Tick(), after=1)) == [("i", "other")]


# A centre as a user tried it: two phones, no wrap-up. 1001 answers emergencies, 1002 the rest and
# emergencies at level 2.
EMERGENCY = (
    Category("medical", "Medis", "Medical", 1, "medical", 10, 0, 0),
    Category("general", "Darurat umum", "General emergency", 2, "general", 10, 0, 0),
)


def issue_centre(medical_secondary_after: float) -> Centre:
    medical, general = EMERGENCY
    centre = Centre(
        categories=(
            dataclasses.replace(medical, secondary_after_seconds=medical_secondary_after),
            general,
        )
    )
    centre.login("1001", medical=1, general=1)
    centre.login("1002", general=1, medical=2)
    centre.busy("1001", "medical")  # 1002 is longer idle, but medical is 1001's primary skill
    return centre


def test_a_medical_call_rings_a_free_secondary_operator_at_once() -> None:
    centre = issue_centre(medical_secondary_after=0)
    assert offers(centre.call("medical-1", "medical")) == [("medical-1", "1002")]
    centre.connect("medical-1", "1002")
    # The general call that took 1002 before the fix now waits for the first free operator.
    assert offers(centre.call("general-1", "general", after=1.5)) == []


def test_with_a_secondary_wait_the_medical_call_waits_as_before() -> None:
    centre = issue_centre(medical_secondary_after=30)
    assert offers(centre.call("medical-1", "medical")) == []
    assert offers(centre.call("general-1", "general", after=1.5)) == [("general-1", "1002")]
    centre.connect("general-1", "1002")
    assert offers(centre(Tick(), after=30)) == []
    assert centre.acd.call_place("medical-1") is CallPlace.WAITING


def test_a_freed_operator_takes_the_most_urgent_call_at_any_of_their_levels() -> None:
    centre = issue_centre(medical_secondary_after=0)
    centre.busy("1002", "general")
    centre.call("general-1", "general", age=20)
    centre.call("medical-1", "medical")
    # 1002 is primary for general, secondary for medical: the medical call is more urgent.
    assert offers(centre.finish("1002")) == [("medical-1", "1002")]
    assert offers(centre.finish("1001")) == [("general-1", "1001")]


def test_a_freed_operator_takes_only_calls_open_to_their_level() -> None:
    centre = issue_centre(medical_secondary_after=30)
    centre.busy("1002", "general")
    centre.call("general-1", "general", age=20)
    centre.call("medical-1", "medical")
    assert offers(centre.finish("1002")) == [("general-1", "1002")]


def test_overflow_to_a_category_with_a_longer_secondary_wait_closes_the_call_to_secondaries() -> (
    None
):
    categories = (
        Category("fire", "Kebakaran", "Fire", 1, "fire", 10, 0, 10),
        Category("info", "Informasi", "Information", 5, "info", 60, 0, 30),
    )
    centre = Centre(categories=categories, overflow=(rule("fire", "max_wait", "category:info", 5),))
    centre.login("helper", info=2)
    centre.call("c", "fire")
    assert overflows(centre(Tick(), after=5))
    # Fire's own wait (10 s) no longer counts: info's 30 s from the call's arrival does.
    assert offers(centre(Tick(), after=5)) == []
    assert offers(centre(Tick(), after=19)) == []
    assert offers(centre(Tick(), after=1)) == [("c", "helper")]


def test_overflow_to_a_category_without_a_secondary_wait_opens_the_call_at_once() -> None:
    categories = (
        Category("info", "Informasi", "Information", 5, "info", 60, 0, 30),
        Category("fire", "Kebakaran", "Fire", 1, "fire", 10, 0, 0),
    )
    centre = Centre(categories=categories, overflow=(rule("info", "max_wait", "category:fire", 5),))
    centre.login("helper", fire=2)
    centre.call("c", "info")
    assert offers(centre(Tick(), after=5)) == [("c", "helper")]


def test_operator_with_no_matching_skill_gets_no_call(centre: Centre) -> None:
    centre.login("1001", medical=1, unknown_skill=1)
    assert offers(centre.call("c1", "fire")) == []
    assert centre.acd.call_place("c1") is CallPlace.WAITING


# ---- offers ----------------------------------------------------------------------------------


def test_ring_timeout_returns_the_call_to_its_original_place() -> None:
    centre = Centre(ring_timeout_seconds=15)
    centre.login("1001", fire=1)
    centre.call("first", "fire", age=10)
    centre.call("second", "fire", age=1)
    decisions = centre(Tick(), after=15)
    assert cancels(decisions) == [("first", "1001", CancelReason.RING_TIMEOUT)]
    # The operator missed, so the next offer (same operator, the only one) is "first" again.
    assert offers(decisions) == [("first", "1001")]
    assert centre.acd.snapshot().operators[0].consecutive_misses == 1


def test_timed_out_call_goes_back_ahead_of_later_calls(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre.login("1002", medical=1)
    centre.call("first", "fire", age=10)
    centre(OperatorPaused("1002", "break"))
    centre.call("second", "fire", age=1)
    centre(OfferTimedOut("first", "1001"))
    centre(OperatorPaused("1001", "break"))
    assert waiting_ids(centre, "fire") == ["first", "second"]
    assert centre.acd.queue_info("first") is not None
    assert centre.acd.queue_info("first").position == 1  # type: ignore[union-attr]


def test_consecutive_no_answers_pause_the_operator_with_reason_no_answer() -> None:
    centre = Centre(max_consecutive_misses=3)
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    centre(OfferFailed("c", "1001", OfferFailure.NO_ANSWER))
    centre(OfferTimedOut("c", "1001"))
    assert centre.acd.operator_state("1001") is ON.OFFERED
    decisions = centre(OfferFailed("c", "1001", OfferFailure.NO_ANSWER))
    assert changes(decisions) == [("1001", ON.OFFERED, ON.PAUSED, Reason.NO_ANSWER)]
    assert centre.acd.call_place("c") is CallPlace.WAITING
    centre(OperatorReady("1001"))
    assert centre.acd.snapshot().operators[0].consecutive_misses == 0


def test_an_answer_resets_the_consecutive_misses() -> None:
    centre = Centre(max_consecutive_misses=2)
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    centre(OfferFailed("c", "1001", OfferFailure.NO_ANSWER))
    centre.connect("c", "1001")
    centre(CallEnded("c"))
    centre.call("d", "fire")
    centre(OfferFailed("d", "1001", OfferFailure.NO_ANSWER))
    assert centre.acd.operator_state("1001") is ON.OFFERED  # one miss, not two


@pytest.mark.parametrize(
    "failure", [OfferFailure.BUSY, OfferFailure.REJECTED, OfferFailure.UNREACHABLE]
)
def test_busy_reject_unreachable_are_not_misses_but_delay_the_operator(
    failure: OfferFailure,
) -> None:
    centre = Centre(retry_after_busy_seconds=5, max_consecutive_misses=1)
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    decisions = centre(OfferFailed("c", "1001", failure))
    assert changes(decisions) == [("1001", ON.OFFERED, ON.AVAILABLE, Reason(failure.value))]
    assert offers(decisions) == []
    assert centre.acd.snapshot().operators[0].consecutive_misses == 0
    assert offers(centre(Tick(), after=4.9)) == []
    assert offers(centre(Tick(), after=0.1)) == [("c", "1001")]


def test_during_the_retry_delay_another_operator_takes_the_call() -> None:
    centre = Centre(retry_after_busy_seconds=5)
    centre.login("1001", fire=1)
    centre.login("1002", medical=1)
    centre.call("c", "fire")
    centre(OperatorLoggedIn("1002", {"medical": 1, "fire": 1}))
    assert offers(centre(OfferFailed("c", "1001", OfferFailure.BUSY))) == [("c", "1002")]


def test_logging_out_while_ringing_returns_the_call_and_is_not_a_miss(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    decisions = centre(OperatorLoggedOut("1001"))
    assert cancels(decisions) == [("c", "1001", CancelReason.OPERATOR_LEFT)]
    assert changes(decisions) == [("1001", ON.OFFERED, ON.LOGGED_OUT, Reason.LOGOUT)]
    assert centre.acd.call_place("c") is CallPlace.WAITING
    assert centre.acd.snapshot().operators[0].consecutive_misses == 0


def test_pausing_while_ringing_returns_the_call(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    decisions = centre(OperatorPaused("1001", "toilet"))
    assert cancels(decisions) == [("c", "1001", CancelReason.OPERATOR_LEFT)]
    assert changes(decisions) == [("1001", ON.OFFERED, ON.PAUSED, "toilet")]
    assert centre.acd.call_place("c") is CallPlace.WAITING


def test_caller_hanging_up_while_ringing_cancels_the_offer(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    decisions = centre(CallHungUp("c"))
    assert cancels(decisions) == [("c", "1001", CancelReason.CALLER_GONE)]
    assert changes(decisions) == [("1001", ON.OFFERED, ON.AVAILABLE, Reason.CALLER_GONE)]
    assert centre.acd.call_place("c") is None


def test_stale_offer_events_are_ignored(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    centre(CallHungUp("c"))
    before = centre.acd.snapshot()
    assert centre(OfferAnswered("c", "1001")) == []
    assert centre(OfferFailed("c", "1001", OfferFailure.BUSY)) == []
    assert centre(OfferTimedOut("c", "1001")) == []
    assert centre(OfferAnswered("never", "nobody")) == []
    assert centre(CallHungUp("c")) == []
    assert centre(CallPriorityChanged("c", 0)) == []
    assert centre.acd.snapshot() == before


# ---- operator states -------------------------------------------------------------------------


def test_the_operator_life_cycle(centre: Centre) -> None:
    seen = []
    seen += changes(centre.login("1001", medical=1))
    seen += changes(centre.call("c", "medical"))
    seen += changes(centre(OfferAnswered("c", "1001")))
    seen += changes(centre(CallEnded("c"), after=60))
    seen += changes(centre(Tick(), after=5))
    seen += changes(centre(OperatorPaused("1001", "meal")))
    seen += changes(centre(OperatorReady("1001")))
    seen += changes(centre(OperatorLoggedOut("1001")))
    assert seen == [
        ("1001", ON.LOGGED_OUT, ON.AVAILABLE, Reason.LOGIN),
        ("1001", ON.AVAILABLE, ON.OFFERED, Reason.OFFER),
        ("1001", ON.OFFERED, ON.ON_CALL, Reason.ANSWERED),
        ("1001", ON.ON_CALL, ON.WRAP_UP, Reason.CALL_ENDED),
        ("1001", ON.WRAP_UP, ON.AVAILABLE, Reason.WRAP_UP_OVER),
        ("1001", ON.AVAILABLE, ON.PAUSED, "meal"),
        ("1001", ON.PAUSED, ON.AVAILABLE, Reason.READY),
        ("1001", ON.AVAILABLE, ON.LOGGED_OUT, Reason.LOGOUT),
    ]


def test_wrap_up_lasts_the_calls_category_wrap_up_time(centre: Centre) -> None:
    centre.login("1001", medical=1)
    centre.call("c", "medical")
    centre.connect("c", "1001")
    centre(CallEnded("c"))
    centre.call("next", "medical")
    assert centre.acd.operator_state("1001") is ON.WRAP_UP
    assert offers(centre(Tick(), after=4.9)) == []
    assert offers(centre(Tick(), after=0.1)) == [("next", "1001")]


def test_zero_wrap_up_makes_the_operator_available_at_once(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    centre.connect("c", "1001")
    decisions = centre(CallEnded("c"))
    assert changes(decisions) == [("1001", ON.ON_CALL, ON.AVAILABLE, Reason.CALL_ENDED)]


def test_ready_ends_wrap_up_early(centre: Centre) -> None:
    centre.login("1001", medical=1)
    centre.call("c", "medical")
    centre.connect("c", "1001")
    centre(CallEnded("c"))
    centre.call("next", "medical")
    assert offers(centre(OperatorReady("1001"), after=1)) == [("next", "1001")]


def test_a_paused_operator_gets_no_call_until_ready(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre(OperatorPaused("1001", "break"))
    assert offers(centre.call("c", "fire")) == []
    view = centre.acd.snapshot().operators[0]
    assert (view.state, view.reason) == (ON.PAUSED, "break")
    assert offers(centre(OperatorReady("1001"), after=60)) == [("c", "1001")]


def test_pause_reason_can_change_while_paused(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre(OperatorPaused("1001", "break"))
    assert changes(centre(OperatorPaused("1001", "break"))) == []
    assert changes(centre(OperatorPaused("1001", "training"))) == [
        ("1001", ON.PAUSED, ON.PAUSED, "training")
    ]


def test_pause_during_a_call_applies_when_the_call_ends(centre: Centre) -> None:
    centre.login("1001", medical=1)
    centre.call("c", "medical")
    centre.connect("c", "1001")
    assert changes(centre(OperatorPaused("1001", "meal"))) == []
    assert centre.acd.snapshot().operators[0].pending == "pause:meal"
    centre.call("next", "medical")
    decisions = centre(CallEnded("c"))
    assert changes(decisions) == [("1001", ON.ON_CALL, ON.PAUSED, "meal")]
    assert offers(decisions) == []


def test_ready_during_a_call_withdraws_a_pending_pause(centre: Centre) -> None:
    centre.login("1001", medical=1)
    centre.call("c", "medical")
    centre.connect("c", "1001")
    centre(OperatorPaused("1001", "meal"))
    centre(OperatorReady("1001"))
    decisions = centre(CallEnded("c"))
    assert changes(decisions) == [("1001", ON.ON_CALL, ON.WRAP_UP, Reason.CALL_ENDED)]


def test_logout_during_a_call_applies_when_the_call_ends(centre: Centre) -> None:
    centre.login("1001", medical=1)
    centre.call("c", "medical")
    centre.connect("c", "1001")
    assert changes(centre(OperatorLoggedOut("1001"))) == []
    assert centre.acd.call_place("c") is CallPlace.CONNECTED
    decisions = centre(CallEnded("c"))
    assert changes(decisions) == [("1001", ON.ON_CALL, ON.LOGGED_OUT, Reason.LOGOUT)]


def test_logging_in_again_updates_skills_and_withdraws_a_pending_logout(centre: Centre) -> None:
    centre.login("1001", medical=1)
    centre.call("c", "medical")
    centre.connect("c", "1001")
    centre(OperatorLoggedOut("1001"))
    assert changes(centre.login("1001", medical=1, fire=1)) == []
    centre.call("f", "fire")
    decisions = centre(CallEnded("c"))
    assert changes(decisions)[0] == ("1001", ON.ON_CALL, ON.WRAP_UP, Reason.CALL_ENDED)
    assert offers(centre(OperatorReady("1001"))) == [("f", "1001")]


def test_an_unregistered_phone_gets_no_call(centre: Centre) -> None:
    centre(OperatorRegistration("1001", registered=False))
    centre.login("1001", fire=1)
    assert offers(centre.call("c", "fire")) == []
    assert offers(centre(OperatorRegistration("1001", registered=True))) == [("c", "1001")]


def test_a_phone_unregistering_while_ringing_returns_the_call(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    decisions = centre(OperatorRegistration("1001", registered=False))
    assert cancels(decisions) == [("c", "1001", CancelReason.OPERATOR_LEFT)]
    assert centre.acd.call_place("c") is CallPlace.WAITING
    assert centre.acd.operator_state("1001") is ON.AVAILABLE


def test_caller_hanging_up_while_connected_sends_the_operator_to_wrap_up(
    centre: Centre,
) -> None:
    centre.login("1001", medical=1)
    centre.call("c", "medical")
    centre.connect("c", "1001")
    decisions = centre(CallHungUp("c"))
    assert changes(decisions) == [("1001", ON.ON_CALL, ON.WRAP_UP, Reason.CALL_ENDED)]
    assert centre.acd.call_place("c") is None


def test_caller_hanging_up_while_waiting_leaves_the_queue(centre: Centre) -> None:
    centre.call("a", "fire")
    centre.call("b", "fire")
    assert centre(CallHungUp("a")) == []
    assert waiting_ids(centre, "fire") == ["b"]
    assert centre.acd.call_place("a") is None


# ---- queue information -------------------------------------------------------------------------


def test_queue_info_gives_position_and_estimated_wait() -> None:
    centre = Centre(default_handle_seconds=100)
    centre.login("1001", fire=1)
    centre.login("1002", fire=1)
    centre.busy("1001", "fire")
    centre.busy("1002", "fire")
    for call_id in ("a", "b", "c"):
        centre.call(call_id, "fire")
    info = centre.acd.queue_info("c")
    assert info is not None
    assert info.position == 3
    assert info.ewt_seconds == pytest.approx(3 * 100 / 2)


def test_estimated_wait_follows_recent_handle_times() -> None:
    centre = Centre(ewt_window=2, default_handle_seconds=500)
    centre.login("1001", medical=1)
    for talk in (100, 20, 40):
        call = centre.busy("1001", "medical")
        centre(CallEnded(call), after=talk)
        centre(Tick(), after=5)  # medical wrap-up is 5 s: counted in the handle time
    centre.busy("1001", "medical")
    centre.call("waiting", "medical")
    info = centre.acd.queue_info("waiting")
    assert info is not None
    assert info.ewt_seconds == pytest.approx((25 + 45) / 2)


def test_estimated_wait_is_unknown_when_nobody_serves_the_skill(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre(OperatorPaused("1001", "break"))
    centre.call("c", "fire")
    info = centre.acd.queue_info("c")
    assert info is not None and info.ewt_seconds is None


def test_announcements_on_queueing_and_every_interval() -> None:
    centre = Centre(announce_interval_seconds=30)
    decisions = centre.call("a", "fire")
    assert [d for d in decisions if isinstance(d, Announce)] == [Announce("a", 1, None)]
    centre.call("b", "fire", after=10)
    assert centre(Tick(), after=19) == []
    decisions = centre(Tick(), after=1)
    assert decisions == [Announce("a", 1, None)]
    decisions = centre(Tick(), after=10)
    assert decisions == [Announce("b", 2, None)]


def test_no_announcement_for_a_call_that_is_offered_or_connected() -> None:
    centre = Centre(announce_interval_seconds=30)
    centre.login("1001", fire=1)
    decisions = centre.call("a", "fire")
    assert offers(decisions) == [("a", "1001")]
    assert not [d for d in decisions if isinstance(d, Announce)]
    centre.connect("a", "1001")
    assert centre(Tick(), after=100) == []
    assert centre.acd.queue_info("a") is None


# ---- overflow --------------------------------------------------------------------------------


def rule(category: str, condition: str, target: str, threshold: float = 0.0) -> OverflowRule:
    return OverflowRule(
        category, OverflowCondition(condition), OverflowTarget.parse(target), threshold
    )


def test_max_wait_overflows_to_another_category_keeping_the_arrival() -> None:
    centre = Centre(overflow=(rule("info", "max_wait", "category:fire", 60),))
    centre.call("c", "info", age=10)
    assert overflows(centre(Tick(), after=49)) == []
    (decision,) = overflows(centre(Tick(), after=1))
    assert decision == Overflow(
        "c", OverflowTarget(TargetKind.CATEGORY, "fire"), OverflowCondition.MAX_WAIT, "info"
    )
    assert centre.acd.call_category("c") == "fire"
    view = next(w for v in centre.acd.snapshot().categories for w in v.waiting)
    assert view.age_seconds == 60
    assert view.priority == 1  # the category's priority, since none was set for the call


def test_max_wait_in_the_next_category_counts_from_entering_it() -> None:
    centre = Centre(
        overflow=(
            rule("info", "max_wait", "category:fire", 60),
            rule("fire", "max_wait", "route:fallback", 30),
        )
    )
    (first,) = overflows(centre.call("c", "info", age=60))
    assert first.target.value == "fire"
    assert overflows(centre(Tick(), after=29)) == []
    (decision,) = overflows(centre(Tick(), after=1))
    assert decision.target == OverflowTarget(TargetKind.ROUTE, "fallback")
    assert centre.acd.call_place("c") is None


def test_overflow_never_goes_back_to_a_category_already_tried() -> None:
    centre = Centre(
        overflow=(
            rule("info", "max_wait", "category:fire", 10),
            rule("fire", "max_wait", "category:info", 10),
        )
    )
    centre.call("c", "info")
    centre(Tick(), after=10)
    assert overflows(centre(Tick(), after=100)) == []
    assert centre.acd.call_category("c") == "fire"
    assert centre.acd.call_place("c") is CallPlace.WAITING


def test_a_ringing_call_overflows_only_if_it_comes_back(centre: Centre) -> None:
    centre = Centre(
        overflow=(rule("fire", "max_wait", "number:+62211234567", 20),),
        ring_timeout_seconds=60,
    )
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    assert overflows(centre(Tick(), after=30)) == []
    decisions = centre(OfferFailed("c", "1001", OfferFailure.REJECTED))
    assert [d.target.value for d in overflows(decisions)] == ["+62211234567"]
    assert centre.acd.call_place("c") is None


def test_no_operator_logged_in_sends_the_call_to_the_fallback_route(centre: Centre) -> None:
    centre = Centre(overflow=(rule("fire", "no_operator", "route:fallback"),))
    centre.login("1001", medical=1)
    (decision,) = overflows(centre.call("c", "fire"))
    assert decision.condition is OverflowCondition.NO_OPERATOR
    assert centre.acd.call_place("c") is None


def test_a_call_back_from_a_partner_that_did_not_answer_waits_in_its_place() -> None:
    partner = "number:PJSIP/112@partner"
    centre = Centre(
        overflow=(
            rule("fire", "no_operator", partner),
            rule("fire", "max_wait", partner, 30),
        )
    )
    centre.call("first", "fire", age=5, tried=frozenset({partner}))
    (decision,) = overflows(centre.call("c", "fire", age=50))
    assert str(decision.target) == partner
    assert centre.acd.call_place("c") is None
    # The partner did not answer: back with its arrival, and neither rule sends it out again.
    assert overflows(centre.call("c", "fire", age=60, tried=frozenset({partner}))) == []
    assert overflows(centre(Tick(), after=100)) == []
    assert waiting_ids(centre, "fire") == ["c", "first"]


def test_a_tried_partner_does_not_stop_an_overflow_to_another_category() -> None:
    centre = Centre(overflow=(rule("fire", "no_operator", "category:medical"),))
    tried = frozenset({"number:PJSIP/112@partner"})
    (decision,) = overflows(centre.call("c", "fire", tried=tried))
    assert decision.target.value == "medical"
    assert centre.acd.call_category("c") == "medical"


def test_a_paused_operator_counts_as_logged_in(centre: Centre) -> None:
    centre = Centre(overflow=(rule("fire", "no_operator", "route:fallback"),))
    centre.login("1001", fire=1)
    centre(OperatorPaused("1001", "break"))
    assert overflows(centre.call("c", "fire")) == []


def test_the_last_operator_leaving_overflows_the_waiting_calls() -> None:
    centre = Centre(overflow=(rule("fire", "no_operator", "route:fallback"),))
    centre.login("1001", fire=1)
    centre.login("1002", fire=1)
    centre.busy("1001", "fire")
    centre.busy("1002", "fire")
    centre.call("w1", "fire")
    centre.call("w2", "fire")
    centre(OperatorLoggedOut("1001"))  # pending: still on a call
    assert overflows(centre.finish("1001")) == []
    assert centre.acd.operator_state("1001") is ON.LOGGED_OUT
    # The waiting call went to 1002? No: 1002 is on a call; one operator still logged in.
    decisions = centre(OperatorRegistration("1002", registered=False))
    assert [d.call_id for d in overflows(decisions)] == ["w1", "w2"]


def test_queue_length_overflows_new_calls_only() -> None:
    centre = Centre(overflow=(rule("info", "queue_length", "number:+62215550000", 2),))
    assert overflows(centre.call("a", "info")) == []
    assert overflows(centre.call("b", "info")) == []
    assert [d.call_id for d in overflows(centre.call("c", "info"))] == ["c"]
    assert waiting_ids(centre, "info") == ["a", "b"]


def test_waiting_per_operator_ratio_overflows_new_calls() -> None:
    centre = Centre(overflow=(rule("info", "waiting_ratio", "category:fire", 1.5),))
    centre.login("1001", info=1)
    centre.login("1002", info=1)
    centre.busy("1001", "info")
    centre.busy("1002", "info")
    for call_id in ("a", "b", "c"):
        assert overflows(centre.call(call_id, "info")) == []  # 3 waiting / 2 operators
    assert [d.call_id for d in overflows(centre.call("d", "info"))] == ["d"]
    assert centre.acd.call_category("d") == "fire"


def test_first_matching_rule_wins() -> None:
    centre = Centre(
        overflow=(
            rule("fire", "no_operator", "route:fallback"),
            rule("fire", "waiting_ratio", "category:medical", 1),
        )
    )
    (decision,) = overflows(centre.call("c", "fire"))
    assert decision.condition is OverflowCondition.NO_OPERATOR


# ---- snapshot and bad input ------------------------------------------------------------------


def test_snapshot_shows_waiting_calls_with_ages_and_operators_with_time_in_state(
    centre: Centre,
) -> None:
    centre.login("1001", fire=1)
    centre.busy("1001", "fire")
    centre.call("w", "fire", age=12, flags=frozenset({"silent"}))
    centre(Tick(), after=8)
    snapshot = centre.acd.snapshot()
    fire = next(v for v in snapshot.categories if v.code == "fire")
    assert [(w.call_id, w.age_seconds, w.position, w.flags) for w in fire.waiting] == [
        ("w", 20, 1, frozenset({"silent"}))
    ]
    assert (fire.offered, fire.connected) == (0, 1)
    (op,) = snapshot.operators
    assert (op.operator_id, op.state, op.seconds_in_state) == ("1001", ON.ON_CALL, 8)
    assert (op.calls_offered, op.calls_answered) == (1, 1)


def test_next_due_tells_when_to_tick() -> None:
    centre = Centre(ring_timeout_seconds=20)
    assert centre.acd.next_due() is None
    centre.login("1001", fire=1)
    centre.call("c", "fire")
    assert centre.acd.next_due() == centre.now + 20


def refused(centre: Centre, event: Event, error: type[Exception], now: float | None = None) -> None:
    before = centre.acd.snapshot()
    with pytest.raises(error):
        centre.acd.handle(event, centre.now if now is None else now)
    assert centre.acd.snapshot() == before
    assert audit(centre.acd) == []


def test_bad_input_is_refused_and_changes_nothing(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre.busy("1001", "fire")
    centre.call("c", "fire")
    refused(centre, CallQueued("c", "fire", centre.now), DuplicateCall)
    refused(centre, CallQueued("d", "nope", centre.now), UnknownCategory)
    refused(centre, CallQueued("d", "fire", centre.now + 1), InvalidEvent)
    refused(centre, CallQueued("d", "fire", math.nan), InvalidEvent)
    refused(centre, CallQueued("", "fire", centre.now), InvalidEvent)
    refused(centre, CallQueued("d", "fire", centre.now, priority=True), InvalidEvent)
    refused(centre, CallQueued("d", "fire", centre.now, flags={"x"}), InvalidEvent)  # type: ignore[arg-type]
    refused(centre, CallPriorityChanged("c", "1"), InvalidEvent)  # type: ignore[arg-type]
    refused(centre, OperatorLoggedIn("1002", {}), InvalidEvent)
    refused(centre, OperatorLoggedIn("1002", {"fire": 3}), InvalidEvent)
    refused(centre, OperatorLoggedOut("9999"), UnknownOperator)
    refused(centre, OperatorPaused("1001", " "), InvalidEvent)
    refused(centre, OfferFailed("c", "1001", "exploded"), InvalidEvent)  # type: ignore[arg-type]
    refused(centre, Tick(), ClockWentBackwards, now=centre.now - 1)
    refused(centre, Tick(), InvalidEvent, now=math.inf)
    refused(centre, "CallQueued", InvalidEvent)  # type: ignore[arg-type]


def test_a_logged_out_operator_cannot_pause_or_be_ready(centre: Centre) -> None:
    centre.login("1001", fire=1)
    centre(OperatorLoggedOut("1001"))
    refused(centre, OperatorPaused("1001", "break"), InvalidEvent)
    refused(centre, OperatorReady("1001"), InvalidEvent)
    assert centre(OperatorLoggedOut("1001")) == []  # logging out twice is harmless


def test_the_default_categories_make_a_working_engine() -> None:
    centre = Centre(categories=default_categories())
    centre.login("1001", medical=1, screened=2)
    assert offers(centre.call("c", "medical")) == [("c", "1001")]
    assert [c.code for c in centre.config.categories][-1] == "screened"
    assert max(c.priority for c in centre.config.categories) == 9


# ---- adoption after a restart ----------------------------------------------------------------


def test_an_adopted_conversation_puts_its_operator_on_the_call(centre: Centre) -> None:
    from queues import CallAdopted

    centre.login("1001", medical=1)
    centre.login("1002", medical=1)
    decisions = centre(CallAdopted("talking", "medical", centre.now - 90, "1001"))
    assert offers(decisions) == []
    assert changes(decisions) == [("1001", ON.AVAILABLE, ON.ON_CALL, Reason.ANSWERED)]
    assert centre.acd.call_place("talking") is CallPlace.CONNECTED
    # The other operator still takes the next call; the adopted one ends into wrap-up.
    assert offers(centre.call("next", "medical")) == [("next", "1002")]
    centre(CallEnded("talking"))
    assert centre.acd.operator_state("1001") is ON.WRAP_UP
    assert audit(centre.acd) == []


def test_an_adopted_conversation_takes_its_operator_from_an_offer_made_before(
    centre: Centre,
) -> None:
    from queues import CallAdopted

    # A takeover adopts one node's calls before another's: a waiting caller was offered to
    # 1001 before 1001's conversation on the other node was adopted. Asterisk's word wins.
    centre.login("1002", medical=1)
    centre.busy("1002")
    centre.login("1001", medical=1)
    assert offers(centre.call("waiting", "medical")) == [("waiting", "1001")]
    decisions = centre(CallAdopted("talking", "medical", centre.now - 60, "1001"))
    assert cancels(decisions) == [("waiting", "1001", CancelReason.OPERATOR_BUSY)]
    assert centre.acd.operator_state("1001") is ON.ON_CALL
    assert centre.acd.call_place("talking") is CallPlace.CONNECTED
    # The waiting caller is back in the queue, first, for the next free operator.
    assert centre.acd.call_place("waiting") is CallPlace.WAITING
    assert waiting_ids(centre, "medical") == ["waiting"]
    assert audit(centre.acd) == []
    # Refused input changes nothing, the offer included: the same call adopted twice.
    assert offers(centre(CallEnded("busy-1002-1000.0"))) == []
    centre(OperatorReady("1002"))
    assert centre.acd.operator_state("1002") is ON.OFFERED
    refused(centre, CallAdopted("talking", "medical", centre.now, "1002"), DuplicateCall)


def test_held_offers_queue_calls_in_order_and_go_out_once_released(centre: Centre) -> None:
    from queues import CallAdopted, OffersHeld

    # What a takeover does: hold, adopt node B's conversation and both nodes' waiting
    # callers in whatever order they come, release; then the oldest caller goes first.
    centre.login("1001", medical=1)
    centre.login("1002", medical=1)
    assert centre(OffersHeld(True)) == []
    assert offers(centre.call("newer", "medical", age=5)) == []
    assert offers(centre.call("older", "medical", age=20)) == []
    assert offers(centre(CallAdopted("talking", "medical", centre.now - 60, "1001"))) == []
    assert waiting_ids(centre, "medical") == ["older", "newer"]
    assert audit(centre.acd) == []
    assert offers(centre(OffersHeld(False))) == [("older", "1002")]
    assert audit(centre.acd) == []


def test_offers_held_refuses_a_value_that_is_not_a_bool(centre: Centre) -> None:
    from queues import InvalidEvent, OffersHeld

    refused(centre, OffersHeld("no"), InvalidEvent)  # type: ignore[arg-type]


def test_adopting_to_a_busy_or_logged_out_operator_is_refused(centre: Centre) -> None:
    from queues import CallAdopted, InvalidEvent

    centre.login("1001", medical=1)
    centre.busy("1001")
    with pytest.raises(InvalidEvent):
        centre(CallAdopted("c2", "medical", centre.now, "1001"))
    with pytest.raises(InvalidEvent):
        centre(CallAdopted("c3", "medical", centre.now, "nobody"))
    assert centre.acd.call_place("c2") is None
