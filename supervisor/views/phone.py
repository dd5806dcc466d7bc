"""The browser phone of the operator's desk (WebRTC, `[[operators]] webrtc = true`).

The page runs JsSIP (supervisor/phone, installed by `make setup`) and speaks SIP over a
WebSocket to the console itself, which relays it to Asterisk's own WebSocket (`/ws` on its
HTTP server). Asterisk's HTTP server also serves ARI and stays on loopback: only a signed-in
operator's page, over the console's own HTTPS and session, reaches SIP at all. Media goes
straight between the browser and Asterisk (DTLS-SRTP, ICE).

The operator's SIP password goes to that operator's own session only (the digest is computed
in the page), never into the HTML, never cached, and only to a script of this origin that
shows the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources
from importlib.resources.abc import Traversable

import aiohttp
import structlog
from aiohttp import WSMsgType, web

from siaga.config import OperatorConfig
from supervisor.console import Console
from supervisor.http import (
    CSRF_HEADER,
    HTTPS_KEY,
    SESSION_COOKIE,
    console_of,
    require_session,
)
from supervisor.security import csrf_matches, origin_allowed
from supervisor.store import load_session

log = structlog.get_logger(__name__)

SIP_SUBPROTOCOL = "sip"  # RFC 7118: Asterisk and JsSIP both insist on it
ASTERISK_WS_PATH = "/ws"  # where res_pjsip_transport_websocket listens
RELAY_PATH = "/operator/phone/ws"
LIBRARY_NAME = "jssip.min.js"


def library_file() -> Traversable:
    """JsSIP as `make setup` bundled it (supervisor/phone/package.json, `npm run build`)."""
    return resources.files("supervisor").joinpath("phone", "dist", LIBRARY_NAME)


def browser_phone(console: Console, operator_id: str) -> OperatorConfig | None:
    """The operator's settings when that operator answers calls in the browser."""
    for op in console.config.operators:
        if op.id == operator_id and op.webrtc:
            return op
    return None


def _own_phone(request: web.Request) -> OperatorConfig:
    operator_id = require_session(request).user.operator_id
    op = browser_phone(console_of(request), operator_id) if operator_id else None
    if op is None:
        raise web.HTTPNotFound()
    return op


async def library(_: web.Request) -> web.StreamResponse:
    entry = library_file()
    if not entry.is_file():
        log.error("console.phone_library_missing", fix="make setup")
        raise web.HTTPNotFound()
    return web.Response(
        body=entry.read_bytes(),
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": "max-age=300"},
    )


async def settings(request: web.Request) -> web.StreamResponse:
    """What the page's phone registers with: the operator's own SIP account."""
    session = require_session(request)
    op = _own_phone(request)
    if not csrf_matches(session.csrf_token, request.headers.get(CSRF_HEADER)):
        raise web.HTTPForbidden()
    host = console_of(request).config.asterisk.sip_host
    log.info("console.phone_settings", operator=op.id, user=session.user.username)
    return web.json_response(
        {
            "ws_path": RELAY_PATH,
            "uri": f"sip:{op.sip_user}@{host}",
            "user": op.sip_user,
            "password": op.sip_password,
            "display_name": op.name,
        }
    )


async def relay(request: web.Request) -> web.StreamResponse:
    """The page's SIP WebSocket, relayed to Asterisk's; ends when either side closes or the
    console session ends."""
    session = require_session(request)
    op = _own_phone(request)
    origin = request.headers.get("Origin")
    # Browsers send cookies on a WebSocket from any site: only this site's own pages may open it.
    https = request.app[HTTPS_KEY]
    if origin is None or not origin_allowed(origin, request.host, https=https):
        raise web.HTTPForbidden()
    console = console_of(request)
    ast = console.config.asterisk
    target = f"ws://{ast.http_host}:{ast.http_port}{ASTERISK_WS_PATH}"
    page = web.WebSocketResponse(protocols=(SIP_SUBPROTOCOL,), heartbeat=30)
    async with aiohttp.ClientSession() as client:
        try:
            upstream = await client.ws_connect(target, protocols=(SIP_SUBPROTOCOL,))
        except (aiohttp.ClientError, OSError) as exc:
            log.error("console.phone_asterisk_unreachable", operator=op.id, error=str(exc))
            raise web.HTTPBadGateway() from exc
        await page.prepare(request)
        log.info("console.phone_connected", operator=op.id, user=session.user.username)
        async with upstream:
            tasks = [
                asyncio.create_task(_pump(page, upstream)),
                asyncio.create_task(_pump(upstream, page)),
                asyncio.create_task(_signed_out(request, console)),
            ]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        await page.close()
    log.info("console.phone_disconnected", operator=op.id)
    return page


_Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _pump(source: _Socket, sink: _Socket) -> None:
    async for message in source:
        if message.type is WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type is WSMsgType.ERROR:
            return


async def _signed_out(request: web.Request, console: Console) -> None:
    token = request.cookies.get(SESSION_COOKIE, "")
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(console.closing.wait(), console.settings.session_check_seconds)
        if console.closing.is_set():
            return
        if await load_session(console.db, token, console.settings.session_idle) is None:
            return
