"""ACD configuration: built from plain values, every mistake named."""

from __future__ import annotations

from typing import Any

import pytest

from queues import (
    AcdConfig,
    Category,
    InvalidConfig,
    OverflowCondition,
    OverflowRule,
    OverflowTarget,
    Strategy,
    TargetKind,
)
from queues.defaults import default_categories


def plain(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "strategy": "ring_all",
        "ring_timeout_seconds": 15,
        "categories": [
            {
                "code": "medical",
                "label_id": "Medis",
                "label_en": "Medical",
                "priority": 1,
                "skill": "medical",
                "target_answer_seconds": 10,
                "wrap_up_seconds": 30,
            },
            {
                "code": "info",
                "label_id": "Informasi",
                "label_en": "Information",
                "priority": 5,
                "skill": "info",
                "target_answer_seconds": 60,
                "wrap_up_seconds": 0,
            },
        ],
        "overflow": [
            {"category": "info", "condition": "max_wait", "threshold": 120, "target": "route:fb"},
            {"category": "medical", "condition": "no_operator", "target": "number:+62211"},
        ],
    }
    data.update(overrides)
    return data


def test_from_mapping_builds_the_config() -> None:
    config = AcdConfig.from_mapping(plain())
    assert config.strategy is Strategy.RING_ALL
    assert config.ring_timeout_seconds == 15
    assert config.category("info").priority == 5
    assert config.skills == ("medical", "info")
    assert config.overflow == (
        OverflowRule(
            "info", OverflowCondition.MAX_WAIT, OverflowTarget(TargetKind.ROUTE, "fb"), 120
        ),
        OverflowRule(
            "medical", OverflowCondition.NO_OPERATOR, OverflowTarget(TargetKind.NUMBER, "+62211")
        ),
    )


def test_defaults_match_the_documented_ones() -> None:
    config = AcdConfig(default_categories())
    assert config.strategy is Strategy.LONGEST_IDLE
    assert (config.ring_timeout_seconds, config.max_consecutive_misses) == (20.0, 3)


def test_emergencies_go_to_secondary_operators_at_once_by_default() -> None:
    waits = {c.code: c.secondary_after_seconds for c in default_categories()}
    assert {code for code, wait in waits.items() if wait == 0} == {
        "medical",
        "fire",
        "police",
        "disaster",
        "general",
    }
    assert waits["information"] == waits["screened"] == 30
    bare = Category("x", "X", "X", 1, "x", 10, 0)
    assert bare.secondary_after_seconds == 0


def test_a_category_reads_its_secondary_wait_from_the_mapping() -> None:
    data = plain()
    data["categories"][1]["secondary_after_seconds"] = 45
    config = AcdConfig.from_mapping(data)
    assert config.category("info").secondary_after_seconds == 45
    assert config.category("medical").secondary_after_seconds == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"strategy": "random"}, "strategy"),
        ({"ring_timeout_seconds": 0}, "ring_timeout_seconds"),
        ({"max_consecutive_misses": 0}, "max_consecutive_misses"),
        ({"max_consecutive_misses": True}, "max_consecutive_misses"),
        ({"retry_after_busy_seconds": -1}, "retry_after_busy_seconds"),
        ({"escalation_after_seconds": 30}, "replaced by secondary_after_seconds in each category"),
        ({"announce_interval_seconds": 0}, "announce_interval_seconds"),
        ({"ewt_window": 0}, "ewt_window"),
        ({"colour": "red"}, "unknown ACD setting"),
        ({"categories": []}, "at least one category"),
        ({"categories": "medical"}, "must be a list"),
        ({"overflow": [{"category": "nope", "condition": "max_wait", "threshold": 1,
                        "target": "route:x"}]}, "no category named 'nope'"),
        ({"overflow": [{"category": "info", "condition": "max_wait", "threshold": 1,
                        "target": "category:info"}]}, "itself"),
        ({"overflow": [{"category": "info", "condition": "max_wait", "threshold": 1,
                        "target": "category:nope"}]}, "no target category"),
        ({"overflow": [{"category": "info", "condition": "max_wait", "threshold": 0,
                        "target": "route:x"}]}, "threshold must be > 0"),
        ({"overflow": [{"category": "info", "condition": "soon", "target": "route:x"}]},
         "condition"),
        ({"overflow": [{"category": "info", "condition": "max_wait", "threshold": 5,
                        "target": "fallback"}]}, "KIND:VALUE"),
        ({"overflow": [{"category": "info", "condition": "max_wait", "threshold": 5,
                        "target": "queue:x"}]}, "'queue' is not one of"),
        ({"overflow": [{"category": "info", "condition": "no_operator", "target": "route:a"},
                       {"category": "info", "condition": "no_operator", "target": "route:b"}]},
         "defined twice"),
    ],
)  # fmt: skip
def test_bad_settings_are_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        AcdConfig.from_mapping(plain(**overrides))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", ""),
        ("skill", ""),
        ("priority", 1.5),
        ("priority", True),
        ("target_answer_seconds", -1),
        ("wrap_up_seconds", "30"),
        ("secondary_after_seconds", -1),
        ("secondary_after_seconds", float("nan")),
        ("secondary_after_seconds", None),
    ],
)
def test_bad_category_values_are_refused(field: str, value: Any) -> None:
    values: dict[str, Any] = {
        "code": "x",
        "label_id": "X",
        "label_en": "X",
        "priority": 1,
        "skill": "x",
        "target_answer_seconds": 10,
        "wrap_up_seconds": 0,
    }
    values[field] = value
    with pytest.raises(InvalidConfig, match=field):
        Category(**values)


def test_a_category_missing_a_field_is_named() -> None:
    data = plain()
    del data["categories"][0]["skill"]
    with pytest.raises(InvalidConfig, match=r"categories\[0\].*skill"):
        AcdConfig.from_mapping(data)


def test_a_category_defined_twice_is_refused() -> None:
    category = default_categories()[0]
    with pytest.raises(InvalidConfig, match="defined twice"):
        AcdConfig((category, category))


def test_overflow_target_reads_and_prints_kind_and_value() -> None:
    target = OverflowTarget.parse("number:+62 21 555")
    assert (target.kind, target.value) == (TargetKind.NUMBER, "+62 21 555")
    assert str(target) == "number:+62 21 555"
    with pytest.raises(InvalidConfig):
        OverflowTarget.parse("route:")
