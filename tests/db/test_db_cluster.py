"""testbed.cluster: a private PostgreSQL cluster, idempotent, loud when it cannot start."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from testbed.cluster import ClusterError, PgCluster, free_port


async def test_lifecycle_is_idempotent_and_data_survives_a_crash_stop(
    own_pg_cluster: PgCluster,
) -> None:
    cluster = own_pg_cluster
    assert cluster.is_running()
    cluster.init()  # reuses what exists
    cluster.start()
    assert cluster.dsn == f"postgresql://siaga:{cluster.password}@127.0.0.1:{cluster.port}/siaga"

    conn = await asyncpg.connect(cluster.dsn)
    try:
        who = await conn.fetchrow(
            "SELECT current_user AS u, current_database() AS d,"
            " current_setting('listen_addresses') AS l, rolsuper"
            " FROM pg_roles WHERE rolname = current_user"
        )
        await conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (112)")
    finally:
        await conn.close()
    assert (who["u"], who["d"], who["l"], who["rolsuper"]) == ("siaga", "siaga", "127.0.0.1", False)

    cluster.stop("immediate")
    assert not cluster.is_running()
    cluster.stop()  # stopping a stopped cluster is fine
    with pytest.raises(OSError):
        await asyncpg.connect(cluster.dsn, timeout=2)

    cluster.start()
    conn = await asyncpg.connect(cluster.dsn)
    try:
        assert await conn.fetchval("SELECT x FROM kept") == 112
    finally:
        await conn.close()


async def test_nothing_is_trusted_and_the_app_role_is_no_superuser(
    own_pg_cluster: PgCluster,
) -> None:
    cluster = own_pg_cluster
    no_password = f"postgresql://siaga@127.0.0.1:{cluster.port}/siaga"
    superuser_no_password = f"postgresql://postgres@127.0.0.1:{cluster.port}/siaga"
    for dsn in (no_password, superuser_no_password):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(dsn, password="", timeout=5)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(no_password, password="not-the-password", timeout=5)

    # The password is generated, kept beside the data folder and readable by its owner only.
    assert len(cluster.password) >= 24
    assert cluster.passwords_path.stat().st_mode & 0o777 == 0o600
    assert not cluster.passwords_path.is_relative_to(cluster.data_dir)

    conn = await asyncpg.connect(cluster.dsn)
    try:
        role = await conn.fetchrow(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'siaga'"
        )
        assert tuple(role) == (False, False, False)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE ROLE intruder LOGIN")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE DATABASE intruder")
        await conn.execute("CREATE TABLE mine (x int)")  # it owns its own database
    finally:
        await conn.close()


def test_a_cluster_made_with_trust_is_secured_at_its_next_start() -> None:
    """The embedded cluster of an earlier `make run` (trust, CREATEDB, no passwords)."""
    root = Path(tempfile.mkdtemp(prefix="siaga-pg-"))
    os.chmod(root, 0o755)  # the server runs as `postgres` when we are root
    cluster = PgCluster(root / "data", free_port(), settings={"fsync": "off"})
    try:
        cluster.start()
        cluster.stop()
        cluster.passwords_path.unlink()  # as a cluster made before passwords
        (cluster.data_dir / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
        cluster.start()

        async def check() -> None:
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(
                    f"postgresql://postgres@127.0.0.1:{cluster.port}/siaga", password=""
                )
            conn = await asyncpg.connect(cluster.dsn)
            try:
                assert (
                    await conn.fetchval(
                        "SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user"
                    )
                    is False
                )
            finally:
                await conn.close()

        asyncio.run(check())
        hba = (cluster.data_dir / "pg_hba.conf").read_text().splitlines()
        assert not [line for line in hba if line.split()[-1:] == ["trust"]]
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def test_start_failure_is_loud_with_the_server_log(own_pg_cluster: PgCluster) -> None:
    root = Path(tempfile.mkdtemp(prefix="siaga-pg-"))
    os.chmod(root, 0o755)
    try:
        # Same port as a running cluster: the server cannot bind and says so in its log.
        other = PgCluster(root / "data", own_pg_cluster.port, settings={"fsync": "off"})
        with pytest.raises(ClusterError) as failure:
            other.start()
        assert "did not start" in str(failure.value)
        assert "could not" in str(failure.value)  # "could not bind/create ... socket"
        assert not other.is_running()

        foreign = root / "foreign"
        foreign.mkdir()
        (foreign / "something").write_text("not a cluster")
        with pytest.raises(ClusterError, match="holds no cluster"):
            PgCluster(foreign, 1).init()
    finally:
        shutil.rmtree(root, ignore_errors=True)
