"""The disposition backlog in a real browser on the real stack (Asterisk 22, the ARI app,
PostgreSQL): two real calls end without a disposition; the desk lists both, oldest first; the
operator picks the older one, disposes of it, and only the other is left."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from console_cdp import Tab, chromium, screenshot
from test_console_browser import sign_in, stack

pytestmark = pytest.mark.integration

__all__ = ["stack"]  # the real stack's fixture, shared with the console's other browser tests


async def one_call(stack, desk: Tab, number: str) -> str:  # type: ignore[no-untyped-def]
    """A real caller dials 112, presses 1, talks to the operator, and hangs up; the operator
    ends her wrap-up at once."""
    call_id = f"t-{uuid.uuid4().hex[:12]}"
    await stack.ari.originate_to_dialplan(
        "Local/caller@siaga-test",
        channel_id=call_id,
        context="siaga-local",
        extension=stack.config.asterisk.emergency_number,
        caller_id=f'"Penelepon" <{number}>',
        variables={"SIAGA_DTMF": "1", "SIAGA_DELAY": "1", "SIAGA_HOLD": "60"},
    )
    await desk.wait_for(
        f"document.getElementById('pop-number').textContent === {number!r}", timeout=15
    )
    await desk.wait_for(
        "document.getElementById('pop-state').textContent === 'tersambung'", timeout=5
    )
    await stack.ari.hangup(call_id)
    for _ in range(200):
        if call_id not in stack.app.calls:
            break
        await asyncio.sleep(0.05)
    assert call_id not in stack.app.calls
    await desk.click("#btn-ready")  # ends the wrap-up
    await desk.arrived("location.search === '?msg=saved'")
    return call_id


async def test_the_desk_lists_the_dispositions_owed_and_disposing_of_one_removes_it(
    stack, tmp_path
):
    first_number, second_number = "081355500001", "081355500002"
    async with chromium() as browser:
        desk = await browser.new_tab()
        await sign_in(desk, stack.url, "sari", "/operator")
        await desk.click("#btn-ready")
        await desk.arrived("location.search === '?msg=saved'")
        first = await one_call(stack, desk, first_number)
        second = await one_call(stack, desk, second_number)

        # Both listed, oldest first; the state line counts them; the form is the last call's.
        rows = "document.querySelectorAll('#owed tbody tr')"
        await desk.wait_for(f"{rows}.length === 2", timeout=5)
        assert await desk.js(f"[...{rows}].map(r => r.dataset.key)") == [first, second]
        assert await desk.js(f"[...{rows}].map(r => r.cells[1].textContent)") == [
            first_number,
            second_number,
        ]
        assert await desk.text("#op-owed") == "2 disposisi terutang"
        await desk.wait_for(
            f"document.getElementById('pop-number').textContent === {second_number!r}"
        )
        assert await desk.js(f"{rows}[1].cells[3].textContent") == "di formulir"
        await screenshot(desk, tmp_path / "desk-owed.png", whole_page=True)

        # The operator picks the older call: the form is for it; she disposes of it.
        await desk.click(f"#owed tr[data-key={first!r}] a")
        await desk.arrived(f"location.search === '?call={first}'")
        await desk.wait_for(
            f"document.getElementById('pop-number').textContent === {first_number!r}"
        )
        await desk.click("#verdict-information")
        await desk.click("#disp-save")
        await desk.arrived("location.search === '?msg=disposition_saved'")
        await desk.wait_for(f"{rows}.length === 1", timeout=5)
        assert await desk.js(f"{rows}[0].dataset.key") == second
        assert await desk.text("#op-owed") == "1 disposisi terutang"
        await screenshot(desk, tmp_path / "desk-owed-after.png", whole_page=True)
        assert desk.errors == [], "no script error, no CSP violation"

    conn = await asyncpg.connect(stack.dsn)
    try:
        row = await conn.fetchrow("SELECT call_id, operator_id, verdict FROM dispositions")
    finally:
        await conn.close()
    assert tuple(row) == (first, "sim1", "information")
