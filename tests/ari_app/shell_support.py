"""A SiagaApp over a fake Asterisk REST interface, the real ACD core and a list journal: the call
actors and the resync run without Asterisk, each request recorded, any of them refusable."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ari_app.app import SiagaApp, acd_config
from ari_app.ari.errors import error_for_status
from ari_app.ari.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    StasisStart,
)
from ari_app.ari.models import Bridge, CallerId, Channel, ChannelState, DialplanLocation
from ari_app.ari.rest import SnoopDirection
from db.events import EventKind, RecordEvent
from queues import events as acd_events
from queues.acd import Acd
from siaga.config import Config, load_config

CONFIG: Config = load_config(Path(__file__).resolve().parents[2] / "siaga.toml")
APP = CONFIG.asterisk.app


class FakeRest:
    """Asterisk's REST interface as a call uses it: every request is noted as (verb, resource);
    `refuse(verb, resource, status)` makes the next such request fail with that HTTP status."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.channels: list[Channel] = []
        self.bridges: list[Bridge] = []
        self.variables: dict[tuple[str, str], str] = {}
        self._refusals: dict[tuple[str, str], int] = {}

    def refuse(self, verb: str, resource: str, status: int) -> None:
        self._refusals[(verb, resource)] = status

    def sent(self, verb: str) -> list[str]:
        return [resource for v, resource in self.requests if v == verb]

    async def _request(self, verb: str, resource: str) -> None:
        self.requests.append((verb, resource))
        await asyncio.sleep(0)  # a request lets other tasks run, as a real one does
        status = self._refusals.pop((verb, resource), None)
        if status is not None:
            raise error_for_status("POST", f"/{verb}/{resource}", status, "refused")

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
        originator: str | None = None,
    ) -> None:
        await self._request("originate", channel_id)

    async def answer(self, channel_id: str) -> None:
        await self._request("answer", channel_id)

    async def hangup(self, channel_id: str) -> None:
        await self._request("hangup", channel_id)

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
    ) -> None:
        await self._request("continue", channel_id)

    async def start_moh(self, channel_id: str) -> None:
        await self._request("start_moh", channel_id)

    async def stop_moh(self, channel_id: str) -> None:
        await self._request("stop_moh", channel_id)

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self._request("set_variable", channel_id)
        self.variables[(channel_id, variable)] = value

    async def get_variable(self, channel_id: str, variable: str) -> str:
        await self._request("get_variable", channel_id)
        if (channel_id, variable) not in self.variables:
            raise error_for_status("GET", f"/variable/{channel_id}", 404, "no such variable")
        return self.variables[(channel_id, variable)]

    async def play(self, channel_id: str, media: str | Sequence[str], *, playback_id: str) -> None:
        await self._request("play", channel_id)

    async def stop_playback(self, playback_id: str) -> None:
        await self._request("stop_playback", playback_id)

    async def snoop(
        self,
        channel_id: str,
        *,
        app: str,
        snoop_id: str,
        spy: SnoopDirection = SnoopDirection.NONE,
        whisper: SnoopDirection = SnoopDirection.NONE,
        app_args: str | None = None,
    ) -> None:
        await self._request("snoop", snoop_id)

    async def create_bridge(self, bridge_id: str, *, name: str | None = None) -> None:
        await self._request("create_bridge", bridge_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._request("destroy_bridge", bridge_id)

    async def add_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None:
        channels = [channel_id] if isinstance(channel_id, str) else list(channel_id)
        await self._request("add_channel", ",".join(channels))

    async def list_channels(self) -> list[Channel]:
        return list(self.channels)

    async def list_bridges(self) -> list[Bridge]:
        return list(self.bridges)


class ListJournal:
    def __init__(self) -> None:
        self.events: list[RecordEvent] = []

    def write(self, event: RecordEvent) -> None:
        self.events.append(event)

    def of(self, call_id: str, kind: EventKind) -> list[RecordEvent]:
        return [e for e in self.events if e.call_id == call_id and e.kind is kind]


@dataclasses.dataclass
class Centre:
    app: SiagaApp
    rest: FakeRest
    journal: ListJournal

    async def send(self, *events: object) -> None:
        """ARI events, through the router, as the connection's reader gives them."""
        for event in events:
            await self.app.router.dispatch(event)  # type: ignore[arg-type]
        await settle()


def centre(strategy: str = "longest_idle", operators: Sequence[str] = ("1001", "1002")) -> Centre:
    """The app, its ACD with these operators logged in and registered, and nothing else."""
    config = dataclasses.replace(CONFIG, acd=dataclasses.replace(CONFIG.acd, strategy=strategy))
    journal = ListJournal()
    app = SiagaApp(config, journal, prompts_dir=None)
    rest = FakeRest()
    app._rests = {"": rest}  # type: ignore[dict-item]
    app._acd_core = Acd(acd_config(config), app.clock())
    for operator_id in operators:
        app.operator_login(operator_id)
        app.to_acd(acd_events.OperatorRegistration(operator_id, True))
    return Centre(app, rest, journal)


async def settle(rounds: int = 100) -> None:
    """Let every actor carry out what its inbox holds (the fake requests never block)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def channel(
    channel_id: str,
    *,
    args: str = "",
    state: ChannelState = ChannelState.UP,
    number: str = "081234567890",
    created: datetime | None = None,
) -> Channel:
    return Channel(
        id=channel_id,
        name=f"PJSIP/trunk-{channel_id}",
        state=state,
        caller=CallerId("Budi", number),
        dialplan=DialplanLocation(app_name="Stasis", app_data=f"{APP},{args}".rstrip(",")),
        creationtime=created or datetime.now(UTC),
    )


def stasis_start(channel_id: str, *args: str) -> StasisStart:
    return StasisStart(channel=channel(channel_id, args=",".join(args)), args=args)


def digit(channel_id: str, key: str) -> ChannelDtmfReceived:
    return ChannelDtmfReceived(channel=channel(channel_id), digit=key)


def hangup(channel_id: str, cause: int = 16) -> ChannelHangupRequest:
    return ChannelHangupRequest(channel=channel(channel_id), cause=cause)


def destroyed(channel_id: str, cause: int = 16) -> ChannelDestroyed:
    return ChannelDestroyed(channel=channel(channel_id), cause=cause)
