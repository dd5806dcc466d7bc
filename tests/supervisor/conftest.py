"""Fixtures of the console tests: a real PostgreSQL database per test (tests/conftest.py), the
real RecordWriter, the console served over HTTP on a free port, and its users."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from console_support import PASSWORD, Browser, PureCentre, console_settings

from db.writer import RecordWriter
from siaga.config import Config, load_config
from siaga.tls import web_context
from stack.certificate import CertificatePair
from supervisor import store
from supervisor.console import Console
from supervisor.roles import Role
from supervisor.security import hash_password
from supervisor.web import Health, create_app, start_site
from testbed.cluster import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
_HASH = hash_password(PASSWORD)  # once: argon2 is slow on purpose


@pytest.fixture(scope="session")
def console_config() -> Config:
    return load_config(EXAMPLE)


@pytest.fixture
async def writer(pg_dsn: str, tmp_path: Path) -> AsyncIterator[RecordWriter]:
    journal = RecordWriter(pg_dsn, tmp_path / "journal.jsonl", batch_ms=1000)
    await journal.start()
    yield journal
    await journal.close()


@pytest.fixture
def centre(console_config: Config, writer: RecordWriter) -> PureCentre:
    return PureCentre(console_config, writer)


@pytest.fixture
async def db(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_dsn)
    yield conn
    await conn.close()


@dataclass
class ConsoleUnderTest:
    console: Console
    url: str
    recordings: Path


@pytest.fixture
async def served(
    pg_dsn: str, console_config: Config, centre: PureCentre, tmp_path: Path
) -> AsyncIterator[ConsoleUnderTest]:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    console = Console(console_settings(pg_dsn, recordings), console_config, centre)
    server = TestServer(create_app(lambda: Health(True, True), console))
    await server.start_server()
    yield ConsoleUnderTest(console, str(server.make_url("")), recordings)
    await server.close()


USERS = {
    # name: (role, operator id, phone)
    "op1": (Role.OPERATOR, "1001", None),
    "op2": (Role.OPERATOR, "1002", None),
    "sup": (Role.SUPERVISOR, None, "PJSIP/2001"),
    "sup_nophone": (Role.SUPERVISOR, None, None),
    "admin": (Role.ADMIN, None, None),
}


@pytest.fixture
async def users(db: asyncpg.Connection) -> dict[str, str]:
    for name, (role, operator_id, phone) in USERS.items():
        await store.add_user(db, name, role, _HASH, operator_id=operator_id, phone=phone)
    return {name: role.value for name, (role, _, _) in USERS.items()}


SignIn = Callable[[str], Awaitable[Browser]]


@pytest.fixture
async def sign_in(served: ConsoleUnderTest, users: dict[str, str]) -> AsyncIterator[SignIn]:
    browsers: list[Browser] = []

    async def open_as(name: str) -> Browser:
        browser = Browser(served.url)
        browsers.append(browser)
        response = await browser.login(name)
        assert response.status == 303, f"{name} signs in"
        return browser

    yield open_as
    for browser in browsers:
        await browser.close()


@pytest.fixture
async def anonymous(served: ConsoleUnderTest) -> AsyncIterator[Browser]:
    browser = Browser(served.url)
    yield browser
    await browser.close()


# The console over HTTPS (test_console_tls.py, the browser phone's relay over wss)


@pytest.fixture
def tls_config(console_config: Config, tls_pair: CertificatePair) -> Config:
    web = dataclasses.replace(
        console_config.web,
        port=free_port(),
        tls_cert=str(tls_pair.cert),
        tls_key=str(tls_pair.key),
    )
    return dataclasses.replace(console_config, web=web)


@pytest.fixture
async def https_url(
    pg_dsn: str, tls_config: Config, centre: PureCentre, tmp_path
) -> AsyncIterator[str]:
    """The console as `siaga run` serves it with [web] tls_cert and tls_key."""
    console = Console(console_settings(pg_dsn, tmp_path), tls_config, centre)
    app = create_app(lambda: Health(True, True), console, https=tls_config.web.https)
    runner = await start_site(app, "127.0.0.1", tls_config.web.port, web_context(tls_config))
    yield tls_config.web.url
    await runner.cleanup()


@pytest.fixture
def trusting(tls_pair: CertificatePair) -> ssl.SSLContext:
    """A client that trusts the self-signed CA, and verifies host name and chain."""
    return ssl.create_default_context(cafile=str(tls_pair.cert))
