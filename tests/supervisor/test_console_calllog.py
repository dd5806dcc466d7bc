"""The call log over HTTP: search, a call's page, CSV export, recordings only for supervisors
and every access audited; hostile caller names shown as text everywhere."""

from __future__ import annotations

import csv
import io
import wave
from datetime import UTC, datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import asyncpg
from console_support import first_event, settled

from db import events

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


async def answered_call(
    centre,
    call_id,
    number,
    operator,
    *,
    name="",
    category="medical",
    flags=(),
    verdict=None,
    notes=None,
):
    centre.arrive(call_id, number, name=name, category=category, flags=flags)
    centre.connect(call_id, operator)
    centre.end(call_id)
    if verdict:
        centre.record(events.disposition(call_id, operator, verdict, notes=notes))


async def test_search_by_number_category_operator_outcome_verdict_flags_and_date(
    sign_in, centre, writer
):
    await answered_call(centre, "c-1", "081211110001", "1001", category="fire", verdict="prank")
    await answered_call(
        centre,
        "c-2",
        "081211110002",
        "1002",
        category="medical",
        flags=("silent",),
        verdict="silent",
    )
    centre.arrive("c-3", "081299990003", category="police")
    centre.calls.pop("c-3")
    centre.record(events.call_abandoned("c-3"))
    await settled(writer)
    sup = await sign_in("sup")

    async def found(query):
        status, body = await sup.text("/calls?" + query)
        assert status == 200
        return {cid for cid in ("c-1", "c-2", "c-3") if f'data-call-id="{cid}"' in body}

    assert await found("") == {"c-1", "c-2", "c-3"}
    assert await found("number=1111") == {"c-1", "c-2"}
    assert await found("category=fire") == {"c-1"}
    assert await found("operator=1002") == {"c-2"}
    assert await found("outcome=abandoned") == {"c-3"}
    assert await found("verdict=prank") == {"c-1"}
    assert await found("flag=silent") == {"c-2"}
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Jakarta")).date()
    assert await found(f"from={today}&to={today}") == {"c-1", "c-2", "c-3"}
    assert await found(f"from={today + timedelta(days=1)}") == set()
    status, body = await sup.text("/calls?from=yesterday")
    assert status == 200 and "Isian tidak valid" in body


async def test_operators_see_only_their_own_calls(sign_in, centre, writer):
    await answered_call(centre, "c-mine", "081211110011", "1001")
    await answered_call(centre, "c-theirs", "081211110012", "1002")
    await settled(writer)
    op1 = await sign_in("op1")
    _, body = await op1.text("/calls?operator=1002")  # the operator filter is not theirs to set
    assert 'data-call-id="c-mine"' in body and 'data-call-id="c-theirs"' not in body


async def test_a_calls_page_has_its_timeline_and_dispositions(sign_in, centre, writer):
    await answered_call(
        centre, "c-page", "081211110021", "1001", verdict="emergency", notes="pingsan di pasar"
    )
    later = datetime.now(UTC) + timedelta(seconds=1)
    centre.record(events.disposition("c-page", "1001", "information", notes="koreksi", at=later))
    await settled(writer)
    sup = await sign_in("sup")
    status, body = await sup.text("/calls/c-page")
    assert status == 200
    for kind in ("call_arrived", "call_classified", "call_queued", "call_connected", "call_ended"):
        assert kind in body
    assert "pingsan di pasar" in body and "koreksi" in body
    assert body.index("koreksi") < body.index("pingsan di pasar"), "newest disposition first"
    assert (await sup.text("/calls/no-such-call"))[0] == 404
    assert (await sup.text("/calls/..%2F..%2Fetc%2Fpasswd"))[0] == 404


def write_wav(path):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x01" * 8000)


async def test_recordings_play_for_supervisors_only_and_every_access_is_audited(
    sign_in, centre, writer, served, db
):
    await answered_call(centre, "c-rec", "081211110031", "1001")
    await settled(writer)
    write_wav(served.recordings / "c-rec.wav")
    sup = await sign_in("sup")
    _, page = await sup.text("/calls/c-rec")
    assert '<audio controls preload="none" src="/calls/c-rec/recording"' in page
    async with await sup.get("/calls/c-rec/recording") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "audio/wav"
        audio = await response.read()
    assert audio == (served.recordings / "c-rec.wav").read_bytes()
    async with await sup.get("/calls/c-rec/recording", headers={"Range": "bytes=0-99"}) as r:
        assert r.status == 206 and len(await r.read()) == 100
    rows = await db.fetch(
        "SELECT username, role, action, target, detail->>'found' AS found FROM console_audit"
        " WHERE action = 'recording_play' ORDER BY audit_id"
    )
    played = ("sup", "supervisor", "recording_play", "c-rec", "true")
    assert [tuple(r) for r in rows] == [played, played], "the full file and the range"

    for name in ("op1", "admin"):
        browser = await sign_in(name)
        async with await browser.get("/calls/c-rec/recording") as response:
            assert response.status == 403
            assert b"RIFF" not in await response.read()
        _, page = await browser.text("/calls/c-rec")
        assert "/calls/c-rec/recording" not in page
    assert (
        await db.fetchval("SELECT count(*) FROM console_audit WHERE action='recording_play'") == 2
    )
    # the audit cannot be edited afterwards
    try:
        await db.execute("DELETE FROM console_audit")
    except asyncpg.PostgresError as exc:
        refused = str(exc)
    assert "append-only" in refused


async def test_csv_export_is_audited_and_safe_for_spreadsheets(sign_in, centre, writer, db):
    await answered_call(
        centre,
        "c-csv",
        "+6281211110041",
        "1001",
        name='=HYPERLINK("x")',
        verdict="complaint",
        notes="n",
    )
    await settled(writer)
    sup = await sign_in("sup")
    async with await sup.get("/calls.csv?number=1111004") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert len(rows) == 1
    row = rows[0]
    assert row["call_id"] == "c-csv"
    assert row["caller_number"] == "+6281211110041"  # a number stays a number
    assert row["caller_name"] == '\'=HYPERLINK("x")'  # a formula does not run
    assert row["verdict"] == "complaint"
    audit = await db.fetchrow(
        "SELECT username, detail FROM console_audit WHERE action='calls_export'"
    )
    assert audit["username"] == "sup" and '"rows": 1' in audit["detail"]


async def test_a_hostile_caller_name_is_text_everywhere(sign_in, centre, writer):
    centre.record(events.caller_flag_set("081200000666", "blocked", reason=XSS, set_by="sup"))
    await answered_call(
        centre, "c-xss", "081200000666", "1001", name=XSS, verdict="prank", notes=XSS
    )
    await settled(writer)
    sup = await sign_in("sup")
    op1 = await sign_in("op1")
    pages = [
        (sup, "/calls"),
        (sup, "/calls/c-xss"),
        (sup, "/board"),
        (op1, "/calls"),
        (op1, "/calls/c-xss"),
    ]
    for browser, path in pages:
        status, body = await browser.text(path)
        assert status == 200, path
        assert XSS not in body, path
        assert "<script>alert" not in body, path
        assert XSS_ESCAPED in body, path
    # what the browser renders itself comes as JSON data (set as text by console.js)
    centre.arrive("c-xss-live", "081200000666", name=XSS)
    centre.connect("c-xss-live", "1001")
    async with op1.session.get("/operator/events") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        pop = (await first_event(stream, lambda d: d["call"] is not None, 3))["call"]
    assert pop["name"] == XSS and pop["history"][0]["notes"] == XSS
    async with sup.session.get("/board/events") as stream:
        board = await first_event(stream, lambda d: d["calls"], 3)
    assert board["calls"][0]["name"] == XSS
    # console.js never hands server data to the HTML parser
    script = resources.files("supervisor").joinpath("static/console.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
