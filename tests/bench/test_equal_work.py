"""app_queue's equal-work path, rendered from Siaga's configuration (pure text, no stack)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest

from bench import equal_work
from bench.stack_env import OPERATOR_CONTEXT, base_config, skill_levels
from siaga.config import Config

PROMPTS = PurePosixPath("/srv/siaga/bench-1/prompts")


@pytest.fixture(scope="module")
def config() -> Config:
    return base_config()


@pytest.fixture(scope="module")
def text(config: Config) -> str:
    return equal_work.dialplan(config.ivr, config.categories, PROMPTS, "id")


def section(text: str, name: str) -> str:
    return text.split(f"[{name}]\n", 1)[1].split("\n[", 1)[0]


def test_every_context_name_is_valid_and_every_goto_lands_on_one(text: str) -> None:
    defined, named = equal_work.contexts_in(text)
    assert all(equal_work.CONTEXT_NAME.match(name) for name in defined), defined
    assert named and named <= defined
    assert {
        equal_work.menu_context(m, lang) for m in ("main", "non_emergency") for lang in ("id", "en")
    } <= defined


def test_a_context_name_asterisk_would_refuse_is_caught() -> None:
    assert not equal_work.CONTEXT_NAME.match("siaga bench")
    assert not equal_work.CONTEXT_NAME.match("x" * 80)


def test_the_call_is_recorded_from_its_arrival_then_answered_then_hears_the_menu(
    text: str,
) -> None:
    entry = section(text, equal_work.ENTRY_CONTEXT)
    assert entry.index("MixMonitor(") < entry.index("Answer()")
    menu = section(text, equal_work.menu_context("main", "id"))
    assert f"Background({PROMPTS}/id/main)" in menu


def test_each_main_menu_digit_goes_to_its_categorys_queue(text: str, config: Config) -> None:
    menu = section(text, equal_work.menu_context("main", "id"))
    queues = section(text, equal_work.QUEUE_CONTEXT)
    for digit, target in config.ivr.menus["main"].choices.items():
        if target.startswith("menu:"):
            continue
        assert f"exten => {digit},1,Goto({equal_work.QUEUE_CONTEXT},{target},1)" in menu
        assert f"Queue(${{BENCH_QUEUES}}-{target})" in queues


def test_no_input_waits_siagas_timeout_then_goes_to_the_no_input_category(
    text: str, config: Config
) -> None:
    menu = section(text, equal_work.menu_context("main", "id"))
    assert f"WaitExten({config.ivr.timeout_seconds:g})" in menu
    assert f"exten => t,1,Goto({equal_work.QUEUE_CONTEXT},{config.ivr.no_input},1)" in menu


def test_the_language_digit_switches_menus(text: str, config: Config) -> None:
    menu = section(text, equal_work.menu_context("main", "id"))
    digit = config.ivr.language_digit
    assert f"exten => {digit},1,Goto({equal_work.menu_context('main', 'en')},s,1)" in menu


def test_members_have_the_penalty_of_their_skill_level(config: Config) -> None:
    emergency = equal_work.emergency_categories(config.ivr)
    text = equal_work.queues(
        "bench-4",
        4,
        config.categories,
        emergency,
        lambda n: skill_levels(config, n),
        lambda n: f"Local/{n}@{OPERATOR_CONTEXT}",
    )
    medical = section(text, "bench-4-medical")
    members = dict(re.findall(r"member => Local/(\d+)@[^,]+,(\d+),", medical))
    # Operators take the example's operators' skills in turn: 1001 medical at level 1, 1002 at 2.
    assert skill_levels(config, 1)["medical"] == 1 and skill_levels(config, 2)["medical"] == 2
    assert members == {"1": "0", "2": "1", "3": "0", "4": "1"}
    assert f"musicclass = {equal_work.HOLD_EMERGENCY_CLASS}" in medical
    assert f"musicclass = {equal_work.HOLD_POSITION_CLASS}" in section(text, "bench-4-information")


def test_secondary_operators_who_wait_join_by_a_queue_rule(config: Config, text: str) -> None:
    waiting = {c.code: c.secondary_after_seconds for c in config.categories}
    assert waiting["information"] > 0 and waiting["medical"] == 0
    rules = equal_work.queue_rules(config.categories)
    rule = equal_work.rule_name(waiting["information"])
    assert f"[{rule}]\npenaltychange => {waiting['information']:g},1" in rules
    queues = section(text, equal_work.QUEUE_CONTEXT)
    assert "exten => information,1,Set(QUEUE_MAX_PENALTY=0)" in queues
    assert "exten => medical,1,Queue(" in queues


def test_music_classes_announce_siagas_hold_prompts() -> None:
    text = equal_work.music_classes(PROMPTS, "id")
    assert f"announcement = {PROMPTS}/id/hold_emergency" in section(
        text, equal_work.HOLD_EMERGENCY_CLASS
    )


def test_a_more_urgent_category_has_a_heavier_queue(config: Config) -> None:
    text = equal_work.queues(
        "bench-2",
        2,
        config.categories,
        equal_work.emergency_categories(config.ivr),
        lambda n: skill_levels(config, n),
        lambda n: f"Local/{n}@{OPERATOR_CONTEXT}",
    )

    def weight(code: str) -> int:
        return int(re.findall(r"^weight = (\d+)$", section(text, f"bench-2-{code}"), re.M)[0])

    # Siaga: medical priority 1, general 2, information 5, screened 9 (smaller is more urgent).
    assert weight("medical") > weight("general") > weight("information") > weight("screened") > 0
    assert weight("medical") == weight("fire")
