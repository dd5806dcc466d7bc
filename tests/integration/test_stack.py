"""The stack is real: Asterisk 22 answers 112 into the app, SIP and RFC 4733 DTMF work, an
operator's phone registers with digest auth and can be rung, and every call is recorded."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from ari_app.app import WANTED_EVENTS
from ari_app.ari.errors import AriNotFound
from ari_app.ari.events import AriEvent, ChannelDtmfReceived, StasisStart
from ari_app.ari.models import ChannelState
from testbed.sipp import Sipp, SippPhone, answer_scenario, caller_scenario

pytestmark = pytest.mark.integration


async def test_local_call_to_112_enters_stasis_and_is_answered(app, callers, ari, wait):
    call_id = await callers.call(hold=20)

    async def answered():
        try:
            channel = await ari.get_channel(call_id)
        except AriNotFound:
            return None
        return channel if channel.state is ChannelState.UP and call_id in app.calls else None

    channel = await wait(answered, what="the app to answer the Local call")
    assert channel.dialplan.app_name == "Stasis"

    async def bridged():
        return [b for b in await ari.list_bridges() if call_id in b.channels]

    bridges = await wait(bridged, what="the caller to wait in the call's own bridge")
    assert bridges[0].id == app.calls[call_id].bridge_id
    assert app.calls[call_id].machine.state.value == "ivr"


async def test_asterisk_sends_the_app_only_the_events_it_acts_on(app, ari, stack_config):
    application = await ari.get_application(stack_config.asterisk.app)

    assert set(application.events_allowed) == set(WANTED_EVENTS)


async def test_sip_caller_reaches_the_app_with_rfc4733_dtmf(app, stack_config, journal, db, wait):
    seen: list[AriEvent] = []
    original = app._on_event

    async def spy(event: AriEvent) -> None:
        seen.append(event)
        await original(event)

    app._connections[""]._on_event = spy  # observe exactly what the app receives
    number = f"0812{uuid.uuid4().int % 10**8:08d}"
    caller = Sipp(
        caller_scenario(caller_id=number, digits="52", delay_ms=800, hold_ms=3000),
        stack_config.asterisk.sip_port,
    )
    await caller.start()
    await caller.wait(timeout=30)

    starts = [e for e in seen if isinstance(e, StasisStart) and e.channel.caller.number == number]
    assert starts, "the SIP call entered Stasis(siaga)"
    call_id = starts[0].channel.id
    assert starts[0].channel.name.startswith("PJSIP/trunk-")
    assert any(
        isinstance(e, ChannelDtmfReceived) and e.channel.id == call_id and e.digit == "2"
        for e in seen
    )

    async def steps():
        await journal.wait_replayed(timeout=10)
        return await db.fetch(
            "SELECT data FROM call_events WHERE call_id=$1 AND kind='ivr_step' ORDER BY at",
            call_id,
        )

    # One key press is one menu step, although Asterisk reports it once per subscription.
    async def both_steps():
        found = await steps()
        return found if len(found) >= 2 else None

    rows = await wait(both_steps, what="the IVR steps of the SIP caller")
    assert [json.loads(r["data"]) for r in rows] == [
        {"digit": "5", "input": "choice", "language": "id", "menu": "main"},
        {"digit": "2", "input": "choice", "language": "id", "menu": "non_emergency"},
    ]
    category = await db.fetchval("SELECT category FROM calls WHERE call_id=$1", call_id)
    assert category == "complaint"


async def test_operator_registers_with_digest_auth_and_can_be_rung(
    asterisk, ari, stack_config, wait
):
    operator = stack_config.operators[0]
    phone = SippPhone(
        operator.sip_user,
        operator.sip_password,
        stack_config.asterisk.sip_port,
        answer=answer_scenario(ring_ms=100),
    )
    await phone.start()
    try:

        async def online():
            endpoint = await ari.get_endpoint("PJSIP", operator.sip_user)
            return endpoint.state.value == "online"

        await wait(online, what=f"PJSIP/{operator.sip_user} to register")
        leg = f"reach-{uuid.uuid4().hex[:8]}"
        await ari.originate_to_dialplan(
            operator.dial_string,
            channel_id=leg,
            context="siaga-test",
            extension="echo",
            timeout=10,
        )

        async def up():
            try:
                return (await ari.get_channel(leg)).state is ChannelState.UP
            except AriNotFound:
                return False

        try:
            await wait(up, what="the operator's phone to answer")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{phone.uas.diagnostics()}\n{asterisk.tail()}") from None
        await ari.hangup(leg)
    finally:
        await phone.unregister()
        await phone.stop()


async def test_wrong_password_does_not_register(asterisk, ari, stack_config):
    operator = stack_config.operators[1]
    phone = SippPhone(operator.sip_user, "not-the-password", stack_config.asterisk.sip_port)
    with pytest.raises(Exception, match="sipp exited"):
        await phone.start()
    await phone.stop()
    endpoint = await ari.get_endpoint("PJSIP", operator.sip_user)
    assert endpoint.state.value != "online"


async def test_every_call_leaves_a_row(app, callers, journal, db, wait):
    number = f"0813{uuid.uuid4().int % 10**8:08d}"
    call_id = await callers.call(number=number, name="Ibu Siti", hold=1.5)

    async def recorded():
        await journal.wait_replayed(timeout=10)
        return await db.fetchrow(
            "SELECT caller_number, caller_name, arrived_at, outcome FROM calls WHERE call_id=$1",
            call_id,
        )

    row = await wait(recorded, what="the call's row")
    assert row["caller_number"] == number
    assert row["caller_name"] == "Ibu Siti"
    assert row["arrived_at"] is not None

    async def closed():
        await journal.wait_replayed(timeout=10)
        outcome = await db.fetchval("SELECT outcome FROM calls WHERE call_id=$1", call_id)
        return outcome if outcome != "ongoing" else None

    assert await wait(closed, what="the call to be closed") == "abandoned"
    await asyncio.sleep(0)


DIALPLAN_READER = "siaga-test-dialplan"


async def _dialplan_reader(asterisk, config) -> tuple[str, str]:
    """An AMI user of the test's own that reads the dialplan class, which the stack's AMI user
    may not (it reads the fallback recorder's events only: dialplan/ami.py)."""
    secret = config.asterisk.ami_password
    manager = asterisk.outside(asterisk.layout.etc_dir) / "manager.conf"
    if f"[{DIALPLAN_READER}]" not in manager.read_text(encoding="utf-8"):
        with manager.open("a", encoding="utf-8") as out:
            out.write(f"\n[{DIALPLAN_READER}]\nsecret = {secret}\nread = dialplan\nwrite =\n")
        await asyncio.to_thread(asterisk.cli, "manager reload")
    return DIALPLAN_READER, secret


async def _ami_events(asterisk, config, seconds: float, start) -> list[dict[str, str]]:
    """Every AMI event of the dialplan class for `seconds` after `start()` ran (raw AMI)."""
    ast = config.asterisk
    user, secret = await _dialplan_reader(asterisk, config)
    reader, writer = await asyncio.open_connection(ast.ami_host, ast.ami_port)
    await reader.readline()  # banner
    login = f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\n"
    writer.write(f"{login}Events: dialplan\r\n\r\n".encode())
    await writer.drain()
    events: list[dict[str, str]] = []

    async def read() -> None:
        block: dict[str, str] = {}
        while raw := await reader.readline():
            line = raw.decode(errors="replace").rstrip("\r\n")
            if line:
                key, _, value = line.partition(": ")
                block.setdefault(key, value)
            elif block:
                events.append(block)
                block = {}

    task = asyncio.get_running_loop().create_task(read())
    try:
        await start()
        await asyncio.sleep(seconds)
    finally:
        task.cancel()
        writer.close()
    return events


async def test_asterisk_keeps_no_cdrs_and_publishes_no_variable_sets(asterisk, ari, stack_config):
    # Both cost Asterisk CPU on every channel of every call, and nothing in Siaga reads them:
    # the call records are the app's own, and ChannelVarset / VarSet events were dropped
    # unread (bench/README.md, "Reading the figures").
    assert "Logging:                    Disabled" in asterisk.cli("cdr show status")

    channel_id = f"varset-{uuid.uuid4().hex[:8]}"

    async def call() -> None:
        await ari.originate_to_dialplan(
            "Local/caller@siaga-test",
            channel_id=channel_id,
            context="siaga-test",
            extension="echo",
            variables={"SIAGA_DELAY": "0", "SIAGA_HOLD": "1", "SIAGA_PROBE": "x"},
        )

    events = await _ami_events(asterisk, stack_config, 2.0, call)
    ours = [e for e in events if channel_id in e.get("Uniqueid", "")]
    # The dialplan class does reach this session (the channel's steps), variable sets do not.
    assert any(e.get("Event") == "Newexten" for e in ours), events[-5:]
    assert not [e for e in events if e.get("Event") == "VarSet"]
    await ari.hangup(channel_id)
