"""The disk guard: is there room left for the calls' recordings and the record journal?

A full disk must not stop 112: Asterisk answers and routes calls whether or not it can write
their recordings, and the record writer goes on without its journal. What a full disk must do
is show: /healthz says `degraded` and names the folder, and the log says so once per change.
The file systems are looked at every few seconds (`os.statvfs`, in a thread), never per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from siaga.config import DiskConfig

log = structlog.get_logger(__name__)

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LowDisk:
    """A watched folder whose file system runs low (or cannot be looked at)."""

    folder: str  # what it holds: "recordings", "journal"
    path: str
    free_bytes: int
    reason: str


def free_floor(total_bytes: int, config: DiskConfig) -> int:
    """The fewest free bytes that do not count as low: the larger of the two limits."""
    by_share = total_bytes * config.min_free_percent / 100
    return int(max(by_share, config.min_free_mib * MIB))


def low_disk(
    folder: str, path: Path, free_bytes: int, total_bytes: int, config: DiskConfig
) -> LowDisk | None:
    floor = free_floor(total_bytes, config)
    if free_bytes >= floor:
        return None
    reason = (
        f"{free_bytes / MIB:.1f} MiB free of {total_bytes / MIB:.1f} MiB, "
        f"below {floor / MIB:.1f} MiB"
    )
    return LowDisk(folder, str(path), free_bytes, reason)


def look_at(folder: str, path: Path, config: DiskConfig) -> LowDisk | None:
    """The file system holding `path`, now (blocking: run it in a thread)."""
    try:
        stats = os.statvfs(path)
    except OSError as exc:
        return LowDisk(folder, str(path), 0, f"cannot be looked at: {exc.strerror or exc}")
    # f_bavail: what an unprivileged writer may still use (root's reserve left out).
    return low_disk(
        folder, path, stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize, config
    )


class DiskGuard:
    """Looks at each watched folder every `check_interval_seconds`; `low` is what it last
    found. `folders`: what each holds -> its path."""

    def __init__(self, folders: Mapping[str, Path], config: DiskConfig) -> None:
        self.folders = dict(folders)
        self.config = config
        self.low: tuple[LowDisk, ...] = ()
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> tuple[LowDisk, ...]:
        found = await asyncio.to_thread(self._look)
        self._log_changes(found)
        self.low = found
        return found

    def _look(self) -> tuple[LowDisk, ...]:
        found = (look_at(name, path, self.config) for name, path in self.folders.items())
        return tuple(low for low in found if low is not None)

    def _log_changes(self, found: tuple[LowDisk, ...]) -> None:
        # Once per change of state, not every few seconds while a disk stays full.
        before = {low.folder for low in self.low}
        now = {low.folder for low in found}
        for low in found:
            if low.folder not in before:
                log.warning(
                    "disk.low",
                    folder=low.folder,
                    path=low.path,
                    free_bytes=low.free_bytes,
                    reason=low.reason,
                )
        for folder in sorted(before - now):
            log.info("disk.recovered", folder=folder, path=str(self.folders[folder]))

    async def start(self) -> None:
        await self.check()
        self._task = asyncio.create_task(self._run(), name="disk-guard")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_interval_seconds)
            try:
                await self.check()
            except Exception:  # a guard that dies would leave /healthz saying ok for good
                log.exception("disk.check_failed")
