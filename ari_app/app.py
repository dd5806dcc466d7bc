"""The Siaga ARI application: connection, router, call actors, the ACD and the records.

The IO shell around the pure parts: `queues.Acd` decides who takes which call, each call's
`CallMachine` decides what the caller hears; this module only moves events and commands between
them, Asterisk and the journal.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Protocol

import aiohttp
import structlog

from ari_app.actor import CallActor
from ari_app.ari.config import AriConfig
from ari_app.ari.connection import AriConnection
from ari_app.ari.errors import AriError
from ari_app.ari.events import (
    ApplicationReplaced,
    AriEvent,
    EndpointStateChange,
    ResourceKind,
    StasisStart,
)
from ari_app.ari.lean import LeanTransport
from ari_app.ari.models import Channel, ChannelState, Endpoint, EndpointState
from ari_app.ari.rest import AriRest
from ari_app.call.adoption import (
    LEG_KINDS,
    QUEUE_VARIABLE,
    FoundChannel,
    adopted,
    plan_resync,
    stale_bridges,
)
from ari_app.call.events import (
    AgencyRequested,
    ColleagueRequested,
    HandOver,
    HangUpRequested,
    HoldRequested,
    HungUp,
    LeaveRequested,
    ListenRequested,
    Overflowed,
    PositionKnown,
    RingCancelled,
    RingRequested,
)
from ari_app.call.states import CallState, ListenMode, Party
from ari_app.callback import CallbackActor
from ari_app.executors import FALLBACK_CONTEXT
from ari_app.isolation import Isolation
from ari_app.metrics import Metrics
from ari_app.router import Router
from db.events import NODE_LOST, Fact, Facts, RecordEvent
from db.reconcile import PbxNow, pbx_now
from edge.registrations import RegistrationWatch
from queues import events as acd_events
from queues.acd import Acd
from queues.config import AcdConfig, Strategy
from queues.decisions import Announce, CancelOffer, Decision, Offer, OperatorStateChanged, Overflow
from queues.snapshot import Snapshot
from queues.states import CallPlace, OperatorState
from siaga.config import Config, OperatorConfig

log = structlog.get_logger(__name__)


ARI_CONNECTIONS = 200
# (node, when it went down, the calls of it the app holds and ends itself)
OnNodeLost = Callable[[str, datetime, frozenset[str]], None]
# (call ids) -> those the records closed as their node's loss
EndedAsLost = Callable[[list[str]], Awaitable[set[str]]]
# A resync asks the records about the calls it would adopt for at most this long: it holds
# up that node's events, and the offers of a takeover.
ENDED_AS_LOST_SECONDS = 1.0
# A node whose ARI has been away this long is taken as lost (docs/ha.md): its calls are ended
# as cut (their media was there), so their operators are free for the callers of the other
# nodes instead of waiting for a node that may never come back.
NODE_LOST_SECONDS = 5.0
# Offers are held at the start until every node's first connect has ended (resynced or
# failed) and the edge said who is registered, but no longer than this: a node out of reach
# would cost its whole connect timeout otherwise.
NODES_SETTLE_SECONDS = 1.0
# An active app that reaches no other machine (no other node's ARI, not the edge) this long is
# on the losing side of a partition and halts (ari_app/isolation.py). Well under a takeover's
# own time (the PostgreSQL failover, then the lease and its margin).
ISOLATED_SECONDS = 3.0
# The event types the app acts on. Asterisk sends no others: ChannelVarset, ChannelDialplan,
# ChannelStateChange and the like are most of the traffic, each a websocket frame to write,
# read and parse for nothing.
WANTED_EVENTS = (
    "StasisStart",
    "StasisEnd",
    "ChannelDtmfReceived",
    "ChannelTalkingStarted",
    "ChannelHangupRequest",
    "ChannelDestroyed",
    "PlaybackFinished",
    "Dial",
    "EndpointStateChange",
    "ApplicationReplaced",
)


class NotConnectedError(Exception):
    """Listening in needs a connected call."""


class NotYourCallError(Exception):
    """A desk call control for a call the operator is not connected to."""


class ColleagueUnavailableError(Exception):
    """The colleague to conference in is not ready (an operator) or has no phone."""


class CallbackUnavailableError(RuntimeError):
    """A callback cannot be placed (not configured, or already running)."""


class UnknownCallError(KeyError):
    """No live call with that id."""


class UnknownOperatorError(KeyError):
    """No operator with that id in siaga.toml."""


class Journal(Protocol):
    def write(self, event: RecordEvent) -> None: ...


def acd_config(config: Config) -> AcdConfig:
    return AcdConfig(
        categories=config.categories,
        strategy=Strategy(config.acd.strategy),
        ring_timeout_seconds=config.acd.ring_timeout_seconds,
        max_consecutive_misses=config.acd.max_consecutive_misses,
        retry_after_busy_seconds=config.acd.retry_after_busy_seconds,
        announce_interval_seconds=config.acd.announce_interval_seconds,
        overflow=config.overflow,
        disposition_block_after_seconds=config.acd.disposition_block_after_seconds,
    )


class SiagaApp:
    def __init__(
        self,
        config: Config,
        journal: Journal,
        *,
        prompts_dir: PurePosixPath | None,
        clock: Callable[[], float] | None = None,
        on_replaced: Callable[[], None] | None = None,
        peers: Callable[[], Awaitable[int]] | None = None,
        on_isolated: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        # With [ha] and [[asterisk.nodes]] behind an edge: how many other machines answer now
        # (stack/peers.py), and what to call when none has for a while (ari_app/isolation.py).
        self._peers = peers
        self._on_isolated = on_isolated
        # Set when another app may take over (the lease of [ha]): on ApplicationReplaced this
        # app halts and this is called; None (the single box): only logged, as before.
        self._on_replaced = on_replaced
        self.halted = False
        self.journal = journal
        self.prompts_dir = prompts_dir
        self._clock = clock
        self.operators: dict[str, OperatorConfig] = {op.id: op for op in config.operators}
        self._by_endpoint = {
            op.dial_string: op.id for op in config.operators if op.dial_string.startswith("PJSIP/")
        }
        self.calls: dict[str, CallActor] = {}
        self.router = Router(self._on_new_channel)
        self._acd_core: Acd | None = None
        self._session: aiohttp.ClientSession | None = None  # the event websockets'
        self._transports: list[LeanTransport] = []  # REST requests, one per Asterisk
        # One REST client and one event connection per Asterisk, by node name: "" for the
        # single box's only one, else each [[asterisk.nodes]] name (its systemname).
        self._rests: dict[str, AriRest] = {}
        self._connections: dict[str, AriConnection] = {}
        self._tick: asyncio.TimerHandle | None = None
        self._tick_at: float | None = None
        self.calls_started = 0
        self.draining = False
        self.metrics = Metrics()
        self.callbacks: dict[str, CallbackActor] = {}
        self._no_calls = asyncio.Event()
        self._node_watch: asyncio.Task[None] | None = None
        self._presence: RegistrationWatch | None = None
        # Set by the stack with [[asterisk.nodes]]: a lost node's calls the app never held (it
        # took over after the node died) are closed in the records, from the database's rows.
        self.on_node_lost: OnNodeLost | None = None
        # Calls ended as their node's loss: hung up, not adopted, if their node shows them again.
        self.lost_calls: set[str] = set()
        # Set by the stack with [[asterisk.nodes]]: which of the calls a resync would adopt the
        # records closed as their node's loss (an app active before this one lost their node).
        self.ended_as_lost: EndedAsLost | None = None
        self._offers_release: asyncio.Task[None] | None = None
        self._isolation_watch: asyncio.Task[None] | None = None

    # -- life cycle

    def clock(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    @property
    def rest(self) -> AriRest:
        """The first Asterisk's REST client (the single box's only one)."""
        if not self._rests:
            raise RuntimeError("SiagaApp.start() first")
        return next(iter(self._rests.values()))

    def node_of(self, channel_id: str) -> str:
        """The node a channel lives on. Each node's Asterisk starts every id it makes with its
        systemname and a dash, and every leg the app makes is named after its call's channel,
        so a call and all of its legs live on the caller's node (docs/ha.md)."""
        found = ""
        for name in self._rests:
            if name and channel_id.startswith(f"{name}-") and len(name) > len(found):
                found = name  # the longest: node "a" must not take "a-b"'s channels
        return found or next(iter(self._rests), "")

    def rest_for(self, channel_id: str) -> AriRest:
        """The REST client of the Asterisk that channel lives on."""
        if not self._rests:
            raise RuntimeError("SiagaApp.start() first")
        return self._rests[self.node_of(channel_id)]

    def rest_of_any_node(self) -> AriRest:
        """A connected Asterisk's REST client, for calls the app places itself (callbacks)."""
        for name, connection in self._connections.items():
            if connection.connected:
                return self._rests[name]
        return self.rest

    @property
    def acd_core(self) -> Acd:
        """The ACD core (queues/acd.py): fed only through `to_acd`."""
        if self._acd_core is None:
            raise RuntimeError("SiagaApp.start() first")
        return self._acd_core

    @property
    def connected(self) -> bool:
        """Connected to an Asterisk (with several nodes: to at least one; a node that is
        down takes no calls, the edge sends them to the others)."""
        return any(c.connected for c in self._connections.values())

    def nodes_connected(self) -> dict[str, bool]:
        """Each Asterisk's connection, by node name ("" for the single box's)."""
        return {name: c.connected for name, c in self._connections.items()}

    async def start(self) -> None:
        ast = self.config.asterisk
        # Well below Asterisk's HTTP session limit (http.conf), so a burst queues here
        # instead of Asterisk dropping connections.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=ARI_CONNECTIONS))
        urls = {node.name: node.ari_url for node in ast.nodes} or {"": ast.ari_url}
        aris = {
            name: AriConfig(username=ast.ari_user, password=ast.ari_password, app=ast.app, url=url)
            for name, url in urls.items()
        }
        for name, ari in aris.items():
            transport = LeanTransport(ari, max_connections=ARI_CONNECTIONS)
            self._transports.append(transport)
            self._rests[name] = AriRest(transport, timeout=ari.request_timeout)
        self._acd_core = Acd(acd_config(self.config), self.clock())
        self.to_acd(acd_events.OffersHeld(True))  # until what Asterisk has is adopted
        if self.config.acd.login_on_start:
            for op in self.config.operators:
                self.to_acd(acd_events.OperatorLoggedIn(op.id, dict(op.skills)))
                if not op.dial_string.startswith("PJSIP/"):
                    self.to_acd(acd_events.OperatorRegistration(op.id, True))
        for name, ari in aris.items():
            connection = AriConnection(
                ari,
                self._session,
                self._on_event,
                on_connected=functools.partial(self._on_connected, name),
                rest=self._rests[name],
            )
            self._connections[name] = connection
            connection.start()
        if ast.nodes:
            self._node_watch = asyncio.create_task(self._watch_nodes(), name="node-watch")
        if self._peers is not None and self._on_isolated is not None:
            self._isolation_watch = asyncio.create_task(
                self._watch_isolation(Isolation(ISOLATED_SECONDS)), name="isolation-watch"
            )
        if self.config.edge is not None:
            # The phones register at the edge: who is reachable is its registrations' say.
            self._presence = RegistrationWatch.for_config(self.config, self._registration)
            self._presence.start()
        self._offers_release = asyncio.create_task(
            self._release_offers_once_settled(), name="offers-release"
        )

    async def _release_offers_once_settled(self) -> None:
        """Offers are held from the start until every node has been resynced or has failed
        its first connect, and the edge (if any) has said who is registered; at most
        NODES_SETTLE_SECONDS. A takeover adopts one node's calls after another's: offering
        before the last is adopted could ring an operator who is talking there, or serve a
        caller before an older one (docs/ha.md)."""
        unsettled = {name: "ari" for name in self._connections}

        async def settle(name: str, connection: AriConnection) -> None:
            await connection.wait_first_attempt()
            unsettled.pop(name, None)

        async def presence_reported(presence: RegistrationWatch) -> None:
            await presence.wait_reported()
            unsettled.pop("edge", None)

        waits = [settle(name, c) for name, c in self._connections.items()]
        if self._presence is not None:
            unsettled["edge"] = "presence"
            waits.append(presence_reported(self._presence))
        try:
            async with asyncio.timeout(NODES_SETTLE_SECONDS):
                await asyncio.gather(*waits)
        except TimeoutError:
            log.warning("app.offers_released_unsettled", waiting_for=sorted(unsettled))
        if not self.halted:
            log.info("app.offers_released", nodes_connected=self.nodes_connected())
            self.to_acd(acd_events.OffersHeld(False))

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Until one Asterisk is connected (with several nodes, any: one may be down)."""
        if not self._connections:
            raise RuntimeError("SiagaApp.start() first")
        waits = [asyncio.ensure_future(c.wait_connected()) for c in self._connections.values()]
        try:
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for wait in waits:
                wait.cancel()
        if not done:
            raise TimeoutError(f"no Asterisk connected in {timeout} s")

    async def drain(self, timeout: float = 30.0, abort: asyncio.Event | None = None) -> None:
        """Graceful shutdown: new calls and calls not yet with an operator go to the fallback;
        conversations finish. Returns when none is left, after `timeout`, or on `abort`."""
        self.draining = True
        for actor in list(self.calls.values()):
            actor.post(HandOver())
        log.info("app.draining", calls=len(self.calls))
        if self.calls:
            waits = [asyncio.ensure_future(self._no_calls.wait())]
            if abort is not None:
                waits.append(asyncio.ensure_future(abort.wait()))
            _, pending = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
        log.info("app.drained", calls_left=len(self.calls))

    def halt(self) -> None:
        """Stop acting now, synchronously: no more ACD tick, every call's work cancelled, no
        event acted on and no reconnect. Another app is (or is about to be) active; the calls
        stay up in Asterisk for it to adopt. `stop()` then closes the connections."""
        if self.halted:
            return
        self.halted = True
        log.warning("app.halted", calls=len(self.calls))
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        for connection in self._connections.values():
            connection.halt()
        if self._node_watch is not None:
            self._node_watch.cancel()
        if self._offers_release is not None:
            self._offers_release.cancel()
        if (
            self._isolation_watch is not None
            and self._isolation_watch is not asyncio.current_task()
        ):
            self._isolation_watch.cancel()
        tasks = [actor.task for actor in self.calls.values()]
        tasks += [actor.task for actor in self.callbacks.values()]
        for task in tasks:
            if task is not None:
                task.cancel()

    async def stop(self) -> None:
        """Stop reading events. Calls stay up in Asterisk (a restarted app adopts them)."""
        if self._tick is not None:
            self._tick.cancel()
        if self._node_watch is not None:
            self._node_watch.cancel()
        if self._offers_release is not None:
            self._offers_release.cancel()
        if self._isolation_watch is not None:
            self._isolation_watch.cancel()
        if self._presence is not None:
            await self._presence.stop()
        await asyncio.gather(*(c.stop() for c in self._connections.values()))
        tasks = [actor.task for actor in self.calls.values() if actor.task is not None]
        tasks += [actor.task for actor in self.callbacks.values() if actor.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for transport in self._transports:
            await transport.close()
        if self._session is not None:
            await self._session.close()

    async def _watch_nodes(self, every: float = 1.0) -> None:
        down_since: dict[str, float] = {}
        lost: set[str] = set()  # once per outage
        while True:
            await asyncio.sleep(every)
            now = self.clock()
            for name, connection in self._connections.items():
                if connection.connected:
                    down_since.pop(name, None)
                    lost.discard(name)
                elif name not in lost and now - down_since.setdefault(name, now) >= (
                    NODE_LOST_SECONDS
                ):
                    lost.add(name)
                    self.node_lost(name, now - down_since[name])

    async def _watch_isolation(self, isolation: Isolation, every: float = 1.0) -> None:
        """Ask the other machines every `every` s; halt once none has answered for
        ISOLATED_SECONDS (ari_app/isolation.py)."""
        assert self._peers is not None
        while not self.halted:
            answered = await self._peers()
            if isolation.observe(self.clock(), peers_answered=answered):
                log.error("app.isolated", after=isolation.after)
                self.halt()
                if self._on_isolated is not None:
                    self._on_isolated()
                return
            await asyncio.sleep(every)

    def node_lost(self, node: str, down_for: float = NODE_LOST_SECONDS) -> None:
        """End the calls of a node the app lost (down for `down_for` s): cut, by the system,
        reason `node_lost`; then have the records of its calls the app never held closed too.
        If the node shows those calls again, its resync hangs them up (`lost_calls`)."""
        lost = [actor for call_id, actor in self.calls.items() if self.node_of(call_id) == node]
        log.warning("app.node_lost", node=node, calls=len(lost))
        self.lost_calls.update(actor.call_id for actor in lost)
        for actor in lost:
            actor.post(HungUp(Party.SYSTEM, NODE_LOST))
        if self.on_node_lost is not None:
            down_since = datetime.now(UTC) - timedelta(seconds=down_for)
            self.on_node_lost(node, down_since, frozenset(a.call_id for a in lost))

    async def _ended_as_lost(self, call_ids: list[str]) -> set[str]:
        """The records' word on calls a resync would adopt; none when they cannot say within
        ENDED_AS_LOST_SECONDS (adopted then, as without the records)."""
        if self.ended_as_lost is None or not call_ids:
            return set()
        try:
            async with asyncio.timeout(ENDED_AS_LOST_SECONDS):
                return set(await self.ended_as_lost(call_ids))
        except Exception as exc:
            log.warning(
                "app.lost_calls_unknown", calls=len(call_ids), error=f"{type(exc).__name__}: {exc}"
            )
            return set()

    # -- events from Asterisk

    async def _on_event(self, event: AriEvent) -> None:
        if self.halted:
            return
        if isinstance(event, ApplicationReplaced) and self._on_replaced is not None:
            self.halt()  # another app connected to our Stasis app: it acts now, not us
            self._on_replaced()
            return
        if isinstance(event, EndpointStateChange):
            self._endpoint(event.endpoint)
            return
        await self.router.dispatch(event)

    async def _on_connected(self, node: str) -> None:
        app = self.config.asterisk.app
        rest = self._rests[node]
        try:
            await rest.filter_events(app, WANTED_EVENTS)
        except AriError as exc:  # an Asterisk without event filters sends everything: fine
            log.warning("app.event_filter_failed", node=node, error=str(exc))
        if self.config.edge is None:
            # Behind an edge the phones register at Kamailio, not here: presence comes
            # from its registrations (edge/registrations.py).
            try:
                await rest.subscribe(app, "endpoint:PJSIP")
                for endpoint in await rest.list_endpoints():
                    self._endpoint(endpoint)
            except AriError as exc:
                log.warning("app.endpoint_sync_failed", error=str(exc))
        # Asterisk is the truth about calls: it does not resend StasisStart
        # after a reconnect, so look at what is there and take it over.
        await self._resync(node)
        log.info("app.connected", node=node, calls=len(self.calls))

    async def _resync(self, node: str = "") -> set[str]:
        """Adopt the calls in our Stasis app on `node` that we do not know; end the known
        calls of that node that are gone; hang up every leg there that nobody owns (its call
        gone or not ours, its callback not running here).

        Returns the ids of every live channel of the node."""
        app = self.config.asterisk.app
        node = node or next(iter(self._rests))
        rest = self._rests[node]
        channels = await rest.list_channels()
        live = {c.id for c in channels}
        found = [
            FoundChannel(
                c.id,
                tuple(c.dialplan.app_data.split(",")[1:]),
                c.state is ChannelState.UP,
                c.creationtime,
            )
            for c in channels
            if c.in_stasis_app(app)
        ]
        # The calls of other nodes are not gone because this node does not list them.
        known = {call_id for call_id in self.calls if self.node_of(call_id) == node}
        strangers = [c.id for c in found if c.kind is None and c.id not in known]
        self.lost_calls |= await self._ended_as_lost(strangers)
        plan = plan_resync(
            found,
            live,
            known,
            set(self.operators),
            callbacks=set(self.callbacks),
            lost=self.lost_calls,
        )
        self.lost_calls -= set(plan.hang_up)
        for call_id in plan.gone:
            self.calls[call_id].post(HungUp(Party.SYSTEM, "pbx_restart"))
        legs = {leg.id: leg for leg in found}
        for leg_id in plan.hang_up:
            # Ringing legs and listeners start over; a leg nobody owns must not keep a phone busy.
            leg = legs[leg_id]
            log.info(
                "app.leg_hung_up",
                call_id=leg.call_id,
                channel=leg_id,
                kind=leg.kind,
                operator=leg.operator_id,
            )
            await self._hangup_quietly(leg_id)
        by_id = {c.id: c for c in channels}
        bridged = await self._bridged_callers(rest, [a.call_id for a in plan.callers])
        for adoption in plan.callers:
            try:
                value = await rest.get_variable(adoption.call_id, QUEUE_VARIABLE)
            except AriError:
                value = ""
            caller = by_id[adoption.call_id]
            event = adopted(
                adoption,
                value,
                answered=caller.state is ChannelState.UP,
                bridged=adoption.call_id in bridged,
            )
            actor = self._new_actor(by_id[adoption.call_id])
            if adoption.operator_channel is not None:
                actor.register(ResourceKind.CHANNEL, adoption.operator_channel)  # ours again
            actor.post(event)
            log.info(
                "app.call_adopted",
                call_id=adoption.call_id,
                category=event.category,
                operator=event.operator_id,
            )
        await self._destroy_stale_bridges(rest)
        return live

    async def _bridged_callers(self, rest: AriRest, call_ids: list[str]) -> set[str]:
        """The callers already in their call's bridge. A call's bridge without its caller (the
        last app died between creating it and adding them) is destroyed: the adopted call
        creates it afresh."""
        if not call_ids:
            return set()
        try:
            bridges = {b.id: b for b in await rest.list_bridges()}
        except AriError as exc:
            log.warning("app.bridge_sync_failed", error=str(exc))
            return set(call_ids)  # cannot tell: assume all is well, as before
        inside = set()
        for call_id in call_ids:
            bridge = bridges.get(f"{call_id}-bridge")
            if bridge is not None and call_id in bridge.channels:
                inside.add(call_id)
            elif bridge is not None:
                try:
                    await rest.destroy_bridge(bridge.id)
                except AriError as exc:
                    log.warning("app.bridge_destroy_failed", bridge=bridge.id, error=str(exc))
        return inside

    async def _destroy_stale_bridges(self, rest: AriRest) -> None:
        try:
            bridges = await rest.list_bridges()
        except AriError as exc:
            log.warning("app.bridge_sync_failed", error=str(exc))
            return
        found = [(b.id, b.name) for b in bridges]
        for bridge_id in stale_bridges(found, set(self.calls), set(self.callbacks)):
            log.info("app.bridge_destroyed", bridge=bridge_id)
            try:
                await rest.destroy_bridge(bridge_id)
            except AriError as exc:
                log.warning("app.bridge_destroy_failed", bridge=bridge_id, error=str(exc))

    async def pbx_now(self) -> PbxNow | None:
        """Every channel up in the (first) Asterisk now, and when it started; None while ARI
        is away."""
        if not self.connected:
            return None
        return await pbx_now(self.rest)

    def _registration(self, operator_id: str, registered: bool) -> None:
        if not self.halted:  # a halted app acts on nothing, not even presence
            self.to_acd(acd_events.OperatorRegistration(operator_id, registered))

    def _endpoint(self, endpoint: Endpoint) -> None:
        operator_id = self._by_endpoint.get(endpoint.name)
        if operator_id is None:
            return
        registered = endpoint.state is EndpointState.ONLINE
        log.info("operator.registration", operator=operator_id, registered=registered)
        self.to_acd(acd_events.OperatorRegistration(operator_id, registered))

    async def _on_new_channel(self, event: StasisStart) -> None:
        channel = event.channel
        if event.args and event.args[0] in LEG_KINDS:
            # A leg (operator, agency, supervisor, snoop) of a call this app no longer knows.
            await self._hangup_quietly(channel.id)
            return
        if self.draining:
            # Shutting down: new calls go to the dialplan fallback, which rings every operator.
            log.info("app.new_call_to_fallback", call_id=channel.id)
            try:
                await self.rest_for(channel.id).continue_in_dialplan(
                    channel.id, context=FALLBACK_CONTEXT, extension="s", priority=1
                )
            except AriError as exc:
                log.warning("app.fallback_failed", call_id=channel.id, error=str(exc))
            return
        actor = self._new_actor(channel)
        await actor.deliver(event)

    def _new_actor(self, channel: Channel) -> CallActor:
        # The arrival is the call's arrival at Asterisk, on our monotonic clock: it orders the
        # queue and survives an app restart (Asterisk keeps the creation time).
        now_wall = datetime.now(UTC)
        waited = (now_wall - channel.creationtime).total_seconds() if channel.creationtime else 0
        actor = CallActor(self, channel, arrival=self.clock() - max(0.0, waited))
        self.calls[channel.id] = actor
        self._no_calls.clear()
        self.calls_started += 1
        actor.start()
        return actor

    async def _hangup_quietly(self, channel_id: str) -> None:
        try:
            await self.rest_for(channel_id).hangup(channel_id)
        except AriError as exc:
            log.info("app.hangup_failed", channel=channel_id, error=str(exc))

    def call_finished(self, call_id: str) -> None:
        actor = self.calls.pop(call_id, None)
        if actor is not None:
            self.router.forget(actor)
        if not self.calls:
            self._no_calls.set()

    # -- the ACD

    def to_acd(self, event: acd_events.Event) -> list[Decision]:
        now = self.clock()
        decisions = self.acd_core.handle(event, now)
        freed = {
            d.operator_id
            for d in decisions
            if isinstance(d, OperatorStateChanged) and d.new is OperatorState.AVAILABLE
        }
        for decision in decisions:
            self.metrics.decided(decision)
            if isinstance(decision, Offer) and decision.operator_id in freed:
                # An operator came free while callers waited: dispatch latency starts now.
                self.metrics.freed_for_next_call(decision.operator_id, now)
            self._apply(decision)
        self._schedule_tick()
        return decisions

    def offer_answered(self, call_id: str, operator_id: str) -> bool:
        """An operator answered; True if the call is theirs (ring-all: the first one wins)."""
        self.to_acd(acd_events.OfferAnswered(call_id, operator_id))
        return (
            self.acd_core.call_place(call_id) is CallPlace.CONNECTED
            and self.acd_core.operator_state(operator_id) is OperatorState.ON_CALL
        )

    def _apply(self, decision: Decision) -> None:
        match decision:
            case Offer(call_id=call_id, operator_id=operator_id):
                self._post(call_id, RingRequested(operator_id))
            case CancelOffer(call_id=call_id, operator_id=operator_id, reason=reason):
                self._post(call_id, RingCancelled(operator_id, reason))
            case Announce(call_id=call_id, position=position, ewt_seconds=ewt):
                self._post(call_id, PositionKnown(position, ewt))
            case OperatorStateChanged():
                change = Facts.operator_state(
                    decision.operator_id,
                    decision.new,
                    reason=decision.reason,
                    previous=decision.old.value,
                )
                self.record(change, call_id=decision.call_id)
            case Overflow(call_id=call_id, target=target, condition=condition):
                log.warning(
                    "acd.overflow", call_id=call_id, target=str(target), condition=condition.value
                )
                overflow = Facts.flag_set(
                    "overflow",
                    target=str(target),
                    rule=condition.value,
                    from_category=decision.from_category,
                )
                self.record(overflow, call_id=call_id)
                # The call's machine carries it out: a new category, or a partner to ring.
                self._post(call_id, Overflowed(target, condition.value, decision.from_category))

    def _post(self, call_id: str, item: object) -> None:
        actor = self.calls.get(call_id)
        if actor is None:
            log.warning("acd.decision_for_unknown_call", call_id=call_id, item=repr(item))
            return
        actor.post(item)

    def _schedule_tick(self) -> None:
        if self.halted:
            return
        due = self.acd_core.next_due()
        if due is None or (self._tick_at is not None and self._tick_at <= due and self._tick):
            return
        if self._tick is not None:
            self._tick.cancel()
        loop = asyncio.get_running_loop()
        self._tick_at = due
        self._tick = loop.call_at(max(due, loop.time()) + 0.001, self._on_tick)

    def _on_tick(self) -> None:
        self._tick = None
        self._tick_at = None
        self.to_acd(acd_events.Tick())

    # -- operators: the one internal API for feature codes (AGI) and the console

    def operator_login(self, operator_id: str) -> None:
        operator = self._operator(operator_id)
        self.to_acd(acd_events.OperatorLoggedIn(operator_id, dict(operator.skills)))
        if not operator.dial_string.startswith("PJSIP/"):
            self.to_acd(acd_events.OperatorRegistration(operator_id, True))

    def operator_logout(self, operator_id: str) -> None:
        self._operator(operator_id)
        self.to_acd(acd_events.OperatorLoggedOut(operator_id))

    def operator_pause(self, operator_id: str, reason: str) -> None:
        self._operator(operator_id)
        self.to_acd(acd_events.OperatorPaused(operator_id, reason or "pause"))

    def operator_ready(self, operator_id: str) -> None:
        """Unpause, or end wrap-up early."""
        self._operator(operator_id)
        self.to_acd(acd_events.OperatorReady(operator_id))

    def disposition_given(self, operator_id: str, call_id: str) -> None:
        """The operator gave a call's disposition: the ACD core's disposition rule."""
        self.to_acd(acd_events.DispositionGiven(operator_id, call_id))

    def _operator(self, operator_id: str) -> OperatorConfig:
        try:
            return self.operators[operator_id]
        except KeyError:
            raise UnknownOperatorError(operator_id) from None

    # -- live calls: agencies and supervisors (console and operator feature keys)

    def call_of_operator(self, operator_id: str) -> CallActor | None:
        """The live call an operator is connected to (or being rung for)."""
        for actor in self.calls.values():
            if actor.machine.operator_id == operator_id or operator_id in actor.machine.ringing:
                return actor
        return None

    def add_agency(self, call_id: str, agency: str) -> None:
        """Conference an agency (police 110, fire 113...) into a connected call."""
        if agency not in {a.code for a in self.config.agencies}:
            raise KeyError(f"no agency {agency!r} in siaga.toml")
        self._live(call_id).post(AgencyRequested(agency))

    def listen(self, call_id: str, dial: str, mode: ListenMode) -> None:
        """Ring a supervisor's phone (`dial`, e.g. PJSIP/2001) to listen, whisper or barge."""
        actor = self._live(call_id)
        if actor.machine.state is not CallState.CONNECTED:
            raise NotConnectedError(f"call {call_id} is not connected to an operator")
        actor.post(ListenRequested(dial, ListenMode(mode)))

    # -- desk call controls: the connected operator's own call

    def hang_up(self, call_id: str, operator_id: str) -> None:
        """The operator ends the call from the desk (the caller is hung up); a colleague
        conferenced in beside them hangs up their own leg only."""
        self._post(self._on_call(call_id, operator_id), HangUpRequested(operator_id))

    def conference(
        self, call_id: str, operator_id: str, colleague: str, dial: str | None = None
    ) -> None:
        """Ring a colleague and join them to the conversation once they answer: a ready
        operator of siaga.toml (`dial` None: their phone), or a supervisor (`colleague` their
        username, `dial` their phone). The operator may leave then (`leave`)."""
        actor = self._live(self._operators_call(call_id, operator_id))
        is_operator = dial is None
        if dial is None:
            dial = self._operator(colleague).dial_string
            if colleague == operator_id or (
                self.acd_core.operator_state(colleague) is not OperatorState.AVAILABLE
            ):
                raise ColleagueUnavailableError(f"operator {colleague} is not ready")
        elif not dial:
            raise ColleagueUnavailableError(f"{colleague} has no phone")
        actor.post(ColleagueRequested(operator_id, dial, colleague, is_operator))

    def hold(self, call_id: str, operator_id: str, hold: bool) -> None:
        """Put the caller on hold (music to their ear, still in the call's bridge and its
        recording), or take them back."""
        self._post(self._operators_call(call_id, operator_id), HoldRequested(operator_id, hold))

    def leave(self, call_id: str, operator_id: str) -> None:
        """The operator leaves the call to the colleague who answered, or the colleague leaves
        it to them."""
        self._post(self._on_call(call_id, operator_id), LeaveRequested(operator_id))

    def _on_call(self, call_id: str, operator_id: str) -> str:
        """The call's operator's call, or one they were conferenced into beside them."""
        if operator_id in self._live(call_id).machine.joined_operators():
            return call_id
        return self._operators_call(call_id, operator_id)

    def _operators_call(self, call_id: str, operator_id: str) -> str:
        actor = self._live(call_id)
        machine = actor.machine
        if machine.state is not CallState.CONNECTED or machine.operator_id != operator_id:
            raise NotYourCallError(f"call {call_id} is not connected to {operator_id}")
        return call_id

    def callback(self, call_id: str, number: str, operator_id: str) -> None:
        """Ring an abandoned caller back: the operator's phone first, then the caller."""
        if not self.config.asterisk.callback_dial:
            raise CallbackUnavailableError("asterisk.callback_dial is not set in siaga.toml")
        self._operator(operator_id)
        if call_id in self.callbacks:
            raise CallbackUnavailableError(f"a callback for {call_id} is already running")
        actor = CallbackActor(self, call_id, number, operator_id)
        self.callbacks[call_id] = actor
        actor.start()

    def _live(self, call_id: str) -> CallActor:
        actor = self.calls.get(call_id)
        if actor is None:
            raise UnknownCallError(call_id)
        return actor

    def snapshot(self) -> Snapshot:
        """The ACD's picture for the live board and /metrics (waiting calls, operators), its
        waits counted up to now (an alert on a wait must not come late)."""
        return self.acd_core.snapshot().as_of(self.clock())

    # -- records and media

    def record(self, fact: Fact, *, call_id: str | None, at: datetime | None = None) -> None:
        try:
            event = fact.stamp(call_id=call_id, at=at)
        except (TypeError, ValueError):
            log.exception("record.invalid", kind=fact.kind.value, call_id=call_id)
            return
        self.journal.write(event)

    def queue_position(self, call_id: str) -> int | None:
        """A waiting call's place in its line (1 = next); None for any other call."""
        info = self.acd_core.queue_info(call_id)
        return info.position if info else None

    def prompt_uri(self, name: str, language: str) -> str:
        if self.prompts_dir is None:
            return "sound:beep"  # an external Asterisk without our prompts: still audible
        return f"sound:{self.prompts_dir / language / name}"
