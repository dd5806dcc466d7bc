"""The failure tests of the high-availability plan (docs/ha.md) on the whole topology as hosts
(testbed/topology.py): a pair of Kamailio edges sharing the edge's address, the
pg_auto_failover monitor, two nodes each with Asterisk, PostgreSQL and a `siaga run` with [ha],
SIPp callers dialling 112 at the edge, and one SIPp answering for every operator registered
there. Besides the issue's failures, the edge holding the shared address is lost too.

The judges are the parts' own records: SIPp's per-call log (when each caller sent its INVITE and
was answered), each node's CEL file (who was connected, when, which operator legs were
originated), the `calls` rows on whichever PostgreSQL is the primary. Failures 4 (the PostgreSQL
primary killed) and 5 (one Asterisk killed) are test_ha_records.py and test_ha_edge.py.

The load is scaled down from the issue's 5 calls/s to 2 (2 cores run all of it: two Asterisks,
three PostgreSQL servers, Kamailio, two apps, SIPp), each call pressing 1 and holding 4 s; ten
operators answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from db.cel import AsteriskCall
from db.events import HangupBy
from dialplan.render import STRANDED_AFTER_SECONDS
from edge.render import NODE_ANSWER_MS
from testbed.topology import (
    LEASE_SECONDS,
    CallerStream,
    CallFate,
    Topology,
    disturbed_until,
    fates,
    originations,
    topology,
)

pytestmark = pytest.mark.integration

RATE = 2.0  # calls a second
HOLD_MS = 4000  # each caller holds this long after its digit
FAILOVER_LIMIT = 5.0  # the "<= 5 s"
SETTLE_TIMEOUT = 60.0
EDGE_RARE_LOSS = 1  # calls failed across an edge takeover (test_ha_edge_pair.py)


@pytest.fixture(scope="module")
async def bed(provisioned: tuple[Path, Path]) -> AsyncIterator[Topology]:
    root, prompts = provisioned
    async with topology(root, prompts, edge_pair=True) as whole:
        yield whole


@pytest.fixture
async def whole(bed: Topology) -> Topology:
    """Every part up, one app active and one standby, whatever the test before left."""
    await bed.ensure_whole()
    return bed


def by_node(bed: Topology) -> dict[str, list]:
    return {node: bed.asterisk_calls(node) for node in bed.apps}


def up_in(stream: CallerStream, call: AsteriskCall) -> bool:
    """Whether `call` is one of `stream`'s callers in a conversation now. A node killed by a
    test before left its calls with no end in its CEL file: those are not this test's."""
    return (
        stream.call_number(call.caller_number) is not None
        and call.connected_at is not None
        and call.ended_at is None
    )


def report(what: str, value: float) -> None:
    print(f"{what}: {value:.2f} s")


async def closed_rows(bed: Topology, call_ids: set[str], timeout: float) -> dict[str, dict]:
    """The `calls` rows of `call_ids` once every one of them is closed (or the last seen)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = {r["call_id"]: dict(r) for r in await bed.calls() if r["call_id"] in call_ids}
        if set(rows) == call_ids and all(r["ended_at"] is not None for r in rows.values()):
            return rows
        if time.monotonic() > deadline:
            return rows
        await asyncio.sleep(1)


async def test_node_killed_whole_new_calls_answered_via_the_other_records_complete(whole):
    bed = whole
    stream = bed.callers(rate=RATE, calls=44, hold_ms=HOLD_MS)  # 22 s of calls
    await stream.start()
    await asyncio.sleep(7)  # calls up on both nodes
    victim = bed.active()
    assert victim is not None
    survivor = bed.other(victim)
    killed_at = await bed.kill_node(victim)
    up_on_survivor = [c for c in bed.asterisk_calls(survivor) if up_in(stream, c)]
    took = await bed.wait_active(survivor, killed_at)
    report("the survivor's app active after the kill", took)
    await stream.wait(timeout=60)

    calls = fates(stream, by_node(bed))
    after = [f for f in calls if f.invite >= killed_at]
    disturbed = disturbed_until(calls, killed_at)
    report("new calls answered normally again after the kill", disturbed)
    assert disturbed <= FAILOVER_LIMIT
    # Every call from then on was answered via the survivor and reached a human.
    late = [f for f in after if f.invite >= killed_at + FAILOVER_LIMIT]
    assert late
    assert all(f.answered is not None and f.node == survivor for f in late), late
    assert all(f.human is not None for f in late), [f for f in late if f.human is None]
    humans = [
        f.human - f.invite for f in after if f.human is not None and f.invite < killed_at + 10
    ]
    report("time to a human, calls of the 10 s after the kill (max)", max(humans))

    # The conversations up on the survivor went on, untouched, until their callers hung up.
    assert up_on_survivor
    ended = {c.call_id: c for c in bed.asterisk_calls(survivor)}
    for call in up_on_survivor:
        end = ended[call.call_id]
        assert end.hangup_by is HangupBy.CALLER, end
        assert end.ended_at is not None and end.answered_at is not None
        assert (end.ended_at - end.answered_at).total_seconds() >= HOLD_MS / 1000, end

    # The killed node's calls the records hold are closed by the new active app, which lost
    # the node, without waiting for the node to come back (its CEL file is on it).
    cut = [
        c
        for c in bed.asterisk_calls(victim)
        if c.ended_at is None and stream.call_number(c.caller_number) is not None
    ]
    assert cut, "no call was up on the killed node"
    recorded = {r["call_id"] for r in await bed.calls()} & {c.call_id for c in cut}
    assert recorded, "the killed app had recorded none of the calls cut"
    lost = await closed_rows(bed, recorded, SETTLE_TIMEOUT)
    for call_id in recorded:
        assert (lost[call_id]["hangup_by"], lost[call_id]["end_reason"]) == (
            "system",
            "node_lost",
        ), lost[call_id]

    # Settle: the killed node is started again (its app reconciles its own node's CEL with its
    # own Asterisk). Then every call either node saw has a closed row, and the calls cut on
    # the killed node are closed as such.
    await bed.restart_node(victim)
    await bed.wait_roles()
    seen = {
        c.call_id
        for node_calls in by_node(bed).values()
        for c in node_calls
        if stream.call_number(c.caller_number) is not None
    }
    rows = await closed_rows(bed, seen, SETTLE_TIMEOUT)
    missing = seen - set(rows)
    assert not missing, f"calls Asterisk saw without a row: {sorted(missing)}"
    open_rows = [r for r in rows.values() if r["ended_at"] is None]
    assert not open_rows, open_rows
    for call in cut:
        reason = "node_lost" if call.call_id in recorded else "pbx_restart"
        assert rows[call.call_id]["end_reason"] == reason, rows[call.call_id]


async def test_active_app_killed_standby_takes_over_calls_bridged_callers_in_order(whole):
    bed = whole
    active = bed.active()
    assert active is not None
    standby = bed.other(active)
    operators = len(bed.config.operators)
    # Every operator in a conversation (on both nodes: the edge alternates), then callers
    # waiting for one, in their order.
    talking = bed.callers(rate=5, calls=operators, hold_ms=16000)
    await talking.start()
    await asyncio.sleep(operators / 5 + 2)
    waiting = bed.callers(rate=2, calls=4, hold_ms=30000)
    await waiting.start()
    await asyncio.sleep(3)

    killed_at = await bed.kill_app(active)
    took = await bed.wait_active(standby, killed_at)
    report("the standby active after the kill", took)
    assert took <= FAILOVER_LIMIT
    await talking.wait(timeout=60)
    await waiting.wait(timeout=60)

    talked = fates(talking, by_node(bed))
    assert {f.node for f in talked} == set(bed.apps)  # conversations on both nodes
    for fate in talked:
        assert fate.call is not None and fate.human is not None, fate
        assert fate.human < killed_at  # in conversation before the kill
        # Still bridged across the takeover: the caller hung up, after all of its hold.
        assert fate.call.hangup_by is HangupBy.CALLER, fate
        assert fate.call.ended_at is not None
        assert fate.call.ended_at.timestamp() - fate.human >= 16 - 3, fate

    # The waiting callers were offered an operator in their order (the talking calls ended
    # 0.2 s apart, so operators came free one by one), by the nodes' record of the offers.
    waited = sorted(fates(waiting, by_node(bed)), key=lambda f: f.invite)
    assert all(f.human is not None for f in waited), waited
    assert all(_human(f) > killed_at for f in waited), "nobody was waiting at the kill"
    app = bed.config.asterisk.app
    offered: dict[str, float] = {}
    for node in bed.apps:
        for leg in originations(node, bed.cel(node), app):
            offered[leg.call_id] = min(leg.at, offered.get(leg.call_id, leg.at))
    assert all(_call_id(f) in offered for f in waited), "a waiting caller was never offered"
    firsts = [offered[_call_id(f)] for f in waited]
    seen = [(f.number, f.node, f.invite, offered[_call_id(f)], f.human) for f in waited]
    assert firsts == sorted(firsts), f"killed at {killed_at}, took over {took:.2f} s: {seen}"


def _human(fate: CallFate) -> float:
    assert fate.human is not None
    return fate.human


def _call_id(fate: CallFate) -> str:
    assert fate.call is not None
    return fate.call.call_id


async def test_partitioned_active_app_never_offers_at_the_same_time_as_the_new_one(whole):
    bed = whole
    stream = bed.callers(rate=RATE, calls=50, hold_ms=2000)  # 25 s of short calls
    await stream.start()
    await asyncio.sleep(5)
    cut_off = bed.active()
    assert cut_off is not None
    other = bed.other(cut_off)
    partitioned_at = await bed.partition(cut_off)
    took = await bed.wait_active(other, partitioned_at)
    report("the other app active after the partition", took)
    await asyncio.sleep(8)  # the new active offers calls while the old one is cut off
    healed_at = time.time()
    await bed.heal(cut_off)
    await stream.wait(timeout=60)

    # New callers were answered within the limit all through the cut: those sent to the
    # cut-off node's Asterisk go to the other once the edge's timeout is out, and there the
    # stranded-call guard hands them to the fallback while the other app takes over.
    during = [f for f in fates(stream, by_node(bed)) if partitioned_at <= f.invite < healed_at]
    assert during, "no call was sent during the partition"
    assert all(f.answered is not None for f in during), [f for f in during if f.answered is None]
    longest = max(f.answered - f.invite for f in during if f.answered is not None)
    report("the longest a new call rang during the partition", longest)
    assert longest <= FAILOVER_LIMIT
    # A call whose INVITE reached the cut-off node the instant before the cut (its 100 Trying
    # came back, its answer did not) goes to the other node once NODE_ANSWER_MS is out
    # (test_ha_edge.py), where the guard answers it if no app does yet: every caller of the
    # stream was answered, none after longer than those two and some slack.
    every = fates(stream, by_node(bed))
    assert all(f.answered is not None for f in every), [f for f in every if f.answered is None]
    in_flight_limit = NODE_ANSWER_MS / 1000 + STRANDED_AFTER_SECONDS + 2.0
    assert max(f.answered - f.invite for f in every if f.answered is not None) <= in_flight_limit

    # Asterisk's own record of who was offered a call: during the partition, an operator leg
    # on the cut-off node can only come from the old active app (the new one cannot reach
    # that node), one on the other node only from the new active.
    old, new = bed.offers_around(cut_off, partitioned_at, healed_at)
    assert new, "the new active app offered no call"
    if old:
        report("the old app's last offer after the partition", max(old) - partitioned_at)
        assert max(old) - partitioned_at <= LEASE_SECONDS + 0.5
    report("the new app's first offer after the partition", min(new) - partitioned_at)
    assert max(old, default=partitioned_at) < min(new)
    assert min(new) - partitioned_at >= LEASE_SECONDS
    # The cut-off app stopped by itself (its lease, or finding itself alone), before the new
    # active's first offer: not only once the link came back and its ARI replaced the other.
    halts = bed.apps[cut_off].halts(partitioned_at)
    assert halts, "the cut-off app never stopped"
    stopped_at, why = halts[0]
    report(f"the cut-off app stopped ({why}) after the partition", stopped_at - partitioned_at)
    assert why != "ApplicationReplaced" and stopped_at < min(new), halts


async def test_edge_lost_the_other_takes_its_address_calls_go_on_and_reach_operators(whole):
    bed = whole
    stream = bed.callers(rate=RATE, calls=36, hold_ms=HOLD_MS)  # 18 s of calls
    await stream.start()
    await asyncio.sleep(6)  # calls up on both nodes, through the edge holding the address
    up = {c.call_id for node in bed.apps for c in bed.asterisk_calls(node) if up_in(stream, c)}
    lost, killed_at = await bed.kill_edge()
    other = await asyncio.to_thread(bed.ha.wait_edge_holder, 30.0, not_=lost)
    report("the other edge holds the address after the loss", time.time() - killed_at)
    await stream.wait(timeout=90)

    calls = fates(stream, by_node(bed))
    disturbed = disturbed_until(calls, killed_at)
    report("new calls answered normally again after the loss", disturbed)
    assert disturbed <= FAILOVER_LIMIT
    # Every caller was answered and reached an operator: those dialling while no edge held
    # the address on a retransmission of their INVITE; the operators' phones, registered at
    # the lost edge, rung through the other, which had their registrations already. And no
    # conversation was cut: SIP stays with the nodes and phones, the edge only routes. Now and
    # then one call fails across a takeover (docs/ha.md, "Not built yet"): more is a defect.
    unserved = [f for f in calls if f.answered is None or f.human is None]
    assert len(unserved) <= EDGE_RARE_LOSS, unserved
    assert up, "no call was in a conversation at the loss"
    ended = {c.call_id: c for node in bed.apps for c in bed.asterisk_calls(node)}
    cut = [ended[call_id] for call_id in up if ended[call_id].hangup_by is not HangupBy.CALLER]
    assert len(unserved) + len(cut) <= EDGE_RARE_LOSS, cut
    assert [f for f in bed.ha.edges[other].log_lines("OPERATOR") if float(f[0]) >= killed_at]

    # The lost edge boots again and is the backup, with the phones' registrations.
    await asyncio.to_thread(bed.ha.start_edge, lost)
    await asyncio.sleep(3)
    assert await asyncio.to_thread(bed.ha.edge_holder) == other
    user = bed.config.operators[0].sip_user
    assert f"AoR: {user}" in await asyncio.to_thread(bed.ha.edges[lost].rpc, "ul.dump")


async def test_failed_node_started_again_rejoins_as_standby_and_takes_calls(whole):
    bed = whole
    victim = bed.active()
    assert victim is not None
    survivor = bed.other(victim)
    killed_at = await bed.kill_node(victim)
    await bed.wait_active(survivor, killed_at)
    # Promoted (pg_auto_failover's wait_primary: a primary whose standby is away).
    await asyncio.to_thread(bed.cluster.wait_state, survivor, "wait_primary", SETTLE_TIMEOUT)

    # Start it again: its keeper, its Asterisk, its app. Nothing else.
    started = time.monotonic()
    await bed.restart_node(victim)
    assert await bed.wait_roles() == survivor  # the app: a standby
    await asyncio.to_thread(bed.cluster.wait_state, victim, "secondary", SETTLE_TIMEOUT)
    await bed.wait_dispatcher()
    report("the node back whole after its start", time.monotonic() - started)

    stream = bed.callers(rate=RATE, calls=6, hold_ms=1000)
    await stream.start()
    await stream.wait(timeout=40)
    calls = fates(stream, by_node(bed))
    assert all(f.answered is not None for f in calls), calls
    assert {f.node for f in calls} == set(bed.apps)  # Kamailio sends it calls again
