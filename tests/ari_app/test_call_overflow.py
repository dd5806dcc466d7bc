"""A call the ACD overflows (ari_app/call/overflow.py and the machine's overflow rules): to
another category it stays queued; to a partner centre the partner is rung on a leg of the call
and bridged when it answers; a partner that does not answer puts the caller back in line."""

from __future__ import annotations

from pathlib import Path

from ari_app.call.commands import (
    BridgePartner,
    Command,
    DestroyBridge,
    DialPartner,
    Disconnect,
    Enqueue,
    HangUpLeg,
    SaveQueueState,
    StartTimer,
    StopMoh,
    StopPlayback,
    StopTalkDetect,
)
from ari_app.call.events import (
    AgencyRequested,
    CommandFailed,
    DigitPressed,
    HoldDue,
    HungUp,
    LegAnswered,
    LegHungUp,
    Overflowed,
    PromptFinished,
    Queued,
    Started,
    TimerFired,
)
from ari_app.call.machine import CallMachine
from ari_app.call.states import CallState, Party, Timer
from db.events import Facts, HangupBy, OverflowOutcome
from queues.config import OverflowTarget
from siaga.config import load_config

CONFIG = load_config(Path(__file__).resolve().parents[2] / "siaga.toml")
PARTNER = OverflowTarget.parse("number:PJSIP/112@partner")
LEG = "c1-par1"
OVERFLOW = frozenset({"overflow"})  # the call's flags, shown on the live board


def waiting() -> CallMachine:
    """A medical call, queued, its hold prompt (playback 2) done: music plays."""
    m = CallMachine("c1", CONFIG)
    m.handle(Started("0812", "Budi"))
    m.handle(DigitPressed("1", 1.0))
    m.handle(Queued(1, 1.0))
    m.handle(HoldDue())
    m.handle(PromptFinished("c1-p2"))
    assert m.state is CallState.QUEUED and m.moh
    return m


def overflowed_to_partner() -> CallMachine:
    m = waiting()
    assert m.handle(Overflowed(PARTNER, "no_operator", "medical")) == [
        DialPartner("PJSIP/112@partner", LEG)
    ]
    return m


def state_of(m: CallMachine) -> CallState:
    return m.state


def test_overflow_to_a_category_keeps_the_call_queued_and_saves_its_new_place() -> None:
    m = waiting()
    target = OverflowTarget.parse("category:general")
    commands = m.handle(Overflowed(target, "max_wait", "medical"))
    assert commands == [SaveQueueState("general", m.priority or 0, frozenset({"overflow"}))]
    assert m.category == "general"
    assert m.state is CallState.QUEUED


def test_the_partner_answering_joins_the_caller_and_is_recorded_with_the_rule() -> None:
    m = overflowed_to_partner()
    assert m.state is CallState.QUEUED  # the caller hears the music while the partner rings
    commands = m.handle(LegAnswered(LEG, 5.0))
    assert commands == [
        StopMoh(),
        BridgePartner(LEG),
        Facts.overflow_outcome("PJSIP/112@partner", OverflowOutcome.ANSWERED, rule="no_operator"),
    ]
    assert state_of(m) is CallState.CONNECTED


def test_a_partner_answering_during_the_hold_prompt_stops_it() -> None:
    m = CallMachine("c1", CONFIG)
    m.handle(Started("0812", "Budi"))
    m.handle(DigitPressed("1", 1.0))
    m.handle(Queued(None, 1.0))
    m.handle(Overflowed(PARTNER, "no_operator", "medical"))
    m.handle(HoldDue())
    assert m.playing == "c1-p2"
    commands = m.handle(LegAnswered(LEG, 5.0))
    assert commands[:2] == [StopPlayback("c1-p2"), BridgePartner(LEG)]


def test_a_partner_not_answering_puts_the_caller_back_in_line_never_to_that_partner() -> None:
    m = overflowed_to_partner()
    commands = m.handle(LegHungUp(LEG, 19, destroyed=True))
    assert commands == [
        Facts.overflow_outcome(
            "PJSIP/112@partner", OverflowOutcome.FAILED, rule="no_operator", cause="19"
        ),
        Enqueue("medical", m.priority or 0, OVERFLOW, frozenset({str(PARTNER)})),
    ]
    assert m.state is CallState.QUEUED and m.partner is None
    # Its late destruction changes nothing; nor does a second overflow's leg being new.
    assert m.handle(LegHungUp(LEG, 19, destroyed=True)) == []


def test_a_partner_that_cannot_be_dialled_puts_the_caller_back_in_line() -> None:
    m = overflowed_to_partner()
    commands = m.handle(CommandFailed(DialPartner("PJSIP/112@partner", LEG), 500))
    assert [type(c).__name__ for c in commands] == ["Fact", "Enqueue"]
    assert m.state is CallState.QUEUED


def test_the_caller_hanging_up_while_the_partner_rings_hangs_the_partner_up() -> None:
    m = overflowed_to_partner()
    commands = m.handle(HungUp(Party.CALLER, "16", at=9.0))
    assert HangUpLeg(LEG) in commands and DestroyBridge() in commands
    assert "call_abandoned" in [c.kind for c in commands if hasattr(c, "kind")]
    assert m.state is CallState.ABANDONED


def test_the_caller_hanging_up_on_the_partner_ends_the_call() -> None:
    m = overflowed_to_partner()
    m.handle(LegAnswered(LEG, 5.0))
    commands = m.handle(HungUp(Party.CALLER, "16", at=60.0))
    assert commands == [
        Facts.call_ended(HangupBy.CALLER, cause="16"),
        HangUpLeg(LEG),
        DestroyBridge(),
    ]
    assert m.state is CallState.ENDED
    assert m.handle(LegHungUp(LEG, 16, destroyed=True)) == []
    assert m.finished


def test_the_partner_hanging_up_ends_the_call_for_the_caller() -> None:
    m = overflowed_to_partner()
    m.handle(LegAnswered(LEG, 5.0))
    commands = m.handle(LegHungUp(LEG, 16))
    assert commands == [
        Facts.call_ended(HangupBy.AGENCY, cause="16"),
        Disconnect(),
        DestroyBridge(),
    ]
    assert m.state is CallState.ENDED


def test_an_overflow_for_a_call_no_longer_waiting_changes_nothing() -> None:
    m = overflowed_to_partner()
    m.handle(LegAnswered(LEG, 5.0))
    assert m.handle(Overflowed(PARTNER, "max_wait", "medical")) == []
    m = waiting()
    m.handle(HungUp(Party.CALLER, "16", at=9.0))
    assert m.handle(Overflowed(PARTNER, "no_operator", "medical")) == []


def test_a_route_target_the_app_does_not_take_puts_the_caller_back_in_line() -> None:
    m = waiting()
    route = OverflowTarget.parse("route:fallback")
    commands: list[Command] = m.handle(Overflowed(route, "max_wait", "medical"))
    assert commands == [Enqueue("medical", m.priority or 0, OVERFLOW, frozenset({str(route)}))]


def test_a_call_queued_before_choosing_goes_to_the_partner_and_its_menu_ends() -> None:
    m = CallMachine("c1", CONFIG)
    deadline = next(
        c
        for c in m.handle(Started("0812", "Budi"))
        if isinstance(c, StartTimer) and c.timer is Timer.IVR_DEADLINE
    )
    m.handle(TimerFired(Timer.IVR_DEADLINE, deadline.generation))  # queued as general
    m.handle(Queued(1, 6.0))
    assert m.state is CallState.QUEUED and m.menu_open
    commands = m.handle(Overflowed(PARTNER, "no_operator", "general"))
    assert commands == [DialPartner("PJSIP/112@partner", LEG), StopTalkDetect()]
    assert not m.menu_open
    # A digit now is no choice: nothing queues the call again while the partner rings.
    assert m.handle(DigitPressed("2", 9.0)) == []


def test_no_agency_is_added_to_a_call_the_partner_took() -> None:
    m = overflowed_to_partner()
    m.handle(LegAnswered(LEG, 5.0))
    assert m.handle(AgencyRequested("police")) == []
