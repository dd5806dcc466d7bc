"""In the guarded cgroup a bind to the wildcard address on an ephemeral port lands on loopback,
for both address families; binds that name an address or a port are left alone, and so is every
process outside the cgroup. Under systemd the service's own cgroup is guarded, and nothing is
moved (its cgroup file system is read-only)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx import bind_guard

BINDS = """
import json, socket
found = []
for family, address in [
    (socket.AF_INET, ("0.0.0.0", 0)),
    (socket.AF_INET6, ("::", 0)),
    (socket.AF_INET, ("127.0.0.1", 0)),
    (socket.AF_INET, ("0.0.0.0", PORT)),
]:
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        host, port = sock.getsockname()[:2]
        found.append([host, port])
print(json.dumps(found))
"""


@pytest.fixture
def cgroup() -> Iterator[Path]:
    folder = bind_guard.guarded_cgroup(f"test-{id(object())}")
    assert folder is not None
    yield folder
    bind_guard.release(folder)
    assert not folder.exists()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binds(cgroup: Path | None, port: int) -> list[list[object]]:
    result = subprocess.run(
        [sys.executable, "-c", BINDS.replace("PORT", str(port))],
        preexec_fn=(lambda: bind_guard.join(cgroup)) if cgroup is not None else None,
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(result.stdout))


def test_a_wildcard_bind_on_an_ephemeral_port_lands_on_loopback(cgroup: Path) -> None:
    port = free_udp_port()
    v4_any, v6_any, v4_loopback, v4_named_port = binds(cgroup, port)
    assert v4_any[0] == "127.0.0.1" and v4_any[1] != 0
    assert v6_any[0] == "::1" and v6_any[1] != 0
    assert v4_loopback[0] == "127.0.0.1"
    assert v4_named_port == ["0.0.0.0", port]


def test_outside_the_cgroup_binds_are_untouched(cgroup: Path) -> None:
    v4_any, v6_any, _, _ = binds(None, free_udp_port())
    assert (v4_any[0], v6_any[0]) == ("0.0.0.0", "::")


UNDER_SYSTEMD = """
import json, socket
from pbx import bind_guard
moved = bind_guard.guarded_cgroup("unit")
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.bind(("0.0.0.0", 0))
    print(json.dumps([str(moved), sock.getsockname()[0]]))
"""


def test_under_systemd_the_services_own_cgroup_is_guarded(tmp_path: Path) -> None:
    service = bind_guard.own_cgroup() / f"siaga-test-service-{id(tmp_path)}"
    service.mkdir()  # as systemd makes one per service, unguarded
    try:
        result = subprocess.run(
            [sys.executable, "-c", UNDER_SYSTEMD],
            preexec_fn=lambda: bind_guard.join(service),
            env={**os.environ, "INVOCATION_ID": "0123456789abcdef"},
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        bind_guard.release(service)
    assert json.loads(result.stdout) == ["None", "127.0.0.1"]
