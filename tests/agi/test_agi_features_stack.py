"""Operator feature codes on the real stack: dialled from a softphone (SIPp with digest auth) or
a Local channel, run through the dialplan's AGI against our server, acting on the running app
and recorded in PostgreSQL."""

from __future__ import annotations

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
    await journal.flush()
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
