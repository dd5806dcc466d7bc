"""The admin's users page (HTTP, real PostgreSQL): adding a user who must replace the password
at the first sign-in, resetting a password, the role / operator id / phone, disabling and
enabling, the last admin kept, every change audited; and one's own password change."""

from __future__ import annotations

import asyncio
import json
from html import unescape

import asyncpg
from console_support import PASSWORD

from supervisor import store
from supervisor.i18n import translate
from supervisor.security import verify_password

NEW = "kopi tubruk 112"
NEWER = "teh manis hangat"


async def audits(db: asyncpg.Connection, action: str) -> list[tuple[str, str, dict[str, str]]]:
    rows = await db.fetch(
        "SELECT username, target, detail::text AS detail FROM console_audit"
        " WHERE action = $1 ORDER BY audit_id",
        action,
    )
    return [(r["username"], r["target"], json.loads(r["detail"])) for r in rows]


def problem_shown(body: str, code: str) -> bool:
    text = translate(f"users.problem.{code}", "id").format(n=10)
    return text in unescape(body)


async def add_operator(admin, username: str = "sari", **changes: str):
    form = {
        "username": username,
        "display_name": "Sari",
        "role": "operator",
        "operator_id": "1001",
        "phone": "",
        "password": NEW,
        **changes,
    }
    return await admin.post("/admin/users", form)


async def test_an_added_user_must_replace_the_password_before_anything_else(sign_in, anonymous, db):
    admin = await sign_in("admin")
    async with await add_operator(admin) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/admin/users?msg=user_added"
    user, hashed = await store.find_user(db, "sari")
    assert (user.role.value, user.operator_id, user.display_name) == ("operator", "1001", "Sari")
    assert user.must_change_password and verify_password(hashed, NEW)
    assert await audits(db, "user_add") == [
        ("admin", "sari", {"role": "operator", "operator_id": "1001"})
    ]

    sari = anonymous
    async with await sari.login("sari", NEW) as response:
        assert response.headers["Location"] == "/password"
    # Every page and action leads to the password form until the password is replaced.
    async with await sari.get("/operator", headers={"Accept": "text/html"}) as response:
        assert (response.status, response.headers["Location"]) == (303, "/password")
    async with await sari.post("/operator/state", {"action": "ready"}) as response:
        assert response.status == 403
    status, body = await sari.text("/password")
    assert status == 200 and 'id="password-forced"' in body and 'href="/calls"' not in body

    refusals = [
        ({"current": "wrong password", "new": NEWER, "again": NEWER}, "password.wrong_current"),
        ({"current": NEW, "new": NEWER, "again": NEWER + "x"}, "password.differ"),
        ({"current": NEW, "new": "short", "again": "short"}, "users.problem.password_short"),
        ({"current": NEW, "new": NEW, "again": NEW}, "password.same"),
    ]
    for form, key in refusals:
        async with await sari.post("/password", form) as response:
            assert response.status == 400, key
            assert translate(key, "id").format(n=10) in unescape(await response.text()), key
    async with await sari.post("/password", {"current": NEW, "new": NEWER, "again": NEWER}) as r:
        assert (r.status, r.headers["Location"]) == (303, "/operator?msg=password_changed")
    user, hashed = await store.find_user(db, "sari")
    assert not user.must_change_password and verify_password(hashed, NEWER)
    assert (await sari.text("/operator"))[0] == 200, "the new session is signed in"
    assert await audits(db, "user_passwd") == [("sari", "sari", {})]


async def test_adding_refuses_what_the_cli_refuses(sign_in, db):
    admin = await sign_in("admin")
    before = await store.count_users(db)
    cases = [
        ({"username": "<b>"}, "username"),
        ({"operator_id": ""}, "operator_needed"),
        ({"role": "supervisor"}, "operator_only"),
        ({"operator_id": "9999"}, "operator_unknown"),
        ({"role": "admin", "operator_id": "", "phone": "PJSIP/1&PJSIP/2"}, "phone"),
        ({"role": "boss"}, "role"),
        ({"password": "short"}, "password_short"),
        ({"password": "siaga-dev-console"}, "password_dev"),
        ({"username": "op1"}, "exists"),
    ]
    for changes, code in cases:
        async with await add_operator(admin, **changes) as response:
            assert response.status == 400, code
            body = await response.text()
            assert problem_shown(body, code), code
            if code != "username":  # what was typed stays in the form, but not the password
                assert f'value="{changes.get("username", "sari")}"' in body
            assert NEW not in body
    assert await store.count_users(db) == before
    assert await audits(db, "user_add") == []


async def test_a_reset_password_ends_the_users_sessions_and_must_be_replaced(sign_in, db):
    admin = await sign_in("admin")
    op1 = await sign_in("op1")
    async with await admin.post("/admin/users/op1/password", {"password": "short"}) as response:
        assert response.status == 400
    async with await admin.post("/admin/users/op1/password", {"password": NEW}) as response:
        assert response.headers["Location"] == "/admin/users?msg=password_reset"
    async with await op1.get("/calls") as response:
        assert response.status == 401, "signed out at once"
    async with await op1.login("op1", PASSWORD) as response:
        assert response.status == 401, "the old password is gone"
    async with await op1.login("op1", NEW) as response:
        assert response.headers["Location"] == "/password"
    assert await audits(db, "user_passwd_reset") == [("admin", "op1", {})]
    async with await admin.post("/admin/users/nobody/password", {"password": NEW}) as response:
        assert response.status == 404


async def test_a_disabled_user_is_signed_out_at_once_and_enabled_again(sign_in, db):
    admin = await sign_in("admin")
    sup = await sign_in("sup")
    async with await admin.post("/admin/users/sup/disable") as response:
        assert response.headers["Location"] == "/admin/users?msg=user_disabled"
    async with await sup.get("/board") as response:
        assert response.status == 401
    async with await sup.login("sup") as response:
        assert response.status == 401
    _, body = await admin.text("/admin/users")
    assert 'action="/admin/users/sup/enable"' in body
    async with await admin.post("/admin/users/sup/enable") as response:
        assert response.headers["Location"] == "/admin/users?msg=user_enabled"
    async with await sup.login("sup") as response:
        assert response.status == 303
    assert [a[1] for a in await audits(db, "user_disable")] == ["sup"]
    assert [a[1] for a in await audits(db, "user_enable")] == ["sup"]


async def test_the_role_operator_id_and_listen_phone_are_set_and_used(sign_in, centre, db):
    admin = await sign_in("admin")
    account = {"role": "supervisor", "phone": "PJSIP/2042", "display_name": "Bu Rina"}
    async with await admin.post("/admin/users/sup_nophone/update", account) as response:
        assert response.headers["Location"] == "/admin/users?msg=user_saved"
    user, _ = await store.find_user(db, "sup_nophone")
    assert (user.phone, user.display_name) == ("PJSIP/2042", "Bu Rina")
    assert await audits(db, "user_update") == [
        ("admin", "sup_nophone", {"phone": "PJSIP/2042", "display_name": "Bu Rina"})
    ]
    # The supervisor's phone is rung when they listen in.
    centre.arrive("c-1", "081200000001")
    centre.connect("c-1", "1001")
    sup = await sign_in("sup_nophone")
    async with await sup.post("/board/calls/c-1/listen", {"mode": "listen"}) as response:
        assert response.headers["Location"] == "/board?msg=listening"
    assert centre.actions == [("listen", "sup_nophone", "PJSIP/2042", "c-1", "listen")]

    # An operator becomes a supervisor: the operator id goes with the operator role.
    refused = {"role": "supervisor", "operator_id": "1002"}
    async with await admin.post("/admin/users/op2/update", refused) as response:
        assert response.status == 400
    async with await admin.post("/admin/users/op2/update", {"role": "supervisor"}) as response:
        assert response.status == 303
    op2, _ = await store.find_user(db, "op2")
    assert (op2.role.value, op2.operator_id) == ("supervisor", None)
    assert (await audits(db, "user_update"))[-1][2] == {"role": "supervisor", "operator_id": "-"}


async def test_the_last_enabled_admin_is_kept(sign_in, db, pg_dsn):
    admin = await sign_in("admin")
    for path, form in (
        ("/admin/users/admin/disable", {}),
        ("/admin/users/admin/update", {"role": "supervisor"}),
    ):
        async with await admin.post(path, form) as response:
            assert response.status == 400, path
            assert problem_shown(await response.text(), "last_admin")
    user, _ = await store.find_user(db, "admin")
    assert user.role.value == "admin" and not user.disabled

    # With a second admin, one may step down; two admins disabling each other at the same
    # moment: one of them stays.
    async with await admin.post("/admin/users/sup/update", {"role": "admin"}) as response:
        assert response.status == 303
    pool = await asyncpg.create_pool(pg_dsn, min_size=2, max_size=2)
    try:
        results = await asyncio.gather(
            store.set_disabled(pool, "admin", True),
            store.set_disabled(pool, "sup", True),
            return_exceptions=True,
        )
    finally:
        await pool.close()
    assert sorted(type(r).__name__ for r in results) == ["LastAdminError", "NoneType"]
    enabled_admins = [u for u in await store.list_users(db) if u.role.value == "admin"]
    assert [u.disabled for u in enabled_admins].count(False) == 1


async def test_only_admins_manage_users(sign_in):
    for name in ("op1", "sup"):
        browser = await sign_in(name)
        async with await browser.post("/admin/users/op2/disable") as response:
            assert response.status == 403
        _, body = await browser.text("/calls")
        assert 'href="/admin/users"' not in body
    admin = await sign_in("admin")
    _, body = await admin.text("/calls")
    assert 'href="/admin/users"' in body
    status, body = await admin.text("/admin/users")
    assert status == 200
    for name in ("op1", "op2", "sup", "sup_nophone", "admin"):
        assert f'data-user="{name}"' in body
    assert 'value="PJSIP/2001"' in body, "the supervisor's phone"
