"""testbed.cluster: a private PostgreSQL cluster, idempotent, loud when it cannot start."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from testbed.cluster import ClusterError, PgCluster


async def test_lifecycle_is_idempotent_and_data_survives_a_crash_stop(
    own_pg_cluster: PgCluster,
) -> None:
    cluster = own_pg_cluster
    assert cluster.is_running()
    cluster.init()  # reuses what exists
    cluster.start()
    assert cluster.dsn == f"postgresql://siaga@127.0.0.1:{cluster.port}/siaga"

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
