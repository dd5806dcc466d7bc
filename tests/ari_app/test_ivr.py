"""The IVR menu interpreter (ari_app/ivr.py): the rules a 112 caller relies on
(docs/architecture.md §2.7-2.8).

Unit tests for each rule of the shipped siaga.toml menus, then a hypothesis property test over
random walks of digits, timeouts and talk detection.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.ivr import (
    Classified,
    Ivr,
    Language,
    PlayMenu,
    Step,
    StepKind,
    menu_categories,
)
from siaga.config import Config, IvrConfig, load_config

CONFIG: Config = load_config(Path(__file__).resolve().parents[2] / "siaga.toml")
IVR: IvrConfig = CONFIG.ivr

MAIN_CHOICES = {"1": "medical", "2": "fire", "3": "police", "4": "disaster", "0": "general"}
SUB_CHOICES = {"1": "information", "2": "complaint", "3": "public_services"}
GARBAGE = ["A", "B", "#", "*", "6", "7", "8", "", "55", "x"]


def new_ivr(config: IvrConfig = IVR, language: Language = Language.ID) -> Ivr:
    return Ivr(config, language=language)


def language_of(ivr: Ivr) -> Language:
    return ivr.language  # (a call, so that type narrowing does not outlive a digit)


def test_shipped_config_is_what_these_tests_assume() -> None:
    assert IVR.timeout_seconds == 5
    assert IVR.no_input == "general"
    assert IVR.invalid_retries == 1
    assert IVR.language_digit == "9"
    assert dict(IVR.menus["main"].choices) == {**MAIN_CHOICES, "5": "menu:non_emergency"}
    assert dict(IVR.menus["non_emergency"].choices) == SUB_CHOICES


# ---- the main menu ------------------------------------------------------------------------


def test_start_plays_the_main_menu_in_indonesian() -> None:
    ivr = new_ivr()
    assert ivr.start() == PlayMenu("main", "main", Language.ID, apology=False)
    assert ivr.steps == []
    assert not ivr.finished


def test_start_in_the_callers_known_language() -> None:
    assert new_ivr(language=Language.EN).start() == PlayMenu("main", "main", Language.EN)


@pytest.mark.parametrize(("digit", "category"), sorted(MAIN_CHOICES.items()))
def test_every_emergency_is_one_digit_deep(digit: str, category: str) -> None:
    ivr = new_ivr()
    ivr.start()
    assert ivr.digit(digit) == Classified(category, frozenset())
    assert ivr.finished
    assert ivr.steps == [Step("main", StepKind.CHOICE, digit, Language.ID)]


@pytest.mark.parametrize(("digit", "category"), sorted(SUB_CHOICES.items()))
def test_five_opens_the_non_emergency_sub_menu(digit: str, category: str) -> None:
    ivr = new_ivr()
    ivr.start()
    assert ivr.digit("5") == PlayMenu("non_emergency", "non_emergency", Language.ID)
    assert not ivr.finished
    assert ivr.menu == "non_emergency"
    assert ivr.digit(digit) == Classified(category, frozenset())
    assert ivr.steps == [
        Step("main", StepKind.CHOICE, "5", Language.ID),
        Step("non_emergency", StepKind.CHOICE, digit, Language.ID),
    ]


def test_main_menu_digits_mean_nothing_in_the_sub_menu() -> None:
    ivr = new_ivr()
    ivr.digit("5")
    # "4" (disaster) is not a choice of the sub-menu: it is an invalid digit there.
    assert ivr.digit("4") == PlayMenu("non_emergency", "non_emergency", Language.ID, apology=True)
    assert ivr.steps[-1] == Step("non_emergency", StepKind.INVALID, "4", Language.ID)


# ---- language -----------------------------------------------------------------------------


def test_nine_switches_to_english_and_replays_the_same_menu() -> None:
    ivr = new_ivr()
    ivr.start()
    assert ivr.digit("9") == PlayMenu("main", "main", Language.EN, apology=False)
    assert language_of(ivr) is Language.EN
    assert not ivr.finished
    # recorded in the language the caller heard when pressing it
    assert ivr.steps == [Step("main", StepKind.LANGUAGE, "9", Language.ID)]
    # and back again
    assert ivr.digit("9") == PlayMenu("main", "main", Language.ID)
    assert language_of(ivr) is Language.ID
    assert ivr.steps[1] == Step("main", StepKind.LANGUAGE, "9", Language.EN)


def test_nine_from_english_switches_to_indonesian() -> None:
    ivr = new_ivr(language=Language.EN)
    assert ivr.digit("9") == PlayMenu("main", "main", Language.ID)


def test_nine_in_the_sub_menu_replays_the_sub_menu() -> None:
    ivr = new_ivr()
    ivr.digit("5")
    assert ivr.digit("9") == PlayMenu("non_emergency", "non_emergency", Language.EN)
    assert ivr.menu == "non_emergency"
    assert ivr.digit("3") == Classified("public_services", frozenset())


def test_language_choice_sticks_for_later_steps() -> None:
    ivr = new_ivr()
    ivr.digit("9")
    assert ivr.digit("2") == Classified("fire", frozenset())
    assert ivr.steps[-1] == Step("main", StepKind.CHOICE, "2", Language.EN)


def test_language_digit_is_not_an_invalid_digit() -> None:
    ivr = new_ivr()
    for _ in range(5):
        assert isinstance(ivr.digit("9"), PlayMenu)
    assert ivr.invalid_count == 0
    assert not ivr.finished
    # one invalid digit still only replays
    assert ivr.digit("7") == PlayMenu("main", "main", Language.EN, apology=True)


# ---- no input -----------------------------------------------------------------------------


def test_no_input_goes_to_general_flagged_silent() -> None:
    ivr = new_ivr()
    ivr.start()
    assert ivr.timed_out() == Classified("general", frozenset({"unclassified", "silent"}))
    assert ivr.finished
    assert ivr.steps == [Step("main", StepKind.NO_INPUT, "", Language.ID)]


def test_no_input_from_a_caller_who_spoke_is_flagged_spoke_not_silent() -> None:
    ivr = new_ivr()
    ivr.start()
    ivr.talking()
    assert ivr.timed_out() == Classified("general", frozenset({"unclassified", "spoke"}))


def test_no_input_in_the_sub_menu_still_goes_to_general() -> None:
    ivr = new_ivr()
    ivr.digit("5")
    assert ivr.timed_out() == Classified("general", frozenset({"unclassified", "silent"}))
    assert ivr.steps[-1] == Step("non_emergency", StepKind.NO_INPUT, "", Language.ID)


def test_no_input_uses_the_configured_category() -> None:
    config = dataclasses.replace(IVR, no_input="police")
    ivr = new_ivr(config)
    assert ivr.timed_out() == Classified("police", frozenset({"unclassified", "silent"}))


def test_a_caller_who_spoke_and_then_chose_is_flagged_spoke() -> None:
    ivr = new_ivr()
    ivr.talking()
    assert ivr.digit("1") == Classified("medical", frozenset({"spoke"}))


# ---- invalid digits -----------------------------------------------------------------------


@pytest.mark.parametrize("digit", GARBAGE)
def test_an_invalid_digit_replays_the_menu_with_an_apology(digit: str) -> None:
    ivr = new_ivr()
    ivr.start()
    assert ivr.digit(digit) == PlayMenu("main", "main", Language.ID, apology=True)
    assert not ivr.finished
    assert ivr.steps == [Step("main", StepKind.INVALID, digit, Language.ID)]


def test_a_second_invalid_digit_goes_to_general_flagged_invalid_input() -> None:
    ivr = new_ivr()
    ivr.start()
    ivr.digit("#")
    assert ivr.digit("*") == Classified("general", frozenset({"invalid_input", "unclassified"}))
    assert ivr.finished
    assert [s.kind for s in ivr.steps] == [StepKind.INVALID, StepKind.INVALID]


def test_invalid_input_of_a_caller_who_spoke_keeps_both_flags() -> None:
    ivr = new_ivr()
    ivr.talking()
    ivr.digit("A")
    assert ivr.digit("A") == Classified(
        "general", frozenset({"invalid_input", "unclassified", "spoke"})
    )


def test_a_valid_digit_after_the_replay_is_taken_without_flags() -> None:
    ivr = new_ivr()
    ivr.digit("8")
    assert ivr.digit("3") == Classified("police", frozenset())


def test_no_input_after_the_replay_is_silent() -> None:
    ivr = new_ivr()
    ivr.digit("8")
    assert ivr.timed_out() == Classified("general", frozenset({"unclassified", "silent"}))


def test_invalid_digit_in_the_sub_menu_replays_the_sub_menu_then_general() -> None:
    ivr = new_ivr()
    ivr.digit("5")
    assert ivr.digit("0") == PlayMenu("non_emergency", "non_emergency", Language.ID, True)
    assert ivr.digit("0") == Classified("general", frozenset({"invalid_input", "unclassified"}))


def test_entering_the_sub_menu_resets_the_invalid_count() -> None:
    ivr = new_ivr()
    ivr.digit("7")  # invalid in main: replay
    ivr.digit("5")  # sub-menu: a fresh menu
    assert ivr.digit("7") == PlayMenu("non_emergency", "non_emergency", Language.ID, True)
    assert not ivr.finished


def test_invalid_digits_across_a_language_switch_still_count() -> None:
    ivr = new_ivr()
    ivr.digit("7")
    ivr.digit("9")
    assert ivr.digit("7") == Classified("general", frozenset({"invalid_input", "unclassified"}))


@pytest.mark.parametrize("retries", [0, 1, 2, 3])
def test_invalid_retries_is_the_number_of_replays(retries: int) -> None:
    ivr = new_ivr(dataclasses.replace(IVR, invalid_retries=retries))
    for _ in range(retries):
        assert ivr.digit("#") == PlayMenu("main", "main", Language.ID, apology=True)
    assert ivr.digit("#") == Classified("general", frozenset({"invalid_input", "unclassified"}))
    assert len(ivr.steps) == retries + 1


# ---- after the end ------------------------------------------------------------------------


@pytest.mark.parametrize("finish", ["1", "timeout", "invalid"])
def test_after_finishing_digits_and_timeouts_return_none(finish: str) -> None:
    ivr = new_ivr()
    if finish == "timeout":
        assert ivr.timed_out() is not None
    elif finish == "invalid":
        ivr.digit("#")
        assert ivr.digit("#") is not None
    else:
        assert ivr.digit(finish) is not None
    assert ivr.finished
    steps = list(ivr.steps)
    for digit in ["1", "5", "9", "0", "#", "A", ""]:
        assert ivr.digit(digit) is None
    assert ivr.timed_out() is None
    assert ivr.timed_out() is None
    assert ivr.steps == steps
    assert ivr.language is Language.ID  # a late 9 switches nothing


def test_menu_categories_are_every_reachable_category() -> None:
    assert menu_categories(IVR.menus) == set(MAIN_CHOICES.values()) | set(SUB_CHOICES.values())


# ---- property test: random walks ----------------------------------------------------------

Action = tuple[str, str]  # ("digit", d) | ("timeout", "") | ("talk", "")

actions = st.one_of(
    st.tuples(st.just("digit"), st.sampled_from(list("0123456789*#AD") + ["", "12"])),
    st.tuples(st.just("timeout"), st.just("")),
    st.tuples(st.just("talk"), st.just("")),
)


@settings(max_examples=300, deadline=None)
@given(
    walk=st.lists(actions, max_size=25),
    retries=st.integers(0, 3),
    language=st.sampled_from(Language),
)
def test_random_walks_follow_the_rules(
    walk: list[Action], retries: int, language: Language
) -> None:
    config = dataclasses.replace(IVR, invalid_retries=retries)
    ivr = Ivr(config, language=language)
    first = ivr.start()
    assert first == PlayMenu("main", "main", language)
    reachable = menu_categories(config.menus) | {config.no_input}
    spoke = False
    classified: list[Classified] = []
    invalid_in_a_row = 0  # invalid digits in the current menu, language digits aside
    expected_language = language
    for kind, digit in walk:
        steps_before = len(ivr.steps)
        was_finished = ivr.finished
        menu_before = ivr.menu
        outcome: PlayMenu | Classified | None
        if kind == "talk":
            ivr.talking()
            spoke = True
            assert len(ivr.steps) == steps_before
            continue
        outcome = ivr.timed_out() if kind == "timeout" else ivr.digit(digit)
        if was_finished:
            assert outcome is None
            assert len(ivr.steps) == steps_before
            continue
        # every input before the end is one step of the timeline
        assert len(ivr.steps) == steps_before + 1
        step = ivr.steps[-1]
        assert step.menu == menu_before
        if kind == "timeout":
            assert step == Step(menu_before, StepKind.NO_INPUT, "", expected_language)
            heard = "spoke" if spoke else "silent"
            assert outcome == Classified(config.no_input, frozenset({"unclassified", heard}))
        elif digit == config.language_digit:
            assert step == Step(menu_before, StepKind.LANGUAGE, digit, expected_language)
            expected_language = expected_language.other()
            assert outcome == PlayMenu(
                menu_before, config.menus[menu_before].prompt, expected_language
            )
        elif digit in config.menus[menu_before].choices:
            assert step == Step(menu_before, StepKind.CHOICE, digit, expected_language)
            invalid_in_a_row = 0 if isinstance(outcome, PlayMenu) else invalid_in_a_row
        else:
            assert step == Step(menu_before, StepKind.INVALID, digit, expected_language)
            invalid_in_a_row += 1
            if invalid_in_a_row <= retries:
                assert outcome == PlayMenu(
                    menu_before, config.menus[menu_before].prompt, expected_language, True
                )
            else:
                flags = {"invalid_input", "unclassified"} | ({"spoke"} if spoke else set())
                assert outcome == Classified(config.no_input, frozenset(flags))
        assert outcome is not None
        if isinstance(outcome, Classified):
            classified.append(outcome)
            assert ivr.finished
            assert outcome.category in reachable
            assert not {"silent", "spoke"} <= outcome.flags
            assert ("spoke" in outcome.flags) == spoke
            # unclassified: exactly the calls no valid choice classified
            ended_without_a_choice = kind == "timeout" or "invalid_input" in outcome.flags
            assert ("unclassified" in outcome.flags) == ended_without_a_choice
        else:
            assert not ivr.finished
            assert outcome.language is ivr.language is expected_language
    assert len(classified) <= 1
    assert ivr.finished == bool(classified)
