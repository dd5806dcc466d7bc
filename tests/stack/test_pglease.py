"""The lease's PostgreSQL shell (stack/pglease.py) on the test session's real PostgreSQL: one
holder at a time, the holder stops the moment its lock session is terminated, and the next
one acts only after the lease and the margin."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

from stack.lease import STOP_MARGIN_SECONDS, LeaseState
from stack.pglease import PgLease

LEASE = 0.8
KEY = 4242


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []
        self.changed = asyncio.Event()

    def note(self, name: str, what: str) -> None:
        self.events.append((name, what, asyncio.get_running_loop().time()))
        self.changed.set()

    def lease(self, name: str, dsn: str) -> PgLease:
        return PgLease(
            dsn,
            KEY,
            LEASE,
            on_active=lambda: self.note(name, "active"),
            on_stop=lambda reason: self.note(name, "stop"),
        )

    async def until(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_one_holder_then_the_other_once_the_first_lost_its_session(pg_empty_dsn: str):
    log = Log()
    first, second = log.lease("first", pg_empty_dsn), log.lease("second", pg_empty_dsn)
    first.start()
    await log.until(1)
    second.start()
    try:
        await asyncio.sleep(LEASE * 3)
        assert [(n, what) for n, what, _ in log.events] == [("first", "active")]
        assert second.state is LeaseState.STANDBY

        conn = await asyncpg.connect(pg_empty_dsn)
        try:
            # The lock is let go somewhere between these two: the second may take it before
            # the terminating query has answered.
            before = asyncio.get_running_loop().time()
            terminated = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted"
            )
            at = asyncio.get_running_loop().time()
        finally:
            await conn.close()
        await log.until(3)
    finally:
        await first.stop()
        await second.stop()

    assert terminated == 1
    (_, _, _), (stopped, stop, stopped_at), (took, active, active_at) = log.events
    assert (stopped, stop, took, active) == ("first", "stop", "second", "active")
    assert stopped_at - at < 0.2  # at once: the session's end, not the next check
    assert active_at - before >= LEASE + STOP_MARGIN_SECONDS
    assert active_at - at < LEASE + STOP_MARGIN_SECONDS + 1.0  # one poll, one check
    assert first.state is LeaseState.STOPPED


async def test_a_standby_waits_while_the_database_is_unreachable():
    log = Log()
    lease = log.lease("alone", "postgresql://nobody@127.0.0.1:1/none")
    lease.start()
    await asyncio.sleep(LEASE * 2)
    assert lease.running()
    await lease.stop()
    assert log.events == []
    assert lease.state is LeaseState.STANDBY


async def test_a_standby_behind_a_silent_first_host_takes_the_lease_from_the_next(
    pg_empty_dsn: str, behind_a_silent_host: Callable[[str], str]
):
    # The primary partitioned away swallows the connection; the promoted standby answers.
    log = Log()
    lease = log.lease("b", behind_a_silent_host(pg_empty_dsn))
    lease.start()
    try:
        await log.until(1, timeout=LEASE * 2 + STOP_MARGIN_SECONDS + 3)
    finally:
        await lease.stop()
    assert [what for _, what, _ in log.events] == ["active"]


async def test_a_standby_keeps_trying_while_the_database_is_not_read_write_yet(pg_empty_dsn: str):
    # A standby being promoted refuses read-write sessions (asyncpg raises an error of its own,
    # TargetServerAttributeNotMatched): the loop must go on and take the lease once it is.
    admin = await asyncpg.connect(pg_empty_dsn)
    name = await admin.fetchval("SELECT current_database()")
    await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    log = Log()
    lease = log.lease("b", f"{pg_empty_dsn}?target_session_attrs=read-write")
    lease.start()
    try:
        await asyncio.sleep(LEASE * 2)
        assert lease.running() and log.events == []
        await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await log.until(1, timeout=LEASE * 3 + STOP_MARGIN_SECONDS)
    finally:
        await lease.stop()
        await admin.close()
    assert [what for _, what, _ in log.events] == ["active"]


async def test_a_standby_that_reaches_no_other_machine_does_not_try_for_the_lease(
    pg_empty_dsn: str,
):
    # On the losing side of a partition (stack/peers.py), a free lock is still not taken.
    log = Log()
    asked: list[bool] = []
    reachable = False

    async def may_acquire() -> bool:
        asked.append(reachable)
        return reachable

    lease = PgLease(
        pg_empty_dsn,
        KEY,
        LEASE,
        on_active=lambda: log.note("alone", "active"),
        on_stop=lambda reason: log.note("alone", "stop"),
        may_acquire=may_acquire,
    )
    lease.start()
    try:
        await asyncio.sleep(LEASE * 3)
        assert len(asked) >= 3 and lease.state is LeaseState.STANDBY and log.events == []
        reachable = True  # the link is back
        await log.until(1)
        assert [(n, what) for n, what, _ in log.events] == [("alone", "active")]
    finally:
        await lease.stop()
