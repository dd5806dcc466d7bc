"""`siaga install` end to end where systemd is not PID 1: installed into a folder of the test's
own with Debian's PostgreSQL cluster 15/main as the system database, then the two units'
ExecStart lines run under the test's own supervisor (testbed/units.py), as systemd would run
them. A SIPp 112 caller reaches an operator on a SIPp phone and is recorded in the system
PostgreSQL, and no process of the units listens beyond loopback and the configured hosts; the
app, killed, is restarted as Restart=always says and says READY=1 again.

15/main is started if it is down and stopped again at the end; the test's role and database
have names of their own and are dropped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from siaga.config import Config, load_config
from stack.install import Layout
from testbed.sipp import Sipp, SippPhone, caller_scenario, free_port
from testbed.sockets import exposed, process_tree, sockets_of
from testbed.units import Supervised, parse_unit

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CLUSTER = ("15", "main")


def psql_as_postgres(port: int, sql: str) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        + ["-h", "/var/run/postgresql", "-p", str(port), "-d", "postgres"],
        input=sql,
        text=True,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def system_postgres() -> Iterator[int]:
    """Debian's cluster 15/main, as found or started; its port. Left as it was found."""
    line = subprocess.run(
        ["pg_lsclusters", "--no-header", *CLUSTER], capture_output=True, text=True, check=True
    ).stdout.split()
    port, was_down = int(line[2]), line[3] == "down"
    if was_down:
        subprocess.run(["pg_ctlcluster", *CLUSTER, "start"], check=True)
    try:
        yield port
    finally:
        if was_down:
            subprocess.run(["pg_ctlcluster", *CLUSTER, "stop", "-m", "fast"], check=True)


@pytest.fixture
def database_name(system_postgres: int) -> Iterator[str]:
    """A role and database of this test's own in 15/main (made by `siaga install`)."""
    name = f"siaga_install_{uuid.uuid4().hex[:8]}"
    yield name
    psql_as_postgres(
        system_postgres,
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);\nDROP ROLE IF EXISTS "{name}";\n',
    )


def linked_cache(provisioned: tuple[Path, Path], cache: Path) -> None:
    """The session's Asterisk root and prompts, hard-linked into the installation's cache (a
    copy in a second, without building a root): the install finds them ready."""
    root, prompts = provisioned
    target = cache / "asterisk-root"
    target.mkdir(parents=True)
    for entry in root.iterdir():
        if entry.name != "srv":  # other instances' folders
            subprocess.run(["cp", "-al", str(entry), str(target)], check=True)
    subprocess.run(["cp", "-al", str(prompts), str(cache / "prompts")], check=True)


def own_ports(config: Path) -> None:
    """Ports of this test's own, set in the installed siaga.toml as its administrator would."""
    rtp = 40000 + (os.getpid() % 100) * 100
    swaps = {
        r'ari_url = "http://127.0.0.1:\d+"': f'ari_url = "http://127.0.0.1:{free_port()}"',
        r"ami_port = \d+": f"ami_port = {free_port()}",
        r"sip_port = \d+": f"sip_port = {free_port()}",
        r"rtp_start = \d+": f"rtp_start = {rtp}",
        r"rtp_end = \d+": f"rtp_end = {rtp + 99}",
        r'(\[web\]\nhost = "[^"]*"\n)port = \d+': rf"\g<1>port = {free_port()}",
        r'(\[agi\]\nhost = "[^"]*"\n)port = \d+': rf"\g<1>port = {free_port()}",
    }
    text = config.read_text()
    for pattern, replacement in swaps.items():
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, pattern
    config.write_text(text)


@pytest.fixture
def installed(
    provisioned: tuple[Path, Path], system_postgres: int, database_name: str, tmp_path: Path
) -> Iterator[tuple[Layout, Config]]:
    # The session's interpreter and packages; this checkout's code (cwd, then PYTHONPATH).
    layout = Layout(tmp_path / "root", Path(sys.executable).parent.parent)
    linked_cache(provisioned, layout.cache)
    url = f"postgresql://{database_name}@127.0.0.1:{system_postgres}/{database_name}"
    command = [sys.executable, "-m", "stack.cli", "install", "--root", str(layout.root)]
    command += ["--python-env", str(layout.env), "--database-url", url]
    for _ in range(2):  # installing twice is fine
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
    assert "migrations applied" in result.stdout
    assert "not enabled" in result.stdout
    own_ports(layout.config)
    yield layout, load_config(layout.config)
    shutil.rmtree(layout.cache, ignore_errors=True)


async def test_installed_units_answer_a_112_call_into_the_system_postgres_and_restart(
    installed: tuple[Layout, Config], tmp_path: Path
) -> None:
    layout, config = installed
    conn = await asyncpg.connect(config.database.url)  # SCRAM, the app's own role
    assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    env = {"PYTHONPATH": str(REPO)}
    asterisk = Supervised(
        parse_unit(layout.units_dir / "siaga112-asterisk.service"), tmp_path / "ast.log", env
    )
    app = Supervised(parse_unit(layout.units_dir / "siaga112.service"), tmp_path / "app.log", env)
    assert app.unit.service["Restart"] == ["always"] and app.unit.watchdog_seconds == 30
    assert asterisk.unit.service["Restart"] == ["always"] and asterisk.unit.watchdog_seconds > 0
    operator = config.operators[0]
    sip_port = config.asterisk.sip_port
    phone = SippPhone(operator.sip_user, operator.sip_password, sip_port)
    try:
        await asterisk.start()
        await asterisk.wait_for("READY=1", timeout=60)
        await phone.start()
        await app.start()
        await app.wait_for("READY=1", timeout=60)
        await app.wait_for("WATCHDOG=1", timeout=10)

        first, number = await answered_call(conn, sip_port, operator.id)
        assert exposed_sockets([asterisk, app], config) == []
        await app.kill()
        await app.wait_for("READY=1", count=2, timeout=60)
        assert app.starts == 2
        await app.wait_for("WATCHDOG=1", count=2, timeout=10)
        await answered_call(conn, sip_port, operator.id)
    finally:
        await phone.stop()
        await app.stop()
        await asterisk.stop()
        await conn.close()
    assert asterisk.starts == 1
    assert "STOPPING=1" in asterisk.messages
    assert_journal_is_json_with_call_ids(tmp_path / "app.log", first, number)
    assert_journal_is_json_with_call_ids(tmp_path / "ast.log", "", "")


def exposed_sockets(units: list[Supervised], config: Config) -> list[str]:
    """The listening sockets of the units' processes (the app; `siaga asterisk run` and its
    Asterisk) beyond loopback and the configured hosts."""
    found = []
    for unit in units:
        assert unit.process is not None
        for pid in process_tree(unit.process.pid):
            listening = [s for s in sockets_of(pid) if s.listening]
            found += [f"{unit.unit.path.name} {s}" for s in exposed(listening, config)]
    return found


async def answered_call(
    conn: asyncpg.Connection, sip_port: int, operator_id: str
) -> tuple[str, str]:
    """A SIPp 112 caller presses 1 (medical) and is answered by the operator's phone; the
    call's row in the system PostgreSQL says so. Returns its call id and caller number."""
    number = f"08{uuid.uuid4().int % 10**10:010d}"
    caller = Sipp(
        caller_scenario(caller_id=number, digits="1", delay_ms=600, hold_ms=2000), sip_port
    )
    await caller.start()
    try:
        await caller.wait(timeout=60)
    finally:
        await caller.stop()
    for _ in range(200):
        row = await conn.fetchrow(
            "SELECT call_id, outcome, operator_id, ended_at FROM calls WHERE caller_number = $1",
            number,
        )
        if row is not None and row["ended_at"] is not None:
            break
        await asyncio.sleep(0.1)
    assert row is not None and row["ended_at"] is not None, f"no closed row for {number}"
    assert (row["outcome"], row["operator_id"]) == ("answered", operator_id)
    return str(row["call_id"]), number


def assert_journal_is_json_with_call_ids(log: Path, call_id: str, number: str) -> None:
    """What a unit's process wrote (its journal) is JSON lines only, and each line about the
    call (its id or its caller's number in it) carries its call_id."""
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    if not call_id:
        return
    about = [line for line in lines if call_id in json.dumps(line) or number in json.dumps(line)]
    assert len(about) >= 3, about
    without = [line for line in about if line.get("call_id") != call_id]
    assert without == [], without
