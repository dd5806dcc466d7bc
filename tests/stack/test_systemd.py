"""sd_notify as the units need it: messages reach a real unix datagram socket, and the
watchdog is petted only while the app is healthy."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.systemd import Watchdog, notify, watchdog_interval


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """The service manager's end: a datagram socket named by $NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    messages = []
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except BlockingIOError:
        return messages


def test_notify_sends_one_datagram_per_message(manager: socket.socket) -> None:
    assert notify("READY=1")
    assert manager.recv(4096) == b"READY=1"


def test_notify_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"siaga-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("WATCHDOG=1")
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_without_a_manager_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


@pytest.mark.parametrize(
    ("usec", "pid", "interval"),
    [("30000000", None, 15.0), ("0", None, None), ("", None, None), ("30000000", "1", None)],
)
def test_watchdog_interval_is_half_of_watchdog_sec_for_this_process(
    monkeypatch: pytest.MonkeyPatch, usec: str, pid: str | None, interval: float | None
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is None:
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_PID", pid)
    assert watchdog_interval() == interval


async def test_watchdog_pets_only_while_healthy(manager: socket.socket) -> None:
    healthy = True
    watchdog = Watchdog(lambda: healthy, interval=0.05)
    watchdog.start()
    await asyncio.sleep(0.22)
    pets = received(manager)
    assert 3 <= len(pets) <= 6 and set(pets) == {"WATCHDOG=1"}
    healthy = False
    await asyncio.sleep(0.06)  # a pet already under way may still land
    received(manager)
    await asyncio.sleep(0.2)
    assert received(manager) == []
    healthy = True
    await asyncio.sleep(0.12)
    assert "WATCHDOG=1" in received(manager)
    await watchdog.stop()


async def test_an_unhealthy_moment_withholds_one_pet_not_a_whole_interval(
    manager: socket.socket,
) -> None:
    healthy = False  # e.g. ARI not yet connected when the watchdog starts
    watchdog = Watchdog(lambda: healthy, interval=30.0, recheck=0.05)
    watchdog.start()
    await asyncio.sleep(0.1)
    assert received(manager) == []
    healthy = True
    await asyncio.sleep(0.15)
    assert received(manager) == ["WATCHDOG=1"], "petted at the next look, not 30 s later"
    await watchdog.stop()
