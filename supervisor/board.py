"""The live pictures sent to browsers, built from the ACD snapshot, the live calls and today's
figures: pure functions returning JSON-ready dicts (the browser renders them as text)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from db.calllog import CallRow
from db.reports import SERVICE_GOAL_RATIO, SERVICE_GOAL_SECONDS, CallStats, Route
from queues.snapshot import CategoryView, OperatorView, Snapshot
from siaga.config import Config, OperatorConfig
from supervisor.alerts import NODE_SUBJECT, Alert, AlertKind, ServiceToday, ShownAlert
from supervisor.i18n import translate
from supervisor.live import LiveCall
from supervisor.queries import HistoryCall
from supervisor.words import Words

JsonDict = dict[str, Any]
TimeFormat = Callable[[datetime | None], str]


def category_label(config: Config, code: str | None, lang: str) -> str:
    return Words(config, lang).category(code)


def targets(config: Config) -> tuple[float, ...]:
    """The service level thresholds of today: the categories' answer targets and the centre's
    goal (NENA-STA-020, 90 % within 15 s)."""
    return tuple(
        sorted({c.target_answer_seconds for c in config.categories} | {SERVICE_GOAL_SECONDS})
    )


def service_level_at(stats: CallStats | None, target: float) -> float | None:
    """The share of `stats`' calls answered within `target` seconds; None while nothing was
    answered or abandoned (or no figures)."""
    if stats is None:
        return None
    for level in stats.service_levels:
        if level.threshold_seconds == target:
            return level.ratio
    return None


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{round(100 * ratio)} %"


def _clock(seconds: float) -> str:
    total = max(0, int(seconds))
    hours, minutes, secs = total // 3600, total % 3600 // 60, total % 60
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def service_today(today: Sequence[CallStats]) -> ServiceToday:
    """Today's service level at the goal's threshold, for the alarms."""
    total = next((s for s in today if s.scope == "total"), None)
    decided = total.answered + total.abandoned if total else 0
    return ServiceToday(ratio=service_level_at(total, SERVICE_GOAL_SECONDS), decided=decided)


def wait_status(longest: float | None, target: float) -> str:
    """A category's longest wait against its target, as the board colours it: idle (nobody
    waiting), ok, near (half the target gone) or over."""
    if longest is None:
        return "idle"
    if longest > target:
        return "over"
    return "near" if longest >= target / 2 else "ok"


def alert_text(alert: Alert, config: Config, lang: str) -> str:
    if alert.kind is AlertKind.OVERDUE:
        return translate("alert.overdue", lang).format(
            category=category_label(config, alert.subject, lang),
            count=alert.count,
            target=f"{alert.target:g}",
            wait=_clock(alert.seconds),
        )
    if alert.kind is AlertKind.NO_OPERATOR:
        return translate("alert.no_operator", lang).format(
            count=alert.count, wait=_clock(alert.seconds)
        )
    if alert.kind is AlertKind.SERVICE_LEVEL:
        return translate("alert.service_level", lang).format(
            ratio=_percent(alert.ratio),
            target=_percent(alert.target),
            seconds=f"{SERVICE_GOAL_SECONDS:g}",
        )
    if alert.kind is AlertKind.UNAVAILABLE:
        return translate(f"alert.unavailable.{alert.subject}", lang)
    if alert.subject == "journal":
        return translate("alert.degraded.journal", lang)
    if alert.subject.startswith(NODE_SUBJECT):
        node = alert.subject.removeprefix(NODE_SUBJECT)
        return translate("alert.degraded.node", lang).format(node=node)
    return translate("alert.degraded.disk", lang).format(folder=alert.subject)


def alerts_json(
    shown: Sequence[ShownAlert], now: float, config: Config, lang: str
) -> list[JsonDict]:
    return [
        {
            "key": s.alert.key,
            "kind": s.alert.kind.value,
            "severity": s.alert.severity.value,
            "text": alert_text(s.alert, config, lang),
            "seconds": int(max(0.0, now - s.since)),
            "acknowledged_by": s.acknowledged.username if s.acknowledged else None,
        }
        for s in shown
    ]


def service_goal(total: CallStats | None, lang: str) -> JsonDict:
    """Today's service level at the goal's threshold against the goal, e.g. "SL today 15 s:
    87 % (target 90 %)"; `met` is None while nothing was answered or abandoned."""
    ratio = service_level_at(total, SERVICE_GOAL_SECONDS)
    text = translate("board.goal", lang).format(
        seconds=f"{SERVICE_GOAL_SECONDS:g}",
        ratio=_percent(ratio),
        target=_percent(SERVICE_GOAL_RATIO),
    )
    return {
        "seconds": SERVICE_GOAL_SECONDS,
        "target": SERVICE_GOAL_RATIO,
        "ratio": ratio,
        "met": None if ratio is None else ratio >= SERVICE_GOAL_RATIO,
        "text": text,
    }


def longest_wait(view: CategoryView) -> float | None:
    """Seconds the category's longest-waiting call has waited; None while none waits."""
    return max((w.age_seconds for w in view.waiting), default=None)


def never_seen(snapshot: Snapshot, config: Config) -> list[OperatorConfig]:
    """Operators of siaga.toml the engine has not seen yet (never logged in): logged out."""
    seen = {op.operator_id for op in snapshot.operators}
    return [op for op in config.operators if op.id not in seen]


def oldest_waiting(snapshot: Snapshot, config: Config, lang: str) -> JsonDict | None:
    """The call waiting longest in any queue: the first thing a supervisor looks at."""
    waiting = [(w, view.code) for view in snapshot.categories for w in view.waiting]
    if not waiting:
        return None
    oldest, code = max(waiting, key=lambda pair: pair[0].age_seconds)
    return {
        "call_id": oldest.call_id,
        "age": int(oldest.age_seconds),
        "category": category_label(config, code, lang),
    }


def operator_json(view: OperatorView, names: Mapping[str, str]) -> JsonDict:
    return {
        "id": view.operator_id,
        "name": names.get(view.operator_id, view.operator_id),
        "state": view.state.value,
        "reason": view.reason,
        "seconds": int(view.seconds_in_state),
        "call_id": view.call_id,
        "registered": view.registered,
        "pending": view.pending,
    }


def board_view(
    snapshot: Snapshot,
    calls: Sequence[LiveCall],
    today: Sequence[CallStats],
    config: Config,
    lang: str,
) -> JsonDict:
    """The oldest waiting call and today's service level against the goal; per category:
    waiting calls with ages, longest wait, today's service level at the category's target;
    every operator; the calls in progress; today's counts."""
    by_category = {s.category: s for s in today if s.scope == "category"}
    total = next((s for s in today if s.scope == "total"), None)
    overflowed = sum(s.received for s in today if s.scope == "route" and s.route is Route.OVERFLOW)
    categories = []
    for view in snapshot.categories:
        target = view.target_answer_seconds
        stats = by_category.get(view.code)
        longest = longest_wait(view)
        categories.append(
            {
                "code": view.code,
                "label": category_label(config, view.code, lang),
                "target": target,
                "waiting": [
                    {
                        "call_id": w.call_id,
                        "age": int(w.age_seconds),
                        "priority": w.priority,
                        "position": w.position,
                        "flags": sorted(w.flags),
                    }
                    for w in view.waiting
                ],
                "longest": None if longest is None else int(longest),
                "status": wait_status(longest, target),
                "offered": view.offered,
                "connected": view.connected,
                "sl": service_level_at(stats, target),
                "answered": stats.answered if stats else 0,
                "abandoned": stats.abandoned if stats else 0,
            }
        )
    names = {op.id: op.name for op in config.operators}
    live = sorted(
        (c for c in calls if c.state not in ("ended", "abandoned")),
        key=lambda c: -c.age_seconds,
    )
    operators = [operator_json(op, names) for op in snapshot.operators]
    operators += [
        {
            "id": op.id,
            "name": op.name,
            "state": "logged_out",
            "reason": "",
            "seconds": None,
            "call_id": None,
            "registered": None,
            "pending": None,
        }
        for op in never_seen(snapshot, config)
    ]
    return {
        "oldest": oldest_waiting(snapshot, config, lang),
        "goal": service_goal(total, lang),
        "categories": categories,
        "operators": operators,
        "calls": [
            {
                "call_id": c.call_id,
                "number": c.caller_number,
                "name": c.caller_name,
                "category": category_label(config, c.category, lang) if c.category else None,
                "state": c.state,
                "operator_id": c.operator_id,
                "operator": names.get(c.operator_id, c.operator_id) if c.operator_id else None,
                "age": int(c.age_seconds),
                "flags": sorted(c.flags),
            }
            for c in live
        ],
        "today": {
            "received": total.received if total else 0,
            "answered": total.answered if total else 0,
            "abandoned": total.abandoned if total else 0,
            "prank": total.prank if total else 0,
            "silent": total.silent if total else 0,
            "overflowed": overflowed,
        },
    }


@dataclass(frozen=True, slots=True)
class PopFacts:
    """What the records know about a caller number, for the screen pop."""

    history: Sequence[HistoryCall]
    repeat_count: int
    blocked: bool


def screen_pop(
    *,
    call_id: str,
    live: bool,
    state: str,
    category: str | None,
    number: str,
    name: str,
    flags: Sequence[str],
    facts: PopFacts,
    config: Config,
    lang: str,
    fmt_time: TimeFormat,
) -> JsonDict:
    return {
        "call_id": call_id,
        "live": live,
        "state": state,
        "category": category_label(config, category, lang),
        "number": number,
        "name": name,
        "flags": sorted(set(flags) | ({"blocked"} if facts.blocked else set())),
        "repeat_count": facts.repeat_count,
        "blocked": facts.blocked,
        "history": [
            {
                "call_id": h.call_id,
                "at": fmt_time(h.arrived_at),
                "category": category_label(config, h.category, lang),
                "outcome": h.outcome,
                "verdict": h.verdict,
                "notes": h.notes,
            }
            for h in facts.history
        ],
    }


def pop_from_live(
    call: LiveCall, facts: PopFacts, config: Config, lang: str, fmt_time: TimeFormat
) -> JsonDict:
    return screen_pop(
        call_id=call.call_id,
        live=True,
        state=call.state,
        category=call.category,
        number=call.caller_number,
        name=call.caller_name,
        flags=sorted(call.flags),
        facts=facts,
        config=config,
        lang=lang,
        fmt_time=fmt_time,
    )


def pop_from_record(
    row: CallRow, facts: PopFacts, config: Config, lang: str, fmt_time: TimeFormat
) -> JsonDict:
    return screen_pop(
        call_id=row.call_id,
        live=False,
        state="ended",
        category=row.category,
        number=row.caller_number or "",
        name=row.caller_name or "",
        flags=row.flags,
        facts=facts,
        config=config,
        lang=lang,
        fmt_time=fmt_time,
    )
