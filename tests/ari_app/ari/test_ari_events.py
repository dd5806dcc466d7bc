"""parse_event on realistic Asterisk 22 JSON, and its promise never to raise."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import ari_samples
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.ari import (
    ApplicationReplaced,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelState,
    ChannelStateChange,
    ChannelTalkingFinished,
    ChannelTalkingStarted,
    ChannelVarset,
    Dial,
    EndpointState,
    EndpointStateChange,
    Event,
    MalformedEvent,
    PlaybackFinished,
    PlaybackStarted,
    PlaybackState,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    RecordingState,
    ResourceId,
    ResourceKind,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    parse_event,
    parse_message,
)

CALLER = ResourceId(ResourceKind.CHANNEL, "1717200930.12")
BRIDGE = ResourceId(ResourceKind.BRIDGE, "call-5f0c")
WIB = timezone(timedelta(hours=7))

EXPECTED_CLASS = {
    "StasisStart": StasisStart,
    "StasisEnd": StasisEnd,
    "ChannelDtmfReceived": ChannelDtmfReceived,
    "ChannelStateChange": ChannelStateChange,
    "ChannelHangupRequest": ChannelHangupRequest,
    "ChannelDestroyed": ChannelDestroyed,
    "ChannelVarset": ChannelVarset,
    "ChannelTalkingStarted": ChannelTalkingStarted,
    "ChannelTalkingFinished": ChannelTalkingFinished,
    "ChannelEnteredBridge": ChannelEnteredBridge,
    "ChannelLeftBridge": ChannelLeftBridge,
    "BridgeDestroyed": BridgeDestroyed,
    "PlaybackStarted": PlaybackStarted,
    "PlaybackFinished": PlaybackFinished,
    "RecordingStarted": RecordingStarted,
    "RecordingFinished": RecordingFinished,
    "RecordingFailed": RecordingFailed,
    "EndpointStateChange": EndpointStateChange,
    "Dial": Dial,
    "ApplicationReplaced": ApplicationReplaced,
}


@pytest.mark.parametrize("event_type", sorted(EXPECTED_CLASS))
def test_every_sample_parses_to_its_class_with_common_fields(event_type: str) -> None:
    raw = ari_samples.event(event_type)

    event = parse_event(raw)

    assert type(event) is EXPECTED_CLASS[event_type]
    assert isinstance(event, Event)
    assert event.type == event_type
    assert event.application == "siaga"
    assert event.asterisk_id == ari_samples.ASTERISK_ID
    assert event.timestamp == datetime(2024, 6, 1, 8, 15, 31, 456000, tzinfo=WIB)
    assert event.raw is raw


def test_stasis_start_channel_snapshot() -> None:
    event = parse_event(ari_samples.event("StasisStart"))

    assert isinstance(event, StasisStart)
    assert event.args == ("inbound",)
    assert event.replace_channel is None
    channel = event.channel
    assert channel.id == "1717200930.12"
    assert channel.name == "PJSIP/trunk-00000005"
    assert channel.state is ChannelState.RING
    assert channel.caller.number == "081234567890"
    assert channel.connected.number == ""
    assert channel.dialplan.context == "from-trunk"
    assert channel.dialplan.exten == "112"
    assert channel.dialplan.priority == 3
    assert channel.dialplan.app_name == "Stasis"
    assert channel.dialplan.app_data == "siaga,inbound"
    assert channel.creationtime == datetime(2024, 6, 1, 8, 15, 30, 123000, tzinfo=WIB)
    assert channel.language == "id"
    assert channel.in_stasis_app("siaga")
    assert not channel.in_stasis_app("other")
    assert event.routing_ids == (CALLER,)


def test_stasis_start_with_replace_channel_routes_to_both() -> None:
    raw = ari_samples.event("StasisStart")
    raw["replace_channel"] = ari_samples.channel("1717200930.11")

    event = parse_event(raw)

    assert isinstance(event, StasisStart)
    assert event.replace_channel is not None
    assert event.routing_ids == (CALLER, ResourceId(ResourceKind.CHANNEL, "1717200930.11"))


def test_channel_event_fields() -> None:
    dtmf = parse_event(ari_samples.event("ChannelDtmfReceived"))
    hangup = parse_event(ari_samples.event("ChannelHangupRequest"))
    destroyed = parse_event(ari_samples.event("ChannelDestroyed"))
    talking = parse_event(ari_samples.event("ChannelTalkingFinished"))
    varset = parse_event(ari_samples.event("ChannelVarset"))

    assert isinstance(dtmf, ChannelDtmfReceived)
    assert (dtmf.digit, dtmf.duration_ms) == ("1", 120)
    assert isinstance(hangup, ChannelHangupRequest)
    assert (hangup.cause, hangup.soft) == (16, True)
    assert isinstance(destroyed, ChannelDestroyed)
    assert (destroyed.cause, destroyed.cause_txt) == (16, "Normal Clearing")
    assert destroyed.channel.state is ChannelState.DOWN
    assert isinstance(talking, ChannelTalkingFinished)
    assert talking.duration == 3450
    assert isinstance(varset, ChannelVarset)
    assert (varset.variable, varset.value) == ("TALK_DETECT(set)", "")
    for event in (dtmf, hangup, destroyed, talking, varset):
        assert event.routing_ids == (CALLER,)


def test_global_varset_has_no_channel() -> None:
    raw = ari_samples.event("ChannelVarset")
    del raw["channel"]

    event = parse_event(raw)

    assert isinstance(event, ChannelVarset)
    assert event.channel is None
    assert event.routing_ids == ()


def test_bridge_events_route_to_bridge_and_channel() -> None:
    entered = parse_event(ari_samples.event("ChannelEnteredBridge"))
    left = parse_event(ari_samples.event("ChannelLeftBridge"))
    destroyed = parse_event(ari_samples.event("BridgeDestroyed"))

    assert isinstance(entered, ChannelEnteredBridge)
    assert entered.bridge.channels == ("1717200930.12",)
    assert entered.bridge.bridge_type == "mixing"
    assert entered.routing_ids == (BRIDGE, CALLER)
    assert isinstance(left, ChannelLeftBridge)
    assert left.routing_ids == (BRIDGE, CALLER)
    assert destroyed.routing_ids == (BRIDGE,)


def test_playback_events_route_to_playback_and_target() -> None:
    started = parse_event(ari_samples.event("PlaybackStarted"))
    finished = parse_event(ari_samples.event("PlaybackFinished"))

    assert isinstance(started, PlaybackStarted)
    assert started.playback.state is PlaybackState.PLAYING
    assert isinstance(finished, PlaybackFinished)
    assert finished.playback.id == "pb-welcome-1"
    assert finished.playback.target_uri == "channel:1717200930.12"
    assert finished.playback.state is PlaybackState.DONE
    assert finished.routing_ids == (ResourceId(ResourceKind.PLAYBACK, "pb-welcome-1"), CALLER)


def test_playback_on_bridge_routes_to_bridge() -> None:
    raw = ari_samples.event("PlaybackFinished")
    raw["playback"]["target_uri"] = "bridge:call-5f0c"

    event = parse_event(raw)

    assert event.routing_ids == (ResourceId(ResourceKind.PLAYBACK, "pb-welcome-1"), BRIDGE)


def test_recording_events() -> None:
    finished = parse_event(ari_samples.event("RecordingFinished"))
    failed = parse_event(ari_samples.event("RecordingFailed"))

    assert isinstance(finished, RecordingFinished)
    assert finished.recording.state is RecordingState.DONE
    assert finished.recording.duration == 42
    assert finished.recording.talking_duration == 30
    assert finished.routing_ids == (ResourceId(ResourceKind.RECORDING, "call-5f0c-caller"), BRIDGE)
    assert isinstance(failed, RecordingFailed)
    assert failed.recording.cause == "disk full"
    assert failed.recording.state is RecordingState.FAILED


def test_endpoint_state_change() -> None:
    event = parse_event(ari_samples.event("EndpointStateChange"))

    assert isinstance(event, EndpointStateChange)
    assert event.endpoint.technology == "PJSIP"
    assert event.endpoint.resource == "1001"
    assert event.endpoint.state is EndpointState.OFFLINE
    assert event.routing_ids == (ResourceId(ResourceKind.ENDPOINT, "PJSIP/1001"),)


def test_dial_routes_to_peer_then_caller() -> None:
    event = parse_event(ari_samples.event("Dial"))

    assert isinstance(event, Dial)
    assert event.dialstatus == "ANSWER"
    assert event.dialstring == "1001"
    assert event.peer.id == "op-1001-7f3a"
    assert event.caller is not None and event.caller.id == "1717200930.12"
    assert event.routing_ids == (ResourceId(ResourceKind.CHANNEL, "op-1001-7f3a"), CALLER)


def test_unknown_type_is_kept_raw_with_best_effort_routing() -> None:
    raw = {
        "type": "ChannelCallerId",
        "timestamp": "2024-06-01T08:15:31.456+0700",
        "caller_presentation": 0,
        "caller_presentation_txt": "Presentation Allowed, Not Screened",
        "channel": ari_samples.channel(),
        "asterisk_id": ari_samples.ASTERISK_ID,
        "application": "siaga",
    }

    event = parse_event(raw)

    assert isinstance(event, UnknownEvent)
    assert event.type == "ChannelCallerId"
    assert event.raw == raw
    assert event.routing_ids == (CALLER,)


def test_unknown_enum_values_become_unknown_not_errors() -> None:
    raw = ari_samples.event("StasisStart")
    raw["channel"]["state"] = "Hyperspace"
    raw["timestamp"] = "yesterday-ish"

    event = parse_event(raw)

    assert isinstance(event, StasisStart)
    assert event.channel.state is ChannelState.UNKNOWN
    assert event.timestamp is None


def _without(event_type: str, *path: str) -> dict[str, Any]:
    raw = ari_samples.event(event_type)
    target = raw
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return raw


def _with(event_type: str, value: object, *path: str) -> dict[str, Any]:
    raw = ari_samples.event(event_type)
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        (None, "expected an object"),
        ([1, 2, 3], "expected an object"),
        ("StasisStart", "expected an object"),
        ({"channel": {"id": "c1"}}, "type"),
        ({"type": 42}, "type"),
        (_without("StasisStart", "channel"), "channel"),
        (_without("ChannelDtmfReceived", "channel", "id"), "id"),
        (_with("ChannelDtmfReceived", 5, "digit"), "digit"),
        (_with("StasisStart", 12345, "channel", "id"), "id"),
        (_with("ChannelDestroyed", "16", "cause"), "cause"),
        (_with("ChannelDestroyed", True, "cause"), "cause"),
        (_with("StasisStart", "inbound", "args"), "args"),
        (_with("PlaybackFinished", ["x"], "playback"), "playback"),
        (_with("Dial", None, "peer"), "peer"),
        (_with("StasisStart", {"name": 7}, "channel", "caller"), "name"),
    ],
)
def test_malformed_messages_become_malformed_events(raw: object, reason_part: str) -> None:
    event = parse_event(raw)

    assert isinstance(event, MalformedEvent)
    assert reason_part in event.reason
    assert event.raw is raw


def test_malformed_event_still_says_what_it_concerns() -> None:
    raw = _with("ChannelDestroyed", "sixteen", "cause")

    event = parse_event(raw)

    assert isinstance(event, MalformedEvent)
    assert event.type == "ChannelDestroyed"
    assert event.routing_ids == (CALLER,)


@pytest.mark.parametrize(
    "text",
    ["", "{", "not json", '{"type": "StasisStart", ', b"\xff\xfe\x00", "[" * 100_000],
)
def test_parse_message_never_raises_on_bad_frames(text: str | bytes) -> None:
    event = parse_message(text)

    assert isinstance(event, MalformedEvent)


def test_parse_message_reads_a_real_frame() -> None:
    frame = json.dumps(ari_samples.event("ChannelDtmfReceived"))

    event = parse_message(frame)

    assert isinstance(event, ChannelDtmfReceived)
    assert event.digit == "1"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_parse_event_never_raises_on_arbitrary_json(value: object) -> None:
    event = parse_event(value)

    assert isinstance(event, Event | UnknownEvent | MalformedEvent)
    assert isinstance(event.routing_ids, tuple)


@settings(max_examples=300, deadline=None)
@given(
    event_type=st.sampled_from(sorted(EXPECTED_CLASS)),
    key=st.sampled_from(
        [
            "channel",
            "bridge",
            "playback",
            "recording",
            "endpoint",
            "peer",
            "cause",
            "digit",
            "duration",
            "args",
            "dialstatus",
            "variable",
            "timestamp",
            "id",
            "state",
        ]
    ),
    value=json_values,
)
def test_parse_event_never_raises_on_corrupted_samples(
    event_type: str, key: str, value: object
) -> None:
    raw = ari_samples.event(event_type)
    raw[key] = value
    for nested in ("channel", "bridge", "playback", "recording", "endpoint", "peer"):
        if isinstance(raw.get(nested), dict):
            raw[nested][key] = value

    event = parse_event(raw)

    assert isinstance(event, Event | UnknownEvent | MalformedEvent)
    assert isinstance(event.routing_ids, tuple)
