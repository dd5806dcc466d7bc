"""keepalived for a pair of Kamailio edges ([edge] hosts, docs/ha.md): render its
configuration, start and stop it, and ask a host whether it holds the shared address."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from dialplan.render import fill
from edge.kamailio import kamcmd, spawn, stop_process, system_binary
from edge.render import EdgeLayout, template
from siaga.config import EdgeConfig

log = structlog.get_logger(__name__)

# VRRP's advertisement interval: a backup takes the address about three of them after the
# last advertisement of a dead holder (at once when a holder whose Kamailio died gives it up).
ADVERT_SECONDS = 1
# The first of [edge] hosts gets the highest priority: it is elected when both start.
TOP_PRIORITY = 200


def priority(edge: EdgeConfig, own_host: str) -> int:
    return TOP_PRIORITY - 10 * edge.hosts.index(own_host)


def keepalived_conf(edge: EdgeConfig, own_host: str, interface: str, layout: EdgeLayout) -> str:
    """keepalived.conf of the edge `own_host` (one of edge.hosts), whose network interface
    toward the trunk, phones and nodes is `interface`."""
    if own_host not in edge.hosts:
        raise ValueError(f"own_host {own_host}: not one of [edge] hosts {list(edge.hosts)}")
    values = {
        "own_host": own_host,
        "sip_host": edge.sip_host,
        "interface": interface,
        "virtual_router_id": str(edge.virtual_router_id),
        "priority": str(priority(edge, own_host)),
        "advert_seconds": str(ADVERT_SECONDS),
        "peers": "\n".join(f"\t\t{host}" for host in edge.hosts if host != own_host),
        "kamcmd": kamcmd(),
        "ctl_socket": str(layout.ctl_socket),
    }
    return fill(template("keepalived.conf"), values, "keepalived.conf")


def holds(wrapper: tuple[str, ...], address: str) -> bool:
    """Whether the host that `wrapper` runs commands on has `address` on an interface."""
    result = subprocess.run(
        [*wrapper, "ip", "-o", "-4", "addr", "show"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return f" {address}/" in result.stdout


@dataclass
class Keepalived:
    """keepalived's VRRP alone for one edge, in the foreground, through `wrapper`."""

    edge: EdgeConfig
    own_host: str
    interface: str
    layout: EdgeLayout
    wrapper: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_file(self) -> Path:
        return self.layout.base / "keepalived.log"

    @staticmethod
    def binary() -> str:
        return system_binary("keepalived")

    def prepare(self) -> None:
        self.layout.base.mkdir(parents=True, exist_ok=True)
        text = keepalived_conf(self.edge, self.own_host, self.interface, self.layout)
        self.layout.keepalived_config.write_text(text, encoding="utf-8")

    def start(self) -> None:
        base = self.layout.base
        command = [
            *self.wrapper,
            self.binary(),
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "--vrrp",
            "--use-file",
            str(self.layout.keepalived_config),
            "--pid",
            str(base / "keepalived.pid"),
            "--vrrp_pid",
            str(base / "keepalived-vrrp.pid"),
        ]
        log.info("edge.keepalived_start", command=" ".join(command))
        self.process = spawn(command, self.log_file)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout)
        self.process = None

    def tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return "(no log written)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
