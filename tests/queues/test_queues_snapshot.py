"""The engine's picture for the live board and /metrics, counted up to a later moment."""

from __future__ import annotations

from queues.acd import Acd
from queues.config import AcdConfig, Category
from queues.events import CallQueued, OperatorLoggedIn, OperatorPaused

CONFIG = AcdConfig(categories=(Category("medical", "Medis", "Medical", 1, "medical", 10, 5),))


def test_waits_and_times_in_state_go_on_between_the_engine_s_events() -> None:
    acd = Acd(CONFIG, 100.0)
    acd.handle(OperatorLoggedIn("1001", {"medical": 1}), 100.0)
    acd.handle(OperatorPaused("1001", "break"), 100.0)
    acd.handle(CallQueued("c1", "medical", 95.0, None, frozenset()), 110.0)
    snapshot = acd.snapshot()
    assert snapshot.categories[0].waiting[0].age_seconds == 15.0

    later = snapshot.as_of(130.0)  # nothing happened meanwhile: the engine still says 110

    assert later.now == 130.0
    assert later.categories[0].waiting[0].age_seconds == 35.0
    assert later.operators[0].seconds_in_state == snapshot.operators[0].seconds_in_state + 20
    assert snapshot.as_of(105.0) is snapshot  # never younger than the engine's own picture
