"""A pair of Kamailio edges (docs/ha.md "A pair of edges"), on hosts made of network
namespaces: keepalived gives the edge's address to one of them, the phones' registrations are
copied to both (DMQ), and when the edge holding the address is lost, the other takes it within
a few seconds. Calls up then keep going and end cleanly, callers dialling then are answered
once it has, and the operator's phone is rung without registering again. The lost edge comes
back as the backup, with every registration, and can take over in turn.

Both nodes run Asterisk alone (no app): each call leaves Stasis by the stranded-call guard for
the dialplan's fallback queue, which rings the operator through the edge."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.cel import CelEvent
from edge.kamailio import Kamailio
from siaga.config import load_config
from testbed.ha import HaTopology, ha_topology
from testbed.sipp import Sipp, SippPhone

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
# keepalived's backup takes the address three adverts (1 s each) after the holder's last one,
# plus its skew; the rest is slack for a loaded 2-core machine.
TAKEOVER_WITHIN = 5.0
COPIED_WITHIN = 3.0  # a registration reaches the other edge (DMQ)
# Now and then one call fails across a takeover (2 of about 960 in the benchmark, cause not
# found yet: docs/ha.md, "Not built yet"); more than one is a defect.
RARE_LOSS = 1


@pytest.fixture(scope="module")
def ha(provisioned: tuple[Path, Path]) -> Iterator[HaTopology]:
    root, prompts = provisioned
    base = load_config(EXAMPLE)
    base = dataclasses.replace(base, operators=base.operators[:1])
    with ha_topology(root, prompts, base, edge_pair=True) as topology:
        yield topology


def knows(edge: Kamailio, user: str) -> bool:
    try:
        return f"AoR: {user}" in edge.rpc("ul.dump")
    except Exception:  # an edge not (yet) running knows nothing
        return False


async def wait_known(ha: HaTopology, user: str, edges: list[str], present: bool) -> None:
    deadline = time.monotonic() + COPIED_WITHIN
    while any(knows(ha.edges[name], user) != present for name in edges):
        if time.monotonic() > deadline:
            state = {name: knows(ha.edges[name], user) for name in edges}
            raise AssertionError(f"{user} registered at {state}, wanted {present} everywhere")
        await asyncio.sleep(0.05)


async def ended(sipp: Sipp) -> None:
    """SIPp done, its calls ended cleanly but for the rare loss."""
    assert sipp.process is not None
    await asyncio.wait_for(sipp.process.wait(), 90)
    assert sipp.failed_calls() <= RARE_LOSS, sipp.diagnostics()


async def wait_holder(ha: HaTopology, *, not_: str | None = None) -> tuple[str, float]:
    holder = await asyncio.to_thread(ha.wait_edge_holder, 30.0, not_=not_)
    return holder, time.time()


def operator_answers(events: list[CelEvent], user: str, since: float) -> list[CelEvent]:
    return [
        e
        for e in events
        if e.kind == "ANSWER"
        and e.channel.startswith(f"PJSIP/{user}-")
        and e.at.timestamp() >= since
    ]


@pytest.fixture
async def phone(ha: HaTopology) -> object:
    sipp_phone = ha.operator_phone()
    await sipp_phone.start()  # REGISTER with digest auth at the shared address
    try:
        yield sipp_phone
    finally:
        await sipp_phone.unregister()
        await sipp_phone.stop()


async def test_one_edge_holds_the_address_and_both_know_every_phone(ha: HaTopology) -> None:
    holder, _ = await wait_holder(ha)
    assert holder == "edge"  # the first of [edge] hosts has the higher priority
    op = ha.config.operators[0]
    sipp_phone = ha.operator_phone()
    await sipp_phone.start()
    try:
        await wait_known(ha, op.sip_user, ["edge", "edge_b"], True)
        await sipp_phone.unregister()
        await wait_known(ha, op.sip_user, ["edge", "edge_b"], False)
    finally:
        await sipp_phone.stop()
    # The backup probes the nodes itself: it knows they are up before it is needed.
    for name in ("edge", "edge_b"):
        nodes = await asyncio.to_thread(ha.edges[name].nodes)
        assert sorted(nodes.values()) == ["AP", "AP"], (name, nodes)


async def test_the_other_edge_takes_over_calls_go_on_and_the_phone_is_rung(
    ha: HaTopology, phone: SippPhone
) -> None:
    user = ha.config.operators[0].sip_user
    first, _ = await wait_holder(ha)
    second = "edge_b" if first == "edge" else "edge"
    await wait_known(ha, user, [first, second], True)

    # A steady 1 call/s, each held 3 s: calls are up, and calls are dialling, at the kill.
    sipp = ha.callers(calls=24, rate=1, hold_ms=3000)
    await sipp.start()
    await asyncio.sleep(8)
    killed_at = time.time()
    await asyncio.to_thread(ha.kill_edge, first)
    holder, took_at = await wait_holder(ha, not_=first)
    assert holder == second
    assert took_at - killed_at <= TAKEOVER_WITHIN
    # Every call ends cleanly: those up at the kill hang up through the new holder (their
    # BYE follows the Record-Route, the shared address), and those dialled while nobody held
    # it are answered on a retransmission of their INVITE.
    await ended(sipp)
    # The operator's phone, registered before the kill, is rung through the new holder.
    rung = [e for node in ha.nodes for e in operator_answers(ha.cel(node), user, took_at)]
    assert rung, "the operator's phone never answered a call after the takeover"
    assert [f for f in ha.edges[second].log_lines("OPERATOR") if float(f[0]) >= took_at]

    # The lost edge boots again: it stays the backup (nopreempt) and gets every registration
    # from the holder, so it can take over in turn.
    await asyncio.to_thread(ha.start_edge, first)
    await wait_known(ha, user, [first], True)
    assert await asyncio.to_thread(ha.edge_holder) == second

    sipp = ha.callers(calls=6, rate=1, hold_ms=2000)
    await sipp.start()
    await asyncio.sleep(2)
    killed_at = time.time()
    await asyncio.to_thread(ha.kill_edge, second)
    holder, took_at = await wait_holder(ha, not_=second)
    assert holder == first and took_at - killed_at <= TAKEOVER_WITHIN
    await ended(sipp)
    rung = [e for node in ha.nodes for e in operator_answers(ha.cel(node), user, took_at)]
    assert rung, "the restarted edge never rang the phone it learnt from the other"
    await asyncio.to_thread(ha.start_edge, second)
    await wait_known(ha, user, [second], True)


async def test_a_holder_whose_kamailio_dies_gives_the_address_away(ha: HaTopology) -> None:
    first, _ = await wait_holder(ha)
    second = "edge_b" if first == "edge" else "edge"
    kamailio = ha.edges[first]
    killed_at = time.time()
    await asyncio.to_thread(kamailio.kill)  # keepalived lives on: its check of Kamailio fails
    holder, took_at = await wait_holder(ha, not_=first)
    assert holder == second
    assert took_at - killed_at <= TAKEOVER_WITHIN
    sipp = ha.callers(calls=2, rate=2, hold_ms=500)
    await sipp.start()
    await sipp.wait(timeout=60)
    await asyncio.to_thread(kamailio.start)
    await asyncio.sleep(3)  # its check passes again: it stays the backup all the same
    assert await asyncio.to_thread(ha.edge_holder) == second
