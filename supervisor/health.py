"""What the running stack says of itself: `/healthz` answers it, and the console raises an
alarm from it (supervisor/alerts.py)."""

from __future__ import annotations

from dataclasses import dataclass

from supervisor.disk import LowDisk


@dataclass(frozen=True, slots=True)
class Health:
    ari_connected: bool
    database_reachable: bool
    journal_ok: bool = True  # the record writer's journal can be written
    low_disks: tuple[LowDisk, ...] = ()
    # With a lease ([ha], docs/ha.md): "active" or "standby"; None on the single box.
    role: str | None = None
    # With several Asterisk nodes (docs/ha.md): each one's ARI connection. The app is up
    # while one is connected; a node it cannot reach takes no calls from it.
    nodes: tuple[tuple[str, bool], ...] = ()

    @property
    def nodes_down(self) -> tuple[str, ...]:
        return tuple(name for name, connected in self.nodes if not connected)

    @property
    def ok(self) -> bool:
        return self.ari_connected and self.database_reachable

    @property
    def degraded(self) -> bool:
        return not self.journal_ok or bool(self.low_disks) or bool(self.nodes_down)

    @property
    def status(self) -> str:
        if self.role == "standby":
            return "standby"  # not serving: a proxy in front sends the console elsewhere
        if not self.ok:
            return "unavailable"
        return "degraded" if self.degraded else "ok"
