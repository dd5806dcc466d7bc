"""The FastAGI wire protocol where real Asterisk cannot easily be made to misbehave: a peer that
never finishes its environment, replies interleaved with HANGUP and "100 Trying", quoting."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from agi.protocol import AgiHangup, AgiSession, quote, read_request
from agi.server import AgiServer
from siaga.config import ListenConfig, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


async def stream_pair(script: bytes) -> tuple[AgiSession, list[bytes]]:
    """A session whose peer replies with `script` and records what it was sent."""
    sent: list[bytes] = []
    reader = asyncio.StreamReader()
    reader.feed_data(script)
    reader.feed_eof()

    class Writer:
        def write(self, data: bytes) -> None:
            sent.append(data)

        async def drain(self) -> None:
            return None

    return AgiSession(reader, Writer()), sent  # type: ignore[arg-type]


async def test_environment_is_parsed_with_script_query_and_args():
    reader = asyncio.StreamReader()
    reader.feed_data(
        b"agi_network: yes\nagi_network_script: feature?x=1\nagi_channel: PJSIP/1001-00000001\n"
        b"agi_callerid: 1001\nagi_arg_1: 132\nagi_arg_2: \n\n"
    )
    request = await read_request(reader)
    assert (request.key, request.script) == ("", "feature")
    assert request.query == {"x": "1"}
    assert request.args == ["132", ""]
    assert request.caller_number == "1001"


async def test_the_key_is_the_path_before_the_script():
    reader = asyncio.StreamReader()
    reader.feed_data(b"agi_network_script: /s3cret-key/screen?x=1\n\n")
    request = await read_request(reader)
    assert (request.key, request.script, request.query) == ("s3cret-key", "screen", {"x": "1"})


async def test_replies_after_hangup_and_trying_are_read_in_order():
    session, sent = await stream_pair(b"100 result=0 Trying...\nHANGUP\n200 result=1\n")
    result = await session.command("SET VARIABLE X 1")
    assert result["status_code"] == 200
    assert session.hung_up
    try:
        await session.set_variable("Y", "2")
    except AgiHangup:
        pass
    else:
        raise AssertionError("a command after HANGUP must not be sent")
    assert sent == [b"SET VARIABLE X 1\n"]


async def test_missing_file_is_false_not_an_error():
    session, sent = await stream_pair(b"200 result=-1 endpos=0\n200 result=0 endpos=8000\n")
    assert await session.stream_file("/nowhere/prompt") is False
    assert await session.stream_file("beep") is True
    assert sent[0] == b'STREAM FILE "/nowhere/prompt" ""\n'


def test_quote_keeps_values_one_argument():
    assert quote('a "b" \\c\nd') == '"a \\"b\\" \\\\c d"'


async def test_server_survives_peers_that_never_finish_or_speak_nonsense(unused_tcp_port):
    config = load_config(EXAMPLE)
    config = dataclasses.replace(config, agi=ListenConfig("127.0.0.1", unused_tcp_port))
    server = AgiServer(config, pool=None, operators=None)
    await server.start()
    try:
        for payload in (
            b"agi_network: yes\n",
            b"\xff\xfe garbage\n\n",
            b"agi_network_script: x\n\n",
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(payload)
            await writer.drain()
            writer.close()
        # Still serving: a screen request for an anonymous caller ends at once, unscreened.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"agi_network_script: {config.agi_secret}/screen\nagi_callerid: unknown\n\n".encode()
        )
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert server.unscreened == 1
    finally:
        await server.stop()


class Operators:
    """Records what the AGI server asks of the app."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def operator_login(self, operator_id: str) -> None:
        self.calls.append(("login", operator_id))

    def operator_logout(self, operator_id: str) -> None:
        self.calls.append(("logout", operator_id))

    def operator_pause(self, operator_id: str, reason: str) -> None:
        self.calls.append(("pause", operator_id))

    def operator_ready(self, operator_id: str) -> None:
        self.calls.append(("ready", operator_id))


async def test_a_request_without_the_secret_gets_no_service(unused_tcp_port):
    config = load_config(EXAMPLE)
    config = dataclasses.replace(
        config, agi=ListenConfig("127.0.0.1", unused_tcp_port), agi_secret="the-real-secret"
    )
    operators = Operators()
    server = AgiServer(config, pool=None, operators=operators)
    await server.start()

    async def feature(script: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"agi_network_script: {script}\nagi_channel: PJSIP/1002-00000001\n"
            "agi_callerid: 1002\nagi_arg_1: 12\n\n".encode()
        )
        await writer.drain()
        reply = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        return reply

    try:
        for forged in ("feature", "wrong-secret/feature", "the-real-secre/feature", "/feature"):
            assert await feature(forged) == b""  # closed without a word
        assert server.refused == 4
        assert operators.calls == []
        # The dialplan's URL is served (the reply is the first command of the session).
        assert (await feature("the-real-secret/feature")).startswith(b"SET VARIABLE")
        assert operators.calls == [("logout", "1002")]
    finally:
        await server.stop()
