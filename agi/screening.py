"""Caller screening, pure: what the records say about a number -> the channel variables the ARI
app reads at StasisStart (`SIAGA_REPEAT`, `SIAGA_FLAGS`, `SIAGA_LANG`).

Screening never drops a call and never delays it for long: a blocked caller is warned and queued
last by the app, and a screening that cannot finish in time leaves the call unscreened.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

# Numbers that say nothing about the caller: nothing to look up, nothing to block.
_ANONYMOUS = {"", "anonymous", "unknown", "restricted", "private", "unavailable", "s"}
_DIAL_NOISE = re.compile(r"[\s().-]")


@dataclass(frozen=True, slots=True)
class ScreeningSettings:
    """The knobs of screening and blocking (siaga.toml `[screening]`)."""

    block_hours: float = 24.0  # a block's default length
    # Block a number automatically after this many prank verdicts in 24 h; 0 = never.
    auto_block_pranks: int = 0
    history_days: int = 30  # how far back prank/silent verdicts flag a number
    # The server's own budget for the lookup; the dialplan gives up at 500 ms regardless.
    budget_seconds: float = 0.4


@dataclass(frozen=True, slots=True)
class ActiveBlock:
    flag_id: uuid.UUID
    reason: str | None
    set_by: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class CallerFacts:
    """What the records hold on a number (all its written forms together)."""

    calls_24h: int = 0
    prank_24h: int = 0
    silent_24h: int = 0
    prank_history: int = 0  # within `history_days`
    silent_history: int = 0
    last_language: str | None = None
    block: ActiveBlock | None = None


@dataclass(frozen=True, slots=True)
class Screening:
    flags: frozenset[str]
    repeat: int
    language: str | None
    auto_block: bool  # the screening itself decided to block the number (write it)

    def variables(self) -> dict[str, str]:
        """Channel variables for the app; an unknown language is left unset."""
        out = {"SIAGA_REPEAT": str(self.repeat), "SIAGA_FLAGS": ",".join(sorted(self.flags))}
        if self.language is not None:
            out["SIAGA_LANG"] = self.language
        return out


def screen(facts: CallerFacts, settings: ScreeningSettings) -> Screening:
    flags: set[str] = set()
    auto_block = (
        facts.block is None
        and settings.auto_block_pranks > 0
        and facts.prank_24h >= settings.auto_block_pranks
    )
    if facts.block is not None or auto_block:
        flags.add("blocked")
    if facts.prank_history:
        flags.add("prank_history")
    if facts.silent_history:
        flags.add("silent_history")
    language = facts.last_language if facts.last_language in ("id", "en") else None
    return Screening(
        flags=frozenset(flags), repeat=facts.calls_24h, language=language, auto_block=auto_block
    )


def is_anonymous(number: str) -> bool:
    return number.strip().lower() in _ANONYMOUS


def national_form(number: str) -> str:
    """An Indonesian number as dialled inside the country (0812...), other text as given
    without spaces, dashes or brackets. `+62 812-3456` and `62812 3456` become `08123456`."""
    compact = _DIAL_NOISE.sub("", number.strip())
    if compact.startswith("+62"):
        return "0" + compact[3:]
    if compact.startswith("0062"):
        return "0" + compact[4:]
    # A bare 62 prefix is the international form without '+' (9+ digits follow in practice).
    if compact.startswith("62") and compact.isdigit() and len(compact) >= 10:
        return "0" + compact[2:]
    return compact


def number_variants(number: str) -> list[str]:
    """Every form the same number may have been received or blocked in."""
    national = national_form(number)
    variants = {number, number.strip(), national}
    if national.startswith("0") and national[1:].isdigit() and len(national) > 1:
        rest = national[1:]
        variants |= {"62" + rest, "+62" + rest, "0062" + rest}
    variants.discard("")
    return sorted(variants)
