"""Faults on the real stack: the app dies mid-traffic and a new one takes over every call."""

from __future__ import annotations

import pytest

from ari_app.call import CallState
from queues.decisions import Offer
from queues.states import OperatorState
from siaga.config import OperatorConfig

pytestmark = pytest.mark.integration

SKILLS = {"medical": 1}


def team(count: int) -> tuple[OperatorConfig, ...]:
    return tuple(
        OperatorConfig(
            id=f"op{i}",
            name=f"op{i}",
            sip_user=f"op{i}",
            sip_password="simulated",
            skills=SKILLS,
            dial="Local/operator@siaga-test",
        )
        for i in range(1, count + 1)
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
        c: (first.calls[c].machine.operator_id, next(iter(first.calls[c].legs))) for c in talking
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
