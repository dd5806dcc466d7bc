"""The record writer's local write-ahead journal: every event is appended here, and fsync'd,
before it counts as durable; PostgreSQL gets it afterwards.

One JSON line per event (`RecordEvent.to_line`), appended and fsync'd per group. Positions are
logical byte offsets that only grow while the journal is open: `cut(offset)` forgets what lies
before `offset` (it is in PostgreSQL) without moving the positions of what follows, so the
writer can keep them in memory.

Blocking file I/O: the writer calls these methods through `asyncio.to_thread`, from two tasks
(the appender and the replay), so each method holds a lock. Lines that cannot be replayed (a
torn last line after a crash, a corrupt line) are moved to `<journal>.rejected`, never silently
dropped.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_COPY_CHUNK = 1 << 20


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rejected_path = self.path.with_name(self.path.name + ".rejected")
        self._compacting_path = self.path.with_name(self.path.name + ".cut")
        self._fd: int | None = None
        self._lock = threading.RLock()
        self._start = 0  # logical offset of the file's first byte
        self._end = 0  # logical offset after the last complete append
        self._dirty = False  # a failed append may have left bytes after _end

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    @property
    def start(self) -> int:
        return self._start

    @property
    def end(self) -> int:
        return self._end

    def open(self) -> int:
        """Open (creating) the journal, cut a torn last line, and return its size in bytes."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A cut interrupted before its rename: the journal itself is still whole.
            self._compacting_path.unlink(missing_ok=True)
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if created:
                _fsync_dir(self.path.parent)
            self._cut_torn_tail()
            size = self.size()
            self._start, self._end, self._dirty = 0, size, False
            return size

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def size(self) -> int:
        return self.path.stat().st_size

    def append(self, lines: Sequence[str]) -> list[int]:
        """Append lines and fsync: when this returns, they survive a crash. Returns the offset
        after each line. A failed append leaves nothing behind for the next one."""
        if not lines:
            return []
        with self._lock:
            if self._fd is None:
                self.open()
            assert self._fd is not None
            if self._dirty:
                os.ftruncate(self._fd, self._end - self._start)
                self._dirty = False
            encoded = [line.encode("utf-8") + b"\n" for line in lines]
            view = memoryview(b"".join(encoded))
            self._dirty = True
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
            self._dirty = False
            ends = list(itertools.accumulate((len(b) for b in encoded), initial=self._end))[1:]
            self._end = ends[-1]
            return ends

    def read(self, offset: int, max_lines: int, until: int | None = None) -> tuple[list[str], int]:
        """Up to `max_lines` complete lines from `offset` (not past `until`), and the offset
        after them."""
        with self._lock:
            limit = self._end if until is None else min(until, self._end)
            lines: list[str] = []
            with self.path.open("rb") as handle:
                handle.seek(offset - self._start)
                while len(lines) < max_lines and offset < limit:
                    raw = handle.readline(limit - offset)
                    if not raw.endswith(b"\n"):
                        break  # a partial line is only ever the torn tail
                    offset += len(raw)
                    text = raw[:-1].decode("utf-8", errors="replace").strip()
                    if text:
                        lines.append(text)
            return lines, offset

    def cut(self, offset: int) -> None:
        """Forget everything before `offset`: it is in PostgreSQL. Emptying the journal is a
        truncation; keeping a tail copies it to a new file renamed over the journal, so that a
        crash leaves either file whole."""
        with self._lock:
            if self._fd is None or offset <= self._start:
                return
            if offset >= self._end:
                # No fsync: until the next append's, a crash brings back lines PostgreSQL has,
                # which a replay commits again harmlessly.
                os.ftruncate(self._fd, 0)
                self._start = self._end
                self._dirty = False
                return
            try:
                self._copy_tail(offset)
                os.rename(self._compacting_path, self.path)
            except BaseException:
                self._compacting_path.unlink(missing_ok=True)
                raise
            _fsync_dir(self.path.parent)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            self._start = offset
            self._dirty = False

    def _copy_tail(self, offset: int) -> None:
        fd = os.open(self._compacting_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with self.path.open("rb") as source:
                source.seek(offset - self._start)
                left = self._end - offset
                while left > 0:
                    chunk = source.read(min(left, _COPY_CHUNK))
                    if not chunk:
                        raise OSError(f"journal shorter than expected: {left} bytes missing")
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                    left -= len(chunk)
            os.fsync(fd)
        finally:
            os.close(fd)

    def reject(self, lines: Sequence[str], reason: str) -> None:
        """Keep lines that cannot be written to PostgreSQL, with why, for a human to see."""
        if not lines:
            return
        stamp = datetime.now(UTC).isoformat()
        with self.rejected_path.open("a", encoding="utf-8") as handle:
            for line in lines:
                handle.write(f"# {stamp} {reason}\n{line}\n")
            handle.flush()
            os.fsync(handle.fileno())
        log.error(
            "journal_lines_rejected", count=len(lines), reason=reason, file=str(self.rejected_path)
        )

    def _cut_torn_tail(self) -> None:
        # A crash during append can leave a last line without its newline: that group was
        # never acknowledged, but keep its bytes in the rejected file all the same.
        size = self.size()
        if size == 0:
            return
        with self.path.open("rb") as handle:
            block = 1 << 16
            end = size
            while end > 0:
                start = max(0, end - block)
                handle.seek(start)
                chunk = handle.read(end - start)
                if end == size and chunk.endswith(b"\n"):
                    return
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    keep = start + newline + 1
                    break
                end = start
            else:
                keep = 0
            handle.seek(keep)
            torn = handle.read()
        self.reject([torn.decode("utf-8", errors="replace")], "torn last line (crash)")
        os.truncate(self.path, keep)
        if self._fd is not None:
            os.fsync(self._fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
