"""Call controls on the operator's desk: hang up, conference a colleague (a ready operator or a
supervisor's phone) and leave the call to them, and the live status of every hand-off (agencies
and colleagues) in the desk's picture. The decisions are the call machine's
(ari_app/call/machine.py); these actions only ask the running app through the `LiveCentre`."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from ari_app.call.states import HandOffStatus, SideKind
from queues.snapshot import Snapshot
from queues.states import OperatorState
from siaga.config import Config
from supervisor import store
from supervisor.board import JsonDict
from supervisor.console import Console
from supervisor.http import console_of, form_of, redirect, require_session
from supervisor.i18n import translate
from supervisor.live import ActionUnavailableError, LiveCall, joined_only, operator_call
from supervisor.roles import Role
from supervisor.store import Db

# The conference form's colleague field: "operator:<id>" or "supervisor:<username>".
OPERATOR_PREFIX = "operator:"
SUPERVISOR_PREFIX = "supervisor:"


def hand_offs_json(call: LiveCall, config: Config, lang: str) -> list[JsonDict]:
    """Each agency or colleague conferenced into the call, and how it goes (text only)."""
    agencies = {a.code: a.name for a in config.agencies}
    operators = {op.id: op.name for op in config.operators}
    out = []
    for hand_off in call.hand_offs:
        if hand_off.kind is SideKind.AGENCY:
            name = agencies.get(hand_off.name, hand_off.name)
        else:
            name = operators.get(hand_off.name, hand_off.name)
        out.append(
            {
                "kind": hand_off.kind.value,
                "name": name,
                "status": hand_off.status.value,
                "text": translate(f"handoff.{hand_off.status.value}", lang),
            }
        )
    return out


def ready_colleagues(
    snapshot: Snapshot, operator_id: str, names: Mapping[str, str]
) -> list[JsonDict]:
    """The operators ready for a call (available, phone registered), but this one."""
    return [
        {"id": op.operator_id, "name": names.get(op.operator_id, op.operator_id)}
        for op in snapshot.operators
        if op.operator_id != operator_id
        and op.state is OperatorState.AVAILABLE
        and op.registered is not False
    ]


async def supervisors_with_phone(db: Db) -> list[store.User]:
    """The supervisors an operator may conference in: those with a phone set."""
    return [
        user
        for user in await store.list_users(db)
        if user.role is Role.SUPERVISOR and user.phone and not user.disabled
    ]


def _operators_call(request: web.Request, form: Mapping[str, str]) -> tuple[str, str]:
    call_id, operator_id, live = _live_call(request, form)
    if joined_only(live, operator_id):
        # Hold, conference and agencies are the call's operator's while they are on it.
        raise redirect("/operator", "not_your_call")
    return call_id, operator_id


def _live_call(request: web.Request, form: Mapping[str, str]) -> tuple[str, str, LiveCall]:
    """The connected call on this operator's desk: theirs, or one they were conferenced into."""
    operator_id = require_session(request).user.operator_id
    if not operator_id:
        raise web.HTTPForbidden()
    call_id = form.get("call_id", "")
    live = operator_call(console_of(request).centre, operator_id)
    if live is None or live.call_id != call_id or live.state != "connected":
        raise redirect("/operator", "not_your_call")
    return call_id, operator_id, live


def with_operator(call: LiveCall, operator_id: str, names: Mapping[str, str]) -> str | None:
    """For a colleague conferenced into the call: the name of the call's operator, still on it."""
    if not joined_only(call, operator_id) or call.operator_id is None:
        return None
    return names.get(call.operator_id, call.operator_id)


async def hang_up(request: web.Request) -> web.StreamResponse:
    """The call's operator ends the call; a colleague conferenced in beside them hangs up their
    own leg only (the app decides the same), i.e. leaves."""
    form = await form_of(request)
    call_id, operator_id, live = _live_call(request, form)
    try:
        await console_of(request).centre.hang_up(call_id, operator_id)
    except ActionUnavailableError:
        raise redirect("/operator", "not_available") from None
    raise redirect("/operator", "you_left" if joined_only(live, operator_id) else "hung_up")


async def conference(request: web.Request) -> web.StreamResponse:
    console: Console = console_of(request)
    form = await form_of(request)
    call_id, operator_id = _operators_call(request, form)
    colleague = form.get("colleague", "")
    dial: str | None = None
    if colleague.startswith(OPERATOR_PREFIX):
        name = colleague.removeprefix(OPERATOR_PREFIX)
        if name == operator_id or name not in {op.id for op in console.config.operators}:
            raise redirect("/operator", "invalid")
    elif colleague.startswith(SUPERVISOR_PREFIX):
        name = colleague.removeprefix(SUPERVISOR_PREFIX)
        found = next(
            (u for u in await supervisors_with_phone(console.db) if u.username == name), None
        )
        if found is None or not found.phone:
            raise redirect("/operator", "invalid")
        dial = found.phone
    else:
        raise redirect("/operator", "invalid")
    try:
        await console.centre.conference(call_id, operator_id, name, dial)
    except ActionUnavailableError:
        raise redirect("/operator", "not_available") from None
    raise redirect("/operator", "colleague_called")


async def hold(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    call_id, operator_id = _operators_call(request, form)
    action = form.get("action", "")
    if action not in ("hold", "resume"):
        raise redirect("/operator", "invalid")
    try:
        await console_of(request).centre.hold(call_id, operator_id, action == "hold")
    except ActionUnavailableError:
        raise redirect("/operator", "not_available") from None
    raise redirect("/operator", "on_hold" if action == "hold" else "resumed")


async def leave(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    call_id, operator_id, live = _live_call(request, form)
    # A colleague conferenced in leaves the caller with the call's operator; the operator
    # only to a colleague who answered.
    answered = joined_only(live, operator_id) or any(
        h.kind is SideKind.COLLEAGUE and h.status is HandOffStatus.ANSWERED for h in live.hand_offs
    )
    if not answered:
        raise redirect("/operator", "not_available")  # nobody to leave the caller with
    try:
        await console_of(request).centre.leave(call_id, operator_id)
    except ActionUnavailableError:
        raise redirect("/operator", "not_available") from None
    raise redirect("/operator", "you_left" if joined_only(live, operator_id) else "left_call")
