"""Every socket of the real Asterisk, idle and with a SIP call's media up, is bound to loopback
or to the configured SIP host: nothing of it is reachable from the network by accident.

That includes pjproject's DNS resolver, which binds its query sockets to the wildcard address
on an ephemeral port: Asterisk runs in a cgroup whose bind programs make that loopback
(pbx/bind_guard.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from pbx.asterisk import AsteriskInstance
from siaga.config import Config
from testbed.sipp import Sipp, caller_scenario

pytestmark = pytest.mark.integration

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
    allowed = {ipaddress.ip_address(h) for h in (ast.sip_host, ast.ami_host, ast.http_host)}
    return [s for s in sockets if not (s.address.is_loopback or s.address in allowed)]


def pid_of(asterisk: AsteriskInstance) -> int:
    pid = asterisk.running_pid()
    assert pid is not None, "the test Asterisk is not running"
    return pid


async def test_idle_asterisk_listens_on_loopback_and_the_configured_host_only(
    asterisk: AsteriskInstance, stack_config: Config
) -> None:
    sockets = sockets_of(pid_of(asterisk))
    ast = stack_config.asterisk
    # The ones it must have: SIP, ARI/HTTP and AMI, each on its configured address.
    assert Socket("udp", ipaddress.ip_address(ast.sip_host), ast.sip_port, True) in sockets
    assert Socket("tcp", ipaddress.ip_address(ast.ami_host), ast.ami_port, True) in sockets
    assert [str(s) for s in exposed(sockets, stack_config)] == []


async def test_a_calls_media_is_bound_to_the_configured_host(
    asterisk: AsteriskInstance, stack_config: Config
) -> None:
    ast = stack_config.asterisk
    pid = pid_of(asterisk)
    before = set(sockets_of(pid))
    # No app runs: the dialplan fallback answers and the caller hears its prompt (RTP).
    caller = Sipp(caller_scenario(caller_id="0811000111", delay_ms=300, hold_ms=4000), ast.sip_port)
    await caller.start()
    try:
        media: set[Socket] = set()
        for _ in range(40):
            await asyncio.sleep(0.1)
            media = set(sockets_of(pid)) - before
            if media:
                break
        during = sockets_of(pid)
        await caller.wait(timeout=30)
    finally:
        await caller.stop()
        await asyncio.to_thread(asterisk.cli, "channel request hangup all")

    assert media, "the answered call opened no media socket"
    rtp = range(ast.rtp_start, ast.rtp_end + 1)
    assert all(s.port in rtp for s in media if s.protocol == "udp"), media
    assert [str(s) for s in exposed(during, stack_config)] == []
