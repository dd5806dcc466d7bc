"""Reports over HTTP as each role: the report's CSV / XLSX exports (EXPORT, audited), the shift
summary (REPORTS), and the call log's pages, orders and full CSV export with notes and
location."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from console_support import earlier_today, settled
from openpyxl import load_workbook

from db import events


def _answer(centre, call_id, operator, *, arrived, wait, category="medical", verdict=None):
    centre.record(events.call_arrived(call_id, "0812" + call_id, at=arrived))
    centre.record(events.call_classified(call_id, category, at=arrived))
    connected = arrived + timedelta(seconds=wait)
    centre.record(events.call_offered(call_id, operator, at=connected))
    centre.record(events.call_connected(call_id, operator, at=connected))
    centre.record(events.call_ended(call_id, "caller", at=connected + timedelta(seconds=30)))
    if verdict:
        centre.record(events.disposition(call_id, operator, verdict, at=connected))


def _abandon(centre, call_id, *, arrived, wait, category="police"):
    centre.record(events.call_arrived(call_id, "0813" + call_id, at=arrived))
    centre.record(events.call_classified(call_id, category, at=arrived))
    gone = arrived + timedelta(seconds=wait)
    centre.record(events.call_abandoned(call_id, at=gone))
    centre.record(events.call_ended(call_id, "caller", at=gone))


async def test_report_exports_for_supervisor_and_admin_not_operators(sign_in, centre, writer, db):
    t0 = earlier_today(timedelta(minutes=30))  # the report is of today
    _answer(centre, "e-1", "1001", arrived=t0, wait=4)
    _answer(centre, "e-2", "1001", arrived=t0, wait=12, category="general")
    _abandon(centre, "e-3", arrived=t0, wait=40)
    await settled(writer)
    for name in ("sup", "admin"):
        browser = await sign_in(name)
        _, page = await browser.text("/reports")
        links = re.findall(r'href="(/reports\.csv\?[^"]*)"', page)
        assert len(links) == 5 and 'id="export-xlsx"' in page
        async with await browser.get(unescape(links[0])) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/csv")
            assert "attachment" in response.headers["Content-Disposition"]
            rows = list(csv.reader(io.StringIO(await response.text())))
        # the total: 3 received, 2 answered, 1 abandoned; at the targets (10 s): e-1 only; at
        # 15 s: e-1 and e-2
        assert rows[1][:8] == ["Jumlah", "3", "2", "1", "0", "", "33.3", "66.7"]
        async with await browser.get(unescape(links[-1])) as response:
            operators = list(csv.reader(io.StringIO(await response.text())))
        assert operators[0][0] == "Operator" and "Operator Satu" in operators[1]
        async with await browser.get("/reports.xlsx") as response:
            assert response.status == 200
            book = load_workbook(io.BytesIO(await response.read()))
        total = list(book["categories"].values)[1]
        assert total[:8] == ("Jumlah", 3, 2, 1, 0, None, 33.3, 66.7)
        assert (await browser.text("/reports.csv?table=nothing"))[0] == 404

    op1 = await sign_in("op1")
    for path in ("/reports.csv?table=operators", "/reports.xlsx", "/reports/shift", "/reports"):
        assert (await op1.text(path))[0] == 403, path
    _, page = await op1.text("/calls")
    assert "/reports" not in page
    audited = await db.fetch(
        "SELECT username, target FROM console_audit WHERE action = 'report_export'"
        " ORDER BY audit_id"
    )
    assert [tuple(r) for r in audited] == [
        (name, target)
        for name in ("sup", "admin")
        for target in ("categories.csv", "operators.csv", "report.xlsx")
    ]


async def test_shift_summary_for_the_handover(sign_in, centre, writer):
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    _answer(centre, "s-1", "1001", arrived=start + timedelta(minutes=5), wait=4, verdict="prank")
    _answer(centre, "s-2", "1001", arrived=start + timedelta(minutes=6), wait=30)  # owed
    _answer(centre, "s-3", "1002", arrived=start + timedelta(minutes=7), wait=9)  # owed
    _abandon(centre, "s-4", arrived=start + timedelta(minutes=8), wait=50)  # a callback
    _answer(centre, "s-old", "1002", arrived=start - timedelta(hours=1), wait=99)  # before
    await settled(writer)
    sup = await sign_in("sup")
    status, default = await sup.text("/reports/shift")
    assert status == 200 and 'type="datetime-local"' in default
    local = start.astimezone(ZoneInfo("Asia/Jakarta"))
    end = local + timedelta(hours=1)
    query = f"start={local:%Y-%m-%dT%H:%M}&end={end:%Y-%m-%dT%H:%M}"
    status, body = await sup.text("/reports/shift?" + query)
    assert status == 200
    total = re.search(r'<ul class="counts" id="shift-total">(.*?)</ul>', body, re.S)[1]
    assert "Masuk: <strong>4</strong>" in total and "Dijawab: <strong>3</strong>" in total
    # at the targets (10 s each): s-1 4 s, s-3 9 s of 3 answered and 1 abandoned
    assert "Tingkat layanan sesuai target: <strong>50%</strong>" in total
    assert "Tunggu terlama (d): <strong>50.0</strong>" in total
    assert '<strong id="open-callbacks">1</strong>' in total
    assert '<strong id="owed-total">2</strong>' in total
    assert "Operator Satu 1, Operator Dua 1" in body
    outcomes = re.search(r'<table id="report-outcomes">.*?</table>', body, re.S)[0]
    outcomes = re.sub(r">\s+<", "><", outcomes)
    assert "<tr><td>Jumlah</td><td>4</td><td>3</td><td>1</td><td>0</td>" in outcomes
    assert 'id="report-operators"' in body and 'id="handover-notes"' in body
    assert "data-print" in body


async def test_the_call_log_pages_and_sorts_keeping_the_filters(sign_in, centre, writer):
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for n in range(60):
        _answer(centre, f"p-{n:02d}", "1001", arrived=t0 + timedelta(seconds=n), wait=n % 7)
    _answer(centre, "p-fire", "1002", arrived=t0, wait=3, category="fire")
    await settled(writer)
    sup = await sign_in("sup")

    def shown(body):
        return re.findall(r'data-call-id="([^"]+)"', body)

    _, body = await sup.text("/calls?category=medical")
    assert len(shown(body)) == 50 and "60 panggilan, halaman 1 / 2" in body
    assert shown(body)[0] == "p-59"  # newest first
    following = unescape(re.search(r'href="/calls\?([^"]*)" class="page-next"', body)[1])
    assert parse_qs(following) == {
        "category": ["medical"], "sort": ["time"], "dir": ["desc"], "page": ["2"], "size": ["50"]
    }  # fmt: skip
    _, body = await sup.text("/calls?" + following)
    assert shown(body) == [f"p-{n:02d}" for n in range(9, -1, -1)]
    assert 'class="page-next"' not in body

    _, body = await sup.text("/calls?category=medical&size=100")
    assert len(shown(body)) == 60 and "halaman 1 / 1" in body

    # the wait heading: longest first, then flipped; the filter stays
    by_wait = unescape(re.search(r'href="/calls\?([^"]*)" class="sort" data-sort="wait"', body)[1])
    assert parse_qs(by_wait)["category"] == ["medical"]
    assert parse_qs(by_wait)["sort"] == ["wait"] and parse_qs(by_wait)["dir"] == ["desc"]
    _, body = await sup.text("/calls?" + by_wait)
    assert shown(body)[:3] == ["p-55", "p-48", "p-41"]  # wait 6 s, newest first among them
    flipped = unescape(re.search(r'href="/calls\?([^"]*)" class="sort" data-sort="wait"', body)[1])
    _, body = await sup.text("/calls?" + flipped)
    assert shown(body)[:3] == ["p-56", "p-49", "p-42"]  # wait 0 s
    _, body = await sup.text("/calls?sort=operator&dir=desc&size=100")
    assert shown(body)[0] == "p-fire"  # 1002 before 1001
    # an unknown order and size fall back to the defaults; a page past the end is the last
    _, body = await sup.text("/calls?sort=nonsense&page=999&size=7")
    assert len(shown(body)) == 11 and "61 panggilan, halaman 2 / 2" in body


async def test_the_csv_export_has_every_call_with_notes_and_location(sign_in, centre, writer):
    t0 = datetime.now(UTC) - timedelta(hours=2)
    for n in range(520):  # more than the old 500-row cap
        centre.record(events.call_arrived(f"x-{n:03d}", "0812", at=t0 + timedelta(seconds=n)))
    _answer(centre, "x-notes", "1001", arrived=t0, wait=2)
    centre.record(
        events.disposition(
            "x-notes", "1001", "emergency", notes="-cmd|' /C calc'!A0", location="@Jl. Sudirman"
        )
    )
    await settled(writer)
    sup = await sign_in("sup")
    async with await sup.get("/calls.csv") as response:
        assert response.status == 200
        rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert len(rows) == 521
    row = next(r for r in rows if r["call_id"] == "x-notes")
    assert row["notes"] == "'-cmd|' /C calc'!A0"  # a formula does not run
    assert row["location"] == "'@Jl. Sudirman"
    assert rows[0]["call_id"] == "x-519"  # newest first

    op1 = await sign_in("op1")
    assert (await op1.text("/calls.csv"))[0] == 403
