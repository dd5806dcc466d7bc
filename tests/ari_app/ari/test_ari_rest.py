"""AriRest against an in-process fake ARI server: what goes on the wire, what comes back.

Every test runs over both transports: aiohttp's (the websocket's session, tools) and the
lean keep-alive one the app sends its REST requests with (ari_app/ari/lean.py)."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import ari_samples
import pytest
from ari_fake_server import PASSWORD, USERNAME, FakeAri

from ari_app.ari import (
    AriAllocationFailed,
    AriAuthError,
    AriBadRequest,
    AriBadResponse,
    AriConfig,
    AriError,
    AriInvalidState,
    AriNotFound,
    AriNotInStasis,
    AriRest,
    AriUnavailable,
    AriUnprocessable,
    BridgeType,
    ChannelState,
    EndpointState,
    HangupReason,
    LeanTransport,
    PlaybackState,
    SnoopDirection,
)


def config_for(url: str, *, password: str = PASSWORD, request_timeout: float = 1.0) -> AriConfig:
    return AriConfig(username=USERNAME, password=password, url=url, request_timeout=request_timeout)


MakeRest = Callable[[AriConfig], AriRest]


@pytest.fixture(params=["aiohttp", "lean"])
async def make_rest(request: pytest.FixtureRequest) -> AsyncIterator[MakeRest]:
    """An AriRest for a config, over the transport of this run; all closed at the end."""
    async with aiohttp.ClientSession() as session:
        leans: list[LeanTransport] = []

        def make(config: AriConfig) -> AriRest:
            if request.param == "aiohttp":
                return AriRest.from_session(session, config)
            leans.append(LeanTransport(config))
            return AriRest(leans[-1], timeout=config.request_timeout)

        yield make
        for transport in leans:
            await transport.close()


@pytest.fixture
def rest(fake: FakeAri, make_rest: MakeRest) -> AriRest:
    return make_rest(config_for(fake.url))


# -- credentials ----------------------------------------------------------------------------


async def test_credentials_travel_in_the_authorization_header_only(
    fake: FakeAri, rest: AriRest
) -> None:
    await rest.answer("1717200930.12")

    [request] = fake.sent("POST", "/channels/1717200930.12/answer")
    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {token}"
    assert PASSWORD not in request.raw_path
    assert USERNAME not in request.raw_path
    assert "api_key" not in dict(request.query)


async def test_wrong_password_raises_auth_error(fake: FakeAri, make_rest: MakeRest) -> None:
    rest = make_rest(config_for(fake.url, password="wrong"))

    with pytest.raises(AriAuthError) as caught:
        await rest.list_channels()

    assert caught.value.status == 401
    assert caught.value.message == "Authentication required"


# -- status mapping over the wire -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"message": "Invalid parameters"}, AriBadRequest),
        (403, {"message": "Write access denied"}, AriAuthError),
        (404, {"message": "Channel not found"}, AriNotFound),
        (409, {"message": "Channel not in Stasis application"}, AriNotInStasis),
        (412, {"message": "Channel in invalid state"}, AriInvalidState),
        (422, {"message": "Channel not in this bridge"}, AriUnprocessable),
        (500, {"error": "Allocation failed"}, AriAllocationFailed),
        (500, {"message": "Internal Server Error"}, AriUnavailable),
        (503, {"message": "Asterisk not booted"}, AriUnavailable),
    ],
)
async def test_each_error_status_maps_to_its_exception(
    fake: FakeAri, rest: AriRest, status: int, body: dict[str, str], expected: type[AriError]
) -> None:
    fake.reply("POST", "/channels/c1/answer", status, body)

    with pytest.raises(expected) as caught:
        await rest.answer("c1")

    error = caught.value
    assert type(error) is expected
    assert (error.method, error.path, error.status) == ("POST", "/channels/c1/answer", status)
    assert error.message == next(iter(body.values()))


async def test_originate_to_unregistered_operator_is_allocation_failed_not_a_crash(
    fake: FakeAri, rest: AriRest
) -> None:
    fake.reply("POST", "/channels", 500, {"error": "Allocation failed"})

    with pytest.raises(AriAllocationFailed) as caught:
        await rest.originate("PJSIP/1001", channel_id="op-1001-7f3a", app="siaga")

    assert isinstance(caught.value, AriUnavailable)
    assert caught.value.message == "Allocation failed"


@pytest.mark.parametrize(
    "remove",
    [
        lambda rest: rest.hangup("gone-channel"),
        lambda rest: rest.stop_playback("gone-playback"),
        lambda rest: rest.destroy_bridge("gone-bridge"),
    ],
    ids=["hangup", "stop_playback", "destroy_bridge"],
)
async def test_removing_something_already_gone_is_success(
    fake: FakeAri, rest: AriRest, remove: Callable[[AriRest], Awaitable[None]]
) -> None:
    gone = [
        ("DELETE", "/channels/gone-channel"),
        ("DELETE", "/playbacks/gone-playback"),
        ("DELETE", "/bridges/gone-bridge"),
    ]
    for method, path in gone:
        fake.reply(method, path, 404, {"message": "not found"})

    await remove(rest)  # returns normally: already gone counts as done

    [request] = fake.requests
    assert (request.method, request.path.removeprefix("/ari")) in gone


async def test_404_on_other_calls_is_an_error(fake: FakeAri, rest: AriRest) -> None:
    fake.reply("POST", "/channels/gone/answer", 404, {"message": "Channel not found"})

    with pytest.raises(AriNotFound):
        await rest.answer("gone")


async def test_hangup_other_errors_still_raise(fake: FakeAri, rest: AriRest) -> None:
    fake.reply("DELETE", "/channels/c1", 400, {"message": "Invalid reason for hangup provided"})

    with pytest.raises(AriBadRequest):
        await rest.hangup("c1", HangupReason.NORMAL)


async def test_timeout_is_unavailable(fake: FakeAri, make_rest: MakeRest) -> None:
    rest = make_rest(config_for(fake.url, request_timeout=0.1))
    fake.reply("GET", "/channels", 200, [], delay=1.0)

    with pytest.raises(AriUnavailable) as caught:
        await rest.list_channels()

    assert caught.value.status is None
    assert "timed out" in caught.value.message


async def test_connection_refused_is_unavailable(make_rest: MakeRest) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rest = make_rest(config_for(f"http://127.0.0.1:{port}"))

    with pytest.raises(AriUnavailable) as caught:
        await rest.asterisk_info()

    assert caught.value.status is None


async def test_success_with_unreadable_body_is_bad_response(fake: FakeAri, rest: AriRest) -> None:
    fake.reply("GET", "/channels/c1/variable", 200, b"<html>proxy</html>")

    with pytest.raises(AriBadResponse):
        await rest.get_variable("c1", "SIAGA_QUEUE")


async def test_success_with_wrong_shape_is_bad_response(fake: FakeAri, rest: AriRest) -> None:
    fake.reply("GET", "/channels", 200, {"not": "a list"})

    with pytest.raises(AriBadResponse):
        await rest.list_channels()


async def test_every_error_is_an_ari_error(fake: FakeAri, rest: AriRest) -> None:
    fake.reply("POST", "/channels/c1/answer", 418, {"message": "teapot"})

    with pytest.raises(AriError) as caught:
        await rest.answer("c1")

    assert type(caught.value) is AriError


# -- request shapes -------------------------------------------------------------------------


async def test_originate_sends_channel_id_query_and_variables_body(
    fake: FakeAri, rest: AriRest
) -> None:
    fake.reply("POST", "/channels", 200, ari_samples.operator_channel("op-1001-7f3a"))

    channel = await rest.originate(
        "PJSIP/1001",
        channel_id="op-1001-7f3a",
        app="siaga",
        app_args="operator,call-5f0c",
        caller_id="112 <112>",
        timeout=20,
        variables={"CALLERID(name)": "Siaga 112", "SIAGA_CALL": "call-5f0c"},
        other_channel_id="op-1001-7f3a;2",
        originator="1717200930.12",
        formats=["alaw", "ulaw"],
    )

    [request] = fake.sent("POST", "/channels")
    assert dict(request.query) == {
        "endpoint": "PJSIP/1001",
        "channelId": "op-1001-7f3a",
        "app": "siaga",
        "appArgs": "operator,call-5f0c",
        "callerId": "112 <112>",
        "timeout": "20",
        "otherChannelId": "op-1001-7f3a;2",
        "originator": "1717200930.12",
        "formats": "alaw,ulaw",
    }
    assert request.body == {"variables": {"CALLERID(name)": "Siaga 112", "SIAGA_CALL": "call-5f0c"}}
    assert channel.id == "op-1001-7f3a"
    assert channel.state is ChannelState.RINGING


async def test_originate_without_variables_sends_no_body(fake: FakeAri, rest: AriRest) -> None:
    fake.reply("POST", "/channels", 200, ari_samples.operator_channel("op-1"))

    await rest.originate("PJSIP/1001", channel_id="op-1", app="siaga")

    [request] = fake.sent("POST", "/channels")
    assert request.body is None
    assert dict(request.query) == {"endpoint": "PJSIP/1001", "channelId": "op-1", "app": "siaga"}


async def test_hangup_sends_reason(fake: FakeAri, rest: AriRest) -> None:
    await rest.hangup("c1", HangupReason.NO_ANSWER)

    [request] = fake.sent("DELETE", "/channels/c1")
    assert dict(request.query) == {"reason": "no_answer"}


async def test_play_list_is_one_comma_separated_media_parameter(
    fake: FakeAri, rest: AriRest
) -> None:
    fake.reply("POST", "/channels/c1/play", 201, ari_samples.playback("pb-1", state="queued"))

    playback = await rest.play(
        "c1", ["sound:siaga/id/welcome", "sound:siaga/id/menu"], playback_id="pb-1", lang="id"
    )

    [request] = fake.sent("POST", "/channels/c1/play")
    assert request.param("media") == "sound:siaga/id/welcome,sound:siaga/id/menu"
    assert request.param("playbackId") == "pb-1"
    assert request.param("lang") == "id"
    assert playback.id == "pb-1"
    assert playback.state is PlaybackState.QUEUED


async def test_stop_playback_deletes_the_playback(fake: FakeAri, rest: AriRest) -> None:
    await rest.stop_playback("pb-1")

    assert len(fake.sent("DELETE", "/playbacks/pb-1")) == 1


async def test_snoop_parameters(fake: FakeAri, rest: AriRest) -> None:
    fake.reply("POST", "/channels/c1/snoop", 200, ari_samples.channel("snoop-1", name="Snoop/c1"))

    snoop = await rest.snoop("c1", app="siaga", snoop_id="snoop-1", spy=SnoopDirection.BOTH)

    [request] = fake.sent("POST", "/channels/c1/snoop")
    assert dict(request.query) == {
        "spy": "both",
        "whisper": "none",
        "app": "siaga",
        "snoopId": "snoop-1",
    }
    assert snoop.id == "snoop-1"


async def test_variables_moh_continue(fake: FakeAri, rest: AriRest) -> None:
    fake.reply("GET", "/channels/c1/variable", 200, {"value": "id"})

    assert await rest.get_variable("c1", "CHANNEL(language)") == "id"
    await rest.set_variable("c1", "TALK_DETECT(set)", "")
    await rest.start_moh("c1", "default")
    await rest.stop_moh("c1")
    await rest.continue_in_dialplan("c1", context="fallback", extension="112", priority=1)

    sent = [(r.method, r.path, dict(r.query)) for r in fake.requests]
    assert sent == [
        ("GET", "/ari/channels/c1/variable", {"variable": "CHANNEL(language)"}),
        ("POST", "/ari/channels/c1/variable", {"variable": "TALK_DETECT(set)", "value": ""}),
        ("POST", "/ari/channels/c1/moh", {"mohClass": "default"}),
        ("DELETE", "/ari/channels/c1/moh", {}),
        (
            "POST",
            "/ari/channels/c1/continue",
            {"context": "fallback", "extension": "112", "priority": "1"},
        ),
    ]


async def test_bridge_calls(fake: FakeAri, rest: AriRest) -> None:
    fake.reply("POST", "/bridges", 200, ari_samples.bridge("call-5f0c", channels=[]))

    bridge = await rest.create_bridge(
        "call-5f0c", type=[BridgeType.MIXING, BridgeType.DTMF_EVENTS], name="call"
    )
    await rest.add_channel("call-5f0c", ["c1", "op-1"], absorb_dtmf=False)
    await rest.destroy_bridge("call-5f0c")

    assert bridge.id == "call-5f0c" and bridge.bridge_type == "mixing"
    sent = [(r.method, r.path, dict(r.query)) for r in fake.requests]
    assert sent == [
        (
            "POST",
            "/ari/bridges",
            {"type": "mixing,dtmf_events", "bridgeId": "call-5f0c", "name": "call"},
        ),
        (
            "POST",
            "/ari/bridges/call-5f0c/addChannel",
            {"channel": "c1,op-1", "absorbDTMF": "false"},
        ),
        ("DELETE", "/ari/bridges/call-5f0c", {}),
    ]


async def test_lists_return_typed_snapshots(fake: FakeAri, rest: AriRest) -> None:
    fake.reply("GET", "/channels", 200, [ari_samples.channel("c1"), ari_samples.channel("c2")])
    fake.reply("GET", "/endpoints", 200, [ari_samples.endpoint()])

    channels = await rest.list_channels()
    endpoints = await rest.list_endpoints()

    assert [c.id for c in channels] == ["c1", "c2"]
    assert channels[0].caller.number == "081234567890"
    assert channels[0].in_stasis_app("siaga")
    assert endpoints[0].name == "PJSIP/1001"
    assert endpoints[0].state is EndpointState.ONLINE


async def test_path_segments_are_percent_encoded(fake: FakeAri, rest: AriRest) -> None:
    # An endpoint name such as PJSIP/1001 inside one segment must not add a path level.
    fake.reply("GET", "/channels/Local/op@siaga-test-0001;1/variable", 200, {"value": "x"})

    assert await rest.get_variable("Local/op@siaga-test-0001;1", "SIAGA_QUEUE") == "x"
    await rest.hangup("PJSIP/1001-0001")

    assert fake.requests[0].raw_path.split("?")[0] == (
        "/ari/channels/Local%2Fop%40siaga-test-0001%3B1/variable"
    )
    assert fake.requests[1].raw_path == "/ari/channels/PJSIP%2F1001-0001"


async def test_asterisk_info_and_subscription(fake: FakeAri, rest: AriRest) -> None:
    app_json = {
        "name": "siaga",
        "channel_ids": ["c1"],
        "bridge_ids": [],
        "endpoint_ids": ["PJSIP/1001"],
        "device_names": [],
        "events_allowed": [],
        "events_disallowed": [],
    }
    fake.reply("POST", "/applications/siaga/subscription", 200, app_json)

    info = await rest.asterisk_info()
    subscribed = await rest.subscribe("siaga", ["endpoint:PJSIP/1001", "endpoint:PJSIP/1002"])

    assert info.version.startswith("22.")
    assert info.startup_time is not None and info.startup_time.utcoffset() is not None
    assert subscribed.endpoint_ids == ("PJSIP/1001",)
    assert subscribed.channel_ids == ("c1",)
    [request] = fake.sent("POST", "/applications/siaga/subscription")
    assert request.param("eventSource") == "endpoint:PJSIP/1001,endpoint:PJSIP/1002"


async def test_event_filter_sends_the_allowed_types(fake: FakeAri, rest: AriRest) -> None:
    app_json = {
        "name": "siaga",
        "channel_ids": [],
        "bridge_ids": [],
        "endpoint_ids": [],
        "device_names": [],
        "events_allowed": [{"type": "StasisStart"}, {"type": "Dial"}],
        "events_disallowed": [],
    }
    fake.reply("PUT", "/applications/siaga/eventFilter", 200, app_json)

    app = await rest.filter_events("siaga", ["StasisStart", "Dial"])

    assert app.events_allowed == ("StasisStart", "Dial")
    [request] = fake.sent("PUT", "/applications/siaga/eventFilter")
    assert request.body == {"allowed": [{"type": "StasisStart"}, {"type": "Dial"}]}


async def test_concurrent_calls_share_one_session(fake: FakeAri, rest: AriRest) -> None:
    await asyncio.gather(*(rest.answer(f"c{i}") for i in range(50)))

    assert len(fake.requests) == 50
