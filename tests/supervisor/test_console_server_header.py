"""The console names no server software and no version in its responses (aiohttp would send
`Server: Python/3.x aiohttp/3.y` with every one): pages, redirects, static files, errors, and
the health endpoint. (A request aiohttp's parser rejects is answered before any app hook runs:
that 400 still names aiohttp.)"""

from __future__ import annotations

from conftest import SignIn
from console_support import Browser

PATHS = ("/healthz", "/login", "/static/console.css", "/no-such-page", "/board")


async def test_no_response_carries_a_server_header(anonymous: Browser, sign_in: SignIn) -> None:
    supervisor = await sign_in("sup")
    seen = {}
    for browser, who in ((anonymous, "anonymous"), (supervisor, "sup")):
        for path in PATHS:
            async with await browser.get(path) as response:
                seen[f"{who} {path} {response.status}"] = response.headers.get("Server")
    assert {what: server for what, server in seen.items() if server is not None} == {}
    # Each kind of response was seen: a signed-in page, a refused stranger, a missing page.
    assert {"sup /board 200", "anonymous /board 401", "sup /no-such-page 404"} <= set(seen)
