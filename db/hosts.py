"""Connecting to one of the hosts of a (multi-host) database URL, each with its own timeout.

libpq tries the hosts of `postgresql://u@a:5432,b:5432/siaga?target_session_attrs=read-write`
in turn, each with its own connect timeout; asyncpg's timeout covers the whole list, so a
primary that swallows packets (a partition, a dead machine) would take all of it and the
standby behind it would never be asked. The record writer and the lease (docs/ha.md) connect
through a `HostRotation` instead: one host after the other, the one that took the last
connection first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import asyncpg
import structlog

from siaga.config import database_hosts, host_dsns

log = structlog.get_logger(__name__)


class HostRotation:
    # The host of each URL that took the last connection, shared by every rotation of the
    # process: once the lease has found the new primary, the console's pool starts there.
    _preferred_of: ClassVar[dict[str, int]] = {}

    def __init__(
        self, dsn: str, *, timeout: float, server_settings: Mapping[str, str] | None = None
    ) -> None:
        self._dsn = dsn
        self._hosts = host_dsns(dsn)
        self.timeout = timeout
        self._settings = dict(server_settings or {})

    async def connect(self, **options: Any) -> Any:
        """A connection to the first host that takes it (with `target_session_attrs` in the
        URL: the one that qualifies, e.g. the primary); the last host's error if none does.
        `options`: more of asyncpg.connect's keyword arguments."""
        count = len(self._hosts)
        preferred = self._preferred_of.get(self._dsn, 0)
        last_error: Exception | None = None
        for index in [(preferred + i) % count for i in range(count)]:
            try:
                conn = await asyncpg.connect(
                    self._hosts[index],
                    timeout=self.timeout,
                    server_settings=self._settings,
                    **options,
                )
            except Exception as exc:
                last_error = exc
                continue
            if index != preferred and count > 1:
                log.info("database_host_changed", host=database_hosts(self._dsn)[index])
            self._preferred_of[self._dsn] = index
            return conn
        assert last_error is not None
        raise last_error


POOL_CONNECT_TIMEOUT = 5.0  # each host's, for the console's and the AGI server's pools


async def create_pool(dsn: str, **pool_options: Any) -> asyncpg.Pool:
    """asyncpg.create_pool over a `HostRotation` of `dsn`: every new connection of the pool
    tries the hosts in turn, each with its own timeout."""
    hosts = HostRotation(dsn, timeout=POOL_CONNECT_TIMEOUT)

    async def connect(*_args: Any, loop: object = None, **options: Any) -> Any:
        return await hosts.connect(**options)  # the pool's connection and record classes

    return await asyncpg.create_pool(connect=connect, **pool_options)
