"""app_queue doing the work Siaga does, for the stack benchmark: rendered from Siaga's own
configuration so that both systems play the same prompts, route the same digits and ring the
same operators.

A call to `siaga-bench-aq`, extension `bench-<N>` (the family of queues with N operators), is
recorded from its arrival (`MixMonitor`, as the rendered `siaga-incoming` does), answered, and
walks the IVR menus as Siaga's IVR (`ari_app/ivr.py`) would: the menu's prompt with
`Background()` (a digit interrupts it), `WaitExten(ivr.timeout_seconds)` after it, a choice
into the category's queue `bench-<N>-<category>`, no input into `ivr.no_input`, an invalid digit
replays the menu `ivr.invalid_retries` times (after the `invalid` prompt), then `no_input`, the
language digit switches language and replays. Waiting callers hear the hold prompt Siaga plays
(`hold_emergency` or `hold_position`) as their queue's music class announcement, then music.

Queues: a category's priority is its queue's weight (`weight`): a member in several queues
goes to the most urgent one with a caller waiting, as Siaga's ACD serves priority 1 first.
Members: the same operators, Siaga's skill level L as penalty L - 1 (`penalty`); a category
whose secondary operators wait (`secondary_after_seconds` > 0) starts with QUEUE_MAX_PENALTY 0
and a queue rule raising it to 1 after that many seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePosixPath

from ari_app.ivr import MENU_PREFIX
from queues.config import Category
from siaga.config import IvrConfig

ENTRY_CONTEXT = "siaga-bench-aq"
QUEUE_CONTEXT = f"{ENTRY_CONTEXT}-queue"
HOLD_EMERGENCY_CLASS = "siaga-bench-hold-emergency"
HOLD_POSITION_CLASS = "siaga-bench-hold-position"
LANGUAGES = ("id", "en")
# What Asterisk takes for a context name: letters, digits, '-' and '_', under 80 characters.
CONTEXT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,79}$")

QUEUE_SETTINGS = """strategy = leastrecent
timeout = 15
retry = 1
wrapuptime = 0
ringinuse = no
autofill = yes
joinempty = yes
leavewhenempty = no
announce-frequency = 0
periodic-announce-frequency = 0
announce-holdtime = no
announce-position = no
reportholdtime = no
"""


def penalty(level: int) -> int:
    """Siaga's skill level 1 (primary) is app_queue's penalty 0, level 2 penalty 1: app_queue
    rings a member with a higher penalty only when none with a lower one is free, as Siaga
    offers a call to a secondary operator only while no primary one is free."""
    return level - 1


def weight(category: Category, categories: Sequence[Category]) -> int:
    """Siaga serves the most urgent category first (priority 1 before 2...): app_queue gives a
    member shared by several queues to the one of highest weight with a caller waiting."""
    return max(c.priority for c in categories) + 1 - category.priority


def menu_context(menu: str, language: str) -> str:
    return f"{ENTRY_CONTEXT}-{menu}-{language}"


def emergency_categories(ivr: IvrConfig) -> set[str]:
    """As Siaga's call machine decides: one digit from the main menu, or the no-input
    category."""
    main = ivr.menus["main"].choices.values()
    return {c for c in main if not c.startswith(MENU_PREFIX)} | {ivr.no_input}


def routed_categories(ivr: IvrConfig) -> list[str]:
    """Every category a caller can reach through the menus (digits, no input)."""
    found = {
        target
        for menu in ivr.menus.values()
        for target in menu.choices.values()
        if not target.startswith(MENU_PREFIX)
    }
    return sorted(found | {ivr.no_input})


def dialplan(
    ivr: IvrConfig, categories: Sequence[Category], prompts: PurePosixPath, language: str
) -> str:
    """The equal-work path's contexts (appended to the instance's extensions.conf)."""
    limited = limited_categories(categories)
    start = menu_context("main", language)
    lines = [
        f"[{ENTRY_CONTEXT}]",
        "; app_queue doing Siaga's work (bench/equal_work.py); the extension names the queues.",
        "exten => _b.,1,MSet(BENCH_QUEUES=${EXTEN},BENCH_INVALID=0)",
        " same => n,MixMonitor(${ASTSPOOLDIR}/recording/${UNIQUEID}.wav)",
        " same => n,Answer()",
        f" same => n,Goto({start},s,1)",
        "",
    ]
    timeout = _seconds(ivr.timeout_seconds)
    for lang in LANGUAGES:
        other = LANGUAGES[1 - LANGUAGES.index(lang)]
        for name, menu in ivr.menus.items():
            prompt = prompts / lang / menu.prompt
            lines += [
                f"[{menu_context(name, lang)}]",
                f"exten => s,1,Background({prompt})",
                f" same => n,WaitExten({timeout})",
            ]
            for digit, target in sorted(menu.choices.items()):
                if target.startswith(MENU_PREFIX):
                    sub = menu_context(target.removeprefix(MENU_PREFIX), lang)
                    lines += [
                        f"exten => {digit},1,Set(BENCH_INVALID=0)",
                        f" same => n,Goto({sub},s,1)",
                    ]
                else:
                    lines.append(f"exten => {digit},1,Goto({QUEUE_CONTEXT},{target},1)")
            lines += [
                f"exten => {ivr.language_digit},1,Goto({menu_context(name, other)},s,1)",
                f"exten => t,1,Goto({QUEUE_CONTEXT},{ivr.no_input},1)",
                "exten => i,1,Set(BENCH_INVALID=$[${BENCH_INVALID} + 1])",
                f" same => n,GotoIf($[${{BENCH_INVALID}} > {ivr.invalid_retries}]"
                f"?{QUEUE_CONTEXT},{ivr.no_input},1)",
                f" same => n,Background({prompts / lang / 'invalid'}&{prompt})",
                f" same => n,WaitExten({timeout})",
                "",
            ]
    lines.append(f"[{QUEUE_CONTEXT}]")
    for code in routed_categories(ivr):
        queue = f"Queue(${{BENCH_QUEUES}}-{code})"
        if code in limited:
            # Secondary operators held back at first (the queue's rule lets them in later).
            lines += [f"exten => {code},1,Set(QUEUE_MAX_PENALTY=0)", f" same => n,{queue}"]
        else:
            lines.append(f"exten => {code},1,{queue}")
        lines.append(" same => n,Hangup()")
    return "\n".join(lines) + "\n"


def limited_categories(categories: Sequence[Category]) -> dict[str, float]:
    """category -> seconds its secondary operators wait, for those that do wait."""
    return {c.code: c.secondary_after_seconds for c in categories if c.secondary_after_seconds}


def rule_name(seconds: float) -> str:
    return f"siaga-bench-secondary-{_seconds(seconds)}"


def queue_rules(categories: Sequence[Category]) -> str:
    """queuerules.conf: the secondary operators join after `secondary_after_seconds`."""
    out = []
    for seconds in sorted(set(limited_categories(categories).values())):
        out += [f"[{rule_name(seconds)}]", f"penaltychange => {_seconds(seconds)},1", ""]
    return "\n".join(out)


def queues(
    family: str,
    operators: int,
    categories: Sequence[Category],
    emergency: set[str],
    levels: Callable[[int], Mapping[str, int]],
    member: Callable[[int], str],
) -> str:
    """queues.conf sections `<family>-<category>`: each operator with the category's skill, at
    the penalty of their level; the queue's weight from the category's priority."""
    out = []
    for category in categories:
        hold = HOLD_EMERGENCY_CLASS if category.code in emergency else HOLD_POSITION_CLASS
        out += ["", f"[{family}-{category.code}]", QUEUE_SETTINGS + f"musicclass = {hold}"]
        out.append(f"weight = {weight(category, categories)}")
        if category.secondary_after_seconds:
            out.append(f"defaultrule = {rule_name(category.secondary_after_seconds)}")
        for n in range(1, operators + 1):
            level = levels(n).get(category.skill)
            if level is not None:
                out.append(f"member => {member(n)},{penalty(level)},op{n}")
    return "\n".join(out) + "\n"


def music_classes(prompts: PurePosixPath, language: str) -> str:
    """musiconhold.conf: the hold prompt first (and between the songs), as Siaga plays it
    before its music on hold."""
    out = []
    for name, prompt in (
        (HOLD_EMERGENCY_CLASS, "hold_emergency"),
        (HOLD_POSITION_CLASS, "hold_position"),
    ):
        out += [
            "",
            f"[{name}]",
            "mode = files",
            "directory = moh",
            "sort = random",
            f"announcement = {prompts / language / prompt}",
        ]
    return "\n".join(out) + "\n"


def contexts_in(text: str) -> tuple[set[str], set[str]]:
    """(contexts defined, contexts some Goto/GotoIf names) in a dialplan text."""
    defined = set(re.findall(r"^\[([^\]]+)\]", text, flags=re.MULTILINE))
    named = set(re.findall(r"[(?]([A-Za-z0-9_-]+),[A-Za-z0-9_]+,1\)", text))
    return defined, named


def _seconds(value: float) -> str:
    return f"{value:g}"
