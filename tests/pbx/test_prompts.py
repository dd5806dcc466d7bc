"""The rendered voice prompts (pbx/provision.py): the main menu stays short, since a caller who
presses nothing waits through it before a human (docs/architecture.md §2.8)."""

from __future__ import annotations

import wave

import pytest

from pbx.provision import render_prompts

MAIN_MENU_MAX_SECONDS = 6.5


@pytest.mark.parametrize("language", ["id", "en"])
def test_the_main_menu_is_short(language):
    prompts = render_prompts()  # the cache the stack uses: rendered once, reused
    with wave.open(str(prompts / language / "main.wav")) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert 2.0 < seconds <= MAIN_MENU_MAX_SECONDS
