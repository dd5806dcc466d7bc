"""Start, query and stop one Kamailio edge (rendered by edge/render.py)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from edge import render
from siaga.config import Config

log = structlog.get_logger(__name__)

_DEST = re.compile(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)")


class EdgeError(Exception):
    """Kamailio (or keepalived) is missing, refused its configuration, or did not start;
    carries its log."""


def system_binary(name: str) -> str:
    """The path of a Debian package's program of the same name (in sbin, off a user's PATH)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise EdgeError(f"{name} is missing: apt-get install {name} (scripts/install-system.sh)")
    return path


def spawn(command: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    """Start a daemon kept in the foreground, its output appended to `log_file`, in a process
    group of its own (stopped, or killed whole, with it)."""
    with log_file.open("ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def parse_dispatcher_list(text: str) -> dict[str, str]:
    """`kamcmd dispatcher.list` output -> node URI -> flags (A active, I inactive, D disabled;
    P probing), e.g. {"sip:10.1.2.11:5060": "AP"}."""
    return dict(_DEST.findall(text))


def is_active(flags: str) -> bool:
    return flags.startswith("A")


def kamcmd() -> str:
    path = shutil.which("kamcmd") or shutil.which("kamcmd", path="/usr/sbin:/sbin")
    if path is None:
        raise EdgeError("kamcmd is missing (Debian package kamailio)")
    return path


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, and SIGKILL if it is still there after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Kamailio:
    """One Kamailio, optionally run through `wrapper` (e.g. `ip netns exec <host>`);
    `extra_rpc_clients` may ask its JSON-RPC besides the nodes (edge/render.py); `own_host`
    is its own address in a pair of edges ([edge] hosts)."""

    config: Config
    layout: render.EdgeLayout
    wrapper: tuple[str, ...] = ()
    extra_rpc_clients: tuple[str, ...] = ()
    own_host: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @staticmethod
    def binary() -> str:
        return system_binary("kamailio")

    def prepare(self) -> None:
        render.write(
            self.config,
            self.layout,
            extra_rpc_clients=self.extra_rpc_clients,
            own_host=self.own_host,
        )

    def check(self) -> None:
        """Kamailio's own check of the rendered configuration (`kamailio -c`)."""
        result = subprocess.run(
            [self.binary(), "-c", "-f", str(self.layout.config_file)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise EdgeError(
                f"kamailio -c refused {self.layout.config_file}:\n{result.stderr[-3000:]}"
            )

    def start(self, timeout: float = 15.0) -> None:
        """Start Kamailio in the foreground (its log to layout.log_file) and wait until its
        control socket answers."""
        self.layout.ctl_socket.unlink(missing_ok=True)
        command = [
            *self.wrapper,
            self.binary(),
            "-f",
            str(self.layout.config_file),
            "-DD",  # stay in the foreground: the process is ours to stop
            "-E",
            "-m",
            "64",
            "-M",
            "8",
            "-P",
            str(self.layout.pid_file),
            "-Y",
            str(self.layout.base),
            "-w",
            str(self.layout.base),
        ]
        log.info("edge.start", command=" ".join(command))
        self.process = spawn(command, self.layout.log_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EdgeError(f"kamailio exited with {self.process.returncode}:\n{self.tail()}")
            if self.layout.ctl_socket.exists() and self._answers():
                log.info("edge.ready", pid=self.process.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise EdgeError(
            f"kamailio did not answer on {self.layout.ctl_socket} in {timeout} s:\n{self.tail()}"
        )

    def _answers(self) -> bool:
        try:
            self.rpc("core.version")
        except EdgeError:
            return False
        return True

    def rpc(self, *command: str) -> str:
        """A kamcmd command through the control socket; its output."""
        result = subprocess.run(
            [kamcmd(), "-s", f"unix:{self.layout.ctl_socket}", *command],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        # kamcmd exits 0 when Kamailio answers an RPC error ("error: 500 - command ... not found").
        if result.returncode != 0 or result.stdout.startswith("error:"):
            raise EdgeError(f"kamcmd {' '.join(command)}: {result.stderr.strip() or result.stdout}")
        return result.stdout

    def nodes(self) -> dict[str, str]:
        """The dispatcher's view of the nodes: URI -> flags."""
        return parse_dispatcher_list(self.rpc("dispatcher.list"))

    def log_lines(self, tag: str) -> list[list[str]]:
        """The fields after `tag` of each SIAGA-<tag> log line (edge/templates/kamailio.cfg)."""
        marker = f"SIAGA-{tag} "
        text = (
            self.layout.log_file.read_text(errors="replace")
            if self.layout.log_file.exists()
            else ""
        )
        return [line.split(marker, 1)[1].split() for line in text.splitlines() if marker in line]

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        log.info("edge.stop", pid=self.process.pid)
        stop_process(self.process, timeout)
        self.process = None

    def kill(self) -> None:
        """Kamailio dies at once: SIGKILL to its process group (its forked workers serve the
        control socket and SIP on their own after the main process is gone)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)
        self.process = None

    def tail(self, lines: int = 60) -> str:
        if not self.layout.log_file.exists():
            return "(no log written)"
        return "\n".join(self.layout.log_file.read_text(errors="replace").splitlines()[-lines:])
