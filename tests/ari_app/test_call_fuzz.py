"""Property/fuzz tests of one call's state machine (ari_app/call/).

Random scripts of events, including reordered, duplicated and missing ones, garbage digits,
unknown playback ids, stale and never-armed timer generations, and events of operators never
offered, are fed to a fresh `CallMachine`. Each script is abstract ("the playback playing now",
"the timer armed last", "an old one") and resolved while it runs, from the commands the machine
has given so far (never from its private fields), so that shrunk failures read as call stories.

Each test checks one group of properties over the whole trace of (state before, event, commands,
state after).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.call import (
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
    Enqueue,
    FinishCall,
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
from ari_app.call.transitions import allowed as allowed_next
from ari_app.call.transitions import graph
from ari_app.ivr import Language
from db.events import Fact, Facts
from siaga.config import Config, load_config

CONFIG: Config = load_config(Path(__file__).resolve().parents[2] / "siaga.toml")
CALL = "fz"
FUZZ = settings(max_examples=300, deadline=None)

S = CallState
# The event types the scripts feed; the graph they may move along is the machine's own table
# (ari_app/call/transitions.py), not a copy. ARRIVED -> ABANDONED is left out of the usual
# scripts' graph: a caller HungUp fed before Started must still leave the machine final (the
# actor always feeds Started first, so only the "Started anywhere" test can take it).
FED: set[type] = {
    Started,
    DigitPressed,
    PromptFinished,
    TimerFired,
    CallerTalking,
    Queued,
    OperatorRinging,
    OfferWithdrawn,
    OperatorConnected,
    PositionKnown,
    HungUp,
    HoldDue,
}
BEFORE_STARTED: set[tuple[CallState, CallState]] = {(S.ARRIVED, S.ABANDONED)}
FORWARD = graph(FED) - BEFORE_STARTED
WAITING = (S.QUEUED, S.OFFERED)
OPERATORS = ("1001", "1002", "9999")  # 9999 is nobody: never rung by any ACD

# ---- abstract scripts -----------------------------------------------------------------------

Spec = tuple[object, ...]

digits = st.sampled_from(list("0123456789") + ["5", "5", "*", "#", "A", "D", "", "55"])
# seconds since the previous digit: around the 3 s window of 55, and backwards (reordered)
gaps = st.sampled_from([0.0, 0.2, 1.0, 2.9, 3.0, 3.1, 10.0, -1.0])

started_spec = st.tuples(
    st.just("started"),
    st.frozensets(st.sampled_from(["repeat", "blocked", "cannot_speak"]), max_size=2),
    st.sampled_from([None, Language.ID, Language.EN]),
)
event_spec: st.SearchStrategy[Spec] = st.one_of(
    st.tuples(st.just("digit"), digits, gaps),
    st.tuples(st.just("digit"), digits, gaps),
    st.tuples(st.just("finished"), st.sampled_from(["current", "current", "previous", "junk"])),
    st.tuples(st.just("finished"), st.just("current")),
    st.tuples(
        st.just("timer"),
        st.one_of(st.sampled_from(["last", "last", "older"]), st.integers(-1, 9)),
    ),
    st.tuples(st.just("talk")),
    st.tuples(st.just("deadline")),  # the menu's deadline (queued unclassified), or a stale one
    st.tuples(st.just("ringing"), st.sampled_from(OPERATORS)),
    st.tuples(st.just("withdrawn"), st.sampled_from(OPERATORS), st.sampled_from(["busy", "x"])),
    st.tuples(st.just("connected"), st.sampled_from(OPERATORS)),
    st.tuples(st.just("position"), st.integers(0, 5), st.sampled_from([None, 0.0, 30.0])),
    st.tuples(st.just("hangup"), st.sampled_from(Party), st.sampled_from(["", "16", "gone"])),
    st.tuples(st.just("repeat")),  # the previous event again, exactly
    st.tuples(st.just("hold_due")),  # a duplicate (or, before any DeferHold, a stray) HoldDue
    started_spec,  # a duplicate (or, without the first Started, a late) Started
)
# A call's usual story, each chapter optional (shrinking drops them); noise is mixed in below.
ivr_routes = st.sampled_from(
    [
        [("digit", "1", 0.5)],  # barge-in
        [("finished", "current"), ("digit", "3", 1.0)],
        [("digit", "5", 0.5), ("digit", "2", 0.5)],  # non-emergency
        [("finished", "current"), ("timer", "last")],  # silent
        [("digit", "9", 0.2), ("finished", "current"), ("timer", "last")],
        [("digit", "A", 0.5), ("digit", "#", 0.5)],  # invalid twice
        [("deadline",)],  # nothing chosen in time: queued while the menu goes on
        [("deadline",), ("digit", "1", 0.5)],  # ...then a choice while waiting
        [("deadline",), ("finished", "current"), ("timer", "last")],  # ...then its timeout
    ]
)


def story(
    route: list[Spec] | None,
    hold_ends: bool,
    ring: str | None,
    fives: bool,
    connect: str | None,
    end: Party | None,
) -> list[Spec]:
    chapters: list[Spec] = list(route or [])
    chapters += [("finished", "current")] if hold_ends else []
    chapters += [("ringing", ring)] if ring else []
    chapters += [("digit", "5", 1.0), ("digit", "5", 1.0)] if fives else []
    chapters += [("connected", connect)] if connect else []
    chapters += [("hangup", end, "16")] if end else []
    return chapters


stories = st.builds(
    story,
    st.none() | ivr_routes,
    st.booleans(),
    st.none() | st.sampled_from(OPERATORS),
    st.booleans(),
    st.none() | st.sampled_from(OPERATORS),
    st.none() | st.sampled_from(Party),
)
noise = st.lists(st.tuples(st.integers(0, 12), event_spec), max_size=30)


def assemble(first: Spec, chapters: list[Spec], extra: list[tuple[int, Spec]]) -> list[Spec]:
    """Started, then the story's chapters with each noise event inserted at its position."""
    script = list(chapters)
    for position, spec in extra:
        script.insert(min(position, len(script)), spec)
    return [first, *script]


# The actor always feeds Started first (StasisStart creates it); the rest comes in any order.
scripts = st.builds(assemble, started_spec, stories, noise)
anywhere_scripts = st.lists(event_spec, max_size=40)


@dataclass
class Step:
    before: CallState
    event: CallEvent
    commands: list[Command]
    after: CallState


@dataclass
class Trace:
    steps: list[Step] = field(default_factory=list)

    def commands(self) -> list[Command]:
        return [c for s in self.steps for c in s.commands]

    def records(self, kind: str | None = None) -> list[Fact]:
        return [c for c in self.commands() if isinstance(c, Fact) and kind in (None, c.kind)]

    def reached(self, state: CallState) -> bool:
        return any(s.after is state for s in self.steps)

    def story(self) -> str:
        return "\n".join(
            f"  {s.before.value:>9} {s.event!r} -> {s.after.value}: {s.commands!r}"
            for s in self.steps
        )


def run(script: list[Spec]) -> Trace:
    """Resolve and feed the script; what it resolves to depends only on earlier commands.

    Like the actor, it feeds HoldDue back after a DeferHold: at once, or after the next event
    if that is an operator ringing (the ACD's offer made as the call was queued)."""
    m = CallMachine(CALL, CONFIG)
    trace = Trace()
    plays: list[str] = []  # every Play id so far
    timers: list[int] = []  # every StartTimer generation so far
    deadlines: list[int] = []  # every IVR_DEADLINE StartTimer generation so far
    clock = 100.0
    previous: CallEvent | None = None
    hold_owed = False

    def feed(event: CallEvent) -> None:
        nonlocal hold_owed
        before = m.state
        commands = m.handle(event)  # no exception may escape
        assert isinstance(commands, list), (event, commands)
        trace.steps.append(Step(before, event, commands, m.state))
        plays.extend(c.playback_id for c in commands if isinstance(c, Play))
        timers.extend(c.generation for c in commands if isinstance(c, StartTimer))
        deadlines.extend(
            c.generation
            for c in commands
            if isinstance(c, StartTimer) and c.timer is Timer.IVR_DEADLINE
        )
        hold_owed = hold_owed or DeferHold() in commands
        if any(isinstance(c, Enqueue) for c in commands):
            feed(Queued(2, clock))  # as the actor does: the ACD's place for the call, at once

    for spec in script:
        if hold_owed and spec[0] != "ringing":
            hold_owed = False
            feed(HoldDue())
        event: CallEvent
        match spec:
            case ("started", flags, language):
                event = Started("0812", "fuzz", flags, language)  # type: ignore[arg-type]
            case ("digit", digit, gap):
                clock += gap  # type: ignore[operator]
                event = DigitPressed(digit, clock)  # type: ignore[arg-type]
            case ("finished", which):
                ids = {
                    "current": plays[-1] if plays else f"{CALL}-p1",
                    "previous": plays[-2] if len(plays) > 1 else f"{CALL}-p0",
                    "junk": "not-ours",
                }
                event = PromptFinished(ids[which])  # type: ignore[index]
            case ("timer", which):
                # the last StartTimer's generation (1 if none came yet), an older one, any int
                if which == "last":
                    generation = timers[-1] if timers else 1
                elif which == "older":
                    generation = timers[-2] if len(timers) > 1 else 0
                else:
                    generation = which  # type: ignore[assignment]
                event = TimerFired(Timer.IVR_TIMEOUT, generation)
            case ("talk",):
                event = CallerTalking()
            case ("deadline",):
                event = TimerFired(Timer.IVR_DEADLINE, deadlines[-1] if deadlines else 1)
            case ("ringing", operator):
                event = OperatorRinging(operator)  # type: ignore[arg-type]
            case ("withdrawn", operator, reason):
                event = OfferWithdrawn(operator, reason)  # type: ignore[arg-type]
            case ("connected", operator):
                event = OperatorConnected(operator, f"{CALL}-leg-{operator}")  # type: ignore[arg-type]
            case ("position", position, ewt):
                event = PositionKnown(position, ewt)  # type: ignore[arg-type]
            case ("hangup", party, cause):
                event = HungUp(party, cause)  # type: ignore[arg-type]
            case ("repeat",):
                if previous is None:
                    continue
                event = previous
            case ("hold_due",):
                event = HoldDue()
            case _:
                raise AssertionError(f"bad spec {spec!r}")
        ringing_first = hold_owed
        feed(event)
        if ringing_first:
            hold_owed = False
            feed(HoldDue())
        previous = event
    if hold_owed:
        feed(HoldDue())
    return trace


def menu_open(trace: Trace) -> list[bool]:
    """For each step: whether, after it, the call waits in the queue while its menu goes on
    (queued at the deadline before the caller chose, until a choice, the menu's timeout or an
    operator's answer)."""
    open_now, out = False, []
    for s in trace.steps:
        opened = (
            isinstance(s.event, TimerFired)
            and s.event.timer is Timer.IVR_DEADLINE
            and (s.before, s.after) == (S.IVR, S.QUEUED)
        )
        classified = any(isinstance(c, Fact) and c.kind == "call_classified" for c in s.commands)
        if opened:
            open_now = True
        elif classified or s.after not in WAITING:
            open_now = False
        out.append(open_now)
    return out


def fail(trace: Trace, why: str) -> str:
    return f"{why}\n{trace.story()}"


def caller_hung_up(event: CallEvent) -> bool:
    return isinstance(event, HungUp) and event.party is Party.CALLER


# ---- properties ---------------------------------------------------------------------------


def check_forward(trace: Trace, allowed: set[tuple[CallState, CallState]]) -> None:
    """Forward along the graph only; final after the caller hangs up and for ever after;
    offered while some operator rings, queued again when the last one stops ringing."""
    hung_up = False
    ringing: set[str] = set()
    for s in trace.steps:
        if s.before in WAITING and isinstance(s.event, OperatorRinging):
            ringing.add(s.event.operator_id)
            assert s.after is S.OFFERED, fail(trace, "rings but not offered")
        if isinstance(s.event, OfferWithdrawn) and s.event.operator_id in ringing:
            ringing.discard(s.event.operator_id)
            if s.before is S.OFFERED:
                expected = S.OFFERED if ringing else S.QUEUED
                assert s.after is expected, fail(trace, f"withdrawn: {expected} expected")
        if isinstance(s.event, OfferWithdrawn | OperatorRinging) and s.before not in WAITING:
            assert s.commands == [] and s.after is s.before, fail(trace, "offer out of place")
        if s.after is not S.OFFERED:
            ringing.clear()
        if s.before.final:
            assert s.commands == [] and s.after is s.before, fail(trace, "a final state moved")
        if s.after is not s.before:
            assert (s.before, s.after) in allowed, fail(trace, f"{s.before} -> {s.after}")
            assert s.after in allowed_next(s.before, type(s.event)), fail(trace, "not in table")
        hung_up = hung_up or caller_hung_up(s.event)
        if hung_up:
            assert s.after.final, fail(trace, "the caller hung up but the call is not final")


def check_playback(trace: Trace) -> None:
    """At most one Play at a time, stopped before the next; music only when nothing plays; a
    waiting caller always hears something (but while its operator is rung first, between
    DeferHold and HoldDue); a connected caller hears neither."""
    active: set[str] = set()
    ever: set[str] = set()
    moh = False
    hold_due = False
    for s, menu in zip(trace.steps, menu_open(trace), strict=True):
        hold_due = (hold_due or DeferHold() in s.commands) and not isinstance(s.event, HoldDue)
        if isinstance(s.event, PromptFinished):
            active.discard(s.event.playback_id)  # Asterisk says it ended (or it never was)
        for c in s.commands:
            if isinstance(c, StopPlayback):
                assert c.playback_id in active, fail(trace, f"stops {c.playback_id}: not playing")
                active.discard(c.playback_id)
            elif isinstance(c, Play):
                assert not active, fail(trace, f"{c} while {active} still plays")
                assert not moh, fail(trace, f"{c} over music on hold")
                assert c.playback_id not in ever, fail(trace, f"{c}: id used twice")
                active.add(c.playback_id)
                ever.add(c.playback_id)
            elif isinstance(c, StartMoh):
                assert not moh and not active, fail(trace, "music on hold over a prompt")
                moh = True
            elif isinstance(c, StopMoh):
                assert moh, fail(trace, "StopMoh without music")
                moh = False
        if s.after in WAITING and not menu:  # the menu's own pause waits for a digit
            assert active or moh or hold_due, fail(trace, "a waiting caller hears nothing")
        if s.after is S.CONNECTED:
            assert not active and not moh, fail(trace, "prompt or music in a conversation")


def check_queue_commands(trace: Trace) -> None:
    commands = trace.commands()
    enqueues = [i for i, s in enumerate(trace.steps) for c in s.commands if isinstance(c, Enqueue)]
    assert len(enqueues) <= 1, fail(trace, "enqueued twice")
    # The queued call's own requests come once, after the step that queued it (the operator is
    # rung first), and its place is kept before a prompt starts: a variable set on a channel
    # playing a prompt waits for the prompt's end.
    talk_off = [i for i, s in enumerate(trace.steps) if StopTalkDetect() in s.commands]
    assert len(talk_off) <= 1, fail(trace, "talk detection stopped twice")
    assert all(enqueues and i > enqueues[0] for i in talk_off), fail(trace, "before Enqueue")
    waiting_at_hold = [
        i for i, s in enumerate(trace.steps) if isinstance(s.event, HoldDue) and s.before in WAITING
    ]
    menu = menu_open(trace)
    # Queued at the deadline, the menu (and its talk detection) go on until it is done.
    menu_ends = [i for i in range(1, len(menu)) if menu[i - 1] and not menu[i]]
    if enqueues and menu[enqueues[0]]:
        assert set(talk_off) <= set(menu_ends), fail(trace, "talk detection off, menu open")
    elif enqueues and waiting_at_hold and waiting_at_hold[0] > enqueues[0]:
        assert talk_off == waiting_at_hold[:1], fail(trace, "HoldDue in a waiting call")
    for s in trace.steps:
        kinds = [type(c) for c in s.commands if isinstance(c, SaveQueueState | Play)]
        assert kinds in ([], [SaveQueueState], [Play], [SaveQueueState, Play]), fail(
            trace, "a place kept after a prompt started"
        )
    queued_at = [
        i
        for i, s in enumerate(trace.steps)
        if (s.before, s.after) in ((S.IVR, S.QUEUED), (S.ARRIVED, S.QUEUED))
    ]
    assert enqueues == queued_at, fail(trace, "Enqueue is not the step into QUEUED")
    for i, s in enumerate(trace.steps):
        if any(isinstance(c, Enqueue) for c in s.commands):
            kinds = [c.kind for c in s.commands if isinstance(c, Fact)]
            assert kinds[-1:] == ["call_classified"], fail(trace, "records")
            assert i == enqueues[0]
            then = trace.steps[i + 1]
            assert isinstance(then.event, Queued), fail(trace, "no Queued after Enqueue")
            enqueue = next(c for c in s.commands if isinstance(c, Enqueue))
            queued = Facts.call_queued(category=enqueue.category, position=2)
            assert then.commands == [queued], fail(trace, "call_queued")
    assert len(trace.records("call_queued")) == len(enqueues), fail(trace, "call_queued")
    priorities = [c for c in commands if isinstance(c, ChangePriority)]
    assert priorities in ([], [ChangePriority(0)]), fail(trace, "ChangePriority not once to 0")
    if priorities:
        (step,) = [s for s in trace.steps if priorities[0] in s.commands]
        assert step.before in WAITING and isinstance(step.event, DigitPressed)
        assert step.event.digit == "5"
        assert len(trace.records("flag_set")) == 1
        assert not any(isinstance(c, Enqueue) and "cannot_speak" in c.flags for c in commands), (
            fail(trace, "cannot_speak raised twice")
        )
    cut_early = any(
        s.after is S.ENDED and s.before in (S.IVR, S.QUEUED, S.OFFERED) for s in trace.steps
    )
    assert commands.count(LeaveQueue()) == int(trace.reached(S.ABANDONED) or cut_early)
    finishes = [c for c in commands if isinstance(c, FinishCall)]
    assert len(finishes) == int(trace.reached(S.CONNECTED) and trace.reached(S.ENDED))


def check_records(trace: Trace) -> None:
    records = trace.records()
    arrived = trace.records("call_arrived")
    started = any(isinstance(s.event, Started) and s.before is S.ARRIVED for s in trace.steps)
    if trace.reached(S.IVR) or (started and trace.reached(S.QUEUED)):
        assert records[0].kind == "call_arrived", fail(trace, "call_arrived is not first")
        assert len(arrived) == 1, fail(trace, "call_arrived not exactly once")
    else:
        assert arrived == [], fail(trace, "call_arrived without arriving")
    connected = trace.records("call_connected")
    assert len(connected) == int(trace.reached(S.CONNECTED)), fail(trace, "call_connected")
    for s in trace.steps:
        if s.after is S.CONNECTED and s.before is not S.CONNECTED:
            event = s.event
            assert isinstance(event, OperatorConnected)
            bridge = BridgeOperator(event.operator_id, event.channel_id)
            assert s.commands.count(bridge) == 1, fail(trace, "operator not bridged")
            assert connected[0].operator_id == event.operator_id
    ended = trace.records("call_ended")
    assert len(ended) == int(trace.reached(S.ENDED)), fail(trace, "call_ended")
    if ended and connected:
        assert ended[0].operator_id == connected[0].operator_id
        assert FinishCall(connected[0].operator_id or "") in trace.commands()
    elif ended:  # cut by the system before an operator came
        assert ended[0].data["hangup_by"] == "system" and ended[0].operator_id is None
    abandoned = trace.records("call_abandoned")
    assert len(abandoned) == int(trace.reached(S.ABANDONED)), fail(trace, "call_abandoned")
    final = trace.reached(S.ENDED) or trace.reached(S.ABANDONED)
    # The bridge is destroyed once at the end, if it was ever made (a caller gone before the
    # app saw the call start had none).
    made = CreateBridge() in trace.commands()
    assert trace.commands().count(DestroyBridge()) == int(final and made), fail(
        trace, "DestroyBridge"
    )


def check_caller_never_hung_up(trace: Trace) -> None:
    for s in trace.steps:
        if Disconnect() in s.commands:
            by_operator = (
                isinstance(s.event, HungUp)
                and s.event.party is Party.OPERATOR
                and s.before is S.CONNECTED
            )
            assert by_operator, fail(trace, f"HangUp(CALLER) on {s.event!r} in {s.before}")


def check_ivr_timer(trace: Trace) -> None:
    """The IVR timeout starts only when the playing prompt ends, a digit cancels it, and a
    caller goes to no_input only through the timer armed last (and always through it)."""
    playing: str | None = None
    armed: int | None = None
    generations: list[int] = []
    menu_before = False  # queued at the deadline, its menu still open
    for s, menu_after in zip(trace.steps, menu_open(trace), strict=True):
        in_menu = s.before is S.IVR or menu_before
        menu_before = menu_after
        starts = [
            c for c in s.commands if isinstance(c, StartTimer) and c.timer is Timer.IVR_TIMEOUT
        ]
        no_input = any(
            isinstance(c, Fact) and c.kind == "ivr_step" and c.data["input"] == "no_input"
            for c in s.commands
        )
        if starts:
            assert len(starts) == 1 and in_menu, fail(trace, "StartTimer")
            assert isinstance(s.event, PromptFinished) and s.event.playback_id == playing, fail(
                trace, "the timer started while a prompt still plays"
            )
            assert starts[0].timer is Timer.IVR_TIMEOUT
            assert math.isclose(starts[0].seconds, CONFIG.ivr.timeout_seconds)
            assert all(g < starts[0].generation for g in generations), fail(trace, "generation")
            generations.append(starts[0].generation)
        if in_menu and isinstance(s.event, TimerFired) and s.event.timer is Timer.IVR_TIMEOUT:
            fires = armed is not None and s.event.generation == armed
            assert no_input == fires, fail(
                trace, f"timer {s.event.generation} (armed: {armed}) -> no_input {no_input}"
            )
        else:
            assert not no_input, fail(trace, "no_input without the timer")
        # update the model from this step
        if isinstance(s.event, PromptFinished) and s.event.playback_id == playing:
            playing = None
        for c in s.commands:
            if isinstance(c, StopPlayback) and c.playback_id == playing:
                playing = None
            elif isinstance(c, Play):
                playing = c.playback_id
        if in_menu and isinstance(s.event, DigitPressed):
            armed = None  # a digit cancels the running timeout
        if not menu_after and s.after is not S.IVR:
            armed = None  # the menu is over (chosen, answered, gone): its timers with it
        if no_input:
            armed = None
        if starts:
            armed = starts[0].generation


# ---- the tests ----------------------------------------------------------------------------


@FUZZ
@given(script=scripts)
def test_fuzz_state_only_moves_forward(script: list[Spec]) -> None:
    check_forward(run(script), FORWARD)


@FUZZ
@given(script=scripts)
def test_fuzz_one_prompt_at_a_time(script: list[Spec]) -> None:
    check_playback(run(script))


@FUZZ
@given(script=scripts)
def test_fuzz_enqueue_once_and_queue_commands(script: list[Spec]) -> None:
    check_queue_commands(run(script))


@FUZZ
@given(script=scripts)
def test_fuzz_records(script: list[Spec]) -> None:
    check_records(run(script))


@FUZZ
@given(script=scripts)
def test_fuzz_never_hangs_up_on_the_caller(script: list[Spec]) -> None:
    check_caller_never_hung_up(run(script))


@FUZZ
@given(script=scripts)
def test_fuzz_ivr_timeout_only_from_the_armed_timer(script: list[Spec]) -> None:
    check_ivr_timer(run(script))


@FUZZ
@given(script=anywhere_scripts)
def test_fuzz_started_missing_or_late(script: list[Spec]) -> None:
    """Started may be missing, late or repeated: still no exception, forward only, final after
    the caller hangs up, call_arrived first (and once) whenever the call arrived."""
    trace = run(script)
    check_forward(trace, FORWARD | BEFORE_STARTED)
    check_playback(trace)
    check_records(trace)
    for s in trace.steps:
        if s.before is S.ARRIVED and not isinstance(s.event, Started | HungUp):
            assert s.commands == [] and s.after is S.ARRIVED, fail(trace, "acted before Started")


def test_the_fuzzer_reaches_every_state() -> None:
    """The scripts are not too random to matter: a fixed sample reaches every state."""
    seen: set[CallState] = set()
    collected: list[list[Spec]] = []

    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(script=scripts)
    def collect(script: list[Spec]) -> None:
        collected.append(script)

    collect()
    for script in collected:
        seen |= {s.after for s in run(script).steps}
    assert seen == set(CallState) - {S.ARRIVED}
