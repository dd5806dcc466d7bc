"""The lease that makes one Siaga app active and the other a standby: a pure state machine.

Events (what the lock session said, with the time) in, commands out; the PostgreSQL shell is
stack/pglease.py, the design docs/ha.md and docs/architecture.md.

    STANDBY --LockAcquired--> TAKING_OVER --(lease + margin held)--> ACTIVE
       ^                          |                                    |
       +------- LockLost ---------+      LockLost, or no check answered for `lease`
                                                                       v
                                                                    STOPPED (final)

Safety without trusting the server to drop a dead session's lock late enough: the old holder
stops acting at most `lease` after its last answered check, and that check was answered before
the server let the lock go; a new holder waits `lease + margin` after getting the lock before
it acts. So however early the lock is let go (a terminated backend, a keepalive), the two
never act at once. A stopped app does not come back: its process exits and starts again as a
standby (systemd's Restart=), with nothing of the old state left to trust.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

# Time for the old holder to stop once its lease ran out (cancel its calls' work, close ARI).
STOP_MARGIN_SECONDS = 0.5


class LeaseState(enum.Enum):
    STANDBY = "standby"
    TAKING_OVER = "taking_over"
    ACTIVE = "active"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class LockAcquired:
    at: float


@dataclass(frozen=True, slots=True)
class LockLost:
    """The lock session is gone (closed, terminated, failed)."""

    at: float


@dataclass(frozen=True, slots=True)
class CheckOk:
    """The lock session answered that it holds the lock; `at` is when the check was sent."""

    at: float


@dataclass(frozen=True, slots=True)
class CheckFailed:
    """A check got no answer in time (the session may still be alive)."""

    at: float


@dataclass(frozen=True, slots=True)
class Tick:
    at: float


LeaseEvent = LockAcquired | LockLost | CheckOk | CheckFailed | Tick


@dataclass(frozen=True, slots=True)
class BecomeActive:
    pass


@dataclass(frozen=True, slots=True)
class StopActing:
    reason: str


LeaseCommand = BecomeActive | StopActing


class Lease:
    """Whether this app may act, from what its lock session says."""

    def __init__(self, lease_seconds: float, margin_seconds: float = STOP_MARGIN_SECONDS) -> None:
        self.lease_seconds = lease_seconds
        self.margin_seconds = margin_seconds
        self.state = LeaseState.STANDBY
        self._acquired_at = 0.0
        self._last_ok = 0.0

    @property
    def acting(self) -> bool:
        return self.state is LeaseState.ACTIVE

    def next_due(self) -> float | None:
        """When a Tick must come at the latest, for the machine to act on time."""
        match self.state:
            case LeaseState.TAKING_OVER:
                return min(
                    self._acquired_at + self.lease_seconds + self.margin_seconds, self._expiry
                )
            case LeaseState.ACTIVE:
                return self._expiry
            case _:
                return None

    @property
    def _expiry(self) -> float:
        return self._last_ok + self.lease_seconds

    def handle(self, event: LeaseEvent) -> list[LeaseCommand]:
        old = self.state
        commands = self._handle(event)
        if self.state is not old:
            log.info("lease.state", old=old.value, new=self.state.value, at=round(event.at, 3))
        return commands

    def _handle(self, event: LeaseEvent) -> list[LeaseCommand]:
        if self.state is LeaseState.STOPPED:
            return []
        match event:
            case LockAcquired(at=at) if self.state is LeaseState.STANDBY:
                self.state = LeaseState.TAKING_OVER
                self._acquired_at = self._last_ok = at
                return self._handle(Tick(at))
            case LockLost():
                return self._lost("lock session lost")
            case CheckOk(at=at) if self.state is not LeaseState.STANDBY:
                self._last_ok = max(self._last_ok, at)
                return self._handle(Tick(at))
            case CheckFailed(at=at) | Tick(at=at) if self.state is not LeaseState.STANDBY:
                if at >= self._expiry:
                    return self._lost(f"no check answered for {self.lease_seconds} s")
                taken_at = self._acquired_at + self.lease_seconds + self.margin_seconds
                if self.state is LeaseState.TAKING_OVER and at >= taken_at:
                    self.state = LeaseState.ACTIVE
                    return [BecomeActive()]
        return []

    def _lost(self, reason: str) -> list[LeaseCommand]:
        if self.state is LeaseState.ACTIVE:
            self.state = LeaseState.STOPPED
            return [StopActing(reason)]
        self.state = LeaseState.STANDBY  # never acted: simply wait for the lock again
        return []
