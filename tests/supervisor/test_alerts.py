"""The alarm rules and the book of acknowledgements, on hand-made snapshots."""

from __future__ import annotations

from pathlib import Path

from queues.snapshot import CategoryView, OperatorView, Snapshot, WaitingCall
from queues.states import OperatorState
from siaga.config import AlertsConfig, load_config
from supervisor.alerts import (
    Acknowledgement,
    AlertBook,
    AlertKind,
    ServiceToday,
    Severity,
    active_alerts,
)
from supervisor.board import alert_text
from supervisor.disk import LowDisk
from supervisor.health import Health

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
CONFIG = AlertsConfig(emergency_max_priority=2, no_ready_after_seconds=5.0)
HEALTHY = Health(ari_connected=True, database_reachable=True)
NO_SL = ServiceToday(ratio=None, decided=0)


def waiting(call_id: str, age: float, priority: int = 1) -> WaitingCall:
    return WaitingCall(call_id, age, priority, 1, True, frozenset())


def category(code: str, target: float, *calls: WaitingCall) -> CategoryView:
    return CategoryView(code, code, target, tuple(calls), offered=0, connected=0)


def operator(state: OperatorState, *, registered: bool = True) -> OperatorView:
    return OperatorView("1001", state, "", 3.0, None, registered, (), 0, 0, 0, None)


def snapshot(*categories: CategoryView, operators: tuple[OperatorView, ...] = ()) -> Snapshot:
    ready = operators or (operator(OperatorState.ON_CALL),)
    return Snapshot(now=100.0, categories=categories, operators=ready)


def alerts(snap: Snapshot, today: ServiceToday = NO_SL, health: Health = HEALTHY) -> list[str]:
    return [a.key for a in active_alerts(snap, today, health, CONFIG)]


def test_an_emergency_call_past_its_categorys_target_alarms_with_count_and_longest_wait():
    snap = snapshot(
        category("medical", 10, waiting("a", 12.5), waiting("b", 11), waiting("c", 4)),
        category("fire", 10, waiting("d", 9.9)),
    )
    (alert,) = active_alerts(snap, NO_SL, HEALTHY, CONFIG)
    assert (alert.key, alert.kind, alert.severity) == (
        "overdue:medical",
        AlertKind.OVERDUE,
        Severity.CRITICAL,
    )
    assert (alert.subject, alert.count, alert.seconds, alert.target) == ("medical", 2, 12.5, 10)


def test_a_non_emergency_call_past_its_target_does_not_alarm_but_a_raised_one_does():
    information = category("information", 60, waiting("a", 300, priority=5))
    assert alerts(snapshot(information)) == []
    # A caller who cannot speak is raised to priority 0 whatever the category.
    raised = category("information", 60, waiting("b", 61, priority=0))
    assert alerts(snapshot(raised)) == ["overdue:information"]


def test_calls_waiting_while_every_operator_is_paused_or_logged_out_alarm_after_the_delay():
    away = (operator(OperatorState.PAUSED), operator(OperatorState.LOGGED_OUT))
    assert alerts(snapshot(category("general", 10, waiting("a", 4.9)), operators=away)) == []
    (alert,) = active_alerts(
        snapshot(category("general", 10, waiting("a", 5), waiting("b", 1)), operators=away),
        NO_SL,
        HEALTHY,
        CONFIG,
    )
    assert (alert.key, alert.count, alert.seconds) == ("no_operator", 2, 5)
    # Nobody waiting: nothing to alarm about.
    assert alerts(snapshot(category("general", 10), operators=away)) == []


def test_an_operator_taking_calls_keeps_the_no_operator_alarm_off_unless_unregistered():
    calls = category("general", 10, waiting("a", 6))
    for state in (OperatorState.AVAILABLE, OperatorState.ON_CALL, OperatorState.WRAP_UP):
        assert alerts(snapshot(calls, operators=(operator(state),))) == []
    unreachable = (operator(OperatorState.AVAILABLE, registered=False),)
    assert alerts(snapshot(calls, operators=unreachable)) == ["no_operator"]


def test_todays_service_level_below_the_goal_alarms_once_enough_calls_were_decided():
    snap = snapshot()
    assert alerts(snap, ServiceToday(ratio=0.5, decided=9)) == []
    assert alerts(snap, ServiceToday(ratio=0.9, decided=40)) == []
    (alert,) = active_alerts(snap, ServiceToday(ratio=0.85, decided=10), HEALTHY, CONFIG)
    assert (alert.key, alert.severity, alert.ratio, alert.target) == (
        "service_level",
        Severity.WARNING,
        0.85,
        0.9,
    )


def test_an_unavailable_or_degraded_stack_alarms_naming_what_failed_critical_first():
    health = Health(
        ari_connected=False,
        database_reachable=False,
        journal_ok=False,
        low_disks=(LowDisk("recordings", "/rec", 0, "full"),),
        nodes=(("node_a", True), ("node_b", False)),
    )
    found = active_alerts(snapshot(), ServiceToday(0.1, 50), health, CONFIG)
    assert [(a.key, a.severity) for a in found] == [
        ("unavailable:ari", Severity.CRITICAL),
        ("unavailable:database", Severity.CRITICAL),
        ("service_level", Severity.WARNING),
        ("degraded:journal", Severity.WARNING),
        ("degraded:disk:recordings", Severity.WARNING),
        ("degraded:node:node_b", Severity.WARNING),
    ]
    (node,) = [a for a in found if a.key == "degraded:node:node_b"]
    assert alert_text(node, load_config(EXAMPLE), "en") == (
        "Asterisk node_b is unreachable: its calls go to its dialplan fallback"
    )


def test_the_book_keeps_when_an_alarm_began_and_its_acknowledgement_while_it_lasts():
    book = AlertBook()
    overdue = active_alerts(
        snapshot(category("medical", 10, waiting("a", 11))), NO_SL, HEALTHY, CONFIG
    )
    (shown,) = book.update(overdue, now=100.0)
    assert (shown.since, shown.acknowledged) == (100.0, None)
    assert book.acknowledge("overdue:medical", "sup", now=101.0) == overdue[0]
    assert book.acknowledge("overdue:medical", "other", now=102.0) == overdue[0]
    (shown,) = book.update(overdue, now=103.0)
    assert (shown.since, shown.acknowledged) == (100.0, Acknowledgement("sup", 101.0))


def test_an_alarm_that_ends_and_comes_back_alarms_anew():
    book = AlertBook()
    overdue = active_alerts(
        snapshot(category("medical", 10, waiting("a", 11))), NO_SL, HEALTHY, CONFIG
    )
    book.update(overdue, now=100.0)
    book.acknowledge("overdue:medical", "sup", now=101.0)
    assert book.update((), now=102.0) == ()
    assert book.acknowledge("overdue:medical", "sup", now=103.0) is None, "no longer active"
    (shown,) = book.update(overdue, now=104.0)
    assert (shown.since, shown.acknowledged) == (104.0, None)


def test_an_unknown_alarm_cannot_be_acknowledged():
    assert AlertBook().acknowledge("overdue:medical", "sup", now=1.0) is None
