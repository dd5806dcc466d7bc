"""Start and stop an Asterisk instance inside the shared Asterisk root.

Each instance has its own config, run, log and spool folders under `/srv/siaga/<name>` inside the
root, and its own ports, so a developer's `make run` and the test suite's instance can run side
by side.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import structlog

from dialplan import render
from pbx import bind_guard
from pbx.provision import ProvisionError, module_dir
from siaga.config import Config

log = structlog.get_logger(__name__)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class AsteriskInstance:
    root: Path
    name: str
    config: Config
    # Run Asterisk (and its CLI) through this, e.g. `ip netns exec <host>` for a node of the
    # high-availability testbed (testbed/hosts.py); () runs it here.
    wrapper: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    cgroup: Path | None = field(default=None, repr=False)  # made for Asterisk, guarded

    @property
    def layout(self) -> render.InstanceLayout:
        return render.InstanceLayout(
            base=PurePosixPath("/srv/siaga") / self.name,
            # The instance's own module folder, holding only what modules.conf loads: nothing
            # else can be loaded later, through AMI, ARI or the CLI (app_system would be root).
            module_dir=PurePosixPath("/srv/siaga") / self.name / "modules",
        )

    def outside(self, inside: PurePosixPath) -> Path:
        """A path inside the root, as seen from the host."""
        return self.root / inside.relative_to("/")

    @property
    def log_file(self) -> Path:
        return self.outside(self.layout.log_dir) / "messages.log"

    @property
    def console_file(self) -> Path:
        return self.outside(self.layout.log_dir) / "console.out"

    @property
    def pid_file(self) -> Path:
        return self.outside(self.layout.run_dir) / "asterisk.pid"

    @property
    def prompts_dir(self) -> PurePosixPath:
        return self.layout.prompts_dir

    @property
    def recordings_dir(self) -> Path:
        return self.outside(self.layout.recordings_dir)

    def prepare(self, prompts: Path | None = None) -> None:
        """Render the configuration and create the instance's folders (idempotent)."""
        layout = self.layout
        for folder in (
            layout.lib_dir,
            layout.spool_dir,
            layout.run_dir,
            layout.log_dir,
            layout.recordings_dir,
        ):
            self.outside(folder).mkdir(parents=True, exist_ok=True)
        render.write(self.config, layout, self.root)
        self.link_modules()
        if prompts is not None:
            target = self.outside(layout.prompts_dir)
            shutil.copytree(prompts, target, dirs_exist_ok=True)

    def link_modules(self) -> None:
        """Fill the instance's module folder with links to the modules its modules.conf loads
        (again after an edit of modules.conf, before start)."""
        etc = self.outside(self.layout.etc_dir)
        modules_conf = (etc / "modules.conf").read_text(encoding="utf-8")
        system = module_dir(self.root)
        folder = self.outside(self.layout.module_dir)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name in render.loaded_modules(modules_conf):
            if not (self.root / system.relative_to("/") / name).exists():
                raise ProvisionError(f"{self.root}: module {name} is missing from {system}")
            (folder / name).symlink_to(system / name)  # resolved inside the chroot

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def start(self, timeout: float = 30.0, *, die_with_us: bool = True) -> None:
        """Start Asterisk in the foreground as a child process and wait until ARI answers.

        `die_with_us`: the kernel stops Asterisk if this process dies, even by SIGKILL, so a
        killed test run or `siaga run` leaves no PBX behind (`siaga asterisk start` says no)."""
        if self.running_pid() is not None and self.ari_ready():
            log.info("asterisk.reused", instance=self.name)
            return
        self.console_file.parent.mkdir(parents=True, exist_ok=True)
        console = self.console_file.open("ab")
        command = [
            *self.wrapper,
            "chroot",
            str(self.root),
            "asterisk",
            "-f",
            "-n",
            "-C",
            str(self.layout.asterisk_conf),
        ]
        log.info("asterisk.start", instance=self.name, command=" ".join(command))
        self.cgroup = self._guarded_cgroup()
        cgroup = self.cgroup

        def before_exec() -> None:
            if cgroup is not None:
                bind_guard.join(cgroup)
            if die_with_us:
                _die_with_parent()

        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
            preexec_fn=before_exec,
        )
        console.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProvisionError(
                    f"Asterisk {self.name} exited with {self.process.returncode}:\n{self.tail()}"
                )
            if self.ari_ready():
                log.info("asterisk.ready", instance=self.name, pid=self.process.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise ProvisionError(
            f"Asterisk {self.name} did not answer on ARI in {timeout} s:\n{self.tail()}"
        )

    def _guarded_cgroup(self) -> Path | None:
        """Guard the cgroup Asterisk runs in: the kernel binds to loopback what Asterisk binds to
        a wildcard address on an ephemeral port (pjproject's DNS resolver, pbx/bind_guard.py),
        unless SIP listens on a wildcard address itself (then the exposure is the
        administrator's choice). Returns the cgroup to move Asterisk into, if any."""
        if self.config.asterisk.sip_host in ("0.0.0.0", "::", "[::]"):
            return None
        try:
            return bind_guard.guarded_cgroup(self.name)
        except (bind_guard.BindGuardError, OSError) as exc:
            log.warning("asterisk.bind_guard_unavailable", instance=self.name, reason=str(exc))
            return None

    def ari_ready(self) -> bool:
        ast = self.config.asterisk
        request = urllib.request.Request(f"{ast.ari_url}/ari/asterisk/info")
        token = base64.b64encode(f"{ast.ari_user}:{ast.ari_password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                return bool(json.load(response).get("system"))
        except (OSError, ValueError):
            return False

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run an Asterisk CLI command through the instance's control socket."""
        result = subprocess.run(
            [
                *self.wrapper,
                "chroot",
                str(self.root),
                "asterisk",
                "-C",
                str(self.layout.asterisk_conf),
                "-rx",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ProvisionError(f"asterisk -rx {command!r} failed: {result.stderr.strip()}")
        return result.stdout

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the instance: politely, then by force. Stopping a stopped instance is fine."""
        pid = self.process.pid if self.process is not None else self.running_pid()
        if pid is None:
            return
        log.info("asterisk.stop", instance=self.name, pid=pid)
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if self._wait_gone(pid, wait):
                break
        self.process = None
        if self.cgroup is not None:
            bind_guard.release(self.cgroup)
            self.cgroup = None

    def _wait_gone(self, pid: int, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process is not None and self.process.pid == pid:
                if self.process.poll() is not None:
                    return True
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return True
            time.sleep(0.05)
        return False

    def tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.console_file, self.log_file):
            if path.exists():
                parts.append(
                    f"--- {path}\n"
                    + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(parts) or "(no log written)"
