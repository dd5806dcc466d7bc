"""The audit finds a corrupted index (it must be able to fail to be worth running)."""

from __future__ import annotations

from queues import Acd, AcdConfig, CallQueued, OperatorLoggedIn
from queues.audit import audit
from queues.defaults import default_categories


def busy_engine() -> Acd:
    acd = Acd(AcdConfig(default_categories()), 0.0)
    acd.handle(OperatorLoggedIn("1001", {"fire": 1}), 1.0)
    acd.handle(CallQueued("ringing", "fire", 1.0), 1.0)
    acd.handle(CallQueued("waiting", "medical", 1.0), 1.0)
    return acd


def test_a_healthy_engine_has_no_problems() -> None:
    assert audit(busy_engine()) == []


def test_a_waiting_call_missing_from_its_line_is_found() -> None:
    acd = busy_engine()
    acd._lines["medical"].remove(acd._calls["waiting"].key)
    assert any("waiting but not in its lines" in p for p in audit(acd))


def test_a_wrong_staff_count_is_found() -> None:
    acd = busy_engine()
    acd._staffed["fire"] += 1
    assert audit(acd) == ["staffed/serving counts out of date"]


def test_an_operator_pooled_while_ringing_is_found() -> None:
    acd = busy_engine()
    acd._pools["fire"][0].add("1001", (0.0, 0))
    assert any("pool fire/1 out of date" in p for p in audit(acd))
