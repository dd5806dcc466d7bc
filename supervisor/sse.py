"""Server-sent events: the live board and the operator desk push JSON to the browser.

A stream loop looks at the centre every `live_interval_seconds` and sends the picture when it
changed; every `session_check_seconds` it re-reads the session, and ends the stream (event
`signed_out`) when the user signed out, was disabled or the session expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from supervisor.console import Console
from supervisor.http import SESSION_COOKIE, console_of
from supervisor.store import load_session

HEARTBEAT_SECONDS = 15.0


async def stream(
    request: web.Request, picture: Callable[[], Awaitable[dict[str, Any]]]
) -> web.StreamResponse:
    console = console_of(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    last: str | None = None
    last_sent = loop.time()
    next_check = loop.time() + console.settings.session_check_seconds
    with contextlib.suppress(ConnectionResetError):
        while not console.closing.is_set() and not _gone(request):
            body = json.dumps(await picture(), ensure_ascii=False, separators=(",", ":"))
            now = loop.time()
            if body != last:
                await response.write(f"data: {body}\n\n".encode())
                last, last_sent = body, now
            elif now - last_sent >= HEARTBEAT_SECONDS:
                await response.write(b": keep-alive\n\n")
                last_sent = now
            if now >= next_check:
                next_check = now + console.settings.session_check_seconds
                if not await _still_signed_in(request, console):
                    await response.write(b"event: signed_out\ndata: {}\n\n")
                    break
            await _pause(console, console.settings.live_interval_seconds)
    return response


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _still_signed_in(request: web.Request, console: Console) -> bool:
    token = request.cookies.get(SESSION_COOKIE, "")
    return await load_session(console.db, token, console.settings.session_idle) is not None


async def _pause(console: Console, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(console.closing.wait(), seconds)
