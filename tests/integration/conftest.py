"""The real stack for integration tests: an Asterisk 22 instance of the test session's own (own
ports, own folders inside the shared Asterisk root), the PostgreSQL cluster of tests/conftest.py,
and the Siaga app connected to both.

Nothing here is skipped: if Asterisk or PostgreSQL cannot start, the fixture fails with their log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import socket
import uuid
import wave
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from integration.ari_probe import AriProbe

from ari_app.app import SiagaApp
from ari_app.ari.config import AriConfig
from ari_app.ari.rest import AriRest
from db.writer import RecordWriter
from pbx.asterisk import AsteriskInstance
from pbx.provision import ensure_asterisk_root, render_prompts
from siaga.config import Config, load_config
from testbed.cluster import PgCluster, create_database
from testbed.sandbox import running_asterisk, sandbox_config
from testbed.sipp import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
STACK_DB = "siaga_stack"


@pytest.fixture(scope="session")
def provisioned() -> tuple[Path, Path]:
    """The Asterisk root and the rendered prompts (built once, then reused from the cache)."""
    return ensure_asterisk_root(), render_prompts()


@pytest.fixture(scope="session")
async def stack_dsn(pg_cluster: PgCluster, pg_template: str) -> str:
    return await create_database(pg_cluster, STACK_DB, pg_template)


@pytest.fixture(scope="session")
def stack_config(stack_dsn: str) -> Config:
    """siaga.toml with ports of this test session's own, and fast timers for tests."""
    base = sandbox_config(load_config(EXAMPLE), stack_dsn)
    ivr = dataclasses.replace(base.ivr, timeout_seconds=2.0)
    acd = dataclasses.replace(base.acd, ring_timeout_seconds=4.0, retry_after_busy_seconds=1.0)
    categories = tuple(dataclasses.replace(c, wrap_up_seconds=0.5) for c in base.categories)
    return dataclasses.replace(base, categories=categories, ivr=ivr, acd=acd)


@pytest.fixture(scope="session")
def asterisk(provisioned: tuple[Path, Path], stack_config: Config) -> Iterator[AsteriskInstance]:
    root, prompts = provisioned
    with running_asterisk(root, prompts, f"test-{os.getpid()}", stack_config) as instance:
        yield instance


@pytest.fixture(scope="session")
async def ari(asterisk: AsteriskInstance, stack_config: Config) -> AsyncIterator[AriProbe]:
    """A REST client for the test itself (to place calls and look at channels)."""
    ast = stack_config.asterisk
    config = AriConfig(
        username=ast.ari_user, password=ast.ari_password, app=ast.app, url=ast.ari_url
    )
    async with aiohttp.ClientSession() as session:
        yield AriProbe.from_session(session, config)


@pytest.fixture
async def journal(stack_dsn: str, tmp_path: Path) -> AsyncIterator[RecordWriter]:
    writer = RecordWriter(stack_dsn, tmp_path / "journal.jsonl", batch_ms=50)
    await writer.start()
    yield writer
    await writer.close()


StartApp = Callable[..., Awaitable[SiagaApp]]


@pytest.fixture
async def start_app(
    asterisk: AsteriskInstance, stack_config: Config, journal: RecordWriter
) -> AsyncIterator[StartApp]:
    """Start the app (optionally with a changed config); stopped after the test."""
    apps: list[SiagaApp] = []

    async def start(**changes: Any) -> SiagaApp:
        # Operators with Local dial strings need no Asterisk config, so tests may swap them.
        config = dataclasses.replace(stack_config, **changes) if changes else stack_config
        app = SiagaApp(config, journal, prompts_dir=asterisk.prompts_dir)
        await app.start()
        apps.append(app)
        await app.wait_connected(10)
        return app

    yield start
    for app in apps:
        await app.stop()
    await _hang_up_everything(asterisk)


async def _hang_up_everything(asterisk: AsteriskInstance) -> None:
    # Each test starts with an idle PBX: calls a failed test left behind must not leak on.
    await asyncio.to_thread(asterisk.cli, "channel request hangup all")
    await asyncio.sleep(0.2)


@pytest.fixture
async def app(start_app: StartApp) -> SiagaApp:
    return await start_app()


class Callers:
    """Places real Local-channel calls into the emergency number, with real DTMF."""

    def __init__(self, ari: AriRest, config: Config) -> None:
        self.ari = ari
        self.config = config

    async def call(
        self,
        *,
        number: str = "081234567890",
        name: str = "Penelepon",
        digits: str = "",
        delay: float = 1.0,
        hold: float = 30,
        gap_ms: int = 250,
    ) -> str:
        """Start a caller; returns the id of the channel that enters the app (the call id)."""
        call_id = f"t-{uuid.uuid4().hex[:12]}"
        await self.ari.originate_to_dialplan(
            "Local/caller@siaga-test",
            channel_id=call_id,
            context="siaga-local",
            extension=self.config.asterisk.emergency_number,
            caller_id=f'"{name}" <{number}>',
            variables={
                "SIAGA_DTMF": digits,
                "SIAGA_DELAY": str(delay),
                "SIAGA_HOLD": str(hold),
                "SIAGA_GAP": str(gap_ms),
            },
        )
        return call_id


@pytest.fixture
def callers(ari: AriRest, stack_config: Config) -> Callers:
    return Callers(ari, stack_config)


async def wait_for(
    predicate: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 20.0,
    what: str = "condition",
    poll: float = 0.1,
) -> Any:
    """Poll until predicate() is truthy; fail with `what` when it never is."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(poll)


@pytest.fixture
def wait() -> Callable[..., Awaitable[Any]]:
    return wait_for


@pytest.fixture
async def db(stack_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack_dsn)
    yield conn
    await conn.close()


class Records:
    """What the journal wrote for a call, read back from PostgreSQL."""

    def __init__(self, journal: RecordWriter, db: asyncpg.Connection) -> None:
        self.journal = journal
        self.db = db

    async def call(self, call_id: str) -> asyncpg.Record | None:
        await self.journal.wait_replayed(timeout=10)  # in PostgreSQL (a stuck writer fails)
        row: asyncpg.Record | None = await self.db.fetchrow(
            "SELECT * FROM calls WHERE call_id=$1", call_id
        )
        return row

    async def events(self, call_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        await self.journal.wait_replayed(timeout=10)  # in PostgreSQL (a stuck writer fails)
        rows = await self.db.fetch(
            "SELECT kind, operator_id, at, data FROM call_events WHERE call_id=$1"
            " AND ($2::text IS NULL OR kind=$2) ORDER BY at, seq",
            call_id,
            kind,
        )
        return [
            {
                "kind": r["kind"],
                "operator_id": r["operator_id"],
                "at": r["at"],
                **json.loads(r["data"]),
            }
            for r in rows
        ]

    async def final(self, call_id: str, timeout: float = 30.0) -> asyncpg.Record:
        """The call's row once it is no longer ongoing."""

        async def done() -> asyncpg.Record | None:
            row = await self.call(call_id)
            return row if row is not None and row["outcome"] != "ongoing" else None

        row: asyncpg.Record = await wait_for(done, timeout=timeout, what=f"{call_id} to end")
        return row


@pytest.fixture
def records(journal: RecordWriter, db: asyncpg.Connection) -> Records:
    return Records(journal, db)


WINDOW = 0.05  # seconds of audio per window in audio_windows()


def audio_windows(path: Path, seconds: float = WINDOW) -> list[tuple[float, float]]:
    """(RMS as a share of full scale, zero crossings per second) of each `seconds` of a wav."""
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        samples = array("h", wav.readframes(wav.getnframes()))
    size = int(rate * seconds)
    windows = []
    for start in range(0, len(samples) - size + 1, size):
        chunk = samples[start : start + size]
        rms = math.sqrt(sum(x * x for x in chunk) / size) / 32768
        crossings = sum(1 for a, b in pairwise(chunk) if (a < 0) != (b < 0))
        windows.append((rms, crossings / seconds))
    return windows


async def recording_of(call_id, asterisk, wait) -> list[tuple[float, float]]:
    """The call's recording, once MixMonitor has closed it, as audio windows."""
    wav = asterisk.recordings_dir / f"{call_id}.wav"

    async def closed():  # MixMonitor fills in the RIFF size when it closes the file
        head = wav.read_bytes()[:8] if wav.exists() else b""
        return len(head) == 8 and int.from_bytes(head[4:], "little") > 36

    await wait(closed, what=f"the recording {wav.name} to be closed")
    return audio_windows(wav)


def run_config(
    path: Path,
    stack_config: Config,
    asterisk: AsteriskInstance,
    *,
    phones: bool,
    web_port: int | None = None,
    ha: str = "",
) -> None:
    """The shipped siaga.toml for a `siaga run` of its own against the test session's Asterisk
    and PostgreSQL (the production shape: `embedded = false`). `phones`: the operators are the
    shipped ones on SIP phones (SIPp); otherwise simulated (Local channels). `web_port`: its
    own console port (two runs on one machine); `ha`: the body of an `[ha]` section."""
    import re

    text = (Path(__file__).resolve().parents[2] / "siaga.toml").read_text()
    ast, web = stack_config.asterisk, stack_config.web
    log_dir = asterisk.outside(asterisk.layout.log_dir)
    swaps = {
        r"embedded = true": "embedded = false",
        r'ari_url = "[^"]*"': f'ari_url = "{ast.ari_url}"',
        r"ami_port = \d+": f"ami_port = {ast.ami_port}",
        r"sip_port = \d+": f"sip_port = {ast.sip_port}",
        r'log_dir = "[^"]*"': f'log_dir = "{log_dir}"',
        r'recordings_dir = "[^"]*"': f'recordings_dir = "{asterisk.recordings_dir}"',
        r'\nurl = "[^"]*"': f'\nurl = "{stack_config.database.url}"',
        r'(\[web\]\nhost = "[^"]*"\n)port = \d+': rf"\g<1>port = {web_port or web.port}",
        r'(\[agi\]\nhost = "[^"]*"\n)port = \d+': rf"\g<1>port = {stack_config.agi.port}",
        r"wrap_up_seconds = \d+": "wrap_up_seconds = 1",
    }
    if not phones:
        swaps[r'(sip_password = "[^"]*")'] = r'\1\ndial = "Local/operator@siaga-test"'
    for pattern, replacement in swaps.items():
        text, count = re.subn(pattern, replacement, text)
        assert count, pattern
    if ha:
        text += f"\n[ha]\n{ha}\n"
    path.write_text(text)


class SiagaRun:
    """`siaga run` in a process of its own, as a regency runs it: started, killed, stopped."""

    def __init__(self, config: Path, state: Path, web_port: int) -> None:
        self.config = config
        self.env = {**os.environ, "SIAGA_STATE_DIR": str(state)}
        self.health = f"http://127.0.0.1:{web_port}/healthz"
        self.url = f"http://127.0.0.1:{web_port}"
        self.log = state.with_name(f"{config.stem}.log")  # what it printed, to read on failure
        self.process: asyncio.subprocess.Process | None = None
        self.ha = False

    async def status(self) -> str:
        """What /healthz says ("ok", "standby"...), "" while nothing answers."""
        try:
            async with aiohttp.ClientSession() as http, http.get(self.health) as response:
                return str((await response.json())["status"])
        except aiohttp.ClientError:
            return ""

    async def start(self, *, until: str = "ok") -> None:
        """Start it and wait until /healthz says `until` ("standby" for an app waiting for
        the lease of [ha])."""
        import sys

        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "stack.cli",
                "--config",
                str(self.config),
                "run",
                env=self.env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

        wanted = {"ok", "degraded"} if until == "ok" else {until}  # "ok": serving (HTTP 200)

        async def reached() -> bool:
            return await self.status() in wanted

        await wait_for(reached, timeout=30, what=f"`siaga run` to say {until!r}")

    async def kill(self) -> None:
        """SIGKILL: nothing is flushed, nothing is hung up."""
        import signal

        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.process = None

    async def stop(self) -> int:
        """SIGTERM twice: drain nothing, stop now."""
        import signal

        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 15)
        self.process = None
        return code


@pytest.fixture
async def siaga_run(
    asterisk: AsteriskInstance, stack_config: Config, tmp_path: Path
) -> AsyncIterator[Callable[..., SiagaRun]]:
    runs: list[SiagaRun] = []

    def make(*, phones: bool = False, ha: str = "") -> SiagaRun:
        """`ha`: the body of an [ha] section; such a run has its own state folder (its own
        crash journal) and, from the second on, its own console port (one machine)."""
        config = tmp_path / f"siaga-{len(runs)}.toml"
        web_port = stack_config.web.port
        state = tmp_path / "state"
        if ha:
            state = tmp_path / f"state-{len(runs)}"
            if any(run.ha for run in runs):
                web_port = free_port(socket.SOCK_STREAM)
        run_config(config, stack_config, asterisk, phones=phones, web_port=web_port, ha=ha)
        run = SiagaRun(config, state, web_port)
        run.ha = bool(ha)
        runs.append(run)
        return run

    yield make
    for run in runs:
        if run.process is not None:
            await run.kill()
    await _hang_up_everything(asterisk)
