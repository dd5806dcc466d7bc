"""Configuration of the ACD core: categories, strategy, timers and overflow rules.

Everything is built from plain values (strings, numbers, tuples), so that the lead can build it
from `siaga.toml`; `AcdConfig.from_mapping` reads the same shape as a TOML table. Every problem
raises `InvalidConfig` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from queues.errors import InvalidConfig


class Strategy(StrEnum):
    """How an operator is chosen among the eligible available ones."""

    LONGEST_IDLE = "longest_idle"
    FEWEST_CALLS = "fewest_calls"
    ROUND_ROBIN = "round_robin"  # with memory: goes on after the operator chosen last time
    RING_ALL = "ring_all"  # every eligible operator rings, the first to answer wins


class OverflowCondition(StrEnum):
    """When a call leaves its category for an overflow target."""

    MAX_WAIT = "max_wait"  # threshold: seconds waited in the category
    NO_OPERATOR = "no_operator"  # no registered operator logged in with the skill
    QUEUE_LENGTH = "queue_length"  # threshold: calls already waiting in the category
    WAITING_RATIO = "waiting_ratio"  # threshold: waiting calls per logged-in operator


class TargetKind(StrEnum):
    CATEGORY = "category"  # the call stays in the engine, in that category, keeping its arrival
    ROUTE = "route"  # the call leaves the engine, e.g. to the dialplan fallback route
    # The call leaves the engine, to a partner centre: the value is a dial string over the
    # trunk (e.g. PJSIP/112@partner).
    NUMBER = "number"


@dataclass(frozen=True, slots=True)
class OverflowTarget:
    kind: TargetKind
    value: str

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", TargetKind(self.kind))
        except ValueError:
            raise InvalidConfig(
                f"overflow target kind {self.kind!r} is not one of {', '.join(TargetKind)}"
            ) from None
        if not isinstance(self.value, str) or not self.value:
            raise InvalidConfig("overflow target value must be a non-empty string")

    @classmethod
    def parse(cls, text: str) -> OverflowTarget:
        """Read `category:fire`, `route:fallback` or `number:+6221...`."""
        if not isinstance(text, str) or ":" not in text:
            raise InvalidConfig(
                f"overflow target {text!r} must look like KIND:VALUE, "
                f"KIND one of {', '.join(TargetKind)}"
            )
        kind, _, value = text.partition(":")
        try:
            return cls(TargetKind(kind), value)
        except ValueError:
            raise InvalidConfig(
                f"overflow target {text!r}: {kind!r} is not one of {', '.join(TargetKind)}"
            ) from None

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True, slots=True)
class OverflowRule:
    """One overflow rule of one category; the first rule that matches a call applies."""

    category: str
    condition: OverflowCondition
    target: OverflowTarget
    threshold: float = 0.0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "condition", OverflowCondition(self.condition))
        except ValueError:
            raise InvalidConfig(
                f"overflow condition {self.condition!r} is not one of "
                f"{', '.join(OverflowCondition)}"
            ) from None
        if not _is_number(self.threshold):
            raise InvalidConfig(f"overflow threshold must be a number, not {self.threshold!r}")
        needs_positive = self.condition is not OverflowCondition.NO_OPERATOR
        if needs_positive and not self.threshold > 0:
            raise InvalidConfig(
                f"overflow rule {self.category}/{self.condition}: threshold must be > 0"
            )


@dataclass(frozen=True, slots=True)
class Category:
    """One kind of call: who may take it, how urgent it is, and its answer target.

    Operators with the skill at level 1 (primary) may take the call at once; at level 2
    (secondary) once it has waited `secondary_after_seconds` since its arrival, and only
    while no primary operator is free. 0 lets a free secondary operator take it at once, as a
    queue member with a higher penalty is used when none with a lower one is free.
    """

    code: str
    label_id: str
    label_en: str
    priority: int  # smaller is more urgent; 0 is the top (e.g. a caller who cannot speak)
    skill: str
    target_answer_seconds: float
    wrap_up_seconds: float
    secondary_after_seconds: float = 0.0

    def __post_init__(self) -> None:
        where = f"category {self.code!r}"
        if not isinstance(self.code, str) or not self.code:
            raise InvalidConfig("category code must be a non-empty string")
        if not isinstance(self.skill, str) or not self.skill:
            raise InvalidConfig(f"{where}: skill must be a non-empty string")
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise InvalidConfig(f"{where}: priority must be an integer")
        for name in ("target_answer_seconds", "wrap_up_seconds", "secondary_after_seconds"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                raise InvalidConfig(f"{where}: {name} must be a number >= 0, not {value!r}")


@dataclass(frozen=True, slots=True)
class AcdConfig:
    categories: tuple[Category, ...]
    strategy: Strategy = Strategy.LONGEST_IDLE
    ring_timeout_seconds: float = 20.0
    max_consecutive_misses: int = 3
    retry_after_busy_seconds: float = 5.0
    overflow: tuple[OverflowRule, ...] = ()
    # Estimated wait: mean of the last `ewt_window` handle times (talk + wrap-up) of a category,
    # or `default_handle_seconds` before the first one.
    ewt_window: int = 20
    default_handle_seconds: float = 120.0
    # None: no `Announce` decisions (the shell can still ask `Acd.queue_info`).
    announce_interval_seconds: float | None = 30.0
    # The disposition rule: an operator who owes a disposition (a connected call ended and
    # none was given) for this long is offered no call until it is given. 0: off.
    disposition_block_after_seconds: float = 0.0
    _by_code: Mapping[str, Category] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "overflow", tuple(self.overflow))
        try:
            object.__setattr__(self, "strategy", Strategy(self.strategy))
        except ValueError:
            raise InvalidConfig(
                f"strategy {self.strategy!r} is not one of {', '.join(Strategy)}"
            ) from None
        if not self.categories:
            raise InvalidConfig("at least one category is required")
        by_code: dict[str, Category] = {}
        for category in self.categories:
            if not isinstance(category, Category):
                raise InvalidConfig(f"categories must be Category, not {category!r}")
            if category.code in by_code:
                raise InvalidConfig(f"category {category.code!r} is defined twice")
            by_code[category.code] = category
        object.__setattr__(self, "_by_code", by_code)
        _positive("ring_timeout_seconds", self.ring_timeout_seconds)
        _at_least_zero("retry_after_busy_seconds", self.retry_after_busy_seconds)
        _positive("default_handle_seconds", self.default_handle_seconds)
        _integer_at_least_one("max_consecutive_misses", self.max_consecutive_misses)
        _integer_at_least_one("ewt_window", self.ewt_window)
        if self.announce_interval_seconds is not None:
            _positive("announce_interval_seconds", self.announce_interval_seconds)
        _at_least_zero("disposition_block_after_seconds", self.disposition_block_after_seconds)
        self._check_overflow(by_code)

    def _check_overflow(self, by_code: Mapping[str, Category]) -> None:
        seen: set[tuple[str, OverflowCondition]] = set()
        for rule in self.overflow:
            if not isinstance(rule, OverflowRule):
                raise InvalidConfig(f"overflow rules must be OverflowRule, not {rule!r}")
            where = f"overflow rule {rule.category}/{rule.condition}"
            if rule.category not in by_code:
                raise InvalidConfig(f"{where}: no category named {rule.category!r}")
            if (rule.category, rule.condition) in seen:
                raise InvalidConfig(f"{where}: defined twice")
            seen.add((rule.category, rule.condition))
            target = rule.target
            if target.kind is TargetKind.CATEGORY:
                if target.value not in by_code:
                    raise InvalidConfig(f"{where}: no target category named {target.value!r}")
                if target.value == rule.category:
                    raise InvalidConfig(f"{where}: a category cannot overflow to itself")

    def category(self, code: str) -> Category:
        """The category with this code; KeyError if there is none."""
        return self._by_code[code]

    def has_category(self, code: str) -> bool:
        return code in self._by_code

    @property
    def skills(self) -> tuple[str, ...]:
        """The skills the categories need, in the order of the categories."""
        return tuple(dict.fromkeys(c.skill for c in self.categories))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AcdConfig:
        """Build from a plain mapping shaped like the TOML:

        `{"strategy": "longest_idle", "categories": [{"code": ..., ...}], "overflow":
        [{"category": "medical", "condition": "max_wait", "threshold": 60,
        "target": "route:fallback"}], ...}`; unknown keys are errors.
        """
        if not isinstance(data, Mapping):
            raise InvalidConfig(f"ACD configuration must be a mapping, not {data!r}")
        known = set(_SCALAR_FIELDS) | {"categories", "overflow"}
        unknown = sorted(set(data) - known)
        if unknown:
            moved = [_MOVED[k] for k in unknown if k in _MOVED]
            raise InvalidConfig(
                f"unknown ACD setting(s): {', '.join(unknown)}" + "".join(f" ({m})" for m in moved)
            )
        kwargs: dict[str, Any] = {k: data[k] for k in _SCALAR_FIELDS if k in data}
        kwargs["categories"] = tuple(
            _build(Category, item, f"categories[{i}]")
            for i, item in enumerate(_sequence(data.get("categories", ()), "categories"))
        )
        rules = []
        for i, item in enumerate(_sequence(data.get("overflow", ()), "overflow")):
            item = dict(_mapping(item, f"overflow[{i}]"))
            if isinstance(item.get("target"), str):
                item["target"] = OverflowTarget.parse(item["target"])
            rules.append(_build(OverflowRule, item, f"overflow[{i}]"))
        kwargs["overflow"] = tuple(rules)
        return cls(**kwargs)


# Settings that used to exist, and where their job went.
_MOVED = {
    "escalation_after_seconds": "replaced by secondary_after_seconds in each category",
}

_SCALAR_FIELDS = (
    "strategy",
    "ring_timeout_seconds",
    "max_consecutive_misses",
    "retry_after_busy_seconds",
    "ewt_window",
    "default_handle_seconds",
    "announce_interval_seconds",
)


def _build(kind: Any, item: Any, where: str) -> Any:
    try:
        return kind(**_mapping(item, where))
    except TypeError as e:
        raise InvalidConfig(f"{where}: {e}") from None
    except InvalidConfig as e:
        raise InvalidConfig(f"{where}: {e}") from None


def _mapping(item: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise InvalidConfig(f"{where} must be a table, not {item!r}")
    return item


def _sequence(items: Any, where: str) -> Sequence[Any]:
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise InvalidConfig(f"{where} must be a list, not {items!r}")
    return items


def _is_number(value: object) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value)  # type: ignore[arg-type]


def _positive(name: str, value: object) -> None:
    if not _is_number(value) or not value > 0:  # type: ignore[operator]
        raise InvalidConfig(f"{name} must be a number > 0, not {value!r}")


def _at_least_zero(name: str, value: object) -> None:
    if not _is_number(value) or not value >= 0:  # type: ignore[operator]
        raise InvalidConfig(f"{name} must be a number >= 0, not {value!r}")


def _integer_at_least_one(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidConfig(f"{name} must be an integer >= 1, not {value!r}")
