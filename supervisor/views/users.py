"""The admin's users page: add a user, set their role, operator id, phone and name, reset their
password (to be replaced at their next sign-in), disable and enable them. The same store
functions and rules as `siaga user` (supervisor/cli.py); every change is audited."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

from supervisor import store
from supervisor.accounts import MAX_DISPLAY_NAME, AccountProblem, account_problem
from supervisor.http import (
    client_of,
    console_of,
    form_of,
    redirect,
    render,
    require_session,
)
from supervisor.roles import Role
from supervisor.security import (
    MIN_PASSWORD_LENGTH,
    CredentialProblem,
    check_password,
    check_username,
    hash_password,
)
from supervisor.store import AuditAction

PAGE = "/admin/users"


Problem = AccountProblem | CredentialProblem


class _Refused(Exception):
    """A change the page refuses; `problem` names its words (`users.problem.<problem>`)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem)
        self.problem = problem


async def page(request: web.Request) -> web.StreamResponse:
    return await _page(request, 200)


async def _page(
    request: web.Request,
    status: int,
    problem: Problem | None = None,
    entered: Mapping[str, str] | None = None,
) -> web.Response:
    console = console_of(request)
    return render(
        request,
        "users.html",
        status=status,
        users=await store.list_users(console.db),
        roles=[role.value for role in Role],
        operators=console.config.operators,
        problem=problem.value if problem else None,
        entered=dict(entered or {}),
        min_length=MIN_PASSWORD_LENGTH,
        max_name=MAX_DISPLAY_NAME,
        me=require_session(request).user.username,
    )


def _account(form: Mapping[str, str], known: list[str]) -> tuple[Role, str | None, str | None]:
    """The role, operator id and phone of a posted form, checked by the accounts' rules."""
    try:
        role = Role(form.get("role", ""))
    except ValueError:
        raise _Refused(AccountProblem.ROLE) from None
    operator_id = form.get("operator_id", "").strip() or None
    phone = form.get("phone", "").strip() or None
    wrong = account_problem(role, operator_id, phone, known)
    if wrong is not None:
        raise _Refused(wrong)
    return role, operator_id, phone


def _display_name(form: Mapping[str, str]) -> str | None:
    return form.get("display_name", "").strip()[:MAX_DISPLAY_NAME] or None


async def _audit(
    request: web.Request, action: AuditAction, target: str, **detail: str | None
) -> None:
    session = require_session(request)
    await store.audit(
        console_of(request).db,
        action,
        username=session.user.username,
        role=session.user.role.value,
        target=target,
        client=client_of(request),
        detail={key: value for key, value in detail.items() if value},
    )


async def add(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    form = await form_of(request)
    username = form.get("username", "").strip()
    password = form.get("password", "")
    known = [op.id for op in console.config.operators]
    try:
        if check_username(username) is not None:
            raise _Refused(CredentialProblem.USERNAME)
        role, operator_id, phone = _account(form, known)
        bad_password = check_password(username, password)
        if bad_password is not None:
            raise _Refused(bad_password)
        hashed = await asyncio.to_thread(hash_password, password)
        try:
            await store.add_user(
                console.db,
                username,
                role,
                hashed,
                display_name=_display_name(form),
                operator_id=operator_id,
                phone=phone,
                must_change=True,
            )
        except store.UserExistsError:
            raise _Refused(AccountProblem.EXISTS) from None
    except _Refused as refused:
        entered = {k: v for k, v in form.items() if k not in ("password", "csrf")}
        return await _page(request, 400, refused.problem, entered)
    await _audit(
        request,
        AuditAction.USER_ADD,
        username,
        role=role.value,
        operator_id=operator_id,
        phone=phone,
    )
    raise redirect(PAGE, "user_added")


async def update(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    username = request.match_info["username"]
    form = await form_of(request)
    known = [op.id for op in console.config.operators]
    before = await _user(request, username)
    try:
        role, operator_id, phone = _account(form, known)
        try:
            after = await store.update_user(
                console.db,
                username,
                role=role,
                operator_id=operator_id,
                phone=phone,
                display_name=_display_name(form),
            )
        except store.LastAdminError:
            raise _Refused(AccountProblem.LAST_ADMIN) from None
    except _Refused as refused:
        return await _page(request, 400, refused.problem)
    changed = {
        key: getattr(after, key) or "-"
        for key in ("operator_id", "phone", "display_name")
        if getattr(after, key) != getattr(before, key)
    }
    if after.role is not before.role:
        changed["role"] = after.role.value
    if changed:
        await _audit(request, AuditAction.USER_UPDATE, after.username, **changed)
    raise redirect(PAGE, "user_saved")


async def reset_password(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    user = await _user(request, request.match_info["username"])
    form = await form_of(request)
    password = form.get("password", "")
    problem = check_password(user.username, password)
    if problem is not None:
        return await _page(request, 400, problem)
    hashed = await asyncio.to_thread(hash_password, password)
    await store.set_password(console.db, user.username, hashed, must_change=True)
    await _audit(request, AuditAction.USER_PASSWD_RESET, user.username)
    raise redirect(PAGE, "password_reset")


async def disable(request: web.Request) -> web.StreamResponse:
    return await _set_disabled(request, True)


async def enable(request: web.Request) -> web.StreamResponse:
    return await _set_disabled(request, False)


async def _set_disabled(request: web.Request, disabled: bool) -> web.StreamResponse:
    user = await _user(request, request.match_info["username"])
    try:
        await store.set_disabled(console_of(request).db, user.username, disabled)
    except store.LastAdminError:
        return await _page(request, 400, AccountProblem.LAST_ADMIN)
    action = AuditAction.USER_DISABLE if disabled else AuditAction.USER_ENABLE
    await _audit(request, action, user.username)
    raise redirect(PAGE, "user_disabled" if disabled else "user_enabled")


async def _user(request: web.Request, username: str) -> store.User:
    found = await store.find_user(console_of(request).db, username)
    if found is None:
        raise web.HTTPNotFound()
    return found[0]
