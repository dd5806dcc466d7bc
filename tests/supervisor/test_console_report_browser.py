"""Reports in a real browser (headless Chromium) over the console and real PostgreSQL: the call
log is paged and sorted by clicking, the filters kept; the shift summary prints without the
console's frame, the handover notes on paper. No script error, no CSP violation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from console_cdp import chromium, screenshot
from console_support import PASSWORD, settled

from db import events

pytestmark = pytest.mark.integration


async def test_a_supervisor_pages_the_call_log_and_prints_the_shift_summary(
    served, users, centre, writer, tmp_path
):
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for n in range(55):
        call_id = f"b-{n:02d}"
        arrived = t0 + timedelta(seconds=n)
        connected = arrived + timedelta(seconds=n % 5)
        centre.record(events.call_arrived(call_id, f"0812{n:08d}", at=arrived))
        centre.record(events.call_classified(call_id, "medical", at=arrived))
        centre.record(events.call_connected(call_id, "1001", at=connected))
        centre.record(events.call_ended(call_id, "caller", at=connected + timedelta(seconds=20)))
    await settled(writer)
    async with chromium() as browser:
        tab = await browser.new_tab()
        await tab.goto(f"{served.url}/login")
        await tab.fill("#username", "sup")
        await tab.fill("#password", PASSWORD)
        await tab.click("#login-submit")
        await tab.arrived("location.pathname === '/board'")

        await tab.goto(f"{served.url}/calls?category=medical")
        rows = "document.querySelectorAll('#call-log tbody tr')"
        assert await tab.js(f"{rows}.length") == 50
        await tab.click("a.page-next")
        await tab.arrived(f"location.search.includes('page=2') && {rows}.length === 5")
        assert await tab.js("new URLSearchParams(location.search).get('category')") == "medical"

        await tab.click("a.sort[data-sort='wait']")
        await tab.arrived("new URLSearchParams(location.search).get('sort') === 'wait'")
        first = f"{rows}[0].dataset.callId"
        assert await tab.js(first) == "b-54"  # waited 4 s, the newest of those
        assert await tab.js("new URLSearchParams(location.search).get('page')") == "1"
        await tab.click("#search-submit")  # a new search keeps the order
        await tab.wait_for("document.readyState === 'complete'")
        assert await tab.js("new URLSearchParams(location.search).get('sort')") == "wait"
        await screenshot(tab, tmp_path / "call-log-by-wait.png", whole_page=True)

        await tab.goto(f"{served.url}/reports/shift")
        assert await tab.text("#shift-total strong") == "55"
        await tab.fill("#handover-notes", "Kebakaran di Pasar Senen masih ditangani.")
        await tab.send("Emulation.setEmulatedMedia", {"media": "print"})
        assert await tab.js("getComputedStyle(document.querySelector('header.top')).display") == (
            "none"
        )
        form = "document.querySelector('#print').closest('form')"
        assert await tab.js(f"getComputedStyle({form}).display") == "none"  # with its buttons
        assert await tab.js("getComputedStyle(document.querySelector('.print-only')).display") == (
            "block"
        )
        notes = await tab.js("document.querySelector('#handover-notes').value")
        assert notes.startswith("Kebakaran")
        await screenshot(tab, tmp_path / "shift-summary-print.png", whole_page=True)
        assert tab.errors == [], "no script error, no CSP violation"
