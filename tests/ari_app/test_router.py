"""The router (ari_app/router.py): one reader, each event to the actors owning its resources,
in order; a channel nobody owns that enters the app is a new call; a full inbox slows the
reader down and loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import ari_samples
import pytest

from ari_app.ari.events import (
    AriEvent,
    ChannelDtmfReceived,
    ResourceKind,
    StasisStart,
    parse_event,
)
from ari_app.router import Inbox, Router

CHANNEL, BRIDGE, PLAYBACK = ResourceKind.CHANNEL, ResourceKind.BRIDGE, ResourceKind.PLAYBACK


class Recorder:
    """An actor that keeps what it is given, in order."""

    def __init__(self) -> None:
        self.got: list[object] = []

    async def deliver(self, event: object) -> None:
        self.got.append(event)


class NewChannels:
    def __init__(self) -> None:
        self.started: list[StasisStart] = []

    async def __call__(self, event: StasisStart) -> None:
        self.started.append(event)


def ari(kind: str, ms: int = 0, **fields: Any) -> AriEvent:
    """A typed ARI event as parsed off the websocket."""
    return parse_event(ari_samples.message(kind, ari_samples.at_ms(ms), **fields))


def on_channel(kind: str, channel_id: str, ms: int = 0, **fields: Any) -> AriEvent:
    return parse_event(ari_samples.channel_message(kind, channel_id, ms, **fields))


def digit(channel_id: str, key: str, ms: int) -> AriEvent:
    return on_channel("ChannelDtmfReceived", channel_id, ms, digit=key, duration_ms=100)


@pytest.fixture
def new_channels() -> NewChannels:
    return NewChannels()


@pytest.fixture
def router(new_channels: NewChannels) -> Router:
    return Router(new_channels)


async def test_each_actor_gets_its_own_events_in_the_order_they_came(router: Router) -> None:
    a, b = Recorder(), Recorder()
    router.register(CHANNEL, "call-a", a)
    router.register(CHANNEL, "call-b", b)
    events = [digit("call-a" if n % 3 else "call-b", str(n % 10), n) for n in range(30)]

    for event in events:
        await router.dispatch(event)

    assert a.got == [e for n, e in enumerate(events) if n % 3]
    assert b.got == [e for n, e in enumerate(events) if not n % 3]


@pytest.mark.parametrize(
    ("kind", "resource", "event"),
    [
        (CHANNEL, "c1", lambda: on_channel("ChannelHangupRequest", "c1", cause=16)),
        (BRIDGE, "b1", lambda: ari("BridgeDestroyed", bridge=ari_samples.bridge("b1", []))),
        (
            PLAYBACK,
            "pb-1",
            lambda: ari("PlaybackFinished", playback=ari_samples.playback("pb-1", state="done")),
        ),
    ],
    ids=["channel", "bridge", "playback"],
)
async def test_an_event_goes_to_the_owner_of_its_resource(
    router: Router, kind: ResourceKind, resource: str, event: Any
) -> None:
    owner, other = Recorder(), Recorder()
    router.register(kind, resource, owner)
    router.register(kind, "something-else", other)

    await router.dispatch(event())

    assert len(owner.got) == 1 and other.got == []
    assert router.unrouted == 0


async def test_a_playback_on_a_channel_goes_to_the_playbacks_owner(router: Router) -> None:
    call = Recorder()
    router.register(PLAYBACK, "pb-9", call)  # the channel is not registered: only the playback

    await router.dispatch(
        ari("PlaybackFinished", playback=ari_samples.playback("pb-9", target_uri="channel:x"))
    )

    assert len(call.got) == 1


async def test_an_event_of_two_owned_resources_reaches_each_owner_once(router: Router) -> None:
    call = Recorder()
    router.register(CHANNEL, "c1", call)
    router.register(BRIDGE, "b1", call)
    other = Recorder()
    router.register(BRIDGE, "b2", other)
    entered = ari(
        "ChannelEnteredBridge", bridge=ari_samples.bridge("b1"), channel=ari_samples.channel("c1")
    )

    await router.dispatch(entered)

    assert call.got == [entered]
    assert other.got == []


async def test_an_unknown_channel_entering_the_app_is_a_new_call(
    router: Router, new_channels: NewChannels
) -> None:
    known = Recorder()
    router.register(CHANNEL, "known", known)
    arrival = on_channel("StasisStart", "1717200930.99", args=["inbound"])

    await router.dispatch(arrival)

    assert new_channels.started == [arrival]
    assert known.got == []


async def test_an_owned_channel_entering_the_app_is_its_owners_not_a_new_call(
    router: Router, new_channels: NewChannels
) -> None:
    leg = Recorder()
    router.register(CHANNEL, "c1-op1", leg)
    answered = on_channel("StasisStart", "c1-op1", args=["operator", "c1"])

    await router.dispatch(answered)

    assert leg.got == [answered]
    assert new_channels.started == []


async def test_other_events_of_unknown_resources_are_counted_and_dropped(
    router: Router, new_channels: NewChannels
) -> None:
    await router.dispatch(on_channel("ChannelDestroyed", "nobody", cause=16))
    await router.dispatch(ari("ApplicationReplaced"))

    assert router.unrouted == 2
    assert new_channels.started == []


async def test_a_forgotten_actor_gets_nothing_more(
    router: Router, new_channels: NewChannels
) -> None:
    done, alive = Recorder(), Recorder()
    router.register(CHANNEL, "c1", done)
    router.register(BRIDGE, "c1-bridge", done)
    router.register(CHANNEL, "c2", alive)

    router.forget(done)
    await router.dispatch(on_channel("ChannelHangupRequest", "c1", cause=16))
    await router.dispatch(ari("BridgeDestroyed", bridge=ari_samples.bridge("c1-bridge", [])))
    await router.dispatch(on_channel("ChannelHangupRequest", "c2", cause=16))

    assert done.got == []
    assert len(alive.got) == 1
    assert router.owner(CHANNEL, "c1") is None and router.owner(BRIDGE, "c1-bridge") is None
    assert router.owner(CHANNEL, "c2") is alive
    # A channel of a finished call entering the app again is treated as new, not lost.
    again = on_channel("StasisStart", "c1", 5)
    await router.dispatch(again)
    assert new_channels.started == [again]


async def test_unregister_drops_one_id_only(router: Router) -> None:
    call = Recorder()
    router.register(CHANNEL, "c1", call)
    router.register(PLAYBACK, "pb-1", call)

    router.unregister(PLAYBACK, "pb-1")
    router.unregister(PLAYBACK, "never-registered")

    assert router.owner(PLAYBACK, "pb-1") is None
    assert router.owner(CHANNEL, "c1") is call


async def test_the_same_key_pressed_twice_stays_two_digits(router: Router) -> None:
    call = Recorder()
    router.register(CHANNEL, "c1", call)

    await router.dispatch(digit("c1", "5", 100))
    await router.dispatch(digit("c1", "5", 400))

    assert [e.digit for e in call.got if isinstance(e, ChannelDtmfReceived)] == ["5", "5"]
    assert router.duplicates == 0


async def test_one_key_press_sent_twice_by_asterisk_is_one_digit(router: Router) -> None:
    call = Recorder()
    router.register(CHANNEL, "c1", call)
    press = ari_samples.dtmf("5", "c1")

    await router.dispatch(parse_event(press))
    await router.dispatch(parse_event(press))  # the bridge subscription's copy

    assert len(call.got) == 1
    assert router.duplicates == 1


async def test_a_full_inbox_slows_the_reader_and_loses_nothing(router: Router) -> None:
    class Slow:
        def __init__(self) -> None:
            self.inbox = Inbox(size=2)

        async def deliver(self, event: object) -> None:
            await self.inbox.put(event)

    call = Slow()
    router.register(CHANNEL, "c1", call)
    events = [digit("c1", str(n % 10), n) for n in range(20)]

    reader = asyncio.create_task(_dispatch_all(router, events))
    await asyncio.sleep(0.01)
    assert not reader.done()  # blocked on the full inbox, not dropping
    assert call.inbox.queue.qsize() == 2

    got = [await call.inbox.get() for _ in events]
    await reader

    assert got == events


async def _dispatch_all(router: Router, events: list[AriEvent]) -> None:
    for event in events:
        await router.dispatch(event)


def test_put_nowait_reports_a_full_inbox_instead_of_dropping_silently() -> None:
    inbox = Inbox(size=1)

    assert inbox.put_nowait("first") is True
    assert inbox.put_nowait("second") is False
    assert inbox.queue.qsize() == 1
