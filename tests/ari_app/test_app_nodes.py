"""One app, several Asterisk nodes behind the edge (docs/ha.md): each call and every leg of it
on the caller's node, the ACD shared, and a node's resync touching only its own calls."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from shell_support import CONFIG, Centre, FakeRest, centre, channel, digit, stasis_start

from ari_app import app as app_module
from ari_app.call.states import CallState
from db.events import EventKind
from queues.events import OffersHeld
from queues.states import CallPlace, OperatorState
from siaga.config import AsteriskNode

NODES = ("node_a", "node_a-2", "node_b")


A_CALL, B_CALL = "node_a-1733212345.1", "node_b-1733212345.1"


def queued(call_id: str) -> tuple[object, ...]:
    """A caller who pressed 0 (general): queued, offered to a free operator."""
    return stasis_start(call_id), digit(call_id, "0")


def two_nodes() -> tuple[Centre, dict[str, FakeRest]]:
    c = centre(operators=["1001", "1002"])
    asterisk = dataclasses.replace(
        CONFIG.asterisk, nodes=tuple(AsteriskNode(name, "192.0.2.1") for name in NODES)
    )
    c.app.config = dataclasses.replace(c.app.config, asterisk=asterisk)
    rests = {name: FakeRest() for name in NODES}
    c.app._rests = rests  # type: ignore[assignment]
    return c, rests


async def test_a_channel_lives_on_the_node_its_id_starts_with() -> None:
    c, _ = two_nodes()
    app = c.app
    assert app.node_of("node_b-1733212345.17") == "node_b"
    assert app.node_of("node_b-1733212345.17-op1") == "node_b"  # a leg: its call's node
    # Names may contain dashes: the longest name that fits wins.
    assert app.node_of("node_a-2-1733212345.3") == "node_a-2"
    assert app.node_of("node_a-1733212345.3") == "node_a"


async def test_calls_of_two_nodes_share_the_acd_and_ring_on_their_own_node() -> None:
    c, rests = two_nodes()
    app = c.app
    await c.send(*queued(A_CALL), *queued(B_CALL))
    # Each call is answered and bridged on its node, and its operator rung from there.
    assert ("answer", A_CALL) in rests["node_a"].requests
    assert ("answer", B_CALL) in rests["node_b"].requests
    assert rests["node_a"].sent("originate") == [f"{A_CALL}-op1"]
    assert rests["node_b"].sent("originate") == [f"{B_CALL}-op1"]
    assert rests["node_a-2"].requests == []
    # One ACD: the two calls took the two operators, one each.
    assert app.calls[A_CALL].machine.ringing | app.calls[B_CALL].machine.ringing == {
        "1001",
        "1002",
    }
    for call_id in (A_CALL, B_CALL):
        assert app.acd_core.call_place(call_id) is CallPlace.OFFERED


async def test_a_nodes_resync_ends_only_that_nodes_calls() -> None:
    c, rests = two_nodes()
    app = c.app
    await c.send(*queued(A_CALL), *queued(B_CALL))
    rests["node_b"].channels = [
        channel(B_CALL),
        channel(f"{B_CALL}-op1", args=f"operator,{B_CALL},1002"),
    ]
    # Node A restarted and lists nothing; node B's listing does not name A's call either.
    live_b = await app._resync("node_b")
    await c.send()
    assert A_CALL in app.calls and app.calls[A_CALL].machine.state is not CallState.ENDED
    assert live_b == {B_CALL, f"{B_CALL}-op1"}
    live_a = await app._resync("node_a")
    await c.send()
    assert live_a == set()
    assert A_CALL not in app.calls  # gone with node A's Asterisk
    assert B_CALL in app.calls
    assert app.acd_core.operator_state("1002") is OperatorState.OFFERED


async def talking_on_node_a() -> tuple[Centre, dict[str, FakeRest], str]:
    """Two nodes, and operator 1001 in a conversation with node A's caller (its leg's id)."""
    c, rests = two_nodes()
    await c.send(*queued(A_CALL))
    a_leg = rests["node_a"].sent("originate")[0]
    await c.send(stasis_start(a_leg, "operator", A_CALL, "1001"))
    assert c.app.calls[A_CALL].machine.state is CallState.CONNECTED
    return c, rests, a_leg


async def test_the_calls_of_a_lost_node_end_and_free_their_operators() -> None:
    c, _, _ = await talking_on_node_a()
    app = c.app
    await c.send(*queued(B_CALL))
    told: list[tuple[str, datetime, frozenset[str]]] = []
    app.on_node_lost = lambda node, since, held: told.append((node, since, held))
    before = datetime.now(UTC)
    app.node_lost("node_a", down_for=6.0)
    await c.send()
    # The records of node_a's calls the app never held are closed from its rows, from the
    # moment the node went down; the call it holds it ends itself.
    ((node, since, held),) = told
    assert (node, held) == ("node_a", frozenset({A_CALL}))
    assert before - timedelta(seconds=7) < since < before - timedelta(seconds=5)
    assert A_CALL not in app.calls
    (ended,) = c.journal.of(A_CALL, EventKind.CALL_ENDED)
    assert (ended.data["hangup_by"], ended.data["reason"]) == ("system", "node_lost")
    # 1001 is out of the lost call (to wrap-up); node B's call is untouched.
    assert app.acd_core.operator_state("1001") is not OperatorState.ON_CALL
    assert app.calls[B_CALL].machine.state is CallState.OFFERED


async def test_a_lost_nodes_calls_shown_again_are_hung_up_not_adopted() -> None:
    # A partition: node_a lost, its conversation ended as `node_lost` (and 1001 freed); the
    # link comes back with the call still up in node_a's Asterisk, its caller long gone.
    c, rests, a_leg = await talking_on_node_a()
    app = c.app
    app.node_lost("node_a")
    await c.send()
    assert A_CALL not in app.calls
    app.lost_calls.add("node_a-1733212340.9")  # one the records closed (LostNodeCloser)
    rests["node_a"].channels = [
        channel(A_CALL),
        channel(a_leg, args=f"operator,{A_CALL},1001"),
        channel("node_a-1733212340.9"),
    ]
    await app._resync("node_a")
    await c.send()
    assert A_CALL not in app.calls and "node_a-1733212340.9" not in app.calls
    assert set(rests["node_a"].sent("hangup")) >= {A_CALL, a_leg, "node_a-1733212340.9"}
    assert app.acd_core.operator_state("1001") is not OperatorState.ON_CALL
    assert app.lost_calls == set()


async def test_a_new_app_hangs_up_calls_the_records_closed_as_lost_and_adopts_the_rest() -> None:
    # The app active during a partition ended node_a's calls as lost and was replaced; this
    # one finds a ghost among node_a's calls and knows it only from the records.
    c, rests = two_nodes()
    app = c.app
    ghost, caller = "node_a-1733212340.9", "node_a-1733212350.1"
    asked: list[list[str]] = []

    async def ended_as_lost(call_ids: list[str]) -> set[str]:
        asked.append(call_ids)
        return {ghost} & set(call_ids)

    app.ended_as_lost = ended_as_lost
    rests["node_a"].channels = [channel(ghost), channel(caller)]
    await app._resync("node_a")
    await c.send()
    assert asked == [[ghost, caller]]
    assert ghost not in app.calls and rests["node_a"].sent("hangup") == [ghost]
    assert caller in app.calls


async def test_records_that_cannot_answer_leave_every_call_adopted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c, rests = two_nodes()
    app = c.app
    monkeypatch.setattr(app_module, "ENDED_AS_LOST_SECONDS", 0.05)

    async def database_away(call_ids: list[str]) -> set[str]:
        await asyncio.sleep(10)
        return set(call_ids)

    app.ended_as_lost = database_away
    rests["node_a"].channels = [channel(A_CALL)]
    await app._resync("node_a")
    await c.send()
    assert A_CALL in app.calls and rests["node_a"].sent("hangup") == []


class FirstAttempt:
    """A node's event connection whose first connect attempt ends when the test says."""

    def __init__(self) -> None:
        self.over = asyncio.Event()
        self.connected = False

    async def wait_first_attempt(self) -> None:
        await self.over.wait()

    def halt(self) -> None:
        pass


class Presence:
    """The edge's registration watch, whose first answer comes when the test says."""

    def __init__(self) -> None:
        self.reported = asyncio.Event()

    async def wait_reported(self) -> None:
        await self.reported.wait()


def holding(c: Centre) -> tuple[dict[str, FirstAttempt], Presence, asyncio.Task[None]]:
    """The app as it starts: offers held until its nodes and the edge have settled."""
    connections = {name: FirstAttempt() for name in NODES}
    c.app._connections = connections  # type: ignore[assignment]
    presence = Presence()
    c.app._presence = presence  # type: ignore[assignment]
    c.app.to_acd(OffersHeld(True))
    return connections, presence, asyncio.create_task(c.app._release_offers_once_settled())


async def test_no_offer_until_every_node_is_resynced_or_failed_and_the_edge_answered() -> None:
    # A standby taking over: until node B is resynced, its older callers are not queued and
    # its conversations' operators look free, so nobody may be offered a call yet.
    c, rests = two_nodes()
    connections, presence, task = holding(c)
    await c.send(*queued(A_CALL))
    connections["node_a"].over.set()
    connections["node_a-2"].over.set()  # failed: down, which is settled too
    presence.reported.set()
    await c.send()
    assert rests["node_a"].sent("originate") == []
    assert c.app.acd_core.call_place(A_CALL) is CallPlace.WAITING
    connections["node_b"].over.set()
    await asyncio.wait_for(task, 1)
    await c.send()
    assert rests["node_a"].sent("originate") == [f"{A_CALL}-op1"]


async def test_the_edges_first_answer_is_awaited_too() -> None:
    c, rests = two_nodes()
    connections, presence, task = holding(c)
    await c.send(*queued(A_CALL))
    for connection in connections.values():
        connection.over.set()
    await c.send()
    assert rests["node_a"].sent("originate") == []
    presence.reported.set()
    await asyncio.wait_for(task, 1)
    await c.send()
    assert rests["node_a"].sent("originate") == [f"{A_CALL}-op1"]


async def test_a_node_out_of_reach_holds_offers_back_only_the_settle_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app_module, "NODES_SETTLE_SECONDS", 0.1)
    c, rests = two_nodes()
    connections, presence, task = holding(c)
    await c.send(*queued(A_CALL))
    connections["node_a"].over.set()
    presence.reported.set()
    await asyncio.wait_for(task, 1)  # node_b's connect hangs: offers go on without it
    await c.send()
    assert rests["node_a"].sent("originate") == [f"{A_CALL}-op1"]


async def test_a_halted_app_never_releases_offers() -> None:
    c, _ = two_nodes()
    connections, presence, task = holding(c)
    await c.send(*queued(A_CALL))
    c.app.halt()
    for connection in connections.values():
        connection.over.set()
    presence.reported.set()
    await asyncio.gather(task, return_exceptions=True)
    assert c.app.acd_core.call_place(A_CALL) is CallPlace.WAITING  # the new active's to offer


def isolated_app(monkeypatch: pytest.MonkeyPatch, answering: int) -> tuple[Centre, list[bool]]:
    """Node_a's active app, whose probe of the other machines (stack/peers.py) finds
    `answering` of them."""
    monkeypatch.setattr(app_module, "ISOLATED_SECONDS", 0.05)
    c, _ = two_nodes()
    told: list[bool] = []

    async def peers() -> int:
        await asyncio.sleep(0)
        return answering

    c.app._peers = peers
    c.app._on_isolated = lambda: told.append(True)
    return c, told


async def test_an_app_that_reaches_no_other_machine_halts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Partitioned with its own node (and the PostgreSQL primary on it): its lease holds, yet
    # the other app is taking over. It stops acting.
    c, told = isolated_app(monkeypatch, answering=0)
    await c.send(*queued(A_CALL))
    watch = app_module.Isolation(app_module.ISOLATED_SECONDS)
    await asyncio.wait_for(c.app._watch_isolation(watch, every=0.01), 2)
    assert told == [True] and c.app.halted


async def test_an_app_that_reaches_one_other_machine_serves_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c, told = isolated_app(monkeypatch, answering=1)
    watch = app_module.Isolation(app_module.ISOLATED_SECONDS)
    task = asyncio.create_task(c.app._watch_isolation(watch, every=0.01))
    await asyncio.sleep(0.3)  # six times ISOLATED_SECONDS
    assert told == [] and not c.app.halted
    task.cancel()
