"""What a caller and an operator live through, on the real stack: the IVR, queueing by category
and priority, ringing operators' phones, the bridge, hang-ups and the records of each."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from integration.conftest import WINDOW, recording_of

from ari_app.call import CallState
from queues.decisions import Offer
from queues.states import OperatorState
from siaga.config import OperatorConfig
from testbed.sandbox import simulated_operator, simulated_operators
from testbed.sipp import Sipp, SippPhone, answer_scenario, caller_scenario

pytestmark = pytest.mark.integration


def simulated(name: str, dial: str) -> OperatorConfig:
    return simulated_operator(name, dial)


def simulated_team(count: int, dial: str) -> tuple[OperatorConfig, ...]:
    return simulated_operators(count, dial)


def number() -> str:
    return f"08{uuid.uuid4().int % 10**10:010d}"


async def state_of(app, call_id, state, wait, timeout=20.0):
    async def reached():
        actor = app.calls.get(call_id)
        return actor is not None and actor.machine.state is state

    await wait(reached, timeout=timeout, what=f"{call_id} to be {state.value}")


async def test_sip_caller_presses_1_and_reaches_operator_1001(
    start_app, stack_config, ari, records, wait
):
    operator = stack_config.operators[0]  # 1001, medical as primary skill
    phone = SippPhone(operator.sip_user, operator.sip_password, stack_config.asterisk.sip_port)
    await phone.start()
    app = await start_app()

    async def registered():
        return app.acd_core.snapshot().operators[0].registered

    await wait(registered, what="1001's registration to reach the ACD")
    caller_number = number()
    caller = Sipp(
        caller_scenario(caller_id=caller_number, digits="1", delay_ms=1000, hold_ms=6000),
        stack_config.asterisk.sip_port,
    )
    await caller.start()
    try:

        async def connected():
            return [
                a
                for a in app.calls.values()
                if a.machine.state is CallState.CONNECTED and a.machine.operator_id == "1001"
            ]

        actor = (await wait(connected, what="the caller to be connected to 1001"))[0]
        bridge = await ari.get_bridge(actor.bridge_id)
        assert len(bridge.channels) == 2, "the bridge holds caller and operator"
        assert actor.call_id in bridge.channels
        await caller.wait(timeout=30)
    finally:
        await caller.stop()
        await phone.unregister()
        await phone.stop()

    row = await records.final(actor.call_id)
    assert row["caller_number"] == caller_number
    assert row["category"] == "medical"
    assert row["operator_id"] == "1001"
    assert row["outcome"] == "answered"
    assert row["hangup_by"] == "caller"
    stamps = [
        row[c]
        for c in (
            "arrived_at",
            "classified_at",
            "queued_at",
            "offered_at",
            "connected_at",
            "ended_at",
        )
    ]
    assert all(stamps) and stamps == sorted(stamps), stamps
    # The operator's phone showed what comes before answering.
    assert f'"MEDICAL {caller_number}"' in phone.uas.messages()


async def test_priority_fire_before_earlier_non_emergency(start_app, callers, records, wait):
    ops = simulated_team(1, "Local/talk-5@siaga-test")
    app = await start_app(operators=ops)
    first = await callers.call(number=number(), digits="1", delay=0.5, hold=40)  # medical
    await state_of(app, first, CallState.CONNECTED, wait)
    information = await callers.call(number=number(), digits="51", delay=0.5, hold=40)
    await state_of(app, information, CallState.QUEUED, wait)
    fire = await callers.call(number=number(), digits="2", delay=0.5, hold=40)
    await state_of(app, fire, CallState.QUEUED, wait)
    # The operator ends the first call after 5 s: the later fire call goes first.
    await state_of(app, fire, CallState.CONNECTED, wait, timeout=20)
    assert app.calls[information].machine.state is CallState.QUEUED
    await state_of(app, information, CallState.CONNECTED, wait, timeout=20)
    fire_row = await records.call(fire)
    info_row = await records.call(information)
    assert fire_row["category"] == "fire" and info_row["category"] == "information"
    assert info_row["arrived_at"] < fire_row["arrived_at"]
    assert fire_row["connected_at"] < info_row["connected_at"]


async def test_an_idle_operator_is_rung_before_the_callers_channel_is_touched_again(
    start_app, callers, records, wait, monkeypatch
):
    # The caller's own requests (its place kept on the channel, talk detection off, the hold
    # prompt) go one at a time through its channel; on a loaded Asterisk each takes far longer
    # than the originate. The operator's phone must not wait behind them.
    app = await start_app(operators=simulated_team(1, "Local/talk-2@siaga-test"))
    sent: list[str] = []
    rest = app.rest
    originate, set_variable, play = rest.originate, rest.set_variable, rest.play

    async def originate_spy(endpoint, **kwargs):
        sent.append("originate")
        return await originate(endpoint, **kwargs)

    async def set_variable_spy(channel_id, variable, value):
        sent.append(variable)
        return await set_variable(channel_id, variable, value)

    async def play_spy(channel_id, media, **kwargs):
        sent.append("play " + ",".join(m.rsplit("/", 1)[-1] for m in media))
        return await play(channel_id, media, **kwargs)

    monkeypatch.setattr(rest, "originate", originate_spy)
    monkeypatch.setattr(rest, "set_variable", set_variable_spy)
    monkeypatch.setattr(rest, "play", play_spy)
    call_id = await callers.call(number=number(), digits="1", delay=0.5, hold=10)
    await state_of(app, call_id, CallState.CONNECTED, wait)
    menu = next(i for i, request in enumerate(sent) if request.startswith("play "))
    after_menu = sent[menu + 1 :]
    assert after_menu[:4] == [
        "originate",
        "SIAGA_QUEUE",
        "TALK_DETECT(remove)",
        "play hold_emergency",
    ], sent
    assert (await records.final(call_id))["outcome"] == "answered"


async def test_no_input_goes_to_general_flagged_silent(app, callers, records):
    # The timeout runs from the end of the menu prompt (about 13 s of speech).
    call_id = await callers.call(number=number(), digits="", hold=22)
    row = await records.final(call_id, timeout=40)
    assert row["category"] == "general"
    assert "silent" in row["flags"]
    steps = await records.events(call_id, "ivr_step")
    assert [s["input"] for s in steps] == ["no_input"]
    assert row["outcome"] == "abandoned"  # nobody logged in to take it; the caller left


async def test_invalid_digits_replay_then_general(app, callers, records):
    call_id = await callers.call(number=number(), digits="77", gap_ms=1200, hold=6)
    row = await records.final(call_id)
    assert row["category"] == "general"
    assert "invalid_input" in row["flags"]
    steps = await records.events(call_id, "ivr_step")
    assert [(s["input"], s["digit"]) for s in steps] == [("invalid", "7"), ("invalid", "7")]


async def test_english_switch_then_police(app, callers, records):
    call_id = await callers.call(number=number(), digits="93", gap_ms=800, hold=5)
    row = await records.final(call_id)
    assert row["category"] == "police"
    assert row["language"] == "en"
    steps = await records.events(call_id, "ivr_step")
    assert [(s["input"], s["language"]) for s in steps] == [("language", "id"), ("choice", "en")]


async def test_non_emergency_submenu_complaint_has_both_steps(app, callers, records):
    call_id = await callers.call(number=number(), digits="52", gap_ms=800, hold=5)
    row = await records.final(call_id)
    assert row["category"] == "complaint"
    steps = await records.events(call_id, "ivr_step")
    assert [(s["menu"], s["digit"]) for s in steps] == [("main", "5"), ("non_emergency", "2")]


async def test_caller_hanging_up_in_queue_is_abandoned_with_a_callback(app, callers, records, db):
    caller_number = number()
    call_id = await callers.call(number=caller_number, digits="4", hold=4)
    row = await records.final(call_id)
    assert row["outcome"] == "abandoned"
    assert row["category"] == "disaster"
    assert row["abandoned_at"] is not None and row["wait_seconds"] > 3
    callback = await db.fetchrow("SELECT * FROM callbacks WHERE call_id=$1", call_id)
    assert callback is not None
    assert callback["status"] == "pending"


async def test_no_answer_goes_to_next_operator_and_pauses_after_misses(
    start_app, stack_config, callers, records, wait
):
    deaf = simulated("deaf", "Local/noanswer@siaga-test")
    ready = simulated("ready", "Local/talk-3@siaga-test")
    acd = dataclasses.replace(stack_config.acd, max_consecutive_misses=1)
    app = await start_app(operators=(deaf, ready), acd=acd)
    # Two calls for two operators: whichever way they are dealt, "deaf" rings once, times
    # out, is paused (one miss allowed here), and "ready" takes both calls in turn.
    calls = [await callers.call(number=number(), digits="1", delay=0.3, hold=60) for _ in range(2)]
    for call_id in calls:

        async def connected(call_id=call_id):
            return await records.events(call_id, "call_connected")

        events = await wait(connected, timeout=40, what=f"{call_id} to be answered")
        assert events[0]["operator_id"] == "ready"
    failed = [e for c in calls for e in await records.events(c, "offer_failed")]
    assert [(e["operator_id"], e["reason"]) for e in failed] == [("deaf", "ring_timeout")]
    view = {o.operator_id: o for o in app.acd_core.snapshot().operators}
    assert view["deaf"].state is OperatorState.PAUSED
    assert view["deaf"].reason == "no_answer"


async def test_busy_operator_is_not_a_miss(start_app, stack_config, callers, records, wait):
    app = await start_app(operators=(simulated("busy", "Local/busy@siaga-test"),))
    call_id = await callers.call(number=number(), digits="3", delay=0.3, hold=4)

    async def refused():
        return [e for e in await records.events(call_id, "offer_failed") if e["reason"] == "busy"]

    await wait(refused, what="a busy offer")
    view = app.acd_core.snapshot().operators[0]
    assert view.consecutive_misses == 0
    assert view.state is not OperatorState.PAUSED


async def test_unregistered_operator_is_never_offered(start_app, stack_config, callers, records):
    app = await start_app()  # 1001 and 1002 are PJSIP operators and neither is registered
    call_id = await callers.call(number=number(), digits="1", delay=0.3, hold=4)
    row = await records.final(call_id)
    assert row["outcome"] == "abandoned"
    assert await records.events(call_id, "call_offered") == []
    assert not any(o.registered for o in app.acd_core.snapshot().operators)


async def test_twenty_sip_callers_five_operators_nobody_lost(
    start_app, stack_config, records, db, wait
):
    app = await start_app(operators=simulated_team(5, "Local/talk-3@siaga-test"))
    started_before = app.calls_started
    offers: list[str] = []
    overtaken: list[tuple[str, str]] = []
    apply = app._apply

    def spy(decision):
        if isinstance(decision, Offer):
            offers.append(decision.call_id)
            # Nobody still waiting may have arrived before the call being offered.
            mine = app.calls[decision.call_id].arrival
            for category in app.snapshot().categories:
                for waiting in category.waiting:
                    if app.calls[waiting.call_id].arrival < mine - 0.0005:
                        overtaken.append((waiting.call_id, decision.call_id))
        apply(decision)

    app._apply = spy  # the ACD's offers, checked against who was waiting at that moment
    caller = Sipp(
        caller_scenario(caller_id="0811000020", digits="1", delay_ms=800, hold_ms=12000),
        stack_config.asterisk.sip_port,
        calls=20,
        rate=20,
    )
    await caller.start()
    await caller.wait(timeout=60)

    async def all_in():
        return app.calls_started - started_before >= 20 and not app.calls

    await wait(all_in, timeout=30, what="all 20 calls to finish")
    await records.journal.wait_replayed(timeout=10)
    rows = await db.fetch(
        "SELECT call_id, outcome, connected_at, arrived_at FROM calls "
        "WHERE caller_number='0811000020' AND arrived_at > now() - interval '2 minutes'"
    )
    assert len(rows) == 20
    outcomes = sorted(r["outcome"] for r in rows)
    assert set(outcomes) <= {"answered", "abandoned"}, outcomes
    assert outcomes.count("answered") >= 10
    # Same category and priority: a waiting call is never overtaken by a later one.
    assert len(set(offers)) >= outcomes.count("answered")
    assert overtaken == []


async def test_a_phone_that_rejects_is_not_a_miss_and_the_call_waits(
    start_app, stack_config, callers, records, wait
):
    me = stack_config.operators[0]
    phone = SippPhone(
        me.sip_user,
        me.sip_password,
        stack_config.asterisk.sip_port,
        answer=answer_scenario(ring_ms=100, respond=603),
    )
    await phone.start()
    app = await start_app()
    try:

        async def registered():
            return app.snapshot().operators[0].registered

        await wait(registered, what="1001 to register")
        call_id = await callers.call(number=number(), digits="1", delay=0.3, hold=5)

        async def rejected():
            return [
                e
                for e in await records.events(call_id, "offer_failed")
                if e["reason"] == "rejected"
            ]

        await wait(rejected, what="the rejection to be recorded")
        view = app.snapshot().operators[0]
        assert view.consecutive_misses == 0 and view.state is not OperatorState.PAUSED
        assert app.calls[call_id].machine.state in (CallState.QUEUED, CallState.OFFERED)
    finally:
        await phone.unregister()
        await phone.stop()


async def test_a_phone_answering_and_hanging_up_at_once_does_not_drop_the_caller(
    start_app, callers, records, wait
):
    # A phone that answers and hangs up at once (a pocket answer, a faulty headset), and a
    # second operator who is really there.
    ghost = simulated("ghost", "Local/talk-0@siaga-test")
    real = simulated("real", "Local/operator@siaga-test")
    app = await start_app(operators=(ghost, real))
    app.operator_pause("real", "break")
    call_id = await callers.call(number=number(), digits="1", delay=0.3, hold=30)

    async def put_back():
        return [
            e
            for e in await records.events(call_id, "offer_failed")
            if e["reason"] == "hung_up_at_once"
        ]

    await wait(put_back, what="the call to be put back in line")
    assert call_id in app.calls, "the caller is still there"
    app.operator_ready("real")

    async def with_real():
        actor = app.calls.get(call_id)
        return actor is not None and actor.machine.operator_id == "real"

    await wait(with_real, what="the real operator to take the call")
    assert app.calls[call_id].machine.state is CallState.CONNECTED


TONE_HZ = 1004  # Milliwatt(), the simulated operator's "voice" (siaga-test, beep-N)


async def test_every_call_is_recorded_from_its_arrival_with_the_conversation(
    start_app, asterisk, callers, records, wait
):
    # The operator answers and "speaks" a 1004 Hz tone for 3 s, then hangs up.
    await start_app(operators=(simulated("tone", "Local/beep-3@siaga-test"),))
    call_id = await callers.call(number=number(), digits="1", delay=0.3, hold=30)
    row = await records.final(call_id)
    assert row["outcome"] == "answered"
    windows = await recording_of(call_id, asterisk, wait)
    # The tone: a steady run of windows at 2 x 1004 zero crossings per second (speech can
    # touch that rate in a window or two, never for long).
    is_tone = [rms > 0.1 and abs(rate - 2 * TONE_HZ) < 60 for rms, rate in windows]
    longest = first_tone = current = 0
    for index, tone in enumerate(is_tone):
        current = current + 1 if tone else 0
        if current > longest:
            longest, first_tone = current, index - current + 1
    assert longest * WINDOW >= 2.0, "the conversation (the operator's tone) is recorded"
    before = [rms for rms, _ in windows[:first_tone]]
    # What the caller heard before the operator came (the menu, "help is coming") is there too.
    assert sum(1 for rms in before if rms > 0.01) * WINDOW >= 0.2, before


async def test_a_waiting_caller_never_sits_in_silence(app, asterisk, callers, records, wait):
    # Nobody can take the call (1001 and 1002 are not registered): the caller waits 12 s,
    # hears that help is coming, then music, and hangs up.
    call_id = await callers.call(number=number(), digits="1", delay=0.3, hold=12)
    assert (await records.final(call_id))["outcome"] == "abandoned"
    windows = await recording_of(call_id, asterisk, wait)
    assert len(windows) * WINDOW >= 12.0, "the whole wait is recorded"
    longest = current = 0
    for rms, _ in windows:
        current = current + 1 if rms < 0.002 else 0
        longest = max(longest, current)
    # Pauses between sentences and the music's own fade-in are short; no music would leave
    # the caller in silence for the last ~7 s.
    assert longest * WINDOW < 2.0, f"{longest * WINDOW:.2f} s of silence in a row while waiting"
