"""The integration tests' own ARI look-ups: what the product never asks Asterisk, only the tests
do (is this channel up, who is in that bridge, is the phone registered, record what a
supervisor hears)."""

from __future__ import annotations

from ari_app.ari.jsonfields import as_object
from ari_app.ari.models import Application, Bridge, Channel, Endpoint, LiveRecording
from ari_app.ari.rest import AriRest
from ari_app.ari.transport import ari_path


class AriProbe(AriRest):
    async def get_channel(self, channel_id: str) -> Channel:
        return await self._typed(
            lambda data: Channel.from_json(as_object(data, "channel")),
            "GET",
            ari_path("channels", channel_id),
        )

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return await self._typed(
            lambda data: Bridge.from_json(as_object(data, "bridge")),
            "GET",
            ari_path("bridges", bridge_id),
        )

    async def get_endpoint(self, technology: str, resource: str) -> Endpoint:
        return await self._typed(
            lambda data: Endpoint.from_json(as_object(data, "endpoint")),
            "GET",
            ari_path("endpoints", technology, resource),
        )

    async def get_application(self, app: str) -> Application:
        return await self._typed(
            lambda data: Application.from_json(as_object(data, "application")),
            "GET",
            ari_path("applications", app),
        )

    async def record_bridge(self, bridge_id: str, name: str, *, format: str) -> LiveRecording:
        return await self._typed(
            lambda data: LiveRecording.from_json(as_object(data, "recording")),
            "POST",
            ari_path("bridges", bridge_id, "record"),
            {"name": name, "format": format},
        )

    async def stop_recording(self, name: str) -> None:
        await self._call("POST", ari_path("recordings", "live", name, "stop"))
