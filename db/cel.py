"""Asterisk's own record of every call: its Channel Event Log, read back into calls.

Asterisk writes one JSON object per event to a file of its own (`cel.conf`, `cel_custom.conf`
in dialplan/templates/), whatever happens to the app or to PostgreSQL. This module is pure:
lines in, `AsteriskCall`s out (docs/architecture.md §5.1). The reconciliation (db/reconcile.py)
compares them with the `calls` rows; the chaos test compares them with everything.

What makes a channel a call to the centre, and what each event says about it:
- `APP_START` of MixMonitor in `siaga-incoming`: every call to the emergency number runs it as
  its second step, before screening and before the app or the fallback sees it, so a caller
  who hangs up in the first half second is a call too. Its `CHAN_START` is the arrival.
- `ANSWER` of that channel: answered (by the app or by the fallback).
- `APP_START` of Queue: the dialplan fallback took the call (the app was away).
- A human: in the app's path, the first `BRIDGE_ENTER` of an operator leg (a channel whose
  Stasis arguments are `operator,<call id>,<operator id>`); in the fallback's path, the caller
  entering a bridge with a queue member (the bridge peer, `PJSIP/<sip user>-...`).
- `HANGUP` of that channel: the end. Who hung up: the channel Asterisk names as the source of
  the hang-up (the caller's or their operator's), else whichever of the two hung up first;
  before an operator, the caller, unless Asterisk names another source (the app, the system).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from db.events import HangupBy

INCOMING_CONTEXT = "siaga-incoming"  # dialplan/templates/extensions.conf
FALLBACK_APP = "Queue"  # only the fallback queues a caller in the dialplan
OPERATOR_LEG = "operator"  # the first Stasis argument of an operator's leg (ari_app)

# The time of a line without parsing it: files hold days of events and most are old.
_EVENT_TIME = re.compile(r'"eventtime"\s*:\s*"?([0-9]+(?:\.[0-9]+)?)')


@dataclass(frozen=True, slots=True)
class CelEvent:
    kind: str  # CHAN_START, ANSWER, HANGUP, BRIDGE_ENTER, APP_START
    at: datetime
    unique_id: str
    channel: str
    caller_number: str = ""
    context: str = ""
    app: str = ""
    app_data: str = ""
    peer: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AsteriskCall:
    """One call as Asterisk saw it. `ended_at` None: no hang-up in the record (still up, or
    Asterisk stopped before it could write one: see `last_event_at`)."""

    call_id: str
    channel: str
    caller_number: str
    arrived_at: datetime
    answered_at: datetime | None
    connected_at: datetime | None
    operator_id: str | None
    ended_at: datetime | None
    hangup_by: HangupBy | None
    fallback: bool
    last_event_at: datetime


def event_time(line: str) -> datetime | None:
    match = _EVENT_TIME.search(line)
    return _epoch(match.group(1)) if match else None


def parse_line(line: str) -> CelEvent | None:
    """One line of the file; None for anything that is not a whole, sane event (a line cut
    short by a crash, a foreign line)."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    at = _epoch(str(raw.get("eventtime", "")))
    kind = _text(raw, "eventtype")
    unique_id = _text(raw, "uniqueid")
    if at is None or not kind or not unique_id:
        return None
    extra: Mapping[str, Any] = {}
    extra_text = _text(raw, "eventextra")
    if extra_text:
        try:
            parsed = json.loads(extra_text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            extra = parsed
    return CelEvent(
        kind=kind,
        at=at,
        unique_id=unique_id,
        channel=_text(raw, "channame"),
        caller_number=_text(raw, "num"),
        context=_text(raw, "context"),
        app=_text(raw, "appname"),
        app_data=_text(raw, "appdata"),
        peer=_text(raw, "peer"),
        extra=extra,
    )


def parse_lines(lines: Iterable[str]) -> Iterator[CelEvent]:
    for line in lines:
        event = parse_line(line)
        if event is not None:
            yield event


@dataclass
class _Channel:
    id: str
    name: str = ""
    number: str = ""
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_source: str = ""
    last_at: datetime | None = None
    is_call: bool = False
    fallback: bool = False
    leg_of: str | None = None  # an operator leg: the call's id
    leg_operator: str | None = None
    bridged_at: datetime | None = None
    queue_peer: str = ""  # the fallback: the member the caller was bridged with
    queue_bridged_at: datetime | None = None


def asterisk_calls(
    events: Iterable[CelEvent], app: str, operators_by_interface: Mapping[str, str]
) -> dict[str, AsteriskCall]:
    """The calls in `events` (in file order), by call id (the caller channel's unique id).

    `app`: the Stasis application's name; `operators_by_interface`: `PJSIP/1001` -> operator
    id, how the fallback queue's members are named."""
    channels: dict[str, _Channel] = {}
    for event in events:
        ch = channels.get(event.unique_id)
        if ch is None:
            ch = channels[event.unique_id] = _Channel(event.unique_id)
        ch.last_at = event.at
        if event.channel:
            ch.name = event.channel
        match event.kind:
            case "CHAN_START":
                ch.started_at = event.at
                ch.number = event.caller_number
            case "ANSWER":
                ch.answered_at = ch.answered_at or event.at
            case "HANGUP":
                ch.ended_at = event.at
                ch.hangup_source = str(event.extra.get("hangupsource", "") or "")
            case "APP_START":
                _app_start(ch, event, app)
            case "BRIDGE_ENTER":
                if ch.leg_of is not None:
                    ch.bridged_at = ch.bridged_at or event.at
                elif ch.is_call and ch.fallback and ch.queue_bridged_at is None:
                    ch.queue_bridged_at = event.at
                    ch.queue_peer = event.peer
    legs: dict[str, _Channel] = {}
    for ch in channels.values():
        if ch.leg_of is not None and ch.bridged_at is not None:
            first = legs.get(ch.leg_of)
            if first is None or (first.bridged_at or ch.bridged_at) > ch.bridged_at:
                legs[ch.leg_of] = ch
    by_name = {ch.name: ch for ch in channels.values() if ch.name}
    calls: dict[str, AsteriskCall] = {}
    for ch in channels.values():
        if not ch.is_call or ch.started_at is None:
            continue  # a call whose start is before the events read: not ours to judge
        leg = legs.get(ch.id)
        operator_id: str | None = None
        connected_at: datetime | None = None
        if leg is not None:
            operator_id, connected_at = leg.leg_operator, leg.bridged_at
        elif ch.queue_bridged_at is not None:
            operator_id = operators_by_interface.get(_interface(ch.queue_peer))
            connected_at = ch.queue_bridged_at if operator_id else None
            leg = by_name.get(ch.queue_peer)
        calls[ch.id] = AsteriskCall(
            call_id=ch.id,
            channel=ch.name,
            caller_number=ch.number,
            arrived_at=ch.started_at,
            answered_at=ch.answered_at,
            connected_at=connected_at,
            operator_id=operator_id,
            ended_at=ch.ended_at,
            hangup_by=_hangup_by(ch, leg if connected_at else None),
            fallback=ch.fallback,
            last_event_at=ch.last_at or ch.started_at,
        )
    return calls


def _app_start(ch: _Channel, event: CelEvent, app: str) -> None:
    if event.app == "MixMonitor" and event.context == INCOMING_CONTEXT:
        ch.is_call = True
    elif event.app == FALLBACK_APP:
        ch.fallback = True
    elif event.app == "Stasis":
        args = event.app_data.split(",")
        if len(args) >= 4 and args[0] == app and args[1] == OPERATOR_LEG:
            ch.leg_of, ch.leg_operator = args[2], args[3]


def _hangup_by(call: _Channel, leg: _Channel | None) -> HangupBy | None:
    if call.ended_at is None:
        return None
    # Asterisk names the channel that started the hang-up on every channel it took down
    # (`hangupsource`); the order of the HANGUP events within one bridge is not reliable.
    sources = [call.hangup_source] + ([leg.hangup_source] if leg is not None else [])
    for source in sources:
        if source and (source == call.name or _same_local_pair(source, call.name)):
            return HangupBy.CALLER
        if source and leg is not None and source == leg.name:
            return HangupBy.OPERATOR
    if leg is not None:
        if leg.ended_at is not None and leg.ended_at < call.ended_at:
            return HangupBy.OPERATOR
        return HangupBy.CALLER
    if call.hangup_source:
        return HangupBy.SYSTEM
    return HangupBy.CALLER


def _same_local_pair(a: str, b: str) -> bool:
    # A Local channel's two halves (…;1 and …;2) are one caller.
    return a.startswith("Local/") and a[:-2] == b[:-2]


def _interface(channel: str) -> str:
    """`PJSIP/1001-0000000a` -> `PJSIP/1001`."""
    name, _, _ = channel.rpartition("-")
    return name or channel


def _epoch(text: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key, "")
    return value if isinstance(value, str) else str(value)
