"""`make verify-install`: README's "Production install" on a fresh Debian 12 machine, with systemd
as its PID 1, from a clone to a service answering a 112 call; prints a JSON verdict.

The machine is a folder under /var/tmp that mmdebstrap fills with a minimal Debian 12 (systemd,
dbus, apt), booted with `systemd-nspawn -b`. It shares this machine's network, so it reaches the
package registries, and its SIP interface is this machine's first non-loopback IPv4 address.
In it, as root: README's commands (apt-get install of git, make and python3-venv; git clone of
this checkout's committed HEAD; `make install`), then what the administrator does next: ports of
its own in /etc/siaga112/siaga.toml (this machine may run other stacks), SIP on the machine's
address, `siaga provision --secrets`, a console user, `systemctl restart`. Then, from inside
(`inside-check`): both units active, `systemd-analyze verify` clean, a SIPp caller dialling 112
answered by a SIPp operator's phone and recorded in the system PostgreSQL, the console's /healthz
over HTTPS, and no socket of the two units' processes beyond loopback and the configured hosts.

Takes about 7 minutes (packages, two virtual environments, the Asterisk root): not part of
`make test`. The machine is removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[1]
SUITE = "bookworm"
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus")
MACHINE_SOURCE = "/srv/siaga112.git"  # the clone's origin, inside the machine
CLONE = "/root/siaga112"
CONFIG = "/etc/siaga112/siaga.toml"
UNITS = ("siaga112-asterisk.service", "siaga112.service")
PATH = "/opt/siaga112/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# README "Production install", as typed by the administrator (the editor step is
# `inside-configure`); `apt-get update` first: a machine made by mmdebstrap has no package lists.
README_STEPS = (
    "apt-get update -qq && apt-get install -y -qq git make python3-venv",
    f"git clone {MACHINE_SOURCE} {CLONE}",
    f"cd {CLONE} && make install",
)
ADMIN_STEPS = (
    f"cd {CLONE} && .venv/bin/python -m testbed.fresh_machine inside-configure"
    " --address {address}",
    f"SIAGA_CONFIG={CONFIG} siaga provision --secrets",
    f"echo 'fresh-machine-{uuid.uuid4().hex[:12]}' | SIAGA_CONFIG={CONFIG} "
    "siaga user add admin --role admin --password-stdin",
    "systemctl restart siaga112-asterisk siaga112",
)
CHECK_STEP = f"cd {CLONE} && .venv/bin/python -m testbed.fresh_machine inside-check"


# -- on this machine ------------------------------------------------------------------------


class Machine:
    """A Debian 12 folder booted with systemd-nspawn; commands run in it through nsenter."""

    def __init__(self, root: Path, source: Path, log: Path) -> None:
        self.root = root
        self.source = source
        self.log = log
        self.nspawn: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def build(self) -> None:
        command = ["mmdebstrap", "--variant=important", "--include=" + ",".join(BASE_PACKAGES)]
        subprocess.run([*command, SUITE, str(self.root)], check=True, capture_output=True)
        (self.root / "etc/hostname").write_text("siaga-fresh\n")
        # The authorities this machine trusts beyond Debian's (a site whose proxy inspects TLS
        # has one): the machine's ca-certificates, installed by README's first step, adds them.
        local = Path("/usr/local/share/ca-certificates")
        if local.is_dir():
            shutil.copytree(local, self.root / local.relative_to("/"), dirs_exist_ok=True)

    def boot(self, timeout: float = 90.0) -> str:
        with self.log.open("ab") as out:
            self.nspawn = subprocess.Popen(
                ["systemd-nspawn", "--boot", "--directory", str(self.root)]
                + ["--machine", "siaga-fresh", "--register=no", "--keep-unit"]
                + ["--console=pipe", f"--bind-ro={self.source}:{MACHINE_SOURCE}"]
                # nspawn's own system call filter refuses bpf(2), which a machine's services
                # have (pbx/bind_guard.py): let it through, as on a machine of its own.
                + ["--system-call-filter=bpf"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        state = "no PID 1"
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self.nspawn.returncode}")
            self.leader = self.leader or _child_named(self.nspawn.pid, "systemd")
            if self.leader:
                state = self.run("systemctl is-system-running", timeout=10)["output"].strip()
                if state in ("running", "degraded"):
                    return str(state)
            time.sleep(1)
        raise RuntimeError(f"the machine did not boot in {timeout} s: {state}")

    def run(self, command: str, timeout: float = 1800.0) -> dict[str, Any]:
        """`command` by bash in all of the machine's namespaces, in a clean environment."""
        started = time.monotonic()
        argv = ["nsenter", "--target", str(self.leader), "--all", "env", "-i", f"PATH={PATH}"]
        argv += ["HOME=/root", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"]
        try:
            result = subprocess.run(
                [*argv, "bash", "-euo", "pipefail", "-c", command],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            code, output = result.returncode, result.stdout + result.stderr
        except subprocess.TimeoutExpired as exc:
            code, output = -1, f"timed out after {timeout} s: {exc.stdout!r} {exc.stderr!r}"
        return {
            "command": command,
            "exit": code,
            "seconds": round(time.monotonic() - started, 1),
            "output": output,
        }

    def power_off(self) -> None:
        if self.nspawn is None:
            return
        if self.leader and self.nspawn.poll() is None:
            self.run("systemctl poweroff --no-block", timeout=30)
        try:
            self.nspawn.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.nspawn.send_signal(signal.SIGKILL)
            self.nspawn.wait()


def _child_named(pid: int, name: str) -> int:
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if Path(f"/proc/{child}/comm").read_text().strip() == name:
                return int(child)
    return 0


def machine_address() -> str:
    """This machine's address toward the outside: the SIP interface of the machine."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
        return str(probe.getsockname()[0])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def verify(keep: bool, work_parent: Path) -> dict[str, Any]:
    verdict: dict[str, Any] = {"ok": False, "steps": []}
    if port_in_use(5432):
        verdict["error"] = (
            "port 5432 is in use here: the machine shares this network, and its PostgreSQL "
            "listens there (stop the cluster on this machine first)"
        )
        return verdict
    work = Path(tempfile.mkdtemp(prefix="siaga-fresh-machine-", dir=work_parent))
    verdict["folder"] = str(work)
    source = work / "siaga112.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(CHECKOUT), str(source)], check=True)
    verdict["commit"] = subprocess.run(
        ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    machine = Machine(work / "root", source, work / "boot.log")
    try:
        started = time.monotonic()
        machine.build()
        verdict["build_seconds"] = round(time.monotonic() - started, 1)
        verdict["boot"] = machine.boot()
        address = machine_address()
        verdict["sip_address"] = address
        steps = [*README_STEPS, *(s.format(address=address) for s in ADMIN_STEPS)]
        for command in steps:
            step = machine.run(command)
            step["output"] = step["output"][-3000:]
            verdict["steps"].append(step)
            if step["exit"] != 0:
                return verdict
        check = machine.run(CHECK_STEP, timeout=600)
        verdict["steps"].append({**check, "output": check["output"][-3000:]})
        checks = _last_json(check["output"])
        verdict["checks"] = checks
        verdict["ok"] = check["exit"] == 0 and bool(checks.get("ok"))
        return verdict
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        verdict["error"] = str(exc)
        return verdict
    finally:
        machine.power_off()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _last_json(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            try:
                found: dict[str, Any] = json.loads(line)
                return found
            except ValueError:
                break
    return {"ok": False, "error": "inside-check printed no verdict"}


# -- inside the machine ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configure(address: str, path: Path = Path(CONFIG)) -> None:
    """The administrator's edit of /etc/siaga112/siaga.toml: SIP on the machine's address, and
    ports of the machine's own (it shares its network with whatever else runs here)."""
    swaps = {
        # (?m)^: the keys themselves, not the commented examples of other sections
        r'(?m)^sip_host = "[^"]*"': f'sip_host = "{address}"',
        r"(?m)^sip_port = \d+": f"sip_port = {free_port()}",
        r'(?m)^ari_url = "http://127.0.0.1:\d+"': f'ari_url = "http://127.0.0.1:{free_port()}"',
        r"(?m)^ami_port = \d+": f"ami_port = {free_port()}",
        r'(\[web\]\nhost = "[^"]*"\n)port = \d+': rf"\g<1>port = {free_port()}",
        r'(\[agi\]\nhost = "[^"]*"\n)port = \d+': rf"\g<1>port = {free_port()}",
    }
    text = path.read_text()
    for pattern, replacement in swaps.items():
        text, count = re.subn(pattern, replacement, text)
        if count != 1:
            raise SystemExit(f"{path}: {pattern} matched {count} times")
    path.write_text(text)


def unit_pids(unit: str) -> list[int]:
    group = subprocess.run(
        ["systemctl", "show", "--property=ControlGroup", "--value", unit],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for mount in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"):
        procs = Path(mount + group) / "cgroup.procs"
        if group and procs.exists():
            return [int(pid) for pid in procs.read_text().split()]
    return []


async def answered_call(config: Any) -> dict[str, Any]:
    import asyncpg

    from testbed.sipp import Sipp, SippPhone, caller_scenario

    ast = config.asterisk
    operator = config.operators[0]
    phone = SippPhone(operator.sip_user, operator.sip_password, ast.sip_port)
    phone.registrar_host = ast.sip_host
    number = f"08{uuid.uuid4().int % 10**10:010d}"
    caller = Sipp(
        caller_scenario(caller_id=number, digits="1", delay_ms=600, hold_ms=2000),
        ast.sip_port,
        target_host=ast.sip_host,
    )
    conn = await asyncpg.connect(config.database.url)
    try:
        await phone.start()
        await caller.start()
        try:
            await caller.wait(timeout=60)
        finally:
            await caller.stop()
        row = None
        for _ in range(200):
            row = await conn.fetchrow(
                "SELECT call_id, outcome, operator_id, ended_at FROM calls"
                " WHERE caller_number = $1",
                number,
            )
            if row is not None and row["ended_at"] is not None:
                break
            await asyncio.sleep(0.1)
        found = dict(row) if row is not None else {}
        return {
            "ok": found.get("outcome") == "answered" and found.get("operator_id") == operator.id,
            "caller_number": number,
            "row": {k: str(v) for k, v in found.items()},
            "database": await conn.fetchval("SELECT current_setting('server_version')"),
        }
    finally:
        await phone.stop()
        await conn.close()


def console_over_tls(config: Any) -> dict[str, Any]:
    web = config.web
    context = ssl.create_default_context(cafile=web.tls_cert)
    url = f"https://{web.host}:{web.port}/healthz"
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return {"ok": response.status == 200, "url": url, "status": response.status}
    except OSError as exc:
        return {"ok": False, "url": url, "error": str(exc)}


def exposure(config: Any) -> dict[str, Any]:
    import ipaddress

    from testbed.sockets import Socket, exposed, sockets_of

    found: dict[str, list[str]] = {}
    beyond: list[str] = []
    sip = Socket(
        "udp", ipaddress.ip_address(config.asterisk.sip_host), config.asterisk.sip_port, True
    )
    sip_seen = False
    for unit in UNITS:
        sockets = [s for pid in unit_pids(unit) for s in sockets_of(pid) if s.listening]
        sip_seen = sip_seen or sip in sockets
        found[unit] = sorted({str(s) for s in sockets})
        beyond += [f"{unit}: {s}" for s in exposed(sockets, config)]
    return {"ok": sip_seen and not beyond, "beyond": beyond, "sip": str(sip), "listening": found}


def inside_check() -> dict[str, Any]:
    from siaga.config import load_config

    checks: dict[str, Any] = {}
    active = {}
    for unit in UNITS:
        for _ in range(60):
            state = subprocess.run(
                ["systemctl", "is-active", unit], capture_output=True, text=True
            ).stdout.strip()
            if state == "active":
                break
            time.sleep(1)
        active[unit] = state
    checks["units"] = {"ok": all(s == "active" for s in active.values()), "state": active}
    paths = [f"/etc/systemd/system/{unit}" for unit in UNITS]
    analyze = subprocess.run(
        ["systemd-analyze", "verify", *paths], capture_output=True, text=True, check=False
    )
    checks["systemd_analyze_verify"] = {
        "ok": analyze.returncode == 0 and not analyze.stderr.strip(),
        "exit": analyze.returncode,
        "output": (analyze.stdout + analyze.stderr)[-2000:],
    }
    config = load_config(CONFIG)
    checks["call"] = asyncio.run(answered_call(config))
    checks["console_https"] = console_over_tls(config)
    checks["sockets"] = exposure(config)
    checks["ok"] = all(c["ok"] for c in checks.values() if isinstance(c, dict))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.fresh_machine", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--keep", action="store_true", help="keep the machine's folder")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp"), help="where it is made")
    configure_parser = sub.add_parser("inside-configure", help="(in the machine)")
    configure_parser.add_argument("--address", required=True)
    sub.add_parser("inside-check", help="(in the machine)")
    args = parser.parse_args(argv)
    if args.command == "inside-configure":
        configure(args.address)
        return 0
    if args.command == "inside-check":
        checks = inside_check()
        print(json.dumps(checks))
        return 0 if checks["ok"] else 1
    if os.geteuid() != 0:
        print("make verify-install needs root (mmdebstrap, systemd-nspawn)", file=sys.stderr)
        return 2
    for tool, package in (("systemd-nspawn", "systemd-container"), ("mmdebstrap", "mmdebstrap")):
        if shutil.which(tool) is None:
            subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True)
    verdict = verify(args.keep, args.work)
    print(json.dumps(verdict, indent=2))
    return 0 if verdict["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
