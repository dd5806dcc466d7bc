"""The chaos run's faults: seeded random moments within the arrivals (testbed/chaos.py)."""

from __future__ import annotations

from testbed.chaos import ChaosPlan, FaultKind, fault_schedule


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
