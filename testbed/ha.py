"""The high-availability topology on one machine (docs/ha.md): the Kamailio edge and the
Asterisk nodes, each on a host of testbed/hosts.py, plus hosts for callers and operators.

    with ha_topology(root, prompts, base) as ha:
        ha.host("callers") ...; ha.nodes["node_b"] ...; ha.edge.nodes()

Everything (processes, namespaces, the nodes' folders in the Asterisk root) is gone on exit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from db.cel import CelEvent, parse_lines
from edge.kamailio import Kamailio
from edge.render import EdgeLayout, node_uri
from pbx.asterisk import AsteriskInstance
from siaga.config import AsteriskNode, Config, EdgeConfig, node_config
from testbed.hosts import Host, Network

NODE_NAMES = ("node_a", "node_b")
HOST_NAMES = ("edge", *NODE_NAMES, "callers", "operators")
SIP_PORT = 5060
ARI_PORT = 8088


def ha_config(
    base: Config,
    addresses: dict[str, str],
    *,
    nodes: Sequence[str] = NODE_NAMES,
    probe_interval_seconds: int = 1,
    timeout_ms: int = 1000,
) -> Config:
    """`base` with an [edge] on host "edge", one [[asterisk.nodes]] per node host, and 112 calls
    accepted from the callers' host (through the edge)."""
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
        sip_host=addresses["edge"],
        sip_port=SIP_PORT,
        probe_interval_seconds=probe_interval_seconds,
        timeout_ms=timeout_ms,
    )
    return dataclasses.replace(base, asterisk=asterisk, edge=edge)


@dataclass
class HaTopology:
    bed: Network
    config: Config
    edge: Kamailio
    nodes: dict[str, AsteriskInstance]

    def host(self, name: str) -> Host:
        return self.bed[name]

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
) -> Iterator[HaTopology]:
    """Hosts, the edge and every node started; all stopped and removed on exit. Without
    `start_nodes` the node hosts stay empty (no Asterisk): the edge alone is tested.

    The test process (the bridge's address) may ask the edge's JSON-RPC like a node: the apps
    of the tests run in it."""
    with (
        Network(HOST_NAMES) as bed,
        edge_and_nodes(
            bed,
            root,
            prompts,
            base,
            probe_interval_seconds=probe_interval_seconds,
            timeout_ms=timeout_ms,
            start_nodes=start_nodes,
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
) -> Iterator[HaTopology]:
    """The edge and every node started on the hosts of `bed` (which outlives them); all
    stopped and their folders removed on exit."""
    assert bed.plan is not None
    workdir = Path(tempfile.mkdtemp(prefix="siaga-ha-"))
    addresses = {name: host.address for name, host in bed.hosts.items()}
    config = ha_config(
        base,
        addresses,
        probe_interval_seconds=probe_interval_seconds,
        timeout_ms=timeout_ms,
    )
    edge = Kamailio(
        config,
        EdgeLayout(workdir / "edge"),
        wrapper=bed["edge"].wrapper,
        extra_rpc_clients=(bed.gateway,),
    )
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
    topology = HaTopology(bed, config, edge, nodes)
    try:
        edge.prepare()
        edge.start()
        for instance in nodes.values():
            instance.prepare(prompts)
            instance.start(timeout=30)
        yield topology
    finally:
        edge.stop()
        for instance in nodes.values():
            instance.stop()
            shutil.rmtree(instance.outside(instance.layout.base), ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
