"""Small helpers shared by the db tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg

from db.events import RecordEvent
from db.writer import RecordWriter


async def write_all(
    dsn: str, events: Iterable[RecordEvent], spool: Path, **options: Any
) -> RecordWriter:
    """Write events through a real RecordWriter and wait until all are in PostgreSQL."""
    writer = RecordWriter(dsn, spool, **options)
    await writer.start()
    for event in events:
        writer.write(event)
    await writer.flush(timeout=30)
    await writer.wait_replayed(timeout=30)
    await writer.close()
    return writer


async def fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(query, *args)
        return rows
    finally:
        await conn.close()


async def fetchval(dsn: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def fill(disk: Path) -> Path:
    """Fill the disk up with one file; delete it to free the space again."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    return filler
