"""Time to a human: the stack benchmark's callers as people behave, and their times from
arrival to an operator (pure: no stack).

A caller pressing at the first chance presses once they hear the menu (plus a reaction time);
one who listens to the whole menu presses after it; one who presses nothing waits for the IVR to
give up on them. Each call's times come from what Asterisk saw (`bench_stack.traces`): its
channel created -> the first operator channel created for it (the phone rings) -> an operator
channel in its bridge (an operator answered).
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bench.stats import pct


class CallerKind(enum.StrEnum):
    FIRST = "first_chance"  # presses their digit as soon as they hear the menu
    AFTER_MENU = "after_menu"  # listens to the whole menu, then presses
    SILENT = "silent"  # presses nothing


# The caller mix: 70 % press at the first chance, 20 % after the menu, 10 % press nothing.
MIX: tuple[tuple[CallerKind, float], ...] = (
    (CallerKind.FIRST, 0.7),
    (CallerKind.AFTER_MENU, 0.2),
    (CallerKind.SILENT, 0.1),
)


@dataclass(frozen=True, slots=True)
class Caller:
    kind: CallerKind
    digit: str  # "" presses nothing
    delay: float  # seconds after the menu is first heard (a silent caller: none)


def caller_mix(
    count: int,
    rng: random.Random,
    digits: Sequence[str],
    menu_seconds: float,
    reaction: float,
) -> list[Caller]:
    """`count` callers in MIX's proportions, in random order; each who presses picks one of
    `digits`. The menu plays `menu_seconds`; a caller reacts in `reaction` s.

    The smaller kinds are rounded down (the rest press at the first chance): never more than
    10 % silent callers, so that the nearest-rank p90 of all callers is not a silent caller's
    time merely because rounding made them 11 %."""
    (first, _), *others = MIX
    kinds: list[CallerKind] = []
    for kind, share in others:
        kinds += [kind] * math.floor(count * share)
    kinds += [first] * (count - len(kinds))
    rng.shuffle(kinds)
    callers = []
    for kind in kinds:
        if kind is CallerKind.SILENT:
            callers.append(Caller(kind, "", 0.0))
        else:
            delay = reaction if kind is CallerKind.FIRST else menu_seconds + reaction
            callers.append(Caller(kind, rng.choice(list(digits)), delay))
    return callers


def poisson_offsets(rate: float, seconds: float, rng: random.Random) -> list[float]:
    """Arrival times (s from the start) of a Poisson stream of `rate` calls/s for `seconds`."""
    out: list[float] = []
    t = rng.expovariate(rate)
    while t < seconds:
        out.append(t)
        t += rng.expovariate(rate)
    return out


class Timed(Protocol):
    @property
    def arrived(self) -> float | None: ...
    @property
    def offered(self) -> float | None: ...
    @property
    def connected(self) -> float | None: ...


def summary_s(values: Sequence[float]) -> dict[str, Any]:
    """n, p50, p90, p99 and max in seconds (nearest rank)."""

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        "n": len(values),
        "p50": r(pct(values, 50)),
        "p90": r(pct(values, 90)),
        "p99": r(pct(values, 99)),
        "max": r(max(values) if values else None),
    }


def human_times(calls: Mapping[str, Timed], kinds: Mapping[str, CallerKind]) -> dict[str, Any]:
    """Per caller kind and for all callers: arrival -> phone ringing, arrival -> answered;
    callers never rung or never answered are counted, not timed."""
    out: dict[str, Any] = {}
    groups: list[tuple[str, list[str]]] = [("all", list(kinds))]
    groups += [(k.value, [i for i, kind in kinds.items() if kind is k]) for k, _ in MIX]
    for name, ids in groups:
        ring = [_gap(calls[i].arrived, calls[i].offered) for i in ids if i in calls]
        answer = [_gap(calls[i].arrived, calls[i].connected) for i in ids if i in calls]
        out[name] = {
            "callers": len(ids),
            "to_ringing_s": summary_s([v for v in ring if v is not None]),
            "to_answer_s": summary_s([v for v in answer if v is not None]),
            "never_answered": sum(1 for v in answer if v is None)
            + sum(1 for i in ids if i not in calls),
        }
    return out


def _gap(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start
