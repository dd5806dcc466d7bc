"""Hosts made of Linux network namespaces, for tests of the high-availability topology.

Each host is an `ip netns` with one veth to a bridge of the run's own, and an address in a /24
of the run's own (10.x.y.0/24, picked clear of every network the machine already has); the
bridge holds .1, so the test process itself reaches every host. A host can run processes, have
them all killed, and have its link set down (a partition). Everything is named after the run
(the creator's pid and a nonce), removed on exit even after a failure, and `sweep()` removes
what a killed run left behind.

Needs root (CAP_NET_ADMIN) and the `ip` command.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(__name__)

PREFIX = "s112"
# netns names: s112-<pid>-<nonce>-<host>; the bridge carries the same stem in its alias.
_STEM = re.compile(rf"^{PREFIX}-(\d+)-([0-9a-f]+)")
_HOST_NAME = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
FIRST_HOST = 10  # .1 is the bridge (the test process), hosts from .10 on


class HostsError(Exception):
    """A namespace, link or address could not be made; carries the command's error."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The names and addresses of one run's hosts (pure: nothing is created)."""

    pid: int
    nonce: str
    subnet: ipaddress.IPv4Network
    hosts: tuple[str, ...]

    @property
    def stem(self) -> str:
        return f"{PREFIX}-{self.pid}-{self.nonce}"

    @property
    def bridge(self) -> str:
        return f"{PREFIX}b{self.nonce}"  # link names: 15 characters at most

    @property
    def bridge_address(self) -> ipaddress.IPv4Address:
        return self.subnet.network_address + 1

    def netns(self, host: str) -> str:
        return f"{self.stem}-{host}"

    def veth(self, host: str) -> str:
        return f"{PREFIX}v{self.nonce}{self.hosts.index(host)}"

    def address(self, host: str) -> ipaddress.IPv4Address:
        return self.subnet.network_address + FIRST_HOST + self.hosts.index(host)


def plan(
    hosts: Sequence[str],
    taken: Iterable[ipaddress.IPv4Network],
    *,
    pid: int | None = None,
    rng: random.Random | None = None,
) -> Plan:
    rng = rng or random.Random()
    for name in hosts:
        if not _HOST_NAME.match(name):
            raise ValueError(f"host name {name!r}: lower-case letters, digits and _, 16 at most")
    if len(set(hosts)) != len(hosts):
        raise ValueError(f"host names repeat: {list(hosts)}")
    if len(hosts) > 200:
        raise ValueError("at most 200 hosts in a /24")
    return Plan(
        pid=os.getpid() if pid is None else pid,
        nonce=f"{rng.getrandbits(24):06x}",
        subnet=choose_subnet(list(taken), rng),
        hosts=tuple(hosts),
    )


def choose_subnet(taken: list[ipaddress.IPv4Network], rng: random.Random) -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 (x from 100 on) that overlaps none of `taken`."""
    candidates = [(x, y) for x in range(100, 255) for y in range(256)]
    rng.shuffle(candidates)
    for x, y in candidates:
        candidate = ipaddress.IPv4Network(f"10.{x}.{y}.0/24")
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise HostsError("no free 10.x.y.0/24 for the test hosts")


def parse_routes(text: str) -> list[ipaddress.IPv4Network]:
    """The networks of `ip -4 -o addr` and `ip -4 route` output (default routes aside)."""
    networks = []
    for word in re.findall(r"\b\d+\.\d+\.\d+\.\d+(?:/\d+)?\b", text):
        with contextlib.suppress(ValueError):
            networks.append(ipaddress.IPv4Network(word, strict=False))
    return networks


def stale_stems(names: Iterable[str], alive: set[int] | None = None) -> set[str]:
    """The run stems among `names` whose creating process is gone."""
    stems = set()
    for name in names:
        match = _STEM.match(name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid_alive(pid) if alive is None else pid in alive:
            continue
        stems.add(match.group(0))
    return stems


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15, check=False)
    if check and result.returncode != 0:
        raise HostsError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _netns_names() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def _kill_netns_processes(netns: str) -> None:
    for pid in ip("netns", "pids", netns, check=False).split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def sweep() -> list[str]:
    """Remove the namespaces and bridges of runs whose process is gone; what it removed."""
    removed = []
    stems = stale_stems(_netns_names())
    for netns in _netns_names():
        if any(netns.startswith(stem + "-") for stem in stems):
            _kill_netns_processes(netns)
            ip("netns", "delete", netns, check=False)
            removed.append(netns)
    for line in ip("-o", "link", "show", "type", "bridge").splitlines():
        match = re.search(r"^\d+:\s+(\S+?):.*\balias\s+(\S+)", line)
        if match and stale_stems([match.group(2)]):
            ip("link", "delete", match.group(1), check=False)
            removed.append(match.group(1))
    return removed


@dataclass
class Host:
    name: str
    netns: str
    address: str
    veth: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` as run inside this host."""
        return ["ip", "netns", "exec", self.netns, *argv]

    @property
    def wrapper(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.netns)

    def run(self, argv: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def pids(self) -> list[int]:
        return [int(pid) for pid in ip("netns", "pids", self.netns, check=False).split()]

    def kill_all(self, sig: signal.Signals = signal.SIGKILL) -> list[int]:
        """Kill every process of the host (the host dies); the pids killed."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        log.info("host.killed", host=self.name, pids=pids, signal=sig.name)
        return pids

    def set_link(self, up: bool) -> None:
        """Connect or cut the host from the bridge (a partition; its processes run on)."""
        ip("link", "set", self.veth, "up" if up else "down")
        log.info("host.link", host=self.name, up=up)


@dataclass
class Network:
    """The hosts of one run: `with Network(["edge", "node_a"]) as bed: bed["edge"]...`."""

    names: Sequence[str]
    plan: Plan | None = None
    hosts: dict[str, Host] = field(default_factory=dict)

    def __enter__(self) -> Network:
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    @property
    def gateway(self) -> str:
        """The bridge's address: the test process as seen from the hosts."""
        assert self.plan is not None
        return str(self.plan.bridge_address)

    def create(self) -> None:
        sweep()
        taken = parse_routes(ip("-4", "-o", "addr") + ip("-4", "route"))
        self.plan = p = plan(self.names, taken)
        prefix = p.subnet.prefixlen
        ip("link", "add", p.bridge, "type", "bridge")
        ip("link", "set", p.bridge, "alias", p.stem)
        ip("addr", "add", f"{p.bridge_address}/{prefix}", "dev", p.bridge)
        ip("link", "set", p.bridge, "up")
        for name in p.hosts:
            netns, veth = p.netns(name), p.veth(name)
            ip("netns", "add", netns)
            ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
            ip("link", "set", f"{veth}p", "netns", netns)
            ip("link", "set", veth, "master", p.bridge)
            ip("link", "set", veth, "up")
            inside = ("netns", "exec", netns, "ip")
            ip(*inside, "link", "set", "lo", "up")
            ip(*inside, "link", "set", f"{veth}p", "name", "eth0")
            ip(*inside, "addr", "add", f"{p.address(name)}/{prefix}", "dev", "eth0")
            ip(*inside, "link", "set", "eth0", "up")
            self.hosts[name] = Host(name, netns, str(p.address(name)), veth)
        log.info(
            "testbed.up",
            subnet=str(p.subnet),
            hosts={h.name: h.address for h in self.hosts.values()},
        )

    def close(self) -> None:
        """Kill every host's processes and remove namespaces, veths and the bridge."""
        if self.plan is None:
            return
        p = self.plan
        existing = set(_netns_names())
        for name in p.hosts:
            netns = p.netns(name)
            if netns in existing:
                _kill_netns_processes(netns)
                ip("netns", "delete", netns, check=False)
            ip("link", "delete", p.veth(name), check=False)  # gone with its peer, normally
        ip("link", "delete", p.bridge, check=False)
        self.hosts.clear()
        log.info("testbed.down", subnet=str(p.subnet))
        self.plan = None


def reachable(source: Host, address: str) -> bool:
    """One ping from `source` to `address` answered within a second."""
    return source.run(["ping", "-c", "1", "-W", "1", address], timeout=5).returncode == 0
