"""The console over HTTPS: served with the certificate siaga.toml names (TLS 1.2 or later) to a
real aiohttp client that verifies it against the self-signed CA, every response with HSTS and
every cookie `Secure`; behind a TLS proxy the same headers and cookies over plain HTTP; without
either, neither (development)."""

from __future__ import annotations

import dataclasses
import re
import ssl
import warnings

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from console_support import PASSWORD, Browser, PureCentre, console_settings

from siaga.config import Config
from supervisor.console import Console
from supervisor.web import HSTS, Health, create_app

_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]*)"')


async def test_the_console_over_https_sends_hsts_and_secure_cookies(
    https_url: str, trusting: ssl.SSLContext, users: dict[str, str]
) -> None:
    assert https_url.startswith("https://127.0.0.1:")
    browser = Browser(https_url, tls=trusting)
    try:
        async with await browser.get("/login") as page:
            assert page.status == 200
            assert page.headers["Strict-Transport-Security"] == HSTS
            assert page.cookies["siaga_csrf"]["secure"] is True
        response = await browser.login("sup")
        assert response.status == 303
        cookie = response.cookies["siaga_session"]
        assert (cookie["secure"], cookie["httponly"], cookie["samesite"]) == (True, True, "Strict")
        assert response.headers["Strict-Transport-Security"] == HSTS
        status, body = await browser.text("/board")  # the Secure cookie is sent back
        assert status == 200 and "csrf-token" in body
        async with await browser.get("/healthz") as health:
            assert health.headers["Strict-Transport-Security"] == HSTS
    finally:
        await browser.close()


async def test_the_https_console_is_not_served_over_plain_http_or_to_clients_that_distrust_it(
    https_url: str,
) -> None:
    plain = https_url.replace("https://", "http://")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"{plain}/login") as response:
                await response.read()
        # The system's CAs do not know it: a client verifying as it should refuses it.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.get(f"{https_url}/healthz"):
                pass


async def test_the_https_console_refuses_tls_older_than_1_2(https_url: str) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # the very versions this is about are deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # this client would speak TLS 1.0/1.1 if let
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=old)) as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"{https_url}/healthz"):
                pass


async def _login_headers(url: str) -> tuple[aiohttp.ClientResponse, aiohttp.ClientResponse]:
    """GET /login and a POST signing in as `sup`, with cookies passed by hand (a client keeps
    no Secure cookie of a plain-HTTP site): both responses."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        async with session.get(f"{url}/login") as page:
            found = _CSRF_FIELD.search(await page.text())
            assert found is not None
        pre = page.cookies["siaga_csrf"].value
        async with session.post(
            f"{url}/login",
            data={"username": "sup", "password": PASSWORD, "csrf": found[1]},
            headers={"Cookie": f"siaga_csrf={pre}"},
            allow_redirects=False,
        ) as login:
            pass
    return page, login


@pytest.mark.parametrize("behind_tls_proxy", [True, False])
async def test_behind_a_tls_proxy_plain_http_carries_hsts_and_secure_cookies(
    pg_dsn: str,
    console_config: Config,
    centre: PureCentre,
    users: dict[str, str],
    tmp_path,
    behind_tls_proxy: bool,
) -> None:
    config = dataclasses.replace(
        console_config,
        web=dataclasses.replace(console_config.web, behind_tls_proxy=behind_tls_proxy),
    )
    console = Console(console_settings(pg_dsn, tmp_path), config, centre)
    server = TestServer(create_app(lambda: Health(True, True), console, https=config.web.https))
    await server.start_server()
    try:
        page, login = await _login_headers(str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()

    assert login.status == 303
    hsts = [r.headers.get("Strict-Transport-Security") for r in (page, login)]
    secure = [page.cookies["siaga_csrf"]["secure"], login.cookies["siaga_session"]["secure"]]
    if behind_tls_proxy:
        assert (hsts, secure) == ([HSTS, HSTS], [True, True])
    else:  # development on plain HTTP: a Secure cookie would never come back
        assert (hsts, secure) == ([None, None], ["", ""])
