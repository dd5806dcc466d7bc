"""What the call actors write reaches PostgreSQL as documented: a caller who gave up in the queue
gets a `callbacks` row with their place in line (the ACD's position, in `call_abandoned`)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from shell_support import centre, digit, hangup, stasis_start

from db.writer import RecordWriter


async def test_an_abandoned_caller_s_callback_row_has_their_position(
    pg_dsn: str, tmp_path: Path
) -> None:
    c = centre(operators=[])  # nobody to answer: the callers wait, second and third in line
    for call_id in ("q1", "q2", "q3"):
        await c.send(stasis_start(call_id), digit(call_id, "1"))
    await c.send(hangup("q3"), hangup("q2"))

    writer = RecordWriter(pg_dsn, tmp_path / "journal.jsonl")
    await writer.start()
    for event in c.journal.events:
        writer.write(event)
    await writer.wait_replayed(timeout=30)
    await writer.close()

    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch("SELECT call_id, position FROM callbacks ORDER BY call_id")
        queued = await conn.fetch("SELECT call_id, outcome FROM calls ORDER BY call_id")
    finally:
        await conn.close()
    assert [(r["call_id"], r["position"]) for r in rows] == [("q2", 2), ("q3", 3)]
    assert [(r["call_id"], r["outcome"]) for r in queued] == [
        ("q1", "ongoing"),
        ("q2", "abandoned"),
        ("q3", "abandoned"),
    ]
