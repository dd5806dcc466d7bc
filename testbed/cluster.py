"""A private PostgreSQL cluster for development (`make run`) and tests.

The API is synchronous (it drives `initdb`, `postgres --single` and `pg_ctl` as subprocesses);
from async code call it through `asyncio.to_thread`.

No connection is trusted, not even from this machine: over TCP (127.0.0.1 only) every role
needs its password (scram-sha-256), and on the unix socket only the server's own OS user may
connect, as the `postgres` superuser (peer). The app's role `siaga` owns its database and
nothing more: no superuser, no CREATEDB, no CREATEROLE. Both passwords are generated when the
cluster is made and kept beside the data directory in `<data_dir>.passwords.json`, mode 0600 and
owned by whoever runs this (root for `make run`), so the stack builds its DSN with no one typing a
password. A cluster made before this (trust, CREATEDB) is brought to the same rules at its next
start.

PostgreSQL refuses to run as root, so when this process is root every server command runs as the
`postgres` OS user (through `runuser`); the data directory is then owned by that user.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import asyncpg
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
        # Outside the data directory, which belongs to the server's OS user.
        self.passwords_path = self.data_dir.with_name(self.data_dir.name + ".passwords.json")
        self._bindir: Path | None = None

    @property
    def dsn(self) -> str:
        """The app's DSN (role `siaga`, database `siaga`), password included."""
        return self.dsn_for(DATABASE)

    def dsn_for(self, database: str) -> str:
        return self._dsn(ROLE, database)

    def admin_dsn_for(self, database: str = "postgres") -> str:
        """The `postgres` superuser's DSN over TCP: for creating databases (tests) only."""
        return self._dsn(SERVER_USER, database)

    @property
    def password(self) -> str:
        """The app role's password (generated when the cluster was made)."""
        return self._passwords()[ROLE]

    def _dsn(self, role: str, database: str) -> str:
        password = quote(self._passwords()[role], safe="")
        return f"postgresql://{role}:{password}@{self.host}:{self.port}/{database}"

    def _passwords(self) -> dict[str, str]:
        try:
            data = json.loads(self.passwords_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ClusterError(
                f"{self.passwords_path} is missing: start the cluster once to make it"
            ) from None
        return {ROLE: str(data[ROLE]), SERVER_USER: str(data[SERVER_USER])}

    def _new_passwords(self) -> dict[str, str]:
        """Generate both passwords into the passwords file (mode 0600 from its creation)."""
        passwords = {ROLE: secrets.token_urlsafe(24), SERVER_USER: secrets.token_urlsafe(24)}
        self.passwords_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.passwords_path.with_name(self.passwords_path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(passwords, out)
        tmp.replace(self.passwords_path)
        return passwords

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
        passwords = self._new_passwords()
        self._single_user(
            building,
            f"CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
            f" PASSWORD {_sql_literal(passwords[ROLE])};\n"
            f"CREATE DATABASE {DATABASE} OWNER {ROLE};\n"
            f"ALTER ROLE {SERVER_USER} PASSWORD {_sql_literal(passwords[SERVER_USER])};\n",
            what="creating role/database",
        )
        if self.data_dir.exists():
            self.data_dir.rmdir()
        building.rename(self.data_dir)
        log.info("pg_cluster_initialised", data_dir=str(self.data_dir))

    def start(self) -> None:
        """Start the server (initialising first if needed); a running server is left alone."""
        self.init()
        if not self.passwords_path.exists():
            self._secure_old_cluster()
        if self.is_running():
            return
        self._prepare_run_dir()
        self._write_settings()
        self._write_hba()
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
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]
        if self.settings.get("fsync") == "off":
            # A throwaway cluster need not survive a power cut; this saves seconds per test run.
            args.append("--no-sync")
        return args

    def _secure_old_cluster(self) -> None:
        """A cluster made when every local connection was trusted: give both roles passwords
        and take CREATEDB from the app's role (pg_hba.conf is rewritten at each start)."""
        self.stop()
        passwords = self._new_passwords()
        self._single_user(
            self.data_dir,
            f"ALTER ROLE {ROLE} NOSUPERUSER NOCREATEDB NOCREATEROLE"
            f" PASSWORD {_sql_literal(passwords[ROLE])};\n"
            f"ALTER ROLE {SERVER_USER} PASSWORD {_sql_literal(passwords[SERVER_USER])};\n",
            what="setting passwords",
        )
        log.info("pg_cluster_secured", data_dir=str(self.data_dir))

    def _single_user(self, target: Path, statements: str, *, what: str) -> None:
        # Single-user mode needs no running server or socket: nobody can connect meanwhile.
        result = self._run(
            [str(self.bindir / "postgres"), "--single", "-D", str(target), "template1"],
            what="postgres --single",
            stdin=statements,
        )
        # Single-user mode exits 0 even when a statement fails, so read its report.
        if "ERROR:" in result.stderr or "FATAL:" in result.stderr:
            raise ClusterError(f"{what} failed:\n{result.stderr}")

    def _write_hba(self) -> None:
        # Rewritten at each start, so a trust line added by hand or by an older version goes.
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# Written by testbed/cluster.py at each start: nothing is trusted.\n"
            f"local all {SERVER_USER} peer\n"
            f"host all all {self.host}/32 scram-sha-256\n",
            encoding="utf-8",
        )
        self._give_to_server_user(hba)

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
            "password_encryption": "scram-sha-256",
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


async def create_database(cluster: PgCluster, name: str, template: str = "template0") -> str:
    """Create a database owned by the app's role (the superuser creates it: the app's role may
    not) and return its DSN for the app's role. `name` and `template` must come from code, never
    from input: database names cannot be bound parameters."""
    conn = await asyncpg.connect(cluster.admin_dsn_for())
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER {ROLE}')
    finally:
        await conn.close()
    return cluster.dsn_for(name)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _conf_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
