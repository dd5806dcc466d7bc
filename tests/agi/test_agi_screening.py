"""Screening rules, pure: facts about a number -> the variables the app reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from agi.screening import (
    ActiveBlock,
    CallerFacts,
    ScreeningSettings,
    is_anonymous,
    national_form,
    number_variants,
    screen,
)

BLOCK = ActiveBlock(uuid.uuid4(), "prank calls", "sup1", datetime(2030, 1, 1, tzinfo=UTC))


def test_first_time_caller_is_plain():
    result = screen(CallerFacts(), ScreeningSettings())
    assert result.variables() == {"SIAGA_REPEAT": "0", "SIAGA_FLAGS": ""}
    assert not result.auto_block


def test_repeat_caller_gets_count_history_and_language():
    facts = CallerFacts(calls_24h=3, prank_history=1, silent_history=2, last_language="en")
    result = screen(facts, ScreeningSettings())
    assert result.variables() == {
        "SIAGA_REPEAT": "3",
        "SIAGA_FLAGS": "prank_history,silent_history",
        "SIAGA_LANG": "en",
    }


def test_active_block_flags_blocked():
    result = screen(CallerFacts(calls_24h=5, prank_history=4, block=BLOCK), ScreeningSettings())
    assert result.flags == {"blocked", "prank_history"}
    assert not result.auto_block  # already blocked: no second block


def test_auto_block_is_off_by_default():
    result = screen(CallerFacts(prank_24h=50, prank_history=50), ScreeningSettings())
    assert "blocked" not in result.flags and not result.auto_block


def test_auto_block_after_n_prank_verdicts_in_24h():
    settings = ScreeningSettings(auto_block_pranks=3)
    assert not screen(CallerFacts(prank_24h=2, prank_history=9), settings).auto_block
    result = screen(CallerFacts(prank_24h=3, prank_history=3), settings)
    assert result.auto_block and "blocked" in result.flags


def test_unknown_language_is_left_unset():
    result = screen(CallerFacts(last_language="fr"), ScreeningSettings())
    assert "SIAGA_LANG" not in result.variables()


def test_indonesian_number_forms_are_one_number():
    assert national_form("+62 812-3456-7890") == "081234567890"
    assert national_form("6281234567890") == "081234567890"
    assert national_form("0062 81234567890") == "081234567890"
    assert national_form("(021) 555-0100") == "0215550100"
    variants = number_variants("+6281234567890")
    assert {"081234567890", "6281234567890", "+6281234567890"} <= set(variants)
    assert set(number_variants("081234567890")) == set(variants) | {"081234567890"} - {""}


def test_short_codes_are_not_mistaken_for_country_codes():
    assert national_form("6211") == "6211"
    assert number_variants("112") == ["112"]


def test_anonymous_numbers():
    for text in ("", "anonymous", "Unknown", " restricted "):
        assert is_anonymous(text)
    assert not is_anonymous("0812")


@given(st.text(max_size=40))
def test_variants_never_fail_and_include_the_number(text):
    variants = number_variants(text)
    assert all(variants)
    if text.strip():
        assert text.strip() in variants
