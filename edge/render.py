"""Render the Kamailio edge's configuration from `siaga.toml` ([edge], [[asterisk.nodes]]).

The same `{{name}}` placeholders as dialplan/render.py (Kamailio's own `$var(...)` pass through).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dialplan.render import STRANDED_AFTER_SECONDS, fill
from siaga.config import Config, EdgeConfig

# The dispatcher set every 112 call is dispatched from.
NODE_SET = 1
# Where the edge answers JSON-RPC over HTTP (on [edge] sip_host, rpc_port).
RPC_PATH = "/RPC"
# How long a node that took a 112 call (100 Trying) has to answer it before the call goes to the
# next node: its app answers in milliseconds, its stranded-call guard hands the call to its
# fallback after STRANDED_AFTER_SECONDS; the rest is slack for a loaded machine.
NODE_ANSWER_MS = (STRANDED_AFTER_SECONDS + 2) * 1000


@dataclass(frozen=True, slots=True)
class EdgeLayout:
    """Where one Kamailio keeps its files."""

    base: Path

    @property
    def config_file(self) -> Path:
        return self.base / "kamailio.cfg"

    @property
    def dispatcher_list(self) -> Path:
        return self.base / "dispatcher.list"

    @property
    def ctl_socket(self) -> Path:
        return self.base / "kamailio.ctl"

    @property
    def log_file(self) -> Path:
        return self.base / "kamailio.log"

    @property
    def pid_file(self) -> Path:
        return self.base / "kamailio.pid"

    @property
    def keepalived_config(self) -> Path:
        return self.base / "keepalived.conf"


def template(name: str) -> str:
    return (resources.files("edge") / "templates" / name).read_text(encoding="utf-8")


def quoted(text: str) -> str:
    """A Kamailio string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def password_lines(config: Config) -> str:
    lines = []
    for op in config.operators:
        lines.append(f"\tif ($fU == {quoted(op.sip_user)}) {{")
        lines.append(f"\t\t$var(password) = {quoted(op.sip_password)};")
        lines.append("\t}")
    return "\n".join(lines)


def rpc_url(edge: EdgeConfig) -> str:
    """The edge's JSON-RPC, as the nodes reach it."""
    return f"http://{edge.sip_host}:{edge.rpc_port}{RPC_PATH}"


def rpc_clients(config: Config, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """Who may ask the edge's JSON-RPC: this machine (kamcmd's user, curl on the edge), every
    node (the apps run beside them), and `extra` (the test process, in testbed/ha.py)."""
    edge_host = config.edge.sip_host if config.edge is not None else "127.0.0.1"
    nodes = (node.sip_host for node in config.asterisk.nodes)
    addresses = ["127.0.0.1", edge_host, *nodes, *extra]
    return tuple(dict.fromkeys(addresses))


def rpc_client_condition(addresses: Sequence[str]) -> str:
    """The Kamailio condition "the request comes from one of `addresses`"."""
    return " || ".join(f"$si == {quoted(address)}" for address in addresses)


def dispatcher_list(config: Config) -> str:
    """The dispatcher's list file: every Asterisk node, in the order of siaga.toml."""
    lines = ["# Rendered by Siaga 112: set, destination (the Asterisk nodes of siaga.toml)"]
    lines += [
        f"{NODE_SET} sip:{node.sip_host}:{node.sip_port} 0 0 name={node.name}"
        for node in config.asterisk.nodes
    ]
    return "\n".join(lines) + "\n"


def pair_values(edge: EdgeConfig, own_host: str | None) -> dict[str, str]:
    """The placeholders of a pair of edges (EDGE_PAIR in the template); inert for one edge."""
    if not edge.hosts:
        if own_host is not None:
            raise ValueError(f"own_host {own_host}: [edge] lists no hosts, there is no pair")
        return {
            "pair_define": "# One edge: no EDGE_PAIR.",
            "own_host": edge.sip_host,
            "dmq_peers": "",
            "peer_condition": "false",
        }
    if own_host not in edge.hosts:
        raise ValueError(f"own_host {own_host}: not one of [edge] hosts {list(edge.hosts)}")
    peers = [host for host in edge.hosts if host != own_host]
    return {
        "pair_define": "#!define EDGE_PAIR",
        "own_host": own_host,
        "dmq_peers": "\n".join(
            f'modparam("dmq", "notification_address", "sip:{peer}:{edge.sip_port}")'
            for peer in peers
        ),
        "peer_condition": rpc_client_condition(peers),
    }


def node_uri(host: str, port: int) -> str:
    """A node as the dispatcher names it (dispatcher.list, kamcmd dispatcher.list)."""
    return f"sip:{host}:{port}"


def render(
    config: Config,
    layout: EdgeLayout,
    *,
    children: int = 4,
    log_level: int = 1,
    extra_rpc_clients: Sequence[str] = (),
    own_host: str | None = None,
) -> dict[str, str]:
    """File name -> text of the edge's configuration; `own_host` is this edge's own address
    when [edge] lists hosts (a pair sharing sip_host)."""
    edge = config.edge
    if edge is None:
        raise ValueError(f"{config.path}: no [edge] to render")
    values = {
        "log_level": str(log_level),
        "children": str(children),
        "sip_host": edge.sip_host,
        "sip_port": str(edge.sip_port),
        "rpc_port": str(edge.rpc_port),
        "rpc_path": RPC_PATH,
        "rpc_clients": rpc_client_condition(rpc_clients(config, extra_rpc_clients)),
        "ctl_socket": str(layout.ctl_socket),
        "timeout_ms": str(edge.timeout_ms),
        "node_answer_ms": str(NODE_ANSWER_MS),
        "dispatcher_list": str(layout.dispatcher_list),
        "probe_interval": str(edge.probe_interval_seconds),
        "emergency_number": config.asterisk.emergency_number,
        "password_lines": password_lines(config),
        **pair_values(edge, own_host),
    }
    return {
        layout.config_file.name: fill(template("kamailio.cfg"), values, "kamailio.cfg"),
        layout.dispatcher_list.name: dispatcher_list(config),
    }


def write(
    config: Config,
    layout: EdgeLayout,
    *,
    extra_rpc_clients: Sequence[str] = (),
    own_host: str | None = None,
) -> None:
    layout.base.mkdir(parents=True, exist_ok=True)
    files = render(config, layout, extra_rpc_clients=extra_rpc_clients, own_host=own_host)
    for name, text in files.items():
        target = layout.base / name
        tmp = target.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        tmp.touch(mode=0o600)  # holds the operators' SIP passwords
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
