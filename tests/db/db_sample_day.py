"""A hand-built day of calls (2024-05-01, Asia/Jakarta) whose figures are computed by hand in
the comments below; the report and CLI tests check the SQL against them.

call  category      arrival   wait    outcome              disposition
A1    medical       08:00:00   8.0    answered op1         emergency
A2    medical       08:10:00  12.0    answered op2         prank
A3    fire          09:00:00  18.0    answered op1         silent
A4    fire          09:30:00  25.5    answered op2         prank, then corrected: emergency
B1    police        09:40:00   3.0    abandoned (short)
B2    police        10:00:00  30.0    abandoned
B3    -             10:15:00   5.0    abandoned (short: "within 5 s" includes 5.0)
C1    -             11:00:00    -     fallback (dialplan handled it)
D1    medical       11:30:00    -     ongoing
F1    medical       12:00:00    -     unanswered (ended by the system)
X1    medical  04-30 23:59:59.999     outside the day (op3 is connected at 00:00:04.999)
X2    medical  05-02 00:00:00.000     outside the day (the period is half-open)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from db import events as ev
from db.events import HangupBy, RecordEvent, Verdict
from queues.states import OfferFailure, OperatorState

TZ = "Asia/Jakarta"
ZONE = ZoneInfo(TZ)
DAY = datetime(2024, 5, 1, tzinfo=ZONE).date()
NOW = datetime(2024, 5, 1, 20, 0, tzinfo=ZONE)  # operator states still open run until now


def local(hour: int, minute: int = 0, second: float = 0.0, day: int = 1) -> datetime:
    base = datetime(2024, 4 if day == 30 else 5, day, hour, minute, tzinfo=ZONE)
    return base + timedelta(seconds=second)


def _answered(
    call_id: str,
    category: str,
    arrival: datetime,
    wait: float,
    operator: str,
    verdicts: list[Verdict],
) -> list[RecordEvent]:
    connected = arrival + timedelta(seconds=wait)
    out = [
        ev.call_arrived(call_id, "0812555" + call_id, at=arrival),
        # The greeting plays at once: it must not count as the answer.
        ev.ivr_step(call_id, "main", language="id", at=arrival + timedelta(seconds=0.5)),
        ev.call_classified(call_id, category, priority=1, at=arrival + timedelta(seconds=3)),
        ev.call_queued(call_id, at=arrival + timedelta(seconds=3)),
        ev.call_offered(call_id, operator, at=connected - timedelta(seconds=2)),
        ev.call_connected(call_id, operator, at=connected),
        ev.call_ended(call_id, HangupBy.CALLER, at=connected + timedelta(seconds=60)),
    ]
    for n, verdict in enumerate(verdicts):
        out.append(
            ev.disposition(call_id, operator, verdict, at=connected + timedelta(seconds=90 + n))
        )
    return out


def _abandoned(
    call_id: str, category: str | None, arrival: datetime, wait: float
) -> list[RecordEvent]:
    out = [ev.call_arrived(call_id, "0813" + call_id, at=arrival)]
    if category:
        out.append(ev.call_classified(call_id, category, at=arrival + timedelta(seconds=1)))
    gone = arrival + timedelta(seconds=wait)
    out += [
        ev.call_abandoned(call_id, position=1, at=gone),
        ev.call_ended(call_id, HangupBy.CALLER, at=gone),
    ]
    return out


def calls() -> list[RecordEvent]:
    out: list[RecordEvent] = []
    # A1 is first offered to op2, who does not answer.
    out.append(ev.call_offered("A1", "op2", at=local(8, 0, 2)))
    out.append(ev.offer_failed("A1", "op2", OfferFailure.NO_ANSWER, at=local(8, 0, 5)))
    out += _answered("A1", "medical", local(8, 0), 8.0, "op1", [Verdict.EMERGENCY])
    out += _answered("A2", "medical", local(8, 10), 12.0, "op2", [Verdict.PRANK])
    out += _answered("A3", "fire", local(9, 0), 18.0, "op1", [Verdict.SILENT])
    out += _answered("A4", "fire", local(9, 30), 25.5, "op2", [Verdict.PRANK, Verdict.EMERGENCY])
    out += _abandoned("B1", "police", local(9, 40), 3.0)
    out += _abandoned("B2", "police", local(10, 0), 30.0)
    out += _abandoned("B3", None, local(10, 15), 5.0)
    out += [
        ev.call_arrived("C1", "0814C1", flags=["fallback"], at=local(11, 0)),
        ev.call_ended("C1", HangupBy.CALLER, at=local(11, 2)),
        ev.call_arrived("D1", "0815D1", at=local(11, 30)),
        ev.call_classified("D1", "medical", at=local(11, 30, 4)),
        ev.call_queued("D1", at=local(11, 30, 4)),
        ev.call_arrived("F1", "0816F1", at=local(12, 0)),
        ev.call_classified("F1", "medical", at=local(12, 0, 4)),
        ev.call_ended("F1", HangupBy.SYSTEM, reason="pbx_restart", at=local(12, 0, 40)),
    ]
    out += _answered("X1", "medical", local(23, 59, 59.999, day=30), 5.0, "op3", [])
    out += _answered("X2", "medical", local(0, 0, 0.0, day=2), 5.0, "op3", [])
    return out


def operator_states() -> list[RecordEvent]:
    S = OperatorState
    return [
        ev.operator_state("op1", S.AVAILABLE, name="Budi", at=local(23, 0, day=30)),
        ev.operator_state("op1", S.ON_CALL, at=local(8, 0)),
        ev.operator_state("op1", S.WRAP_UP, at=local(8, 2, 8)),
        ev.operator_state("op1", S.AVAILABLE, at=local(8, 3)),
        ev.operator_state("op1", S.PAUSED, reason="break", at=local(12, 0)),
        ev.operator_state("op1", S.AVAILABLE, at=local(12, 30)),
        ev.operator_state("op1", S.PAUSED, reason="toilet", at=local(13, 0)),
        ev.operator_state("op1", S.LOGGED_OUT, at=local(13, 10)),
        ev.operator_state("op2", S.AVAILABLE, name="Siti", at=local(9, 0)),
        ev.operator_state("op2", S.PAUSED, at=local(10, 0)),
        ev.operator_state("op2", S.AVAILABLE, at=local(10, 30)),
    ]


def all_events() -> list[RecordEvent]:
    return calls() + operator_states()


# Hand-computed figures for the day (thresholds 10/15/20 s, short abandons <= 5 s).
# Service level denominator: answered 4 + abandoned 1 (B2) = 5.
TOTAL: dict[str, Any] = {
    "received": 10,
    "answered": 4,
    "abandoned": 1,
    "abandoned_short": 2,
    "unanswered": 1,
    "fallback": 1,
    "ongoing": 1,
    "answered_within": [1, 2, 3],  # A1 (8); + A2 (12); + A3 (18)
    "ratios": [0.2, 0.4, 0.6],
    "asa_seconds": 15.875,  # (8 + 12 + 18 + 25.5) / 4
    "longest_wait_seconds": 30.0,  # B2
    "disposed": 4,
    "prank": 1,  # A2 (A4's latest verdict is emergency)
    "silent": 1,  # A3
}
# op1: available 00:00-08:00 (28800) + 08:03-12:00 (14220) + 12:30-13:00 (1800) = 44820;
# on call 128, wrap-up 52, paused break 1800 + toilet 600; logged out from 13:10.
# op2: available 09:00-10:00 (3600) + 10:30-20:00 now (34200) = 37800; paused 1800.
OPERATORS: dict[str, dict[str, Any]] = {
    "op1": {
        "name": "Budi",
        "logged_in_seconds": 47400.0,
        "available_seconds": 44820.0,
        "talk_seconds": 128.0,
        "wrap_up_seconds": 52.0,
        "paused_seconds": 2400.0,
        "pause_by_reason": {"break": 1800.0, "toilet": 600.0},
        "calls_connected": 2,
        "offers": 2,
        "offers_failed": 0,
    },
    "op2": {
        "name": "Siti",
        "logged_in_seconds": 39600.0,
        "available_seconds": 37800.0,
        "talk_seconds": 0.0,
        "wrap_up_seconds": 0.0,
        "paused_seconds": 1800.0,
        "pause_by_reason": {"unspecified": 1800.0},
        "calls_connected": 2,
        "offers": 3,
        "offers_failed": 1,
    },
    # op3 has no state changes; X1's offer and connection fall inside the day.
    "op3": {
        "name": None,
        "logged_in_seconds": 0.0,
        "available_seconds": 0.0,
        "talk_seconds": 0.0,
        "wrap_up_seconds": 0.0,
        "paused_seconds": 0.0,
        "pause_by_reason": {},
        "calls_connected": 1,
        "offers": 1,
        "offers_failed": 0,
    },
}


# -- Time to a human and routes: a second day (2024-05-08), apart from the first -----------------
#
# call  route         flags on the call              category  ring   wait   outcome
# P1    digit         -                              medical    1.0    3.0   answered
# P2    digit         -                              medical    1.5    5.0   answered
# P3    screened      blocked                        medical    2.0    7.0   answered
# P4    no_input      silent                         general    3.0    9.0   answered
# P5    no_input      spoke, unclassified            general    4.0   11.0   answered
# P6    no_input      invalid_input                  general    5.0   14.0   answered
# P7    no_input      unclassified                   general    6.5   15.0   answered
# P8    cannot_speak  cannot_speak, blocked          medical    8.0   18.0   answered
# P9    overflow      silent, overflow               police    12.0   21.0   answered
# P10   digit         -                              fire      30.0   45.0   answered
# Q1    no_input      - (gone in the menu)           -           -     4.0   abandoned (short)
# Q2    no_input      - (gone in the menu)           -           -     9.0   abandoned
# G1    fallback      fallback                       -           -      -    fallback
ROUTES_DAY = datetime(2024, 5, 8, tzinfo=ZONE).date()
_ROUTED = [
    # call, category, ring, wait, flags on arrival, flags on classification, flags set later
    ("P1", "medical", 1.0, 3.0, [], [], []),
    ("P2", "medical", 1.5, 5.0, [], [], []),
    ("P3", "medical", 2.0, 7.0, ["blocked"], [], []),
    ("P4", "general", 3.0, 9.0, [], ["silent"], []),
    ("P5", "general", 4.0, 11.0, [], ["spoke", "unclassified"], []),
    ("P6", "general", 5.0, 14.0, [], ["invalid_input"], []),
    ("P7", "general", 6.5, 15.0, [], ["unclassified"], []),
    ("P8", "medical", 8.0, 18.0, ["blocked"], [], ["cannot_speak"]),
    ("P9", "police", 12.0, 21.0, [], ["silent"], ["overflow"]),
    ("P10", "fire", 30.0, 45.0, [], [], []),
]


def routes_calls() -> list[RecordEvent]:
    out: list[RecordEvent] = []
    for n, (call_id, category, ring, wait, arrival_flags, menu_flags, later) in enumerate(_ROUTED):
        arrival = datetime(2024, 5, 8, 8 + n, tzinfo=ZONE)
        out += [
            ev.call_arrived(call_id, "0817" + call_id, flags=arrival_flags, at=arrival),
            ev.call_classified(
                call_id, category, flags=menu_flags, at=arrival + timedelta(seconds=0.5)
            ),
            *(ev.flag_set(call_id, flag, at=arrival + timedelta(seconds=0.7)) for flag in later),
            ev.call_queued(call_id, at=arrival + timedelta(seconds=0.8)),
            ev.call_offered(call_id, "op1", at=arrival + timedelta(seconds=ring)),
            ev.call_connected(call_id, "op1", at=arrival + timedelta(seconds=wait)),
            ev.call_ended(call_id, HangupBy.CALLER, at=arrival + timedelta(seconds=wait + 60)),
        ]
    evening = datetime(2024, 5, 8, 20, tzinfo=ZONE)
    for call_id, gone in (("Q1", 4.0), ("Q2", 9.0)):
        out += [
            ev.call_arrived(call_id, "0818" + call_id, at=evening),
            ev.ivr_step(call_id, "main", language="id", at=evening + timedelta(seconds=0.5)),
            ev.call_abandoned(call_id, at=evening + timedelta(seconds=gone)),
            ev.call_ended(call_id, HangupBy.CALLER, at=evening + timedelta(seconds=gone)),
        ]
        evening += timedelta(minutes=10)
    out += [
        ev.call_arrived("G1", "0819G1", flags=["fallback"], at=evening),
        ev.call_ended("G1", HangupBy.CALLER, at=evening + timedelta(seconds=90)),
    ]
    return out


# Nearest rank over the 10 calls offered (Q1, Q2, G1 never rang anyone):
#   ring   1, 1.5, 2, 3, 4, 5, 6.5, 8, 12, 30     p50 = 5th = 4, p90 = 9th = 12, p99 = 10th = 30
#   answer 3, 5, 7, 9, 11, 14, 15, 18, 21, 45     p50 = 11, p90 = 21, p99 = 45
# (interpolating percentiles would give ring p50 4.5 and p90 13.8: nearest rank does not.)
ROUTES_TOTAL: dict[str, Any] = {
    "received": 13,
    "answered": 10,
    "abandoned": 1,  # Q2; Q1 is a short abandon
    "to_ring": (10, 4.0, 12.0, 30.0),
    "to_answer": (10, 11.0, 21.0, 45.0),
    "ratios": [4 / 11, 7 / 11, 8 / 11],  # within 10 s: 3, 5, 7, 9; 15 s: + 11, 14, 15; 20 s: + 18
}
ROUTES_BY_CATEGORY: dict[str, dict[str, Any]] = {
    # medical: ring 1, 1.5, 2, 8 (p50 = 2nd, p90 = p99 = 4th); answer 3, 5, 7, 18
    "medical": {"to_ring": (4, 1.5, 8.0, 8.0), "to_answer": (4, 5.0, 18.0, 18.0)},
    "general": {"to_ring": (4, 4.0, 6.5, 6.5), "to_answer": (4, 11.0, 15.0, 15.0)},
    "police": {"to_ring": (1, 12.0, 12.0, 12.0), "to_answer": (1, 21.0, 21.0, 21.0)},
    "fire": {"to_ring": (1, 30.0, 30.0, 30.0), "to_answer": (1, 45.0, 45.0, 45.0)},
    "unclassified": {"to_ring": (0, None, None, None), "to_answer": (0, None, None, None)},
}
# Service level at 10/15/20 s per route, in the order of the rule.
ROUTES_SL: dict[str, dict[str, Any]] = {
    "fallback": {"received": 1, "ratios": [None, None, None]},  # G1: neither answered nor gone
    "overflow": {"received": 1, "ratios": [0.0, 0.0, 0.0]},  # P9 21 s
    "cannot_speak": {"received": 1, "ratios": [0.0, 0.0, 1.0]},  # P8 18 s
    # P4 9, P5 11, P6 14, P7 15 answered; Q2 abandoned after 9 s; Q1 short, left out
    "no_input": {"received": 6, "ratios": [1 / 5, 4 / 5, 4 / 5]},
    "screened": {"received": 1, "ratios": [1.0, 1.0, 1.0]},  # P3 7 s
    "digit": {"received": 3, "ratios": [2 / 3, 2 / 3, 2 / 3]},  # P1 3, P2 5, P10 45
}
