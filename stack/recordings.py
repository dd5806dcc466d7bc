"""Whether each call's recording was written, told to its records.

The dialplan records every call with MixMonitor into `<recordings>/<call id>.wav` (8 kHz
16-bit mono). On a full disk Asterisk goes on with the call and only logs it ("Bad write",
"Natural write failed"): a call that starts on a full disk leaves a file of 0 bytes (not even
the WAV header), a call during which the disk fills leaves a recording cut where it filled.
Nothing tells the app, so it looks: a few seconds after a call's end is recorded (MixMonitor
has closed the file by then), a call whose recording is missing, holds no audio, or misses
more than `MAY_MISS` of the time since its arrival (and more than `MAY_MISS_SECONDS`) gets the
flag `recording_failed` in its records, which the call log shows and filters on. (MixMonitor
starts before the app hears of the call, so a whole recording is a little longer than that.)

`RecordingCheck` is a journal in front of the record writer: everything written goes through
unchanged, whoever ended the call (the app, or the dialplan fallback while the app was away).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from pathlib import Path
from typing import Protocol

import structlog

from db.events import RECORDING_FAILED, EventKind, Facts, RecordEvent
from db.reconcile import on_node

log = structlog.get_logger(__name__)

WAV_HEADER_BYTES = 44  # what format_wav writes before the first sample
WAV_BYTES_PER_SECOND = 8000 * 2
# A recording may run short of the call by a little (the first and last frames) without having
# failed; more than this share of the call, and more than this many seconds, is a cut.
MAY_MISS = 0.25
MAY_MISS_SECONDS = 5.0
# Arrivals kept for calls not yet ended: more than this, and the oldest is forgotten (a call
# whose end never comes through here must not hold memory for good).
MAX_OPEN_CALLS = 10_000
_CALL_ENDS = frozenset({EventKind.CALL_ENDED, EventKind.CALL_ABANDONED})


class Journal(Protocol):
    def write(self, event: RecordEvent) -> None: ...


def recording_of(recordings_dir: Path, call_id: str) -> Path:
    return recordings_dir / f"{call_id}.wav"


def recorded_seconds(path: Path) -> float | None:
    """The seconds of audio the recording holds; None when there is no recording (blocking)."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    return max(0, size - WAV_HEADER_BYTES) / WAV_BYTES_PER_SECOND


def recording_failed(recorded: float | None, lasted: float | None) -> bool:
    """`recorded`: seconds of audio in the recording, None if there is none. `lasted`: seconds
    from the call's arrival to its end, None if unknown (a call adopted after a restart)."""
    if not recorded:
        return True
    if lasted is None:
        return False
    missing = lasted - recorded
    return missing > max(MAY_MISS_SECONDS, MAY_MISS * lasted)


class RecordingCheck:
    """`node`: this machine's node of several (docs/ha.md); only its own calls' recordings are
    in `recordings_dir` (another node's are on that node's disk, and are not judged here)."""

    def __init__(
        self,
        journal: Journal,
        recordings_dir: Path,
        *,
        after_seconds: float = 5.0,
        node: str | None = None,
    ):
        self.journal = journal
        self.recordings_dir = recordings_dir
        self.node = node
        self.after_seconds = after_seconds
        self._arrived: dict[str, datetime] = {}  # call id -> when it arrived, till it ends
        self._checks: dict[str, asyncio.Task[None]] = {}  # call id -> its pending check
        self.failures = 0  # recordings found failed since start (served at /metrics)

    def write(self, event: RecordEvent) -> None:
        self.journal.write(event)
        call_id = event.call_id
        if not call_id or not on_node(call_id, self.node):
            return
        if event.kind is EventKind.CALL_ARRIVED:
            self._arrived.setdefault(call_id, event.at)
            if len(self._arrived) > MAX_OPEN_CALLS:
                del self._arrived[next(iter(self._arrived))]
        elif event.kind in _CALL_ENDS and call_id not in self._checks:
            arrived = self._arrived.pop(call_id, None)
            lasted = (event.at - arrived).total_seconds() if arrived else None
            self._checks[call_id] = asyncio.get_running_loop().create_task(
                self._check(call_id, lasted), name=f"recording-check-{call_id}"
            )

    async def _check(self, call_id: str, lasted: float | None) -> None:
        try:
            await asyncio.sleep(self.after_seconds)
            path = recording_of(self.recordings_dir, call_id)
            recorded = await asyncio.to_thread(recorded_seconds, path)
            if recording_failed(recorded, lasted):
                self.failures += 1
                log.warning(
                    "recording.failed",
                    call_id=call_id,
                    path=str(path),
                    recorded_seconds=recorded,
                    call_seconds=lasted,
                )
                self.journal.write(Facts.flag_set(RECORDING_FAILED).stamp(call_id=call_id))
        finally:
            del self._checks[call_id]

    async def close(self) -> None:
        """Let the checks still waiting finish (a call ended just before a stop is checked
        too), then stop: at most `after_seconds` and a little more. Write to the journal after
        this no more."""
        pending = list(self._checks.values())
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.after_seconds + 2.0)
            for task in late:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
