"""Realistic ARI JSON as Asterisk 22 sends it (field names and shapes from its ARI docs)."""

from __future__ import annotations

import copy
from typing import Any

ASTERISK_ID = "02:42:ac:11:00:02"
APP = "siaga"


def channel(
    channel_id: str = "1717200930.12",
    *,
    name: str = "PJSIP/trunk-00000005",
    state: str = "Up",
    number: str = "081234567890",
    app_data: str = "siaga,inbound",
) -> dict[str, Any]:
    return {
        "id": channel_id,
        "name": name,
        "state": state,
        "protocol_id": "5b1c7e0a-0f1b-4a2e-9d44-6f1f0e0d1c2b",
        "caller": {"name": "", "number": number},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "from-trunk",
            "exten": "112",
            "priority": 3,
            "app_name": "Stasis",
            "app_data": app_data,
        },
        "creationtime": "2024-06-01T08:15:30.123+0700",
        "language": "id",
    }


def operator_channel(channel_id: str = "op-1001-7f3a") -> dict[str, Any]:
    ch = channel(channel_id, name="PJSIP/1001-00000006", state="Ringing", number="112")
    ch["dialplan"] = {
        "context": "operators",
        "exten": "s",
        "priority": 1,
        "app_name": "Stasis",
        "app_data": "siaga,operator",
    }
    return ch


def bridge(bridge_id: str = "call-5f0c", channels: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": bridge_id,
        "technology": "simple_bridge",
        "bridge_type": "mixing",
        "bridge_class": "stasis",
        "creator": "Stasis",
        "name": "call",
        "channels": channels if channels is not None else ["1717200930.12"],
        "creationtime": "2024-06-01T08:15:31.001+0700",
        "video_mode": "none",
    }


def playback(
    playback_id: str = "pb-welcome-1",
    *,
    state: str = "playing",
    target_uri: str = "channel:1717200930.12",
) -> dict[str, Any]:
    return {
        "id": playback_id,
        "media_uri": "sound:siaga/id/welcome",
        "next_media_uri": "sound:siaga/id/menu",
        "target_uri": target_uri,
        "language": "id",
        "state": state,
    }


def recording(state: str = "done", cause: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "name": "call-5f0c-caller",
        "format": "wav",
        "target_uri": "bridge:call-5f0c",
        "state": state,
        "duration": 42,
        "talking_duration": 30,
        "silence_duration": 12,
    }
    if cause is not None:
        rec["cause"] = cause
    return rec


def endpoint(state: str = "online") -> dict[str, Any]:
    return {"technology": "PJSIP", "resource": "1001", "state": state, "channel_ids": []}


def asterisk_info() -> dict[str, Any]:
    return {
        "build": {
            "os": "Linux",
            "kernel": "6.1.0-21-amd64",
            "machine": "x86_64",
            "options": "BUILD_NATIVE, OPTIONAL_API",
            "date": "2024-05-20 10:00:00 UTC",
            "user": "debian",
        },
        "system": {"version": "22.4.1~dfsg+~cs6.15.60671435-1", "entity_id": ASTERISK_ID},
        "config": {
            "name": "",
            "default_language": "en",
            "setid": {"user": "", "group": ""},
        },
        "status": {
            "startup_time": "2024-06-01T08:00:00.000+0700",
            "last_reload_time": "2024-06-01T08:00:00.000+0700",
        },
    }


def message(
    event_type: str, ts: str = "2024-06-01T08:15:31.456+0700", **fields: Any
) -> dict[str, Any]:
    """One event as it comes off the websocket (before parsing)."""
    return {
        "type": event_type,
        "timestamp": ts,
        **fields,
        "asterisk_id": ASTERISK_ID,
        "application": APP,
    }


def at_ms(ms: int) -> str:
    """A timestamp; events equal in all but `ms` are distinct, equal in all are twins."""
    return f"2024-06-01T08:15:31.{ms:03d}+0700"


def channel_message(event_type: str, channel_id: str, ms: int = 0, **fields: Any) -> dict[str, Any]:
    """An event of one channel, e.g. its StasisStart or ChannelDestroyed."""
    return message(event_type, at_ms(ms), channel=channel(channel_id), **fields)


def events() -> dict[str, dict[str, Any]]:
    """One sample of every event type the client models, keyed by type."""
    samples = [
        message("StasisStart", args=["inbound"], channel=channel(state="Ring")),
        message("StasisEnd", channel=channel()),
        message("ChannelDtmfReceived", digit="1", duration_ms=120, channel=channel()),
        message("ChannelStateChange", channel=channel()),
        message("ChannelHangupRequest", cause=16, soft=True, channel=channel()),
        message(
            "ChannelDestroyed",
            cause=16,
            cause_txt="Normal Clearing",
            channel=channel(state="Down"),
        ),
        message("ChannelVarset", variable="TALK_DETECT(set)", value="", channel=channel()),
        message("ChannelTalkingStarted", channel=channel()),
        message("ChannelTalkingFinished", duration=3450, channel=channel()),
        message("ChannelEnteredBridge", bridge=bridge(), channel=channel()),
        message("ChannelLeftBridge", bridge=bridge(channels=[]), channel=channel()),
        message("BridgeDestroyed", bridge=bridge(channels=[])),
        message("PlaybackStarted", playback=playback()),
        message("PlaybackFinished", playback=playback(state="done")),
        message("RecordingStarted", recording=recording(state="recording")),
        message("RecordingFinished", recording=recording()),
        message("RecordingFailed", recording=recording(state="failed", cause="disk full")),
        message("EndpointStateChange", endpoint=endpoint(state="offline")),
        message(
            "Dial",
            dialstatus="ANSWER",
            dialstring="1001",
            forward="",
            peer=operator_channel(),
            caller=channel(),
        ),
        message("ApplicationReplaced"),
    ]
    return {sample["type"]: sample for sample in samples}


def event(event_type: str) -> dict[str, Any]:
    return copy.deepcopy(events()[event_type])


def dtmf(digit: str, channel_id: str = "1717200930.12") -> dict[str, Any]:
    return message("ChannelDtmfReceived", digit=digit, duration_ms=100, channel=channel(channel_id))
