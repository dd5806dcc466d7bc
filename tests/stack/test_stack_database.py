"""The embedded PostgreSQL of `make run`: nobody types a password, yet nobody connects without
one. `database.url` names none; the stack adds the one generated with the cluster."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from siaga.config import Config, load_config
from stack.cli import main
from stack.run import database_url, dev_postgres
from testbed.cluster import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Iterator[Config]:
    """The shipped config on a port of its own, its state in a folder of its own."""
    state = Path(tempfile.mkdtemp(prefix="siaga-state-"))
    os.chmod(state, 0o755)  # the server runs as `postgres` when we are root
    monkeypatch.setenv("SIAGA_STATE_DIR", str(state))
    monkeypatch.delenv("SIAGA_DATABASE_URL", raising=False)
    config = load_config(EXAMPLE)
    port = free_port()
    url = config.database.url.replace(":5433/", f":{port}/")
    config = dataclasses.replace(
        config, database=dataclasses.replace(config.database, url=url, port=port)
    )
    try:
        yield config
    finally:
        dev_postgres(config).stop("immediate")
        shutil.rmtree(state, ignore_errors=True)


async def test_the_stack_connects_with_the_generated_password_and_nobody_else_can(
    embedded: Config,
) -> None:
    assert embedded.database.url.startswith("postgresql://siaga@")  # no password in it
    cluster = dev_postgres(embedded)
    cluster.start()

    dsn = database_url(embedded)
    assert dsn == embedded.database.url.replace("siaga@", f"siaga:{cluster.password}@")
    passwords = cluster.passwords_path
    assert passwords.parent == Path(os.environ["SIAGA_STATE_DIR"])
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    assert passwords.stat().st_uid == os.geteuid()

    conn = await asyncpg.connect(dsn)
    try:
        superuser = await conn.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        assert superuser is False
    finally:
        await conn.close()
    for user in ("siaga", "postgres"):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(
                embedded.database.url.replace("siaga@", f"{user}@"), password="", timeout=5
            )


def test_postgres_start_does_not_print_the_password(
    embedded: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "siaga.toml"
    config_path.write_text(
        EXAMPLE.read_text().replace("5433", str(embedded.database.port)), encoding="utf-8"
    )
    assert main(["--config", str(config_path), "postgres", "start"]) == 0
    out = capsys.readouterr().out
    password = dev_postgres(embedded).password
    assert "PostgreSQL running: postgresql://siaga:***@127.0.0.1:" in out
    assert password not in out
