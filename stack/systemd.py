"""What the systemd units of `siaga install` need from the processes they run: the sd_notify
protocol (READY=1, WATCHDOG=1, STOPPING=1) spoken over $NOTIFY_SOCKET, and `siaga asterisk run`,
the bundled Asterisk in the foreground of its unit.

The protocol is one datagram per message on a unix socket, so it is written here rather than
taken from a library. Outside systemd (no $NOTIFY_SOCKET) every message is silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import structlog

from pbx.asterisk import AsteriskInstance

log = structlog.get_logger(__name__)

# The Asterisk unit's probe: how often ARI is asked whether Asterisk still answers.
ASTERISK_PROBE_SECONDS = 10.0


def notify(message: str) -> bool:
    """Send one sd_notify message; False when no manager listens (not under systemd)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket: a leading NUL byte instead of the @
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(message.encode(), address)
        except OSError as exc:
            log.warning("systemd.notify_failed", message=message, error=str(exc))
            return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between two WATCHDOG=1 messages (half the unit's WatchdogSec, as systemd
    advises), or None when the manager asked for no watchdog, or asked another process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000


class Watchdog:
    """Pets systemd's watchdog from a task of the event loop, only while `healthy()` says so.

    A loop blocked for WatchdogSec sends nothing, nor does an app that lost Asterisk for that
    long: systemd then kills the process and Restart=always starts a fresh one. While unhealthy
    it looks again every `recheck` seconds, so a moment's disconnection (at a start under load)
    withholds one pet, not a whole interval's."""

    def __init__(self, healthy: Callable[[], bool], interval: float, recheck: float = 1.0) -> None:
        self.healthy = healthy
        self.interval = interval
        self.recheck = min(recheck, interval)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="systemd-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            if self.healthy():
                notify("WATCHDOG=1")
                await asyncio.sleep(self.interval)
            else:
                log.warning("systemd.watchdog_withheld")
                await asyncio.sleep(self.recheck)


def run_asterisk(instance: AsteriskInstance, prompts: Path) -> int:
    """`siaga asterisk run`: prepare and start the instance, tell systemd it is ready once ARI
    answers, pet the watchdog while ARI keeps answering, and stop Asterisk on SIGTERM. Returns
    Asterisk's exit status when it dies by itself, for the unit to restart it."""
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    instance.prepare(prompts)
    instance.start()
    process = instance.process
    if process is None:  # an instance started by someone else answers: not ours to run
        log.error("asterisk.already_running", instance=instance.name, pid=instance.running_pid())
        return 1
    notify("READY=1")
    interval = watchdog_interval()
    next_probe = 0.0
    while not stopping:
        try:
            code = process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if interval is not None and time.monotonic() >= next_probe:
                next_probe = time.monotonic() + min(interval, ASTERISK_PROBE_SECONDS)
                if instance.ari_ready():
                    notify("WATCHDOG=1")
                else:
                    log.warning("asterisk.probe_failed", instance=instance.name)
            continue
        log.error("asterisk.exited", instance=instance.name, code=code)
        return code or 1
    notify("STOPPING=1")
    instance.stop()
    return 0
