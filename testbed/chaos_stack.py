"""The pieces of the stack a chaos run (testbed/chaos.py) starts, kills and starts again: the
app as `siaga run` with a siaga.toml written for the run, PostgreSQL, Asterisk, the operators'
SIP phones and the SIP callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from pbx.asterisk import AsteriskInstance, _die_with_parent
from siaga.config import Config, load_config
from testbed.cluster import ClusterError, PgCluster
from testbed.sipp import (
    Sipp,
    SippError,
    caller_scenario,
    free_port,
    register_scenario,
    ringing_phone_scenario,
)

log = structlog.get_logger(__name__)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "siaga.toml"
# Durable, as in production: the records must survive the server's crash.
PG_SETTINGS = {"shared_buffers": "64MB", "max_connections": "60"}
PHONES_PER_UAS = 10
CALLER_RECV_TIMEOUT_S = 30
APP_RESTART_SECONDS = 1.0  # as a service manager's restart delay
# Every call's RTP (caller and operator legs, RTP and RTCP) needs ports of its own.
RTP_PORTS = 2000

# -- callers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerKind:
    name: str
    share: float  # of all calls
    digits: str  # pressed after delay_ms from the answer; "" presses nothing
    hold_ms: int  # after the digits, then the caller hangs up
    delay_ms: int = 1500


CALLER_KINDS = (
    CallerKind("medical", 0.35, "1", 7000),
    CallerKind("police", 0.2, "3", 6000),
    # Presses nothing: queued by the menu's deadline (6 s after arrival), then answered.
    CallerKind("silent", 0.25, "", 12000),
    # Hangs up during the menu, before anyone answers: abandoned.
    CallerKind("abandons", 0.2, "", 1500),
)


def caller_sipps(rate: float, duration: float, sip_port: int, folder: Path) -> list[Sipp]:
    """One SIPp UAC per kind of caller, each at its share of `rate` calls/s for `duration` s;
    caller numbers are distinct (the kind's prefix and SIPp's call number)."""
    sipps = []
    for index, kind in enumerate(CALLER_KINDS, start=1):
        calls = round(rate * kind.share * duration)
        if calls == 0:
            continue
        scenario = caller_scenario(
            caller_id=f"0819{index}0[call_number]",
            digits=kind.digits,
            delay_ms=kind.delay_ms,
            hold_ms=kind.hold_ms,
        )
        workdir = folder / f"caller-{kind.name}"
        workdir.mkdir(parents=True)
        sipps.append(
            Sipp(
                scenario,
                sip_port,
                calls=calls,
                rate=rate * kind.share,
                timeout=duration + 600,
                extra=(
                    *("-l", "5000"),  # SIPp's own default would throttle the long calls
                    # A call whose Asterisk died before answering it, or its hang-up, waits for
                    # no answer longer than this (a call's other waits have their own).
                    *("-recv_timeout", f"{CALLER_RECV_TIMEOUT_S * 1000:.0f}"),
                ),
                workdir=workdir,
            )
        )
    return sipps


# -- operators -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phone:
    user: str
    password: str


def chaos_phones(count: int) -> list[Phone]:
    return [Phone(f"{2000 + i}", f"chaos-phone-{2000 + i}") for i in range(1, count + 1)]


def sipp_running(sipp: Sipp) -> bool:
    return sipp.process is not None and sipp.process.returncode is None


class OperatorPhones:
    """The operators' SIP phones: a few SIPp UASes, each the registered contact of up to
    PHONES_PER_UAS operators, answering after a short ring (a different one per UAS)."""

    def __init__(self, phones: Sequence[Phone], sip_port: int, folder: Path, seed: int) -> None:
        self.phones = list(phones)
        self.sip_port = sip_port
        self.folder = folder
        rng = random.Random(seed)
        self.uases = []
        for n in range(math.ceil(len(self.phones) / PHONES_PER_UAS)):
            workdir = folder / f"phones-{n}"
            workdir.mkdir(parents=True)
            ring_ms = rng.randint(300, 1200)
            self.uases.append(
                Sipp(
                    ringing_phone_scenario(ring_ms=ring_ms),
                    sip_port,
                    server=True,
                    timeout=24 * 3600,  # stopped by us
                    workdir=workdir,
                )
            )
        self.registrations = 0
        self.failed_registrations = 0

    def uas_of(self, index: int) -> Sipp:
        return self.uases[index // PHONES_PER_UAS]

    async def start(self) -> None:
        for uas in self.uases:
            await uas.start()
        await asyncio.sleep(0.5)
        for uas in self.uases:
            if not sipp_running(uas):
                raise SippError(f"an operators' SIPp exited at once:\n{uas.diagnostics()}")
        await self.register()

    async def register(self, attempts: int = 3) -> None:
        """REGISTER every phone (again after Asterisk restarted: it forgot them)."""
        pending = list(enumerate(self.phones))
        for _ in range(attempts):
            failed: list[tuple[int, Phone]] = []
            for start in range(0, len(pending), 10):
                batch = pending[start : start + 10]
                results = await asyncio.gather(*(self._register_one(i, p) for i, p in batch))
                failed += [item for item, ok in zip(batch, results, strict=True) if not ok]
            self.registrations += len(pending) - len(failed)
            pending = failed
            if not pending:
                return
            await asyncio.sleep(1.0)
        self.failed_registrations += len(pending)
        log.warning("chaos.phones_unregistered", phones=[p.user for _, p in pending])

    async def _register_one(self, index: int, phone: Phone) -> bool:
        workdir = Path(tempfile.mkdtemp(prefix=f"register-{phone.user}-", dir=self.folder))
        sipp = Sipp(
            register_scenario(
                user=phone.user,
                password=phone.password,
                contact_port=self.uas_of(index).local_port,
                expires=3600,
            ),
            self.sip_port,
            extra=("-au", phone.user, "-ap", phone.password),
            timeout=20,
            workdir=workdir,
        )
        try:
            await sipp.start()
            await sipp.wait(timeout=15)
        except Exception as exc:  # any failure is retried, then reported
            log.info("chaos.register_failed", phone=phone.user, error=str(exc)[:200])
            await sipp.stop()
            return False
        shutil.rmtree(workdir, ignore_errors=True)
        return True

    async def stop(self) -> None:
        for uas in self.uases:
            await uas.stop()


# -- the configuration ---------------------------------------------------------------------


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML basic-string escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"no TOML for {value!r}")


def dump_toml(data: Mapping[str, Any]) -> str:
    """TOML for a loaded siaga.toml: top-level tables and arrays of tables, anything deeper
    inline (enough for siaga.toml; the standard library reads TOML but does not write it)."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if not _is_table(v)]
    for key, value in data.items():
        if isinstance(value, Mapping):
            lines += ["", f"[{_toml_key(key)}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
        elif _is_table(value):
            for row in value:
                lines += ["", f"[[{_toml_key(key)}]]"]
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in row.items()]
    return "\n".join(lines) + "\n"


def _is_table(value: Any) -> bool:
    if isinstance(value, Mapping):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


@dataclass(frozen=True, slots=True)
class Ports:
    ari: int
    ami: int
    sip: int
    web: int
    agi: int
    rtp_start: int

    @classmethod
    def free(cls) -> Ports:
        def tcp() -> int:
            return free_port(socket.SOCK_STREAM)

        # 2,000 RTP ports from 20,000 up, picked by pid so parallel runs rarely share them.
        rtp = 20000 + (os.getpid() % 10) * RTP_PORTS
        return cls(ari=tcp(), ami=tcp(), sip=free_port(), web=tcp(), agi=tcp(), rtp_start=rtp)


def chaos_settings(
    example: Mapping[str, Any],
    *,
    dsn: str,
    ports: Ports,
    phones: Sequence[Phone],
    log_dir: Path,
    recordings_dir: Path | None = None,
) -> dict[str, Any]:
    """The example siaga.toml pointed at the run's own Asterisk (its log folder too: its record
    of every call) and PostgreSQL (both not embedded), on the run's ports, with the run's
    operators (every skill at level 1) and a short wrap-up so that the operators take many
    calls each."""
    settings: dict[str, Any] = json.loads(json.dumps(example))  # a deep copy
    settings.pop("secrets_file", None)
    settings["asterisk"].update(
        embedded=False,
        ari_url=f"http://127.0.0.1:{ports.ari}",
        ami_port=ports.ami,
        sip_port=ports.sip,
        rtp_start=ports.rtp_start,
        rtp_end=ports.rtp_start + RTP_PORTS - 1,
        log_dir=str(log_dir),
    )
    if recordings_dir is not None:
        settings["asterisk"]["recordings_dir"] = str(recordings_dir)
    settings["database"] = {"embedded": False, "url": dsn}
    settings["web"] = {"host": "127.0.0.1", "port": ports.web}
    settings["agi"] = {**settings["agi"], "host": "127.0.0.1", "port": ports.agi}
    settings["acd"]["ring_timeout_seconds"] = 8
    skills = {c["skill"]: 1 for c in settings["categories"]}
    settings["operators"] = [
        {
            "id": p.user,
            "name": f"Chaos {p.user}",
            "sip_user": p.user,
            "sip_password": p.password,
            "skills": skills,
        }
        for p in phones
    ]
    for category in settings["categories"]:
        category["wrap_up_seconds"] = 1
    return settings


def write_config(path: Path, settings: Mapping[str, Any]) -> Config:
    path.write_text(dump_toml(settings), encoding="utf-8")
    return load_config(path)


# -- the app, PostgreSQL and Asterisk ------------------------------------------------------


class AppProcess:
    """`siaga run` in a process group of its own, as a regency runs it: under a service
    manager that starts it again APP_RESTART_SECONDS after it exits of its own accord (e.g.
    PostgreSQL down at its start-up); such exits are counted in `exits`."""

    def __init__(self, config_path: Path, folder: Path, web_port: int) -> None:
        self.config_path = config_path
        self.folder = folder
        self.web_port = web_port
        self.log_path = folder / "app.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.exits: list[dict[str, Any]] = []
        self._wanted = False
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._wanted = True
        await self._spawn()

    async def _restart_on_exit(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if not self._wanted or process is not self.process:
            return
        tail = self.log_tail(1)
        self.exits.append({"code": code, "last_line": tail[-300:]})
        log.warning("chaos.app_exited", code=code, last_line=tail[-300:])
        await asyncio.sleep(APP_RESTART_SECONDS)
        if self._wanted and process is self.process:
            await self._spawn()

    async def _spawn(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "SIAGA_STATE_DIR": str(self.folder / "state"),  # the records' journal
        }
        with self.log_path.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "stack.cli",
                "--config",
                str(self.config_path),
                "--log-format",
                "json",
                "run",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=REPO,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # a killed harness leaves no app behind
            )
        self.starts += 1
        self._watcher = asyncio.create_task(self._restart_on_exit(self.process))

    async def kill(self) -> None:
        """SIGKILL to the whole group: no goodbyes, no flush."""
        self._wanted = False
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self, timeout: float = 45.0) -> None:
        """SIGTERM (the app drains and flushes its records), SIGKILL if it takes too long."""
        self._wanted = False
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.kill()

    async def wait_healthy(self, timeout: float = 60.0) -> bool:
        """Until /healthz says ARI connected and the database reachable."""
        url = f"http://127.0.0.1:{self.web_port}/healthz"
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            return True
                await asyncio.sleep(0.2)
        return False

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def postmaster_pid(cluster: PgCluster) -> int | None:
    try:
        return int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Running, not merely a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_postgres(cluster: PgCluster) -> None:
    pid = postmaster_pid(cluster)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def restart_postgres(cluster: PgCluster, timeout: float = 60.0) -> None:
    """Start the cluster again after a kill -9 of its postmaster. Its backends notice the
    death and exit within moments; until they have, the new postmaster refuses the shared
    memory they hold, so this retries."""
    deadline = time.monotonic() + timeout
    while True:
        pid = postmaster_pid(cluster)
        if pid is not None and not _alive(pid):
            # pg_ctl would take a dead, unreaped postmaster for a running one.
            (cluster.data_dir / "postmaster.pid").unlink(missing_ok=True)
        try:
            cluster.start()
            return
        except ClusterError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def kill_asterisk(instance: AsteriskInstance) -> None:
    pid = instance.process.pid if instance.process is not None else instance.running_pid()
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if instance.process is not None:
        instance.process.wait()
    instance.process = None


def active_channels(instance: AsteriskInstance) -> int | None:
    try:
        text = instance.cli("core show channels count")
    except Exception:  # Asterisk down or busy: unknown
        return None
    found = re.search(r"(\d+) active channel", text)
    return int(found.group(1)) if found else None


def _concise_channels(instance: AsteriskInstance) -> list[list[str]] | None:
    """`core show channels concise`, one list of fields per channel: Channel, Context, Exten,
    Priority, State, Application, Data, CallerID, ..., BridgeID, Uniqueid."""
    try:
        text = instance.cli("core show channels concise")
    except Exception:
        return None
    return [line.split("!") for line in text.splitlines() if "!" in line]


def live_channel_ids(instance: AsteriskInstance) -> set[str] | None:
    """The unique ids of the channels up in Asterisk now; None if it cannot say."""
    channels = _concise_channels(instance)
    return None if channels is None else {fields[-1] for fields in channels}


def channel_summary(instance: AsteriskInstance) -> dict[str, int]:
    """The channels up, counted by kind: `<channel name> <context> <state> <application>`
    (the name without its sequence number, e.g. PJSIP/2001, PJSIP/trunk)."""
    kinds: Counter[str] = Counter()
    for fields in _concise_channels(instance) or []:
        if len(fields) >= 6:
            name = fields[0].rsplit("-", 1)[0]
            kinds[f"{name} {fields[1]} {fields[4]} {fields[5]}"] += 1
    return dict(kinds.most_common(20))
