"""An in-process fake of Asterisk's ARI wire protocol: REST JSON under /ari and the
/ari/events websocket. It checks Basic auth like Asterisk, records every request as it
arrived on the wire, answers from a programmable table, and lets a test push frames to,
close, or cut the event websockets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import ari_samples
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

USERNAME = "siaga"
PASSWORD = "s3cret-pw"


@dataclass
class Recorded:
    method: str
    path: str  # decoded, e.g. /ari/deviceStates/PJSIP/1001
    raw_path: str  # as sent, e.g. /ari/deviceStates/PJSIP%2F1001?...
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any

    def param(self, name: str) -> str | None:
        values = [v for k, v in self.query if k == name]
        assert len(values) <= 1, f"parameter {name} sent {len(values)} times"
        return values[0] if values else None


@dataclass
class Reply:
    status: int = 204
    body: Any = None  # JSON-serialisable, or bytes sent verbatim
    delay: float = 0.0


@dataclass
class WsConn:
    ws: web.WebSocketResponse
    request: web.Request
    query: dict[str, str]
    headers: dict[str, str]
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class FakeAri:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: dict[tuple[str, str], list[Reply]] = {}
        self.conns: list[WsConn] = []
        self.ws_attempts = 0
        self.ws_reject_status: int | None = None
        # A deaf server neither reads nor answers pings: a silently dead Asterisk.
        self.deaf = False
        self.ws_upgrade_delay = 0.0  # > 0: the upgrade hangs that long (first attempt only)
        self._released = asyncio.Event()
        self._conn_changed = asyncio.Condition()
        self.url = ""
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._rest)
        self._server = TestServer(app)

    # -- programming the fake -------------------------------------------------------------

    def reply(
        self, method: str, path: str, status: int, body: Any = None, *, delay: float = 0.0
    ) -> None:
        """Answer the next request(s) to METHOD /ari<path>; the last reply sticks."""
        self.replies.setdefault((method, "/ari" + path), []).append(Reply(status, body, delay))

    def sent(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == "/ari" + path]

    # -- websocket control ----------------------------------------------------------------

    @property
    def conn(self) -> WsConn:
        return self.conns[-1]

    async def wait_conns(self, count: int, timeout: float = 5.0) -> WsConn:
        async def reached() -> None:
            async with self._conn_changed:
                await self._conn_changed.wait_for(lambda: len(self.conns) >= count)

        await asyncio.wait_for(reached(), timeout)
        return self.conns[count - 1]

    async def send(self, *messages: dict[str, Any] | str) -> None:
        for message in messages:
            text = message if isinstance(message, str) else json.dumps(message)
            await self.conn.ws.send_str(text)

    async def close_ws(self, code: int = 1000) -> None:
        """Clean close: a close frame, so the client's iterator simply ends."""
        await self.conn.ws.close(code=code)

    def cut_ws(self) -> None:
        """Abrupt loss: the TCP connection dies without a close frame."""
        transport = self.conn.request.transport
        assert transport is not None
        transport.abort()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await self._server.start_server()
        self.url = str(self._server.make_url("")).rstrip("/")

    async def close(self) -> None:
        self._released.set()
        for conn in self.conns:
            with contextlib.suppress(Exception):
                await conn.ws.close()
        await self._server.close()

    # -- handlers -------------------------------------------------------------------------

    @staticmethod
    def _authorised(request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        return request.headers.get("Authorization") == expected

    @staticmethod
    def _unauthorised() -> web.Response:
        return web.json_response(
            {"message": "Authentication required"},
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'},
        )

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                request.raw_path,
                list(request.query.items()),
                dict(request.headers),
                body,
            )
        )
        if not self._authorised(request):
            return self._unauthorised()
        queue = self.replies.get((request.method, request.path))
        if queue:
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
        elif (request.method, request.path) == ("GET", "/ari/asterisk/info"):
            reply = Reply(200, ari_samples.asterisk_info())
        elif request.method == "GET":
            reply = Reply(404, {"message": "Resource not found"})
        else:
            reply = Reply(204)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if isinstance(reply.body, bytes):
            return web.Response(status=reply.status, body=reply.body)
        if reply.body is None:
            return web.Response(status=reply.status)
        return web.json_response(reply.body, status=reply.status)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        self.ws_attempts += 1
        if not self._authorised(request):
            return self._unauthorised()
        if self.ws_reject_status is not None:
            return web.json_response({"message": "rejected"}, status=self.ws_reject_status)
        if self.ws_upgrade_delay:
            delay, self.ws_upgrade_delay = self.ws_upgrade_delay, 0.0
            await asyncio.sleep(delay)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = WsConn(ws, request, dict(request.query), dict(request.headers))
        async with self._conn_changed:
            self.conns.append(conn)
            self._conn_changed.notify_all()
        try:
            if self.deaf:
                await self._released.wait()
                return ws
            async for message in ws:  # answers pings; ends when either side closes
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            conn.closed.set()
        return ws


@contextlib.asynccontextmanager
async def running_fake() -> AsyncIterator[FakeAri]:
    fake = FakeAri()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
