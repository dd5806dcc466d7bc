"""Faults on the real stack: the app dies mid-traffic and a new one takes over every call."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from ari_app.ari.config import AriConfig
from ari_app.call import CallState
from ari_app.executors import FALLBACK_CONTEXT, display_number
from dialplan.render import STRANDED_AFTER_SECONDS
from queues.decisions import Offer
from queues.states import OperatorState
from siaga.config import OperatorConfig
from testbed.sandbox import simulated_operators

pytestmark = pytest.mark.integration


OUTAGE_SECONDS = 60


def team(count: int) -> tuple[OperatorConfig, ...]:
    return simulated_operators(
        count, "Local/operator@siaga-test", prefix="op", skills=("medical", "fire")
    )


async def test_app_killed_with_calls_up_is_replaced_and_adopts_them_all(
    start_app, callers, ari, records, wait
):
    operators = team(5)
    first = await start_app(operators=operators)
    talking = [
        await callers.call(number=f"08110000{i:02d}", digits="1", delay=0.2, hold=0)
        for i in range(5)
    ]

    async def all_talking():
        return all(
            c in first.calls and first.calls[c].machine.state is CallState.CONNECTED
            for c in talking
        )

    await wait(all_talking, timeout=30, what="5 conversations")
    waiting = [
        await callers.call(number=f"08120000{i:02d}", digits="1", delay=0.2, hold=0)
        for i in range(10)
    ]

    async def all_waiting():
        return all(
            c in first.calls and first.calls[c].machine.state is CallState.QUEUED for c in waiting
        )

    await wait(all_waiting, timeout=30, what="10 waiting callers")
    pairs = {
        c: (first.calls[c].machine.operator_id, next(iter(first.calls[c].machine.legs)))
        for c in talking
    }
    arrival_order = sorted(waiting, key=lambda c: first.calls[c].arrival)

    await first.stop()  # the app dies: no hang-ups, no goodbyes; Asterisk keeps every call

    second = await start_app(operators=operators)
    offers: list[str] = []
    apply = second._apply

    def spy(decision):
        if isinstance(decision, Offer):
            offers.append(decision.call_id)
        apply(decision)

    second._apply = spy

    async def adopted():
        return all(c in second.calls for c in talking + waiting)

    await wait(adopted, what="the new app to adopt all 15 calls")
    for call_id, (operator_id, leg) in pairs.items():
        actor = second.calls[call_id]
        assert actor.machine.state is CallState.CONNECTED
        assert actor.machine.operator_id == operator_id
        bridge = await ari.get_bridge(actor.bridge_id)
        assert set(bridge.channels) == {call_id, leg}, "the conversation went on undisturbed"
    states = {o.operator_id: o.state for o in second.snapshot().operators}
    assert all(state is OperatorState.ON_CALL for state in states.values())
    assert all(second.calls[c].machine.state is CallState.QUEUED for c in waiting)

    # The operators finish their calls one by one: the waiting callers come in their order.
    for call_id in talking:
        await ari.hangup(pairs[call_id][1])

    async def five_offered():
        return len(dict.fromkeys(c for c in offers if c in waiting)) >= 5

    await wait(five_offered, timeout=30, what="the first waiting callers to be offered")
    first_offers = list(dict.fromkeys(c for c in offers if c in waiting))
    assert first_offers == arrival_order[: len(first_offers)]

    for call_id in talking + waiting:
        events = await records.events(call_id)
        kinds = [e["kind"] for e in events]
        assert kinds.count("call_arrived") == 1, (call_id, kinds)
        assert {"flag": "adopted"}.items() <= next(
            e for e in events if e["kind"] == "flag_set" and e.get("flag") == "adopted"
        ).items()
    for call_id in talking:
        row = await records.final(call_id)
        assert row["outcome"] == "answered"
        assert row["hangup_by"] == "operator"


async def test_graceful_shutdown_hands_over_waiting_calls_and_lets_conversations_finish(
    start_app, callers, ari, records, wait
):
    app = await start_app(operators=team(1))
    talking = await callers.call(number="0813000001", digits="1", delay=0.2, hold=0)

    async def connected():
        actor = app.calls.get(talking)
        return actor is not None and actor.machine.state is CallState.CONNECTED

    await wait(connected, what="the conversation")
    waiting = await callers.call(number="0813000002", digits="1", delay=0.2, hold=0)

    async def queued():
        actor = app.calls.get(waiting)
        return actor is not None and actor.machine.state is CallState.QUEUED

    await wait(queued, what="the waiting caller")
    drain = asyncio.ensure_future(app.drain(timeout=30))
    newcomer = await callers.call(number="0813000003", digits="1", delay=0.2, hold=0)

    async def in_fallback(call_id):
        try:
            channel = await ari.get_channel(call_id)
        except Exception:
            return False
        return channel.dialplan.context == "siaga-fallback"

    await wait(lambda: in_fallback(waiting), what="the waiting caller handed to the fallback")
    await wait(lambda: in_fallback(newcomer), what="the new caller sent to the fallback")
    assert newcomer not in app.calls
    await asyncio.sleep(2.5)  # a conversation, not a phone answering and hanging up at once
    assert not drain.done(), "a conversation in progress is not cut"
    assert app.calls[talking].machine.state is CallState.CONNECTED
    await ari.hangup(next(iter(app.calls[talking].machine.legs)))  # the operator finishes
    await asyncio.wait_for(drain, 10)
    assert (await records.final(talking))["outcome"] == "answered"
    flags = await records.events(waiting, "flag_set")
    assert [e["flag"] for e in flags] == ["handed_to_fallback"]


async def test_a_call_no_app_takes_goes_to_the_fallback_and_one_the_app_takes_stays(
    start_app, callers, ari, stack_config, wait
):
    """A stranded call: an app hung with its ARI connection open (or one that died as the
    call came in) is sent the call, and nobody answers it. The dialplan's guard sends it to
    the fallback, which answers and rings the operators. A call the app took stays the app's
    past that time (docs/architecture.md, the stranded-call guard)."""
    ast = stack_config.asterisk
    config = AriConfig(
        username=ast.ari_user, password=ast.ari_password, app=ast.app, url=ast.ari_url
    )

    async def where(call_id: str) -> tuple[str, str] | None:
        try:
            channel = await ari.get_channel(call_id)
        except Exception:
            return None
        return channel.dialplan.context, channel.dialplan.app_name

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            config.events_url,
            params={"app": config.app},
            headers={"Authorization": config.authorization()},
        ) as hung,
    ):
        stranded = await callers.call(number="0813000004", hold=30)
        async with asyncio.timeout(10):  # Asterisk gives the call to the hung app
            async for message in hung:
                event = message.json()
                if event["type"] == "StasisStart" and event["channel"]["id"] == stranded:
                    break
        assert (await where(stranded)) == ("siaga-incoming", "Stasis")

        async def ringing_the_operators():
            return (await where(stranded)) == (FALLBACK_CONTEXT, "Queue")

        await wait(
            ringing_the_operators, timeout=STRANDED_AFTER_SECONDS + 5, what="the stranded call"
        )
    await ari.hangup(stranded)

    app = await start_app(operators=team(0))
    taken = await callers.call(number="0813000005", hold=30)

    async def waiting():
        actor = app.calls.get(taken)
        return actor is not None and actor.machine.state in (CallState.IVR, CallState.QUEUED)

    await wait(waiting, what="the call the app took")
    await asyncio.sleep(STRANDED_AFTER_SECONDS + 1.5)
    place = await where(taken)
    assert place == ("siaga-incoming", "Stasis"), place
    assert app.calls[taken].machine.state in (CallState.IVR, CallState.QUEUED)


async def test_hostile_caller_ids_are_stored_exactly_and_shown_harmlessly(
    start_app, ari, stack_config, records, wait
):
    import uuid

    app = await start_app(operators=team(1))
    names = [
        "'; DROP TABLE calls; --",
        "<script>alert(1)</script>",
        'quote " and \\ backslash',
        "Ibu Sri ☎ 😀 ñ",
        "x" * 4000,
    ]
    for name in names:
        call_id = f"t-{uuid.uuid4().hex[:12]}"
        await ari.originate_to_dialplan(
            "Local/caller@siaga-test",
            channel_id=call_id,
            context="siaga-local",
            extension=stack_config.asterisk.emergency_number,
            variables={
                "CALLERID(name)": name,
                "CALLERID(num)": "+62<b>'812\"9",
                "SIAGA_DTMF": "1",
                "SIAGA_DELAY": "0.2",
                "SIAGA_HOLD": "2",
            },
        )
        channel = await ari.get_channel(call_id)
        row = await records.final(call_id)
        assert row["caller_name"] == channel.caller.name  # exactly as Asterisk received it
        assert row["caller_number"] == channel.caller.number == "+62<b>'812\"9"
        offered = await records.events(call_id, "call_offered")
        assert [e["operator_id"] for e in offered] == ["op1"], "a human still took it"
    # What the operator's phone shows is reduced to safe characters.
    assert display_number("+62<b>'812\"9") == "+62b8129"
    assert display_number("\x07\n") == "unknown"
    assert app.connected


async def test_dtmf_flood_does_not_disturb_the_call(start_app, callers, records, wait):
    app = await start_app(operators=team(1))
    flood = "1" + "2346780" * 7  # 50 digits, 20 ms apart
    call_id = await callers.call(number="0814000001", digits=flood, delay=0.2, gap_ms=20, hold=3)
    row = await records.final(call_id, timeout=40)
    assert row["category"] == "medical"
    steps = await records.events(call_id, "ivr_step")
    assert [s["digit"] for s in steps] == ["1"], "the first digit decides; the rest is noise"
    # The app is still serving: the next caller goes through normally.
    other = await callers.call(number="0814000002", digits="2", delay=0.2, hold=2)
    assert (await records.final(other))["category"] == "fire"
    assert app.connected


async def test_asterisk_crash_and_restart_closes_cut_calls_and_serves_new_ones(
    start_app, asterisk, callers, records, wait
):
    import asyncio
    import time

    app = await start_app(operators=team(1))
    talking = await callers.call(number="0815000001", digits="1", delay=0.2, hold=0)

    async def connected():
        actor = app.calls.get(talking)
        return actor is not None and actor.machine.state is CallState.CONNECTED

    await wait(connected, what="the conversation")
    waiting = await callers.call(number="0815000002", digits="1", delay=0.2, hold=0)

    async def queued():
        actor = app.calls.get(waiting)
        return actor is not None and actor.machine.state is CallState.QUEUED

    await wait(queued, what="the waiting caller")
    asterisk.process.kill()  # a crash: no hang-ups, no events
    asterisk.process.wait()

    async def down():
        return not app.connected

    await wait(down, what="the app to notice")
    await asyncio.to_thread(asterisk.start)
    ready = time.monotonic()

    async def up():
        return app.connected

    await wait(up, timeout=10, what="the app to reconnect")
    for call_id in (talking, waiting):
        row = await records.final(call_id)
        assert row["end_reason"] == "pbx_restart", dict(row)
        assert row["hangup_by"] == "system"
    fresh = await callers.call(number="0815000003", digits="1", delay=0.2, hold=5)

    async def served():
        return fresh in app.calls

    await wait(served, timeout=5, what="a new call to be served")
    assert time.monotonic() - ready < 5


async def test_database_outage_under_load_loses_nothing(
    asterisk, stack_config, own_pg_cluster, callers, tmp_path, wait
):
    """PostgreSQL stops while calls go on; afterwards every record is there exactly once."""
    import asyncio
    import dataclasses

    import asyncpg

    from ari_app.app import SiagaApp
    from db.migrate import migrate
    from db.writer import RecordWriter

    dsn = own_pg_cluster.dsn
    await migrate(dsn)
    writer = RecordWriter(dsn, tmp_path / "journal.jsonl", batch_ms=50, retry_max_s=0.5)
    await writer.start()
    config = dataclasses.replace(
        stack_config,
        operators=team(3),
        database=dataclasses.replace(stack_config.database, url=dsn),
    )
    app = SiagaApp(config, writer, prompts_dir=asterisk.prompts_dir)
    await app.start()
    await app.wait_connected()
    placed: list[str] = []
    try:
        for i in range(4):
            placed.append(await callers.call(number=f"081600000{i}", digits="1", delay=0.2, hold=4))
        await asyncio.to_thread(own_pg_cluster.stop, "immediate")
        down_since = asyncio.get_running_loop().time()
        # For a full minute, calls arrive, are answered and end while the database is down.
        for i in range(4, 4 + OUTAGE_SECONDS // 5):
            placed.append(
                await callers.call(number=f"08160000{i:02d}", digits="1", delay=0.2, hold=2)
            )
            await asyncio.sleep(5)
        assert asyncio.get_running_loop().time() - down_since >= OUTAGE_SECONDS

        async def spooling():
            return not writer.db_reachable and writer.spooled > 0

        await wait(spooling, what="the writer to spool to its journal")

        async def all_done():
            return not app.calls

        await wait(all_done, timeout=30, what="every call to finish")
        await asyncio.to_thread(own_pg_cluster.start)
        await writer.wait_replayed(timeout=30)
        await writer.flush()
    finally:
        await app.stop()
        await writer.close()
    conn = await asyncpg.connect(dsn)
    try:
        arrivals = await conn.fetch(
            "SELECT call_id, count(*) AS n FROM call_events WHERE kind='call_arrived'"
            " GROUP BY call_id"
        )
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT event_id FROM call_events GROUP BY event_id"
            " HAVING count(*) > 1) d"
        )
        outcomes = await conn.fetch("SELECT call_id, outcome FROM calls")
    finally:
        await conn.close()
    assert {r["call_id"]: r["n"] for r in arrivals} == dict.fromkeys(placed, 1)
    assert duplicates == 0
    assert {r["call_id"] for r in outcomes} == set(placed)
    assert all(r["outcome"] in ("answered", "abandoned") for r in outcomes), outcomes


async def test_app_process_killed_with_sigkill_is_replaced_without_losing_a_call(
    siaga_run, callers, ari, records, wait
):
    import asyncio
    import signal

    first = siaga_run()
    await first.start()
    talking = [
        await callers.call(number=f"08170000{i}", digits="0", delay=0.2, hold=0) for i in range(2)
    ]

    async def both_connected():
        return all([await records.events(c, "call_connected") for c in talking])

    await wait(both_connected, what="two conversations")
    waiting = [
        await callers.call(number=f"08171000{i}", digits="0", delay=0.2, hold=0) for i in range(3)
    ]

    async def all_queued():
        return all([await records.events(c, "call_queued") for c in waiting])

    await wait(all_queued, what="three waiting callers")
    legs = {c: f"{c}-op1" for c in talking}
    await first.kill()

    second = siaga_run()
    await second.start()
    try:
        for call_id, leg in legs.items():
            bridge = await ari.get_bridge(f"{call_id}-bridge")
            assert set(bridge.channels) == {call_id, leg}, "the conversation went on"

        async def all_adopted():
            events = [await records.events(c, "flag_set") for c in talking + waiting]
            return all(any(e.get("flag") == "adopted" for e in ev) for ev in events)

        await wait(all_adopted, what="the new process to adopt all five calls")
        for leg in legs.values():
            await ari.hangup(leg)  # the operators finish: the waiting callers come next

        async def two_more_connected():
            return sum([bool(await records.events(c, "call_connected")) for c in waiting]) >= 2

        await wait(two_more_connected, timeout=30, what="waiting callers to be answered")
        for call_id in talking + waiting:
            kinds = [e["kind"] for e in await records.events(call_id)]
            assert kinds.count("call_arrived") == 1, (call_id, kinds)
    finally:
        # Graceful: conversations may go on for 30 s; a second SIGTERM ends it at once.
        assert second.process is not None
        second.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(1)
        assert second.process.returncode is None, "still letting the conversations finish"
        assert await second.stop() == 0
