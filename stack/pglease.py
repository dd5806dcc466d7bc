"""The lease's IO shell: a PostgreSQL session-level advisory lock on a connection of its own.

Whoever holds `pg_try_advisory_lock(lock_key)` may become the active app (stack/lease.py
decides when). The lock lives as long as the session: a killed app's socket is closed by its
kernel and the server lets the lock go at once; a partitioned app's session is dropped by the
server's TCP keepalives (set here, per session). Neither timing is trusted for safety: the
machine's lease and margin are (docs/ha.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from db.hosts import HostRotation
from stack.lease import (
    BecomeActive,
    CheckFailed,
    CheckOk,
    Lease,
    LeaseCommand,
    LeaseEvent,
    LeaseState,
    LockAcquired,
    LockLost,
    StopActing,
    Tick,
)

log = structlog.get_logger(__name__)

HOLDS_LOCK = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks"
    " WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted)"
)


def keepalive_settings(lease_seconds: float) -> dict[str, str]:
    """The lock session's server-side TCP settings: a session whose app went silent (a
    partition) is dropped, and its lock let go, a few seconds after the lease ran out."""
    idle = max(1, round(lease_seconds))
    return {
        "tcp_keepalives_idle": str(idle),
        "tcp_keepalives_interval": "1",
        "tcp_keepalives_count": "2",
        "tcp_user_timeout": str((idle + 2) * 1000),
        "application_name": "siaga-lease",
    }


class PgLease:
    """Holds (or waits for) the advisory lock, checks it every quarter lease, and calls
    `on_active` when this app becomes active and `on_stop(reason)` the moment it must stop."""

    def __init__(
        self,
        dsn: str,
        lock_key: int,
        lease_seconds: float,
        *,
        on_active: Callable[[], None],
        on_stop: Callable[[str], None],
        may_acquire: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._key = lock_key
        self.machine = Lease(lease_seconds)
        self.interval = lease_seconds / 4
        self._hosts = HostRotation(
            dsn, timeout=lease_seconds, server_settings=keepalive_settings(lease_seconds)
        )
        self._on_active = on_active
        self.on_stop = on_stop  # may be replaced once there is something to stop
        # Asked before each try for the lock: a standby that reaches no other machine of the
        # topology (stack/peers.py) is on the losing side of a partition and does not try.
        self._may_acquire = may_acquire
        self._conn: asyncpg.Connection | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> LeaseState:
        return self.machine.state

    def running(self) -> bool:
        """Whether the lease's loop still runs (a standby's watchdog asks)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lease")

    async def stop(self) -> None:
        """Let the lock go (the process is ending)."""
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def feed(self, event: LeaseEvent) -> None:
        for command in self.machine.handle(event):
            self._execute(command)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.machine.next_due()
        if due is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(due, lambda: self.feed(Tick(self._now())))

    def _execute(self, command: LeaseCommand) -> None:
        match command:
            case BecomeActive():
                log.info("lease.active", key=self._key)
                self._on_active()
            case StopActing(reason=reason):
                log.error("lease.lost", key=self._key, reason=reason)
                self.on_stop(reason)

    async def _run(self) -> None:
        while self.machine.state is not LeaseState.STOPPED:
            if self.machine.state is LeaseState.STANDBY:
                await self._close()  # a lock we may still hold but gave up on: let it go
                if not await self._allowed() or not await self._try_acquire():
                    await asyncio.sleep(self.interval)
                continue
            sent = self._now()
            self.feed(await self._check(sent))
            await asyncio.sleep(max(0.0, sent + self.interval - self._now()))
        await self._close()

    async def _allowed(self) -> bool:
        if self._may_acquire is None:
            return True
        try:
            return await self._may_acquire()
        except Exception as exc:  # whatever it is, the loop goes on
            log.warning("lease.peers_unknown", error=f"{type(exc).__name__}: {exc}")
            return False

    async def _try_acquire(self) -> bool:
        try:
            if self._conn is None or self._conn.is_closed():
                # Each host its own timeout: a partitioned primary must not use it all up.
                self._conn = await self._hosts.connect()
                self._conn.add_termination_listener(self._terminated)
            async with asyncio.timeout(self.interval * 4):
                got = bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key))
        except Exception as exc:
            # Any failure (refused, timed out, a standby that is not read-write yet...) means
            # "not now": the loop must go on, or this standby would never take over.
            log.warning("lease.database_unreachable", error=f"{type(exc).__name__}: {exc}")
            await self._close()
            return False
        if got:
            self.feed(LockAcquired(self._now()))
        return got

    async def _check(self, sent: float) -> LeaseEvent:
        conn = self._conn
        if conn is None or conn.is_closed():
            return LockLost(self._now())
        try:
            async with asyncio.timeout(self.interval):
                holds = bool(await conn.fetchval(HOLDS_LOCK))
        except TimeoutError:
            return CheckFailed(self._now())
        except Exception:  # whatever it is, the lock can no longer be vouched for
            return LockLost(self._now())
        return CheckOk(sent) if holds else LockLost(self._now())

    def _terminated(self, _conn: object) -> None:
        # The server ended the session (terminated, restarted) or the socket closed: the lock
        # is gone now, not at the next check.
        self.feed(LockLost(self._now()))

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._terminated)
            conn.terminate()
