"""The console's state: settings, the database pool, the live centre, the login limiter, the
cache of today's figures, the alarms and their acknowledgements; and its start-up checks (no
development password in production)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from db.hosts import create_pool
from db.reports import DEFAULT_TZ, CallStats
from queues.snapshot import Snapshot
from siaga.config import Config
from supervisor import queries, store
from supervisor.alerts import Alert, AlertBook, ShownAlert, active_alerts
from supervisor.board import service_today, targets
from supervisor.health import Health
from supervisor.live import LiveCentre
from supervisor.roles import Role
from supervisor.security import DEV_PASSWORD, LoginLimiter, hash_password

log = structlog.get_logger(__name__)


class InsecureConsoleError(RuntimeError):
    """Refusing to serve: a development default is still in place outside development mode."""


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    dsn: str
    # Development mode creates users with DEV_PASSWORD when there are none; outside it the
    # console refuses to start while any enabled user still has that password.
    dev_mode: bool = False
    # Asterisk's recording folder (<call_id>.wav); None: recordings are not reachable here.
    recordings_dir: Path | None = None
    tz: str = DEFAULT_TZ
    session_lifetime: timedelta = timedelta(hours=12)
    session_idle: timedelta = timedelta(hours=1)
    live_interval_seconds: float = 0.2  # how often a live page looks at the centre
    stats_interval_seconds: float = 1.0  # how often today's figures are re-read
    session_check_seconds: float = 10.0  # how often a live stream re-checks its session


@dataclass
class _StatsCache:
    at: float = -1e9
    value: list[CallStats] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Console:
    def __init__(
        self,
        settings: ConsoleSettings,
        config: Config,
        centre: LiveCentre,
        *,
        limiter: LoginLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.centre = centre
        self.limiter = limiter or LoginLimiter()
        self.zone = ZoneInfo(settings.tz)
        self.closing = asyncio.Event()
        self._pool: Any = None
        self._stats = _StatsCache()
        # What /healthz says: create_app() sets the stack's own.
        self.health: Callable[[], Health] = lambda: Health(True, True)
        self.alert_book = AlertBook()

    @property
    def db(self) -> Any:
        if self._pool is None:
            raise RuntimeError("Console.start() first")
        return self._pool

    async def start(self) -> None:
        # Each host its own timeout (db/hosts.py): a lost primary must not hold the console up.
        self._pool = await create_pool(self.settings.dsn, min_size=1, max_size=8)
        try:
            await self._check_users()
        except BaseException:
            await self._pool.close()
            self._pool = None
            raise

    async def close(self) -> None:
        self.closing.set()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _check_users(self) -> None:
        if self.settings.dev_mode:
            if await store.count_users(self.db) == 0:
                await self._create_dev_users()
            return
        insecure = await store.users_with_dev_password(self.db)
        if insecure:
            raise InsecureConsoleError(
                "the web console will not start outside development mode while these users "
                f"have the development password: {', '.join(insecure)}; "
                "set theirs with `siaga user passwd NAME` or `siaga user disable NAME`"
            )
        if await store.count_users(self.db) == 0:
            log.warning("console.no_users", hint="create one with `siaga user add`")

    async def _create_dev_users(self) -> None:
        hashed = await asyncio.to_thread(hash_password, DEV_PASSWORD)
        await store.add_user(self.db, "admin", Role.ADMIN, hashed, dev_default=True)
        await store.add_user(self.db, "supervisor", Role.SUPERVISOR, hashed, dev_default=True)
        for operator in self.config.operators:
            await store.add_user(
                self.db,
                operator.id,
                Role.OPERATOR,
                hashed,
                display_name=operator.name,
                operator_id=operator.id,
                dev_default=True,
            )
        log.warning("console.dev_users_created", password=DEV_PASSWORD)

    def dev_logins(self) -> list[str]:
        """Lines for the `siaga run` banner in development mode."""
        if not self.settings.dev_mode:
            return []
        names = ["admin", "supervisor", *(op.id for op in self.config.operators)]
        return [f"console users {', '.join(names)}: password {DEV_PASSWORD} (development only)"]

    # -- shared, cached reads

    def now(self) -> datetime:
        return datetime.now(self.zone)

    async def today(self) -> list[CallStats]:
        """Today's figures (total and per category), re-read at most once per interval."""
        loop = asyncio.get_running_loop()
        cache = self._stats
        async with cache.lock:
            if loop.time() - cache.at >= self.settings.stats_interval_seconds:
                cache.value = await queries.today_stats(
                    self.db, self.now().date(), self.settings.tz, targets(self.config)
                )
                cache.at = loop.time()
            return cache.value

    async def alerts(self, snapshot: Snapshot | None = None) -> tuple[ShownAlert, ...]:
        """The alarms active now, when each began and who acknowledged it."""
        snapshot = snapshot or self.centre.snapshot()
        today = service_today(await self.today())
        active = active_alerts(snapshot, today, self.health(), self.config.alerts)
        return self.alert_book.update(active, snapshot.now)

    async def acknowledge_alert(self, key: str, username: str) -> Alert | None:
        """The alarm acknowledged, or None if it is not active now."""
        snapshot = self.centre.snapshot()
        await self.alerts(snapshot)  # the book as of now, not as of the last live picture
        return self.alert_book.acknowledge(key, username, snapshot.now)

    def operator_name(self, operator_id: str | None) -> str:
        """The name in siaga.toml (an operator since removed keeps their id)."""
        for operator in self.config.operators:
            if operator.id == operator_id:
                return operator.name
        return operator_id or "-"

    def known_operator(self, operator_id: str) -> bool:
        return any(op.id == operator_id for op in self.config.operators)
