"""The local append-only journal the writer spools to while PostgreSQL is away.

One JSON line per event (`RecordEvent.to_line`), appended and fsync'd per batch. Blocking file
I/O: the writer calls these methods through `asyncio.to_thread`. Lines that cannot be replayed
(a torn last line after a crash, a corrupt line) are moved to `<journal>.rejected`, never
silently dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rejected_path = self.path.with_name(self.path.name + ".rejected")
        self._fd: int | None = None

    def open(self) -> int:
        """Open (creating) the journal, cut a torn last line, and return its size in bytes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if created:
            _fsync_dir(self.path.parent)
        self._cut_torn_tail()
        return self.size()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def size(self) -> int:
        return self.path.stat().st_size

    def append(self, lines: Sequence[str]) -> None:
        """Append lines and fsync: when this returns, they survive a crash."""
        if not lines:
            return
        if self._fd is None:
            self.open()
        assert self._fd is not None
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        view = memoryview(payload)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def read(self, offset: int, max_lines: int) -> tuple[list[str], int]:
        """Up to `max_lines` complete lines from byte `offset`, and the offset after them."""
        lines: list[str] = []
        with self.path.open("rb") as handle:
            handle.seek(offset)
            while len(lines) < max_lines:
                raw = handle.readline()
                if not raw.endswith(b"\n"):
                    break  # end of file (a partial line is only ever the torn tail)
                offset += len(raw)
                text = raw[:-1].decode("utf-8", errors="replace").strip()
                if text:
                    lines.append(text)
        return lines, offset

    def clear(self) -> None:
        """Empty the journal once everything in it is in PostgreSQL."""
        if self._fd is None:
            self.open()
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

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
        # A crash during append can leave a last line without its newline: that batch was
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
