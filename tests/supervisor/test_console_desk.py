"""The operator's desk over HTTP: own state, the screen pop of the current call with what the
records know about the number, the disposition written through the journal, agencies and
callbacks."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta

from console_cdp import chromium
from console_support import PASSWORD, first_event, settled

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
    # gave up after 5 s (the list leaves out callers who hung up within 2 s)
    later = datetime.now(UTC) + timedelta(seconds=5)
    centre.record(events.call_abandoned("c-gone", position=2, at=later))
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


async def classifications(db, call_id):
    return await db.fetch(
        "SELECT operator_id, data FROM call_events WHERE call_id = $1"
        " AND kind = 'call_classified' ORDER BY at, event_id",
        call_id,
    )


async def desk_pop(browser):
    async with browser.session.get("/operator/events") as stream:
        return (await first_event(stream, lambda d: d["call"] is not None, 3))["call"]


async def test_the_operator_sets_the_category_of_an_unclassified_call(sign_in, centre, writer, db):
    # Queued as `general` flagged unclassified (nothing pressed in time), answered so.
    centre.arrive("c-u", "081300000010", category="general", flags=("silent", "unclassified"))
    centre.connect("c-u", "1001")
    await settled(writer)
    op1 = await sign_in("op1")
    _, page = await op1.text("/operator")
    assert '<option value="medical">Medis / ambulans</option>' in page
    pop = await desk_pop(op1)
    assert (pop["category_code"], pop["unclassified"]) == ("general", True)

    async with await op1.post("/calls/c-u/category", {"category": "medical"}) as response:
        assert response.headers["Location"] == "/operator?msg=category_saved"
    await settled(writer)
    row = await db.fetchrow("SELECT category, priority, flags FROM calls WHERE call_id = 'c-u'")
    assert (row["category"], row["priority"]) == ("medical", 1)
    assert set(row["flags"]) == {"silent", "unclassified"}, "the records keep that it was"
    ivr, operator = await classifications(db, "c-u")
    assert ivr["operator_id"] is None and '"category": "general"' in ivr["data"]
    assert operator["operator_id"] == "1001"
    assert json.loads(operator["data"]) == {
        "category": "medical",
        "priority": 1,
        "flags": ["silent", "unclassified"],
        "source": "operator",
    }
    pop = await desk_pop(op1)
    assert pop["category"] == "Medis / ambulans"
    assert (pop["category_code"], pop["unclassified"]) == ("medical", False)

    # The call log's timeline shows both classifications, the operator's with its operator.
    _, page = await op1.text("/calls/c-u")
    rows = re.findall(
        r'<tr data-kind="call_classified"><td>[^<]*</td><td>kategori ditetapkan</td>(.*?)</tr>',
        page,
        re.S,
    )
    assert len(rows) == 2
    assert "<td></td>" in rows[0] and "kategori: Darurat umum" in rows[0]
    assert '<td title="1001">Operator Satu</td>' in rows[1]
    assert "kategori: Medis / ambulans" in rows[1]
    assert "oleh: operator di konsol" in rows[1]


async def test_the_category_can_be_set_while_the_call_awaits_its_disposition(
    sign_in, centre, writer, db
):
    centre.arrive("c-d", "081300000011", category="general", flags=("unclassified",))
    centre.connect("c-d", "1001")
    centre.end("c-d")
    await settled(writer)
    op1 = await sign_in("op1")
    pop = await desk_pop(op1)
    assert (pop["live"], pop["category_code"], pop["unclassified"]) == (False, "general", True)
    async with await op1.post("/calls/c-d/category", {"category": "fire"}) as response:
        assert response.headers["Location"] == "/operator?msg=category_saved"
    await settled(writer)
    assert await db.fetchval("SELECT category FROM calls WHERE call_id = 'c-d'") == "fire"
    pop = await desk_pop(op1)
    assert (pop["category"], pop["unclassified"]) == ("Kebakaran", False)


async def test_only_the_calls_operator_or_a_supervisor_sets_its_category(
    sign_in, centre, writer, db
):
    centre.arrive("c-o", "081300000012", category="general", flags=("unclassified",))
    centre.connect("c-o", "1002")
    await settled(writer)
    op1 = await sign_in("op1")
    async with await op1.post("/calls/c-o/category", {"category": "police"}) as response:
        assert response.status == 403
    async with await op1.post("/calls/nope/category", {"category": "police"}) as response:
        assert response.status == 404
    await settled(writer)
    assert len(await classifications(db, "c-o")) == 1
    assert await db.fetchval("SELECT category FROM calls WHERE call_id = 'c-o'") == "general"

    sup = await sign_in("sup")
    async with await sup.post("/calls/c-o/category", {"category": "police"}) as response:
        assert response.headers["Location"] == "/calls/c-o?msg=category_saved"
    await settled(writer)
    assert await db.fetchval("SELECT category FROM calls WHERE call_id = 'c-o'") == "police"
    audit = await db.fetchrow(
        "SELECT username, target FROM console_audit WHERE action = $1", "call_classify"
    )
    assert tuple(audit) == ("sup", "c-o")


async def test_a_bad_category_or_a_missing_csrf_token_changes_nothing(sign_in, centre, writer, db):
    centre.arrive("c-b", "081300000013", category="general", flags=("unclassified",))
    centre.connect("c-b", "1001")
    await settled(writer)
    op1 = await sign_in("op1")
    for bad in ("pizza", ""):
        async with await op1.post("/calls/c-b/category", {"category": bad}) as response:
            assert response.headers["Location"] == "/operator?msg=bad_category"
    _, page = await op1.text("/operator?msg=bad_category")
    assert "Kategori tidak dikenal" in page
    for token in ("", "forged"):
        async with await op1.post(
            "/calls/c-b/category", {"category": "medical"}, csrf=token
        ) as response:
            assert response.status == 403
    await settled(writer)
    assert len(await classifications(db, "c-b")) == 1
    assert await db.fetchval("SELECT category FROM calls WHERE call_id = 'c-b'") == "general"


async def test_the_desk_asks_for_the_category_of_an_unclassified_call_in_a_browser(
    served, users, centre, writer, db
):
    centre.arrive("c-w", "081300000014", category="general", flags=("unclassified",))
    centre.connect("c-w", "1001")
    async with chromium() as browser:
        tab = await browser.new_tab()
        await tab.goto(f"{served.url}/login")
        await tab.fill("#username", "op1")
        await tab.fill("#password", PASSWORD)
        await tab.click("#login-submit")
        await tab.arrived("location.pathname === '/operator'")
        await tab.wait_for("!document.getElementById('pop').hidden")
        await tab.wait_for("document.getElementById('category-form').classList.contains('urgent')")
        assert await tab.js("document.getElementById('category-unclassified').hidden") is False
        assert await tab.js("document.getElementById('category-select').value") == "general"
        await tab.fill("#category-select", "medical")
        await tab.click("#category-save")
        await tab.arrived("location.search === '?msg=category_saved'")
        await tab.wait_for("document.getElementById('pop-category').textContent !== ''")
        await tab.wait_for(
            "!document.getElementById('category-form').classList.contains('urgent')", timeout=4
        )
        assert await tab.text("#pop-category") == "Medis / ambulans"
        assert await tab.js("document.getElementById('category-select').value") == "medical"
        assert tab.errors == [], "no script error, no CSP violation"
    await settled(writer)
    assert await db.fetchval("SELECT category FROM calls WHERE call_id = 'c-w'") == "medical"
