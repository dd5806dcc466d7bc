"""Sign in, sign out, the language switch, the home redirect and the static files."""

from __future__ import annotations

import asyncio
import math
from importlib import resources
from urllib.parse import urlencode

from aiohttp import web

from supervisor import store
from supervisor.http import (
    LANG_COOKIE,
    PASSWORD_PATH,
    PRE_CSRF_COOKIE,
    SESSION_COOKIE,
    client_of,
    console_of,
    form_of,
    render,
    require_session,
    session_of,
    set_cookie,
)
from supervisor.i18n import LANGUAGES
from supervisor.roles import home_path
from supervisor.security import (
    MIN_PASSWORD_LENGTH,
    Held,
    check_password,
    hash_password,
    needs_rehash,
    new_token,
    safe_next,
    verify_password,
)
from supervisor.store import AuditAction

_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def login_page(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    if session is not None:
        return see_other(home_path(session.user.role))
    return _login_form(request, 200, safe_next(request.query.get("next")))


async def login(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    form = await form_of(request)
    username = form.get("username", "").strip()[:64]
    password = form.get("password", "")[:1024]
    client = client_of(request)
    target = safe_next(form.get("next"))

    attempt = console.limiter.admit(username, client)
    if isinstance(attempt, Held):
        wait = max(1, math.ceil(attempt.seconds))
        await store.audit(
            console.db,
            AuditAction.LOGIN_THROTTLED,
            username=username,
            role=None,
            client=client,
            detail={"delay_seconds": round(attempt.seconds, 1), "limit": attempt.by.value},
        )
        response = _login_form(request, 429, target, "login.throttled", retry_seconds=wait)
        response.headers["Retry-After"] = str(wait)
        return response

    found = await store.find_user(console.db, username) if username else None
    stored = found[1] if found is not None and not found[0].disabled else None
    ok = await asyncio.to_thread(verify_password, stored, password)
    if not ok or found is None or stored is None:
        # The delay the next attempt of this name from this client will meet.
        delay = console.limiter.retry_after(username, client)
        await store.audit(
            console.db,
            AuditAction.LOGIN_FAILED,
            username=username,
            role=None,
            client=client,
            detail={"delay_seconds": round(delay, 1)},
        )
        return _login_form(request, 401, target, "login.failed")

    user = found[0]
    console.limiter.succeeded(attempt)
    if needs_rehash(stored):
        await store.rehash_password(
            console.db, user.user_id, await asyncio.to_thread(hash_password, password)
        )
    await store.audit(
        console.db, AuditAction.LOGIN, username=user.username, role=user.role.value, client=client
    )
    if user.must_change_password:  # a password an admin set: replaced before anything else
        query = "?" + urlencode({"next": target}) if target else ""
        return await _start_session(request, user, PASSWORD_PATH + query)
    return await _start_session(request, user, target or home_path(user.role))


async def _start_session(request: web.Request, user: store.User, location: str) -> web.Response:
    """A new session for `user` (the browser's old one ended), and on to `location`."""
    console = console_of(request)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await store.delete_session(console.db, old)
    token = new_token()
    await store.create_session(
        console.db,
        user.user_id,
        token,
        new_token(),
        console.settings.session_lifetime,
        client_of(request),
    )
    response = see_other(location)
    set_cookie(request, response, SESSION_COOKIE, token)
    response.del_cookie(PRE_CSRF_COOKIE, path="/")
    return response


def _login_form(
    request: web.Request,
    status: int,
    target: str | None,
    error: str | None = None,
    *,
    retry_seconds: int | None = None,
) -> web.Response:
    retry = None
    if retry_seconds is not None:
        retry = "login.retry_in_one" if retry_seconds == 1 else "login.retry_in"
    return render(
        request,
        "login.html",
        status=status,
        next=target or "",
        error=error,
        retry=retry,
        retry_seconds=retry_seconds,
    )


async def logout(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    session = require_session(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await store.delete_session(console.db, token)
    await store.audit(
        console.db,
        AuditAction.LOGOUT,
        username=session.user.username,
        role=session.user.role.value,
        client=client_of(request),
    )
    response = see_other("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def set_language(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    lang = form.get("lang", "")
    response = see_other(safe_next(form.get("next")) or "/")
    if lang in LANGUAGES:
        set_cookie(request, response, LANG_COOKIE, lang)
    return response


async def home(request: web.Request) -> web.StreamResponse:
    return see_other(home_path(require_session(request).user.role))


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    suffix = name[name.rfind(".") :] if "." in name else ""
    folder = resources.files("supervisor").joinpath("static")
    if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES:
        raise web.HTTPNotFound()
    entry = folder.joinpath(name)
    if not entry.is_file():
        raise web.HTTPNotFound()
    return web.Response(
        body=entry.read_bytes(),
        content_type=_STATIC_TYPES[suffix],
        charset="utf-8" if suffix != ".svg" else None,
        headers={"Cache-Control": "max-age=300"},
    )


# -- one's own password (forced after an admin set it) ---------------------------------------


async def password_page(request: web.Request) -> web.StreamResponse:
    return _password_form(request, 200, safe_next(request.query.get("next")))


async def change_password(request: web.Request) -> web.StreamResponse:
    """The user's own new password: the current one again, the new one twice, by the same
    rules as `siaga user passwd`. Every other session of theirs ends; this browser gets a new
    one."""
    console = console_of(request)
    session = require_session(request)
    form = await form_of(request)
    target = safe_next(form.get("next"))
    current = form.get("current", "")[:1024]
    new = form.get("new", "")[:1024]
    found = await store.find_user(console.db, session.user.username)
    stored = found[1] if found is not None else None
    if not await asyncio.to_thread(verify_password, stored, current):
        return _password_form(request, 400, target, "password.wrong_current")
    if new != form.get("again", ""):
        return _password_form(request, 400, target, "password.differ")
    problem = check_password(session.user.username, new)
    if problem is not None:
        return _password_form(request, 400, target, f"users.problem.{problem.value}")
    if new == current:
        return _password_form(request, 400, target, "password.same")
    hashed = await asyncio.to_thread(hash_password, new)
    await store.set_password(console.db, session.user.username, hashed)
    await store.audit(
        console.db,
        AuditAction.USER_PASSWD,
        username=session.user.username,
        role=session.user.role.value,
        target=session.user.username,
        client=client_of(request),
    )
    location = target or home_path(session.user.role)
    separator = "&" if "?" in location else "?"
    return await _start_session(request, session.user, f"{location}{separator}msg=password_changed")


def _password_form(
    request: web.Request, status: int, target: str | None, error: str | None = None
) -> web.Response:
    return render(
        request,
        "password.html",
        status=status,
        error=error,
        forced=require_session(request).user.must_change_password,
        next=target or "",
        min_length=MIN_PASSWORD_LENGTH,
    )
