"""The disposition and callback workflow on the desk: the calls still owing a disposition
(oldest first, the picked or last one in the form), the ACD's rule that holds back an operator
owing one too long, and the callback list (one entry per number while open, by priority and
age, quick hang-ups left out, outcome and owner recorded)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from console_support import PureCentre, first_event, settled

from db import events
from queues import events as acd
from queues.states import OperatorState
from siaga.config import Config
from supervisor import queries

BLOCK = 0.4  # seconds a disposition may be owed before offers stop (the rule on here)


@pytest.fixture
def centre(console_config: Config, writer) -> PureCentre:
    acd_settings = dataclasses.replace(console_config.acd, disposition_block_after_seconds=BLOCK)
    return PureCentre(dataclasses.replace(console_config, acd=acd_settings), writer)


def answered(centre: PureCentre, call_id: str, operator_id: str) -> None:
    """The engine offered the call to the operator, who answered."""
    view = next(o for o in centre.snapshot().operators if o.operator_id == operator_id)
    assert (view.state, view.call_id) == (OperatorState.OFFERED, call_id)
    centre._feed(acd.OfferAnswered(call_id, operator_id))
    call, t0 = centre.calls[call_id]
    centre.calls[call_id] = (
        dataclasses.replace(call, state="connected", operator_id=operator_id),
        t0,
    )
    centre.record(events.call_connected(call_id, operator_id))


def ended(centre: PureCentre, call_id: str, operator_id: str) -> None:
    """The call ends; the operator cuts the wrap-up short."""
    centre._feed(acd.CallEnded(call_id))
    centre.end(call_id)
    centre.operator_ready(operator_id)


def take_call(centre: PureCentre, call_id: str, number: str, operator_id: str = "1001") -> None:
    centre.arrive(call_id, number)
    answered(centre, call_id, operator_id)
    ended(centre, call_id, operator_id)


async def desk(browser, path="/operator/events", predicate=lambda d: True):
    async with browser.session.get(path) as stream:
        return await first_event(stream, predicate, 3)


async def test_the_backlog_lists_owed_calls_oldest_first_and_disposing_removes_one(
    sign_in, centre, writer
):
    centre.operator_login("1001")
    take_call(centre, "c-a", "081300000101")
    await asyncio.sleep(0.01)  # the records' times are in milliseconds
    take_call(centre, "c-b", "081300000102")
    await asyncio.sleep(0.01)
    # given during the call: never owed
    centre.arrive("c-c", "081300000103")
    answered(centre, "c-c", "1001")
    centre.record(events.disposition("c-c", "1001", "information"))
    centre.disposition_given("1001", "c-c")
    ended(centre, "c-c", "1001")
    await settled(writer)

    op1 = await sign_in("op1")
    data = await desk(op1)
    assert [o["call_id"] for o in data["owed"]] == ["c-a", "c-b"], "oldest first"
    assert data["owed"][0]["number"] == "081300000101"
    assert data["call"]["call_id"] == "c-b", "the last call's form first"
    assert [o["chosen"] for o in data["owed"]] == [False, True]
    # The operator picks the older one from the list: the form is for it.
    data = await desk(op1, "/operator/events?call=c-a")
    assert data["call"]["call_id"] == "c-a"
    assert [o["chosen"] for o in data["owed"]] == [True, False]
    # A call that is not one of hers cannot be picked.
    assert (await desk(op1, "/operator/events?call=nope"))["call"]["call_id"] == "c-b"

    async with await op1.post(
        "/operator/disposition", {"call_id": "c-a", "verdict": "prank"}
    ) as response:
        assert response.headers["Location"] == "/operator?msg=disposition_saved"
    await settled(writer)
    data = await desk(op1)
    assert [o["call_id"] for o in data["owed"]] == ["c-b"]
    _, page = await op1.text("/operator")
    assert 'id="owed"' in page and 'id="op-owed"' in page
    # Another operator owes nothing of hers.
    op2 = await sign_in("op2")
    assert (await desk(op2))["owed"] == []


async def test_an_operator_owing_a_disposition_too_long_is_offered_no_call_until_it_is_given(
    sign_in, centre, writer
):
    centre.operator_login("1001")
    take_call(centre, "c-1", "081300000201")
    await settled(writer)
    op1 = await sign_in("op1")
    await asyncio.sleep(BLOCK + 0.1)
    data = await desk(op1, predicate=lambda d: d["held"])
    assert data["operator"]["state"] == "available" and data["held"] is True
    _, page = await op1.text("/operator")
    assert "tidak ditawari panggilan sampai disposisi diisi" in page

    centre.arrive("c-2", "081300000202")
    assert centre.acd.operator_state("1001") is OperatorState.AVAILABLE, "not offered"
    await op1.post("/operator/disposition", {"call_id": "c-1", "verdict": "emergency"})
    assert centre.acd.operator_state("1001") is OperatorState.OFFERED, "offered at once"
    data = await desk(op1)
    assert data["held"] is False


async def abandoned(centre, call_id, number, *, category="medical", after=5.0, at=None):
    """A caller who gave up `after` seconds after arriving."""
    centre.arrive(call_id, number, category=category)
    centre.calls.pop(call_id)
    moment = (at or datetime.now(UTC)) + timedelta(seconds=after)
    centre.record(events.call_abandoned(call_id, position=1, at=moment))


async def test_callbacks_one_per_number_by_priority_and_age_without_quick_hang_ups(
    sign_in, centre, writer, db
):
    start = datetime.now(UTC)
    await abandoned(centre, "cb-info", "081300000301", category="information", at=start)
    await abandoned(centre, "cb-med-1", "081300000302", at=start + timedelta(seconds=1))
    await abandoned(
        centre, "cb-fire", "081300000303", category="fire", at=start + timedelta(seconds=2)
    )
    await abandoned(centre, "cb-med-2", "081300000302", at=start + timedelta(seconds=3))
    await abandoned(centre, "cb-med-3", "081300000302", at=start + timedelta(seconds=4))
    await abandoned(centre, "cb-quick", "081300000304", after=0.5)  # hung up within 2 s
    await settled(writer)

    rules = queries.CallbackRules.of(centre.config)
    entries = await queries.open_callbacks(db, rules)
    assert [(e.call_id, e.caller_number, e.abandons) for e in entries] == [
        ("cb-med-1", "081300000302", 3),  # priority 1, the oldest
        ("cb-fire", "081300000303", 1),  # priority 1
        ("cb-info", "081300000301", 1),  # priority 5, although the oldest of all
    ]
    assert entries[0].call_ids == ("cb-med-1", "cb-med-2", "cb-med-3")
    assert entries[0].latest_at > entries[0].abandoned_at
    every = await queries.open_callbacks(db, dataclasses.replace(rules, min_hangup_seconds=0))
    assert "cb-quick" in [e.call_id for e in every]

    op1 = await sign_in("op1")
    _, page = await op1.text("/operator")
    assert page.count("081300000302") == 1 and "3x, terakhir" in page
    assert "081300000304" not in page
    assert 'value="wrong_number"' in page and "salah nomor" in page
    async with await op1.post(
        "/operator/callbacks/cb-med-2/done", {"outcome": "wrong_number"}
    ) as response:
        assert response.headers["Location"] == "/operator?msg=callback_done"
    await settled(writer)
    rows = await db.fetch(
        "SELECT call_id, status, owner, outcome FROM callbacks WHERE call_id LIKE 'cb-med-%'"
        " ORDER BY call_id"
    )
    assert [tuple(r) for r in rows] == [
        (f"cb-med-{n}", "done", "1001", "wrong_number") for n in (1, 2, 3)
    ]
    assert [e.call_id for e in await queries.open_callbacks(db, rules)] == [
        "cb-fire",
        "cb-info",
    ]
    async with await op1.post("/operator/callbacks/cb-fire/done", {"outcome": "maybe"}) as r:
        assert r.headers["Location"] == "/operator?msg=invalid"
    async with await op1.post("/operator/callbacks/cb-med-1/done", {"outcome": "reached"}) as r:
        assert r.status == 404, "closed"

    # The same number giving up again later: a new open entry.
    await abandoned(centre, "cb-med-4", "081300000302", after=60)
    await settled(writer)
    entries = await queries.open_callbacks(db, rules)
    assert [(e.call_id, e.abandons) for e in entries] == [
        ("cb-fire", 1),
        ("cb-med-4", 1),  # as urgent, younger
        ("cb-info", 1),
    ]
