"""The records' high-availability testbed: a PostgreSQL primary and a streaming-replication
standby, failed over by pg_auto_failover (Debian's `postgresql-15-auto-failover`).

pg_auto_failover is three processes of `pg_autoctl`: a monitor (a small PostgreSQL of its own
that holds each node's state and decides failovers) and one keeper beside each PostgreSQL node.
The keeper runs its PostgreSQL, reports to the monitor every second and carries out the state
the monitor assigns: the first node becomes the primary, the second is made from it with
`pg_basebackup` and streams from it (synchronously by default); when the primary stops
answering, the monitor promotes the standby, and a killed primary started again is rewound
(`pg_rewind`) and rejoins as the standby on its own. docs/ha.md says why this tool.

Everything runs on 127.0.0.1 on free ports under one folder, as the `postgres` OS user when
this process is root (PostgreSQL and pg_autoctl refuse root). Given `hosts` (testbed/hosts.py),
the monitor and each node run on a host of their own instead, listening on its address. The
monitor's failover timings are shortened (`FAST_FAILOVER`) so a test sees a failover in
seconds rather than half a minute.

Like PgCluster, the API is synchronous; from async code call it through `asyncio.to_thread`.
Connections inside the testbed are trusted on 127.0.0.1 (pg_autoctl's `--auth trust`), which
keeps the testbed short; the app's role still logs in with its password, and docs/ha.md gives
the scram set-up for real servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import structlog

from db.events import call_arrived
from db.writer import RecordWriter
from testbed.cluster import DATABASE, ROLE, SERVER_USER, ClusterError, find_bindir, free_port
from testbed.hosts import Host

log = structlog.get_logger(__name__)

HOST = "127.0.0.1"
MONITOR_DATABASE = "pg_auto_failover"

# The monitor's defaults wait about 30 s before a failover (a 20 s unhealthy timeout and a 30 s
# demote timeout, with 5 s health checks); a test wants it in a few seconds.
FAST_FAILOVER: Mapping[str, str] = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "2000",
    "pgautofailover.primary_demote_timeout": "2000",
}

# pg_autoctl sizes shared_buffers from the machine's memory (gigabytes): too much for a test.
_SMALL: Mapping[str, str] = {"shared_buffers": "64MB", "max_connections": "50"}


class AutoFailoverError(ClusterError):
    """A pg_autoctl command failed, or a node did not reach the state awaited."""


@dataclass
class Keeper:
    """One `pg_autoctl run` (monitor or node): its data directory, port and process."""

    name: str
    data_dir: Path
    port: int
    log_path: Path
    host: str = HOST  # the address it listens on, and is reached at
    wrapper: tuple[str, ...] = ()  # run it through this: `ip netns exec <host>` or nothing
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class AutoFailoverCluster:
    """A monitor and two nodes (`node_a` first, so it starts as the primary) under `root`."""

    NODE_NAMES = ("node_a", "node_b")

    def __init__(
        self,
        root: Path,
        *,
        settings: Mapping[str, str] | None = None,
        monitor_settings: Mapping[str, str] = FAST_FAILOVER,
        hosts: Mapping[str, Host] | None = None,
        trusted: str = "",
    ) -> None:
        """`hosts`: the host of the monitor ("monitor") and of each node, when they are not all
        on 127.0.0.1 here; `trusted`: a network (e.g. theirs) whose connections are trusted,
        as 127.0.0.1's are (the test process comes from there)."""
        self.root = Path(root).absolute()
        self.settings = {**_SMALL, **(settings or {})}
        self.monitor_settings = dict(monitor_settings)
        hosts = hosts or {}

        def keeper(name: str) -> Keeper:
            host = hosts.get(name)
            return Keeper(
                name,
                self.root / name,
                free_port(),
                self.root / f"{name}.log",
                host=HOST if host is None else host.address,
                wrapper=() if host is None else host.wrapper,
            )

        self.monitor = keeper("monitor")
        self.nodes = {name: keeper(name) for name in self.NODE_NAMES}
        self.trusted = trusted
        self.password = secrets.token_urlsafe(24)
        self._bindir = find_bindir()

    # -- what the app sees -------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """The app's DSN naming both nodes: libpq (and asyncpg) connect to whichever of them
        takes writes."""
        hosts = ",".join(f"{node.host}:{node.port}" for node in self.nodes.values())
        return (
            f"postgresql://{ROLE}:{quote(self.password, safe='')}@{hosts}/{DATABASE}"
            "?target_session_attrs=read-write"
        )

    def node_dsn(self, name: str) -> str:
        """The app's DSN for one node only (to count what that node holds)."""
        node = self.nodes[name]
        return (
            f"postgresql://{ROLE}:{quote(self.password, safe='')}@{node.host}:{node.port}"
            f"/{DATABASE}"
        )

    @property
    def monitor_uri(self) -> str:
        return (
            f"postgresql://autoctl_node@{self.monitor.host}:{self.monitor.port}"
            f"/{MONITOR_DATABASE}"
            "?sslmode=disable"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 90) -> None:
        """Make and start the monitor and both nodes; return once node_a is the primary and
        node_b its streaming standby, and the app's role and database exist."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._give(self.root)
        monitor = self.monitor
        self._autoctl(
            monitor, "create", "monitor", "--pgdata", str(monitor.data_dir),
            "--pgport", str(monitor.port), "--hostname", monitor.host, "--listen", monitor.host,
            "--auth", "trust", "--no-ssl",
        )  # fmt: skip
        self._write_auto_conf(self.monitor, {**_SMALL, **self.monitor_settings})
        self._trust(self.monitor)
        self.run(self.monitor)
        self._wait_sql(self.monitor, "SELECT 1", "1", timeout)
        first, second = self.nodes.values()
        self._create_node(first)
        self._write_auto_conf(first, self.settings)
        self._trust(first)  # the standby is copied from it, pg_hba.conf with the rest
        self.run(first)
        self.wait_state(first.name, "single", timeout)
        self._wait_sql(first, "SELECT pg_is_in_recovery()", "f", timeout)
        self._psql(
            first,
            f"CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
            f" PASSWORD '{self.password}'",
        )
        self._psql(first, f"ALTER DATABASE {DATABASE} OWNER TO {ROLE}")
        self._psql(first, f"ALTER SCHEMA public OWNER TO {ROLE}", database=DATABASE)
        self._create_node(second)  # pg_basebackup from the primary
        self.run(second)
        self.wait_state(first.name, "primary", timeout)
        self.wait_state(second.name, "secondary", timeout)

    def run(self, keeper: Keeper) -> None:
        """Start `pg_autoctl run` for a monitor or node already created (again, after a kill):
        in its own process group, so `kill` takes its PostgreSQL down with it."""
        if keeper.running:
            return
        log_file = keeper.log_path.open("ab")
        keeper.process = subprocess.Popen(
            self._argv(keeper, "run", "--pgdata", str(keeper.data_dir)),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd="/",
            env=self._env(),
            start_new_session=True,
        )
        log_file.close()
        log.info("pg_autoctl_started", keeper=keeper.name, port=keeper.port)

    def kill(self, name: str) -> None:
        """SIGKILL a node whole: its keeper and its PostgreSQL (the machine dying)."""
        keeper = self.nodes[name]
        pids = self._postgres_pids(keeper)
        if keeper.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(keeper.process.pid, signal.SIGKILL)
            keeper.process.wait()
        for pid in pids:  # pg_autoctl may start PostgreSQL in a session of its own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.info("pg_node_killed", node=name)

    def stop(self) -> None:
        """Stop everything (nodes first, then the monitor); safe to call more than once."""
        for keeper in [*self.nodes.values(), self.monitor]:
            if keeper.process is None:
                continue
            if keeper.running:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(keeper.process.pid, signal.SIGTERM)
                try:
                    keeper.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self._kill_group(keeper)
            # A node killed before may have left its PostgreSQL behind.
            for pid in self._postgres_pids(keeper):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            keeper.process = None

    def create_database(self, name: str) -> str:
        """Create another database owned by the app's role on the primary (benchmarks); its DSN
        naming both nodes. `name` must come from code, never from input."""
        primary = next(n for n in self.nodes if self.writable(n))
        self._psql(self.nodes[primary], f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return self.dsn.replace(f"/{DATABASE}?", f"/{name}?")

    def set_synchronous(self, synchronous: bool, timeout: float = 30) -> None:
        """Whether the primary waits at commit for node_b (pg_auto_failover's replication
        quorum of the standby; on by default)."""
        standby = self.nodes["node_b"]
        self._autoctl(
            standby, "set", "node", "replication-quorum", "true" if synchronous else "false",
            "--pgdata", str(standby.data_dir),
        )  # fmt: skip
        primary = self.nodes["node_a"]
        deadline = time.monotonic() + timeout
        while (self._psql(primary, "SHOW synchronous_standby_names").strip() != "") != synchronous:
            if time.monotonic() > deadline:
                raise AutoFailoverError(f"synchronous replication not {synchronous} in {timeout} s")
            time.sleep(0.2)

    # -- state -------------------------------------------------------------------------------

    def states(self) -> dict[str, tuple[str, str]]:
        """Each node's (reported state, goal state) as the monitor holds them."""
        out = self._psql(
            self.monitor,
            "SELECT nodename, reportedstate, goalstate FROM pgautofailover.node",
            database=MONITOR_DATABASE,
        )
        result: dict[str, tuple[str, str]] = {}
        for line in out.splitlines():
            name, reported, goal = line.split("|")
            result[name] = (reported, goal)
        return result

    def wait_state(self, name: str, state: str, timeout: float) -> float:
        """Wait until the monitor sees `name` in `state` (reported and goal); the seconds it
        took."""
        started = time.monotonic()
        last: tuple[str, str] | None = None
        while time.monotonic() - started < timeout:
            with contextlib.suppress(AutoFailoverError):
                last = self.states().get(name)
                if last == (state, state):
                    return time.monotonic() - started
            time.sleep(0.2)
        raise AutoFailoverError(
            f"{name} not {state} after {timeout} s (last: {last})\n"
            f"--- {self.nodes[name].log_path if name in self.nodes else ''} (tail) ---\n"
            f"{self.log_tail(name)}"
        )

    def writable(self, name: str) -> bool:
        """Whether `name`'s PostgreSQL answers and takes writes (is not in recovery)."""
        try:
            out = self._psql(self.nodes[name], "SELECT pg_is_in_recovery()", timeout=2)
        except (AutoFailoverError, subprocess.TimeoutExpired):
            return False
        return out.strip() == "f"

    def log_tail(self, name: str, lines: int = 30) -> str:
        keeper = self.monitor if name == "monitor" else self.nodes[name]
        try:
            text = keeper.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    # -- helpers -----------------------------------------------------------------------------

    def _create_node(self, keeper: Keeper) -> None:
        self._autoctl(
            keeper, "create", "postgres", "--pgdata", str(keeper.data_dir),
            "--pgport", str(keeper.port), "--hostname", keeper.host, "--listen", keeper.host,
            "--name", keeper.name, "--dbname", DATABASE, "--monitor", self.monitor_uri,
            "--auth", "trust", "--no-ssl", "--pgctl", str(self._bindir / "pg_ctl"),
        )  # fmt: skip

    def _write_auto_conf(self, keeper: Keeper, settings: Mapping[str, str]) -> None:
        # postgresql.auto.conf is read last, so these win over pg_autoctl's own settings.
        path = keeper.data_dir / "postgresql.auto.conf"
        text = "".join(f"{key} = '{value}'\n" for key, value in settings.items())
        path.write_text("# Written by testbed/autofailover.py.\n" + text, encoding="utf-8")
        self._give(path)

    def _trust(self, keeper: Keeper) -> None:
        if not self.trusted:
            return
        with (keeper.data_dir / "pg_hba.conf").open("a", encoding="utf-8") as hba:
            hba.write(
                "# Written by testbed/autofailover.py.\n"
                f"host all all {self.trusted} trust\n"
                f"host replication all {self.trusted} trust\n"
            )

    def _wait_sql(self, keeper: Keeper, sql: str, expected: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(AutoFailoverError, subprocess.TimeoutExpired):
                if self._psql(keeper, sql, database="postgres", timeout=2).strip() == expected:
                    return
            if time.monotonic() > deadline:
                raise AutoFailoverError(
                    f"{keeper.name} does not answer:\n{self.log_tail(keeper.name)}"
                )
            time.sleep(0.2)

    def _psql(
        self, keeper: Keeper, sql: str, *, database: str = "postgres", timeout: float = 10
    ) -> str:
        argv = [
            str(self._bindir / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1",
            "-h", keeper.host, "-p", str(keeper.port), "-U", SERVER_USER, "-d", database, "-c", sql,
        ]  # fmt: skip
        result = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=timeout, cwd="/",
            env={**os.environ, "PGCONNECT_TIMEOUT": "2"},
        )  # fmt: skip
        if result.returncode != 0:
            raise AutoFailoverError(f"psql on {keeper.name} failed: {result.stderr.strip()}")
        return result.stdout

    def _autoctl(self, keeper: Keeper, *args: str) -> None:
        result = subprocess.run(
            self._argv(keeper, *args), capture_output=True, text=True, errors="replace",
            check=False, cwd="/", env=self._env(), stdin=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise AutoFailoverError(
                f"pg_autoctl {' '.join(args[:2])} failed (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )

    def _argv(self, keeper: Keeper, *args: str) -> list[str]:
        argv = ["pg_autoctl", *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        return [*keeper.wrapper, *argv]

    def _env(self) -> dict[str, str]:
        # pg_autoctl keeps its configuration and state under XDG folders: ours, not $HOME's.
        return {
            **os.environ,
            "HOME": str(self.root),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "share"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "PATH": f"{self._bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }

    def _postgres_pids(self, keeper: Keeper) -> Sequence[int]:
        pid_file = keeper.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text(encoding="utf-8").splitlines()[0])
        except (OSError, ValueError, IndexError):
            return []
        try:
            # A stale pid file may name a process that is not ours any more.
            command = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
        except OSError:
            return []
        return [pid] if command in ("postgres", "postmaster") else []

    def _kill_group(self, keeper: Keeper) -> None:
        if keeper.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(keeper.process.pid, signal.SIGKILL)
            keeper.process.wait()

    def _give(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)


async def steady_events(
    writer: RecordWriter, per_second: float, stop: asyncio.Event, written: list[str]
) -> None:
    """A steady stream of `call_arrived` events into `writer` until `stop`, each event id
    appended to `written` once the writer took it: what a failover must neither lose nor
    double."""
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    n = 0
    while not stop.is_set():
        event = call_arrived(f"c{n}", "112", at=start + timedelta(milliseconds=n))
        writer.write(event)
        written.append(str(event.event_id))
        n += 1
        await asyncio.sleep(1 / per_second)
