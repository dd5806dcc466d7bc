"""The first slice of high availability (docs/ha.md) on hosts made of network namespaces: the
Kamailio edge spreads 112 calls over two Asterisk nodes, an operator's phone registered at the
edge is rung by either node's fallback queue, a killed node leaves the set within the probe
interval and no call is sent into it, and it rejoins by itself once started again.

Kamailio's own records (its routing log lines, `kamcmd dispatcher.list`) are checked against
each node's own (its CEL file). A node that takes calls and never answers them loses them to
the other."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.cel import CelEvent
from edge.kamailio import is_active
from edge.render import NODE_ANSWER_MS
from siaga.config import load_config
from testbed.ha import SIP_PORT, HaTopology, ha_topology

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
PROBE_INTERVAL = 1  # seconds
TIMEOUT_MS = 1000
# Out of the set within one probe and its timeout; the slack is for a loaded 2-core machine.
OUT_WITHIN = PROBE_INTERVAL + TIMEOUT_MS / 1000 + 1.0


@pytest.fixture(scope="module")
def ha(provisioned: tuple[Path, Path]) -> Iterator[HaTopology]:
    root, prompts = provisioned
    base = load_config(EXAMPLE)
    base = dataclasses.replace(base, operators=base.operators[:1])
    with ha_topology(
        root, prompts, base, probe_interval_seconds=PROBE_INTERVAL, timeout_ms=TIMEOUT_MS
    ) as topology:
        yield topology


def trunk_calls(events: list[CelEvent]) -> list[CelEvent]:
    """The calls that came in through the edge (each one's first channel)."""
    return [e for e in events if e.kind == "CHAN_START" and e.channel.startswith("PJSIP/trunk-")]


async def wait_for_nodes(ha: HaTopology, active: dict[str, bool], timeout: float) -> float:
    """Poll the dispatcher until each named node is (or is not) active; the time it was seen."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = await asyncio.to_thread(ha.edge.nodes)
        if all(is_active(nodes.get(ha.node_uri(n), "")) == up for n, up in active.items()):
            return time.time()
        if time.monotonic() > deadline:
            raise AssertionError(f"dispatcher never showed {active} in {timeout} s: {nodes}")
        await asyncio.sleep(0.05)


async def test_calls_land_on_both_nodes_and_the_operator_at_the_edge_answers_from_either(ha):
    await wait_for_nodes(ha, {"node_a": True, "node_b": True}, timeout=10)
    op = ha.config.operators[0]
    phone = ha.operator_phone()
    await phone.start()  # REGISTER with digest auth at the edge
    try:
        assert f"AoR: {op.sip_user}" in ha.edge.rpc("ul.dump")
        before = {n: len(trunk_calls(ha.cel(n))) for n in ha.nodes}
        sipp = ha.callers(calls=4, rate=2, hold_ms=4000)
        await sipp.start()
        await sipp.wait(timeout=45)  # every call answered and ended cleanly
    finally:
        await phone.unregister()  # the next test's calls must not ring a phone that is gone
        await phone.stop()
    assert f"AoR: {op.sip_user}" not in ha.edge.rpc("ul.dump")
    for node in ha.nodes:
        events = ha.cel(node)
        assert len(trunk_calls(events)) - before[node] == 2, node  # round robin
        # Each node's own ids start with its systemname: they never collide across nodes.
        assert all(e.unique_id.startswith(f"{node}-") for e in events)
        answered = [
            e
            for e in events
            if e.kind == "ANSWER" and e.channel.startswith(f"PJSIP/{op.sip_user}-")
        ]
        assert answered, f"the operator's phone never answered a call of {node}"
    rung_by = {fields[3] for fields in ha.edge.log_lines("OPERATOR")}
    assert rung_by == {ha.host(n).address for n in ha.nodes}


async def test_a_killed_node_leaves_the_set_within_the_probe_interval_and_rejoins(ha):
    await wait_for_nodes(ha, {"node_a": True, "node_b": True}, timeout=10)
    a_uri, b_uri = ha.node_uri("node_a"), ha.node_uri("node_b")
    a_before = len(trunk_calls(ha.cel("node_a")))
    started = time.time()
    # A steady 4 calls/s for 20 s, each held 1.5 s.
    sipp = ha.callers(calls=80, rate=4, hold_ms=1500)
    await sipp.start()
    await asyncio.sleep(4)

    killed_at = time.time()
    ha.kill_node("node_b")
    out_at = await wait_for_nodes(ha, {"node_a": True, "node_b": False}, timeout=OUT_WITHIN)
    await asyncio.sleep(5)  # calls keep coming: all of them must go to node A

    restarted_at = time.time()
    await asyncio.to_thread(ha.start_node, "node_b")
    back_at = await wait_for_nodes(ha, {"node_a": True, "node_b": True}, timeout=10)
    assert sipp.process is not None
    await asyncio.wait_for(sipp.process.wait(), 60)  # calls cut on B fail: not asserted here

    dispatched = [(float(ts), call, uri) for ts, call, uri in ha.edge.log_lines("DISPATCH")]
    dispatched = [d for d in dispatched if d[0] >= started]
    # Kamailio's own record of when B left the set: a failed probe (or a call timing out).
    left = [
        float(fields[0])
        for tag in ("NODE-DOWN", "NODE-FAILED")
        for fields in ha.edge.log_lines(tag)
        if fields[-1] == b_uri and float(fields[0]) >= killed_at
    ]
    assert left, f"Kamailio never took {b_uri} out:\n{ha.edge.tail()}"
    left_at = min(left)
    assert left_at - killed_at <= OUT_WITHIN
    assert out_at - killed_at <= OUT_WITHIN
    # After that, until B was started again, not one call went to B, and calls did go on.
    into_dead = [d for d in dispatched if d[2] == b_uri and left_at < d[0] < restarted_at]
    assert into_dead == []
    assert len([d for d in dispatched if left_at < d[0] < restarted_at]) >= 10
    # Back in the set by itself, and given calls again.
    assert back_at - restarted_at <= PROBE_INTERVAL + 2.0
    assert [d for d in dispatched if d[2] == b_uri and d[0] > back_at]
    # Node A's own record holds every call Kamailio finally sent it (a call that timed out on
    # B went on to A: its last dispatch counts).
    routes: dict[str, list[str]] = {}
    for _, call, uri in sorted(dispatched):
        routes.setdefault(call, []).append(uri)
    final = {call: uris[-1] for call, uris in routes.items()}
    # The calls sent to B between its death and its removal timed out there and went to A.
    failed_over = [uris for uris in routes.values() if len(uris) > 1]
    assert failed_over, "no call was sent to B before it left the set: nothing failed over"
    assert all(uris == [b_uri, a_uri] for uris in failed_over), failed_over
    to_a = sum(1 for uri in final.values() if uri == a_uri)
    assert len(trunk_calls(ha.cel("node_a"))) - a_before == to_a


async def test_a_node_that_takes_calls_and_never_answers_loses_them_to_the_other(ha):
    """A node that says 100 Trying and nothing more, as one cut off the instant after it took
    the INVITE (or hung) looks to the edge; here testbed/silent_node.py in node B's place,
    answering the probes. The edge gives each call it sent there to node A once NODE_ANSWER_MS
    is out, and the caller is answered, instead of ringing for the INVITE's whole timeout."""
    await wait_for_nodes(ha, {"node_a": True, "node_b": True}, timeout=10)
    a_uri, b_uri = ha.node_uri("node_a"), ha.node_uri("node_b")
    ha.kill_node("node_b")
    host = ha.host("node_b")
    silent = await asyncio.create_subprocess_exec(
        *host.wrapper,
        sys.executable,
        "-m",
        "testbed.silent_node",
        host.address,
        str(SIP_PORT),
        stdout=asyncio.subprocess.PIPE,
    )
    assert silent.stdout is not None
    try:
        assert (await asyncio.wait_for(silent.stdout.readline(), 10)).strip() == b"ready"
        await wait_for_nodes(ha, {"node_a": True, "node_b": True}, timeout=10)  # its probes
        started = time.time()
        a_before = len(trunk_calls(ha.cel("node_a")))
        sipp = ha.callers(calls=6, rate=2, hold_ms=1000)
        await sipp.start()
        assert sipp.process is not None
        # Every caller answered and hung up cleanly (SIPp's exit code counts failed calls).
        assert await asyncio.wait_for(sipp.process.wait(), 60) == 0
    finally:
        silent.kill()
        await silent.wait()
        await asyncio.to_thread(ha.start_node, "node_b")
    await wait_for_nodes(ha, {"node_a": True, "node_b": True}, timeout=10)

    routes: dict[str, list[tuple[float, str]]] = {}
    for ts, call, uri in sorted(ha.edge.log_lines("DISPATCH")):
        if float(ts) >= started:
            routes.setdefault(call, []).append((float(ts), uri))
    assert len(routes) == 6
    failed_over = [r for r in routes.values() if r[0][1] == b_uri]
    assert failed_over, f"no call was sent to the silent node: {routes}"
    for route in failed_over:
        assert [uri for _, uri in route] == [b_uri, a_uri], route
        waited = route[1][0] - route[0][0]
        # NODE_ANSWER_MS, not the probe's timeout (the node did reply) nor fr_inv_timer's 120 s.
        assert NODE_ANSWER_MS / 1000 - 0.1 <= waited <= NODE_ANSWER_MS / 1000 + 1.0, route
    assert all(route[-1][1] == a_uri for route in routes.values()), routes
    assert len(trunk_calls(ha.cel("node_a"))) - a_before == 6
