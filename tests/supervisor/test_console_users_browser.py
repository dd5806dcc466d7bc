"""User management in a real browser on the real stack (Asterisk 22, the ARI app, PostgreSQL,
the console): an admin adds an operator, resets her password and sets a supervisor's listen
phone; the operator signs in and must change her password before anything else."""

from __future__ import annotations

import asyncpg
import pytest
from console_cdp import chromium, screenshot
from test_console_browser import sign_in, stack, viewport

from supervisor import store
from supervisor.roles import Role

pytestmark = pytest.mark.integration

__all__ = ["stack"]  # the real stack of the console's browser tests (a fixture)

FIRST = "kopi tubruk 112"
RESET = "teh manis 112"
OWN = "nasi goreng pedas"


async def test_an_admin_adds_an_operator_resets_her_password_and_sets_a_listen_phone(
    stack, tmp_path
):
    conn = await asyncpg.connect(stack.dsn)
    try:
        hashed = (await store.find_user(conn, "sup"))[1]
        await store.add_user(conn, "admin", Role.ADMIN, hashed)
        await store.update_user(
            conn, "sup", role=Role.SUPERVISOR, operator_id=None, phone=None, display_name=None
        )
    finally:
        await conn.close()
    sim = stack.config.operators[0]

    async with chromium() as browser:
        admin = await browser.new_tab()
        await viewport(admin, 1400, 900)
        await sign_in(admin, stack.url, "admin", "/board")
        assert await admin.js("document.getElementById('block-form') === null"), "no block form"
        assert await admin.js("document.getElementById('operators').dataset.canAct") == "no"
        await admin.click("nav a[href='/admin/users']")
        await admin.arrived("location.pathname === '/admin/users'")

        # A new operator, with a first password.
        await admin.fill("#new-username", "budi")
        await admin.fill("#new-name", "Budi Santoso")
        await admin.fill("#new-role", "operator")
        await admin.fill("#new-operator", sim.id)
        await admin.fill("#new-password", FIRST)
        await admin.click("#add-submit")
        await admin.arrived("location.search === '?msg=user_added'")
        assert "harus mengganti kata sandi" in (await admin.text("tr[data-user='budi']") or "")

        # ... whose password the admin then resets.
        await admin.fill("#reset-password-budi", RESET)
        await admin.click("#reset-budi")
        await admin.arrived("location.search === '?msg=password_reset'")

        # The supervisor's phone, rung to listen, whisper and barge.
        await admin.fill("#phone-sup", "Local/operator@siaga-test")
        await admin.click("#save-sup")
        await admin.arrived("location.search === '?msg=user_saved'")
        assert await admin.js("document.getElementById('phone-sup').value") == (
            "Local/operator@siaga-test"
        )
        await screenshot(admin, tmp_path / "users-page.png", whole_page=True)

        # Budi signs in with the reset password: the password form first, whatever he opens.
        desk = await browser.new_tab()
        await desk.goto(f"{stack.url}/login")
        await desk.fill("#username", "budi")
        await desk.fill("#password", RESET)
        await desk.click("#login-submit")
        await desk.arrived("location.pathname === '/password'")
        await desk.wait_for("document.getElementById('password-forced') !== null")
        assert await desk.js("document.querySelector('header nav') === null"), "no menu yet"
        await desk.goto(f"{stack.url}/operator")
        assert await desk.js("location.pathname") == "/password"
        await screenshot(desk, tmp_path / "password-forced.png")
        await desk.fill("#password-current", RESET)
        await desk.fill("#password-new", OWN)
        await desk.fill("#password-again", OWN)
        await desk.click("#password-submit")
        await desk.arrived("location.pathname === '/operator'")
        assert await desk.js("location.search") == "?msg=password_changed"
        assert sim.name in (await desk.text("h1") or "")

        # The supervisor now has a phone: the board offers listening.
        board = await browser.new_tab()
        await sign_in(board, stack.url, "sup", "/board")
        assert await board.js("document.getElementById('live-calls').dataset.hasPhone") == "yes"
        assert await board.js("document.getElementById('block-form') !== null")

        for tab in (admin, desk, board):
            assert tab.errors == [], "no script error, no CSP violation"

    conn = await asyncpg.connect(stack.dsn)
    try:
        budi = (await store.find_user(conn, "budi"))[0]
        rows = await conn.fetch(
            "SELECT username, action, target FROM console_audit"
            " WHERE action LIKE 'user_%' ORDER BY audit_id"
        )
    finally:
        await conn.close()
    assert (budi.operator_id, budi.must_change_password) == (sim.id, False)
    assert [tuple(r) for r in rows] == [
        ("admin", "user_add", "budi"),
        ("admin", "user_passwd_reset", "budi"),
        ("admin", "user_update", "sup"),
        ("budi", "user_passwd", "budi"),
    ]
