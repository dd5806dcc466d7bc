"""The ARI REST calls Siaga 112 makes, typed. Paths and parameters follow Asterisk 22's ARI.

Every method either returns a typed snapshot (or None) or raises an `AriError` subclass
(see errors.py). Removing something that is already gone (hangup, stop playback, destroy
bridge) is success: the caller may hang up at any moment (docs/architecture.md).

Only what the product uses lives here; the integration tests' own look-ups (bridges, endpoints,
recordings) live with them, in tests/integration/ari_probe.py.

Ids come from us (docs/architecture.md): `originate`, `create_bridge`, `play`, `snoop` take the id
the resource will have, so it can be registered with the router before the request.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
import structlog

from ari_app.ari.config import AriConfig
from ari_app.ari.errors import AriBadResponse, AriNotFound, error_for_status
from ari_app.ari.jsonfields import FieldError, JsonObject, as_object, req_str
from ari_app.ari.models import (
    Application,
    AsteriskInfo,
    Bridge,
    Channel,
    Endpoint,
    Playback,
)
from ari_app.ari.transport import AiohttpTransport, AriRequest, Transport, ari_path

log = structlog.get_logger(__name__)

T = TypeVar("T")
ParamValue = str | int | bool | Sequence[str] | enum.Enum | None


class HangupReason(enum.StrEnum):
    NORMAL = "normal"
    BUSY = "busy"
    CONGESTION = "congestion"
    NO_ANSWER = "no_answer"
    TIMEOUT = "timeout"
    REJECTED = "rejected"
    UNALLOCATED = "unallocated"
    NORMAL_UNSPECIFIED = "normal_unspecified"
    NUMBER_INCOMPLETE = "number_incomplete"
    CODEC_MISMATCH = "codec_mismatch"
    INTERWORKING = "interworking"
    FAILURE = "failure"
    ANSWERED_ELSEWHERE = "answered_elsewhere"


class BridgeType(enum.StrEnum):
    MIXING = "mixing"
    HOLDING = "holding"
    DTMF_EVENTS = "dtmf_events"
    PROXY_MEDIA = "proxy_media"
    VIDEO_SFU = "video_sfu"
    VIDEO_SINGLE = "video_single"


class SnoopDirection(enum.StrEnum):
    NONE = "none"
    BOTH = "both"
    OUT = "out"
    IN = "in"


def _param(value: ParamValue) -> str | None:
    """ARI query encoding: booleans as true/false, lists comma-separated."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    # Asterisk reads a multi-valued parameter from ONE comma-separated value;
    # repeating the parameter would keep only one of them.
    return ",".join(value)


def _params(**values: ParamValue) -> dict[str, str]:
    encoded = {key: _param(value) for key, value in values.items()}
    return {key: value for key, value in encoded.items() if value is not None}


def _one(parse: Callable[[JsonObject], T]) -> Callable[[Any], T]:
    """Reader of a response body that is one object."""
    return lambda data: parse(as_object(data, "response"))


def _many(parse: Callable[[JsonObject], T]) -> Callable[[Any], list[T]]:
    """Reader of a response body that is a list of objects."""

    def read(data: Any) -> list[T]:
        if not isinstance(data, list):
            raise FieldError(f"response: expected a list, got {type(data).__name__}")
        return [parse(as_object(item, "response item")) for item in data]

    return read


class AriRest:
    """Typed ARI REST calls over a `Transport` (aiohttp by default)."""

    def __init__(self, transport: Transport, *, timeout: float = 5.0) -> None:
        self._transport = transport
        self._timeout = timeout

    @classmethod
    def from_session(cls, session: aiohttp.ClientSession, config: AriConfig) -> AriRest:
        return cls(AiohttpTransport(session, config), timeout=config.request_timeout)

    # -- plumbing ---------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        gone_ok: bool = False,
    ) -> Any:
        """Send, map errors, decode JSON. `gone_ok`: a 404 means "already done"."""
        request = AriRequest(method, path, params or {}, body, self._timeout)
        response = await self._transport.send(request)
        if 200 <= response.status < 300:
            if not response.body.strip():
                return None
            try:
                return json.loads(response.body)
            except ValueError as exc:
                raise AriBadResponse(method, path, response.status, f"invalid JSON: {exc}") from exc
        error = error_for_status(method, path, response.status, response.body)
        if gone_ok and isinstance(error, AriNotFound):
            log.debug("ari.already_gone", method=method, path=path, message=error.message)
            return None
        raise error

    async def _typed(
        self,
        parse: Callable[[Any], T],
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> T:
        data = await self._call(method, path, params, body)
        try:
            return parse(data)
        except FieldError as exc:
            raise AriBadResponse(method, path, 200, str(exc)) from exc

    # -- asterisk ---------------------------------------------------------------------------

    async def asterisk_info(self) -> AsteriskInfo:
        return await self._typed(
            _one(AsteriskInfo.from_json),
            "GET",
            ari_path("asterisk", "info"),
        )

    # -- channels ---------------------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        return await self._typed(_many(Channel.from_json), "GET", ari_path("channels"))

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app: str,
        app_args: str | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        variables: Mapping[str, str] | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: Sequence[str] | None = None,
    ) -> Channel:
        """Dial `endpoint` (e.g. 'PJSIP/1001') into Stasis `app` as channel `channel_id`.

        `timeout` is ring seconds (Asterisk's default 30, -1 for none). An endpoint with no
        registered contact raises AriAllocationFailed at once.
        """
        params = _params(
            endpoint=endpoint,
            channelId=channel_id,
            app=app,
            appArgs=app_args,
            callerId=caller_id,
            timeout=timeout,
            otherChannelId=other_channel_id,
            originator=originator,
            formats=formats,
        )
        body = {"variables": dict(variables)} if variables else None
        return await self._typed(
            _one(Channel.from_json),
            "POST",
            ari_path("channels"),
            params,
            body,
        )

    async def originate_to_dialplan(
        self,
        endpoint: str,
        *,
        channel_id: str,
        context: str,
        extension: str,
        priority: int = 1,
        caller_id: str | None = None,
        timeout: int | None = None,
        variables: Mapping[str, str] | None = None,
        formats: Sequence[str] | None = None,
    ) -> Channel:
        """Dial `endpoint` and, once it answers, run `extension@context` on the new channel.

        Used for test and simulated callers: `Local/caller@siaga-test` answers and sends DTMF
        while its other half runs the emergency number's dialplan like a trunk call. Without
        `formats` Asterisk offers a Local channel every audio format and it picks slin192.
        """
        params = _params(
            endpoint=endpoint,
            channelId=channel_id,
            context=context,
            extension=extension,
            priority=priority,
            callerId=caller_id,
            timeout=timeout,
            formats=formats,
        )
        body = {"variables": dict(variables)} if variables else None
        return await self._typed(
            _one(Channel.from_json), "POST", ari_path("channels"), params, body
        )

    async def answer(self, channel_id: str) -> None:
        await self._call("POST", ari_path("channels", channel_id, "answer"))

    async def hangup(
        self, channel_id: str, reason: HangupReason | None = None, *, reason_code: int | None = None
    ) -> None:
        """Hang up; a channel already gone counts as hung up."""
        params = _params(reason=reason, reason_code=reason_code)
        await self._call("DELETE", ari_path("channels", channel_id), params, gone_ok=True)

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        params = _params(context=context, extension=extension, priority=priority, label=label)
        await self._call("POST", ari_path("channels", channel_id, "continue"), params)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        params = _params(mohClass=moh_class)
        await self._call("POST", ari_path("channels", channel_id, "moh"), params)

    async def stop_moh(self, channel_id: str) -> None:
        await self._call("DELETE", ari_path("channels", channel_id, "moh"))

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        params = _params(variable=variable, value=value)
        await self._call("POST", ari_path("channels", channel_id, "variable"), params)

    async def get_variable(self, channel_id: str, variable: str) -> str:
        return await self._typed(
            lambda d: req_str(as_object(d, "variable"), "value"),
            "GET",
            ari_path("channels", channel_id, "variable"),
            _params(variable=variable),
        )

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str,
        lang: str | None = None,
        offsetms: int | None = None,
        skipms: int | None = None,
    ) -> Playback:
        """Play one media URI, or a list played back to back as ONE playback."""
        uris = [media] if isinstance(media, str) else list(media)
        params = _params(
            media=uris, lang=lang, offsetms=offsetms, skipms=skipms, playbackId=playback_id
        )
        return await self._typed(
            _one(Playback.from_json),
            "POST",
            ari_path("channels", channel_id, "play"),
            params,
        )

    async def stop_playback(self, playback_id: str) -> None:
        """Stop a playback; one already finished counts as stopped."""
        await self._call("DELETE", ari_path("playbacks", playback_id), gone_ok=True)

    async def snoop(
        self,
        channel_id: str,
        *,
        app: str,
        snoop_id: str,
        spy: SnoopDirection = SnoopDirection.NONE,
        whisper: SnoopDirection = SnoopDirection.NONE,
        app_args: str | None = None,
    ) -> Channel:
        """Create a snoop channel on `channel_id` (supervisor listen/whisper)."""
        params = _params(spy=spy, whisper=whisper, app=app, appArgs=app_args, snoopId=snoop_id)
        return await self._typed(
            _one(Channel.from_json),
            "POST",
            ari_path("channels", channel_id, "snoop"),
            params,
        )

    # -- bridges ----------------------------------------------------------------------------

    async def create_bridge(
        self,
        bridge_id: str,
        *,
        type: BridgeType | Sequence[BridgeType] = BridgeType.MIXING,
        name: str | None = None,
    ) -> Bridge:
        types = [type] if isinstance(type, BridgeType) else list(type)
        params = _params(type=[t.value for t in types], bridgeId=bridge_id, name=name)
        return await self._typed(_one(Bridge.from_json), "POST", ari_path("bridges"), params)

    async def list_bridges(self) -> list[Bridge]:
        return await self._typed(_many(Bridge.from_json), "GET", ari_path("bridges"))

    async def destroy_bridge(self, bridge_id: str) -> None:
        """Destroy a bridge; one already gone counts as destroyed."""
        await self._call("DELETE", ari_path("bridges", bridge_id), gone_ok=True)

    async def add_channel(
        self,
        bridge_id: str,
        channel_id: str | Sequence[str],
        *,
        role: str | None = None,
        absorb_dtmf: bool | None = None,
        mute: bool | None = None,
        inhibit_connected_line_updates: bool | None = None,
    ) -> None:
        channels = [channel_id] if isinstance(channel_id, str) else list(channel_id)
        params = _params(
            channel=channels,
            role=role,
            absorbDTMF=absorb_dtmf,
            mute=mute,
            inhibitConnectedLineUpdates=inhibit_connected_line_updates,
        )
        await self._call("POST", ari_path("bridges", bridge_id, "addChannel"), params)

    # -- endpoints and applications -------------------------------------------------------

    async def list_endpoints(self) -> list[Endpoint]:
        return await self._typed(_many(Endpoint.from_json), "GET", ari_path("endpoints"))

    async def subscribe(self, app: str, event_source: str | Sequence[str]) -> Application:
        """Subscribe `app` to e.g. 'endpoint:PJSIP/1001', 'channel:<id>', 'bridge:<id>'."""
        sources = [event_source] if isinstance(event_source, str) else list(event_source)
        return await self._typed(
            _one(Application.from_json),
            "POST",
            ari_path("applications", app, "subscription"),
            _params(eventSource=sources),
        )

    async def filter_events(self, app: str, allowed: Sequence[str]) -> Application:
        """Have Asterisk send `app` only these event types; the others never reach the socket."""
        return await self._typed(
            _one(Application.from_json),
            "PUT",
            ari_path("applications", app, "eventFilter"),
            None,
            {"allowed": [{"type": kind} for kind in allowed]},
        )
