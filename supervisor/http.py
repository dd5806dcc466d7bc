"""The console's HTTP frame: the route table with one permission per route (a route without one
is refused), the session / role / CSRF middleware, security headers, and page rendering."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import structlog
from aiohttp import web

from supervisor.console import Console
from supervisor.i18n import catalogue, label, language, translate
from supervisor.roles import Permission, allowed
from supervisor.security import csrf_matches, new_token, origin_allowed
from supervisor.store import Session, load_session
from supervisor.words import Words

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "siaga_session"
PRE_CSRF_COOKIE = "siaga_csrf"  # CSRF token of the login form, before there is a session
LANG_COOKIE = "siaga_lang"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)

CONSOLE_KEY: web.AppKey[Console] = web.AppKey("console", Console)
# Browsers reach the app over HTTPS, here or at a TLS proxy in front of it (supervisor/web.py).
HTTPS_KEY: web.AppKey[bool] = web.AppKey("https", bool)
ROUTES_KEY: web.AppKey[dict[object, RouteRule]] = web.AppKey("route_rules")


def _request_key(name: str) -> Any:
    # Typed request keys (aiohttp >= 3.13); plain strings on older versions.
    factory = getattr(web, "RequestKey", None)
    return factory(name, object) if factory is not None else name


_SESSION = _request_key("siaga_session")
_NEW_PRE_CSRF = _request_key("siaga_pre_csrf")
_PREPARED = _request_key("siaga_prepared")  # a response has started: no error page any more

# Flash messages an action may ask the next page to show (?msg=...); others are ignored.
FLASH_KEYS = frozenset(
    {
        "saved",
        "disposition_saved",
        "category_saved",
        "bad_category",
        "not_available",
        "not_your_call",
        "invalid",
        "no_operator",
        "blocked",
        "unblocked",
        "listening",
        "no_phone",
        "agency_added",
        "callback_claimed",
        "callback_done",
        "alert_acknowledged",
        "alert_gone",
        # user management and one's own password
        "user_added",
        "user_saved",
        "user_disabled",
        "user_enabled",
        "password_reset",
        "password_changed",
    }
)

NAV = (
    ("/operator", "nav.desk", Permission.DESK),
    ("/board", "nav.board", Permission.BOARD),
    ("/calls", "nav.calls", Permission.CALLS_OWN),
    ("/reports", "nav.reports", Permission.REPORTS),
    ("/audit", "nav.audit", Permission.AUDIT),
    ("/admin/users", "nav.users", Permission.USERS),
)

# Where a user whose password an admin set must replace it before anything else; they may also
# sign out meanwhile (and use the public pages: sign in as someone else, the language).
PASSWORD_PATH = "/password"
_WHILE_PASSWORD_EXPIRED = frozenset({PASSWORD_PATH, "/logout"})


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    permission: Permission
    # False for routes that must not touch the database (health, static files).
    needs_session: bool = True


@dataclass(frozen=True, slots=True)
class RouteRule:
    permission: Permission
    needs_session: bool


def install(app: web.Application, console: Console, routes: list[Route]) -> None:
    """Add the console's routes and its guard. Routes the app had before (the health
    endpoint) stay public and never touch the console's database; a route added later
    without a rule is refused to everyone."""
    app[CONSOLE_KEY] = console
    rules: dict[object, RouteRule] = {}
    for route in routes:
        added = app.router.add_route(route.method, route.path, route.handler)
        rules[added] = RouteRule(route.permission, route.needs_session)
    for existing in app.router.routes():  # e.g. /healthz, added before the console
        rules.setdefault(existing, RouteRule(Permission.PUBLIC, needs_session=False))
    app[ROUTES_KEY] = rules
    app.middlewares.append(guard)
    app.on_response_prepare.append(_security_headers)


# -- the guard -------------------------------------------------------------------------------


# The message of an error page by its status; others get "error.other".
_ERROR_MESSAGES = {
    403: "error.forbidden",
    404: "error.not_found",
    405: "error.method",
    500: "error.server",
}


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The guard, and error pages in the layout and the user's language instead of aiohttp's
    bare "404: Not Found" (and a logged 500 for an unexpected exception)."""
    try:
        return await _guard(request, handler)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status == 401 or request.get(_PREPARED):
            raise
        return error_page(request, exc.status, _ERROR_MESSAGES.get(exc.status, "error.other"))
    except Exception:
        if request.get(_PREPARED):  # a live stream failed half-way: aiohttp logs and closes it
            raise
        log.exception("console.request_failed", path=request.path, method=request.method)
        return error_page(request, 500, "error.server")


async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    rule = request.app[ROUTES_KEY].get(request.match_info.route)
    if rule is not None and not rule.needs_session:
        return await handler(request)
    session = await _session(request)
    request[_SESSION] = session
    role = session.user.role if session else None
    if rule is None:
        if session is None:  # anonymous callers learn nothing about the site
            return _unauthenticated(request)
        if request.match_info.http_exception is None:  # a route with no rule: fail closed
            log.error("console.route_without_rule", path=request.path)
            return error_page(request, 403, "error.forbidden")
        return await handler(request)  # 404 / 405
    if not allowed(role, rule.permission):
        if session is None:
            return _unauthenticated(request)
        return error_page(request, 403, "error.forbidden")
    if (
        session is not None
        and session.user.must_change_password
        and rule.permission is not Permission.PUBLIC
        and not _password_free(request)
    ):
        if request.method == "GET":
            raise web.HTTPSeeOther(PASSWORD_PATH)
        return error_page(request, 403, "error.password_expired")
    if request.method not in _SAFE_METHODS and not await _csrf_ok(request, session):
        return error_page(request, 403, "error.csrf")
    return await handler(request)


def _password_free(request: web.Request) -> bool:
    """A request a user may make before replacing a password an admin set for them."""
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical in _WHILE_PASSWORD_EXPIRED


async def _session(request: web.Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    console = request.app[CONSOLE_KEY]
    return await load_session(console.db, token, console.settings.session_idle)


def _unauthenticated(request: web.Request) -> web.StreamResponse:
    # A browser opening a page is sent to the login form; scripts and streams get a 401.
    if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
        target = quote(request.path_qs, safe="")
        raise web.HTTPSeeOther(f"/login?next={target}")
    return web.Response(status=401, text="sign in first")


async def _csrf_ok(request: web.Request, session: Session | None) -> bool:
    if not origin_allowed(
        request.headers.get("Origin"), request.host, https=request.app[HTTPS_KEY]
    ):
        return False
    given: Any = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        given = (await request.post()).get(CSRF_FIELD)
    expected = session.csrf_token if session else request.cookies.get(PRE_CSRF_COOKIE)
    return csrf_matches(expected, given if isinstance(given, str) else None)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    request[_PREPARED] = True
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on form posts,
    # which the CSRF guard (rightly) refuses.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        headers["Cache-Control"] = "no-store"


# -- request helpers -------------------------------------------------------------------------


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]


def session_of(request: web.Request) -> Session | None:
    session: Session | None = request.get(_SESSION)
    return session


def require_session(request: web.Request) -> Session:
    session = session_of(request)
    if session is None:  # the guard lets no such request through; this is for the types
        raise web.HTTPUnauthorized()
    return session


def client_of(request: web.Request) -> str:
    return request.remote or "unknown"


def lang_of(request: web.Request) -> str:
    return language(request.cookies.get(LANG_COOKIE))


def can(request: web.Request, permission: Permission) -> bool:
    session = session_of(request)
    return allowed(session.user.role if session else None, permission)


def csrf_token(request: web.Request) -> str:
    session = session_of(request)
    if session is not None:
        return session.csrf_token
    token = request.cookies.get(PRE_CSRF_COOKIE) or request.get(_NEW_PRE_CSRF)
    if not token:
        token = new_token()
        request[_NEW_PRE_CSRF] = token
    return str(token)


async def form_of(request: web.Request) -> Mapping[str, str]:
    """The posted form's text fields (files and repeated keys: first text value)."""
    data = await request.post()
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str) and key not in out:
            out[key] = value
    return out


def redirect(path: str, msg: str | None = None, **params: str) -> web.HTTPSeeOther:
    query = dict(params)
    if msg is not None:
        query["msg"] = msg
    return web.HTTPSeeOther(path + ("?" + urlencode(query) if query else ""))


# -- rendering -------------------------------------------------------------------------------

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("supervisor", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    total = int(value)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def time_formatter(console: Console) -> Callable[[datetime | None], str]:
    def fmt(moment: datetime | None) -> str:
        if moment is None:
            return "-"
        return moment.astimezone(console.zone).strftime("%Y-%m-%d %H:%M:%S")

    return fmt


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    console = console_of(request)
    session = session_of(request)
    lang = lang_of(request)
    csrf = csrf_token(request)
    flash = request.query.get("msg")

    def t(key: str) -> str:
        return translate(key, lang)

    def label_of(prefix: str, value: str) -> str:
        return label(prefix, value, lang)

    nav = [
        {"href": href, "key": key, "current": request.path.startswith(href)}
        for href, key, permission in NAV
        if can(request, permission) and not (session and session.user.must_change_password)
    ]
    body = _env.get_template(template).render(
        t=t,
        label=label_of,
        words=Words(console.config, lang),
        lang=lang,
        user=session.user if session else None,
        csrf=csrf,
        nav=nav,
        flash=flash if flash in FLASH_KEYS else None,
        path=request.path_qs,
        centre=console.config.centre.name,
        messages=catalogue(lang),
        fmt_time=time_formatter(console),
        fmt_seconds=fmt_seconds,
        **context,
    )
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    new_pre = request.get(_NEW_PRE_CSRF)
    if new_pre:
        set_cookie(request, response, PRE_CSRF_COOKIE, str(new_pre))
    return response


def error_page(request: web.Request, status: int, key: str) -> web.Response:
    return render(request, "error.html", status=status, message_key=key, code=status)


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    # Behind a TLS proxy the request itself is plain HTTP, yet the browser's side is HTTPS.
    secure = request.secure or request.app.get(HTTPS_KEY, False)
    response.set_cookie(name, value, path="/", httponly=True, samesite="Strict", secure=secure)
