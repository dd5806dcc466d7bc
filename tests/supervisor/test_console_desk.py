"""The operator's desk over HTTP: own state, the screen pop of the current call with what the
records know about the number, the disposition written through the journal, agencies and
callbacks."""

from __future__ import annotations

import asyncio

from console_support import first_event, settled

from db import events
from queues.states import OperatorState


def state_of(centre, operator_id):
    return next(o for o in centre.snapshot().operators if o.operator_id == operator_id)


async def test_the_operator_sets_their_own_state(sign_in, centre):
    op1 = await sign_in("op1")
    async with await op1.post("/operator/state", {"action": "ready"}) as response:
        assert response.headers["Location"] == "/operator?msg=saved"
    assert state_of(centre, "1001").state is OperatorState.AVAILABLE
    await op1.post("/operator/state", {"action": "pause", "reason": "meal"})
    view = state_of(centre, "1001")
    assert (view.state, view.reason) == (OperatorState.PAUSED, "meal")
    await op1.post("/operator/state", {"action": "ready"})
    assert state_of(centre, "1001").state is OperatorState.AVAILABLE
    await op1.post("/operator/state", {"action": "logout"})
    assert state_of(centre, "1001").state is OperatorState.LOGGED_OUT
    async with await op1.post("/operator/state", {"action": "pause", "reason": "x"}) as r:
        assert r.headers["Location"] == "/operator?msg=invalid"


async def test_the_operator_page_offers_the_pause_reasons_the_phone_knows(sign_in, centre):
    op1 = await sign_in("op1")
    _, page = await op1.text("/operator")
    assert '<option value="prayer">sholat</option>' in page  # *133 on the phone
    assert '<option value="briefing">briefing</option>' in page  # *138
    await op1.post("/operator/state", {"action": "ready"})
    await op1.post("/operator/state", {"action": "pause", "reason": "prayer"})
    assert state_of(centre, "1001").reason == "prayer"


async def test_screen_pop_shows_the_call_and_the_numbers_past(sign_in, centre, writer, db):
    number = "081311112222"
    # an earlier call from the same number, disposed as a prank, and an active block
    centre.arrive("c-old", number, category="police")
    centre.connect("c-old", "1002")
    centre.end("c-old")
    centre.record(events.disposition("c-old", "1002", "prank", notes="laughing, hung up"))
    centre.record(events.caller_flag_set(number, "blocked", reason="pranks", set_by="sup"))
    await settled(writer)

    op1 = await sign_in("op1")
    async with op1.session.get("/operator/events") as stream:
        first = await first_event(stream, lambda d: True, 3)
        assert first["call"] is None
        centre.arrive("c-new", number, name="Ibu Sari", category="medical", flags=("silent",))
        centre.connect("c-new", "1001")
        pop = (await first_event(stream, lambda d: d["call"] is not None, 2))["call"]
    assert pop["call_id"] == "c-new"
    assert pop["live"] is True and pop["state"] == "connected"
    assert pop["number"] == number and pop["name"] == "Ibu Sari"
    assert pop["category"] == "Medis / ambulans"
    assert pop["flags"] == ["blocked", "silent"]
    assert pop["blocked"] is True
    assert pop["repeat_count"] == 1
    assert [(h["call_id"], h["verdict"], h["notes"]) for h in pop["history"]] == [
        ("c-old", "prank", "laughing, hung up")
    ]


async def test_after_the_call_the_disposition_is_recorded(sign_in, centre, writer, db):
    centre.arrive("c-1", "081300000001")
    centre.connect("c-1", "1001")
    op1 = await sign_in("op1")
    centre.end("c-1")
    await settled(writer)
    async with op1.session.get("/operator/events") as stream:
        pop = (await first_event(stream, lambda d: d["call"] is not None, 3))["call"]
    assert pop["call_id"] == "c-1" and pop["live"] is False, "awaiting its disposition"

    form = {
        "call_id": "c-1",
        "verdict": "emergency",
        "notes": "kecelakaan motor",
        "location": "Jl. Sudirman km 3",
    }
    async with await op1.post("/operator/disposition", form) as response:
        assert response.headers["Location"] == "/operator?msg=disposition_saved"
    await settled(writer)
    row = await db.fetchrow("SELECT * FROM dispositions WHERE call_id = 'c-1'")
    assert (row["operator_id"], row["verdict"], row["notes"]) == (
        "1001",
        "emergency",
        "kecelakaan motor",
    )
    assert row["location"] == '"Jl. Sudirman km 3"'
    async with op1.session.get("/operator/events") as stream:
        assert (await first_event(stream, lambda d: True, 3))["call"] is None


async def test_an_operator_cannot_dispose_of_another_operators_call(sign_in, centre, writer, db):
    centre.arrive("c-2", "081300000002")
    centre.connect("c-2", "1002")
    op1 = await sign_in("op1")
    for verdict in ("prank", "not-a-verdict"):
        async with await op1.post(
            "/operator/disposition", {"call_id": "c-2", "verdict": verdict}
        ) as response:
            assert response.headers["Location"] in (
                "/operator?msg=not_your_call",
                "/operator?msg=invalid",
            )
    await settled(writer)
    assert await db.fetchval("SELECT count(*) FROM dispositions") == 0


async def test_agency_buttons_ask_the_app_for_the_current_call(sign_in, centre):
    centre.arrive("c-3", "081300000003")
    centre.connect("c-3", "1001")
    op1 = await sign_in("op1")
    _, page = await op1.text("/operator")
    assert "Polisi 110" in page and 'value="ambulance"' in page
    async with await op1.post("/operator/agency", {"call_id": "c-3", "agency": "ambulance"}) as r:
        assert r.headers["Location"] == "/operator?msg=agency_added"
    assert centre.actions == [("add_agency", "c-3", "ambulance", "1001")]
    async with await op1.post("/operator/agency", {"call_id": "c-3", "agency": "pizza"}) as r:
        assert r.headers["Location"] == "/operator?msg=invalid"
    centre.offers_actions = False
    async with await op1.post("/operator/agency", {"call_id": "c-3", "agency": "sar"}) as r:
        assert r.headers["Location"] == "/operator?msg=not_available"


async def test_the_callback_list_and_call_back(sign_in, centre, writer, db):
    centre.arrive("c-gone", "081300000004", category="fire")
    centre.calls.pop("c-gone")
    centre.record(events.call_abandoned("c-gone", position=2))
    centre.record(events.call_ended("c-gone", "caller"))
    await settled(writer)
    op1 = await sign_in("op1")
    _, page = await op1.text("/operator")
    assert "081300000004" in page and "/operator/callbacks/c-gone/claim" in page
    async with await op1.post("/operator/callbacks/c-gone/claim") as response:
        assert response.headers["Location"] == "/operator?msg=callback_claimed"
    assert centre.actions == [("call_back", "1001", "081300000004", "c-gone")]
    # an app that cannot call back (no trunk configured): claimed here, dialled by hand
    centre.offers_actions = False
    async with await op1.post("/operator/callbacks/c-gone/claim") as response:
        assert response.headers["Location"] == "/operator?msg=not_available"
    await settled(writer)
    row = await db.fetchrow("SELECT status, owner FROM callbacks WHERE call_id='c-gone'")
    assert tuple(row) == ("claimed", "1001")
    await op1.post("/operator/callbacks/c-gone/done", {"outcome": "reached"})
    await settled(writer)
    row = await db.fetchrow("SELECT status, owner, outcome FROM callbacks WHERE call_id='c-gone'")
    assert tuple(row) == ("done", "1001", "reached")
    _, page = await op1.text("/operator")
    assert "/operator/callbacks/c-gone/claim" not in page
    async with await op1.post("/operator/callbacks/nope/claim") as response:
        assert response.status == 404


async def test_the_desk_follows_state_changes_live(sign_in, centre):
    op1 = await sign_in("op1")
    async with op1.session.get("/operator/events") as stream:
        await first_event(stream, lambda d: d["operator"] is None, 3)  # never logged in
        centre.operator_login("1001")
        await first_event(stream, lambda d: d["operator"]["state"] == "available", 2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        centre.operator_pause("1001", "briefing")
        data = await first_event(stream, lambda d: d["operator"]["state"] == "paused", 2)
        assert loop.time() - started < 1.0
    assert data["operator"]["reason"] == "briefing"
