"""The other machines of an HA topology, as an app asks them (stack/peers.py): any HTTP answer
from a machine is reaching it; silence, a refused connection or a timeout is not."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from edge.render import RPC_PATH
from siaga.config import AsteriskNode, EdgeConfig, load_config
from stack.peers import Peers

SHIPPED = Path(__file__).resolve().parents[2] / "siaga.toml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Machines:
    """One HTTP server standing for node_b's ARI and the edge's JSON-RPC; `silent` makes it
    accept and never answer (a machine behind a cut link)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.asked: list[str] = []
        self.silent = False

    async def handle(self, request: web.Request) -> web.Response:
        self.asked.append(request.path)
        if self.silent:
            await asyncio.sleep(1)
        if request.path == RPC_PATH:
            return web.json_response({"jsonrpc": "2.0", "result": {}, "id": 1})
        return web.json_response({"message": "Authentication required"}, status=401)


@pytest.fixture
async def machines() -> AsyncIterator[Machines]:
    found = Machines()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", found.port).start()
    yield found
    await runner.cleanup()


def topology(machines: Machines, *, edge_port: int, node_c_port: int) -> Peers | None:
    config = load_config(SHIPPED)
    nodes = (
        AsteriskNode("node_a", "127.0.0.1", ari_url="http://127.0.0.1:1"),  # ours: not asked
        AsteriskNode("node_b", "127.0.0.2", ari_url=f"http://127.0.0.1:{machines.port}"),
        AsteriskNode("node_c", "127.0.0.3", ari_url=f"http://127.0.0.1:{node_c_port}"),
    )
    config = dataclasses.replace(
        config,
        asterisk=dataclasses.replace(config.asterisk, nodes=nodes),
        edge=EdgeConfig("127.0.0.1", rpc_port=edge_port),
    )
    return Peers.of(config, "node_a")


async def test_each_other_machine_that_answers_counts(machines: Machines) -> None:
    # node_b's ARI answers (a 401 is an answer), the edge answers, node_c is down (refused).
    peers = topology(machines, edge_port=machines.port, node_c_port=free_port())
    assert peers is not None
    try:
        assert await peers.answering() == 2
        assert await peers.reachable()
        assert sorted(set(machines.asked)) == ["/RPC", "/ari/asterisk/info"]
    finally:
        await peers.close()


async def test_silent_and_refusing_machines_leave_the_app_alone(machines: Machines) -> None:
    machines.silent = True  # a cut link: connections hang
    peers = topology(machines, edge_port=machines.port, node_c_port=free_port())
    assert peers is not None
    peers.timeout = 0.2
    try:
        assert await peers.answering() == 0
        assert not await peers.reachable()
        assert peers.alone
        machines.silent = False
        assert await peers.reachable() and not peers.alone
    finally:
        await peers.close()


def test_the_single_box_has_no_peers() -> None:
    config = load_config(SHIPPED)
    assert Peers.of(config, None) is None
    assert Peers.of(config, "node_a") is None  # no [edge], no nodes
