"""Helpers of the console tests: a live centre over the real, pure ACD core (no Asterisk), and
a browser-like HTTP client that signs in and carries its CSRF token."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import ssl
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from ari_app.app import acd_config
from ari_app.call.states import HandOff
from db import events
from db.events import Facts, HangupBy, RecordEvent
from db.reports import DEFAULT_TZ
from queues import events as acd
from queues.acd import Acd
from queues.snapshot import Snapshot
from siaga.config import Config
from supervisor.console import ConsoleSettings
from supervisor.live import ActionUnavailableError, ListenMode, LiveCall

PASSWORD = "correct horse battery"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]*)"')


def console_settings(pg_dsn: str, recordings: Path, **changes: object) -> ConsoleSettings:
    values: dict[str, object] = {
        "dsn": pg_dsn,
        "recordings_dir": recordings,
        "live_interval_seconds": 0.05,
        "stats_interval_seconds": 0.2,
        "session_check_seconds": 0.5,
    }
    values.update(changes)
    return ConsoleSettings(**values)  # type: ignore[arg-type]


class PureCentre:
    """A `LiveCentre` over the real `queues.Acd` engine: operators and waiting calls as the
    engine sees them; live calls and records set by the test, records through the real
    RecordWriter."""

    def __init__(self, config: Config, journal: Any) -> None:
        self.config = config
        self.journal = journal
        self.acd = Acd(acd_config(config), time.monotonic())
        self.calls: dict[str, tuple[LiveCall, float]] = {}
        self.actions: list[tuple[Any, ...]] = []
        self.offers_actions = True

    def _feed(self, event: acd.Event) -> None:
        self.acd.handle(event, time.monotonic())

    # -- LiveCentre

    def snapshot(self) -> Snapshot:
        self._feed(acd.Tick())
        return self.acd.snapshot()

    def live_calls(self) -> list[LiveCall]:
        now = time.monotonic()
        return [dataclasses.replace(c, age_seconds=now - t0) for c, t0 in self.calls.values()]

    def operator_login(self, operator_id: str) -> None:
        op = next(o for o in self.config.operators if o.id == operator_id)
        self._feed(acd.OperatorLoggedIn(operator_id, dict(op.skills)))
        self._feed(acd.OperatorRegistration(operator_id, True))

    def operator_logout(self, operator_id: str) -> None:
        self._feed(acd.OperatorLoggedOut(operator_id))

    def operator_pause(self, operator_id: str, reason: str) -> None:
        self._feed(acd.OperatorPaused(operator_id, reason))

    def operator_ready(self, operator_id: str) -> None:
        self._feed(acd.OperatorReady(operator_id))

    def record(self, event: RecordEvent) -> None:
        self.journal.write(event)

    async def listen(self, supervisor: str, dial: str, call_id: str, mode: ListenMode) -> None:
        self._act("listen", supervisor, dial, call_id, mode.value)

    async def add_agency(self, call_id: str, agency: str, operator_id: str) -> None:
        self._act("add_agency", call_id, agency, operator_id)

    async def call_back(self, operator_id: str, number: str, call_id: str) -> None:
        self._act("call_back", operator_id, number, call_id)

    def disposition_given(self, operator_id: str, call_id: str) -> None:
        self._feed(acd.DispositionGiven(operator_id, call_id))

    async def hang_up(self, call_id: str, operator_id: str) -> None:
        self._act("hang_up", call_id, operator_id)

    async def conference(
        self, call_id: str, operator_id: str, colleague: str, dial: str | None
    ) -> None:
        self._act("conference", call_id, operator_id, colleague, dial)

    async def leave(self, call_id: str, operator_id: str) -> None:
        self._act("leave", call_id, operator_id)

    async def hold(self, call_id: str, operator_id: str, hold: bool) -> None:
        self._act("hold", call_id, operator_id, hold)
        call, t0 = self.calls[call_id]
        self.calls[call_id] = (dataclasses.replace(call, held=hold), t0)

    def _act(self, *action: Any) -> None:
        if not self.offers_actions:
            raise ActionUnavailableError(action[0])
        self.actions.append(action)

    # -- what the test makes happen

    def arrive(
        self,
        call_id: str,
        number: str,
        *,
        name: str = "",
        category: str = "medical",
        flags: tuple[str, ...] = (),
        waited: float = 0.0,
    ) -> None:
        """A caller classified into `category`, waiting in the engine's queue (for `waited`
        seconds already)."""
        now = time.monotonic() - waited
        self.calls[call_id] = (
            LiveCall(call_id, number, name, category, "queued", None, frozenset(flags), 0.0),
            now,
        )
        self._feed(acd.CallQueued(call_id, category, now, None, frozenset(flags)))
        self.record(events.call_arrived(call_id, number, caller_name=name, flags=flags))
        self.record(events.call_classified(call_id, category, flags=flags))
        self.record(events.call_queued(call_id, category=category))

    def connect(self, call_id: str, operator_id: str) -> None:
        call, t0 = self.calls[call_id]
        self.calls[call_id] = (
            dataclasses.replace(call, state="connected", operator_id=operator_id),
            t0,
        )
        self._feed(acd.CallHungUp(call_id))  # the engine's part is not what these tests check
        self.record(events.call_connected(call_id, operator_id))

    def hand_offs(self, call_id: str, *hand_offs: HandOff) -> None:
        """The agencies and colleagues the app shows conferenced into the call, and how."""
        call, t0 = self.calls[call_id]
        self.calls[call_id] = (dataclasses.replace(call, hand_offs=hand_offs), t0)

    def end(self, call_id: str) -> None:
        self.calls.pop(call_id)
        self.record(events.call_ended(call_id, HangupBy.CALLER))

    # A colleague conferenced in beside the call's operator (the colleague's desk, controls2).

    def join(self, call_id: str, operator_id: str) -> None:
        """An operator colleague answered and is in the conversation beside the operator."""
        call, t0 = self.calls[call_id]
        self.calls[call_id] = (dataclasses.replace(call, joined=(operator_id,)), t0)
        self.record(events.call_connected(call_id, operator_id))

    def colleague_left(self, call_id: str) -> None:
        """The colleague left again; the call goes on with its operator."""
        call, t0 = self.calls[call_id]
        self.calls[call_id] = (dataclasses.replace(call, joined=()), t0)

    def hand_over(self, call_id: str) -> None:
        """The call's operator left: the colleague who joined is the call's operator now."""
        call, t0 = self.calls[call_id]
        (to,) = call.joined
        self.calls[call_id] = (dataclasses.replace(call, operator_id=to, joined=()), t0)
        transferred = Facts.call_transferred(to=to, operator_id=call.operator_id)
        self.record(transferred.stamp(call_id=call_id))


class Browser:
    """One user's browser: its own cookies; posts carry the page's CSRF token. `source` is the
    loopback address it connects from (127.0.0.2, ...), for a desk other than the default;
    `tls`: the context it verifies an HTTPS console's certificate with."""

    def __init__(
        self, base_url: str, *, source: str | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.base_url = base_url
        connector = None
        if source or tls:
            connector = aiohttp.TCPConnector(
                local_addr=(source, 0) if source else None, ssl=tls or True
            )
        self.session = aiohttp.ClientSession(
            base_url=base_url, cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector
        )
        self.csrf = ""

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        kwargs.setdefault("allow_redirects", False)
        return await self.session.get(path, **kwargs)

    async def text(self, path: str) -> tuple[int, str]:
        async with await self.get(path) as response:
            return response.status, await response.text()

    async def login(self, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        async with self.session.get("/login") as page:
            token = _CSRF_FIELD.search(await page.text())
        assert token is not None
        response = await self.session.post(
            "/login",
            data={"username": username, "password": password, "csrf": token[1]},
            allow_redirects=False,
        )
        if response.status == 303:
            await self.refresh_csrf()
        return response

    async def refresh_csrf(self) -> None:
        # Followed: a user who must first change their password is sent to that page.
        async with self.session.get("/calls") as page:
            found = _CSRF_META.search(await page.text())
        assert found is not None, "the signed-in page carries a CSRF token"
        self.csrf = found[1]

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None
    ) -> aiohttp.ClientResponse:
        form = dict(data or {})
        form["csrf"] = self.csrf if csrf is None else csrf
        return await self.session.post(path, data=form, allow_redirects=False)


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The JSON data of each server-sent event."""
    buffer = ""
    async for chunk in response.content.iter_any():
        buffer += chunk.decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            for line in block.splitlines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])
                elif line.startswith("event: signed_out"):
                    yield {"signed_out": True}


async def first_event(response: aiohttp.ClientResponse, predicate: Any, timeout: float) -> Any:
    async def find() -> Any:
        async for data in sse_events(response):
            if predicate(data):
                return data
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(find(), timeout)


async def settled(writer: Any) -> None:
    """Every event written so far is in PostgreSQL (not only durable in the journal)."""
    await writer.wait_replayed(10)
    await writer.wait_replayed(10)


def earlier_today(delta: timedelta) -> datetime:
    """`delta` ago, but not before today began where the console reports (its default zone):
    a report of today must hold it, whenever the test runs (also just after midnight there)."""
    zone = ZoneInfo(DEFAULT_TZ)
    now = datetime.now(zone)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return max(now - delta, midnight + timedelta(seconds=1)).astimezone(UTC)
