"""One call's state machine (ari_app/call/): unit tests of each rule (docs/architecture.md).

The machine is pure: every test feeds events and compares the exact commands that come out.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ari_app.call import (
    Answer,
    BridgeOperator,
    CallerTalking,
    CallEvent,
    CallMachine,
    CallState,
    ChangePriority,
    Command,
    CreateBridge,
    DeferHold,
    DestroyBridge,
    DigitPressed,
    Disconnect,
    EnableTalkDetect,
    Enqueue,
    FinishCall,
    HangUpLeg,
    HoldDue,
    HungUp,
    LeaveQueue,
    OfferWithdrawn,
    OperatorConnected,
    OperatorRinging,
    Party,
    Play,
    PositionKnown,
    PromptFinished,
    Queued,
    Requeue,
    SaveQueueState,
    Started,
    StartMoh,
    StartTimer,
    StopMoh,
    StopPlayback,
    StopTalkDetect,
    Timer,
    TimerFired,
)
from ari_app.ivr import Language
from db.events import Fact, Facts
from siaga.config import Config, load_config

CONFIG: Config = load_config(Path(__file__).resolve().parents[2] / "siaga.toml")
CALL = "c1"
ID, EN = Language.ID, Language.EN


def pid(n: int) -> str:
    """The id of the machine's n-th playback."""
    return f"{CALL}-p{n}"


def machine(config: Config = CONFIG) -> CallMachine:
    return CallMachine(CALL, config)


def feed(m: CallMachine, *events: CallEvent) -> list[Command]:
    """Feed events; return the commands of the last one."""
    commands: list[Command] = []
    for event in events:
        commands = m.handle(event)
    return commands


def state_of(m: CallMachine) -> CallState:
    return m.state  # (a call, so that type narrowing does not outlive an event)


def records(commands: list[Command]) -> list[str]:
    return [c.kind for c in commands if isinstance(c, Fact)]


def the_record(commands: list[Command], kind: str) -> Fact:
    found = [c for c in commands if isinstance(c, Fact) and c.kind == kind]
    assert len(found) == 1, f"{kind}: {commands}"
    return found[0]


def started(m: CallMachine, **kwargs: object) -> list[Command]:
    return m.handle(Started("081234567890", "Budi", **kwargs))  # type: ignore[arg-type]


def in_ivr() -> CallMachine:
    """A call whose main menu (playback 1) is playing."""
    m = machine()
    started(m)
    return m


def armed() -> tuple[CallMachine, int]:
    """The main menu has finished playing: the IVR timeout runs. Returns its generation."""
    m = in_ivr()
    commands = m.handle(PromptFinished(pid(1)))
    assert len(commands) == 1 and isinstance(commands[0], StartTimer)
    return m, commands[0].generation


def settle(m: CallMachine, commands: list[Command]) -> list[Command]:
    """The commands of an event, and, if it deferred the hold, those of `HoldDue` (the actor
    feeds it back once the ACD's offer, if any, is out)."""
    if DeferHold() not in commands:
        return commands
    assert commands[-1] == DeferHold()
    return commands[:-1] + m.handle(HoldDue())


def queued(digit: str = "1") -> CallMachine:
    """Classified by one barge-in digit; the hold prompt (playback 2) is playing."""
    m = in_ivr()
    commands = m.handle(DigitPressed(digit, 1.0))
    # As the actor does: the ACD's place for the call, then the deferred hold.
    category = m.category
    assert m.handle(Queued(3, 1.0)) == [Facts.call_queued(category=category, position=3)]
    settle(m, commands)
    assert m.state is CallState.QUEUED
    assert m.playing == pid(2)
    return m


def on_moh() -> CallMachine:
    """Queued, the hold prompt has finished, music on hold plays."""
    m = queued()
    assert m.handle(PromptFinished(pid(2))) == [StartMoh()]
    return m


def connected(operator: str = "1001") -> CallMachine:
    m = on_moh()
    feed(m, OperatorRinging(operator), OperatorConnected(operator, "op-chan"))
    assert m.state is CallState.CONNECTED
    return m


# ---- arrival ------------------------------------------------------------------------------


def test_started_answers_bridges_detects_talk_and_plays_the_main_menu() -> None:
    m = machine()
    assert started(m, flags=frozenset({"repeat"})) == [
        Fact(
            "call_arrived",
            {
                "caller_number": "081234567890",
                "caller_name": "Budi",
                "flags": ["repeat"],
            },
        ),
        Answer(),
        CreateBridge(),
        EnableTalkDetect(),
        Play(pid(1), ("main",), ID),
        StartTimer(Timer.IVR_GUARD, 90.0, 1),
        StartTimer(Timer.IVR_DEADLINE, 6.0, 1),
    ]
    assert m.state is CallState.IVR
    assert m.playing == pid(1)


def test_blocked_caller_is_warned_and_queued_last_never_dropped() -> None:
    m = machine()
    commands = settle(m, started(m, flags=frozenset({"blocked"})))
    screened = CONFIG.category("screened")
    assert Enqueue("screened", screened.priority, frozenset({"blocked"})) in commands
    assert commands[-1] == Play(pid(1), ("blocked",), ID)
    assert m.state is CallState.QUEUED
    assert not any(isinstance(c, HangUpLeg | Disconnect) for c in commands)


def test_started_in_the_callers_last_language() -> None:
    commands = started(machine(), language=EN)
    assert commands[-3] == Play(pid(1), ("main",), EN)


def test_centre_language_is_the_default() -> None:
    config = dataclasses.replace(CONFIG, centre=dataclasses.replace(CONFIG.centre, language="en"))
    commands = started(machine(config))
    assert commands[-3] == Play(pid(1), ("main",), EN)


def test_a_second_started_changes_nothing() -> None:
    m = in_ivr()
    assert started(m) == []
    assert m.state is CallState.IVR
    assert m.playing == pid(1)


def test_no_timeout_runs_while_the_menu_plays_only_the_guard_and_the_deadline() -> None:
    commands = started(machine())
    timers = [c for c in commands if isinstance(c, StartTimer)]
    assert [t.timer for t in timers] == [Timer.IVR_GUARD, Timer.IVR_DEADLINE]


def test_a_menu_whose_prompt_never_ends_still_reaches_a_human() -> None:
    # The prompt failed and no PlaybackFinished ever comes: the guard routes the silent caller.
    m = machine()
    guard = next(c for c in started(m) if isinstance(c, StartTimer))
    commands = m.handle(TimerFired(Timer.IVR_GUARD, guard.generation))
    assert m.state is CallState.QUEUED
    general = CONFIG.category("general").priority
    assert Enqueue("general", general, frozenset({"unclassified", "silent"})) in commands


# ---- barge-in, timer, prompts -------------------------------------------------------------


def test_barge_in_stops_the_prompt_before_anything_else_plays() -> None:
    m = in_ivr()
    commands = m.handle(DigitPressed("1", 1.0))
    assert commands == [
        Fact("ivr_step", {"menu": "main", "input": "choice", "digit": "1", "language": "id"}),
        StopPlayback(pid(1)),
        Fact(
            "call_classified",
            {"category": "medical", "priority": 1, "flags": [], "language": "id"},
        ),
        Enqueue("medical", 1, frozenset()),
        DeferHold(),
    ]
    assert m.state is CallState.QUEUED
    assert (m.category, m.priority) == ("medical", 1)
    # Once the ACD's offer (if any) is out, the caller's channel: its place, then the hold.
    assert m.handle(HoldDue()) == [
        SaveQueueState("medical", 1, frozenset()),
        StopTalkDetect(),
        Play(pid(2), ("hold_emergency",), ID),
    ]


@pytest.mark.parametrize(
    ("digit", "prompts", "language"),
    [("9", ("main",), EN), ("5", ("non_emergency",), ID), ("#", ("invalid", "main"), ID)],
)
def test_a_digit_that_replays_stops_the_prompt_first(
    digit: str, prompts: tuple[str, ...], language: Language
) -> None:
    m = in_ivr()
    commands = m.handle(DigitPressed(digit, 1.0))
    assert commands[-2:] == [StopPlayback(pid(1)), Play(pid(2), prompts, language)]
    assert records(commands) == ["ivr_step"]
    assert m.state is CallState.IVR


def test_the_timer_starts_when_the_current_prompt_finishes() -> None:
    m = in_ivr()
    commands = m.handle(PromptFinished(pid(1)))
    assert commands == [StartTimer(Timer.IVR_TIMEOUT, 5, commands[0].generation)]  # type: ignore[union-attr]
    assert m.playing is None


def test_the_timer_uses_the_configured_timeout() -> None:
    config = dataclasses.replace(CONFIG, ivr=dataclasses.replace(CONFIG.ivr, timeout_seconds=3.5))
    m = machine(config)
    started(m)
    commands = m.handle(PromptFinished(pid(1)))
    assert len(commands) == 1 and isinstance(commands[0], StartTimer)
    assert commands[0].seconds == 3.5


def test_a_stopped_prompts_late_finish_is_ignored() -> None:
    m = in_ivr()
    m.handle(DigitPressed("9", 1.0))  # stops p1, plays p2
    assert m.handle(PromptFinished(pid(1))) == []
    assert m.playing == pid(2)
    commands = m.handle(PromptFinished(pid(2)))
    assert len(commands) == 1 and isinstance(commands[0], StartTimer)


@pytest.mark.parametrize("playback_id", ["bogus", pid(7), "", "c2-p1"])
def test_an_unknown_playback_finishing_is_ignored(playback_id: str) -> None:
    m = in_ivr()
    assert m.handle(PromptFinished(playback_id)) == []
    assert m.playing == pid(1)


def test_a_duplicate_prompt_finished_starts_no_second_timer() -> None:
    m, _ = armed()
    assert m.handle(PromptFinished(pid(1))) == []


def test_silent_caller_goes_to_general_flagged_silent_and_is_never_hung_up() -> None:
    m, generation = armed()
    commands = m.handle(TimerFired(Timer.IVR_TIMEOUT, generation))
    assert commands == [
        Fact("ivr_step", {"menu": "main", "input": "no_input", "digit": "", "language": "id"}),
        Fact(
            "call_classified",
            {
                "category": "general",
                "priority": 2,
                "flags": ["silent", "unclassified"],
                "language": "id",
            },
        ),
        Enqueue("general", 2, frozenset({"unclassified", "silent"})),
        DeferHold(),
    ]
    assert m.state is CallState.QUEUED
    assert m.flags == {"unclassified", "silent"}
    assert m.handle(HoldDue())[-1] == Play(pid(2), ("hold_emergency",), ID)
    assert m.handle(PromptFinished(pid(2))) == [StartMoh()]


def test_a_caller_heard_by_talk_detection_is_flagged_spoke() -> None:
    m, generation = armed()
    assert m.handle(CallerTalking()) == []
    commands = m.handle(TimerFired(Timer.IVR_TIMEOUT, generation))
    assert Enqueue("general", 2, frozenset({"unclassified", "spoke"})) in commands


def test_a_timer_of_an_old_generation_is_ignored() -> None:
    m, old = armed()
    m.handle(DigitPressed("9", 1.0))  # replays in English: the old timer is superseded
    assert m.handle(TimerFired(Timer.IVR_TIMEOUT, old)) == []
    assert m.state is CallState.IVR
    new = m.handle(PromptFinished(pid(2)))
    assert len(new) == 1 and isinstance(new[0], StartTimer)
    assert new[0].generation != old
    assert m.handle(TimerFired(Timer.IVR_TIMEOUT, old)) == []
    commands = m.handle(TimerFired(Timer.IVR_TIMEOUT, new[0].generation))
    assert Enqueue("general", 2, frozenset({"unclassified", "silent"})) in commands
    assert m.handle(TimerFired(Timer.IVR_TIMEOUT, new[0].generation)) == []  # duplicate


def test_a_timer_that_was_never_started_is_ignored() -> None:
    """BUG (see report): a digit bumps the timer generation without arming a timer, so a
    TimerFired of that never-armed generation is taken as the caller's silence while the new
    prompt is still playing."""
    m = in_ivr()
    commands = m.handle(DigitPressed("9", 1.0))  # replays the menu in English
    assert not [c for c in commands if isinstance(c, StartTimer)]
    # No timer was ever started, so no generation may count; the actual machine takes
    # generation 1 (the one the digit's cancel bumped to) as the caller's silence.
    for generation in range(-1, 6):
        assert m.handle(TimerFired(Timer.IVR_TIMEOUT, generation)) == [], generation
    assert m.state is CallState.IVR
    assert m.playing == pid(2)


def test_timer_fired_before_any_prompt_finished_is_ignored() -> None:
    m = in_ivr()
    for generation in range(-1, 4):
        assert m.handle(TimerFired(Timer.IVR_TIMEOUT, generation)) == []
    assert m.state is CallState.IVR


@pytest.mark.parametrize(
    ("digits", "category", "priority", "hold"),
    [
        ("2", "fire", 1, "hold_emergency"),
        ("3", "police", 1, "hold_emergency"),
        ("4", "disaster", 1, "hold_emergency"),
        ("0", "general", 2, "hold_emergency"),
        ("51", "information", 5, "hold_position"),
        ("52", "complaint", 5, "hold_position"),
        ("53", "public_services", 5, "hold_position"),
        ("9951", "information", 5, "hold_position"),
    ],
)
def test_classification_enqueues_with_the_category_priority(
    digits: str, category: str, priority: int, hold: str
) -> None:
    m = in_ivr()
    commands: list[Command] = []
    for i, digit in enumerate(digits):
        commands = settle(m, m.handle(DigitPressed(digit, float(i))))
    assert [c for c in commands if isinstance(c, Enqueue)] == [
        Enqueue(category, priority, frozenset())
    ]
    assert records(commands) == ["ivr_step", "call_classified"]
    assert isinstance(commands[-1], Play) and commands[-1].prompts == (hold,)
    assert m.state is CallState.QUEUED


def test_invalid_twice_goes_to_general_flagged_invalid_input() -> None:
    m = in_ivr()
    m.handle(DigitPressed("A", 1.0))
    commands = m.handle(DigitPressed("*", 2.0))
    assert Enqueue("general", 2, frozenset({"invalid_input", "unclassified"})) in commands
    assert commands[1] == StopPlayback(pid(2))


# ---- the deadline: the menu never keeps a caller from a free operator ----------------------


def at_the_deadline() -> CallMachine:
    """Nothing chosen 6 s after arrival: queued as general, the menu (playback 1) still plays."""
    m = machine()
    deadline = started(m)[-1]
    assert isinstance(deadline, StartTimer) and deadline.timer is Timer.IVR_DEADLINE
    commands = m.handle(TimerFired(Timer.IVR_DEADLINE, deadline.generation))
    assert commands == [
        Fact(
            "call_classified",
            {"category": "general", "priority": 2, "flags": ["unclassified"], "language": "id"},
        ),
        Enqueue("general", 2, frozenset({"unclassified"})),
        DeferHold(),
    ]
    assert m.handle(Queued(1, 6.0)) == [Facts.call_queued(category="general", position=1)]
    # Its place is kept on the channel; the menu and talk detection go on.
    assert m.handle(HoldDue()) == [SaveQueueState("general", 2, frozenset({"unclassified"}))]
    assert (m.state, m.playing) == (CallState.QUEUED, pid(1))
    return m


def test_the_deadline_counts_from_the_calls_arrival_at_asterisk() -> None:
    commands = started(machine(), since_arrival=1.5)
    assert commands[-1] == StartTimer(Timer.IVR_DEADLINE, 4.5, 1)
    late = started(machine(), since_arrival=9.0)  # a slow start: queued at once
    assert late[-1] == StartTimer(Timer.IVR_DEADLINE, 0.0, 1)


def test_a_caller_who_chose_nothing_is_queued_at_the_deadline_while_the_menu_goes_on() -> None:
    m = at_the_deadline()
    # The menu ends: its timeout runs as in the IVR, no music over the menu.
    commands = m.handle(PromptFinished(pid(1)))
    assert [type(c) for c in commands] == [StartTimer]
    assert m.handle(PositionKnown(1, None)) == []  # no announcement over the menu


def test_a_choice_before_the_deadline_cancels_it() -> None:
    m = machine()
    deadline = started(m)[-1]
    assert isinstance(deadline, StartTimer)
    settle(m, m.handle(DigitPressed("1", 1.0)))
    assert m.handle(TimerFired(Timer.IVR_DEADLINE, deadline.generation)) == []
    assert (m.category, m.flags) == ("medical", set())


def test_a_choice_after_the_deadline_moves_the_waiting_call_to_its_category_in_its_place() -> None:
    m = at_the_deadline()
    commands = m.handle(DigitPressed("1", 7.0))
    assert commands == [
        Fact("ivr_step", {"menu": "main", "input": "choice", "digit": "1", "language": "id"}),
        StopPlayback(pid(1)),
        Fact(
            "call_classified",
            {"category": "medical", "priority": 1, "flags": ["unclassified"], "language": "id"},
        ),
        Requeue(),
        SaveQueueState("medical", 1, frozenset({"unclassified"})),
        StopTalkDetect(),
        Play(pid(2), ("hold_emergency",), ID),
    ]
    assert (m.category, m.priority, m.state) == ("medical", 1, CallState.QUEUED)
    # The menu is over: 5 5 is "I cannot speak" again, no sub-menu.
    assert m.handle(DigitPressed("1", 8.0)) == []


def test_a_choice_while_an_operator_rings_is_recorded_and_the_ring_goes_on() -> None:
    m = at_the_deadline()
    feed(m, OperatorRinging("1002"))
    commands = m.handle(DigitPressed("2", 6.5))
    assert the_record(commands, "call_classified").data["category"] == "fire"
    assert Requeue() not in commands
    assert m.state is CallState.OFFERED and m.ringing == {"1002"}


def test_the_menu_timing_out_after_the_deadline_keeps_the_call_where_it_is() -> None:
    m = at_the_deadline()
    timeout = m.handle(PromptFinished(pid(1)))[0]
    assert isinstance(timeout, StartTimer)
    commands = m.handle(TimerFired(Timer.IVR_TIMEOUT, timeout.generation))
    assert the_record(commands, "call_classified").data["flags"] == ["silent", "unclassified"]
    assert Requeue() not in commands  # general already
    assert commands[-1] == Play(pid(2), ("hold_emergency",), ID)


def test_answered_while_the_menu_runs_ends_the_menu() -> None:
    m = at_the_deadline()
    commands = feed(m, OperatorRinging("1002"), OperatorConnected("1002", "op-chan", 6.3))
    assert commands[0] == StopPlayback(pid(1))
    assert commands[-1] == StopTalkDetect()
    assert m.state is CallState.CONNECTED
    assert m.handle(DigitPressed("1", 7.0)) == []
    assert m.category == "general"


def test_started_flags_go_with_the_enqueue() -> None:
    m = machine()
    started(m, flags=frozenset({"repeat"}))
    commands = m.handle(DigitPressed("3", 1.0))
    assert Enqueue("police", 1, frozenset({"repeat"})) in commands


def test_english_caller_hears_the_hold_prompt_in_english() -> None:
    m = in_ivr()
    commands = settle(m, feed(m, DigitPressed("9", 1.0), DigitPressed("4", 2.0)))
    assert commands[-1] == Play(pid(3), ("hold_emergency",), EN)
    assert the_record(commands, "call_classified").data["language"] == "en"


def test_late_ivr_digits_do_not_classify_twice() -> None:
    m = queued()
    for digit in "1234509#":
        assert not [c for c in m.handle(DigitPressed(digit, 10.0)) if isinstance(c, Enqueue)]
    assert m.category == "medical"


# ---- waiting: music on hold and 55 --------------------------------------------------------


def test_music_on_hold_starts_when_the_hold_prompt_finishes_once() -> None:
    m = queued()
    assert m.handle(PromptFinished(pid(1))) == []  # the stopped menu
    assert m.handle(PromptFinished(pid(2))) == [StartMoh()]
    assert m.handle(PromptFinished(pid(2))) == []
    assert m.moh


def test_55_within_3_seconds_flags_cannot_speak_and_raises_priority() -> None:
    m = on_moh()
    assert m.handle(DigitPressed("5", 10.0)) == []
    assert m.handle(DigitPressed("5", 11.5)) == [
        Fact("flag_set", {"flag": "cannot_speak"}),
        ChangePriority(0),
        StopMoh(),
        Play(pid(3), ("cannot_speak",), ID),
    ]
    assert "cannot_speak" in m.flags
    assert m.priority == 0
    assert m.handle(PromptFinished(pid(3))) == [StartMoh()]


def test_55_happens_once_only() -> None:
    m = on_moh()
    feed(m, DigitPressed("5", 10.0), DigitPressed("5", 10.5))
    for t in range(11, 20):
        assert m.handle(DigitPressed("5", float(t))) == []
    assert m.priority == 0


def test_55_during_the_hold_prompt_stops_it_first() -> None:
    m = queued()
    commands = feed(m, DigitPressed("5", 10.0), DigitPressed("5", 10.2))
    assert commands == [
        Fact("flag_set", {"flag": "cannot_speak"}),
        ChangePriority(0),
        StopPlayback(pid(2)),
        Play(pid(3), ("cannot_speak",), ID),
    ]


def test_55_while_an_operator_rings() -> None:
    m = on_moh()
    m.handle(OperatorRinging("1001"))
    commands = feed(m, DigitPressed("5", 10.0), DigitPressed("5", 10.2))
    assert ChangePriority(0) in commands
    assert m.state is CallState.OFFERED


def test_55_boundary_of_the_window() -> None:
    m = on_moh()
    assert feed(m, DigitPressed("5", 10.0), DigitPressed("5", 13.0)) != []  # 3.0 s: within


@pytest.mark.parametrize(
    "presses",
    [
        [("5", 10.0), ("5", 13.5)],  # too slow
        [("5", 10.0), ("#", 10.2), ("5", 10.4)],  # not two 5s in a row
        [("5", 10.0), ("A", 10.2), ("5", 10.4)],
        [("1", 10.0), ("1", 10.2)],
        [("5", 10.0)],
    ],
)
def test_not_55(presses: list[tuple[str, float]]) -> None:
    m = on_moh()
    for digit, at in presses:
        assert m.handle(DigitPressed(digit, at)) == []
    assert "cannot_speak" not in m.flags
    assert m.priority == 1


def test_slow_5s_start_a_new_window() -> None:
    m = on_moh()
    feed(m, DigitPressed("5", 10.0), DigitPressed("5", 14.0))
    assert ChangePriority(0) in m.handle(DigitPressed("5", 15.0))


def test_55_in_the_ivr_is_the_sub_menu_not_cannot_speak() -> None:
    m = in_ivr()
    commands = feed(m, DigitPressed("5", 1.0), DigitPressed("5", 1.5))
    assert ChangePriority(0) not in commands
    assert m.state is CallState.IVR  # 5 opened the sub-menu, 5 there is invalid
    assert "cannot_speak" not in m.flags


def test_a_caller_flagged_cannot_speak_at_arrival_is_queued_at_priority_0() -> None:
    m = machine()
    started(m, flags=frozenset({"cannot_speak"}))
    commands = m.handle(DigitPressed("2", 1.0))
    assert Enqueue("fire", 0, frozenset({"cannot_speak"})) in commands
    assert feed(m, DigitPressed("5", 2.0), DigitPressed("5", 2.1)) == []


def test_position_announcement_replaces_music_on_hold() -> None:
    m = on_moh()
    assert m.handle(PositionKnown(3, 45.0)) == [
        Fact("call_announced", {"position": 3, "ewt_seconds": 45.0}),
        StopMoh(),
        Play(pid(3), ("hold_emergency",), ID),
    ]


def test_position_announcement_never_interrupts_a_prompt() -> None:
    m = queued()
    assert m.handle(PositionKnown(1, None)) == []
    m2 = in_ivr()
    assert m2.handle(PositionKnown(1, None)) == []


# ---- queued: the operator's phone first, then the caller's channel ------------------------


def test_an_offer_made_on_queueing_goes_out_before_the_hold() -> None:
    m = in_ivr()
    commands = m.handle(DigitPressed("1", 1.0))
    assert commands[-1] == DeferHold()
    assert not [c for c in commands if isinstance(c, Play | SaveQueueState | StopTalkDetect)]
    # The actor rings the operator the ACD chose, then feeds HoldDue back.
    assert m.handle(OperatorRinging("1001")) == [Fact("call_offered", operator_id="1001")]
    assert m.handle(HoldDue()) == [
        SaveQueueState("medical", 1, frozenset()),
        StopTalkDetect(),
        Play(pid(2), ("hold_emergency",), ID),
    ]
    assert m.state is CallState.OFFERED
    assert m.handle(HoldDue()) == []  # once only


def test_hold_due_after_the_caller_hung_up_does_nothing() -> None:
    m = in_ivr()
    feed(m, DigitPressed("1", 1.0), HungUp(Party.CALLER, "16"))
    assert m.handle(HoldDue()) == []


def test_55_before_the_hold_keeps_its_prompt_and_saves_the_new_priority() -> None:
    m = in_ivr()
    feed(m, DigitPressed("1", 1.0), DigitPressed("5", 2.0), DigitPressed("5", 2.5))
    assert m.playing == pid(2)  # "we know you cannot speak"
    assert m.handle(HoldDue()) == [
        SaveQueueState("medical", 0, frozenset({"cannot_speak"})),
        StopTalkDetect(),
    ]
    assert m.handle(PromptFinished(pid(2))) == [StartMoh()]


def test_a_position_known_before_the_hold_waits_for_it() -> None:
    m = in_ivr()
    feed(m, DigitPressed("5", 1.0), DigitPressed("1", 1.5))  # information
    assert m.handle(PositionKnown(3, 90.0)) == []
    assert m.handle(HoldDue())[-1] == Play(pid(3), ("hold_position",), ID)


# ---- offers and connection ----------------------------------------------------------------


def test_operator_ringing_offers_the_call() -> None:
    m = on_moh()
    assert m.handle(OperatorRinging("1001")) == [Fact("call_offered", operator_id="1001")]
    assert m.state is CallState.OFFERED


def test_withdrawal_of_the_last_ringing_operator_requeues() -> None:
    m = on_moh()
    feed(m, OperatorRinging("1001"), OperatorRinging("1002"))
    assert m.handle(OfferWithdrawn("1001", "no_answer")) == [
        Fact("offer_failed", {"reason": "no_answer"}, operator_id="1001")
    ]
    assert state_of(m) is CallState.OFFERED
    assert m.handle(OfferWithdrawn("1001", "no_answer")) == []  # duplicate
    assert state_of(m) is CallState.OFFERED
    m.handle(OfferWithdrawn("1002", "busy"))
    assert state_of(m) is CallState.QUEUED
    assert m.moh  # the caller still hears music


@pytest.mark.parametrize("state", ["queued", "offered"])
def test_withdrawal_of_an_operator_never_offered_changes_nothing(state: str) -> None:
    m = on_moh()
    if state == "offered":
        m.handle(OperatorRinging("1001"))
    assert m.handle(OfferWithdrawn("9999", "no_answer")) == []
    assert m.state is CallState(state)


def test_ringing_in_the_ivr_is_ignored() -> None:
    m = in_ivr()
    assert m.handle(OperatorRinging("1001")) == []
    assert m.state is CallState.IVR


def test_connection_stops_music_and_bridges_and_writes_the_record() -> None:
    m = on_moh()
    m.handle(OperatorRinging("1001"))
    assert m.handle(OperatorConnected("1001", "op-chan")) == [
        StopMoh(),
        BridgeOperator("1001", "op-chan"),
        Fact("call_connected", operator_id="1001"),
    ]
    assert m.state is CallState.CONNECTED
    assert m.operator_id == "1001"


def test_connection_during_a_prompt_stops_the_prompt() -> None:
    m = queued()
    m.handle(OperatorRinging("1002"))
    assert m.handle(OperatorConnected("1002", "op-chan")) == [
        StopPlayback(pid(2)),
        BridgeOperator("1002", "op-chan"),
        Fact("call_connected", operator_id="1002"),
    ]
    assert m.handle(PromptFinished(pid(2))) == []  # its late end starts no music


def test_a_second_operator_connecting_is_ignored() -> None:
    m = connected("1001")
    assert m.handle(OperatorConnected("1002", "op-chan-2")) == []
    assert m.operator_id == "1001"


def test_connection_in_the_ivr_is_ignored() -> None:
    m = in_ivr()
    assert m.handle(OperatorConnected("1001", "op-chan")) == []
    assert m.state is CallState.IVR


def test_digits_and_prompts_while_connected_do_nothing() -> None:
    m = connected()
    events: list[CallEvent] = [
        DigitPressed("5", 30.0),
        DigitPressed("5", 30.1),
        PromptFinished(pid(2)),
        PositionKnown(1, 0.0),
        OperatorRinging("1002"),
        OfferWithdrawn("1001", "no_answer"),
    ]
    for event in events:
        assert m.handle(event) == []
    assert m.state is CallState.CONNECTED


# ---- the end ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "where"),
    [("ivr", "ivr"), ("queued", "queue"), ("moh", "queue"), ("offered", "queue")],
)
def test_caller_hanging_up_before_connection_abandons(setup: str, where: str) -> None:
    m = {"ivr": in_ivr, "queued": queued, "moh": on_moh, "offered": on_moh}[setup]()
    if setup == "offered":
        m.handle(OperatorRinging("1001"))
    commands = m.handle(HungUp(Party.CALLER, "16", at=31.0))
    if where == "ivr":
        abandoned = Facts.call_abandoned(state="ivr", cause="16")
    else:  # the place the ACD gave, and how long the caller waited in line
        abandoned = Facts.call_abandoned(
            position=3, wait_seconds=30.0, state="queue", cause="16", category="medical"
        )
    assert commands == [LeaveQueue(), abandoned, DestroyBridge()]
    assert m.state is CallState.ABANDONED


def test_caller_hanging_up_in_a_connected_call_ends_it() -> None:
    m = connected("1001")
    assert m.handle(HungUp(Party.CALLER, "16")) == [
        Fact(
            "call_ended",
            {"hangup_by": "caller", "cause": "16", "reason": "normal"},
            operator_id="1001",
        ),
        FinishCall("1001"),
        HangUpLeg("op-chan"),
        DestroyBridge(),
    ]
    assert m.state is CallState.ENDED


def test_operator_hanging_up_a_connected_call_ends_it() -> None:
    m = connected("1002")
    # The caller is hung up before the end is recorded: a kill in between loses only the record
    # (given back by the reconciliation), never leaves a caller "ended" and still up.
    assert m.handle(HungUp(Party.OPERATOR, "16")) == [
        Disconnect(),
        Fact(
            "call_ended",
            {"hangup_by": "operator", "cause": "16", "reason": "normal"},
            operator_id="1002",
        ),
        FinishCall("1002"),
        DestroyBridge(),
    ]
    assert m.state is CallState.ENDED


@pytest.mark.parametrize("setup", ["ivr", "queued", "offered"])
def test_an_operator_leg_hanging_up_before_connection_changes_nothing(setup: str) -> None:
    m = {"ivr": in_ivr, "queued": on_moh, "offered": on_moh}[setup]()
    if setup == "offered":
        m.handle(OperatorRinging("1001"))
    before = m.state
    assert m.handle(HungUp(Party.OPERATOR, "17")) == []
    assert m.state is before


def test_a_system_hangup_never_hangs_up_on_the_caller() -> None:
    """BUG (see report): only an operator hanging up a connected call may hang up the caller;
    `HungUp(Party.SYSTEM)` while connected is treated like an operator hangup."""
    m = connected("1001")
    commands = m.handle(HungUp(Party.SYSTEM, "pbx"))
    assert Disconnect() not in commands


@pytest.mark.parametrize("setup", ["ivr", "queued", "offered"])
def test_a_system_hangup_before_connection_hangs_up_nobody(setup: str) -> None:
    m = {"ivr": in_ivr, "queued": on_moh, "offered": on_moh}[setup]()
    if setup == "offered":
        m.handle(OperatorRinging("1001"))
    assert not [c for c in m.handle(HungUp(Party.SYSTEM)) if isinstance(c, HangUpLeg | Disconnect)]


def test_caller_hanging_up_before_started_leaves_a_final_call() -> None:
    m = machine()
    m.handle(HungUp(Party.CALLER))
    assert m.state.final
    assert started(m) == []


LATE_EVENTS: list[CallEvent] = [
    Started("0812", "late"),
    DigitPressed("1", 99.0),
    DigitPressed("5", 99.1),
    DigitPressed("5", 99.2),
    PromptFinished(pid(1)),
    PromptFinished(pid(2)),
    PromptFinished(pid(3)),
    TimerFired(Timer.IVR_TIMEOUT, 1),
    TimerFired(Timer.IVR_TIMEOUT, 2),
    CallerTalking(),
    OperatorRinging("1001"),
    OfferWithdrawn("1001", "no_answer"),
    OperatorConnected("1002", "op-chan-2"),
    PositionKnown(1, 5.0),
    HungUp(Party.CALLER),
    HungUp(Party.OPERATOR),
    HungUp(Party.SYSTEM),
]


@pytest.mark.parametrize(
    "ending",
    ["abandoned_ivr", "abandoned_queue", "ended_by_caller", "ended_by_operator"],
)
def test_final_states_ignore_every_later_event(ending: str) -> None:
    if ending.startswith("abandoned"):
        m = in_ivr() if ending == "abandoned_ivr" else on_moh()
        m.handle(HungUp(Party.CALLER))
        final = CallState.ABANDONED
    else:
        m = connected()
        party = Party.CALLER if ending == "ended_by_caller" else Party.OPERATOR
        m.handle(HungUp(party))
        final = CallState.ENDED
    assert m.state is final
    for event in LATE_EVENTS:
        assert m.handle(event) == [], event
        assert m.state is final


def test_a_whole_emergency_call_in_order() -> None:
    """Every command of a typical call, end to end: nobody hangs up on the caller."""
    m = machine()
    everything: list[Command] = []
    story: list[CallEvent] = [
        Started("081234567890", "Budi"),
        PromptFinished(pid(1)),
        DigitPressed("3", 4.0),
        Queued(None, 4.0),
        HoldDue(),
        PromptFinished(pid(1)),  # stale: the prompt had finished already
        PromptFinished(pid(2)),
        PositionKnown(2, 20.0),
        PromptFinished(pid(3)),
        OperatorRinging("1001"),
        OfferWithdrawn("1001", "no_answer"),
        OperatorRinging("1002"),
        OperatorConnected("1002", "op-chan"),
        HungUp(Party.CALLER, "16"),
        HungUp(Party.OPERATOR, "16"),
    ]
    for event in story:
        everything += m.handle(event)
    assert records(everything) == [
        "call_arrived",
        "ivr_step",
        "call_classified",
        "call_queued",
        "call_announced",
        "call_offered",
        "offer_failed",
        "call_offered",
        "call_connected",
        "call_ended",
    ]
    assert [c for c in everything if isinstance(c, Enqueue)] == [Enqueue("police", 1, frozenset())]
    assert [c for c in everything if isinstance(c, HangUpLeg | Disconnect)] == [
        HangUpLeg("op-chan")
    ]
    assert everything.count(StartMoh()) == 2
    assert everything.count(StopMoh()) == 2
    assert m.state is CallState.ENDED


def test_a_waiting_non_emergency_caller_hears_their_position() -> None:
    m = in_ivr()
    feed(m, DigitPressed("5", 1.0), DigitPressed("1", 1.5), HoldDue())  # information
    assert m.state is CallState.QUEUED
    m.handle(PromptFinished(m.playing or ""))
    commands = m.handle(PositionKnown(3, 90.0))
    assert commands[-1] == Play(pid(4), ("position_3",), ID)
    m.handle(PromptFinished(pid(4)))
    assert m.handle(PositionKnown(42, None))[-1] == Play(pid(5), ("position_many",), ID)


def test_a_waiting_emergency_caller_hears_that_help_is_coming_not_a_number() -> None:
    m = on_moh()
    assert m.handle(PositionKnown(3, 90.0))[-1] == Play(pid(3), ("hold_emergency",), ID)


def test_an_operator_hanging_up_at_once_puts_the_caller_back_in_line() -> None:
    m = on_moh()
    feed(m, OperatorRinging("1001"), OperatorConnected("1001", "op-chan", at=100.0))
    commands = m.handle(HungUp(Party.OPERATOR, "16", at=101.0))
    assert commands == [
        Fact("offer_failed", {"reason": "hung_up_at_once"}, operator_id="1001"),
        Requeue("1001"),
        StartMoh(),
    ]
    assert m.state is CallState.QUEUED and m.operator_id is None
    # The next operator takes the call normally.
    feed(m, OperatorRinging("1002"), OperatorConnected("1002", "op-chan-2", at=110.0))
    assert m.state is CallState.CONNECTED and m.operator_id == "1002"


def test_an_operator_hanging_up_after_talking_ends_the_call() -> None:
    m = on_moh()
    feed(m, OperatorRinging("1001"), OperatorConnected("1001", "op-chan", at=100.0))
    commands = m.handle(HungUp(Party.OPERATOR, "16", at=130.0))
    assert m.state is CallState.ENDED
    assert Disconnect() in commands
