"""The chaos harness: the real stack under steady calls while its parts are killed at random
moments, then every call in Asterisk's own record compared with Siaga's records.

Used by `bench/chaos.py` (full size) and `tests/integration/test_chaos.py` (scaled down).

The stack has the production shape: a PostgreSQL cluster and an Asterisk instance of the run's
own, and the app as `siaga run` in a process of its own, with a siaga.toml written for the run
(`embedded = false` for both, pointing at them). Callers are SIPp UACs dialling 112 with real
RFC 4733 digits; operators are real SIP phones (SIPp UASes, each serving a few operators'
registrations), since the fallback queue rings PJSIP/<sip_user> while the app is away.

Faults come one after the other at seeded random moments: SIGKILL of the app's process group,
restarted 0-10 s later; kill -9 of the PostgreSQL postmaster, restarted; kill -9 of Asterisk,
restarted (its channels die with it, so those calls are cut), after which the phones register
again. Once the callers are done and Asterisk has no channel left, the app is restarted once
more (its start-up pass reconciles the records with Asterisk's) and the records are compared
(`compare`): every call Asterisk saw must have exactly one `calls` row, closed, with arrival,
answer and end within a second of Asterisk's, the right outcome, the fallback flag when the
fallback took it, and no event a call has once (arrival, end, abandon) written twice.
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
import tomllib
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import structlog

from agi.fallback import operators_by_interface
from db.cel import AsteriskCall, asterisk_calls, parse_lines
from db.events import FALLBACK_FLAG
from db.reconcile import SETTLE
from pbx.asterisk import AsteriskInstance, _die_with_parent
from pbx.provision import ensure_asterisk_root, render_prompts
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
# A call's timestamps in the records must be within this of Asterisk's.
TOLERANCE_SECONDS = 1.0
# Events a call has at most once.
ONCE_KINDS = ("call_arrived", "call_ended", "call_abandoned")
PHONES_PER_UAS = 10
APP_RESTART_SECONDS = 1.0  # as a service manager's restart delay
# Every call's RTP (caller and operator legs, RTP and RTCP) needs ports of its own.
RTP_PORTS = 2000


class FaultKind(StrEnum):
    APP = "app"
    POSTGRES = "postgres"
    ASTERISK = "asterisk"


@dataclass(frozen=True, slots=True)
class Fault:
    at: float  # seconds after the first call
    kind: FaultKind
    down_for: float  # seconds between the kill and the restart


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    rate: float = 10.0  # calls per second
    duration: float = 120.0  # seconds of arrivals
    app_kills: int = 10
    postgres_kills: int = 2
    asterisk_kills: int = 1
    seed: int = 0
    operators: int = 0  # 0: enough for the rate
    max_app_down: float = 10.0

    def operator_count(self) -> int:
        # ~80 % of the callers reach someone and keep them ~6 s (ring, talk, wrap-up).
        return self.operators or max(6, math.ceil(self.rate * 6) + 4)


def fault_schedule(plan: ChaosPlan) -> list[Fault]:
    """The faults at seeded random moments within the arrivals (not in the first or last
    few seconds, so that each hits calls in every state), in the order they happen."""
    rng = random.Random(plan.seed)
    kinds = (
        [FaultKind.APP] * plan.app_kills
        + [FaultKind.POSTGRES] * plan.postgres_kills
        + [FaultKind.ASTERISK] * plan.asterisk_kills
    )
    faults = []
    for kind in kinds:
        at = rng.uniform(0.05 * plan.duration, 0.85 * plan.duration)
        down = (
            rng.uniform(0.0, plan.max_app_down) if kind is FaultKind.APP else rng.uniform(0.5, 3.0)
        )
        faults.append(Fault(round(at, 3), kind, round(down, 3)))
    return sorted(faults, key=lambda f: f.at)


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


def caller_sipps(plan: ChaosPlan, sip_port: int, folder: Path) -> list[Sipp]:
    """One SIPp UAC per kind of caller, each at its share of the rate; caller numbers are
    distinct (the kind's prefix and SIPp's call number)."""
    sipps = []
    for index, kind in enumerate(CALLER_KINDS, start=1):
        calls = round(plan.rate * kind.share * plan.duration)
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
                rate=plan.rate * kind.share,
                timeout=plan.duration + 600,
                extra=("-l", "5000"),  # SIPp's own default would throttle the long calls
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


# -- the comparison ------------------------------------------------------------------------


def asterisk_record(instance: AsteriskInstance, config: Config) -> dict[str, AsteriskCall]:
    """Asterisk's own record of the calls (its CEL file, read with db/cel.py)."""
    path = instance.outside(instance.layout.cel_file)
    with path.open(encoding="utf-8", errors="replace") as lines:
        return asterisk_calls(
            parse_lines(lines), config.asterisk.app, operators_by_interface(config)
        )


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


@dataclass(frozen=True, slots=True)
class CallRow:
    call_id: str
    arrived_at: datetime | None
    connected_at: datetime | None
    abandoned_at: datetime | None
    ended_at: datetime | None
    outcome: str
    operator_id: str | None
    flags: tuple[str, ...]

    @property
    def end(self) -> datetime | None:
        # An abandoned call ends with its `call_abandoned`; it has no `call_ended`.
        return self.ended_at or self.abandoned_at

    @property
    def closed(self) -> bool:
        return self.outcome != "ongoing" and self.end is not None


@dataclass(frozen=True, slots=True)
class Duplicate:
    call_id: str
    kind: str
    count: int


async def read_records(dsn: str) -> tuple[dict[str, CallRow], list[Duplicate]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT call_id, arrived_at, connected_at, abandoned_at, ended_at, outcome,"
            " operator_id, flags FROM calls"
        )
        twice = await conn.fetch(
            "SELECT call_id, kind, count(*) AS n FROM call_events WHERE kind = ANY($1::text[])"
            " GROUP BY call_id, kind HAVING count(*) > 1 ORDER BY call_id, kind",
            list(ONCE_KINDS),
        )
    finally:
        await conn.close()
    calls = {
        r["call_id"]: CallRow(
            call_id=r["call_id"],
            arrived_at=r["arrived_at"],
            connected_at=r["connected_at"],
            abandoned_at=r["abandoned_at"],
            ended_at=r["ended_at"],
            outcome=r["outcome"],
            operator_id=r["operator_id"],
            flags=tuple(r["flags"]),
        )
        for r in rows
    }
    return calls, [Duplicate(r["call_id"], r["kind"], r["n"]) for r in twice]


def expected_outcome(call: AsteriskCall) -> str:
    """The `calls.outcome` a call with this Asterisk record must have (db/functions/
    refresh_calls.sql: answered, then abandoned, then fallback, then unanswered)."""
    if call.connected_at is not None:
        return "answered"
    if call.hangup_by == "caller":
        return "abandoned"  # gone before anyone answered, in the menu, queue or fallback
    if call.fallback:
        return "fallback"
    return "unanswered"


@dataclass
class Comparison:
    """What the records got right and wrong against Asterisk's own record (None: there was
    no Asterisk record to compare with, only the records' own checks were made)."""

    rows: int
    duplicates: list[Duplicate]
    open: list[str]
    asterisk_calls: int | None = None
    missing: list[str] | None = None
    wrong: list[tuple[str, list[str]]] | None = None
    extra: list[str] | None = None
    asterisk_open: list[str] | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    fallback_calls: int | None = None
    cut_calls: int | None = None

    @property
    def clean(self) -> bool:
        return (
            self.missing == []
            and self.wrong == []
            and not self.duplicates
            and not self.open
            and self.extra == []
        )

    def summary(self, examples: int = 10) -> dict[str, Any]:
        def count(items: Sequence[Any] | None) -> int | None:
            return None if items is None else len(items)

        return {
            "asterisk_calls": self.asterisk_calls,
            "rows": self.rows,
            "missing": count(self.missing),
            "wrong": count(self.wrong),
            "duplicates": len(self.duplicates),
            "open": len(self.open),
            "extra": count(self.extra),
            "asterisk_open": count(self.asterisk_open),
            "fallback_calls": self.fallback_calls,
            "cut_by_restart": self.cut_calls,
            "outcomes": self.outcomes,
            "clean": self.clean,
            "examples": {
                "missing": (self.missing or [])[:examples],
                "wrong": [{"call_id": c, "why": why} for c, why in (self.wrong or [])[:examples]],
                "duplicates": [asdict(d) for d in self.duplicates[:examples]],
                "open": self.open[:examples],
                "extra": (self.extra or [])[:examples],
                "asterisk_open": (self.asterisk_open or [])[:examples],
            },
        }


def _off(label: str, ours: datetime | None, theirs: datetime | None) -> str | None:
    if ours is None and theirs is None:
        return None
    if ours is None or theirs is None:
        return f"{label}: records {_iso(ours)}, Asterisk {_iso(theirs)}"
    gap = abs((ours - theirs).total_seconds())
    if gap > TOLERANCE_SECONDS:
        return f"{label} off by {gap:.3f} s"
    return None


def _iso(at: datetime | None) -> str:
    return at.isoformat() if at is not None else "none"


def compare(
    asterisk: Mapping[str, AsteriskCall] | None,
    rows: Mapping[str, CallRow],
    duplicates: Sequence[Duplicate],
    live: Collection[str] = (),
) -> Comparison:
    """Every call in Asterisk's record against its `calls` row (the one place that knows
    what right means). `live`: the channels still up in Asterisk; a call with no hang-up in
    the record and no channel was cut by Asterisk's death."""
    open_rows = sorted(c for c, row in rows.items() if not row.closed)
    result = Comparison(rows=len(rows), duplicates=list(duplicates), open=open_rows)
    result.outcomes = dict(Counter(row.outcome for row in rows.values()))
    if asterisk is None:
        return result
    result.asterisk_calls = len(asterisk)
    result.missing, result.wrong, result.asterisk_open = [], [], []
    for call_id, call in sorted(asterisk.items(), key=lambda item: item[1].arrived_at):
        if call.ended_at is None and call_id in live:
            result.asterisk_open.append(call_id)
        row = rows.get(call_id)
        if row is None:
            result.missing.append(call_id)
            continue
        why = [
            reason
            for reason in (
                _off("arrival", row.arrived_at, call.arrived_at),
                _off("answer", row.connected_at, call.connected_at),
                # A call cut by Asterisk's death has no end in Asterisk's record.
                None if call.ended_at is None else _off("end", row.end, call.ended_at),
            )
            if reason is not None
        ]
        expected = expected_outcome(call)
        if row.outcome != expected:
            why.append(f"outcome {row.outcome}, expected {expected}")
        if not row.closed:
            why.append("not closed")
        if call.fallback and FALLBACK_FLAG not in row.flags:
            why.append("fallback not flagged")
        if call.operator_id is not None and row.operator_id != call.operator_id:
            why.append(f"operator {row.operator_id}, Asterisk {call.operator_id}")
        if why:
            result.wrong.append((call_id, why))
    result.extra = sorted(set(rows) - set(asterisk))
    result.fallback_calls = sum(1 for c in asterisk.values() if c.fallback)
    result.cut_calls = sum(
        1 for c in asterisk.values() if c.ended_at is None and c.call_id not in live
    )
    return result


async def compare_now(
    dsn: str, instance: AsteriskInstance, config: Config
) -> tuple[Comparison, str | None]:
    """The comparison as things stand, and why Asterisk's record was missing if it was."""
    rows, duplicates = await read_records(dsn)
    live = await asyncio.to_thread(live_channel_ids, instance)
    try:
        asterisk = await asyncio.to_thread(asterisk_record, instance, config)
    except OSError as exc:
        return compare(None, rows, duplicates), f"{type(exc).__name__}: {exc}"
    return compare(asterisk, rows, duplicates, live or ()), None


# -- the run -------------------------------------------------------------------------------


@dataclass
class ChaosRun:
    """One run: the stack, the load, the faults; `result()` is its JSON."""

    plan: ChaosPlan
    keep: bool = False
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="siaga-chaos-")))
    faults_done: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    channels_left: dict[str, int] = field(default_factory=dict)

    async def run(self) -> dict[str, Any]:
        os.chmod(self.folder, 0o755)  # PostgreSQL runs as `postgres` when we are root
        started = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            if not self.keep:
                stack.callback(shutil.rmtree, self.folder, True)
            cluster = PgCluster(
                self.folder / "pg", free_port(socket.SOCK_STREAM), settings=PG_SETTINGS
            )
            stack.callback(self._stop_postgres, cluster)
            await asyncio.to_thread(cluster.start)

            root, prompts = await asyncio.to_thread(ensure_asterisk_root), render_prompts()
            name = f"chaos-{os.getpid()}"
            example = load_config(EXAMPLE)
            # Where this instance will log (the layout depends on the name alone).
            future = AsteriskInstance(root, name, example)
            log_dir = future.outside(future.layout.log_dir)
            ports = Ports.free()
            phones = chaos_phones(self.plan.operator_count())
            settings = chaos_settings(
                tomllib.loads(EXAMPLE.read_text(encoding="utf-8")),
                dsn=cluster.dsn,
                ports=ports,
                phones=phones,
                log_dir=log_dir,
            )
            config_path = self.folder / "siaga.toml"
            config = write_config(config_path, settings)
            instance = AsteriskInstance(root, name, config)
            # After the stop below (callbacks run last in, first out).
            stack.callback(self._remove_instance, instance)
            stack.callback(instance.stop)
            await asyncio.to_thread(instance.prepare, prompts)
            # In this thread: Asterisk is told to die with the thread that started it.
            instance.start()

            app = AppProcess(config_path, self.folder, ports.web)
            stack.push_async_callback(app.stop)
            await app.start()
            if not await app.wait_healthy(90):
                raise RuntimeError(f"the app did not come up:\n{app.log_tail()}")

            operator_phones = OperatorPhones(phones, ports.sip, self.folder, self.plan.seed)
            stack.push_async_callback(operator_phones.stop)
            await operator_phones.start()

            callers = caller_sipps(self.plan, ports.sip, self.folder)
            for sipp in callers:
                stack.push_async_callback(sipp.stop)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for sipp in callers:
                await sipp.start()
            await asyncio.sleep(0.5)
            for sipp in callers:
                if not sipp_running(sipp):
                    raise SippError(f"a callers' SIPp exited at once:\n{sipp.diagnostics()}")
            faults = asyncio.create_task(
                self._inject(fault_schedule(self.plan), t0, app, cluster, instance, operator_phones)
            )
            await faults
            longest = max(k.delay_ms + k.hold_ms for k in CALLER_KINDS) / 1000
            await self._wait_callers(callers, t0 + self.plan.duration + longest + 90)
            await self._settle(instance)
            dead = sum(1 for uas in operator_phones.uases if not sipp_running(uas))
            if dead:
                self.notes.append(f"{dead} operators' SIPp processes died during the run")

            # The app's start-up pass reconciles the records with Asterisk's: it leaves alone
            # the calls that ended less than SETTLE ago.
            await asyncio.sleep(SETTLE.total_seconds() + 1)
            await app.stop()
            await app.start()
            if not await app.wait_healthy(90):
                self.notes.append("the app was not healthy after its final restart")
            comparison, record_error = await self._final_comparison(cluster.dsn, instance, config)
            result = self._result(comparison, record_error, callers, operator_phones, app)
            result["seconds"] = round(time.monotonic() - started, 1)
        return result

    async def _inject(
        self,
        faults: Sequence[Fault],
        t0: float,
        app: AppProcess,
        cluster: PgCluster,
        instance: AsteriskInstance,
        phones: OperatorPhones,
    ) -> None:
        loop = asyncio.get_running_loop()
        for fault in faults:
            await asyncio.sleep(max(0.0, t0 + fault.at - loop.time()))
            done: dict[str, Any] = {
                "kind": fault.kind.value,
                "planned_at": fault.at,
                "at": round(loop.time() - t0, 3),
                "down_for": fault.down_for,
            }
            log.info("chaos.fault", **done)
            if fault.kind is FaultKind.APP:
                await app.kill()
                await asyncio.sleep(fault.down_for)
                await app.start()
            elif fault.kind is FaultKind.POSTGRES:
                kill_postgres(cluster)
                await asyncio.sleep(fault.down_for)
                await asyncio.to_thread(restart_postgres, cluster)
            else:
                kill_asterisk(instance)
                await asyncio.sleep(fault.down_for)
                # In this thread (see run()); the loop waits the second or two it takes.
                instance.start()
                await phones.register()
            done["back_at"] = round(loop.time() - t0, 3)
            self.faults_done.append(done)

    async def _wait_callers(self, callers: Sequence[Sipp], until: float) -> None:
        loop = asyncio.get_running_loop()
        for sipp in callers:
            if sipp.process is None:
                continue
            try:
                await asyncio.wait_for(sipp.process.wait(), max(1.0, until - loop.time()))
            except TimeoutError:
                self.notes.append("a caller SIPp was still running long after its last call")
                await sipp.stop()

    async def _settle(self, instance: AsteriskInstance, timeout: float = 60.0) -> None:
        """Until Asterisk has no channel left: every call over."""
        deadline = time.monotonic() + timeout
        left = None
        while time.monotonic() < deadline:
            left = await asyncio.to_thread(active_channels, instance)
            if left == 0:
                return
            await asyncio.sleep(1.0)
        self.notes.append(f"{left} channels were still up {timeout:g} s after the last caller")
        self.channels_left = await asyncio.to_thread(channel_summary, instance)

    async def _final_comparison(
        self, dsn: str, instance: AsteriskInstance, config: Config, timeout: float = 30.0
    ) -> tuple[Comparison, str | None]:
        """Compared until clean or `timeout` passes (the records catch up within moments)."""
        deadline = time.monotonic() + timeout
        while True:
            comparison, error = await compare_now(dsn, instance, config)
            if comparison.clean or time.monotonic() > deadline:
                return comparison, error
            await asyncio.sleep(2.0)

    def _result(
        self,
        comparison: Comparison,
        record_error: str | None,
        callers: Sequence[Sipp],
        phones: OperatorPhones,
        app: AppProcess,
    ) -> dict[str, Any]:
        kills = Counter(f["kind"] for f in self.faults_done)
        return {
            "benchmark": "chaos",
            "seed": self.plan.seed,
            "plan": asdict(self.plan),
            "operators": len(phones.phones),
            "calls_placed": sum(s.calls for s in callers),
            "kills": {kind.value: kills.get(kind.value, 0) for kind in FaultKind},
            "faults": self.faults_done,
            "app_starts": app.starts,
            "app_exits": len(app.exits),  # of its own accord, then started again
            "app_exit_examples": app.exits[:3],
            "phone_registrations_failed": phones.failed_registrations,
            "asterisk_record": "cel" if record_error is None else f"missing ({record_error})",
            **comparison.summary(),
            "notes": self.notes,
            "channels_left": self.channels_left,
            "folder": str(self.folder) if self.keep else None,
        }

    def _remove_instance(self, instance: AsteriskInstance) -> None:
        """The instance's folders go; with `keep`, its logs (CEL, queue_log) stay in ours."""
        if self.keep:
            shutil.copytree(
                instance.outside(instance.layout.log_dir),
                self.folder / "asterisk-log",
                dirs_exist_ok=True,
            )
        shutil.rmtree(instance.outside(instance.layout.base), ignore_errors=True)

    @staticmethod
    def _stop_postgres(cluster: PgCluster) -> None:
        with contextlib.suppress(ClusterError):
            cluster.stop("immediate")


async def run_chaos(plan: ChaosPlan, *, keep: bool = False) -> dict[str, Any]:
    return await ChaosRun(plan, keep=keep).run()
