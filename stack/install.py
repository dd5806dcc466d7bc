"""`siaga install` and `siaga uninstall`: Siaga 112 as a service of a Debian 12 machine.

Install puts the code in a virtual environment of its own (/opt/siaga112, built from the
checkout), the configuration in /etc/siaga112 (siaga.toml for production, and the secrets
file only root reads), the records in the system's PostgreSQL (a role and database of their
own, SCRAM password, no superuser), the Asterisk root and the recordings in /var/cache/siaga112,
the journal in /var/lib/siaga112, and two systemd units (deploy/systemd/): the bundled Asterisk
and the app. Every step can run again: what is already there and right is kept.

`--root DIR` installs the same tree under DIR, with every path in the files written pointing
inside DIR, so that the tests can install and run it in a folder of their own.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import structlog

from db.command import CommandError
from db.migrate import migrate
from pbx.provision import ensure_asterisk_root, render_prompts
from siaga.config import load_config, read_secrets_file, redacted_url, refuse_weak_secrets
from stack.certificate import CERT_NAME, KEY_NAME, write_self_signed
from stack.secrets import write_secrets

log = structlog.get_logger(__name__)

CHECKOUT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = CHECKOUT / "siaga.toml"
DEPLOY = CHECKOUT / "deploy"
UNITS = ("siaga112-asterisk.service", "siaga112.service")
LOGROTATE = "siaga112"
# Debian's own cluster: `postgresql` listens on 5432 and lets the `postgres` user in by peer.
DEFAULT_DATABASE_URL = "postgresql://siaga112@127.0.0.1:5432/siaga112"
TLS_FOLDER = "tls"  # beside siaga.toml: the console's certificate and key
POSTGRES_SOCKET_DIR = "/var/run/postgresql"
_DATABASE_PASSWORD_BYTES = 24
# The absolute paths the shipped unit and logrotate files name, in the order they are rewritten.
_SHIPPED_PATHS = ("/opt/siaga112", "/etc/siaga112", "/var/lib/siaga112", "/var/cache/siaga112")


@dataclass(frozen=True)
class Layout:
    """Where an installation puts things, under `root` ("/" on a real machine)."""

    root: Path
    # An environment that already has Siaga 112 (tests, a site's own packaging): used as is
    # instead of building `opt`.
    python_env: Path | None = None

    def under(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def opt(self) -> Path:
        return self.under("/opt/siaga112")

    @property
    def env(self) -> Path:
        return self.python_env or self.opt

    @property
    def etc(self) -> Path:
        return self.under("/etc/siaga112")

    @property
    def config(self) -> Path:
        return self.etc / "siaga.toml"

    @property
    def secrets(self) -> Path:
        return self.etc / "secrets.toml"

    @property
    def state(self) -> Path:
        return self.under("/var/lib/siaga112")

    @property
    def cache(self) -> Path:
        return self.under("/var/cache/siaga112")

    @property
    def units_dir(self) -> Path:
        return self.under("/etc/systemd/system")

    @property
    def logrotate(self) -> Path:
        return self.under("/etc/logrotate.d") / LOGROTATE

    def rewrite(self, text: str) -> str:
        """A shipped unit or logrotate file, with its paths pointing into this layout."""
        replacements = {
            "/opt/siaga112": str(self.env),
            "/etc/siaga112": str(self.etc),
            "/var/lib/siaga112": str(self.state),
            "/var/cache/siaga112": str(self.cache),
        }
        pattern = re.compile("|".join(re.escape(p) for p in _SHIPPED_PATHS))
        return pattern.sub(lambda m: replacements[m.group(0)], text)


def production_config(shipped: str, database_url: str) -> str:
    """The shipped siaga.toml made a production one: not development, the secrets in
    secrets.toml beside it, the records in the system's PostgreSQL."""
    swaps = {
        r'# secrets_file = "[^"]*"[^\n]*': 'secrets_file = "secrets.toml"   # beside this file',
        r'name = "Siaga 112 \(development\)"': 'name = "Siaga 112"',
        r"development = true[^\n]*": "development = false",
        r"(\[database\]\n)embedded = true[^\n]*": r"\1embedded = false",
        r'(\[database\]\n[^\[]*?)url = "[^"]*"[^\n]*': rf'\g<1>url = "{database_url}"',
        # The console over HTTPS (production refuses plain HTTP) with the certificate
        # `siaga install` makes; a centre's own certificate goes in its place.
        r'# tls_cert = "[^"]*"[^\n]*': f'tls_cert = "{TLS_FOLDER}/{CERT_NAME}"',
        r'# tls_key = "[^"]*"[^\n]*': f'tls_key = "{TLS_FOLDER}/{KEY_NAME}"',
    }
    text = shipped
    for pattern, replacement in swaps.items():
        text, count = re.subn(pattern, replacement, text)
        if count != 1:
            raise CommandError(f"{SHIPPED_CONFIG}: cannot make it a production one ({pattern})")
    header = (
        "# Written by `siaga install` from the shipped siaga.toml, for production; edit freely,\n"
        "# `siaga install` keeps this file. Secrets: secrets.toml (root only).\n"
    )
    return header + text


def install_files(layout: Layout, database_url: str = DEFAULT_DATABASE_URL) -> list[str]:
    """The configuration, the secrets file, the units and the logrotate file; return what
    was done, a line each. An existing siaga.toml is the administrator's and is kept."""
    done = []
    layout.etc.mkdir(parents=True, exist_ok=True)
    layout.etc.chmod(0o755)
    if layout.config.exists():
        done.append(f"kept {layout.config}")
    else:
        text = production_config(SHIPPED_CONFIG.read_text(encoding="utf-8"), database_url)
        layout.config.write_text(text, encoding="utf-8")
        layout.config.chmod(0o644)
        done.append(f"wrote {layout.config}")
    add_database_password(layout.secrets)
    done.append(write_secrets(layout.config))
    config = load_config(layout.config, with_secrets_file=False)
    hosts = list(dict.fromkeys([config.web.host, config.asterisk.sip_host, "localhost"]))
    pair, made = write_self_signed(layout.etc / TLS_FOLDER, hosts)
    done.append(f"{'made' if made else 'kept'} the console's certificate {pair.cert}")
    for folder in (layout.state, layout.cache):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o750)
    layout.units_dir.mkdir(parents=True, exist_ok=True)
    for unit in UNITS:
        target = layout.units_dir / unit
        target.write_text(layout.rewrite((DEPLOY / "systemd" / unit).read_text()))
        target.chmod(0o644)
        done.append(f"wrote {target}")
    layout.logrotate.parent.mkdir(parents=True, exist_ok=True)
    layout.logrotate.write_text(
        layout.rewrite((DEPLOY / "systemd" / "siaga112.logrotate").read_text())
    )
    layout.logrotate.chmod(0o644)
    done.append(f"wrote {layout.logrotate}")
    return done


def add_database_password(path: Path) -> None:
    """Put a generated password for the app's database role into the secrets file, unless
    one is there (`siaga provision --secrets` keeps it from then on)."""
    old = read_secrets_file(path) if path.exists() else {}
    database = old.get("database")
    if isinstance(database, dict) and database.get("password"):
        return
    if database is not None:
        raise CommandError(f"{path}: [database] without a password: add one, or remove the table")
    password = secrets.token_urlsafe(_DATABASE_PASSWORD_BYTES)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    text += ("\n" if text else "") + f'[database]\npassword = "{password}"\n'
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    path.chmod(0o600)


def install_code(layout: Layout) -> str:
    """A virtual environment of its own in /opt/siaga112, with the checkout installed in it
    (not linked: the service runs what was installed, whatever happens to the checkout)."""
    if layout.python_env is not None:
        if not (layout.python_env / "bin" / "siaga").exists():
            raise CommandError(f"{layout.python_env}: no bin/siaga in this environment")
        return f"using {layout.python_env}"
    python = shutil.which("python3") or sys.executable
    _run([python, "-m", "venv", str(layout.opt)])
    pip = [str(layout.opt / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, str(CHECKOUT)])
    # The same version number: pip would keep the old code without being told.
    _run([*pip, "--no-deps", "--force-reinstall", str(CHECKOUT)])
    return f"installed {CHECKOUT} into {layout.opt}"


def provision(layout: Layout) -> str:
    """The Asterisk root and the voice prompts, in the installation's cache folder."""
    root = ensure_asterisk_root(layout.cache)
    prompts = render_prompts(layout.cache)
    return f"Asterisk root {root}, prompts {prompts}"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def database_sql(role: str, password: str, database: str) -> str:
    """psql input making the app's role (SCRAM password, no superuser) and its database."""
    r, p, d = _literal(role), _literal(password), _literal(database)
    return "\n".join(
        [
            "\\set ON_ERROR_STOP on",
            "SET password_encryption = 'scram-sha-256';",
            f"SELECT format('CREATE ROLE %I', {r})"
            f" WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {r}) \\gexec",
            "SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
            f" NOREPLICATION PASSWORD %L', {r}, {p}) \\gexec",
            f"SELECT format('CREATE DATABASE %I OWNER %I', {d}, {r})"
            f" WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {d}) \\gexec",
            "",
        ]
    )


def setup_database(url: str) -> str:
    """The role and database `url` names, in the local PostgreSQL cluster listening on its
    port, made by the `postgres` user over the local socket; then the migrations."""
    parts = urlsplit(url)
    role, password = unquote(parts.username or ""), unquote(parts.password or "")
    database = parts.path.lstrip("/")
    if not role or not password or not database:
        raise CommandError(f"{redacted_url(url)}: needs a user, a password and a database")
    port = str(parts.port or 5432)
    command = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-h", POSTGRES_SOCKET_DIR]
    command += ["-p", port, "-d", "postgres"]
    # The password goes in on stdin: never on a command line that `ps` shows.
    try:
        _run(command, stdin=database_sql(role, password, database))
    except CommandError as exc:
        raise CommandError(f"{exc}\nIs the system PostgreSQL running on port {port}?") from None
    applied = asyncio.run(migrate(url))
    return f"database {database} (role {role}, port {port}): {len(applied)} migrations applied"


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def enable_units(layout: Layout) -> str:
    if layout.root != Path("/"):
        return f"units written under {layout.root}: not enabled (not this machine's systemd)"
    if not systemd_running():
        return (
            "systemd is not running here: units not started; start them with "
            "`systemctl enable --now siaga112` where it runs"
        )
    _run(["systemctl", "daemon-reload"])
    _run(["systemctl", "enable", "--now", *UNITS])
    return (
        f"enabled and started {', '.join(UNITS)} (already running: "
        "`systemctl restart siaga112` runs the code just installed)"
    )


def install(layout: Layout, database_url: str = DEFAULT_DATABASE_URL) -> list[str]:
    _need_root(layout, "siaga install needs root (sudo make install)")
    done = [install_code(layout)]
    done += install_files(layout, database_url)
    config = load_config(layout.config)
    refuse_weak_secrets(config)
    done.append(provision(layout))
    if config.database.embedded:
        done.append("database: embedded (as siaga.toml says), nothing to set up")
    else:
        done.append(setup_database(config.database.url))
    done.append(enable_units(layout))
    return done


def uninstall(layout: Layout) -> list[str]:
    """Remove the units, the logrotate file and the code; keep the configuration, the
    database, the journal and the recordings, and say so."""
    _need_root(layout, "siaga uninstall needs root (sudo make uninstall)")
    done = []
    if layout.root == Path("/") and systemd_running():
        subprocess.run(["systemctl", "disable", "--now", *UNITS], check=False)
    for path in (*(layout.units_dir / unit for unit in UNITS), layout.logrotate):
        if path.exists():
            path.unlink()
            done.append(f"removed {path}")
    if layout.root == Path("/") and systemd_running():
        _run(["systemctl", "daemon-reload"])
    if layout.python_env is None and layout.opt.exists():
        shutil.rmtree(layout.opt)
        done.append(f"removed {layout.opt}")
    done.append(
        f"kept: the configuration and secrets ({layout.etc}), the journal ({layout.state}), "
        f"the Asterisk root and the recordings ({layout.cache}), and the database"
    )
    return done


def _need_root(layout: Layout, message: str) -> None:
    # Under a --root of one's own, only what needs root itself (chroot, runuser) fails.
    if layout.root == Path("/") and os.geteuid() != 0:
        raise CommandError(message)


def _run(command: list[str], stdin: str | None = None) -> None:
    log.info("install.run", command=command[:6])
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CommandError(
            f"{' '.join(command[:6])} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )
