"""Operator presence from the Kamailio edge's registrations (docs/ha.md), on hosts made of
network namespaces: an operator's phone registers at the edge, and the RegistrationWatch that
the app runs reports it registered; unregistered (Expires 0) and expired, it reports it gone.
The edge answers its JSON-RPC to the nodes only, and only the registrar's read commands.

Only the edge runs: presence needs no Asterisk."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge import presence
from edge.registrations import DUMP_REQUEST, RegistrationWatch
from edge.render import rpc_url
from siaga.config import load_config
from testbed.ha import SIP_PORT, HaTopology, ha_topology
from testbed.hosts import Host
from testbed.sipp import Sipp, SippPhone, register_scenario

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
FIXTURES = Path(__file__).resolve().parents[1] / "edge" / "fixtures"
REPORTED_WITHIN = 2.0  # seconds, with the watch's default interval of 1 s


@pytest.fixture(scope="module")
def ha(provisioned: tuple[Path, Path]) -> Iterator[HaTopology]:
    root, prompts = provisioned
    with ha_topology(root, prompts, load_config(EXAMPLE), start_nodes=False) as topology:
        yield topology


class Reports:
    """What the watch reported, and when."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str, bool]] = []

    def __call__(self, operator_id: str, registered: bool) -> None:
        self.seen.append((time.monotonic(), operator_id, registered))

    def of(self, operator_id: str) -> list[bool]:
        return [registered for _, op, registered in self.seen if op == operator_id]

    async def wait_for(self, operator_id: str, registered: bool, since: float) -> float:
        """Seconds from `since` until the watch reported (operator_id, registered)."""
        deadline = since + REPORTED_WITHIN + 3.0
        while time.monotonic() < deadline:
            for at, op, value in self.seen:
                if at >= since and (op, value) == (operator_id, registered):
                    return at - since
            await asyncio.sleep(0.02)
        raise AssertionError(f"never reported ({operator_id}, {registered}): {self.seen}")


def ask(host: Host, url: str, method: str, *params: str) -> tuple[int, str]:
    """A JSON-RPC request from `host` (curl run inside it): the HTTP status and the body."""
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1})
    result = host.run(["curl", "-s", "-m", "5", "-w", "\n%{http_code}", "-d", body, url])
    text, _, status = result.stdout.rpartition("\n")
    return int(status or 0), text.strip()


def shape(value: Any) -> Any:
    """The keys of a JSON answer, all the way down (list items merged), without the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            merged |= shape(item) if isinstance(item, dict) else {}
        return [merged]
    return None


def register_once(ha: HaTopology, user: str, password: str, expires: int) -> Sipp:
    """One REGISTER of `user` from the operators' host (a contact with no phone behind it)."""
    host = ha.host("operators")
    return Sipp(
        register_scenario(user=user, password=password, contact_port=5999, expires=expires),
        SIP_PORT,
        target_host=ha.host("edge").address,
        local_ip=host.address,
        wrapper=host.wrapper,
        extra=("-au", user, "-ap", password),
    )


async def dump(url: str) -> dict[str, Any]:
    """The edge's ul.dump answer, asked for by the test process (allowed like a node)."""
    async with aiohttp.ClientSession() as session, session.post(url, json=DUMP_REQUEST) as reply:
        assert reply.status == 200
        answer: dict[str, Any] = json.loads(await reply.text())
    return answer


async def test_the_watch_follows_an_operators_phone_registering_and_leaving(ha):
    op, other = ha.config.operators[0], ha.config.operators[1]
    url = rpc_url(ha.config.edge)
    reports = Reports()
    watch = RegistrationWatch.for_config(ha.config, reports)
    host = ha.host("operators")
    phone = SippPhone(
        op.sip_user,
        op.sip_password,
        SIP_PORT,
        registrar_host=ha.host("edge").address,
        local_ip=host.address,
        wrapper=host.wrapper,
    )
    watch.start()
    try:
        # The first answer reports everyone: nobody is registered yet.
        await reports.wait_for(other.id, False, since=time.monotonic())
        assert reports.of(op.id) == [False]

        await phone.start()  # REGISTER with digest auth at the edge
        assert await reports.wait_for(op.id, True, since=time.monotonic()) <= REPORTED_WITHIN
        registered = await dump(url)
        assert presence.registered(presence.parse_dump(registered), {op.sip_user: op.id}) == {op.id}
        # The unit tests' sample is what this Kamailio answers.
        sample = json.loads((FIXTURES / "ul_dump_registered.json").read_text())
        assert shape(registered) == shape(sample)

        await phone.unregister()  # Expires 0
        assert await reports.wait_for(op.id, False, since=time.monotonic()) <= REPORTED_WITHIN

        # A registration that runs out: the registrar's floor lowered for the test (60 s by
        # default), then one REGISTER for 2 s that is never refreshed.
        ha.edge.rpc("cfg.set_now_int", "registrar", "min_expires", "1")
        short = register_once(ha, op.sip_user, op.sip_password, expires=2)
        before = time.monotonic()
        await short.start()
        await short.wait(timeout=15)
        registered_at = time.monotonic()
        await reports.wait_for(op.id, True, since=before)
        gone = await reports.wait_for(op.id, False, since=registered_at)
        assert 2.0 - 0.5 <= gone <= 2.0 + REPORTED_WITHIN
        expired = await dump(url)
        assert presence.parse_dump(expired)[0].contacts[0].live is False  # still listed
        assert shape(expired) == shape(sample)

        # Nothing else changed: the other operator was reported once, at the first answer.
        assert reports.of(op.id) == [False, True, False, True, False]
        assert reports.of(other.id) == [False]
        assert watch.unanswered is False
    finally:
        await watch.stop()
        await phone.stop()


async def test_only_the_nodes_may_ask_and_only_for_registrations(ha):
    url = rpc_url(ha.config.edge)
    status, body = ask(ha.host("node_a"), url, "ul.dump")
    assert status == 200
    assert json.loads(body)["result"]["Domains"][0]["Domain"]["Domain"] == "location"
    # Kamailio's own answer (an AoR not registered is a JSON-RPC error), not the edge's 403.
    status, body = ask(ha.host("node_b"), url, "ul.lookup", "location", "nobody")
    assert status == 500
    assert json.loads(body)["error"]["message"].startswith("AOR not found")
    # Not a node: refused, whatever it asks.
    assert ask(ha.host("callers"), url, "ul.dump") == (403, "not a node")
    assert ask(ha.host("operators"), url, "ul.dump")[0] == 403
    # A node, but not a read of the registrations.
    assert ask(ha.host("node_a"), url, "core.version") == (403, "only ul.dump and ul.lookup")
    assert ask(ha.host("node_a"), url, "ul.rm")[0] == 403
    refused = [fields[1] for fields in ha.edge.log_lines("RPC-REFUSED")]
    assert ha.host("callers").address in refused


async def test_a_lost_edge_changes_nobodys_presence(ha):
    op = ha.config.operators[0]
    reports = Reports()
    watch = RegistrationWatch.for_config(ha.config, reports)
    long = register_once(ha, op.sip_user, op.sip_password, expires=300)
    await long.start()
    await long.wait(timeout=15)
    watch.start()
    try:
        await reports.wait_for(op.id, True, since=time.monotonic())
        ha.edge.stop()
        await asyncio.sleep(3.0)  # three polls of a dead edge
        assert watch.unanswered is True
        assert reports.of(op.id) == [True]
        # Started again, it answers again: its registrations were in memory, so the phone is
        # gone until it registers again.
        ha.edge.start()
        await reports.wait_for(op.id, False, since=time.monotonic())
        assert watch.unanswered is False
    finally:
        await watch.stop()
