"""The alarms over HTTP: on the board's and the desk's live streams, acknowledged by a
supervisor (recorded in the audit); and the wallboard page (real PostgreSQL)."""

from __future__ import annotations

import json

from console_support import first_event

from supervisor.web import Health


def keys(picture):
    return [a["key"] for a in picture["alerts"]]


def alert(picture, key):
    return next(a for a in picture["alerts"] if a["key"] == key)


async def test_an_emergency_call_past_its_target_alarms_on_the_board_and_the_desk(sign_in, centre):
    centre.operator_login("1001")
    centre.operator_pause("1001", "meal")
    sup = await sign_in("sup")
    async with sup.session.get("/board/events") as stream:
        board = await first_event(stream, lambda d: True, 3)
        assert board["alerts"] == [] and board["sound"] is True
        centre.arrive("c-late", "081300000020", category="medical", waited=11)
        board = await first_event(stream, lambda d: "overdue:medical" in keys(d), 1.0)
    overdue = alert(board, "overdue:medical")
    assert overdue["severity"] == "critical" and overdue["acknowledged_by"] is None
    assert overdue["text"].startswith("Medis / ambulans: 1 panggilan darurat melewati target 10 d")
    # The only operator is paused: nobody will answer.
    assert alert(board, "no_operator")["text"].startswith("1 panggilan menunggu")
    assert next(c for c in board["categories"] if c["code"] == "medical")["status"] == "over"
    op = await sign_in("op2")
    async with op.session.get("/operator/events") as stream:
        desk = await first_event(stream, lambda d: "overdue:medical" in keys(d), 3)
    assert set(keys(desk)) == {"overdue:medical", "no_operator"}


async def test_a_non_emergency_call_past_its_target_does_not_alarm(sign_in, centre):
    centre.operator_login("1001")
    centre.operator_pause("1001", "meal")  # else it would be offered to her
    centre.arrive("c-info", "081300000021", category="information", waited=70)
    sup = await sign_in("sup")
    async with sup.session.get("/board/events") as stream:
        board = await first_event(stream, lambda d: d["calls"], 3)
    assert keys(board) == ["no_operator"], "no overdue alarm, only nobody to answer"
    assert next(c for c in board["categories"] if c["code"] == "information")["status"] == "over"


async def test_an_acknowledgement_is_shown_and_recorded_in_the_audit(sign_in, centre, db):
    centre.arrive("c-late", "081300000022", category="fire", waited=15)
    sup = await sign_in("sup")
    async with await sup.post("/board/alerts/ack", {"key": "overdue:fire"}) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/board?msg=alert_acknowledged"
    async with sup.session.get("/board/events") as stream:
        board = await first_event(stream, lambda d: "overdue:fire" in keys(d), 3)
    assert alert(board, "overdue:fire")["acknowledged_by"] == "sup"
    assert alert(board, "no_operator")["acknowledged_by"] is None
    rows = await db.fetch(
        "SELECT username, role, target, detail::text AS detail FROM console_audit"
        " WHERE action = 'alert_ack'"
    )
    assert [(r["username"], r["role"], r["target"]) for r in rows] == [
        ("sup", "supervisor", "overdue:fire")
    ]
    detail = json.loads(rows[0]["detail"])
    assert (detail["kind"], detail["severity"]) == ("overdue", "critical")
    assert detail["text"].startswith("Kebakaran: 1 panggilan darurat")


async def test_an_alarm_that_is_not_active_cannot_be_acknowledged(sign_in, db):
    admin = await sign_in("admin")
    async with await admin.post("/board/alerts/ack", {"key": "overdue:medical"}) as response:
        assert response.headers["Location"] == "/board?msg=alert_gone"
    assert await db.fetchval("SELECT count(*) FROM console_audit WHERE action = 'alert_ack'") == 0


async def test_the_stack_unavailable_or_degraded_alarms(sign_in, served):
    served.console.health = lambda: Health(
        ari_connected=False, database_reachable=True, journal_ok=False
    )
    sup = await sign_in("sup")
    async with sup.session.get("/board/events") as stream:
        board = await first_event(stream, lambda d: d["alerts"], 3)
    assert [(a["key"], a["severity"]) for a in board["alerts"]] == [
        ("unavailable:ari", "critical"),
        ("degraded:journal", "warning"),
    ]
    assert alert(board, "unavailable:ari")["text"].startswith(
        "Aplikasi tidak terhubung ke Asterisk"
    )


async def test_the_wallboard_has_every_category_and_no_controls(sign_in, console_config):
    sup = await sign_in("sup")
    status, page = await sup.text("/wallboard")
    assert status == 200
    for category in console_config.categories:
        assert f'data-key="{category.code}"' in page
    assert 'id="wall-gauge"' in page and 'id="wall-operators"' in page
    assert "<form" not in page and "<button" not in page and "<nav" not in page
    async with await sup.get("/board?tv=1") as response:
        assert (response.status, response.headers["Location"]) == (303, "/wallboard")
