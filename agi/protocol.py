"""The FastAGI wire protocol: Asterisk connects, sends `agi_*: value` lines and an empty line,
then we send commands one per line and read one result line each (`200 result=1`).

Replies are parsed with panoramisk's parser. Asterisk may also send `HANGUP` when the channel
goes away mid-session: from then on commands are pointless, so they raise `AgiHangup`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from panoramisk.utils import parse_agi_result

MAX_ENV_LINES = 200
MAX_LINE = 4096


class AgiError(Exception):
    """The session cannot go on (bad request, broken connection, refused command)."""


class AgiHangup(AgiError):
    """The channel hung up: Asterisk said HANGUP."""


@dataclass(frozen=True, slots=True)
class AgiRequest:
    env: Mapping[str, str]

    @property
    def script(self) -> str:
        """The script of agi://host:port/<key>/<script>?query: its path's last part."""
        return self._path.rpartition("/")[2]

    @property
    def key(self) -> str:
        """The key of agi://host:port/<key>/<script>: what proves the caller is our Asterisk
        ("" when the path has no key)."""
        return self._path.rpartition("/")[0]

    @property
    def _path(self) -> str:
        return self.env.get("agi_network_script", "").partition("?")[0].strip("/")

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.env.get("agi_network_script", "").partition("?")[2]))

    @property
    def args(self) -> list[str]:
        out = []
        for i in range(1, 64):
            key = f"agi_arg_{i}"
            if key not in self.env:
                break
            out.append(self.env[key])
        return out

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def caller_number(self) -> str:
        return self.env.get("agi_callerid", "")

    @property
    def unique_id(self) -> str:
        return self.env.get("agi_uniqueid", "")


async def read_request(reader: asyncio.StreamReader) -> AgiRequest:
    env: dict[str, str] = {}
    for _ in range(MAX_ENV_LINES):
        raw = await reader.readline()
        if not raw.endswith(b"\n"):
            raise AgiError("connection closed before the AGI environment ended")
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            return AgiRequest(env)
        key, sep, value = line.partition(":")
        if sep:
            env[key.strip()] = value.strip()
    raise AgiError("AGI environment too long")


def quote(value: str) -> str:
    """An AGI command argument: double-quoted, with quotes and backslashes escaped."""
    clean = value.replace("\r", " ").replace("\n", " ")
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgiSession:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.hung_up = False

    async def command(self, line: str) -> dict[str, Any]:
        """Send one command; return panoramisk's parsed result (status_code, result, ...)."""
        if self.hung_up:
            raise AgiHangup("channel hung up")
        self._writer.write(line.encode("utf-8") + b"\n")
        await self._writer.drain()
        while True:
            raw = await self._reader.readline()
            if not raw.endswith(b"\n"):
                raise AgiError(f"connection closed waiting for the result of {line!r}")
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if text == "HANGUP":
                # Sent once when the channel goes; the command's own result still follows.
                self.hung_up = True
                continue
            result: dict[str, Any] = parse_agi_result(text)
            if result.get("status_code") == 100:  # "100 result=0 Trying..."
                continue
            if result.get("error") == "AGIUsageError":
                await self._reader.readline()  # the usage text ends the 520 reply
            if "error" in result and result.get("error") != "AGIAppError":
                raise AgiError(f"{line!r}: {result.get('msg') or result.get('error')}")
            return result

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {quote(name)} {quote(value)}")

    async def stream_file(self, path: str) -> bool:
        """Play a sound file (no extension); False when Asterisk could not open it."""
        result = await self.command(f'STREAM FILE {quote(path)} ""')
        return result.get("error") != "AGIAppError"
