"""The desk of a colleague conferenced into another operator's call, and the dispositions of a
call two operators handled, over the console's in-memory centre: the colleague's desk shows the
call (who is still on it; they may only leave while the operator is on), the call is theirs in
full once handed over, and each operator with a `call_connected` on a call is asked for their
own disposition when their part of it is over, as the ACD's disposition rule counts them."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from console_support import PureCentre, first_event, settled

from ari_app.call.states import HandOff, HandOffStatus, SideKind
from db import events
from db.events import RecordOnlyFailure
from queues import events as acd
from queues.states import OperatorState
from siaga.config import Config

A, B = "1001", "1002"


@pytest.fixture
def centre(console_config: Config, writer) -> PureCentre:
    # The ACD's disposition rule on: its count is what the desk must agree with.
    acd_settings = dataclasses.replace(console_config.acd, disposition_block_after_seconds=60)
    return PureCentre(dataclasses.replace(console_config, acd=acd_settings), writer)


def conference(centre: PureCentre, call_id: str = "c-1") -> str:
    """A answered the call (offered by the ACD); B was conferenced in and joined."""
    centre.operator_login(A)
    centre.operator_login(B)
    centre.arrive(call_id, "081300000031")
    assert centre.acd.operator_state(A) is OperatorState.OFFERED
    centre._feed(acd.OfferAnswered(call_id, A))
    call, t0 = centre.calls[call_id]
    centre.calls[call_id] = (dataclasses.replace(call, state="connected", operator_id=A), t0)
    centre.record(events.call_connected(call_id, A))
    centre.hand_offs(call_id, HandOff(SideKind.COLLEAGUE, B, HandOffStatus.ANSWERED))
    centre._feed(acd.OperatorJoined(call_id, B))
    centre.join(call_id, B)
    return call_id


def owing(centre: PureCentre, operator_id: str) -> int:
    view = next(o for o in centre.snapshot().operators if o.operator_id == operator_id)
    return view.dispositions_owed


async def desk(browser, predicate=lambda d: True):
    async with browser.session.get("/operator/events") as stream:
        return await first_event(stream, predicate, 3)


async def test_the_colleague_sees_the_call_and_that_its_operator_is_on(sign_in, centre, writer):
    call_id = conference(centre)
    await settled(writer)
    op2 = await sign_in("op2")
    pop = (await desk(op2))["call"]
    assert pop is not None, "no ghost: the colleague's desk shows the call they are on"
    assert (pop["call_id"], pop["live"], pop["state"]) == (call_id, True, "connected")
    assert pop["number"] == "081300000031" and pop["category"] == "Medis / ambulans"
    assert pop["with_operator"] == "Operator Satu"
    assert [(h["name"], h["status"]) for h in pop["hand_offs"]] == [("Operator Dua", "answered")]
    op1 = await sign_in("op1")
    pop = (await desk(op1))["call"]
    assert (pop["call_id"], pop["with_operator"]) == (call_id, None), "A's desk as before"


async def test_the_colleague_may_leave_but_not_hold_conference_or_add_an_agency(
    sign_in, centre, writer
):
    call_id = conference(centre)
    op2 = await sign_in("op2")
    refused = (
        ("/operator/hold", {"action": "hold"}),
        ("/operator/conference", {"colleague": "supervisor:sup"}),
        ("/operator/agency", {"agency": "police"}),
    )
    for path, form in refused:
        async with await op2.post(path, {"call_id": call_id, **form}) as response:
            assert response.headers["Location"] == "/operator?msg=not_your_call", path
    for path in ("/operator/hangup", "/operator/leave"):
        async with await op2.post(path, {"call_id": call_id}) as response:
            assert response.headers["Location"] == "/operator?msg=you_left", path
    # The app is asked for B's own leg (ari_app: HangUpRequested/LeaveRequested from B).
    assert centre.actions == [("hang_up", call_id, B), ("leave", call_id, B)]
    # The colleague may write their disposition during the call.
    async with await op2.post(
        "/operator/disposition", {"call_id": call_id, "verdict": "emergency"}
    ) as response:
        assert response.headers["Location"] == "/operator?msg=disposition_saved"
    # A still holds the call: hang up and hold stay theirs.
    op1 = await sign_in("op1")
    async with await op1.post("/operator/hold", {"call_id": call_id, "action": "hold"}) as r:
        assert r.headers["Location"] == "/operator?msg=on_hold"


async def test_handed_over_the_call_is_the_colleagues_in_full(sign_in, centre, writer):
    call_id = conference(centre)
    centre._feed(acd.OperatorLeft(call_id, A))
    centre.hand_over(call_id)
    op2 = await sign_in("op2")
    pop = (await desk(op2))["call"]
    assert (pop["call_id"], pop["with_operator"]) == (call_id, None)
    async with await op2.post("/operator/hold", {"call_id": call_id, "action": "hold"}) as r:
        assert r.headers["Location"] == "/operator?msg=on_hold"
    async with await op2.post("/operator/hangup", {"call_id": call_id}) as r:
        assert r.headers["Location"] == "/operator?msg=hung_up"
    assert centre.actions[-1] == ("hang_up", call_id, B)


async def test_after_a_hand_over_each_operator_owes_their_own_disposition(sign_in, centre, writer):
    call_id = conference(centre)
    centre._feed(acd.OperatorLeft(call_id, A))
    centre.hand_over(call_id)
    await settled(writer)
    op1, op2 = await sign_in("op1"), await sign_in("op2")
    # A left: asked at once, while the call goes on with B.
    data = await desk(op1)
    assert data["call"]["call_id"] == call_id and data["call"]["live"] is False
    assert [o["call_id"] for o in data["owed"]] == [call_id]
    assert owing(centre, A) == 1 and owing(centre, B) == 0
    assert (await desk(op2))["owed"] == [], "B is on it still"

    centre._feed(acd.CallEnded(call_id))
    centre.end(call_id)
    await settled(writer)
    data = await desk(op2)
    assert data["call"]["call_id"] == call_id, "B is asked too, not only calls.operator_id"
    assert [o["call_id"] for o in data["owed"]] == [call_id]
    assert owing(centre, B) == 1
    # The shift summary counts as the desks do: one for each of them.
    end = datetime.now(ZoneInfo("Asia/Jakarta")) + timedelta(minutes=1)  # the shift so far
    _, shift = await (await sign_in("sup")).text(f"/reports/shift?end={end:%Y-%m-%dT%H:%M}")
    assert '<strong id="owed-total">2</strong>' in shift

    # One disposition per operator per call: A's does not answer for B.
    await op1.post("/operator/disposition", {"call_id": call_id, "verdict": "emergency"})
    await settled(writer)
    assert (await desk(op1))["owed"] == [] and owing(centre, A) == 0
    assert [o["call_id"] for o in (await desk(op2))["owed"]] == [call_id]
    assert owing(centre, B) == 1
    await op2.post("/operator/disposition", {"call_id": call_id, "verdict": "emergency"})
    await settled(writer)
    data = await desk(op2)
    assert data["owed"] == [] and data["call"] is None and owing(centre, B) == 0


async def test_a_colleague_who_left_again_owes_theirs_while_the_call_goes_on(
    sign_in, centre, writer
):
    call_id = conference(centre)
    centre._feed(acd.OperatorLeft(call_id, B))
    centre.colleague_left(call_id)
    await settled(writer)
    op2 = await sign_in("op2")
    data = await desk(op2)
    assert [(o["call_id"], o["ended"]) for o in data["owed"]] == [(call_id, "-")]
    assert data["call"]["call_id"] == call_id and data["call"]["live"] is False
    assert owing(centre, B) == 1
    op1 = await sign_in("op1")
    data = await desk(op1)
    assert data["owed"] == [] and data["call"]["live"] is True and owing(centre, A) == 0


async def test_a_pocket_answer_owes_no_disposition(sign_in, centre, writer):
    # A's phone answered and hung up at once: the caller went back in line (the ACD owes A
    # nothing) and B took the call. Only B is asked.
    centre.operator_login(A)
    centre.arrive("c-g", "081300000032")
    centre.record(events.call_connected("c-g", A))
    await asyncio.sleep(0.01)  # the records' times are in milliseconds
    centre.record(events.offer_failed("c-g", A, RecordOnlyFailure.HUNG_UP_AT_ONCE))
    centre.connect("c-g", B)
    centre.end("c-g")
    await settled(writer)
    op1, op2 = await sign_in("op1"), await sign_in("op2")
    data = await desk(op1)
    assert data["owed"] == [] and data["call"] is None
    assert [o["call_id"] for o in (await desk(op2))["owed"]] == ["c-g"]
