"""The reports page: db/reports.py figures by hour, day or month, with SVG charts."""

from __future__ import annotations

import re
from datetime import date

from console_support import settled

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
    assert "Tingkat layanan 10 s: <strong>100%</strong>" in total
    assert "Porsi iseng: <strong>33%</strong>" in total
    assert body.count('<svg class="chart"') == 2
    assert re.search(r'<rect class="bar-answered"[^>]*><title>[^<]*: Dijawab 3</title>', body)
    assert "<td>Polisi / keamanan</td><td>3</td>" in body
    assert 'id="report-operators"' in body and "Operator Satu" in body
    for by in ("day", "month"):
        status, body = await sup.text(f"/reports?by={by}")
        assert status == 200 and body.count('<svg class="chart"') == 2


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
