"""The supervisor's live board and its actions: pause / log out / ready an operator, listen,
whisper or barge into a call, block and unblock a caller number, acknowledge an alarm; and the
wallboard, the same picture in large type for a screen on the wall."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from aiohttp import web

from db import events
from db.reports import SERVICE_GOAL_SECONDS
from supervisor import queries, store
from supervisor.board import JsonDict, alert_text, alerts_json, board_view
from supervisor.console import Console
from supervisor.http import (
    can,
    client_of,
    console_of,
    form_of,
    lang_of,
    redirect,
    render,
    require_session,
)
from supervisor.live import ActionUnavailableError, ListenMode
from supervisor.roles import Permission
from supervisor.sse import stream
from supervisor.store import AuditAction

_NUMBER = re.compile(r"^\+?[0-9]{3,32}$")
OPERATOR_ACTIONS = ("pause", "logout", "ready")
MAX_BLOCK_HOURS = 24 * 365


async def page(request: web.Request) -> web.StreamResponse:
    if request.query.get("tv") == "1":
        raise web.HTTPSeeOther("/wallboard")
    console = console_of(request)
    session = require_session(request)
    # The headline is there before the live stream connects (and without JavaScript).
    picture = board_view(
        console.centre.snapshot(),
        console.centre.live_calls(),
        await console.today(),
        console.config,
        lang_of(request),
    )
    return render(
        request,
        "board.html",
        oldest=picture["oldest"],
        goal=picture["goal"],
        blocks=await queries.active_blocks(console.db),
        has_phone=bool(session.user.phone) and can(request, Permission.LISTEN),
        can_ack=can(request, Permission.ALERTS_ACK),
        can_act=can(request, Permission.BOARD_ACT),
        listen_modes=[m.value for m in ListenMode],
    )


async def wallboard(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    return render(
        request,
        "wallboard.html",
        categories=console.config.categories,
        goal_seconds=SERVICE_GOAL_SECONDS,
    )


async def live_picture(console: Console, lang: str) -> JsonDict:
    """The board's picture with the alarms (the board, the wallboard)."""
    snapshot = console.centre.snapshot()
    calls = console.centre.live_calls()
    picture = board_view(snapshot, calls, await console.today(), console.config, lang)
    shown = await console.alerts(snapshot)
    picture["alerts"] = alerts_json(shown, snapshot.now, console.config, lang)
    picture["sound"] = console.config.alerts.sound
    return picture


async def events_stream(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    lang = lang_of(request)
    return await stream(request, lambda: live_picture(console, lang))


async def _audit(request: web.Request, action: AuditAction, target: str, **detail: str) -> None:
    session = require_session(request)
    await store.audit(
        console_of(request).db,
        action,
        username=session.user.username,
        role=session.user.role.value,
        target=target,
        client=client_of(request),
        detail=dict(detail),
    )


async def operator_action(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    operator_id = request.match_info["operator_id"]
    action = request.match_info["action"]
    if action not in OPERATOR_ACTIONS:
        raise web.HTTPNotFound()
    if not console.known_operator(operator_id):
        raise redirect("/board", "no_operator")
    centre = console.centre
    if action == "pause":
        centre.operator_pause(operator_id, "supervisor")
    elif action == "logout":
        centre.operator_logout(operator_id)
    else:
        centre.operator_ready(operator_id)
    await _audit(request, AuditAction(f"operator_{action}"), operator_id)
    raise redirect("/board", "saved")


async def listen(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    session = require_session(request)
    call_id = request.match_info["call_id"]
    form = await form_of(request)
    try:
        mode = ListenMode(form.get("mode", ""))
    except ValueError:
        raise redirect("/board", "invalid") from None
    if not any(c.call_id == call_id for c in console.centre.live_calls()):
        raise web.HTTPNotFound()
    if not session.user.phone:
        raise redirect("/board", "no_phone")
    await _audit(request, AuditAction(f"call_{mode.value}"), call_id)
    try:
        await console.centre.listen(session.user.username, session.user.phone, call_id, mode)
    except ActionUnavailableError:
        raise redirect("/board", "not_available") from None
    raise redirect("/board", "listening")


async def block(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    session = require_session(request)
    form = await form_of(request)
    number = form.get("number", "").strip()
    reason = form.get("reason", "").strip()[:200]
    hours_text = form.get("hours", "").strip()
    until: datetime | None = None
    if not _NUMBER.match(number):
        raise redirect("/board", "invalid")
    if hours_text:
        if not hours_text.isdigit() or not 1 <= int(hours_text) <= MAX_BLOCK_HOURS:
            raise redirect("/board", "invalid")
        until = datetime.now(UTC) + timedelta(hours=int(hours_text))
    console.centre.record(
        events.caller_flag_set(
            number,
            queries.BLOCK_FLAG,
            reason=reason or None,
            set_by=session.user.username,
            until=until,
        )
    )
    await _audit(request, AuditAction.NUMBER_BLOCK, number, reason=reason)
    raise redirect("/board", "blocked")


async def unblock(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    session = require_session(request)
    try:
        flag_id = uuid.UUID(request.match_info["flag_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if not await queries.block_exists(console.db, flag_id):
        raise web.HTTPNotFound()
    console.centre.record(
        events.caller_flag_cleared(flag_id, cleared_by=session.user.username, reason="console")
    )
    await _audit(request, AuditAction.NUMBER_UNBLOCK, str(flag_id))
    raise redirect("/board", "unblocked")


async def acknowledge_alert(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    session = require_session(request)
    form = await form_of(request)
    key = form.get("key", "")
    alert = await console.acknowledge_alert(key, session.user.username)
    if alert is None:
        raise redirect("/board", "alert_gone")
    await _audit(
        request,
        AuditAction.ALERT_ACK,
        key,
        kind=alert.kind.value,
        severity=alert.severity.value,
        text=alert_text(alert, console.config, lang_of(request)),
    )
    raise redirect("/board", "alert_acknowledged")
