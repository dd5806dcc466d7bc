"""Debian's headless Chromium driven over the Chrome DevTools protocol with aiohttp: no browser
download, no extra dependency. One browser; one isolated context (its own cookies) per user."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
_DEVTOOLS = re.compile(rb"DevTools listening on (ws://\S+)")


class BrowserError(AssertionError):
    pass


class Chromium:
    def __init__(self, process: asyncio.subprocess.Process, ws: aiohttp.ClientWebSocketResponse):
        self.process = process
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.tabs: dict[str, Tab] = {}  # by CDP session id
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(BrowserError(str(data["error"])))
                    else:
                        future.set_result(data.get("result", {}))
            elif data.get("sessionId") in self.tabs:
                self.tabs[data["sessionId"]].on_event(data["method"], data.get("params", {}))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> Any:
        message_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        return await asyncio.wait_for(future, 15)

    async def new_tab(self) -> Tab:
        """A tab in a fresh browser context: like another person's browser."""
        context = (await self.send("Target.createBrowserContext"))["browserContextId"]
        target = (
            await self.send(
                "Target.createTarget", {"url": "about:blank", "browserContextId": context}
            )
        )["targetId"]
        session = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))[
            "sessionId"
        ]
        tab = Tab(self, session)
        self.tabs[session] = tab
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            await self.send(domain, session=session)
        return tab


class Tab:
    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session
        self.dialogs: list[str] = []  # alert()/confirm() opened: an injected script ran
        self.errors: list[str] = []  # uncaught exceptions, console errors, CSP violations

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(params.get("message", ""))
            asyncio.get_running_loop().create_task(
                self.send("Page.handleJavaScriptDialog", {"accept": True})
            )
        elif method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(json.dumps(params.get("args", []))[:500])
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            text = params["entry"].get("text", "")
            # EventSource streams are cut when a page is left: not an error of the page.
            if "EventSource" not in text and "ERR_INCOMPLETE_CHUNKED" not in text:
                self.errors.append(text[:500])

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.browser.send(method, params, self.session)

    async def js(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})
        await self.wait_for("document.readyState === 'complete'", timeout=10)

    async def arrived(self, predicate: str, *, timeout: float = 5.0) -> Any:
        """Wait until the page after a navigation satisfies `predicate` and is fully parsed:
        `location` changes when the new document commits, before its elements exist."""
        return await self.wait_for(
            f"document.readyState === 'complete' && ({predicate})", timeout=timeout
        )

    async def wait_for(self, predicate: str, *, timeout: float = 5.0, step: float = 0.02) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with contextlib.suppress(BrowserError):  # e.g. mid-navigation
                value = await self.js(predicate)
                if value:
                    return value
            if loop.time() > deadline:
                raise BrowserError(f"timed out after {timeout} s waiting for: {predicate}")
            await asyncio.sleep(step)

    async def click(self, selector: str) -> None:
        found = await self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.click(); return true; })()"
        )
        if not found:
            raise BrowserError(f"nothing to click at {selector}")

    async def fill(self, selector: str, value: str) -> None:
        await self.js(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    async def text(self, selector: str) -> str | None:
        value: str | None = await self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " return e ? e.textContent : null; })()"
        )
        return value


@contextlib.asynccontextmanager
async def chromium(*extra: str) -> AsyncIterator[Chromium]:
    """Headless Chromium; `extra`: more command-line switches (e.g. a fake microphone)."""
    profile = Path(tempfile.mkdtemp(prefix="siaga-chromium-"))
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        *extra,
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    session = aiohttp.ClientSession()
    try:
        assert process.stderr is not None
        url = None
        seen = b""
        async with asyncio.timeout(20):
            while url is None:
                line = await process.stderr.readline()
                if not line:
                    raise BrowserError(f"chromium exited: {seen.decode(errors='replace')}")
                seen += line
                match = _DEVTOOLS.search(line)
                url = match[1].decode() if match else None
        drain = asyncio.get_running_loop().create_task(_drain(process.stderr))
        ws = await session.ws_connect(url, max_msg_size=0)
        browser = Chromium(process, ws)
        try:
            yield browser
        finally:
            browser._reader.cancel()
            await ws.close()
            drain.cancel()
    finally:
        await session.close()
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def screenshot(tab: Tab, path: Path, *, whole_page: bool = False) -> None:
    params = {"format": "png", "captureBeyondViewport": whole_page}
    data = await tab.send("Page.captureScreenshot", params)
    await asyncio.to_thread(path.write_bytes, base64.b64decode(data["data"]))
    print(f"screenshot: {path}")
