"""AriConnection against an in-process fake ARI: order, resilience, reconnects, stop."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import ari_samples
import pytest
from ari_fake_server import PASSWORD, USERNAME, FakeAri

from ari_app.ari import (
    ApplicationReplaced,
    AriConfig,
    AriConnection,
    AriEvent,
    AriRest,
    Backoff,
    ChannelDtmfReceived,
    ChannelVarset,
    MalformedEvent,
    StasisStart,
    UnknownEvent,
)

FAST = Backoff(initial=0.01, maximum=0.05)


class Consumer:
    """Collects events in arrival order; optionally fails or blocks on some of them."""

    def __init__(self) -> None:
        self.events: list[Any] = []  # Any: tests read subclass fields directly
        self._changed = asyncio.Condition()
        self.fail_on: set[str] = set()
        self.block = asyncio.Event()
        self.block.set()

    async def __call__(self, event: AriEvent) -> None:
        await self.block.wait()
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        if event.type in self.fail_on:
            raise RuntimeError(f"consumer bug on {event.type}")

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Any]:
        async def reached() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.events) >= count)

        await asyncio.wait_for(reached(), timeout)
        return self.events


class Resync:
    """An on_connected hook that relists channels like the app will, and can fail."""

    def __init__(self, rest: AriRest, failures: int = 0) -> None:
        self.rest = rest
        self.calls = 0
        self.failures = failures
        self.connected_during_hook: list[bool] = []
        self.connection: AriConnection | None = None

    async def __call__(self) -> None:
        self.calls += 1
        assert self.connection is not None
        self.connected_during_hook.append(self.connection.connected)
        await self.rest.list_channels()
        if self.calls <= self.failures:
            raise RuntimeError("resync failed")


def make_connection(
    fake: FakeAri,
    session: aiohttp.ClientSession,
    consumer: Consumer,
    *,
    failures: int = 0,
    backoff: Backoff = FAST,
    heartbeat: float = 5.0,
    connect_timeout: float = 5.0,
) -> tuple[AriConnection, Resync]:
    config = AriConfig(
        username=USERNAME,
        password=PASSWORD,
        url=fake.url,
        heartbeat=heartbeat,
        connect_timeout=connect_timeout,
    )
    resync = Resync(AriRest.from_session(session, config), failures)
    connection = AriConnection(config, session, consumer, on_connected=resync, backoff=backoff)
    resync.connection = connection
    fake.reply("GET", "/channels", 200, [])
    return connection, resync


Running = tuple[AriConnection, Consumer, Resync]


@pytest.fixture
async def running(fake: FakeAri, session: aiohttp.ClientSession) -> AsyncIterator[Running]:
    consumer = Consumer()
    connection, resync = make_connection(fake, session, consumer)
    connection.start()
    await asyncio.wait_for(connection.wait_connected(), 5)
    yield connection, consumer, resync
    await connection.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)


# -- connecting -----------------------------------------------------------------------------


async def test_connect_checks_info_then_subscribes_app_with_header_auth(
    fake: FakeAri, running: Running
) -> None:
    connection, _, resync = running

    ws = fake.conn
    assert ws.query == {"app": "siaga", "subscribeAll": "false"}
    assert ws.headers["Authorization"].startswith("Basic ")
    assert PASSWORD not in ws.request.raw_path
    assert [r.path for r in fake.requests] == ["/ari/asterisk/info", "/ari/channels"]
    assert connection.connected
    assert connection.asterisk is not None and connection.asterisk.version.startswith("22.")
    assert resync.calls == 1
    assert resync.connected_during_hook == [False]


async def test_wait_connected_can_be_awaited_before_start(
    fake: FakeAri, session: aiohttp.ClientSession
) -> None:
    connection, _ = make_connection(fake, session, Consumer())
    waiter = asyncio.create_task(connection.wait_connected())
    await asyncio.sleep(0.01)
    assert not waiter.done()

    connection.start()
    await asyncio.wait_for(waiter, 5)

    assert connection.connected
    await connection.stop()


# -- ordered delivery -----------------------------------------------------------------------


async def test_events_arrive_in_the_order_sent(fake: FakeAri, running: Running) -> None:
    _, consumer, _ = running
    samples = [ari_samples.event(t) for t in ("StasisStart", "ChannelDtmfReceived", "StasisEnd")]

    await fake.send(*samples)
    events = await consumer.wait_for(3)

    assert [e.type for e in events] == ["StasisStart", "ChannelDtmfReceived", "StasisEnd"]
    assert isinstance(events[0], StasisStart)


async def test_burst_of_a_thousand_events_keeps_order_and_drops_none(
    fake: FakeAri, running: Running
) -> None:
    _, consumer, _ = running
    burst = [
        {**ari_samples.event("ChannelVarset"), "variable": "SEQ", "value": str(i)}
        for i in range(1000)
    ]

    await fake.send(*burst)
    events = await consumer.wait_for(1000)

    assert all(isinstance(e, ChannelVarset) for e in events)
    assert [e.value for e in events] == [str(i) for i in range(1000)]


async def test_burst_is_kept_in_order_behind_a_slow_consumer(
    fake: FakeAri, running: Running
) -> None:
    _, consumer, _ = running
    consumer.block.clear()
    digits = "0123456789*#" * 20

    await fake.send(*(ari_samples.dtmf(d) for d in digits))
    await asyncio.sleep(0.05)
    consumer.block.set()
    events = await consumer.wait_for(len(digits))

    assert "".join(e.digit for e in events) == digits


async def test_malformed_and_unknown_messages_do_not_stop_the_reader(
    fake: FakeAri, running: Running
) -> None:
    connection, consumer, _ = running

    await fake.send(
        "this is not json",
        json.dumps({"no": "type"}),
        {"type": "ChannelCreated", "channel": ari_samples.channel("c9")},
        {**ari_samples.event("ChannelDtmfReceived"), "digit": 7},
        ari_samples.dtmf("5"),
    )
    events = await consumer.wait_for(5)

    assert [type(e) for e in events] == [
        MalformedEvent,
        MalformedEvent,
        UnknownEvent,
        MalformedEvent,
        ChannelDtmfReceived,
    ]
    assert events[4].digit == "5"
    assert connection.connected
    assert connection.connects == 1


async def test_a_failing_consumer_does_not_stop_the_reader(fake: FakeAri, running: Running) -> None:
    connection, consumer, _ = running
    consumer.fail_on = {"StasisStart"}

    await fake.send(ari_samples.event("StasisStart"), ari_samples.dtmf("9"))
    events = await consumer.wait_for(2)

    assert events[1].digit == "9"
    assert connection.connects == 1


async def test_application_replaced_is_delivered(fake: FakeAri, running: Running) -> None:
    _, consumer, _ = running

    await fake.send(ari_samples.event("ApplicationReplaced"))
    [event] = await consumer.wait_for(1)

    assert isinstance(event, ApplicationReplaced)


async def test_a_halted_connection_delivers_nothing_more_and_never_reconnects(
    fake: FakeAri, session: aiohttp.ClientSession
) -> None:
    consumer = Consumer()
    connection, resync = make_connection(fake, session, consumer)

    async def halting(event: AriEvent) -> None:
        await consumer(event)
        if isinstance(event, ApplicationReplaced):
            connection.halt()  # what the app does when another app took its Stasis app

    connection._on_event = halting
    task = connection.start()
    await asyncio.wait_for(connection.wait_connected(), 5)

    await fake.send(ari_samples.event("ApplicationReplaced"), ari_samples.dtmf("9"))
    await asyncio.wait_for(task, 5)  # ended by itself: no reconnect scheduled
    await asyncio.sleep(0.2)

    assert [e.type for e in consumer.events] == ["ApplicationReplaced"]
    assert not connection.connected
    assert (connection.connects, resync.calls) == (1, 1)
    await connection.stop()


# -- reconnecting ---------------------------------------------------------------------------


async def test_clean_websocket_close_is_a_disconnect_then_reconnect_and_resync(
    fake: FakeAri, session: aiohttp.ClientSession
) -> None:
    consumer = Consumer()
    slow = Backoff(initial=0.2, maximum=0.2)  # a down window long enough to observe
    connection, resync = make_connection(fake, session, consumer, backoff=slow)
    connection.start()
    await asyncio.wait_for(connection.wait_connected(), 5)

    await fake.close_ws()
    await wait_until(lambda: not connection.connected)
    await fake.wait_conns(2)
    await asyncio.wait_for(connection.wait_connected(), 5)

    assert connection.connects == 2
    assert resync.calls == 2
    assert [r.path for r in fake.requests].count("/ari/asterisk/info") == 2
    assert [r.path for r in fake.requests].count("/ari/channels") == 2
    await fake.send(ari_samples.dtmf("3"))
    [event] = await consumer.wait_for(1)
    assert event.digit == "3"
    await connection.stop()


async def test_abrupt_connection_loss_reconnects(fake: FakeAri, running: Running) -> None:
    connection, consumer, resync = running

    fake.cut_ws()
    await fake.wait_conns(2)
    await wait_until(lambda: connection.connects == 2)

    assert connection.connected
    assert resync.calls == 2
    await fake.send(ari_samples.dtmf("4"))
    assert (await consumer.wait_for(1))[0].digit == "4"


async def test_silent_server_is_detected_by_heartbeat(
    fake: FakeAri, session: aiohttp.ClientSession
) -> None:
    fake.deaf = True
    connection, _ = make_connection(fake, session, Consumer(), heartbeat=0.2)
    connection.start()
    await asyncio.wait_for(connection.wait_connected(), 5)
    fake.deaf = False

    await fake.wait_conns(2, timeout=3)
    await wait_until(lambda: connection.connects == 2)

    assert connection.connected
    await connection.stop()


async def test_hung_websocket_upgrade_times_out_and_is_retried(
    fake: FakeAri, session: aiohttp.ClientSession
) -> None:
    fake.ws_upgrade_delay = 3.0
    connection, _ = make_connection(fake, session, Consumer(), connect_timeout=0.2)
    started = time.monotonic()

    connection.start()
    await asyncio.wait_for(connection.wait_connected(), 5)

    assert time.monotonic() - started < 1.5
    assert fake.ws_attempts == 2
    await connection.stop()


async def test_unavailable_asterisk_is_retried_with_backoff(
    fake: FakeAri, session: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        fake.reply("GET", "/asterisk/info", 503, {"message": "Asterisk not booted"})
    fake.reply("GET", "/asterisk/info", 200, ari_samples.asterisk_info())
    connection, resync = make_connection(fake, session, Consumer())

    connection.start()
    await asyncio.wait_for(connection.wait_connected(), 5)

    assert [r.path for r in fake.requests].count("/ari/asterisk/info") == 4
    assert fake.ws_attempts == 1
    assert resync.calls == 1
    await connection.stop()


async def test_first_attempt_ends_when_resynced(fake: FakeAri, running: Running) -> None:
    connection, _, resync = running
    await asyncio.wait_for(connection.wait_first_attempt(), 1)
    assert resync.calls == 1 and connection.connected


async def test_first_attempt_ends_when_the_asterisk_is_away(
    fake: FakeAri, session: aiohttp.ClientSession
) -> None:
    # An app with several nodes waits for each node's first attempt, not for a connection
    # that a node that is down would never give.
    for _ in range(50):
        fake.reply("GET", "/asterisk/info", 503, {"message": "Asterisk not booted"})
    connection, resync = make_connection(fake, session, Consumer(), backoff=Backoff(1.0, 1.0))

    connection.start()
    await asyncio.wait_for(connection.wait_first_attempt(), 1)

    assert not connection.connected and resync.calls == 0
    await connection.stop()


async def test_rejected_websocket_is_retried(fake: FakeAri, session: aiohttp.ClientSession) -> None:
    fake.ws_reject_status = 503
    connection, _ = make_connection(fake, session, Consumer())
    connection.start()
    await wait_until(lambda: fake.ws_attempts >= 3)

    assert not connection.connected
    fake.ws_reject_status = None
    await asyncio.wait_for(connection.wait_connected(), 5)
    assert connection.connects == 1
    await connection.stop()


async def test_failed_resync_drops_the_connection_and_retries(
    fake: FakeAri, session: aiohttp.ClientSession
) -> None:
    connection, resync = make_connection(fake, session, Consumer(), failures=2)

    connection.start()
    await asyncio.wait_for(connection.wait_connected(), 5)

    assert resync.calls == 3
    assert len(fake.conns) == 3
    assert connection.connects == 1
    assert all(c.closed.is_set() for c in fake.conns[:2])
    await connection.stop()


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    backoff = Backoff(initial=0.1, maximum=5.0)

    lows = [backoff.delay(n, rand=lambda: 0.0) for n in range(9)]
    highs = [backoff.delay(n, rand=lambda: 1.0) for n in range(9)]

    assert highs == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert lows == pytest.approx([h / 2 for h in highs])
    assert backoff.delay(10_000) <= 5.0


# -- stopping -------------------------------------------------------------------------------


async def test_stop_is_prompt_and_closes_the_websocket(fake: FakeAri, running: Running) -> None:
    connection, _, _ = running
    task = connection.start()

    started = time.monotonic()
    await connection.stop()

    assert time.monotonic() - started < 0.5
    assert task.done() and not task.cancelled()
    assert not connection.connected
    await asyncio.wait_for(fake.conn.closed.wait(), 2)


async def test_stop_during_backoff_is_prompt(fake: FakeAri, session: aiohttp.ClientSession) -> None:
    fake.ws_reject_status = 503
    slow = Backoff(initial=10.0, maximum=10.0)
    connection, _ = make_connection(fake, session, Consumer(), backoff=slow)
    task = connection.start()
    await wait_until(lambda: fake.ws_attempts >= 1)

    started = time.monotonic()
    await connection.stop()

    assert time.monotonic() - started < 0.5
    assert task.done()


async def test_stop_with_a_stuck_consumer_cancels_within_grace(
    fake: FakeAri, running: Running
) -> None:
    connection, consumer, _ = running
    consumer.block.clear()
    await fake.send(ari_samples.dtmf("1"))
    await asyncio.sleep(0.05)

    started = time.monotonic()
    await connection.stop()

    assert time.monotonic() - started < 2.0
    assert not connection.connected


async def test_run_can_be_awaited_directly_and_stopped(
    fake: FakeAri, session: aiohttp.ClientSession
) -> None:
    connection, _ = make_connection(fake, session, Consumer())
    runner = asyncio.create_task(connection.run())
    await asyncio.wait_for(connection.wait_connected(), 5)

    await connection.stop()

    await asyncio.wait_for(runner, 1)
    assert not connection.connected
