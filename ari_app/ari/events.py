"""ARI events as frozen dataclasses, and a parser that never raises.

`parse_event` turns one decoded websocket message into an `Event` subclass, an
`UnknownEvent` (a type we do not model, kept raw) or a `MalformedEvent` (not an object,
no type, a required field missing or mistyped). It never raises: a hostile or future
message must not kill the one reader task that every call depends on.

Every event exposes `routing_ids`, the resources it concerns, so a router can hand it to
the actor that owns that channel, bridge or playback (docs/architecture.md).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from ari_app.ari.jsonfields import (
    FieldError,
    JsonObject,
    as_object,
    opt_bool,
    opt_int,
    opt_object,
    opt_str,
    req_int,
    req_object,
    req_str,
    str_tuple,
    timestamp,
)
from ari_app.ari.models import Bridge, Channel, Endpoint, LiveRecording, Playback, split_target_uri


class ResourceKind(enum.StrEnum):
    CHANNEL = "channel"
    BRIDGE = "bridge"
    PLAYBACK = "playback"
    RECORDING = "recording"
    ENDPOINT = "endpoint"


@dataclass(frozen=True, slots=True)
class ResourceId:
    """One resource an event concerns, e.g. ResourceId(CHANNEL, '1700000000.42')."""

    kind: ResourceKind
    id: str


def _channels(*channels: Channel | None) -> tuple[ResourceId, ...]:
    return tuple(ResourceId(ResourceKind.CHANNEL, c.id) for c in channels if c is not None)


def _target(target_uri: str) -> tuple[ResourceId, ...]:
    kind, ident = split_target_uri(target_uri)
    try:
        return (ResourceId(ResourceKind(kind), ident),)
    except ValueError:
        return ()


def _dedupe(ids: Iterable[ResourceId]) -> tuple[ResourceId, ...]:
    return tuple(dict.fromkeys(ids))


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every ARI event carries. Subclasses set `type` to the ARI event name."""

    type: ClassVar[str] = ""
    application: str = ""
    timestamp: datetime | None = None
    asterisk_id: str = ""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StasisStart(Event):
    type: ClassVar[str] = "StasisStart"
    channel: Channel
    args: tuple[str, ...] = ()
    replace_channel: Channel | None = None

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _channels(self.channel, self.replace_channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class StasisEnd(Event):
    type: ClassVar[str] = "StasisEnd"
    channel: Channel

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _channels(self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDtmfReceived(Event):
    type: ClassVar[str] = "ChannelDtmfReceived"
    channel: Channel
    digit: str
    duration_ms: int = 0

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _channels(self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelStateChange(Event):
    type: ClassVar[str] = "ChannelStateChange"
    channel: Channel

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _channels(self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelHangupRequest(Event):
    type: ClassVar[str] = "ChannelHangupRequest"
    channel: Channel
    cause: int | None = None
    soft: bool | None = None
    tech_cause: int | None = None

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _channels(self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDestroyed(Event):
    type: ClassVar[str] = "ChannelDestroyed"
    channel: Channel
    cause: int
    cause_txt: str = ""
    tech_cause: int | None = None

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _channels(self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelVarset(Event):
    type: ClassVar[str] = "ChannelVarset"
    variable: str
    value: str
    channel: Channel | None = None  # None: a global variable

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _channels(self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelTalkingStarted(Event):
    type: ClassVar[str] = "ChannelTalkingStarted"
    channel: Channel

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _channels(self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelTalkingFinished(Event):
    type: ClassVar[str] = "ChannelTalkingFinished"
    channel: Channel
    duration: int  # milliseconds of talking

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _channels(self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEnteredBridge(Event):
    type: ClassVar[str] = "ChannelEnteredBridge"
    bridge: Bridge
    channel: Channel | None = None

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return (ResourceId(ResourceKind.BRIDGE, self.bridge.id), *_channels(self.channel))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelLeftBridge(Event):
    type: ClassVar[str] = "ChannelLeftBridge"
    bridge: Bridge
    channel: Channel

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return (ResourceId(ResourceKind.BRIDGE, self.bridge.id), *_channels(self.channel))


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeDestroyed(Event):
    type: ClassVar[str] = "BridgeDestroyed"
    bridge: Bridge

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return (ResourceId(ResourceKind.BRIDGE, self.bridge.id),)


@dataclass(frozen=True, slots=True, kw_only=True)
class _PlaybackEvent(Event):
    playback: Playback

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        own = ResourceId(ResourceKind.PLAYBACK, self.playback.id)
        return _dedupe((own, *_target(self.playback.target_uri)))


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackStarted(_PlaybackEvent):
    type: ClassVar[str] = "PlaybackStarted"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackFinished(_PlaybackEvent):
    type: ClassVar[str] = "PlaybackFinished"


@dataclass(frozen=True, slots=True, kw_only=True)
class _RecordingEvent(Event):
    recording: LiveRecording

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        own = ResourceId(ResourceKind.RECORDING, self.recording.name)
        return _dedupe((own, *_target(self.recording.target_uri)))


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingStarted(_RecordingEvent):
    type: ClassVar[str] = "RecordingStarted"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingFinished(_RecordingEvent):
    type: ClassVar[str] = "RecordingFinished"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingFailed(_RecordingEvent):
    type: ClassVar[str] = "RecordingFailed"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointStateChange(Event):
    type: ClassVar[str] = "EndpointStateChange"
    endpoint: Endpoint

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return (ResourceId(ResourceKind.ENDPOINT, self.endpoint.name),)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial(Event):
    """Progress of a dial: `dialstatus` is "" while ringing, then ANSWER, BUSY, NOANSWER..."""

    type: ClassVar[str] = "Dial"
    peer: Channel
    dialstatus: str
    caller: Channel | None = None
    forwarded: Channel | None = None
    forward: str = ""
    dialstring: str = ""

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _dedupe(_channels(self.peer, self.caller, self.forwarded))


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationReplaced(Event):
    """Another websocket subscribed to our app name; this one gets no more events."""

    type: ClassVar[str] = "ApplicationReplaced"


def _guess_routing_ids(raw: object) -> tuple[ResourceId, ...]:
    """Best-effort ids of a message we could not type, so its owner can still hear of it."""
    if not isinstance(raw, dict):
        return ()
    found: list[ResourceId] = []
    for key, kind, id_key in (
        ("channel", ResourceKind.CHANNEL, "id"),
        ("peer", ResourceKind.CHANNEL, "id"),
        ("bridge", ResourceKind.BRIDGE, "id"),
        ("playback", ResourceKind.PLAYBACK, "id"),
        ("recording", ResourceKind.RECORDING, "name"),
    ):
        value = raw.get(key)
        if isinstance(value, dict) and isinstance(value.get(id_key), str):
            found.append(ResourceId(kind, value[id_key]))
    return _dedupe(found)


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A well-formed message of a type we do not model (ChannelCreated, a future event...)."""

    type: str
    raw: JsonObject = field(repr=False)

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _guess_routing_ids(self.raw)


@dataclass(frozen=True, slots=True)
class MalformedEvent:
    """A message we could not read; `reason` says why. Delivered, never dropped."""

    raw: object = field(repr=False)
    reason: str

    @property
    def type(self) -> str:
        raw_type = self.raw.get("type") if isinstance(self.raw, dict) else None
        return raw_type if isinstance(raw_type, str) else ""

    @property
    def routing_ids(self) -> tuple[ResourceId, ...]:
        return _guess_routing_ids(self.raw)


AriEvent = Event | UnknownEvent | MalformedEvent


def _channel(data: JsonObject, key: str = "channel") -> Channel:
    return Channel.from_json(req_object(data, key))


def _opt_channel(data: JsonObject, key: str) -> Channel | None:
    obj = opt_object(data, key)
    return None if obj is None else Channel.from_json(obj)


def _only_channel(d: JsonObject) -> dict[str, Any]:
    return {"channel": _channel(d)}


def _only_bridge(d: JsonObject) -> dict[str, Any]:
    return {"bridge": Bridge.from_json(req_object(d, "bridge"))}


def _only_playback(d: JsonObject) -> dict[str, Any]:
    return {"playback": Playback.from_json(req_object(d, "playback"))}


def _only_recording(d: JsonObject) -> dict[str, Any]:
    return {"recording": LiveRecording.from_json(req_object(d, "recording"))}


# Event type -> (class, reader of its own fields). The common fields are added by parse_event.
_Fields = Callable[[JsonObject], dict[str, Any]]
_BUILDERS: dict[str, tuple[type[Event], _Fields]] = {
    "StasisStart": (
        StasisStart,
        lambda d: {
            "channel": _channel(d),
            "args": str_tuple(d, "args"),
            "replace_channel": _opt_channel(d, "replace_channel"),
        },
    ),
    "StasisEnd": (StasisEnd, _only_channel),
    "ChannelDtmfReceived": (
        ChannelDtmfReceived,
        lambda d: {
            "channel": _channel(d),
            "digit": req_str(d, "digit"),
            "duration_ms": opt_int(d, "duration_ms") or 0,
        },
    ),
    "ChannelStateChange": (ChannelStateChange, _only_channel),
    "ChannelHangupRequest": (
        ChannelHangupRequest,
        lambda d: {
            "channel": _channel(d),
            "cause": opt_int(d, "cause"),
            "soft": opt_bool(d, "soft"),
            "tech_cause": opt_int(d, "tech_cause"),
        },
    ),
    "ChannelDestroyed": (
        ChannelDestroyed,
        lambda d: {
            "channel": _channel(d),
            "cause": req_int(d, "cause"),
            "cause_txt": opt_str(d, "cause_txt"),
            "tech_cause": opt_int(d, "tech_cause"),
        },
    ),
    "ChannelVarset": (
        ChannelVarset,
        lambda d: {
            "variable": req_str(d, "variable"),
            "value": opt_str(d, "value"),
            "channel": _opt_channel(d, "channel"),
        },
    ),
    "ChannelTalkingStarted": (ChannelTalkingStarted, _only_channel),
    "ChannelTalkingFinished": (
        ChannelTalkingFinished,
        lambda d: {"channel": _channel(d), "duration": req_int(d, "duration")},
    ),
    "ChannelEnteredBridge": (
        ChannelEnteredBridge,
        lambda d: {**_only_bridge(d), "channel": _opt_channel(d, "channel")},
    ),
    "ChannelLeftBridge": (
        ChannelLeftBridge,
        lambda d: {**_only_bridge(d), "channel": _channel(d)},
    ),
    "BridgeDestroyed": (BridgeDestroyed, _only_bridge),
    "PlaybackStarted": (PlaybackStarted, _only_playback),
    "PlaybackFinished": (PlaybackFinished, _only_playback),
    "RecordingStarted": (RecordingStarted, _only_recording),
    "RecordingFinished": (RecordingFinished, _only_recording),
    "RecordingFailed": (RecordingFailed, _only_recording),
    "EndpointStateChange": (
        EndpointStateChange,
        lambda d: {"endpoint": Endpoint.from_json(req_object(d, "endpoint"))},
    ),
    "Dial": (
        Dial,
        lambda d: {
            "peer": _channel(d, "peer"),
            "dialstatus": opt_str(d, "dialstatus"),
            "caller": _opt_channel(d, "caller"),
            "forwarded": _opt_channel(d, "forwarded"),
            "forward": opt_str(d, "forward"),
            "dialstring": opt_str(d, "dialstring"),
        },
    ),
    "ApplicationReplaced": (ApplicationReplaced, lambda d: {}),
}

KNOWN_EVENT_TYPES = frozenset(_BUILDERS)


def parse_event(data: object) -> AriEvent:
    """One decoded websocket message -> a typed event. Never raises."""
    try:
        obj = as_object(data, "message")
        event_type = req_str(obj, "type")
        known = _BUILDERS.get(event_type)
        if known is None:
            return UnknownEvent(type=event_type, raw=obj)
        cls, own_fields = known
        return cls(
            application=opt_str(obj, "application"),
            timestamp=timestamp(obj, "timestamp"),
            asterisk_id=opt_str(obj, "asterisk_id"),
            raw=obj,
            **own_fields(obj),
        )
    except FieldError as exc:
        return MalformedEvent(raw=data, reason=str(exc))
    except Exception as exc:  # a parser bug must not kill the reader either
        return MalformedEvent(raw=data, reason=f"{type(exc).__name__}: {exc}")


def parse_message(text: str | bytes) -> AriEvent:
    """One websocket text frame -> a typed event. Never raises."""
    try:
        data = json.loads(text)
    except Exception as exc:  # ValueError, UnicodeDecodeError, RecursionError...
        return MalformedEvent(raw=text, reason=f"invalid JSON: {exc}")
    return parse_event(data)
