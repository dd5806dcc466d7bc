"""The browser phone's console side (supervisor/views/phone.py) over HTTP: the panel, the
operator's own SIP account and the SIP relay, each for the operator on the browser phone only;
the relay carries SIP both ways to Asterisk's WebSocket (here a stand-in that answers)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from console_support import Browser

from siaga.config import Config
from supervisor.views.phone import ASTERISK_WS_PATH, RELAY_PATH, SIP_SUBPROTOCOL, library_file


@dataclasses.dataclass
class AsteriskStandIn:
    port: int
    heard: list[str]


@pytest.fixture
async def asterisk_ws() -> AsyncIterator[AsteriskStandIn]:
    """Asterisk's SIP WebSocket stand-in: answers each message with `SIP/2.0 200 OK <message>`."""
    heard: list[str] = []

    async def sip(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=(SIP_SUBPROTOCOL,))
        await ws.prepare(request)
        async for message in ws:
            heard.append(message.data)
            await ws.send_str(f"SIP/2.0 200 OK {message.data}")
        return ws

    app = web.Application()
    app.router.add_get(ASTERISK_WS_PATH, sip)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    yield AsteriskStandIn(server.port, heard)
    await server.close()


@pytest.fixture
def console_config(console_config: Config, asterisk_ws: AsteriskStandIn) -> Config:
    """siaga.toml with 1001 on the browser phone and Asterisk's HTTP server at the stand-in."""
    port = asterisk_ws.port
    operators = tuple(
        dataclasses.replace(op, webrtc=op.id == "1001") for op in console_config.operators
    )
    ast = dataclasses.replace(console_config.asterisk, ari_url=f"http://127.0.0.1:{port}")
    return dataclasses.replace(console_config, operators=operators, asterisk=ast)


async def test_only_the_browser_phone_operator_gets_the_panel_and_the_account(sign_in):
    op1, op2, sup = await sign_in("op1"), await sign_in("op2"), await sign_in("sup")
    _, page = await op1.text("/operator")
    assert 'id="phone-panel"' in page and "/static/vendor/jssip.min.js" in page
    assert "siaga-dev-1001" not in page, "the password is not in the page"
    _, page = await op2.text("/operator")
    assert 'id="phone-panel"' not in page

    headers = {"X-CSRF-Token": op1.csrf}
    async with await op1.get("/operator/phone", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        account = await response.json()
    assert account["user"] == "1001" and account["password"] == "siaga-dev-1001"
    assert account["uri"] == "sip:1001@127.0.0.1" and account["ws_path"] == RELAY_PATH
    async with await op1.get("/operator/phone") as response:
        assert response.status == 403, "a script of another site cannot know the CSRF token"
    async with await op2.get("/operator/phone", headers={"X-CSRF-Token": op2.csrf}) as response:
        assert response.status == 404, "a desk phone operator has no browser phone"
    async with await sup.get("/operator/phone", headers={"X-CSRF-Token": sup.csrf}) as response:
        assert response.status == 403


async def test_the_relay_carries_sip_both_ways_for_the_operators_own_page(
    sign_in, served, asterisk_ws
):
    op1, op2 = await sign_in("op1"), await sign_in("op2")
    origin = served.url.rstrip("/")
    async with op1.session.ws_connect(
        RELAY_PATH, protocols=(SIP_SUBPROTOCOL,), headers={"Origin": origin}
    ) as ws:
        assert ws.protocol == SIP_SUBPROTOCOL
        await ws.send_str("REGISTER sip:127.0.0.1 SIP/2.0")
        answer = await ws.receive(timeout=5)
    assert answer.data == "SIP/2.0 200 OK REGISTER sip:127.0.0.1 SIP/2.0"
    assert asterisk_ws.heard == ["REGISTER sip:127.0.0.1 SIP/2.0"]

    for browser, headers, status in (
        (op1, {"Origin": "http://evil.example"}, 403),  # another site's page
        (op1, {}, 403),  # no Origin: not a browser page of this site
        (op2, {"Origin": origin}, 404),  # a desk phone operator
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await browser.session.ws_connect(
                RELAY_PATH, protocols=(SIP_SUBPROTOCOL,), headers=headers
            )
        assert refused.value.status == status
    assert len(asterisk_ws.heard) == 1, "nothing refused reached Asterisk"


async def test_the_phone_library_is_served_when_make_setup_has_bundled_it(anonymous):
    assert library_file().is_file(), "make setup installs and bundles JsSIP"
    async with await anonymous.get("/static/vendor/jssip.min.js") as response:
        assert response.status == 200
        assert response.content_type == "text/javascript"
        assert "WebSocketInterface" in await response.text()


async def test_the_relay_is_wss_on_the_https_console(https_url, trusting, users, asterisk_ws):
    """Production serves the console over HTTPS: the page's SIP goes over wss:// through the
    same relay, with the console's certificate and its Secure session cookie."""
    op1 = Browser(https_url, tls=trusting)
    try:
        assert (await op1.login("op1")).status == 303
        wss = https_url.replace("https://", "wss://", 1).rstrip("/") + RELAY_PATH
        async with op1.session.ws_connect(
            wss, protocols=(SIP_SUBPROTOCOL,), headers={"Origin": https_url.rstrip("/")}
        ) as ws:
            await ws.send_str("REGISTER sip:127.0.0.1 SIP/2.0")
            answer = await ws.receive(timeout=5)
        assert answer.data == "SIP/2.0 200 OK REGISTER sip:127.0.0.1 SIP/2.0"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            # the plain-HTTP origin of the same host is another origin
            await op1.session.ws_connect(
                wss,
                protocols=(SIP_SUBPROTOCOL,),
                headers={"Origin": https_url.replace("https://", "http://", 1).rstrip("/")},
            )
        assert refused.value.status == 403
    finally:
        await op1.close()
    assert asterisk_ws.heard == ["REGISTER sip:127.0.0.1 SIP/2.0"]
