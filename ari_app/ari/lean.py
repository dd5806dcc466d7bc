"""A lean HTTP/1.1 transport for ARI's REST requests: keep-alive sockets, nothing else.

Every call to 112 costs fourteen REST requests. aiohttp is a general client (cookies,
redirects, proxies, tracing, multipart...) and spends 150-250 µs of the app's CPU on each,
more than Asterisk spends serving it. ARI needs little of that: small JSON bodies, answered
with a Content-Length, over a handful of keep-alive connections to one local server. This
transport writes the request in one piece and reads the status line, the headers and the
body straight from the socket.

What a transport must do (transport.py): send one request, return the raw status and body;
no HTTP answer at all (refused, reset, closed, timed out, unparsable) raises `AriUnavailable`.
A socket goes back to the pool only after a complete response; any error, timeout or
cancellation mid-exchange closes it. A reused socket that gives no byte of answer was most
likely closed by the server as idle (keep-alive expiry), but the server may also have read the
request first: only idempotent requests (GET, PUT, DELETE) are sent again, once, on a new
socket. A POST (originate, answer, play...) is never sent twice: it fails as unavailable, and
the caller decides (another operator, the next command). Idle sockets are dropped before
Asterisk's keep-alive runs out, so that case stays rare.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlencode

from yarl import URL

from ari_app.ari.config import AriConfig
from ari_app.ari.errors import AriUnavailable
from ari_app.ari.transport import AriRequest, AriResponse

# Asterisk closes an idle HTTP session after `session_keep_alive` (http.conf, 15 s by default).
# An idle socket older than this is closed here first, so that reuse rarely meets a closed one.
IDLE_SECONDS = 10.0
# More sockets than this stay open only while requests run; the rest are closed when done.
IDLE_LIMIT = 32
MAX_HEADER_LINES = 100
MAX_BODY_BYTES = 64 * 1024 * 1024
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class _Closed(Exception):
    """The server closed the socket before any byte of the response came back."""


@dataclass(slots=True, eq=False)  # hashed by identity: one per socket
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def close(self) -> None:
        self.writer.close()


class LeanTransport:
    """Sends ARI requests over keep-alive HTTP/1.1 sockets of its own. `close()` when done."""

    def __init__(self, config: AriConfig, max_connections: int = 100) -> None:
        base = URL(config.rest_url)
        self._host = base.host or "127.0.0.1"
        self._port = base.port or (443 if base.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if base.scheme == "https" else None
        )
        self._prefix = base.raw_path.rstrip("/")
        self._connect_timeout = config.connect_timeout
        host_header = base.raw_host if base.is_default_port() else f"{base.raw_host}:{self._port}"
        self._fixed_headers = (
            f"Host: {host_header}\r\n"
            f"Authorization: {config.authorization()}\r\n"
            "Accept: application/json\r\n"
        )
        self._idle: deque[_Connection] = deque()
        self._busy: set[_Connection] = set()
        # Requests beyond this wait here for a socket, instead of Asterisk refusing sessions
        # over its limit (http.conf `sessionlimit`).
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def send(self, request: AriRequest) -> AriResponse:
        if self._closed:
            raise AriUnavailable(request.method, request.path, None, "transport closed")
        payload = self._encode(request)
        try:
            async with asyncio.timeout(request.timeout), self._slots:
                if self._closed:  # closed while this request waited for a slot
                    raise _Closed
                connection, reused = await self._acquire()
                try:
                    return await self._exchange(connection, payload)
                except _Closed:
                    if not reused or request.method not in IDEMPOTENT:
                        raise
                return await self._exchange(await self._open(), payload)
        except TimeoutError as exc:
            raise AriUnavailable(
                request.method, request.path, None, f"timed out after {request.timeout}s"
            ) from exc
        except (
            _Closed,
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ) as exc:
            reason = "connection closed" if isinstance(exc, _Closed) else str(exc)
            raise AriUnavailable(
                request.method, request.path, None, f"{type(exc).__name__}: {reason}"
            ) from exc

    async def close(self) -> None:
        """Close every socket; requests under way fail as unavailable."""
        self._closed = True
        while self._idle:
            self._idle.popleft().close()
        for connection in list(self._busy):
            connection.close()

    # -- one exchange

    def _encode(self, request: AriRequest) -> bytes:
        target = self._prefix + request.path
        if request.params:
            target += "?" + urlencode(dict(request.params))
        head = f"{request.method} {target} HTTP/1.1\r\n{self._fixed_headers}"
        if request.json is None:
            body = b""
            if request.method in ("POST", "PUT"):
                head += "Content-Length: 0\r\n"
        else:
            body = json.dumps(request.json, separators=(",", ":")).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return head.encode("latin-1") + b"\r\n" + body

    async def _exchange(self, connection: _Connection, payload: bytes) -> AriResponse:
        """Write the request, read the whole response; the socket goes back only if clean."""
        reader = connection.reader
        reusable = False
        self._busy.add(connection)
        try:
            try:
                connection.writer.write(payload)
                head = await reader.readuntil(b"\r\n\r\n")
            except ConnectionError as exc:
                raise _Closed from exc
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _Closed from exc
                raise
            status, length, chunked, keep_alive = _parse_head(head)
            while 100 <= status < 200:  # interim answers (100 Continue...): the real one follows
                status, length, chunked, keep_alive = _parse_head(
                    await reader.readuntil(b"\r\n\r\n")
                )
            if chunked:
                body = await _read_chunked(reader)
            elif length is not None:
                body = await reader.readexactly(length) if length else b""
            elif status in (204, 304):
                body = b""
            else:
                body, keep_alive = await _read_to_close(reader), False
            reusable = keep_alive
            return AriResponse(status=status, body=body)
        finally:
            self._busy.discard(connection)
            if reusable and not self._closed:
                self._release(connection)
            else:
                connection.close()

    # -- the pool

    async def _acquire(self) -> tuple[_Connection, bool]:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: least likely expired
            if now - connection.idle_since < IDLE_SECONDS and not connection.reader.at_eof():
                return connection, True
            connection.close()
        return await self._open(), False

    async def _open(self) -> _Connection:
        async with asyncio.timeout(self._connect_timeout):
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._ssl, limit=MAX_BODY_BYTES
            )
        return _Connection(reader, writer)

    def _release(self, connection: _Connection) -> None:
        if len(self._idle) >= IDLE_LIMIT:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)


def _parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """Status, Content-Length, chunked?, keep-alive? from a response's head (ValueError if bad)."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or len(lines) > MAX_HEADER_LINES:
        raise ValueError(f"not an HTTP/1.x response head: {lines[0][:40]!r}")
    status = int(rest[:3])
    length: int | None = None
    chunked = False
    keep_alive = version == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
            if not 0 <= length <= MAX_BODY_BYTES:
                raise ValueError(f"bad Content-Length {length}")
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            keep_alive = value == "keep-alive" or (keep_alive and value != "close")
    return status, length, chunked, keep_alive


async def _read_to_close(reader: asyncio.StreamReader) -> bytes:
    """A body without a length: everything up to the server's close."""
    parts: list[bytes] = []
    total = 0
    while chunk := await reader.read(65536):
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise ValueError("body too large")
        parts.append(chunk)
    return b"".join(parts)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip() or b"x", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        total += size
        if total > MAX_BODY_BYTES:
            raise ValueError("chunked body too large")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
