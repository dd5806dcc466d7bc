"""The reports page: db/reports.py figures by hour, day or month, with SVG charts."""

from __future__ import annotations

import re
from datetime import date, timedelta

from console_support import earlier_today, settled

from db import events
from supervisor.views.reports import report_range


async def test_reports_by_hour_with_charts(sign_in, centre, writer):
    for i in range(3):
        centre.arrive(f"c-{i}", f"08121111000{i}", category="police")
        centre.connect(f"c-{i}", "1001")
        centre.end(f"c-{i}")
    centre.record(events.disposition("c-0", "1001", "prank"))
    centre.record(events.disposition("c-1", "1001", "emergency"))
    centre.record(events.disposition("c-2", "1001", "emergency"))
    await settled(writer)
    sup = await sign_in("sup")
    status, body = await sup.text("/reports")
    assert status == 200
    total = re.search(r'<ul class="counts" id="report-total">(.*?)</ul>', body, re.S)[1]
    assert "Masuk: <strong>3</strong>" in total
    assert "Dijawab: <strong>3</strong>" in total
    assert "Tingkat layanan sesuai target: <strong>100%</strong>" in total
    assert "Tingkat layanan 15 s: <strong>100%</strong>" in total
    assert "Porsi iseng: <strong>33%</strong>" in total
    assert body.count('<svg class="chart"') == 2
    assert re.search(r'<rect class="bar-answered"[^>]*><title>[^<]*: Dijawab 3</title>', body)
    assert "<td>Polisi / keamanan</td><td>3</td>" in body
    assert 'id="report-operators"' in body and "Operator Satu" in body
    for by in ("day", "month"):
        status, body = await sup.text(f"/reports?by={by}")
        assert status == 200 and body.count('<svg class="chart"') == 2


def _table(body, table_id):
    found = re.search(rf'<table id="{table_id}">.*?</table>', body, re.S)
    assert found, table_id
    return re.sub(r">\s+<", "><", found[0])


async def test_time_to_a_human_and_service_level_by_route(sign_in, centre, writer):
    t0 = earlier_today(timedelta(minutes=5))  # the report is of today

    def at(seconds):
        return t0 + timedelta(seconds=seconds)

    # call, category, flags from the menu, flag set later, rang after, answered after (s)
    for call_id, category, menu_flags, later, ring, answer in (
        ("r-digit", "medical", [], None, 2, 4),
        ("r-silent", "general", ["silent"], None, 6, 12),
        ("r-over", "police", [], "overflow", 20, 25),
    ):
        centre.record(events.call_arrived(call_id, "0812" + call_id, at=at(0)))
        centre.record(events.call_classified(call_id, category, flags=menu_flags, at=at(1)))
        if later:
            centre.record(events.flag_set(call_id, later, at=at(1)))
        centre.record(events.call_offered(call_id, "1001", at=at(ring)))
        centre.record(events.call_connected(call_id, "1001", at=at(answer)))
        centre.record(events.call_ended(call_id, "caller", at=at(answer + 30)))
    # Gone in the menu after 8 s: no choice, never rang anyone.
    centre.record(events.call_arrived("r-menu", "0812555", at=at(0)))
    centre.record(events.call_abandoned("r-menu", at=at(8)))
    centre.record(events.call_ended("r-menu", "caller", at=at(8)))
    await settled(writer)
    sup = await sign_in("sup")
    status, body = await sup.text("/reports")
    assert status == 200
    total = re.search(r'<ul class="counts" id="report-total">(.*?)</ul>', body, re.S)[1]
    # Rang after 2, 6, 20 s; answered after 4, 12, 25 s (nearest rank of three calls).
    assert "Sampai operator berdering p50/p90/p99: <strong>6.0 / 20.0 / 20.0</strong>" in total
    assert "Sampai operator menjawab p50/p90/p99: <strong>12.0 / 25.0 / 25.0</strong>" in total
    human = _table(body, "report-human")
    assert "<tr><td>Jumlah</td><td>3</td><td>6.0</td><td>20.0</td><td>20.0</td><td>3</td>" in human
    assert (
        "<tr><td>Medis / ambulans</td><td>1</td><td>2.0</td><td>2.0</td><td>2.0</td>"
        "<td>1</td><td>4.0</td><td>4.0</td><td>4.0</td></tr>"
    ) in human
    routes = _table(body, "report-routes")
    rows = re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", routes)
    # route: received, answered, abandoned, short abandons, service level at each call's own
    # category's target (10 s for these) and within 15 / 20 s
    assert [(name, re.findall(r"<td>([^<]*)</td>", cells)[:7]) for name, cells in rows] == [
        ("Limpahan", ["1", "1", "0", "0", "0%", "0%", "0%"]),
        ("Tanpa pilihan", ["2", "1", "1", "0", "0%", "50%", "50%"]),
        ("Pilih menu", ["1", "1", "0", "0", "100%", "100%", "100%"]),
    ]
    # by category, at its own target (medical, police: 10 s) and at 15 / 20 s
    categories = _table(body, "report-categories")
    cells = dict(
        (name, re.findall(r"<td>([^<]*)</td>", rest)[4:8])
        for name, rest in re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", categories)
    )
    assert cells["Medis / ambulans"] == ["10.0", "100%", "100%", "100%"]  # 4 s
    assert cells["Polisi / keamanan"] == ["10.0", "0%", "0%", "0%"]  # 25 s
    assert cells["Darurat umum"] == ["10.0", "0%", "100%", "100%"]  # 12 s
    # the total against each one's own target: 1 of 4 (r-menu gone after 8 s counts)
    assert cells["Jumlah"] == ["-", "25%", "50%", "50%"]

    async with await sup.post("/lang", {"lang": "en", "next": "/reports"}) as response:
        assert response.status == 303
    _, body = await sup.text("/reports")
    assert "To an operator ringing p50/p90/p99: <strong>6.0 / 20.0 / 20.0</strong>" in body
    assert "<td>No choice in time</td>" in body and "Time to a human (s)" in body


def test_the_period_asked_for_is_made_sane():
    today = date(2025, 3, 10)
    assert report_range(None, None, None, today) == (today, today, "hour")
    assert report_range("2025-03-05", "2025-03-01", "day", today) == (
        date(2025, 3, 1),
        date(2025, 3, 5),
        "day",
    )
    first, last, by = report_range("2023-01-01", "2025-03-10", "hour", today)
    assert (last - first).days == 365 and by == "day"
    assert report_range("garbage", None, "week", today) == (today, today, "hour")
