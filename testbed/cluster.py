"""A private PostgreSQL cluster for development (`make run`) and tests.

The API is synchronous (it drives `initdb`, `postgres --single` and `pg_ctl` as subprocesses);
from async code call it through `asyncio.to_thread`.

Authentication is `trust`, on the unix socket and on 127.0.0.1 only: the server listens on the
loopback address alone, so only processes of this machine can connect. A production centre runs
its own PostgreSQL with passwords; this module is for private clusters.

PostgreSQL refuses to run as root, so when this process is root every server command runs as the
`postgres` OS user (through `runuser`); the data directory is then owned by that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import structlog

log = structlog.get_logger(__name__)

ROLE = "siaga"
DATABASE = "siaga"
SERVER_USER = "postgres"
# Unix socket paths are limited to ~107 bytes; longer run directories fall back to /tmp.
_MAX_SOCKET_DIR = 80

StopMode = Literal["smart", "fast", "immediate"]


class ClusterError(RuntimeError):
    """A PostgreSQL command failed; the message carries its output and the server log tail."""


def find_bindir() -> Path:
    """The folder holding initdb/pg_ctl/postgres: `pg_config --bindir`, else the highest
    /usr/lib/postgresql/*/bin."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
            if (Path(out) / "initdb").exists():
                return Path(out)
    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    if not candidates:
        raise ClusterError("PostgreSQL server binaries not found (install postgresql)")
    return max(candidates, key=lambda p: _version_key(p.parent.name))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free at the time of the call (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class PgCluster:
    """One PostgreSQL cluster in `data_dir`, serving 127.0.0.1:`port`.

    Beside the data directory it keeps a run directory `<data_dir>.run/` with the unix socket
    and the server log (`postgres.log`). `settings` are extra server settings written to the
    cluster's own config file at each start (tests pass e.g. {"fsync": "off"}).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        *,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.settings = dict(settings or {})
        self.run_dir = self.data_dir.with_name(self.data_dir.name + ".run")
        self.log_path = self.run_dir / "postgres.log"
        self._bindir: Path | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{ROLE}@{self.host}:{self.port}/{DATABASE}"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{ROLE}@{self.host}:{self.port}/{database}"

    @property
    def socket_dir(self) -> Path:
        if len(str(self.run_dir)) <= _MAX_SOCKET_DIR:
            return self.run_dir
        return Path("/tmp") / f"siaga-pg-{self.port}"

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    # -- lifecycle ---------------------------------------------------------------------------

    def init(self) -> None:
        """Create the cluster with role and database `siaga`, unless it already exists.

        It is built in a sibling folder and renamed into place, so a crash half-way leaves no
        half-made cluster behind to be mistaken for a good one.
        """
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise ClusterError(f"{self.data_dir} exists, is not empty and holds no cluster")
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        building = self.data_dir.with_name(self.data_dir.name + ".initdb")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir()
        self._give_to_server_user(building)
        self._run(self._initdb_args(building), what="initdb")
        # The server's own config file is included last, so our settings win.
        with (building / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\ninclude_if_exists = 'siaga.conf'\n")
        self._bootstrap_role(building)
        if self.data_dir.exists():
            self.data_dir.rmdir()
        building.rename(self.data_dir)
        log.info("pg_cluster_initialised", data_dir=str(self.data_dir))

    def start(self) -> None:
        """Start the server (initialising first if needed); a running server is left alone."""
        self.init()
        if self.is_running():
            return
        self._prepare_run_dir()
        self._write_settings()
        result = self._run(
            [
                str(self.bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
            ],
            what="pg_ctl start",
            check=False,
        )
        if result.returncode != 0 or not self.is_running():
            raise ClusterError(
                f"PostgreSQL did not start on {self.host}:{self.port} "
                f"(pg_ctl exit {result.returncode}): {result.stdout}{result.stderr}\n"
                f"--- {self.log_path} (tail) ---\n{self.log_tail()}"
            )
        log.info("pg_cluster_started", port=self.port, data_dir=str(self.data_dir))

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server; `immediate` is the crash-like stop (recovery at next start)."""
        if not self.is_running():
            return
        self._run(
            [str(self.bindir / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data_dir)],
            what="pg_ctl stop",
        )
        log.info("pg_cluster_stopped", port=self.port, mode=mode)

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        result = self._run(
            [str(self.bindir / "pg_ctl"), "status", "-D", str(self.data_dir)],
            what="pg_ctl status",
            check=False,
        )
        return result.returncode == 0

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    # -- helpers -----------------------------------------------------------------------------

    def _initdb_args(self, target: Path) -> list[str]:
        args = [
            str(self.bindir / "initdb"),
            "-D",
            str(target),
            "-U",
            SERVER_USER,
            "--auth-local=trust",
            "--auth-host=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]
        if self.settings.get("fsync") == "off":
            # A throwaway cluster need not survive a power cut; this saves seconds per test run.
            args.append("--no-sync")
        return args

    def _bootstrap_role(self, target: Path) -> None:
        # Single-user mode creates the role and database without a running server or socket.
        statements = (
            f"CREATE ROLE {ROLE} LOGIN CREATEDB;\nCREATE DATABASE {DATABASE} OWNER {ROLE};\n"
        )
        result = self._run(
            [str(self.bindir / "postgres"), "--single", "-D", str(target), "template1"],
            what="postgres --single",
            stdin=statements,
        )
        # Single-user mode exits 0 even when a statement fails, so read its report.
        if "ERROR:" in result.stderr or "FATAL:" in result.stderr:
            raise ClusterError(f"creating role/database failed:\n{result.stderr}")

    def _prepare_run_dir(self) -> None:
        for folder in {self.run_dir, self.socket_dir}:
            folder.mkdir(parents=True, exist_ok=True)
            self._give_to_server_user(folder)

    def _write_settings(self) -> None:
        settings = {
            "port": str(self.port),
            "listen_addresses": self.host,
            "unix_socket_directories": str(self.socket_dir),
            "logging_collector": "off",
            **self.settings,
        }
        text = "".join(f"{key} = {_conf_quote(value)}\n" for key, value in settings.items())
        conf = self.data_dir / "siaga.conf"
        conf.write_text("# Written by testbed/cluster.py at each start.\n" + text, encoding="utf-8")
        self._give_to_server_user(conf)

    def _give_to_server_user(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(
        self,
        argv: Sequence[str],
        *,
        what: str,
        check: bool = True,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        result = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise ClusterError(
                f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}\n"
                f"--- {self.log_path} (tail) ---\n{self.log_tail()}"
            )
        return result


def _conf_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
