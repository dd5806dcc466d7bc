"""The netns testbed (testbed/hosts.py) for real: hosts reach each other, a host's link can be
cut and restored, its processes killed, and nothing of a run is left behind."""

from __future__ import annotations

import subprocess
import time

import pytest

from testbed.hosts import Host, Network, reachable

pytestmark = pytest.mark.integration


def leftovers(stem: str) -> str:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    nonce = stem.rsplit("-", 1)[1]
    found = [line for line in netns.stdout.splitlines() if stem in line]
    found += [line for line in links.stdout.splitlines() if nonce in line]
    return "\n".join(found)


def wait_inside(host: Host, pid: int, timeout: float = 5.0) -> None:
    """Until process `pid` is in the host: `ip netns exec` enters it a moment after it starts."""
    deadline = time.monotonic() + timeout
    while pid not in host.pids():
        assert time.monotonic() < deadline, f"{pid} never entered {host.name}"
        time.sleep(0.02)


def test_hosts_ping_each_other_are_partitioned_and_leave_nothing_behind():
    with Network(["edge", "node_a", "node_b"]) as bed:
        assert bed.plan is not None
        stem = bed.plan.stem
        edge, node_a, node_b = bed["edge"], bed["node_a"], bed["node_b"]
        assert reachable(edge, node_a.address)
        assert reachable(node_b, bed.gateway)
        node_a.set_link(False)
        assert not reachable(edge, node_a.address)
        assert reachable(edge, node_b.address)
        node_a.set_link(True)
        assert reachable(edge, node_a.address)
        # A process of the host dies with kill_all; the others' go on.
        sleeper = subprocess.Popen(node_b.command(["sleep", "60"]))
        other = subprocess.Popen(node_a.command(["sleep", "60"]))
        try:
            wait_inside(node_b, sleeper.pid)
            wait_inside(node_a, other.pid)
            assert sleeper.pid in node_b.kill_all()
            assert sleeper.wait(5) == -9
            assert other.poll() is None
        finally:
            other.kill()
            other.wait()
        # Left running on purpose: closing the testbed kills it.
        subprocess.Popen(edge.command(["sleep", "60"]))
    assert leftovers(stem) == ""
    assert bed.hosts == {}


def test_a_failed_build_leaves_nothing_behind():
    bed = Network(["edge", "node_a"])
    original = bed.create
    stems = []

    def fail_half_way() -> None:
        original()
        assert bed.plan is not None
        stems.append(bed.plan.stem)
        assert leftovers(bed.plan.stem) != ""  # it was all there
        raise RuntimeError("boom")

    bed.create = fail_half_way  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="boom"):
        bed.__enter__()
    assert bed.plan is None
    assert leftovers(stems[0]) == ""
