"""Shared test fixtures.

PostgreSQL: `pg_cluster` is a private cluster started once per test session (temporary data
folder, free port, stopped at the end even when tests fail); `pg_dsn` gives each test its own
freshly migrated database, cloned from a template; `pg_empty_dsn` gives an empty one;
`own_pg_cluster` is a cluster of the test's own, for tests that stop and start the server.
`tls_pair` is a self-signed certificate and key for 127.0.0.1 and localhost, as `siaga
provision --tls` makes them (the certificate is its own CA: clients verify against it).
Clusters ask for passwords as the embedded one of `make run` does: databases are created over
the superuser's DSN and owned by the app's role, which connects with its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

# tests/ is on sys.path (it holds this conftest and no __init__.py), so its folder tests/db
# would otherwise shadow the `db` package as a namespace package.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import pytest  # noqa: E402

from db.migrate import migrate  # noqa: E402
from stack.certificate import CertificatePair, write_self_signed  # noqa: E402
from testbed.cluster import PgCluster, create_database, free_port  # noqa: E402

# Durability is not what these tests measure; synchronous_commit stays on because the outage
# tests rely on a commit surviving `pg_ctl stop -m immediate`.
PG_TEST_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "on",
    "max_connections": "60",
    "shared_buffers": "64MB",
}
PG_TEMPLATE = "siaga_template"


@contextmanager
def running_pg_cluster(settings: dict[str, str] | None = None) -> Iterator[PgCluster]:
    """A started cluster in a fresh temporary folder; stopped and deleted on exit."""
    root = Path(tempfile.mkdtemp(prefix="siaga-pg-"))
    os.chmod(root, 0o755)  # the server runs as `postgres` when we are root
    cluster = PgCluster(root / "data", free_port(), settings=settings or PG_TEST_SETTINGS)
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    with running_pg_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
async def pg_template(pg_cluster: PgCluster) -> str:
    await migrate(await create_database(pg_cluster, PG_TEMPLATE))
    return PG_TEMPLATE


async def _scratch_database(cluster: PgCluster, template: str) -> AsyncIterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield await create_database(cluster, name, template)
    conn = await asyncpg.connect(cluster.admin_dsn_for())
    try:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def pg_dsn(pg_cluster: PgCluster, pg_template: str) -> AsyncIterator[str]:
    """A migrated database of this test's own."""
    async for dsn in _scratch_database(pg_cluster, pg_template):
        yield dsn


@pytest.fixture
async def pg_empty_dsn(pg_cluster: PgCluster) -> AsyncIterator[str]:
    """An empty (not migrated) database of this test's own."""
    async for dsn in _scratch_database(pg_cluster, "template0"):
        yield dsn


@pytest.fixture
def own_pg_cluster() -> Iterator[PgCluster]:
    """A cluster for this test alone (it may stop and start it); database `siaga` unmigrated."""
    with running_pg_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> CertificatePair:
    pair, _ = write_self_signed(tmp_path_factory.mktemp("tls"), ["127.0.0.1", "localhost"])
    return pair


@pytest.fixture
def behind_a_silent_host() -> Iterator[Callable[[str], str]]:
    """`dsn` with a first host whose kernel completes the TCP handshake while nobody ever
    answers (a host that swallows packets, as a dead machine behind a live switch does), and
    `target_session_attrs=read-write`: the multi-host URL of a primary and its standby."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        silent = sock.getsockname()[1]

        def dsn_of(dsn: str) -> str:
            parts = urlsplit(dsn)
            userinfo, _, real = parts.netloc.rpartition("@")
            netloc = f"{userinfo}@127.0.0.1:{silent},{real}"
            return parts._replace(netloc=netloc, query="target_session_attrs=read-write").geturl()

        yield dsn_of
