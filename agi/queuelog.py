"""Reconciling fallback calls from Asterisk's queue_log, for the time the whole app was down.

Asterisk writes one line per queue event, `epoch|callid|queue|agent|event|data...`, whether or
not anyone listens to AMI. At start the stack reads the recent lines of the `siaga-fallback`
queue and writes the calls' facts with the same event ids the AMI recorder gives them
(`db.events.fact_id`): a call recorded both ways, or reconciled twice, is in the records once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from agi.fallback import FALLBACK_QUEUE, Journal, epoch
from db.events import FALLBACK_FLAG, EventKind, HangupBy, RecordEvent, fact_id
from dialplan.render import config_safe
from siaga.config import Config

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class QueueLogLine:
    at: datetime
    call_id: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]

    def field(self, index: int) -> str:
        return self.data[index] if index < len(self.data) else ""


def parse_line(line: str) -> QueueLogLine | None:
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5:
        return None
    at = epoch(parts[0])
    if at is None:
        return None
    return QueueLogLine(at, parts[1], parts[2], parts[3], parts[4], tuple(parts[5:]))


def operators_by_member(config: Config) -> dict[str, str]:
    """queue_log names members by their member name (queues.conf) or interface."""
    names: dict[str, str | None] = {}
    for op in config.operators:
        for key in (config_safe(op.name), op.id, f"PJSIP/{op.sip_user}"):
            # Two operators with the same name: that name says nothing.
            names[key] = op.id if names.get(key, op.id) == op.id else None
    return {key: op_id for key, op_id in names.items() if op_id is not None}


def _number(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


def events_from(
    lines: Iterable[QueueLogLine], operators: Mapping[str, str], queue: str = FALLBACK_QUEUE
) -> list[RecordEvent]:
    out: list[RecordEvent] = []
    for line in lines:
        if line.queue != queue or not line.call_id or line.call_id == "NONE":
            continue
        cid = line.call_id
        match line.event:
            case "ENTERQUEUE":
                out.append(
                    RecordEvent.new(
                        EventKind.CALL_ARRIVED,
                        call_id=cid,
                        at=line.at,
                        event_id=fact_id(cid, "arrived"),
                        caller_number=line.field(1),
                        flags=[FALLBACK_FLAG],
                    )
                )
                out.append(
                    RecordEvent.new(
                        EventKind.CALL_QUEUED,
                        call_id=cid,
                        at=line.at,
                        event_id=fact_id(cid, "queued"),
                        position=_number(line.field(2)),
                    )
                )
            case "CONNECT":
                out.append(
                    RecordEvent.new(
                        EventKind.CALL_CONNECTED,
                        call_id=cid,
                        operator_id=operators.get(line.agent, line.agent or "unknown"),
                        at=line.at,
                        event_id=fact_id(cid, "connected"),
                    )
                )
            case "COMPLETECALLER" | "COMPLETEAGENT":
                by = HangupBy.CALLER if line.event == "COMPLETECALLER" else HangupBy.OPERATOR
                out.append(_ended(cid, line.at, by))
            case "ABANDON":
                out.append(
                    RecordEvent.new(
                        EventKind.CALL_ABANDONED,
                        call_id=cid,
                        at=line.at,
                        event_id=fact_id(cid, "abandoned"),
                        position=_number(line.field(0)),
                        wait_seconds=_number(line.field(2)),
                    )
                )
                out.append(_ended(cid, line.at, HangupBy.CALLER))
    return out


def _ended(call_id: str, at: datetime, by: HangupBy) -> RecordEvent:
    return RecordEvent.new(
        EventKind.CALL_ENDED,
        call_id=call_id,
        at=at,
        event_id=fact_id(call_id, "ended"),
        hangup_by=by.value,
        reason="normal",
    )


def read_lines(path: Path, since: datetime | None) -> list[QueueLogLine]:
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            line = parse_line(raw)
            if line is not None and (since is None or line.at >= since):
                out.append(line)
    return out


async def reconcile_queue_log(
    path: Path, config: Config, journal: Journal, *, since: datetime | None = None
) -> int:
    """Write the fallback calls queue_log holds (since `since`); returns how many facts."""
    lines = await asyncio.to_thread(read_lines, path, since)
    events = events_from(lines, operators_by_member(config))
    for event in events:
        journal.write(event)
    calls = len({e.call_id for e in events})
    log.info("fallback.reconciled", path=str(path), facts=len(events), calls=calls)
    return len(events)
