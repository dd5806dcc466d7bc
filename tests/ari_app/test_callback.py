"""A callback: its pure rules (ari_app/call/callback.py) and its IO shell (ari_app/callback.py).

The machine is fed events and its exact commands compared; the shell runs against the
in-process fake ARI (real HTTP, real REST client) with a fake app around it, and the requests
it sends, the records it writes and the operator's pause are checked.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import ari_samples
import pytest
from ari_fake_server import PASSWORD, USERNAME, FakeAri, Recorded
from hypothesis import given
from hypothesis import strategies as st

from ari_app.ari.config import AriConfig
from ari_app.ari.events import AriEvent, ResourceKind, StasisStart, parse_event
from ari_app.ari.rest import AriRest
from ari_app.call.callback import (
    TRANSITIONS,
    AddToBridge,
    Answered,
    Begin,
    Broken,
    CallbackEvent,
    CallbackMachine,
    CallbackState,
    Command,
    CreateBridge,
    DestroyBridge,
    DialCaller,
    Ended,
    Finished,
    HangUp,
    Leg,
    Outcome,
    PauseOperator,
    ReadyOperator,
    RecordStatus,
    RingOperator,
    Unreachable,
    UpdateRecord,
    trigger,
)
from ari_app.callback import CallbackActor, CallbackIds, callback_event
from ari_app.router import Router
from db.events import Fact
from siaga.config import Config, OperatorConfig, load_config

OP, CALLER = Leg.OPERATOR, Leg.CALLER
S = CallbackState
CALL = "c1"
OPERATOR = "1001"


def done(outcome: Outcome, *hang_up: Leg, bridge: bool = True) -> list[Command]:
    """What ending a callback gives: hang up who is left, clear the bridge, record, free."""
    return [
        *(HangUp(leg) for leg in hang_up),
        *([DestroyBridge()] if bridge else []),
        UpdateRecord(RecordStatus.DONE, outcome=outcome),
        ReadyOperator(),
        Finished(),
    ]


def machine_at(state: CallbackState) -> CallbackMachine:
    m = CallbackMachine(CALL, OPERATOR)
    path: dict[CallbackState, list[CallbackEvent]] = {
        S.NEW: [],
        S.RINGING_OPERATOR: [Begin()],
        S.DIALLING_CALLER: [Begin(), Answered(OP)],
        S.CONNECTED: [Begin(), Answered(OP), Answered(CALLER)],
        S.DONE: [Begin(), Ended(OP)],
    }
    for event in path[state]:
        m.handle(event)
    assert m.state is state
    return m


# -- the machine: each path ---------------------------------------------------------------


def test_begin_claims_the_callback_pauses_the_operator_and_rings_them() -> None:
    m = CallbackMachine(CALL, OPERATOR)

    assert m.handle(Begin()) == [
        UpdateRecord(RecordStatus.CLAIMED, owner=OPERATOR),
        PauseOperator("callback"),
        RingOperator(),
    ]
    assert m.state is S.RINGING_OPERATOR


def test_the_operator_answering_bridges_them_and_dials_the_caller() -> None:
    m = machine_at(S.RINGING_OPERATOR)

    assert m.handle(Answered(OP)) == [CreateBridge(), AddToBridge(OP), DialCaller()]
    assert m.state is S.DIALLING_CALLER


def test_the_caller_answering_joins_the_operator() -> None:
    m = machine_at(S.DIALLING_CALLER)

    assert m.handle(Answered(CALLER)) == [AddToBridge(CALLER)]
    assert m.state is S.CONNECTED
    assert m.outcome is Outcome.ANSWERED


@pytest.mark.parametrize(("gone", "left"), [(CALLER, OP), (OP, CALLER)])
def test_either_side_hanging_up_after_talking_ends_it_answered(gone: Leg, left: Leg) -> None:
    m = machine_at(S.CONNECTED)

    assert m.handle(Ended(gone)) == done(Outcome.ANSWERED, left)
    assert m.done


@pytest.mark.parametrize(
    ("event", "outcome"),
    [
        (Ended(OP), Outcome.OPERATOR_NO_ANSWER),
        (Unreachable(OP, "Allocation failed"), Outcome.OPERATOR_UNREACHABLE),
        (Broken("boom"), Outcome.FAILED),
    ],
    ids=["no_answer", "unreachable", "broken"],
)
def test_an_operator_who_does_not_pick_up_ends_it_before_the_caller_is_dialled(
    event: CallbackEvent, outcome: Outcome
) -> None:
    m = machine_at(S.RINGING_OPERATOR)
    hang_up = [OP] if isinstance(event, Broken) else []  # still ringing: stop it

    assert m.handle(event) == done(outcome, *hang_up, bridge=False)
    assert m.done


@pytest.mark.parametrize(
    ("event", "outcome", "hang_up"),
    [
        (Ended(CALLER), Outcome.NO_ANSWER, [OP]),
        (Unreachable(CALLER, "trunk down"), Outcome.CALLER_UNREACHABLE, [OP]),
        (Ended(OP), Outcome.OPERATOR_LEFT, [CALLER]),
        (Broken("bridge refused"), Outcome.FAILED, [OP, CALLER]),
    ],
    ids=["caller_no_answer", "caller_unreachable", "operator_hung_up", "broken"],
)
def test_while_the_caller_is_dialled_either_side_failing_ends_it(
    event: CallbackEvent, outcome: Outcome, hang_up: list[Leg]
) -> None:
    m = machine_at(S.DIALLING_CALLER)

    assert m.handle(event) == done(outcome, *hang_up)
    assert m.done


def test_a_failure_after_the_caller_answered_keeps_the_answered_outcome() -> None:
    m = machine_at(S.CONNECTED)

    assert m.handle(Broken("oops")) == done(Outcome.ANSWERED, OP, CALLER)


# -- the machine: late, early and duplicate events ----------------------------------------

EVERY_EVENT: list[CallbackEvent] = [
    Begin(),
    Broken("x"),
    *(kind(leg) for kind in (Answered, Ended, Unreachable) for leg in Leg),
]


@pytest.mark.parametrize("event", EVERY_EVENT, ids=repr)
def test_nothing_moves_a_finished_callback(event: CallbackEvent) -> None:
    m = machine_at(S.DONE)

    assert m.handle(event) == []
    assert m.state is S.DONE


@pytest.mark.parametrize("state", list(CallbackState))
@pytest.mark.parametrize("event", EVERY_EVENT, ids=repr)
def test_an_event_the_table_does_not_name_changes_nothing(
    state: CallbackState, event: CallbackEvent
) -> None:
    m = machine_at(state)
    if trigger(state, event) in TRANSITIONS:
        return  # covered by the path tests above
    before = dataclasses.replace(m, live=set(m.live))

    assert m.handle(event) == []
    assert (m.state, m.outcome, m.bridged) == (before.state, before.outcome, before.bridged)


def test_a_second_answer_of_the_operator_dials_the_caller_once() -> None:
    m = machine_at(S.DIALLING_CALLER)

    assert m.handle(Answered(OP)) == []


def test_a_leg_that_hung_up_is_not_hung_up_again() -> None:
    m = machine_at(S.CONNECTED)
    m.handle(Ended(CALLER))  # ChannelHangupRequest: done, the operator is hung up
    assert m.handle(Ended(CALLER)) == []  # then its ChannelDestroyed

    m = machine_at(S.DIALLING_CALLER)
    m.handle(Ended(OP))
    assert m.live == set()


def test_a_callback_not_begun_ignores_everything_but_begin() -> None:
    m = CallbackMachine(CALL, OPERATOR)

    assert m.handle(Answered(OP)) == []
    assert m.handle(Broken("x")) == []
    assert m.state is S.NEW


# -- the machine: whatever happens --------------------------------------------------------


@given(st.lists(st.sampled_from(EVERY_EVENT), max_size=12))
def test_whatever_happens_the_operator_is_freed_once_and_only_dialled_legs_hung_up(
    events: list[CallbackEvent],
) -> None:
    m = CallbackMachine(CALL, OPERATOR)
    commands = [c for e in [Begin(), *events, Broken("end of story")] for c in m.handle(e)]

    assert m.done
    assert commands.count(PauseOperator()) == 1
    assert commands.count(ReadyOperator()) == 1
    assert commands[-1] == Finished() and commands.count(Finished()) == 1
    assert commands.index(PauseOperator()) < commands.index(ReadyOperator())
    records = [c for c in commands if isinstance(c, UpdateRecord)]
    assert [r.status for r in records] == [RecordStatus.CLAIMED, RecordStatus.DONE]
    assert records[-1].outcome is not None
    dialled = {RingOperator(): OP, DialCaller(): CALLER}
    asked = {dialled[c] for c in commands if c in dialled}
    hung_up = [c.leg for c in commands if isinstance(c, HangUp)]
    assert set(hung_up) <= asked and len(hung_up) == len(set(hung_up))
    assert (DestroyBridge() in commands) == (CreateBridge() in commands)


# -- the shell: ARI events in -------------------------------------------------------------

IDS = CallbackIds.of(CALL)


def on_channel(kind: str, channel_id: str, ms: int = 0, **fields: Any) -> AriEvent:
    return parse_event(ari_samples.channel_message(kind, channel_id, ms, **fields))


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (on_channel("StasisStart", IDS.operator_channel), Answered(OP)),
        (on_channel("StasisStart", IDS.caller_channel), Answered(CALLER)),
        (on_channel("ChannelHangupRequest", IDS.caller_channel, cause=16), Ended(CALLER)),
        (on_channel("StasisEnd", IDS.operator_channel), Ended(OP)),
        (on_channel("ChannelDestroyed", IDS.caller_channel, cause=17), Ended(CALLER)),
        (on_channel("StasisStart", "someone-else"), None),
        (on_channel("ChannelDtmfReceived", IDS.operator_channel, digit="1"), None),
        ("not an ARI event", None),
    ],
)
def test_ari_events_of_the_two_channels_become_machine_events(
    event: object, expected: CallbackEvent | None
) -> None:
    assert callback_event(IDS, event) == expected


def test_ids_name_the_legs() -> None:
    assert (IDS.operator_channel, IDS.caller_channel, IDS.bridge) == (
        "cb-c1-op",
        "cb-c1-caller",
        "cb-c1-bridge",
    )
    assert IDS.leg(IDS.caller_channel) is CALLER and IDS.leg(IDS.operator_channel) is OP
    assert IDS.leg("c1") is None  # the abandoned call's own channel is not the callback's


# -- the shell: against the fake ARI ------------------------------------------------------

CONFIG: Config = load_config(Path(__file__).resolve().parents[2] / "siaga.toml")
TRUNK = "PJSIP/trunk/sip:{number}@127.0.0.1:5099"
NUMBER = "0812555444"


class FakeApp:
    """The app around a callback: the names SiagaApp gives it (ari_app.callback.CallbackHost)."""

    def __init__(self, rest: AriRest, config: Config) -> None:
        self.rest = rest
        self.config = config
        self.operators: dict[str, OperatorConfig] = {op.id: op for op in config.operators}
        self.new_channels: list[StasisStart] = []
        self.router = Router(self._new_channel)
        self.callbacks: dict[str, CallbackActor] = {}
        self.records: list[tuple[str, str | None, str | None, dict[str, Any]]] = []
        self.operator_log: list[tuple[str, ...]] = []

    async def _new_channel(self, event: StasisStart) -> None:
        self.new_channels.append(event)

    def rest_of_any_node(self) -> AriRest:
        return self.rest

    def record(self, fact: Fact, *, call_id: str | None) -> None:
        self.records.append((fact.kind.value, call_id, fact.operator_id, dict(fact.data)))

    def operator_pause(self, operator_id: str, reason: str) -> None:
        self.operator_log.append(("pause", operator_id, reason))

    def operator_ready(self, operator_id: str) -> None:
        self.operator_log.append(("ready", operator_id))

    def start_callback(self) -> CallbackActor:
        actor = CallbackActor(self, CALL, NUMBER, OPERATOR)
        self.callbacks[CALL] = actor
        actor.start()
        return actor


@pytest.fixture
def host(fake: FakeAri, session: aiohttp.ClientSession) -> FakeApp:
    ari = AriConfig(username=USERNAME, password=PASSWORD, url=fake.url, request_timeout=2.0)
    asterisk = dataclasses.replace(CONFIG.asterisk, callback_dial=TRUNK)
    return FakeApp(
        AriRest.from_session(session, ari), dataclasses.replace(CONFIG, asterisk=asterisk)
    )


async def until(condition: Callable[[], object], what: str, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def sent(fake: FakeAri) -> list[tuple[str, str]]:
    return [(r.method, r.path.removeprefix("/ari")) for r in fake.requests]


def originates(fake: FakeAri) -> list[Recorded]:
    return fake.sent("POST", "/channels")


async def finished(actor: CallbackActor) -> None:
    assert actor.task is not None
    await asyncio.wait_for(actor.task, 3)


def callback_records(host: FakeApp) -> list[dict[str, Any]]:
    assert all(kind == "callback_updated" and call == CALL for kind, call, _, _ in host.records)
    assert all(operator == OPERATOR for _, _, operator, _ in host.records)
    return [data for _, _, _, data in host.records]


def channel_reply(fake: FakeAri, channel_id: str) -> None:
    fake.reply("POST", "/channels", 200, ari_samples.channel(channel_id, state="Down"))


async def test_operator_then_caller_then_both_in_one_bridge_until_the_caller_hangs_up(
    fake: FakeAri, host: FakeApp
) -> None:
    channel_reply(fake, IDS.operator_channel)
    channel_reply(fake, IDS.caller_channel)
    fake.reply("POST", "/bridges", 200, ari_samples.bridge(IDS.bridge, []))

    actor = host.start_callback()
    await until(lambda: originates(fake), "the operator's phone to ring")
    [ring] = originates(fake)
    assert dict(ring.query) == {
        "endpoint": "PJSIP/1001",
        "channelId": "cb-c1-op",
        "app": "siaga",
        "appArgs": "callback,c1",
        "callerId": f'"CALLBACK {NUMBER}" <{NUMBER}>',
        "timeout": str(int(CONFIG.acd.ring_timeout_seconds)),
    }
    assert host.operator_log == [("pause", OPERATOR, "callback")]
    assert callback_records(host) == [{"status": "claimed", "owner": OPERATOR}]

    await host.router.dispatch(on_channel("StasisStart", IDS.operator_channel, args=["callback"]))
    await until(lambda: len(originates(fake)) == 2, "the caller to be dialled")
    dial = originates(fake)[1]
    assert dial.param("endpoint") == f"PJSIP/trunk/sip:{NUMBER}@127.0.0.1:5099"
    assert dial.param("channelId") == "cb-c1-caller"
    assert dial.param("callerId") == '"112" <112>'
    assert sent(fake)[1:3] == [
        ("POST", "/bridges"),
        ("POST", "/bridges/cb-c1-bridge/addChannel"),
    ]
    assert fake.sent("POST", "/bridges/cb-c1-bridge/addChannel")[0].param("channel") == "cb-c1-op"

    await host.router.dispatch(on_channel("StasisStart", IDS.caller_channel, 1, args=["callback"]))
    await until(lambda: len(fake.sent("POST", "/bridges/cb-c1-bridge/addChannel")) == 2, "join")
    assert fake.sent("POST", "/bridges/cb-c1-bridge/addChannel")[1].param("channel") == (
        "cb-c1-caller"
    )

    await host.router.dispatch(on_channel("ChannelHangupRequest", IDS.caller_channel, 2, cause=16))
    await finished(actor)

    assert sent(fake)[-2:] == [
        ("DELETE", "/channels/cb-c1-op"),
        ("DELETE", "/bridges/cb-c1-bridge"),
    ]
    assert callback_records(host)[-1] == {"status": "done", "outcome": "answered"}
    assert host.operator_log[-1] == ("ready", OPERATOR)
    assert host.callbacks == {}
    assert all(host.router.owner(ResourceKind.CHANNEL, IDS.channel(leg)) is None for leg in Leg)


async def test_an_operator_phone_that_cannot_ring_frees_the_operator_at_once(
    fake: FakeAri, host: FakeApp
) -> None:
    fake.reply("POST", "/channels", 500, {"error": "Allocation failed"})

    actor = host.start_callback()
    await finished(actor)

    assert sent(fake) == [("POST", "/channels")]  # nothing to hang up, no bridge
    assert callback_records(host)[-1] == {"status": "done", "outcome": "operator_unreachable"}
    assert host.operator_log == [("pause", OPERATOR, "callback"), ("ready", OPERATOR)]
    assert host.callbacks == {}


async def test_an_operator_who_does_not_answer_ends_it(fake: FakeAri, host: FakeApp) -> None:
    channel_reply(fake, IDS.operator_channel)

    actor = host.start_callback()
    await until(lambda: originates(fake), "the operator's phone to ring")
    await host.router.dispatch(on_channel("ChannelDestroyed", IDS.operator_channel, cause=19))
    await finished(actor)

    assert sent(fake) == [("POST", "/channels")]
    assert callback_records(host)[-1] == {"status": "done", "outcome": "operator_no_answer"}
    assert host.operator_log[-1] == ("ready", OPERATOR)


async def answered_by_the_operator(
    fake: FakeAri, host: FakeApp, *, trunk_status: int = 200
) -> CallbackActor:
    channel_reply(fake, IDS.operator_channel)
    if trunk_status == 200:
        channel_reply(fake, IDS.caller_channel)
    else:
        fake.reply("POST", "/channels", trunk_status, {"message": "trunk down"})
    fake.reply("POST", "/bridges", 200, ari_samples.bridge(IDS.bridge, []))
    actor = host.start_callback()
    await until(lambda: originates(fake), "the operator's phone to ring")
    await host.router.dispatch(on_channel("StasisStart", IDS.operator_channel))
    return actor


async def test_a_trunk_that_refuses_the_caller_hangs_up_the_operator(
    fake: FakeAri, host: FakeApp
) -> None:
    actor = await answered_by_the_operator(fake, host, trunk_status=503)

    await finished(actor)

    assert sent(fake)[-2:] == [
        ("DELETE", "/channels/cb-c1-op"),
        ("DELETE", "/bridges/cb-c1-bridge"),
    ]
    assert callback_records(host)[-1] == {"status": "done", "outcome": "caller_unreachable"}
    assert host.operator_log[-1] == ("ready", OPERATOR)


async def test_a_caller_who_does_not_answer_ends_it(fake: FakeAri, host: FakeApp) -> None:
    actor = await answered_by_the_operator(fake, host)
    await until(lambda: len(originates(fake)) == 2, "the caller to be dialled")

    await host.router.dispatch(on_channel("ChannelDestroyed", IDS.caller_channel, 1, cause=19))
    await finished(actor)

    assert callback_records(host)[-1] == {"status": "done", "outcome": "no_answer"}
    assert ("DELETE", "/channels/cb-c1-op") in sent(fake)


async def test_a_bridge_that_cannot_be_made_ends_it_and_frees_the_operator(
    fake: FakeAri, host: FakeApp
) -> None:
    channel_reply(fake, IDS.operator_channel)
    fake.reply("POST", "/bridges", 500, {"message": "Internal Server Error"})
    actor = host.start_callback()
    await until(lambda: originates(fake), "the operator's phone to ring")

    await host.router.dispatch(on_channel("StasisStart", IDS.operator_channel))
    await finished(actor)

    assert len(originates(fake)) == 1  # the caller is not dialled into a callback that failed
    assert ("DELETE", "/channels/cb-c1-op") in sent(fake)
    assert callback_records(host)[-1] == {"status": "done", "outcome": "failed"}
    assert host.operator_log[-1] == ("ready", OPERATOR)


async def test_a_bug_in_the_shell_still_frees_the_operator(fake: FakeAri, host: FakeApp) -> None:
    asterisk = dataclasses.replace(host.config.asterisk, callback_dial="PJSIP/{no_such_field}")
    host.config = dataclasses.replace(host.config, asterisk=asterisk)
    actor = await answered_by_the_operator(fake, host)

    await finished(actor)

    assert ("DELETE", "/channels/cb-c1-op") in sent(fake)
    assert callback_records(host)[-1] == {"status": "done", "outcome": "failed"}
    assert host.operator_log[-1] == ("ready", OPERATOR)
    assert host.callbacks == {}


async def test_events_after_the_end_are_no_longer_the_callbacks(
    fake: FakeAri, host: FakeApp
) -> None:
    fake.reply("POST", "/channels", 500, {"error": "Allocation failed"})
    actor = host.start_callback()
    await finished(actor)

    late = on_channel("StasisStart", IDS.operator_channel, 9, args=["callback", CALL])
    await host.router.dispatch(late)

    assert host.new_channels == [late]  # the app hangs up a leg it does not know
    assert actor.inbox.queue.empty()
