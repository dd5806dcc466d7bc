"""The IVR menu interpreter: pure, driven by digits, prompt ends and timeouts.

Rules a 112 caller can rely on (docs/architecture.md):
- every emergency choice is one digit deep in the first menu, and the first digit interrupts the
  prompt (barge-in);
- no input within the timeout after the prompt goes to a human (the `no_input` category), flagged
  `unclassified` and `silent`, or `spoke` when talk detection heard the caller: a silent caller
  may be one who cannot speak, so the IVR never hangs up;
- an invalid digit replays the menu `invalid_retries` times, then goes to `no_input` as well
  (`invalid_input`, `unclassified`);
- the language digit switches Indonesian <-> English and replays the menu.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from siaga.config import IvrConfig, MenuConfig

MENU_PREFIX = "menu:"
# The flag of a call the menu did not classify: no valid digit in time (the reports' route
# `no_input`); `silent`/`spoke` say whether talk detection heard the caller.
UNCLASSIFIED = "unclassified"


class Language(enum.StrEnum):
    ID = "id"
    EN = "en"

    def other(self) -> Language:
        return Language.EN if self is Language.ID else Language.ID


class StepKind(enum.StrEnum):
    CHOICE = "choice"  # a digit chose a category or a sub-menu
    INVALID = "invalid"
    NO_INPUT = "no_input"
    LANGUAGE = "language"


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the caller did in the menus; each goes to the call's timeline."""

    menu: str
    kind: StepKind
    digit: str
    language: Language


@dataclass(frozen=True, slots=True)
class PlayMenu:
    """Play a menu's prompt (after stopping whatever plays); the timeout starts when it ends."""

    menu: str
    prompt: str
    language: Language
    apology: bool = False  # an invalid digit: say "not known" first


@dataclass(frozen=True, slots=True)
class Classified:
    """The IVR is done: queue the call in this category."""

    category: str
    flags: frozenset[str]


Outcome = PlayMenu | Classified


@dataclass
class Ivr:
    """One caller's walk through the menus."""

    config: IvrConfig
    language: Language = Language.ID
    menu: str = "main"
    invalid_count: int = 0
    spoke: bool = False
    finished: bool = False
    steps: list[Step] = field(default_factory=list)

    @property
    def current(self) -> MenuConfig:
        return self.config.menus[self.menu]

    def start(self) -> PlayMenu:
        return self._play()

    def talking(self) -> None:
        """Talk detection heard the caller: a caller who speaks is not silent."""
        self.spoke = True

    def digit(self, digit: str) -> Outcome | None:
        """A DTMF digit. Returns None once the IVR has finished (late digits are ignored here;
        the caller's actor may still use them, e.g. 55 for cannot-speak)."""
        if self.finished:
            return None
        if digit == self.config.language_digit:
            self._step(StepKind.LANGUAGE, digit)  # recorded in the language it was pressed in
            self.language = self.language.other()
            return self._play()
        target = self.current.choices.get(digit)
        if target is None:
            self._step(StepKind.INVALID, digit)
            self.invalid_count += 1
            if self.invalid_count > self.config.invalid_retries:
                return self._finish(self.config.no_input, {"invalid_input", UNCLASSIFIED})
            return self._play(apology=True)
        self._step(StepKind.CHOICE, digit)
        if target.startswith(MENU_PREFIX):
            self.menu = target.removeprefix(MENU_PREFIX)
            self.invalid_count = 0
            return self._play()
        return self._finish(target, set())

    def timed_out(self) -> Classified | None:
        """The timeout after the prompt ran out with no digit."""
        if self.finished:
            return None
        self._step(StepKind.NO_INPUT, "")
        return self._finish(
            self.config.no_input, {UNCLASSIFIED, "spoke" if self.spoke else "silent"}
        )

    def _play(self, apology: bool = False) -> PlayMenu:
        return PlayMenu(self.menu, self.current.prompt, self.language, apology)

    def _step(self, kind: StepKind, digit: str) -> None:
        self.steps.append(Step(self.menu, kind, digit, self.language))

    def _finish(self, category: str, flags: set[str]) -> Classified:
        self.finished = True
        if self.spoke:
            flags.add("spoke")
        return Classified(category, frozenset(flags))


def menu_categories(menus: Mapping[str, MenuConfig]) -> set[str]:
    """Every category some digit path can reach (used to check config and prompts)."""
    return {
        target
        for menu in menus.values()
        for target in menu.choices.values()
        if not target.startswith(MENU_PREFIX)
    }
