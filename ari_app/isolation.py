"""Whether the active app is cut off from every other machine of the topology (docs/ha.md).

With [ha] and several nodes behind an edge, the topology has at least three machines: the edge
and two nodes. An active app that has reached none of the others (no other node's ARI, not the
edge) for `after` seconds is on the losing side of a partition. It stops acting: the others
are taking over, and its lease alone cannot tell it so when the PostgreSQL primary it holds
the lock on is on its own machine and cut off with it (pg_auto_failover demotes such a primary
only after its keeper's partition timeout). Pure: fed a clock and what each round of probes
found, by the app's node watch.
"""

from __future__ import annotations

import structlog

log = structlog.get_logger(__name__)


class Isolation:
    """Alone since when, and whether that has lasted `after` seconds."""

    def __init__(self, after: float) -> None:
        self.after = after
        self.alone_since: float | None = None

    def observe(self, now: float, *, peers_answered: int) -> bool:
        """One round of probes at `now`: how many other machines answered. True once the app
        has been alone for `after` seconds (then it must stop acting)."""
        if peers_answered > 0:
            if self.alone_since is not None:
                log.info("app.isolation_over", alone_for=round(now - self.alone_since, 3))
            self.alone_since = None
            return False
        if self.alone_since is None:
            self.alone_since = now
            log.warning("app.alone", after=self.after)
        return now - self.alone_since >= self.after
