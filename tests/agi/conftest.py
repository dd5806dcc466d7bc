"""The real stack for the AGI tests: an Asterisk instance of these tests' own (own ports, own
folders, own database), built with the same fixtures as tests/integration, plus the FastAGI
server on the port the rendered dialplan points at.

An instance of their own because these tests stop the AGI server, hang it, and run calls with
no app connected (the dialplan fallback), which must not disturb the other integration tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import integration.conftest as shared
import pytest

from agi.records import agi_pool
from agi.server import AgiServer
from pbx.asterisk import AsteriskInstance
from siaga.config import Config, load_config
from testbed.cluster import PgCluster, create_database
from testbed.sandbox import running_asterisk, sandbox_config

# The shared stack fixtures, found by pytest under these names; `stack_dsn`, `stack_config`
# and `asterisk` below replace theirs for this folder.
app = shared.app
ari = shared.ari
callers = shared.callers
db = shared.db
journal = shared.journal
provisioned = shared.provisioned
records = shared.records
start_app = shared.start_app
wait = shared.wait

AGI_DB = "siaga_agi"
EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


@pytest.fixture(scope="session")
async def stack_dsn(pg_cluster: PgCluster, pg_template: str) -> str:
    return await create_database(pg_cluster, AGI_DB, pg_template)


# The partner centre the fallback overflows to: a simulated party that answers and talks 3 s.
OVERFLOW_DIAL = "Local/talk-3@siaga-test"


@pytest.fixture(scope="session")
def stack_config(stack_dsn: str) -> Config:
    """Like tests/integration's, with RTP ports apart from that instance's and an overflow
    target for the fallback."""
    base = sandbox_config(load_config(EXAMPLE), stack_dsn)
    rtp = 20000 + (os.getpid() % 100) * 100
    return dataclasses.replace(
        base,
        categories=tuple(dataclasses.replace(c, wrap_up_seconds=0.5) for c in base.categories),
        asterisk=dataclasses.replace(base.asterisk, rtp_start=rtp, rtp_end=rtp + 99),
        ivr=dataclasses.replace(base.ivr, timeout_seconds=2.0),
        acd=dataclasses.replace(
            base.acd,
            # Also sets the fallback queue's timeout (three rings): 7 s.
            ring_timeout_seconds=2.5,
            retry_after_busy_seconds=1.0,
            overflow_dial=OVERFLOW_DIAL,
        ),
    )


@pytest.fixture(scope="session")
def asterisk(provisioned: tuple[Path, Path], stack_config: Config) -> Iterator[AsteriskInstance]:
    root, prompts = provisioned
    with running_asterisk(root, prompts, f"agi-{os.getpid()}", stack_config) as instance:
        yield instance


@pytest.fixture(scope="session")
async def pool(stack_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await agi_pool(stack_dsn)
    yield pool
    await pool.close()


@pytest.fixture
async def agi_server(
    asterisk: AsteriskInstance, stack_config: Config, pool: asyncpg.Pool
) -> AsyncIterator[AgiServer]:
    """The FastAGI server on the dialplan's AGI port, without an app (tests set `.operators`)."""
    server = AgiServer(stack_config, pool, None, prompts_dir=asterisk.prompts_dir)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def idle_pbx(asterisk: AsteriskInstance) -> AsyncIterator[None]:
    """Calls a test leaves behind are hung up (tests without `start_app` use this)."""
    yield
    await asyncio.to_thread(asterisk.cli, "channel request hangup all")
    await asyncio.sleep(0.2)
