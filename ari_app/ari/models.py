"""Typed snapshots of ARI resources (Channel, Bridge, Playback, ...), as Asterisk 22 sends them.

A snapshot is what Asterisk said at one moment; it is never updated in place. Each model
has `from_json(obj)` that raises `FieldError` when a required field is missing or mistyped
and keeps the untouched JSON in `raw` for logging and for fields we do not model.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Self

from ari_app.ari.jsonfields import (
    JsonObject,
    opt_int,
    opt_object,
    opt_str,
    req_str,
    str_mapping,
    str_tuple,
    timestamp,
)


class _TolerantEnum(enum.StrEnum):
    """A future Asterisk may add a state; map it to UNKNOWN rather than failing."""

    @classmethod
    def _missing_(cls, value: object) -> Self:
        return cls("unknown")


class ChannelState(_TolerantEnum):
    DOWN = "Down"
    RSRVED = "Rsrved"
    OFFHOOK = "OffHook"
    DIALING = "Dialing"
    RING = "Ring"
    RINGING = "Ringing"
    UP = "Up"
    BUSY = "Busy"
    DIALING_OFFHOOK = "Dialing Offhook"
    PRE_RING = "Pre-ring"
    UNKNOWN = "unknown"


class PlaybackState(_TolerantEnum):
    QUEUED = "queued"
    PLAYING = "playing"
    PAUSED = "paused"
    CONTINUING = "continuing"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"


class RecordingState(_TolerantEnum):
    QUEUED = "queued"
    RECORDING = "recording"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"


class EndpointState(_TolerantEnum):
    UNKNOWN = "unknown"
    OFFLINE = "offline"
    ONLINE = "online"


@dataclass(frozen=True, slots=True)
class CallerId:
    name: str = ""
    number: str = ""

    @classmethod
    def from_json(cls, data: JsonObject | None) -> CallerId:
        if data is None:
            return cls()
        return cls(name=opt_str(data, "name"), number=opt_str(data, "number"))


@dataclass(frozen=True, slots=True)
class DialplanLocation:
    """Where the channel is in the dialplan; `app_name` is "Stasis" while in our app."""

    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""

    @classmethod
    def from_json(cls, data: JsonObject | None) -> DialplanLocation:
        if data is None:
            return cls()
        return cls(
            context=opt_str(data, "context"),
            exten=opt_str(data, "exten"),
            priority=opt_int(data, "priority") or 0,
            app_name=opt_str(data, "app_name"),
            app_data=opt_str(data, "app_data"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    id: str
    name: str
    state: ChannelState
    caller: CallerId = CallerId()
    connected: CallerId = CallerId()
    accountcode: str = ""
    dialplan: DialplanLocation = DialplanLocation()
    creationtime: datetime | None = None
    language: str = ""
    protocol_id: str = ""
    channelvars: Mapping[str, str] = field(default_factory=dict)
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> Channel:
        return cls(
            id=req_str(data, "id"),
            name=opt_str(data, "name"),
            state=ChannelState(opt_str(data, "state", "unknown")),
            caller=CallerId.from_json(opt_object(data, "caller")),
            connected=CallerId.from_json(opt_object(data, "connected")),
            accountcode=opt_str(data, "accountcode"),
            dialplan=DialplanLocation.from_json(opt_object(data, "dialplan")),
            creationtime=timestamp(data, "creationtime"),
            language=opt_str(data, "language"),
            protocol_id=opt_str(data, "protocol_id"),
            channelvars=str_mapping(data, "channelvars"),
            raw=data,
        )

    def in_stasis_app(self, app: str) -> bool:
        """True when the channel sits in `Stasis(app, ...)` (used to resync after reconnect)."""
        if self.dialplan.app_name != "Stasis":
            return False
        return self.dialplan.app_data.split(",", 1)[0].strip() == app


@dataclass(frozen=True, slots=True, kw_only=True)
class Bridge:
    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: tuple[str, ...] = ()
    creationtime: datetime | None = None
    video_mode: str = ""
    video_source_id: str = ""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> Bridge:
        return cls(
            id=req_str(data, "id"),
            technology=opt_str(data, "technology"),
            bridge_type=opt_str(data, "bridge_type"),
            bridge_class=opt_str(data, "bridge_class"),
            creator=opt_str(data, "creator"),
            name=opt_str(data, "name"),
            channels=str_tuple(data, "channels"),
            creationtime=timestamp(data, "creationtime"),
            video_mode=opt_str(data, "video_mode"),
            video_source_id=opt_str(data, "video_source_id"),
            raw=data,
        )


def split_target_uri(target_uri: str) -> tuple[str, str]:
    """'channel:1700000000.1' -> ('channel', '1700000000.1'); ('', '') if unreadable."""
    kind, sep, ident = target_uri.partition(":")
    return (kind, ident) if sep and ident else ("", "")


@dataclass(frozen=True, slots=True, kw_only=True)
class Playback:
    id: str
    media_uri: str = ""
    next_media_uri: str = ""
    target_uri: str = ""
    language: str = ""
    state: PlaybackState = PlaybackState.UNKNOWN
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> Playback:
        return cls(
            id=req_str(data, "id"),
            media_uri=opt_str(data, "media_uri"),
            next_media_uri=opt_str(data, "next_media_uri"),
            target_uri=opt_str(data, "target_uri"),
            language=opt_str(data, "language"),
            state=PlaybackState(opt_str(data, "state", "unknown")),
            raw=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveRecording:
    name: str
    format: str = ""
    target_uri: str = ""
    state: RecordingState = RecordingState.UNKNOWN
    duration: int | None = None
    talking_duration: int | None = None
    silence_duration: int | None = None
    cause: str = ""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> LiveRecording:
        return cls(
            name=req_str(data, "name"),
            format=opt_str(data, "format"),
            target_uri=opt_str(data, "target_uri"),
            state=RecordingState(opt_str(data, "state", "unknown")),
            duration=opt_int(data, "duration"),
            talking_duration=opt_int(data, "talking_duration"),
            silence_duration=opt_int(data, "silence_duration"),
            cause=opt_str(data, "cause"),
            raw=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    technology: str
    resource: str
    state: EndpointState = EndpointState.UNKNOWN
    channel_ids: tuple[str, ...] = ()
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        """'PJSIP/1001', the form used in dial strings and device states."""
        return f"{self.technology}/{self.resource}"

    @classmethod
    def from_json(cls, data: JsonObject) -> Endpoint:
        return cls(
            technology=req_str(data, "technology"),
            resource=req_str(data, "resource"),
            state=EndpointState(opt_str(data, "state", "unknown")),
            channel_ids=str_tuple(data, "channel_ids"),
            raw=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Application:
    name: str
    channel_ids: tuple[str, ...] = ()
    bridge_ids: tuple[str, ...] = ()
    endpoint_ids: tuple[str, ...] = ()
    device_names: tuple[str, ...] = ()
    events_allowed: tuple[str, ...] = ()  # event types; empty: no filter

    @classmethod
    def from_json(cls, data: JsonObject) -> Application:
        allowed = data.get("events_allowed")
        return cls(
            name=req_str(data, "name"),
            channel_ids=str_tuple(data, "channel_ids"),
            bridge_ids=str_tuple(data, "bridge_ids"),
            endpoint_ids=str_tuple(data, "endpoint_ids"),
            device_names=str_tuple(data, "device_names"),
            events_allowed=tuple(
                str(item.get("type", ""))
                for item in (allowed if isinstance(allowed, list) else [])
                if isinstance(item, dict)
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AsteriskInfo:
    """The parts of GET /asterisk/info we log at connect time."""

    version: str = ""
    entity_id: str = ""
    startup_time: datetime | None = None
    last_reload_time: datetime | None = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> AsteriskInfo:
        system = opt_object(data, "system") or {}
        status = opt_object(data, "status") or {}
        return cls(
            version=opt_str(system, "version"),
            entity_id=opt_str(system, "entity_id"),
            startup_time=timestamp(status, "startup_time"),
            last_reload_time=timestamp(status, "last_reload_time"),
            raw=data,
        )
