"""What the app measures on itself for Prometheus (time to a human, dispatch, offers, misses),
and its snapshot of the ACD, which the live board and /metrics read."""

from __future__ import annotations

from shell_support import CONFIG, ListJournal

from ari_app.app import SiagaApp, acd_config
from ari_app.metrics import Metrics
from queues.acd import Acd
from queues.decisions import Offer, OperatorStateChanged
from queues.events import CallQueued
from queues.states import OperatorState, Reason


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    for family in metrics.collect():
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return None


def test_time_to_human_per_category_from_the_arrival() -> None:
    metrics = Metrics()
    metrics.reached_human("medical", arrival=100.0, now=104.0)
    metrics.reached_human(None, arrival=100.0, now=130.0)
    bucket = "siaga_time_to_human_seconds_bucket"
    assert sample(metrics, bucket, category="medical", le="3.0") == 0
    assert sample(metrics, bucket, category="medical", le="5.0") == 1
    assert sample(metrics, "siaga_time_to_human_seconds_sum", category="medical") == 4.0
    assert sample(metrics, bucket, category="unclassified", le="20.0") == 0
    assert sample(metrics, bucket, category="unclassified", le="30.0") == 1


def test_dispatch_from_an_operator_freed_to_their_phone_rung() -> None:
    metrics = Metrics()
    metrics.rung("1001", now=5.0)  # rung without having been freed while calls waited
    metrics.freed_for_next_call("1001", now=10.0)
    metrics.rung("1001", now=10.004)
    assert sample(metrics, "siaga_dispatch_seconds_count") == 1
    assert sample(metrics, "siaga_dispatch_seconds_bucket", le="0.0025") == 0
    assert sample(metrics, "siaga_dispatch_seconds_bucket", le="0.005") == 1
    assert metrics.summary()["dispatch"]["count"] == 1


def test_offers_and_the_misses_among_their_ends() -> None:
    metrics = Metrics()

    def ended(reason: Reason, new: OperatorState = OperatorState.AVAILABLE) -> None:
        metrics.decided(OperatorStateChanged("1001", OperatorState.OFFERED, new, reason.value))

    for call in ("a", "b", "c", "d", "e"):
        metrics.decided(Offer(call, "1001"))
    ended(Reason.NO_ANSWER, OperatorState.PAUSED)
    ended(Reason.RING_TIMEOUT)
    ended(Reason.BUSY)  # the phone was busy: not the operator's miss
    ended(Reason.CALLER_GONE)
    ended(Reason.ANSWERED, OperatorState.ON_CALL)
    metrics.decided(
        OperatorStateChanged("1001", OperatorState.AVAILABLE, OperatorState.PAUSED, "no_answer")
    )  # a pause with that reason, not the end of an offer
    assert sample(metrics, "siaga_offers_total") == 5
    assert sample(metrics, "siaga_offers_missed_total") == 2


async def test_the_app_s_snapshot_is_as_of_now_between_the_acd_s_events() -> None:
    now = [1000.0]
    app = SiagaApp(CONFIG, ListJournal(), prompts_dir=None, clock=lambda: now[0])
    app._acd_core = Acd(acd_config(CONFIG), app.clock())
    app.to_acd(CallQueued("c1", "medical", 1000.0, None, frozenset()))
    now[0] = 1025.0  # nothing happened meanwhile: no operator, no timer due
    (waiting,) = [w for view in app.snapshot().categories for w in view.waiting]
    assert waiting.age_seconds == 25.0
