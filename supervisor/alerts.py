"""The console's alarms, pure: from the ACD's snapshot (its clock included), today's service
level and the stack's health, the alarms active now; and the book of when each began and who
acknowledged it.

An alarm lasts while its condition holds, under a key that names the condition (not a moment),
so an acknowledgement silences it until the condition ends; if it comes back, it alarms anew.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from db.reports import SERVICE_GOAL_RATIO
from queues.snapshot import Snapshot
from queues.states import OperatorState
from siaga.config import AlertsConfig
from supervisor.health import Health

# A centre where every operator is on a call is busy, not unmanned: the waiting calls alarm on
# their own once past their target. Nobody in these states means nobody will answer.
TAKING_CALLS = frozenset(
    {OperatorState.AVAILABLE, OperatorState.OFFERED, OperatorState.ON_CALL, OperatorState.WRAP_UP}
)


class AlertKind(StrEnum):
    OVERDUE = "overdue"  # emergency calls of a category waiting past its target
    NO_OPERATOR = "no_operator"  # calls wait and every operator is paused or logged out
    SERVICE_LEVEL = "service_level"  # today's service level below the goal
    UNAVAILABLE = "unavailable"  # the app cannot see Asterisk, or cannot reach the database
    DEGRADED = "degraded"  # the record journal fails, or a disk runs low


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


NODE_SUBJECT = "node:"  # an Asterisk node the app cannot reach (docs/ha.md)


@dataclass(frozen=True, slots=True)
class Alert:
    key: str  # names the condition: what an acknowledgement refers to
    kind: AlertKind
    severity: Severity
    # The category code; "ari", "database", "journal", a disk's folder or "node:<name>".
    subject: str = ""
    count: int = 0  # the calls concerned
    seconds: float = 0.0  # the longest wait concerned
    target: float = 0.0  # the category's target (s), or the service level goal (a ratio)
    ratio: float | None = None  # today's service level


@dataclass(frozen=True, slots=True)
class ServiceToday:
    """Today's service level at the goal's threshold, and how many calls it is made of."""

    ratio: float | None
    decided: int  # answered or abandoned


def active_alerts(
    snapshot: Snapshot, today: ServiceToday, health: Health, config: AlertsConfig
) -> tuple[Alert, ...]:
    """Every alarm that holds now, the critical ones first."""
    alerts = [
        *_overdue(snapshot, config),
        *_no_operator(snapshot, config),
        *_service_level(today, config),
        *_health(health),
    ]
    return tuple(sorted(alerts, key=lambda a: a.severity is not Severity.CRITICAL))


def _overdue(snapshot: Snapshot, config: AlertsConfig) -> Iterable[Alert]:
    for view in snapshot.categories:
        target = view.target_answer_seconds
        # The call's own priority: a caller who cannot speak is raised above their category.
        late = [
            w.age_seconds
            for w in view.waiting
            if w.priority <= config.emergency_max_priority and w.age_seconds > target
        ]
        if late:
            yield Alert(
                key=f"overdue:{view.code}",
                kind=AlertKind.OVERDUE,
                severity=Severity.CRITICAL,
                subject=view.code,
                count=len(late),
                seconds=max(late),
                target=target,
            )


def _no_operator(snapshot: Snapshot, config: AlertsConfig) -> Iterable[Alert]:
    ages = [w.age_seconds for view in snapshot.categories for w in view.waiting]
    if not ages or max(ages) < config.no_ready_after_seconds:
        return
    if any(op.state in TAKING_CALLS and op.registered for op in snapshot.operators):
        return
    yield Alert(
        key="no_operator",
        kind=AlertKind.NO_OPERATOR,
        severity=Severity.CRITICAL,
        count=len(ages),
        seconds=max(ages),
    )


def _service_level(today: ServiceToday, config: AlertsConfig) -> Iterable[Alert]:
    if today.ratio is None or today.decided < config.service_level_min_calls:
        return
    if today.ratio < SERVICE_GOAL_RATIO:
        yield Alert(
            key="service_level",
            kind=AlertKind.SERVICE_LEVEL,
            severity=Severity.WARNING,
            count=today.decided,
            target=SERVICE_GOAL_RATIO,
            ratio=today.ratio,
        )


def _health(health: Health) -> Iterable[Alert]:
    if not health.ari_connected:
        yield Alert("unavailable:ari", AlertKind.UNAVAILABLE, Severity.CRITICAL, "ari")
    if not health.database_reachable:
        yield Alert("unavailable:database", AlertKind.UNAVAILABLE, Severity.CRITICAL, "database")
    if not health.journal_ok:
        yield Alert("degraded:journal", AlertKind.DEGRADED, Severity.WARNING, "journal")
    for low in health.low_disks:
        yield Alert(f"degraded:disk:{low.folder}", AlertKind.DEGRADED, Severity.WARNING, low.folder)
    for node in health.nodes_down:
        subject = f"{NODE_SUBJECT}{node}"
        yield Alert(f"degraded:{subject}", AlertKind.DEGRADED, Severity.WARNING, subject)


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    username: str
    at: float  # on the snapshot's clock


@dataclass(frozen=True, slots=True)
class ShownAlert:
    alert: Alert
    since: float  # when the book first saw it, on the snapshot's clock
    acknowledged: Acknowledgement | None


class AlertBook:
    """When each active alarm began and who acknowledged it; an alarm that ends is forgotten
    with its acknowledgement."""

    def __init__(self) -> None:
        self._active: dict[str, Alert] = {}
        self._since: dict[str, float] = {}
        self._acks: dict[str, Acknowledgement] = {}

    def update(self, active: Iterable[Alert], now: float) -> tuple[ShownAlert, ...]:
        self._active = {alert.key: alert for alert in active}
        self._since = {key: self._since.get(key, now) for key in self._active}
        self._acks = {key: ack for key, ack in self._acks.items() if key in self._active}
        return tuple(
            ShownAlert(alert, self._since[key], self._acks.get(key))
            for key, alert in self._active.items()
        )

    def acknowledge(self, key: str, username: str, now: float) -> Alert | None:
        """The alarm acknowledged (the first acknowledgement stands), or None if it is not
        active (it ended meanwhile, or never was)."""
        alert = self._active.get(key)
        if alert is not None:
            self._acks.setdefault(key, Acknowledgement(username, now))
        return alert
