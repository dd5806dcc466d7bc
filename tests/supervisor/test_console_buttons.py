"""Each role sees only the buttons it may use: every page a role may open is rendered, and no
form, button or link on it leads to a route that role may not use. The routes and their
permissions come from supervisor/routes.py and supervisor/roles.py, so the check holds for
buttons added later; the forms console.js builds are enabled by the page (checked here too)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

from console_support import settled

from supervisor import store
from supervisor.roles import Permission, Role, allowed
from supervisor.routes import ROUTES

JS = Path(__file__).resolve().parents[2] / "supervisor" / "static" / "console.js"
SIGNED_IN_AS = {Role.OPERATOR: "op1", Role.SUPERVISOR: "sup", Role.ADMIN: "admin"}
PARAMS = {"call_id": "c-done", "username": "op2", "name": "console.css"}

_FORM = re.compile(r"<form\b([^>]*)>", re.I)
_ATTR = re.compile(r'([a-z-]+)="([^"]*)"', re.I)
_LINK = re.compile(r'\b(?:href|src|formaction)="(/[^"]*)"', re.I)

# The forms console.js builds, each shown only where its page says so: (element id, the data
# attribute that enables it or None when the element's presence does, method and a path).
JS_FORMS = [
    ("alerts", "data-can-ack", "POST", "/board/alerts/ack"),
    ("live-calls", "data-has-phone", "POST", "/board/calls/c-live/listen"),
    ("operators", "data-can-act", "POST", "/board/operators/1001/pause"),
    ("operators", "data-can-act", "POST", "/board/operators/1001/logout"),
    ("operators", "data-can-act", "POST", "/board/operators/1001/ready"),
    ("category-form", None, "POST", "/calls/c-live/category"),
]


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(path)) + "$")


RULES = [(route.method, _pattern(route.path), route.permission) for route in ROUTES]


def permission_of(method: str, url: str) -> Permission:
    path = url.split("?", 1)[0]
    for rule_method, pattern, permission in RULES:
        if rule_method == method and pattern.match(path):
            return permission
    raise AssertionError(f"{method} {url}: no route of the console")


def targets(html: str) -> set[tuple[str, str]]:
    """Where a person can go from this page: (method, path) of each form, button and link."""
    found: set[tuple[str, str]] = set()
    for match in _FORM.finditer(html):
        attrs = {k.lower(): unescape(v) for k, v in _ATTR.findall(match[1])}
        if "action" in attrs:
            found.add((attrs.get("method", "get").upper(), attrs["action"]))
    for match in _LINK.finditer(html):
        method = "POST" if match[0].lower().startswith("formaction") else "GET"
        found.add((method, unescape(match[1])))
    for element, attribute, method, path in JS_FORMS:
        opening = re.search(rf'<[a-z]+\b[^>]*\bid="{element}"[^>]*>', html)
        if opening and (attribute is None or f'{attribute}="yes"' in opening[0]):
            found.add((method, path))
    return found


# GET routes that are no page: the browser phone's account (JSON, for its script only) and its
# SIP relay (a WebSocket).
NOT_PAGES = {"/operator/phone", "/operator/phone/ws"}


def pages(role: Role) -> list[str]:
    """Every page (GET route) this role may open, with its parameters filled in."""
    return [
        re.sub(r"\{([a-z_]+)\}", lambda m: PARAMS[m[1]], route.path)
        for route in ROUTES
        if route.method == "GET" and allowed(role, route.permission) and route.path not in NOT_PAGES
    ]


async def test_no_page_offers_a_role_what_it_may_not_do(sign_in, served, centre, writer, db):
    # Something on every page: a finished call of op1's (recorded), a live one, a blocked number.
    (served.recordings / "c-done.wav").write_bytes(b"RIFF")
    centre.arrive("c-done", "081200000001")
    centre.connect("c-done", "1001")
    centre.end("c-done")
    centre.arrive("c-live", "081200000002")
    centre.connect("c-live", "1002")
    centre.operator_login("1001")
    await settled(writer)
    sup = await sign_in("sup")
    async with await sup.post("/board/blocks", {"number": "081277700001"}) as response:
        assert response.status == 303
    # An admin with a phone still may not listen in.
    await store.update_user(
        db, "admin", role=Role.ADMIN, operator_id=None, phone="PJSIP/2099", display_name=None
    )

    seen: dict[Role, set[tuple[str, str]]] = {}
    for role, name in SIGNED_IN_AS.items():
        browser = await sign_in(name)
        seen[role] = set()
        for page in pages(role):
            async with await browser.get(page) as response:
                if response.content_type != "text/html":  # a stream, a file, a CSV
                    continue
                assert response.status == 200, (role, page, response.status)
                offered = targets(await response.text())
            seen[role] |= offered
            refused = sorted(
                (method, url)
                for method, url in offered
                if not allowed(role, permission_of(method, url))
            )
            assert refused == [], (role.value, page)

    # The check saw the pages' buttons: each role's own, none of the others'.
    assert ("POST", "/operator/state") in seen[Role.OPERATOR]
    assert ("POST", "/calls/c-live/category") in seen[Role.OPERATOR]
    assert {("POST", "/board/blocks"), ("POST", "/board/operators/1001/pause")} <= seen[
        Role.SUPERVISOR
    ]
    assert ("POST", "/board/calls/c-live/listen") in seen[Role.SUPERVISOR]
    assert {("POST", "/admin/users"), ("POST", "/admin/users/op2/disable")} <= seen[Role.ADMIN]
    assert ("POST", "/board/alerts/ack") in seen[Role.ADMIN]


def test_every_form_console_js_builds_is_in_the_table_above():
    """A new button built in console.js must say here what enables it on its page."""
    code = JS.read_text()
    built = len(re.findall(r"\bactionForm\(", code)) - 1  # less its definition
    assigned = len(re.findall(r"\.action = ", code)) - 1  # less the one inside actionForm
    assert built + assigned == len(JS_FORMS), "JS_FORMS lists each form console.js builds"


def test_the_check_sees_a_button_a_role_may_not_use():
    """The check of the test above, on the board an admin was shown before."""
    old_board = (
        '<form method="post" action="/board/blocks" class="actions" id="block-form">'
        '<table id="operators">'
    )
    offered = targets(old_board)
    assert ("POST", "/board/blocks") in offered
    assert not allowed(Role.ADMIN, permission_of("POST", "/board/blocks"))
    assert targets('<table id="operators" data-can-act="yes">') >= {
        ("POST", "/board/operators/1001/pause")
    }
    assert targets('<table id="operators" data-can-act="no">') == set()
