"""The FastAGI server: `screen` (caller screening before Stasis) and `feature` (operator feature
codes). Started with the stack; one asyncio server, one short session per AGI() call.

Only our Asterisk is served: the dialplan's AGI URLs carry the per-install secret
(agi://host:port/<secret>/screen, `[agi] secret`), and a request without it is refused and
logged. Anyone else on the machine could otherwise log an operator out by typing a request.

The dialplan (dialplan/templates/extensions.conf) runs `screen` on a Local channel of its own,
with the caller's channel as its argument, and gives it at most 500 ms, so a slow or hung
server never holds a 112 caller; the server keeps its own budget too
(`ScreeningSettings.budget_seconds`), so a slow database costs a screening, not a late one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import structlog

from agi import features
from agi.features import OperatorControl
from agi.protocol import AgiError, AgiRequest, AgiSession, read_request
from agi.records import block_event, caller_facts
from agi.screening import Screening, ScreeningSettings, is_anonymous, screen
from db.ingest import ingest
from siaga.config import Config
from supervisor import store

log = structlog.get_logger(__name__)

ENV_TIMEOUT = 2.0
SESSION_TIMEOUT = 30.0  # a feature code plays a short prompt; nothing takes longer


def screening_settings(config: Config) -> ScreeningSettings:
    """The screening knobs of siaga.toml `[screening]`."""
    return ScreeningSettings(
        block_hours=config.screening.block_hours,
        auto_block_pranks=config.screening.auto_block_pranks,
        history_days=config.screening.history_days,
    )


class AgiServer:
    def __init__(
        self,
        config: Config,
        pool: store.Db | None,
        operators: OperatorControl | None,
        *,
        settings: ScreeningSettings | None = None,
        prompts_dir: PurePosixPath | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        # Assignable: the stack may hand the app over once it runs.
        self.operators = operators
        self.settings = settings or screening_settings(config)
        self.prompts_dir = prompts_dir
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sip_users = features.operators_by_sip_user(config)
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self.screened = 0
        self.unscreened = 0
        self.refused = 0  # requests without the secret
        self.feature_outcomes: collections.Counter[str] = collections.Counter()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("AgiServer.start() first")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.config.agi.host, self.config.agi.port, reuse_address=True
        )
        log.info("agi.listening", host=self.config.agi.host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        # Blocks being written finish: they are records.
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- sessions

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            request = await asyncio.wait_for(read_request(reader), ENV_TIMEOUT)
            if not self._from_our_asterisk(request):
                self.refused += 1
                # Not the key itself: a near miss would tell the reader of the log too much.
                log.warning(
                    "agi.refused",
                    reason="no or wrong secret in the AGI URL",
                    peer=str(writer.get_extra_info("peername")),
                    script=request.script,
                    channel=request.channel,
                )
                return
            session = AgiSession(reader, writer)
            await asyncio.wait_for(self._route(request, session), SESSION_TIMEOUT)
        except (AgiError, TimeoutError, ConnectionError) as exc:
            log.warning("agi.session_failed", error=f"{type(exc).__name__}: {exc}")
        except Exception:
            log.exception("agi.session_crashed")
        finally:
            if task is not None:
                self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _from_our_asterisk(self, request: AgiRequest) -> bool:
        secret = self.config.agi_secret.encode()
        return bool(secret) and hmac.compare_digest(request.key.encode(), secret)

    async def _route(self, request: AgiRequest, session: AgiSession) -> None:
        match request.script:
            case "screen":
                await self._screen(request, session)
            case "feature":
                await self._feature(request, session)
            case other:
                log.warning("agi.unknown_script", script=other, channel=request.channel)

    # -- screening

    async def _screen(self, request: AgiRequest, session: AgiSession) -> None:
        number = request.caller_number
        if len(request.args) > 1 and request.args[1]:
            # The caller's call id, on this session's lines and the auto-block it starts (each
            # AGI connection is a task of its own: the binding ends with it).
            structlog.contextvars.bind_contextvars(call_id=request.args[1])
        if is_anonymous(number) or self.pool is None:
            self.unscreened += 1
            return
        now = self._clock()
        try:
            facts = await asyncio.wait_for(
                caller_facts(self.pool, number, now, self.settings),
                self.settings.budget_seconds,
            )
        except Exception as exc:
            # Unscreened beats late: the call goes on to the app without the variables.
            self.unscreened += 1
            log.warning("agi.screen_unavailable", number=number, error=f"{type(exc).__name__}")
            return
        result = screen(facts, self.settings)
        # The dialplan passes the caller's channel: the results go straight into its SHARED()
        # variables, without a dialplan priority each on this leg.
        caller = request.args[0] if request.args else ""
        for name, value in result.variables().items():
            if value in ("", "0"):
                continue  # a first-time caller's: unset reads the same, with no round trip
            await session.set_variable(f"SHARED({name},{caller})" if caller else name, value)
        self.screened += 1
        log.info(
            "agi.screened",
            number=number,
            flags=sorted(result.flags),
            repeat=result.repeat,
            language=result.language,
        )
        if result.auto_block:
            self._spawn(self._auto_block(number, result, now))

    async def _auto_block(self, number: str, result: Screening, now: datetime) -> None:
        assert self.pool is not None
        event = block_event(
            number,
            hours=self.settings.block_hours,
            reason=f"{self.settings.auto_block_pranks} or more prank calls within 24 h",
            set_by="auto",
            now=now,
        )
        try:
            await ingest(self.pool, [event])
            log.warning("agi.auto_blocked", number=number, until=event.data.get("until"))
        except Exception:
            # The call was screened as blocked all the same; the next call retries the block.
            log.exception("agi.auto_block_failed", number=number)

    async def _audit(
        self, feature: features.Feature, operator_id: str, endpoint: str, code: str, channel: str
    ) -> None:
        """The console's audit, as a supervisor's change of an operator's state is audited."""
        detail = {"source": "phone", "endpoint": endpoint, "code": f"*{code.lstrip('*')}"}
        if feature.reason:
            detail["reason"] = feature.reason
        if self.pool is None:
            log.warning("agi.feature_not_audited", operator=operator_id, reason="no database")
            return
        try:
            await store.audit(
                self.pool,
                store.AuditAction(f"operator_{feature.action.value}"),
                username=operator_id,
                role="phone",
                target=operator_id,
                client=channel,
                detail=detail,
            )
        except Exception:
            log.exception("agi.feature_audit_failed", operator=operator_id)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- feature codes

    async def _feature(self, request: AgiRequest, session: AgiSession) -> None:
        code = request.args[0] if request.args else ""
        feature = features.parse(code, self.config.acd.pause_reasons)
        endpoint = features.endpoint_of(request.channel, request.caller_number)
        operator_id = self._sip_users.get(endpoint)
        outcome = features.apply(self.operators, operator_id, feature)
        self.feature_outcomes[outcome.value] += 1
        log.info(
            "agi.feature",
            code=code,
            endpoint=endpoint,
            operator=operator_id,
            action=feature.action.value if feature else None,
            reason=feature.reason if feature else None,
            outcome=outcome.value,
        )
        if outcome is features.Outcome.DONE and feature is not None and operator_id is not None:
            self._spawn(self._audit(feature, operator_id, endpoint, code, request.channel))
        await session.set_variable("SIAGA_FEATURE", outcome.value)
        ours, core = features.prompts(feature, outcome)
        played = self.prompts_dir is not None and await session.stream_file(
            str(self.prompts_dir / self.config.centre.language / ours)
        )
        if not played:
            # Our prompts are missing (an Asterisk of the centre's own): a core sound will do.
            played = await session.stream_file(core)
        log.debug("agi.feature_confirmed", prompt=ours, played=played)
