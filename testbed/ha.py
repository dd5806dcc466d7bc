"""The high-availability topology on one machine (docs/ha.md): the Kamailio edge and the
Asterisk nodes, each on a host of testbed/hosts.py, plus hosts for callers and operators.
With `edge_pair`, two edges (hosts "edge" and "edge_b") share the edge's address by
keepalived, and copy each other the phones' registrations.

    with ha_topology(root, prompts, base) as ha:
        ha.host("callers") ...; ha.nodes["node_b"] ...; ha.edge.nodes()

Everything (processes, namespaces, the nodes' folders in the Asterisk root) is gone on exit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from db.cel import CelEvent, parse_lines
from edge.kamailio import EdgeError, Kamailio
from edge.render import EdgeLayout, node_uri
from edge.vrrp import Keepalived, holds
from pbx.asterisk import AsteriskInstance
from siaga.config import AsteriskNode, Config, EdgeConfig, node_config
from testbed.hosts import Host, Network
from testbed.sipp import Sipp, SippPhone, caller_scenario, ringing_phone_scenario

NODE_NAMES = ("node_a", "node_b")
HOST_NAMES = ("edge", *NODE_NAMES, "callers", "operators")
EDGE_NAMES = ("edge", "edge_b")  # a pair of edges
PAIR_HOST_NAMES = ("edge", "edge_b", *NODE_NAMES, "callers", "operators")
SIP_PORT = 5060
ARI_PORT = 8088
# The pair's shared address: this far into the run's /24, beyond any host's own.
SHARED_ADDRESS_OFFSET = 250


def shared_address(bed: Network) -> str:
    """The pair of edges' shared address in `bed`'s subnet (held by no host of its own)."""
    assert bed.plan is not None
    return str(bed.plan.subnet.network_address + SHARED_ADDRESS_OFFSET)


def ha_config(
    base: Config,
    addresses: dict[str, str],
    *,
    nodes: Sequence[str] = NODE_NAMES,
    probe_interval_seconds: int = 1,
    timeout_ms: int = 1000,
    shared_address: str | None = None,
) -> Config:
    """`base` with an [edge] on host "edge", one [[asterisk.nodes]] per node host, and 112 calls
    accepted from the callers' host (through the edge). With `shared_address`, the edge is the
    pair of hosts "edge" and "edge_b" sharing it."""
    asterisk = dataclasses.replace(
        base.asterisk,
        nodes=tuple(
            AsteriskNode(
                name=name,
                sip_host=addresses[name],
                sip_port=SIP_PORT,
                ari_url=f"http://{addresses[name]}:{ARI_PORT}",
            )
            for name in nodes
        ),
        trunk_networks=(),
    )
    edge = EdgeConfig(
        sip_host=shared_address or addresses["edge"],
        sip_port=SIP_PORT,
        probe_interval_seconds=probe_interval_seconds,
        timeout_ms=timeout_ms,
        hosts=tuple(addresses[name] for name in EDGE_NAMES) if shared_address else (),
    )
    return dataclasses.replace(base, asterisk=asterisk, edge=edge)


@dataclass
class HaTopology:
    """`edge` is the first edge's Kamailio; `edges` every edge's (one, or the pair's), and
    `vrrp` the pair's keepalived."""

    bed: Network
    config: Config
    edge: Kamailio
    nodes: dict[str, AsteriskInstance]
    edges: dict[str, Kamailio]
    vrrp: dict[str, Keepalived]
    lost_edges: set[str] = field(default_factory=set)  # killed by kill_edge, not started again

    def host(self, name: str) -> Host:
        return self.bed[name]

    @property
    def edge_address(self) -> str:
        """Where the trunk, the phones and the nodes send SIP (the pair's shared address)."""
        assert self.config.edge is not None
        return self.config.edge.sip_host

    def callers(self, *, calls: int, rate: float, hold_ms: int, timeline: bool = False) -> Sipp:
        """SIPp callers on the callers' host dialling 112 at the edge's address, `rate` a second,
        each holding `hold_ms` once answered. With `timeline`, each call logs when it sent its
        INVITE and was answered (`read_call_times(sipp.workdir / "calls.log")`)."""
        host = self.host("callers")
        logs: dict[str, Any] = {}
        if timeline:
            workdir = Path(tempfile.mkdtemp(prefix="siaga-callers-"))
            extra = ("-trace_logs", "-log_file", str(workdir / "calls.log"))
            logs = {"workdir": workdir, "extra": extra}
        return Sipp(
            caller_scenario(routed=True, delay_ms=200, hold_ms=hold_ms, timeline=timeline),
            SIP_PORT,
            target_host=self.edge_address,
            local_ip=host.address,
            wrapper=host.wrapper,
            calls=calls,
            rate=rate,
            timeout=calls / rate + hold_ms / 1000 + 90,
            **logs,
        )

    def operator_phone(self) -> SippPhone:
        """The first operator's phone on the operators' host, registering (digest auth) at the
        edge's address; it rings 300 ms, then answers each call."""
        op = self.config.operators[0]
        host = self.host("operators")
        return SippPhone(
            op.sip_user,
            op.sip_password,
            SIP_PORT,
            answer=ringing_phone_scenario(ring_ms=300),
            registrar_host=self.edge_address,
            local_ip=host.address,
            wrapper=host.wrapper,
        )

    def routing_edge(self) -> Kamailio:
        """The Kamailio that routes calls now: the one edge, or the pair's holder."""
        if not self.vrrp:
            return self.edge
        return self.edges[self.wait_edge_holder()]

    def edge_holder(self) -> str | None:
        """The edge host holding the shared address, if one does (a lost one holds nothing:
        the address left on its interface is off the network with it)."""
        held = [
            name
            for name in self.vrrp
            if name not in self.lost_edges and holds(self.bed[name].wrapper, self.edge_address)
        ]
        if len(held) > 1:
            raise EdgeError(f"two edges hold {self.edge_address}: {held}")
        return held[0] if held else None

    def wait_edge_holder(self, timeout: float = 15.0, *, not_: str | None = None) -> str:
        """An edge (other than `not_`) holds the shared address; which one."""
        deadline = time.monotonic() + timeout
        while True:
            holder = self.edge_holder()
            if holder is not None and holder != not_:
                return holder
            if time.monotonic() > deadline:
                tails = "\n".join(f"{n}:\n{k.tail()}" for n, k in self.vrrp.items())
                raise EdgeError(f"no edge took {self.edge_address} in {timeout} s:\n{tails}")
            time.sleep(0.05)

    def kill_edge(self, name: str) -> list[int]:
        """The edge machine is lost: its processes die at once (SIGKILL) and its link goes."""
        pids = self.host(name).kill_all()
        self.host(name).set_link(False)
        self.lost_edges.add(name)
        self.edges[name].process = None
        self.vrrp[name].process = None
        return pids

    def start_edge(self, name: str) -> None:
        """The lost edge machine boots again: without the shared address its keepalived held
        when it died, back on the network, Kamailio and keepalived started."""
        host = self.host(name)
        host.run(["ip", "addr", "del", f"{self.edge_address}/32", "dev", "eth0"])
        host.set_link(True)
        self.lost_edges.discard(name)
        self.edges[name].start()
        self.vrrp[name].start()

    def node_uri(self, name: str) -> str:
        """The node as the dispatcher names it."""
        return node_uri(self.bed[name].address, SIP_PORT)

    def cel(self, node: str) -> list[CelEvent]:
        """Node `node`'s own record of its calls (Asterisk's CEL file)."""
        instance = self.nodes[node]
        path = instance.outside(instance.layout.cel_file)
        if not path.exists():
            return []
        return list(parse_lines(path.read_text(errors="replace").splitlines()))

    def kill_node(self, node: str) -> list[int]:
        """The node's Asterisk dies at once (SIGKILL to every process of its host)."""
        pids = self.host(node).kill_all()
        self.nodes[node].process = None
        return pids

    def start_node(self, node: str) -> None:
        self.nodes[node].start(timeout=30)


@contextlib.contextmanager
def ha_topology(
    root: Path,
    prompts: Path,
    base: Config,
    *,
    probe_interval_seconds: int = 1,
    timeout_ms: int = 1000,
    start_nodes: bool = True,
    edge_pair: bool = False,
) -> Iterator[HaTopology]:
    """Hosts, the edge and every node started; all stopped and removed on exit. Without
    `start_nodes` the node hosts stay empty (no Asterisk): the edge alone is tested. With
    `edge_pair`, two edges share the edge's address.

    The test process (the bridge's address) may ask the edge's JSON-RPC like a node: the apps
    of the tests run in it."""
    with (
        Network(PAIR_HOST_NAMES if edge_pair else HOST_NAMES) as bed,
        edge_and_nodes(
            bed,
            root,
            prompts,
            base,
            probe_interval_seconds=probe_interval_seconds,
            timeout_ms=timeout_ms,
            start_nodes=start_nodes,
            edge_pair=edge_pair,
        ) as topology,
    ):
        yield topology


@contextlib.contextmanager
def edge_and_nodes(
    bed: Network,
    root: Path,
    prompts: Path,
    base: Config,
    *,
    probe_interval_seconds: int = 1,
    timeout_ms: int = 1000,
    start_nodes: bool = True,
    edge_pair: bool = False,
) -> Iterator[HaTopology]:
    """The edge (or the pair of edges) and every node started on the hosts of `bed` (which
    outlives them); all stopped and their folders removed on exit."""
    assert bed.plan is not None
    workdir = Path(tempfile.mkdtemp(prefix="siaga-ha-"))
    addresses = {name: host.address for name, host in bed.hosts.items()}
    shared = shared_address(bed) if edge_pair else None
    config = ha_config(
        base,
        addresses,
        probe_interval_seconds=probe_interval_seconds,
        timeout_ms=timeout_ms,
        shared_address=shared,
    )
    assert config.edge is not None
    edges = {
        name: Kamailio(
            config,
            EdgeLayout(workdir / name),
            wrapper=bed[name].wrapper,
            extra_rpc_clients=(bed.gateway,),
            own_host=addresses[name] if edge_pair else None,
        )
        for name in (EDGE_NAMES if edge_pair else ("edge",))
    }
    vrrp = {
        name: Keepalived(config.edge, addresses[name], "eth0", kamailio.layout, bed[name].wrapper)
        for name, kamailio in edges.items()
        if edge_pair
    }
    nodes = {
        node.name: AsteriskInstance(
            root,
            f"ha-{bed.plan.stem}-{node.name}",
            node_config(config, node),
            wrapper=bed[node.name].wrapper,
        )
        for node in config.asterisk.nodes
        if start_nodes
    }
    topology = HaTopology(bed, config, edges["edge"], nodes, edges, vrrp)
    try:
        for kamailio in edges.values():
            kamailio.prepare()
            kamailio.start()
        for keepalived in vrrp.values():
            keepalived.prepare()
            keepalived.start()
        if vrrp:
            topology.wait_edge_holder()
        for instance in nodes.values():
            instance.prepare(prompts)
            instance.start(timeout=30)
        yield topology
    finally:
        for keepalived in vrrp.values():
            keepalived.stop()
        for kamailio in edges.values():
            kamailio.stop()
        for instance in nodes.values():
            instance.stop()
            shutil.rmtree(instance.outside(instance.layout.base), ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
