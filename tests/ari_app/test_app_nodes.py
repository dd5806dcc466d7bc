"""One app, several Asterisk nodes behind the edge (docs/ha.md): each call and every leg of it
on the caller's node, the ACD shared, and a node's resync touching only its own calls."""

from __future__ import annotations

import dataclasses

from shell_support import CONFIG, Centre, FakeRest, centre, channel, digit, stasis_start

from ari_app.call.states import CallState
from db.events import EventKind
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


async def test_the_calls_of_a_lost_node_end_and_free_their_operators() -> None:
    c, rests = two_nodes()
    app = c.app
    await c.send(*queued(A_CALL))
    a_leg = rests["node_a"].sent("originate")[0]
    await c.send(stasis_start(a_leg, "operator", A_CALL, "1001"))
    assert app.calls[A_CALL].machine.state is CallState.CONNECTED
    await c.send(*queued(B_CALL))
    app.node_lost("node_a")
    await c.send()
    assert A_CALL not in app.calls
    (ended,) = c.journal.of(A_CALL, EventKind.CALL_ENDED)
    assert (ended.data["hangup_by"], ended.data["reason"]) == ("system", "node_lost")
    # 1001 is out of the lost call (to wrap-up); node B's call is untouched.
    assert app.acd_core.operator_state("1001") is not OperatorState.ON_CALL
    assert app.calls[B_CALL].machine.state is CallState.OFFERED
