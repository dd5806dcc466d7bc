"""Signing in: hashed passwords, safe session cookies, throttled guessing, disabled users,
sessions that end, and no development password outside development mode."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestServer
from console_support import PASSWORD, Browser, console_settings

from supervisor import store
from supervisor.console import Console, InsecureConsoleError
from supervisor.roles import Role
from supervisor.security import DEV_PASSWORD, LoginLimiter, hash_password, token_digest
from supervisor.web import Health, create_app


async def test_sign_in_sets_an_httponly_samesite_cookie_whose_token_is_not_stored(
    anonymous, users, db
):
    response = await anonymous.login("sup")
    assert response.status == 303
    assert response.headers["Location"] == "/board"
    cookie = response.cookies["siaga_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    token = cookie.value
    stored = await db.fetch("SELECT token_digest FROM console_sessions")
    assert [bytes(r["token_digest"]) for r in stored] == [token_digest(token)]
    hashes = await db.fetch("SELECT password_hash FROM console_users")
    assert all(h["password_hash"].startswith("$argon2id$") for h in hashes)
    assert all(PASSWORD not in h["password_hash"] for h in hashes)


async def test_roles_land_on_their_pages_and_next_stays_on_this_site(served, users):
    for name, home in (("op1", "/operator"), ("admin", "/board")):
        browser = Browser(served.url)
        assert (await browser.login(name)).headers["Location"] == home
        await browser.close()
    browser = Browser(served.url)
    async with browser.session.get("/login?next=/calls%3Fnumber%3D08") as page:
        body = await page.text()
    assert 'name="next" value="/calls?number=08"' in body
    async with browser.session.get("/login?next=//evil.example/") as page:
        assert 'name="next" value=""' in await page.text()
    await browser.close()


async def test_wrong_passwords_are_refused_and_audited(anonymous, users, db):
    for name, password in (("sup", "wrong password"), ("nobody", PASSWORD)):
        response = await anonymous.login(name, password)
        assert response.status == 401
        assert "siaga_session" not in response.cookies
    rows = await db.fetch("SELECT username, action FROM console_audit ORDER BY audit_id")
    assert [(r["username"], r["action"]) for r in rows] == [
        ("sup", "login_failed"),
        ("nobody", "login_failed"),
    ]


class Clock:
    """The login limiter's clock, moved by the test (no sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_right_password_at_the_users_own_desk_works_while_their_name_is_guessed(
    served, users
):
    clock = Clock()
    served.console.limiter = LoginLimiter(clock=clock)
    desk = Browser(served.url, source="127.0.0.2")
    assert (await desk.login("op1")).status == 303  # op1's desk, at the start of the shift
    await desk.close()
    guesser = Browser(served.url, source="127.0.0.3")
    for _ in range(5):
        clock.now += 31
        assert (await guesser.login("op1", "not the password")).status == 401
    desk = Browser(served.url, source="127.0.0.2")
    assert (await desk.login("op1")).status == 303, "not locked out by someone else's guesses"
    await desk.close()
    # at a desk op1 never used, the wait is a few seconds, not minutes
    elsewhere = Browser(served.url, source="127.0.0.4")
    response = await elsewhere.login("op1")
    assert response.status == 429
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 5
    clock.now += wait
    assert (await elsewhere.login("op1")).status == 303
    await elsewhere.close()
    await guesser.close()


async def test_one_address_guessing_waits_longer_and_longer(served, users):
    clock = Clock()
    served.console.limiter = LoginLimiter(clock=clock)
    browser = Browser(served.url)
    browser.session.cookie_jar.update_cookies({"siaga_lang": "en"})
    waits = []
    for _ in range(40):
        response = await browser.login("op1", "not the password")
        if response.status == 429:
            wait = int(response.headers["Retry-After"])
            unit = "second" if wait == 1 else "seconds"
            assert f"Try again in {wait} {unit}." in await response.text()
            # held attempts do not lengthen the wait
            assert (await browser.login("op1", "again")).headers["Retry-After"] == str(wait)
            waits.append(wait)
            if len(waits) == 7:
                break
            clock.now += wait
        else:
            assert response.status == 401
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    # the guessing address is held even with the right password...
    response = await browser.login("op1")
    assert response.status == 429
    # ...but another operator at the same desk is not
    assert (await browser.login("op2")).status == 303
    await browser.close()


async def test_failed_and_held_logins_are_audited_with_source_and_delay(served, users, db):
    clock = Clock()
    served.console.limiter = LoginLimiter(clock=clock)
    browser = Browser(served.url, source="127.0.0.5")
    for _ in range(3):
        assert (await browser.login("sup", "not the password")).status == 401
    response = await browser.login("sup")
    assert response.status == 429
    assert "Coba lagi dalam 1 detik." in await response.text()
    await browser.close()
    rows = await db.fetch(
        "SELECT username, action, client, detail FROM console_audit ORDER BY audit_id"
    )
    assert [(r["username"], r["action"], r["client"]) for r in rows] == [
        ("sup", "login_failed", "127.0.0.5"),
        ("sup", "login_failed", "127.0.0.5"),
        ("sup", "login_failed", "127.0.0.5"),
        ("sup", "login_throttled", "127.0.0.5"),
    ]
    details = [json.loads(r["detail"]) for r in rows]
    assert details == [
        {"delay_seconds": 0.0},
        {"delay_seconds": 0.0},
        {"delay_seconds": 1.0},  # the third failure earns the first delay
        {"delay_seconds": 1.0, "limit": "user_at_source"},
    ]


async def test_disabling_a_user_ends_their_session_and_their_logins(sign_in, served, db):
    op1 = await sign_in("op1")
    assert (await op1.text("/operator"))[0] == 200
    await store.set_disabled(db, "op1", True)
    assert (await op1.text("/operator"))[0] == 401
    assert (await op1.login("op1")).status == 401


async def test_a_new_password_ends_open_sessions(sign_in, db):
    sup = await sign_in("sup")
    await store.set_password(db, "sup", hash_password("another password 1"))
    assert (await sup.text("/board"))[0] == 401
    assert (await sup.login("sup", "another password 1")).status == 303


async def test_an_idle_session_expires(sign_in, served, db):
    sup = await sign_in("sup")
    await db.execute("UPDATE console_sessions SET last_seen_at = now() - interval '2 hours'")
    assert (await sup.text("/board"))[0] == 401


async def test_a_live_stream_ends_when_the_session_does(sign_in, db):
    sup = await sign_in("sup")
    async with sup.session.get("/board/events") as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        await db.execute("DELETE FROM console_sessions")
        body = await asyncio.wait_for(stream.content.read(), 5)
    assert b"event: signed_out" in body


async def test_production_mode_refuses_to_start_with_a_development_password(
    pg_dsn, console_config, centre, tmp_path, db
):
    await store.add_user(db, "admin", Role.ADMIN, hash_password(DEV_PASSWORD), dev_default=True)
    console = Console(console_settings(pg_dsn, tmp_path), console_config, centre)
    with pytest.raises(InsecureConsoleError, match="admin"):
        await console.start()
    # the stack's web site does not come up either
    server = TestServer(create_app(lambda: Health(True, True), console))
    with pytest.raises(InsecureConsoleError):
        await server.start_server()
    await server.close()
    # once the password is changed, it starts
    await store.set_password(db, "admin", hash_password("a real password 1"))
    await console.start()
    await console.close()


async def test_development_mode_creates_users_with_the_development_password(
    pg_dsn, console_config, centre, tmp_path, db
):
    settings = console_settings(pg_dsn, tmp_path, dev_mode=True)
    console = Console(settings, console_config, centre)
    await console.start()
    await console.close()
    users = await store.list_users(db)
    names = {u.username: u for u in users}
    assert set(names) == {"admin", "supervisor", *(op.id for op in console_config.operators)}
    assert all(u.dev_default for u in users)
    assert names["1001"].role is Role.OPERATOR and names["1001"].operator_id == "1001"
    assert console.dev_logins()
    # and the same database refuses a production start until the passwords are changed
    production = Console(console_settings(pg_dsn, tmp_path), console_config, centre)
    with pytest.raises(InsecureConsoleError):
        await production.start()


async def test_the_language_switch_defaults_to_indonesian(sign_in):
    sup = await sign_in("sup")
    _, body = await sup.text("/board")
    assert 'lang="id"' in body and "Papan pantau" in body
    async with await sup.post("/lang", {"lang": "en", "next": "/board"}) as response:
        assert response.status == 303 and response.headers["Location"] == "/board"
    _, body = await sup.text("/board")
    assert 'lang="en"' in body and "Live board" in body
