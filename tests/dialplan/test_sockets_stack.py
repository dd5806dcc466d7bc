"""Every socket of the real Asterisk, idle and with a SIP call's media up, is bound to loopback
or to the configured SIP host: nothing of it is reachable from the network by accident.

That includes pjproject's DNS resolver, which binds its query sockets to the wildcard address
on an ephemeral port: Asterisk runs in a cgroup whose bind programs make that loopback
(pbx/bind_guard.py).
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from pbx.asterisk import AsteriskInstance
from siaga.config import Config
from testbed.sipp import Sipp, caller_scenario
from testbed.sockets import Socket, exposed, sockets_of

pytestmark = pytest.mark.integration


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
