"""Operator presence from the Kamailio edge: poll its JSON-RPC `ul.dump` and report changes.

    watch = RegistrationWatch.for_config(config, on_change)   # config.edge must be set
    watch.start() ... await watch.stop()

`on_change(operator_id, registered)` is called for every operator on the first answer, then
for each change. An edge that does not answer changes nothing: a lost edge must not log every
operator out (the offers then fail, and the ACD handles that). The IO shell around
edge/presence.py (docs/ha.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
import structlog

from edge import presence
from edge.render import rpc_url
from siaga.config import Config

log = structlog.get_logger(__name__)

OnChange = Callable[[str, bool], None]

DUMP_REQUEST = {"jsonrpc": "2.0", "method": "ul.dump", "id": 1}


class EdgeUnanswered(Exception):
    """No edge gave a ul.dump answer: refused, timed out, or answered something else."""


class RegistrationWatch:
    """Polls the edges' JSON-RPC (`urls`, tried in turn: the last one that answered first)
    every `interval` seconds; `phones` maps each operator's SIP user to its id
    (presence.edge_phones). Each request may take `timeout` seconds (default: `interval`)."""

    def __init__(
        self,
        urls: str | Sequence[str],
        phones: Mapping[str, str],
        on_change: OnChange,
        interval: float = 1.0,
        *,
        timeout: float | None = None,
    ) -> None:
        self.urls: tuple[str, ...] = (urls,) if isinstance(urls, str) else tuple(urls)
        if not self.urls:
            raise ValueError("RegistrationWatch needs at least one edge URL")
        self.phones = dict(phones)
        self.on_change = on_change
        self.interval = interval
        self.timeout = interval if timeout is None else timeout
        self.known: frozenset[str] | None = None  # None until an edge first answers
        self.unanswered = False  # in an outage: logged once, at its start
        self._reported = asyncio.Event()  # the first answer's presence is reported
        self._preferred = 0
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_config(
        cls, config: Config, on_change: OnChange, interval: float = 1.0
    ) -> RegistrationWatch:
        """The watch of `config`'s edge ([edge] sip_host and rpc_port) and its operators."""
        if config.edge is None:
            raise ValueError(f"{config.path}: no [edge]: presence comes from Asterisk")
        return cls(rpc_url(config.edge), presence.edge_phones(config), on_change, interval)

    async def wait_reported(self) -> None:
        """Return once an edge has answered and every operator's presence was reported."""
        await self._reported.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="edge-registrations")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.interval)

    async def poll(self) -> None:
        """Ask the edges once and report what changed (nothing if no edge answered)."""
        try:
            registrations = await self._dump()
        except EdgeUnanswered as exc:
            if not self.unanswered:
                log.warning("edge.registrations_unanswered", urls=self.urls, error=str(exc))
                self.unanswered = True
            return
        if self.unanswered:
            log.info("edge.registrations_answered", url=self.urls[self._preferred])
            self.unanswered = False
        now = presence.registered(registrations, self.phones)
        if self.known is None:
            report = presence.everything(self.phones.values(), now)
        else:
            report = presence.changes(self.known, now)
        self.known = now
        for operator_id, registered in report:
            log.info("operator.registration", operator=operator_id, registered=registered)
            try:
                self.on_change(operator_id, registered)
            except Exception:
                # One failed report must not stop the watch: the next changes still matter.
                log.exception("edge.registration_report_failed", operator=operator_id)
        self._reported.set()

    async def _dump(self) -> tuple[presence.Registration, ...]:
        errors = []
        order = [self._preferred, *(i for i in range(len(self.urls)) if i != self._preferred)]
        for index in order:
            url = self.urls[index]
            try:
                answer = await self._ask(url)
                registrations = presence.parse_dump(answer)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                errors.append(f"{url}: {type(exc).__name__}: {exc}")
                continue
            self._preferred = index
            return registrations
        raise EdgeUnanswered("; ".join(errors))

    async def _ask(self, url: str) -> Mapping[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self._session.post(url, json=DUMP_REQUEST, timeout=timeout) as response:
            response.raise_for_status()
            answer = json.loads(await response.text())
        if not isinstance(answer, dict):
            raise presence.DumpError(f"not a JSON-RPC answer: {answer!r:.200}")
        return answer
