"""The AMI user on the real Asterisk: logged in with the configured user and password, it can
neither load a module, nor run a CLI command, nor start System() in a call, directly or through
Exec(). Each was root inside the Asterisk root while the user had the `system` write class.
(The fallback recorder still hears every event it needs: tests/agi/test_agi_fallback_stack.py.)"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from pbx.asterisk import AsteriskInstance
from siaga.config import Config

pytestmark = pytest.mark.integration


@dataclass
class AmiSession:
    """A raw AMI session: one action at a time, its response as a dict."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    next_id: int = 0

    async def action(self, name: str, **fields: str) -> dict[str, str]:
        self.next_id += 1
        action_id = f"t{self.next_id}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{key}: {value}" for key, value in fields.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        while True:  # skip any event until our response
            block = await asyncio.wait_for(self._block(), 10)
            if block.get("ActionID") == action_id:
                return block

    async def _block(self) -> dict[str, str]:
        block: dict[str, str] = {}
        while True:
            raw = await self.reader.readline()
            if not raw:
                raise ConnectionError("AMI closed the session")
            line = raw.decode(errors="replace").rstrip("\r\n")
            if not line and block:
                return block
            key, _, value = line.partition(": ")
            if key:
                block.setdefault(key, value)


@pytest.fixture
async def ami(asterisk: AsteriskInstance, stack_config: Config) -> AsyncIterator[AmiSession]:
    ast = stack_config.asterisk
    reader, writer = await asyncio.open_connection(ast.ami_host, ast.ami_port)
    await reader.readline()  # banner
    session = AmiSession(reader, writer)
    login = await session.action(
        "Login", Username=ast.ami_user, Secret=ast.ami_password, Events="off"
    )
    assert login["Response"] == "Success", login
    yield session
    writer.close()
    # A template that let any of it through must not leave app_system behind for other tests.
    await asyncio.to_thread(asterisk.cli, "module unload app_system.so")


def refused(response: dict[str, str]) -> bool:
    return response["Response"] == "Error" and "denied" in response.get("Message", "").lower()


def app_system_loaded(asterisk: AsteriskInstance) -> bool:
    return "app_system.so" in asterisk.cli("module show like app_system")


async def test_the_ami_user_cannot_load_modules_run_commands_or_start_programs(
    ami: AmiSession, asterisk: AsteriskInstance
) -> None:
    # Where System() would write, inside the instance's own folder in the Asterisk root.
    marker = asterisk.layout.spool_dir / f"ami-{uuid.uuid4().hex[:8]}"
    outside = asterisk.outside(marker)
    # A party that answers: Originate then runs the application on the call.
    answers = "Local/talk-3@siaga-test"

    replies = {
        "ModuleLoad": await ami.action("ModuleLoad", Module="app_system.so", LoadType="load"),
        "Command": await ami.action("Command", Command="module load app_system.so"),
        "Originate System": await ami.action(
            "Originate",
            Channel=answers,
            Application="System",
            Data=f"id > {marker}.system",
            Async="true",
        ),
        "Originate Exec": await ami.action(
            "Originate",
            Channel=answers,
            Application="Exec",
            Data=f"System(id > {marker}.exec)",
            Async="true",
        ),
    }
    # Long enough for an originated call to be answered (0.2 s) and its application to run.
    await asyncio.sleep(2)

    created = sorted(p.name for p in outside.parent.glob(f"{outside.name}*"))
    assert created == [], f"System() ran: {created}"
    assert not await asyncio.to_thread(app_system_loaded, asterisk)
    assert {action: reply for action, reply in replies.items() if not refused(reply)} == {}


async def test_the_ami_user_cannot_change_its_own_event_filter(ami: AmiSession) -> None:
    # Filter needs the `system` class too; the user's events are narrowed in manager.conf.
    reply = await ami.action("Filter", Operation="Add", Filter="Event: Newchannel")
    assert refused(reply), reply


async def test_no_interface_can_load_a_module_modules_conf_does_not_load(
    asterisk: AsteriskInstance, stack_config: Config
) -> None:
    # The ARI user may load modules, and so may the CLI; the instance's module folder holds
    # only what modules.conf loads, so app_system is not there to be loaded by anyone.
    ast = stack_config.asterisk
    token = base64.b64encode(f"{ast.ari_user}:{ast.ari_password}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as session:
        url = f"{ast.ari_url}/ari/asterisk/modules/app_system.so"
        async with session.post(url) as response:
            status = response.status
    cli = await asyncio.to_thread(asterisk.cli, "module load app_system.so")
    assert status >= 400, f"ARI loaded app_system.so ({status})"
    loaded = await asyncio.to_thread(app_system_loaded, asterisk)
    await asyncio.to_thread(asterisk.cli, "module unload app_system.so")  # for the other tests
    assert not loaded, cli
    # What modules.conf loads is all there, and the music and queue of the fallback work.
    assert "res_musiconhold.so" in await asyncio.to_thread(
        asterisk.cli, "module show like res_musiconhold"
    )
