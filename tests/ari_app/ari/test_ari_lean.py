"""LeanTransport on the wire: keep-alive, an expired socket, odd framings, broken servers.

A raw asyncio server plays Asterisk's HTTP server here, so each test decides exactly what
comes back on which socket (aiohttp's test server would frame everything itself).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from ari_app.ari import AriConfig, AriRequest, AriUnavailable, LeanTransport

Handler = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawServer:
    handler: Handler
    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request (head and Content-Length body), or None when the client closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        request = head + (await reader.readexactly(length) if length else b"")
        self.requests.append(request)
        return request

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await self.handler(self, reader, writer)
        except ConnectionError:
            pass  # the client hung up on us: some tests do that on purpose
        finally:
            self.open_now -= 1
            writer.close()


def ok(body: bytes = b'{"ok":true}', *, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def keep_alive(server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    while await server.read_request(reader) is not None:
        writer.write(ok())
        await writer.drain()


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[RawServer]:
    server = RawServer(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


@contextlib.asynccontextmanager
async def lean(server: RawServer, **kwargs: int) -> AsyncIterator[LeanTransport]:
    config = AriConfig(username="siaga", password="secret", url=f"http://127.0.0.1:{server.port}")
    transport = LeanTransport(config, **kwargs)
    try:
        yield transport
    finally:
        await transport.close()


def get(path: str = "/channels", timeout: float = 2.0) -> AriRequest:
    return AriRequest("GET", path, timeout=timeout)


async def test_sequential_requests_reuse_one_socket() -> None:
    async with raw_server(keep_alive) as server, lean(server) as transport:
        for _ in range(5):
            response = await transport.send(get())
            assert (response.status, response.body) == (200, b'{"ok":true}')

    assert server.connections == 1
    assert len(server.requests) == 5


async def test_the_request_on_the_wire() -> None:
    async with raw_server(keep_alive) as server, lean(server) as transport:
        await transport.send(
            AriRequest("POST", "/channels/c%2F1/variable", {"variable": "A B"}, {"x": 1})
        )

    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /ari/channels/c%2F1/variable?variable=A+B HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "Authorization: Basic c2lhZ2E6c2VjcmV0" in lines
    assert "Content-Type: application/json" in lines
    assert body == b'{"x":1}'
    assert f"Content-Length: {len(body)}" in lines


async def test_a_socket_the_server_closed_while_idle_is_replaced_without_an_error() -> None:
    async def one_per_socket(server: RawServer, reader, writer) -> None:
        # Answers one request, then closes, as Asterisk does when keep-alive runs out.
        if await server.read_request(reader) is not None:
            writer.write(ok())
            await writer.drain()

    async with raw_server(one_per_socket) as server, lean(server) as transport:
        await transport.send(get())
        await asyncio.sleep(0.05)  # the close reaches us
        response = await transport.send(get())

    assert response.status == 200
    assert server.connections == 2
    assert len(server.requests) == 2  # each request reached the server exactly once


async def drop_second(server: RawServer, reader, writer) -> None:
    """The first socket answers once, then takes the next request and closes unanswered."""
    if await server.read_request(reader) is None:
        return
    writer.write(ok())
    await writer.drain()
    if server.connections == 1:
        await server.read_request(reader)
        return
    while await server.read_request(reader) is not None:
        writer.write(ok())
        await writer.drain()


async def test_an_idempotent_request_a_reused_socket_left_unanswered_is_sent_once_more() -> None:
    async with raw_server(drop_second) as server, lean(server) as transport:
        await transport.send(get())
        response = await transport.send(AriRequest("DELETE", "/channels/c1"))

    assert response.status == 200
    assert server.connections == 2
    assert [r.split(b" ", 1)[0] for r in server.requests] == [b"GET", b"DELETE", b"DELETE"]


async def test_a_post_a_reused_socket_left_unanswered_is_never_sent_twice() -> None:
    # The server may have acted on it (an operator's phone already ringing): unavailable.
    originate = AriRequest("POST", "/channels", {"endpoint": "PJSIP/1001"})
    async with raw_server(drop_second) as server, lean(server) as transport:
        await transport.send(get())
        with pytest.raises(AriUnavailable) as caught:
            await transport.send(originate)

    assert caught.value.status is None
    assert [r.split(b" ", 1)[0] for r in server.requests] == [b"GET", b"POST"]


async def test_a_fresh_socket_closed_without_an_answer_is_unavailable_not_retried() -> None:
    async def hang_up(server: RawServer, reader, writer) -> None:
        await server.read_request(reader)

    async with raw_server(hang_up) as server, lean(server) as transport:
        with pytest.raises(AriUnavailable) as caught:
            await transport.send(get())

    assert caught.value.status is None
    assert server.connections == 1


async def test_connection_close_is_honoured() -> None:
    async def close_each(server: RawServer, reader, writer) -> None:
        while await server.read_request(reader) is not None:
            writer.write(ok(extra="Connection: close\r\n"))
            await writer.drain()

    async with raw_server(close_each) as server, lean(server) as transport:
        for _ in range(3):
            assert (await transport.send(get())).status == 200

    assert server.connections == 3


async def test_chunked_and_empty_bodies() -> None:
    async def framings(server: RawServer, reader, writer) -> None:
        while (request := await server.read_request(reader)) is not None:
            if b"/chunked" in request:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"4\r\n[1,2\r\n2;ext=1\r\n,3\r\n1\r\n]\r\n0\r\n\r\n"
                )
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

    async with raw_server(framings) as server, lean(server) as transport:
        chunked = await transport.send(get("/chunked"))
        empty = await transport.send(AriRequest("DELETE", "/channels/c1"))
        again = await transport.send(get("/chunked"))

    assert (chunked.status, chunked.body) == (200, b"[1,2,3]")
    assert (empty.status, empty.body) == (204, b"")
    assert again.body == b"[1,2,3]"
    assert server.connections == 1


async def test_a_body_until_close_when_no_length_is_given() -> None:
    async def http10(server: RawServer, reader, writer) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n[1,")
        await writer.drain()
        await asyncio.sleep(0.05)  # the rest comes later, then the close
        writer.write(b"2]")
        await writer.drain()

    async with raw_server(http10) as server, lean(server) as transport:
        response = await transport.send(get())

    assert (response.status, response.body) == (200, b"[1,2]")


async def test_an_interim_answer_is_skipped_and_the_socket_stays_in_step() -> None:
    async def interim(server: RawServer, reader, writer) -> None:
        while (request := await server.read_request(reader)) is not None:
            if b"/first" in request:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(ok(request.split(b" ", 2)[1]))
            await writer.drain()

    async with raw_server(interim) as server, lean(server) as transport:
        first = await transport.send(get("/first"))
        second = await transport.send(get("/second"))

    assert (first.status, first.body) == (200, b"/ari/first")
    assert second.body == b"/ari/second"
    assert server.connections == 1


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["not-http", "bad-status", "negative-length", "short-body", "bad-chunk"],
)
async def test_a_garbled_answer_is_unavailable(reply: bytes) -> None:
    async def garble(server: RawServer, reader, writer) -> None:
        await server.read_request(reader)
        writer.write(reply)
        await writer.drain()

    async with raw_server(garble) as server, lean(server) as transport:
        with pytest.raises(AriUnavailable) as caught:
            await transport.send(get())

    assert caught.value.status is None
    assert (caught.value.method, caught.value.path) == ("GET", "/channels")


async def test_a_slow_answer_times_out_and_the_request_is_not_sent_again() -> None:
    async def slow(server: RawServer, reader, writer) -> None:
        await server.read_request(reader)
        await reader.read()  # never answers; returns when the client gives up and closes

    async with raw_server(slow) as server, lean(server) as transport:
        with pytest.raises(AriUnavailable) as caught:
            await transport.send(get(timeout=0.1))
        await asyncio.sleep(0.05)
        assert server.open_now == 0  # the socket of the request that timed out is closed

    assert "timed out" in caught.value.message
    assert len(server.requests) == 1
    assert server.connections == 1


async def test_a_request_cancelled_mid_answer_leaves_no_half_read_socket_behind() -> None:
    async def late_bodies(server: RawServer, reader, writer) -> None:
        while (request := await server.read_request(reader)) is not None:
            path = request.split(b" ", 2)[1]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(path))
            await writer.drain()
            await asyncio.sleep(0.2 if b"/slow" in path else 0)
            writer.write(path)
            await writer.drain()

    async with raw_server(late_bodies) as server, lean(server) as transport:
        task = asyncio.ensure_future(transport.send(get("/slow")))
        await asyncio.sleep(0.05)  # the head has come, the body has not
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        response = await transport.send(get("/next"))

    assert response.body == b"/ari/next"  # not the slow request's late body
    assert server.connections == 2


async def test_concurrent_requests_stay_within_the_socket_limit() -> None:
    async def slowish(server: RawServer, reader, writer) -> None:
        while await server.read_request(reader) is not None:
            await asyncio.sleep(0.01)
            writer.write(ok())
            await writer.drain()

    async with raw_server(slowish) as server, lean(server, max_connections=4) as transport:
        responses = await asyncio.gather(*(transport.send(get()) for _ in range(40)))

    assert [r.status for r in responses] == [200] * 40
    assert server.most_open <= 4
    assert len(server.requests) == 40


async def test_a_closed_transport_refuses_and_keeps_no_socket() -> None:
    async with raw_server(keep_alive) as server:
        async with lean(server) as transport:
            await transport.send(get())
        await asyncio.sleep(0.05)
        assert server.open_now == 0
        with pytest.raises(AriUnavailable):
            await transport.send(get())


async def test_closing_fails_the_requests_under_way_and_those_waiting_for_a_socket() -> None:
    async def silent(server: RawServer, reader, writer) -> None:
        await server.read_request(reader)
        await reader.read()

    async with raw_server(silent) as server, lean(server, max_connections=1) as transport:
        under_way = asyncio.ensure_future(transport.send(get("/a", timeout=30)))
        waiting = asyncio.ensure_future(transport.send(get("/b", timeout=30)))
        await asyncio.sleep(0.05)
        await transport.close()
        async with asyncio.timeout(1):  # at once, not when the requests' own timeouts run out
            results = await asyncio.gather(under_way, waiting, return_exceptions=True)
        await asyncio.sleep(0.05)

        assert [type(r) for r in results] == [AriUnavailable, AriUnavailable]
        assert len(server.requests) == 1  # the waiting one never went out
        assert server.open_now == 0
