"""The real stack for the stack benchmark: a PostgreSQL cluster in a temporary folder, an
Asterisk instance of the benchmark's own (bench-<pid>, free ports, 127.0.0.1 only), the extra
dialplan and queues the app_queue side needs, an AMI observer, and /proc readings.

Both systems under test ring the same simulated operators: `Local/<n>@siaga-bench-op`, which
rings BENCH_RING s, answers, talks BENCH_TALK s plus a random part of up to BENCH_JITTER_MS
ms, and hangs up (globals set per phase). Operator n has the skills of the example
configuration's operator n (cycling), for both systems: Siaga's skill level 1 is app_queue's
penalty 0, level 2 penalty 1.

The app_queue side's callers take the equal-work path (`siaga-bench-aq`, rendered from Siaga's
own IVR configuration): recorded from arrival, answered, the same menu prompts with
`Background()`/`WaitExten()`, digit routing into a queue per category (`bench-<N>-<category>`)
whose waiting callers hear the same hold prompt. The plain path (`siaga-bench-queue`: answer,
`Queue(bench-<N>)`) is kept for comparison (`--app-queue plain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import resource
import shutil
import socket
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from bench import equal_work
from db.migrate import migrate
from dialplan import ami
from pbx.asterisk import AsteriskInstance
from pbx.provision import ensure_asterisk_root, render_prompts
from queues.config import Category
from siaga.config import Config, ListenConfig, OperatorConfig, load_config
from testbed.cluster import PgCluster
from testbed.sandbox import sandbox_config
from testbed.sipp import free_port

log = structlog.get_logger(__name__)

EXAMPLE = Path(__file__).resolve().parents[1] / "siaga.toml"
OPERATOR_CONTEXT = "siaga-bench-op"
QUEUE_CONTEXT = "siaga-bench-queue"
CALLER_CONTEXT = "siaga-bench-caller"
CALLER_ENDPOINT = f"Local/caller@{CALLER_CONTEXT}"
# Callers arrive as a trunk brings them: G.711 A-law (Indonesia's E1 networks). A Local
# channel offered no format picks slin192 and costs Asterisk a resampler on every frame.
CALLER_FORMATS = ("alaw",)
# Durable settings (fsync and synchronous_commit on, as in production).
PG_SETTINGS = {"shared_buffers": "128MB", "max_connections": "40"}

EXTRA_DIALPLAN = f"""
; ---- appended by the benchmark (bench/stack_env.py) ----
[globals]
BENCH_RING=0.2
BENCH_TALK=1
BENCH_JITTER_MS=0

[{OPERATOR_CONTEXT}]
; A simulated operator's phone, the same for Siaga and app_queue.
exten => _X!,1,Ringing()
 same => n,Wait(${{BENCH_RING}})
 same => n,Answer()
 ; Talk times vary: BENCH_TALK s plus up to BENCH_JITTER_MS ms, at random.
 same => n,Wait($[${{BENCH_TALK}} + ${{RAND(0,${{BENCH_JITTER_MS}})}} / 1000])
 same => n,Hangup()

[{CALLER_CONTEXT}]
; A simulated caller, the far half of the Local channel placed by the benchmark. It answers;
; with a digit to press (SIAGA_DTMF: Siaga's callers) it waits to hear the menu (0.1 s of
; sound), then SIAGA_DELAY s, and presses it, as a person does. Pressing on a clock started at
; its own answer would, on a loaded machine, press before its call had reached the app: the
; digit would be lost and the caller would sit through the whole menu. Then it stays SIAGA_HOLD
; s (its patience) and hangs up.
exten => caller,1,Answer()
 same => n,ExecIf($["${{SIAGA_DTMF}}" != ""]?WaitForNoise(100,1,30))
 same => n,Wait(${{SIAGA_DELAY}})
 same => n,ExecIf($["${{SIAGA_DTMF}}" != ""]?SendDTMF(${{SIAGA_DTMF}},250))
 same => n,Wait(${{SIAGA_HOLD}})
 same => n,Hangup()

[{QUEUE_CONTEXT}]
; Plain app_queue: answer and queue; the extension is the queue's name.
exten => _b.,1,Answer()
 same => n,Queue(${{EXTEN}})
 same => n,Hangup()
"""


def queue_name(operators: int) -> str:
    return f"bench-{operators}"


def skill_levels(config: Config, operator: int) -> dict[str, int]:
    """Operator `operator` (from 1) has the skills of the example configuration's operators in
    turn: the same people for Siaga (skill levels) and app_queue (penalties)."""
    profiles = [o.skills for o in config.operators]
    levels = dict(profiles[(operator - 1) % len(profiles)]) if profiles else {}
    # A skill nobody in the example has would leave its category without anyone at all.
    return {c.skill: levels.get(c.skill, 1) for c in config.categories}


def queue_section(operators: int) -> str:
    """The plain path's queue: every operator, penalty 0."""
    members = "\n".join(
        f"member => Local/{i}@{OPERATOR_CONTEXT},0,op{i}" for i in range(1, operators + 1)
    )
    return f"""
[{queue_name(operators)}]
{equal_work.QUEUE_SETTINGS}musicclass = default
{members}
"""


def base_config() -> Config:
    """siaga.toml with ports of the benchmark's own (everything on 127.0.0.1)."""
    base = load_config(EXAMPLE)
    return sandbox_config(base, base.database.url, rtp_base=40000)


@dataclass(frozen=True)
class AppSpec:
    """What the app process needs to build its configuration (passed as JSON)."""

    ari_url: str
    ami_port: int
    sip_port: int
    rtp_start: int
    agi_port: int
    database_url: str
    prompts_dir: str
    operators: int
    spool: str
    timeline: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def app_config(spec: AppSpec) -> Config:
    """The app's configuration: simulated operators with the example's skills, no wrap-up."""
    base = load_config(EXAMPLE)
    operators = tuple(
        OperatorConfig(
            id=f"op{i}",
            name=f"Bench {i}",
            sip_user=f"bench{i}",
            sip_password="bench-operator",
            skills=skill_levels(base, i),
            dial=f"Local/{i}@{OPERATOR_CONTEXT}",
        )
        for i in range(1, spec.operators + 1)
    )
    categories: tuple[Category, ...] = tuple(
        dataclasses.replace(c, wrap_up_seconds=0.0) for c in base.categories
    )
    asterisk = dataclasses.replace(
        base.asterisk,
        ari_url=spec.ari_url,
        ami_port=spec.ami_port,
        sip_port=spec.sip_port,
        rtp_start=spec.rtp_start,
        rtp_end=spec.rtp_start + 99,
    )
    return dataclasses.replace(
        base,
        operators=operators,
        categories=categories,
        asterisk=asterisk,
        database=dataclasses.replace(base.database, url=spec.database_url, embedded=False),
        agi=ListenConfig("127.0.0.1", spec.agi_port),
        acd=dataclasses.replace(base.acd, ring_timeout_seconds=15.0),
    )


@dataclass
class BenchStack:
    """PostgreSQL + Asterisk for one benchmark run; `close()` stops both, whatever happened."""

    config: Config
    queue_sizes: tuple[int, ...]
    http_sessionlimit: int | None = None  # None: Asterisk's default (100), as shipped
    postgres: bool = True  # False: Asterisk alone (a benchmark of Asterisk's own costs)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="siaga-bench-")))
    cluster: PgCluster | None = None
    asterisk: AsteriskInstance | None = None

    @property
    def dsn(self) -> str:
        if self.cluster is None:
            raise RuntimeError("BenchStack.start() first")
        return self.cluster.dsn

    async def start(self) -> None:
        os.chmod(self.folder, 0o755)  # PostgreSQL runs as `postgres` when we are root
        _raise_file_limit()
        if self.postgres:
            port = free_port(socket.SOCK_STREAM)
            self.cluster = PgCluster(self.folder / "pg", port, settings=PG_SETTINGS)
            await asyncio.to_thread(self.cluster.start)
            await migrate(self.cluster.dsn)
        root = await asyncio.to_thread(ensure_asterisk_root)
        prompts = await asyncio.to_thread(render_prompts)
        self.asterisk = AsteriskInstance(root, f"bench-{os.getpid()}", self.config)
        await asyncio.to_thread(self.asterisk.prepare, prompts)
        self._write_bench_config(self.asterisk)
        self.asterisk.link_modules()  # the modules the bench adds
        await asyncio.to_thread(self.asterisk.start)

    def _write_bench_config(self, instance: AsteriskInstance) -> None:
        etc = instance.outside(instance.layout.etc_dir)
        config = self.config
        prompts, language = instance.prompts_dir, config.centre.language
        emergency = equal_work.emergency_categories(config.ivr)
        with (etc / "extensions.conf").open("a", encoding="utf-8") as out:
            out.write(EXTRA_DIALPLAN)
            out.write(equal_work.dialplan(config.ivr, config.categories, prompts, language))
        with (etc / "queues.conf").open("a", encoding="utf-8") as out:
            for size in sorted(set(self.queue_sizes)):
                out.write(queue_section(size))
                out.write(
                    equal_work.queues(
                        queue_name(size),
                        size,
                        config.categories,
                        emergency,
                        lambda n: skill_levels(config, n),
                        lambda n: f"Local/{n}@{OPERATOR_CONTEXT}",
                    )
                )
        with (etc / "queuerules.conf").open("a", encoding="utf-8") as out:
            out.write(equal_work.queue_rules(config.categories))
        with (etc / "musiconhold.conf").open("a", encoding="utf-8") as out:
            out.write(equal_work.music_classes(prompts, language))
        if self.http_sessionlimit is not None:
            with (etc / "http.conf").open("a", encoding="utf-8") as out:
                out.write(f"sessionlimit = {self.http_sessionlimit}\n")
        with (etc / "modules.conf").open("a", encoding="utf-8") as out:
            out.write("load = func_rand.so ; the benchmark's random talk times\n")
            out.write("load = app_waitforsilence.so ; WaitForNoise(): callers hear the menu\n")
        manager = etc / "manager.conf"
        text = manager.read_text(encoding="utf-8")
        # Asterisk's own clock on every AMI event: both systems are timed by the same observer.
        text = text.replace("[general]\n", "[general]\ntimestampevents = yes\n", 1)
        # The observer's events join the AMI user's (its section ends the file): the user may
        # not set a filter of its own (dialplan/ami.py).
        extra = tuple(event for event in WATCHED if event not in ami.EVENTS)
        manager.write_text(text + ami.event_filters(extra) + "\n", encoding="utf-8")

    def prompt_seconds(self, name: str) -> float:
        """How long a rendered prompt of the centre's language plays (its WAV file)."""
        if self.asterisk is None:
            raise RuntimeError("BenchStack.start() first")
        folder = self.asterisk.outside(self.asterisk.prompts_dir)
        with wave.open(str(folder / self.config.centre.language / f"{name}.wav")) as audio:
            frames: int = audio.getnframes()
            rate: int = audio.getframerate()
        return frames / rate

    def postgres_pid(self) -> int | None:
        """The postmaster's pid (the first line of postmaster.pid)."""
        if self.cluster is None:
            return None
        try:
            return int((self.cluster.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def set_operator_times(self, ring: float, talk: float, jitter: float = 0.0) -> None:
        """Ring `ring` s, talk `talk` s plus a random 0..`jitter` s (Asterisk's RAND)."""
        if self.asterisk is None:
            raise RuntimeError("BenchStack.start() first")
        self.asterisk.cli(f"dialplan set global BENCH_RING {ring}")
        self.asterisk.cli(f"dialplan set global BENCH_TALK {talk}")
        self.asterisk.cli(f"dialplan set global BENCH_JITTER_MS {int(jitter * 1000)}")

    def hang_up_all(self) -> None:
        if self.asterisk is not None and self.asterisk.running_pid() is not None:
            with contextlib.suppress(Exception):
                self.asterisk.cli("channel request hangup all", timeout=30)

    def close(self) -> None:
        try:
            if self.asterisk is not None:
                self.asterisk.stop()
                shutil.rmtree(self.asterisk.outside(self.asterisk.layout.base), ignore_errors=True)
        finally:
            try:
                if self.cluster is not None:
                    self.cluster.stop("immediate")
            finally:
                shutil.rmtree(self.folder, ignore_errors=True)


def _raise_file_limit() -> None:
    """Hundreds of bridges and timers: Asterisk (our child) inherits the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---- AMI observer -------------------------------------------------------------------------

WATCHED = ("Newchannel", "Hangup", "DialBegin", "BridgeEnter", "QueueCallerJoin")


@dataclass(frozen=True, slots=True)
class AmiEvent:
    name: str
    at: float  # Asterisk's wall clock (timestampevents), seconds since the epoch
    uniqueid: str
    channel: str
    dest_uniqueid: str = ""
    dest_channel: str = ""


class AmiObserver:
    """Reads AMI events (Asterisk's timestamps) for both systems: the same yardstick."""

    def __init__(self, host: str, port: int, user: str, secret: str) -> None:
        self.host, self.port, self.user, self.secret = host, port, user, secret
        self.events: list[AmiEvent] = []
        self.alive: set[str] = set()  # channels created and not hung up yet
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        await reader.readline()  # banner
        self._send(
            {
                "Action": "Login",
                "Username": self.user,
                "Secret": self.secret,
                "Events": "call,agent",
            }
        )
        await writer.drain()
        self._task = asyncio.get_running_loop().create_task(self._read(reader))

    def _send(self, fields: dict[str, str]) -> None:
        assert self._writer is not None
        text = "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        self._writer.write(text.encode())

    async def _read(self, reader: asyncio.StreamReader) -> None:
        block: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            if line:
                key, _, value = line.partition(": ")
                block.setdefault(key, value)
                continue
            name = block.get("Event", "")
            if name == "Newchannel":
                self.alive.add(block.get("Uniqueid", ""))
            elif name == "Hangup":
                self.alive.discard(block.get("Uniqueid", ""))
            if name in WATCHED:
                self.events.append(
                    AmiEvent(
                        name=name,
                        at=float(block.get("Timestamp", "0") or 0) or time.time(),
                        uniqueid=block.get("Uniqueid", ""),
                        channel=block.get("Channel", ""),
                        dest_uniqueid=block.get("DestUniqueid", ""),
                        dest_channel=block.get("DestChannel", ""),
                    )
                )
            elif block.get("Response") == "Error":
                log.warning("ami.error", message=block.get("Message"))
            block = {}

    def since(self, start: float) -> list[AmiEvent]:
        return [e for e in self.events if e.at >= start]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()


# ---- /proc readings -----------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 is fields[0])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads)."""
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / _TICK


def server_cpu_seconds(pid: int) -> float:
    """CPU of a server and of every process it forked (PostgreSQL's backends, which come and
    go with the app's connections): the live ones, plus those it has already reaped."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    total = sum(int(f) for f in fields[11:15]) / _TICK  # utime stime cutime cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            child = _stat(int(entry.name))
            if child is not None and child[1] == str(pid):  # its parent is the server
                total += (int(child[11]) + int(child[12])) / _TICK
    return total


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return (total - idle) / _TICK, total / _TICK


def busy_percent(before: tuple[float, float], after: tuple[float, float]) -> float | None:
    """The share of the machine's CPU (all cores) that was busy between two readings."""
    total = after[1] - before[1]
    return round(100 * (after[0] - before[0]) / total, 1) if total > 0 else None


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0
