"""Operator feature codes on the real stack: dialled from a softphone (SIPp with digest auth) or
a Local channel, run through the dialplan's AGI against our server, acting on the running app
and recorded in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from agi_sipp import operator_dial_scenario

from queues.states import OperatorState
from testbed.sipp import Sipp

pytestmark = pytest.mark.integration


async def dial_code(ari, code: str, caller: str) -> None:
    """A Local channel into the operators' context: the system's own stand-in for a phone."""
    await ari.originate_to_dialplan(
        "Local/echo@siaga-test",
        channel_id=f"f-{uuid.uuid4().hex[:10]}",
        context="siaga-operators",
        extension=code,
        caller_id=f'"Operator" <{caller}>',
        variables={},
    )


async def operator_states(db, journal, operator_id: str) -> list[tuple[str, str | None]]:
    await journal.wait_replayed(timeout=10)
    rows = await db.fetch(
        "SELECT state, reason FROM operator_state_changes WHERE operator_id = $1 ORDER BY at",
        operator_id,
    )
    return [(r["state"], r["reason"]) for r in rows]


async def test_softphone_pauses_with_a_reason_code(
    start_app, agi_server, stack_config, db, journal, wait
):
    app = await start_app()
    agi_server.operators = app
    operator = stack_config.operators[0]  # 1001, logged in at start
    phone = Sipp(
        operator_dial_scenario(
            user=operator.sip_user, password=operator.sip_password, number="*132"
        ),
        stack_config.asterisk.sip_port,
    )
    await phone.start()
    try:
        await phone.wait(timeout=30)  # answered, confirmed, hung up by Asterisk
    finally:
        await phone.stop()

    assert app.acd_core.operator_state("1001") is OperatorState.PAUSED
    view = next(o for o in app.snapshot().operators if o.operator_id == "1001")
    assert view.reason == "meal"

    async def recorded():
        return ("paused", "meal") in await operator_states(db, journal, "1001")

    await wait(recorded, what="the pause to be recorded")


async def test_codes_log_out_log_in_pause_and_ready(start_app, agi_server, ari, db, journal, wait):
    app = await start_app()
    agi_server.operators = app

    async def state_is(expected: OperatorState) -> None:
        async def reached():
            return app.acd_core.operator_state("1002") is expected

        await wait(reached, what=f"1002 to be {expected.value}")

    for code, expected in (
        ("*12", OperatorState.LOGGED_OUT),
        ("*11", OperatorState.AVAILABLE),
        ("*13", OperatorState.PAUSED),
        ("*14", OperatorState.AVAILABLE),
        ("*135", OperatorState.PAUSED),
    ):
        await dial_code(ari, code, "1002")
        await state_is(expected)

    async def recorded():
        states = await operator_states(db, journal, "1002")
        return states[-5:] if len(states) >= 5 else None

    assert await wait(recorded, what="five state changes of 1002") == [
        ("logged_out", "logout"),
        ("available", "login"),
        ("paused", "pause"),
        ("available", "ready"),
        ("paused", "meeting"),
    ]


async def test_refused_and_unknown_codes_change_nothing(start_app, agi_server, ari, wait):
    app = await start_app()
    agi_server.operators = app
    outcomes = agi_server.feature_outcomes

    async def handled(count: int) -> bool:
        return sum(outcomes.values()) >= count

    await dial_code(ari, "*12", "1001")
    await wait(lambda: handled(1), what="the logout")
    # Pause while logged out (the ACD refuses), a caller who is no operator, a code that is none.
    for n, (code, caller) in enumerate((("*13", "1001"), ("*11", "0812999"), ("*19", "1001"))):
        await dial_code(ari, code, caller)
        await wait(lambda n=n: handled(n + 2), what=f"code {code}")
    assert outcomes == {"done": 1, "refused": 1, "not_an_operator": 1, "unknown_code": 1}
    assert app.acd_core.operator_state("1001") is OperatorState.LOGGED_OUT


async def forge(port: int, script: str) -> bytes:
    """What the security review sent: raw TCP to the AGI port, posing as 1002's phone."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"agi_network: yes\nagi_network_script: {script}\nagi_request: agi://127.0.0.1/{script}\n"
        "agi_channel: PJSIP/1002-0000002a\nagi_callerid: 1002\nagi_arg_1: 12\n\n".encode()
    )
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_a_forged_request_changes_nothing_and_the_phone_is_audited(
    start_app, agi_server, stack_config, db, wait
):
    app = await start_app()
    agi_server.operators = app
    assert app.acd_core.operator_state("1002") is OperatorState.AVAILABLE
    # The database is the session's: earlier tests' codes are audited too.
    before = await db.fetchval("SELECT coalesce(max(audit_id), 0) FROM console_audit")

    for script in ("feature", "siaga-dev-agi-secret-not/feature", "x/feature"):
        assert await forge(agi_server.port, script) == b""  # no service at all
    assert agi_server.refused == 3
    assert agi_server.feature_outcomes == {}
    assert app.acd_core.operator_state("1002") is OperatorState.AVAILABLE
    assert await db.fetch("SELECT * FROM console_audit WHERE audit_id > $1", before) == []

    # The real *12 from 1002's softphone (SIPp, digest auth) still logs 1002 out...
    operator = stack_config.operators[1]
    phone = Sipp(
        operator_dial_scenario(
            user=operator.sip_user, password=operator.sip_password, number="*12"
        ),
        stack_config.asterisk.sip_port,
    )
    await phone.start()
    try:
        await phone.wait(timeout=30)
    finally:
        await phone.stop()
    assert app.acd_core.operator_state("1002") is OperatorState.LOGGED_OUT

    # ...and the console's audit says so, with where it came from.
    async def audited():
        return await db.fetch(
            "SELECT username, role, action, client, detail::text AS detail FROM console_audit"
            " WHERE audit_id > $1 AND target = '1002'",
            before,
        )

    rows = await wait(audited, what="the logout in the audit")
    assert [(r["username"], r["role"], r["action"]) for r in rows] == [
        ("1002", "phone", "operator_logout")
    ]
    assert rows[0]["client"].startswith("PJSIP/1002-")
    assert json.loads(rows[0]["detail"]) == {"source": "phone", "endpoint": "1002", "code": "*12"}
