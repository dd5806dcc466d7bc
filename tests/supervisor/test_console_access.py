"""Every page and action of the console refuses anonymous and wrong-role access, and every
state-changing request needs the CSRF token of the session (HTTP, real PostgreSQL)."""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp.test_utils import TestServer
from console_support import Browser, console_settings, settled

from supervisor.console import Console
from supervisor.routes import ROUTES
from supervisor.web import Health, create_app

ALL = {"operator", "supervisor", "admin"}
SIGNED_IN_AS = {"operator": "op1", "supervisor": "sup", "admin": "admin"}

# Who may use what, written out here independently of supervisor/roles.py.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("GET", "/"): ALL,
    ("POST", "/logout"): ALL,
    ("GET", "/operator"): {"operator"},
    ("GET", "/operator/events"): {"operator"},
    ("POST", "/operator/state"): {"operator"},
    ("POST", "/operator/disposition"): {"operator"},
    ("POST", "/operator/agency"): {"operator"},
    ("POST", "/operator/callbacks/{call_id}/claim"): {"operator"},
    ("POST", "/operator/callbacks/{call_id}/done"): {"operator"},
    ("GET", "/board"): {"supervisor", "admin"},
    ("GET", "/board/events"): {"supervisor", "admin"},
    ("POST", "/board/operators/{operator_id}/{action}"): {"supervisor"},
    ("POST", "/board/calls/{call_id}/listen"): {"supervisor"},
    ("POST", "/board/blocks"): {"supervisor"},
    ("POST", "/board/blocks/{flag_id}/clear"): {"supervisor"},
    ("POST", "/board/alerts/ack"): {"supervisor", "admin"},
    ("GET", "/wallboard"): {"supervisor", "admin"},
    ("GET", "/calls"): ALL,
    ("GET", "/calls.csv"): {"supervisor", "admin"},
    ("GET", "/calls/{call_id}"): ALL,
    ("GET", "/calls/{call_id}/recording"): {"supervisor"},
    ("POST", "/calls/{call_id}/category"): {"operator", "supervisor"},
    ("GET", "/reports"): {"supervisor", "admin"},
    ("GET", "/audit"): {"admin"},
    # user management and one's own password
    ("GET", "/admin/users"): {"admin"},
    ("POST", "/admin/users"): {"admin"},
    ("POST", "/admin/users/{username}/update"): {"admin"},
    ("POST", "/admin/users/{username}/password"): {"admin"},
    ("POST", "/admin/users/{username}/disable"): {"admin"},
    ("POST", "/admin/users/{username}/enable"): {"admin"},
    ("GET", "/password"): ALL,
    ("POST", "/password"): ALL,
    # reports: exports and the shift summary
    ("GET", "/reports.csv"): {"supervisor", "admin"},
    ("GET", "/reports.xlsx"): {"supervisor", "admin"},
    ("GET", "/reports/shift"): {"supervisor", "admin"},
}
PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/lang"),
    ("GET", "/static/{name}"),
}
PARAMS = {
    "{call_id}": "no-such-call",
    "{operator_id}": "1001",
    "{action}": "pause",
    "{flag_id}": str(uuid.UUID(int=0)),
    "{name}": "console.js",
    "{username}": "nobody",
}


def concrete(path: str) -> str:
    for placeholder, value in PARAMS.items():
        path = path.replace(placeholder, value)
    return path


def test_the_table_above_covers_every_route_of_the_console():
    routes = {(r.method, r.path) for r in ROUTES}
    assert routes == set(EXPECTED) | PUBLIC


async def test_anonymous_callers_are_sent_to_sign_in_or_refused(anonymous):
    for method, path in EXPECTED:
        url = concrete(path)
        if method == "GET":
            async with await anonymous.get(url, headers={"Accept": "text/html"}) as response:
                assert response.status == 303, url
                assert response.headers["Location"].startswith("/login?next="), url
            async with await anonymous.get(url) as response:  # a script, an EventSource
                assert response.status == 401, url
        else:
            async with await anonymous.post(url, {"call_id": "x"}, csrf="whatever") as response:
                assert response.status == 401, url


async def test_every_role_is_refused_what_it_may_not_do(sign_in):
    browsers = {role: await sign_in(name) for role, name in SIGNED_IN_AS.items()}
    for (method, path), allowed in EXPECTED.items():
        if path == "/logout":
            continue  # everyone may; tested last, below
        url = concrete(path)
        for role, browser in browsers.items():
            if method == "GET":
                response = await browser.get(url)
            else:
                response = await browser.post(url, {"call_id": "no-such-call"})
            async with response:
                if role in allowed:
                    assert response.status not in (401, 403), (role, method, url)
                else:
                    assert response.status == 403, (role, method, url, response.status)
    for browser in browsers.values():
        async with await browser.post("/logout") as response:
            assert response.status == 303
        async with await browser.get("/calls") as response:
            assert response.status == 401, "signed out"


async def test_an_operator_may_not_open_another_operators_call(sign_in, centre, writer):
    centre.arrive("c-other", "081200000001")
    centre.connect("c-other", "1002")
    centre.end("c-other")
    await settled(writer)
    op1 = await sign_in("op1")
    op2 = await sign_in("op2")
    assert (await op1.text("/calls/c-other"))[0] == 403
    assert (await op2.text("/calls/c-other"))[0] == 200
    status, body = await op1.text("/calls")
    assert status == 200 and "081200000001" not in body


async def test_state_changes_need_the_sessions_csrf_token(sign_in, served, db):
    sup = await sign_in("sup")
    other = await sign_in("sup_nophone")
    block = {"number": "081277700001", "reason": "prank"}
    for token in ("", "forged", other.csrf):
        async with await sup.post("/board/blocks", block, csrf=token) as response:
            assert response.status == 403, token
    # A matching token from a page of another site is refused by its Origin.
    async with await sup.session.post(
        "/board/blocks",
        data={**block, "csrf": sup.csrf},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
    ) as response:
        assert response.status == 403
    async with await sup.post("/board/blocks", block) as response:
        assert response.status == 303
    # The token also works as a header (for scripts).
    async with await sup.session.post(
        "/logout", headers={"X-CSRF-Token": sup.csrf}, allow_redirects=False
    ) as response:
        assert response.status == 303


async def test_the_login_form_itself_needs_its_csrf_cookie(anonymous, users):
    async with await anonymous.session.post(
        "/login", data={"username": "sup", "password": "x" * 12}, allow_redirects=False
    ) as response:
        assert response.status == 403


async def test_unknown_pages_tell_anonymous_callers_nothing(anonymous, sign_in):
    async with await anonymous.get("/no/such/page") as response:
        assert response.status == 401
    sup = await sign_in("sup")
    async with await sup.get("/no/such/page") as response:
        assert response.status == 404


async def test_security_headers_on_every_page(anonymous, sign_in):
    sup = await sign_in("sup")
    for browser, path in ((anonymous, "/login"), (sup, "/board"), (sup, "/calls")):
        async with await browser.get(path) as response:
            assert response.status == 200
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Cache-Control"] == "no-store"


async def test_health_needs_no_login_and_no_console_database(anonymous):
    async with await anonymous.get("/healthz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"


async def test_a_route_added_without_a_rule_is_refused_to_everyone(
    pg_dsn, console_config, centre, tmp_path, users
):
    console = Console(console_settings(pg_dsn, tmp_path), console_config, centre)
    app = create_app(lambda: Health(True, True), console)

    async def secret(request: web.Request) -> web.Response:
        return web.Response(text="citizens' data")

    app.router.add_get("/secret", secret)
    server = TestServer(app)
    await server.start_server()
    browser = Browser(str(server.make_url("")))
    try:
        assert (await browser.login("sup")).status == 303
        status, body = await browser.text("/secret")
        assert status == 403 and "citizens" not in body
    finally:
        await browser.close()
        await server.close()
