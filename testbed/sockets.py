"""A process's IP sockets, read from /proc (its file descriptors and its network namespace's
tables), and those of them reachable from beyond loopback and the configured hosts."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from siaga.config import Config

_TCP_LISTEN = "0A"


@dataclass(frozen=True, slots=True)
class Socket:
    protocol: str  # udp, udp6, tcp, tcp6
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    listening: bool

    def __str__(self) -> str:
        return f"{self.protocol} {self.address}:{self.port}"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net's hex address: 32-bit words in host (little-endian) byte order."""
    raw = bytes.fromhex(text)
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(swapped)


def sockets_of(pid: int) -> list[Socket]:
    """The process's IP sockets, from its file descriptors and /proc/<pid>/net."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for protocol in ("udp", "udp6", "tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{protocol}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode not in inodes:
                continue
            host, port = local.split(":")
            listening = protocol.startswith("udp") or state == _TCP_LISTEN
            found.append(Socket(protocol, _address(host), int(port, 16), listening))
    return found


def exposed(sockets: list[Socket], config: Config) -> list[Socket]:
    """The sockets beyond loopback and the configured hosts."""
    ast = config.asterisk
    hosts = (ast.sip_host, ast.ami_host, ast.http_host, config.web.host, config.agi.host)
    allowed = {ipaddress.ip_address(h) for h in hosts}
    return [s for s in sockets if not (s.address.is_loopback or s.address in allowed)]


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a unit's main process and the Asterisk it started)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        for child in children:
            found += process_tree(int(child))
    return found
