"""A writer in a process of its own, for the crash tests (which kill it with SIGKILL).

usage: db_writer_child.py DSN JOURNAL MODE [COUNT]
  spool COUNT  write COUNT events (ids uuid5(i)) with DSN unreachable, flush, print
               "SPOOLED <n>", then wait to be killed
  replay       start (which replays JOURNAL), print "REPLAYED <n>" after each replayed batch,
               slowly, so the parent can kill it half-way
  call         an answered call's events up to its connection, flush, print "FLUSHED"; then
               its end, and without a flush, half a second later print "ENDED" (commits wait
               a minute to gather: whatever survives the kill is the journal's doing)
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from db import events as ev
from db.events import EventKind, HangupBy, RecordEvent
from db.writer import BatchPath, BatchReport, RecordWriter

NAMESPACE = uuid.UUID("6f1c3f5e-5a8e-4d0b-9a57-112112112112")
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def event(i: int) -> RecordEvent:
    kind = EventKind.CALL_ARRIVED if i % 4 == 0 else EventKind.IVR_STEP
    return RecordEvent(
        event_id=uuid.uuid5(NAMESPACE, str(i)),
        kind=kind,
        call_id=f"crash-{i // 4}",
        operator_id=None,
        at=T0 + timedelta(milliseconds=i),
        data={"caller_number": "112", "i": i} if kind is EventKind.CALL_ARRIVED else {"i": i},
    )


async def spool(dsn: str, journal: Path, count: int) -> None:
    writer = RecordWriter(dsn, journal, retry_min_s=60)
    await writer.start()
    for i in range(count):
        writer.write(event(i))
    await writer.flush()
    print(f"SPOOLED {writer.spooled}", flush=True)
    await asyncio.Event().wait()


async def replay(dsn: str, journal: Path) -> None:
    def progress(report: BatchReport) -> None:
        if report.path is BatchPath.REPLAY:
            print(f"REPLAYED {report.size}", flush=True)
            time.sleep(0.05)

    writer = RecordWriter(dsn, journal, max_batch=200, on_batch=progress)
    await writer.start()
    await writer.wait_replayed()
    print("DONE", flush=True)
    await asyncio.Event().wait()


def answered_call(call_id: str) -> list[RecordEvent]:
    s = timedelta(seconds=1)
    return [
        ev.call_arrived(call_id, "+6281200001234", at=T0),
        ev.call_queued(call_id, category="medical", position=1, at=T0 + s),
        ev.call_offered(call_id, "op1", at=T0 + 2 * s),
        ev.call_connected(call_id, "op1", at=T0 + 3 * s),
        ev.call_ended(call_id, HangupBy.CALLER, at=T0 + 60 * s),
    ]


async def call(dsn: str, journal: Path) -> None:
    writer = RecordWriter(dsn, journal, gather_ms=60_000)
    await writer.start()
    *answered, ended = answered_call("killed-call")
    for event in answered:
        writer.write(event)
    await writer.flush()
    print("FLUSHED", flush=True)
    writer.write(ended)
    await asyncio.sleep(0.5)
    print("ENDED", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    dsn, journal, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    if mode == "spool":
        asyncio.run(spool(dsn, journal, int(sys.argv[4])))
    elif mode == "call":
        asyncio.run(call(dsn, journal))
    else:
        asyncio.run(replay(dsn, journal))


if __name__ == "__main__":
    main()
