"""The systemd units of `siaga install` run where systemd is not PID 1 (CI, containers): the unit
file read as systemd reads the few settings used here, and a small supervisor that runs its
ExecStart as systemd would: its Environment=, a $NOTIFY_SOCKET of its own (a real unix datagram
socket), READY=1 awaited, WatchdogSec= enforced with SIGABRT, Restart=always obeyed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import socket
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Unit:
    path: Path
    sections: dict[str, dict[str, list[str]]]

    @property
    def unit(self) -> dict[str, list[str]]:
        return self.sections.get("Unit", {})

    @property
    def service(self) -> dict[str, list[str]]:
        return self.sections.get("Service", {})

    @property
    def exec_start(self) -> list[str]:
        (line,) = self.service["ExecStart"]
        return shlex.split(line)

    @property
    def environment(self) -> dict[str, str]:
        found = {}
        for line in self.service.get("Environment", []):
            for item in shlex.split(line):
                key, value = item.split("=", 1)
                found[key] = value
        return found

    @property
    def watchdog_seconds(self) -> float:
        return _seconds(self.service.get("WatchdogSec", ["0"])[-1])

    @property
    def restart_seconds(self) -> float:
        return _seconds(self.service.get("RestartSec", ["0.1"])[-1])


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min|ms)?", value.strip())
    if match is None:
        raise ValueError(f"not a time span this parser knows: {value!r}")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"s": 1.0, "sec": 1.0, "min": 60.0, "ms": 0.001}[unit]


def parse_unit(path: Path) -> Unit:
    """Sections -> key -> values in order (a key may repeat: Environment=, ExecStart=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = defaultdict(list)
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], defaultdict(list))
            continue
        key, value = line.split("=", 1)
        current[key.strip()].append(value.strip())
    return Unit(path, {name: dict(values) for name, values in sections.items()})


@dataclass
class Supervised:
    """One unit's ExecStart, run and restarted as its unit says, until stop()."""

    unit: Unit
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)  # every sd_notify message, in order
    starts: int = 0
    process: asyncio.subprocess.Process | None = None
    _folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="siaga-notify-")))
    _socket: socket.socket | None = None
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    _last_watchdog: float = 0.0

    @property
    def notify_path(self) -> Path:
        return self._folder / "notify"

    async def start(self) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(self.notify_path))
        self._socket.setblocking(False)
        asyncio.get_running_loop().add_reader(self._socket.fileno(), self._receive)
        await self._spawn()
        self._task = asyncio.create_task(self._supervise())

    def _receive(self) -> None:
        assert self._socket is not None
        with contextlib.suppress(BlockingIOError):
            while True:
                data = self._socket.recv(4096)
                for message in data.decode().splitlines():
                    self.messages.append(message)
                    if message == "WATCHDOG=1":
                        self._last_watchdog = asyncio.get_running_loop().time()

    async def _spawn(self) -> None:
        env = {**os.environ, **self.unit.environment, **self.extra_env}
        env["NOTIFY_SOCKET"] = str(self.notify_path)
        if self.unit.watchdog_seconds:
            env["WATCHDOG_USEC"] = str(int(self.unit.watchdog_seconds * 1_000_000))
        self._last_watchdog = asyncio.get_running_loop().time()
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *self.unit.exec_start,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
            )
        self.starts += 1

    async def _supervise(self) -> None:
        restart = self.unit.service.get("Restart", ["no"])[-1]
        watchdog = self.unit.watchdog_seconds
        while not self._stopping:
            assert self.process is not None
            try:
                await asyncio.wait_for(self.process.wait(), 0.2)
            except TimeoutError:
                late = asyncio.get_running_loop().time() - self._last_watchdog
                if watchdog and late > watchdog and self.ready_count() >= self.starts:
                    self.process.send_signal(signal.SIGABRT)  # systemd's WatchdogSignal
                    await self.process.wait()
                else:
                    continue
            if self._stopping or restart != "always":
                return
            await asyncio.sleep(self.unit.restart_seconds)
            if not self._stopping:
                await self._spawn()

    def ready_count(self) -> int:
        return sum(1 for m in self.messages if m == "READY=1")

    async def wait_for(self, message: str, count: int = 1, timeout: float = 60.0) -> None:
        """Until `message` has been received `count` times in all."""
        deadline = asyncio.get_running_loop().time() + timeout
        while sum(1 for m in self.messages if m == message) < count:
            if asyncio.get_running_loop().time() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
                raise AssertionError(
                    f"{self.unit.path.name}: no {message} (#{count}) in {timeout} s; "
                    f"got {self.messages}\n{tail}"
                )
            await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """SIGKILL the main process, as a crash would: the supervisor restarts it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM as `systemctl stop` does, SIGKILL after `timeout`; no restart."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        code = None
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                code = await self.process.wait()
        if self._socket is not None:
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
        self.notify_path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._folder.rmdir()
        return code
