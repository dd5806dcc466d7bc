"""`siaga run`: the whole stack in one process tree, started in order and stopped in reverse.

Asterisk and PostgreSQL are embedded by default (their own folders and ports); with
`embedded = false` in siaga.toml the app uses existing ones instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn

import aiohttp
import structlog

from agi.fallback import FallbackRecorder, operators_by_interface
from agi.records import agi_pool
from agi.server import AgiServer
from ari_app.app import SiagaApp
from ari_app.ari.config import AriConfig
from ari_app.ari.rest import AriRest
from db.migrate import migrate
from db.reconcile import LostNodeCloser, Reconciler, ended_as_lost, pbx_now
from db.writer import RecordWriter
from dialplan.render import CEL_FILE
from pbx.asterisk import AsteriskInstance
from pbx.provision import asterisk_root, ensure_asterisk_root, render_prompts, state_dir
from siaga.config import (
    AsteriskNode,
    Config,
    node_config,
    plain_sip_warning,
    redacted_url,
    url_password,
    with_password,
)
from siaga.tls import web_context
from stack.lease import LeaseState
from stack.peers import Peers
from stack.pglease import PgLease
from stack.recordings import RecordingCheck
from stack.retention import RetentionJob
from stack.systemd import Watchdog, notify, watchdog_interval
from supervisor.console import Console, ConsoleSettings
from supervisor.disk import DiskGuard
from supervisor.live import AppCentre
from supervisor.metrics import CentreCollector
from supervisor.web import Health, create_app, start_site
from testbed.cluster import PgCluster

log = structlog.get_logger(__name__)


def dev_asterisk(config: Config) -> AsteriskInstance:
    return AsteriskInstance(asterisk_root(), "dev", config)


def dev_postgres(config: Config) -> PgCluster:
    return PgCluster(state_dir() / "pgdata", config.database.port)


def asterisk_log_dir(config: Config) -> Path:
    """Where Asterisk writes its own record of every call (cel.jsonl)."""
    if config.asterisk.log_dir:
        return Path(config.asterisk.log_dir)
    instance = dev_asterisk(config)  # the one `siaga run` or `siaga asterisk start` starts
    return instance.outside(instance.layout.log_dir)


def asterisk_recordings_dir(config: Config) -> Path | None:
    """Where Asterisk writes the calls' recordings (`siaga backup` saves them); None when
    unknown: an Asterisk of its own (`log_dir` set) that does not say (`recordings_dir`)."""
    if config.asterisk.recordings_dir:
        return Path(config.asterisk.recordings_dir)
    if config.asterisk.log_dir:
        return None  # not the folder of the Asterisk `siaga asterisk start` runs
    return dev_asterisk(config).recordings_dir


def database_url(config: Config) -> str:
    """The DSN the stack connects with: `database.url` as configured, or, for the embedded
    cluster when the URL names no password, with the password generated with the cluster
    (kept in its state folder, readable by root alone)."""
    url = config.database.url
    if not config.database.embedded or url_password(url):
        return url
    cluster = dev_postgres(config)
    if not cluster.passwords_path.exists():
        return url  # not made yet: connecting fails and says so
    return with_password(url, cluster.password)


@contextlib.asynccontextmanager
async def embedded_asterisk(config: Config, name: str = "dev") -> AsyncIterator[AsteriskInstance]:
    root = await asyncio.to_thread(ensure_asterisk_root)
    instance = AsteriskInstance(root, name, config)
    if instance.running_pid() is not None and await asyncio.to_thread(instance.ari_ready):
        # Started by the siaga112-asterisk unit or `siaga asterisk start`: theirs to stop.
        log.info("asterisk.reused", instance=name)
        yield instance
        return
    prompts = await asyncio.to_thread(render_prompts)
    await asyncio.to_thread(instance.prepare, prompts)
    await asyncio.to_thread(instance.start)
    try:
        yield instance
    finally:
        await asyncio.to_thread(instance.stop)


@contextlib.asynccontextmanager
async def embedded_postgres(config: Config) -> AsyncIterator[PgCluster]:
    cluster = dev_postgres(config)
    await asyncio.to_thread(cluster.init)
    await asyncio.to_thread(cluster.start)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)


def freeze_startup_heap() -> None:
    """Leave what start-up built (modules, config, templates, clients) out of the garbage
    collector's full passes. Walking it all, each pass stopped the event loop ~15 ms (about
    every 10 s under load in the benchmark): an operator was rung that much later when a pass
    fell between their hang-up and the next offer."""
    gc.collect()
    gc.freeze()


def banner(config: Config, console_logins: list[str]) -> str:
    ast = config.asterisk
    lines = [
        "",
        f"Siaga 112 is running: {config.centre.name}",
        f"  console:       {config.web.url}/",
        *(f"    {line}" for line in console_logins),
        f"  health:        {config.web.url}/healthz",
        f"  Prometheus:    {config.web.url}/metrics",
        f"  ARI:           {ast.ari_url}/ari (app {ast.app!r})",
        f"  database:      {redacted_url(config.database.url)}",
        f"  SIP:           udp {ast.sip_host}:{ast.sip_port}",
        *([f"  SIP TLS:       tls {ast.sip_host}:{ast.sip_tls_port}"] if ast.sip_tls_port else []),
        "  Register a softphone as an operator (digest auth"
        + (", SIP over TLS, SRTP):" if ast.srtp else "):"),
    ]
    for op in config.operators:
        # Production passwords stay out of the terminal's scrollback and the service's log.
        password = op.sip_password if config.centre.development else "(secrets file)"
        lines.append(
            f"    {op.name}: user {op.sip_user}, password {password}, "
            f"domain {ast.sip_host}:{ast.sip_port}"
        )
    lines += [
        f"  Call {ast.emergency_number} from any SIP phone or SIPp sending to "
        f"{ast.sip_host}:{ast.sip_port}, e.g.:",
        f"    sipp -sn uac -s {ast.emergency_number} {ast.sip_host}:{ast.sip_port} -m 1",
        "  Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


# `siaga run` ends with this when its lease (or its Stasis app) went to another app: it
# stopped acting, and systemd starts it again as the standby.
LEASE_LOST_EXIT = 3


def health_of(
    app: SiagaApp, writer: RecordWriter, disk: DiskGuard, role: str | None = None
) -> Health:
    """What /healthz says of the running stack, now."""
    return Health(
        ari_connected=app.connected,
        database_reachable=writer.db_reachable,
        journal_ok=writer.stats().journal_ok,
        low_disks=disk.low,
        role=role,
        nodes=tuple(app.nodes_connected().items()) if app.config.asterisk.nodes else (),
    )


async def wait_for_lease(
    config: Config,
    writer: RecordWriter,
    stack: contextlib.AsyncExitStack,
    stop: asyncio.Event,
    peers: Peers | None = None,
) -> PgLease | None:
    """[ha]: hold the lease before acting (docs/ha.md). Meanwhile /healthz says "standby"
    (the console belongs to the active app; on a node, the AGI server screens calls already).
    Returns the lease once active, None if stopped first; its `on_stop` is the caller's to set."""
    assert config.ha is not None
    active = asyncio.Event()
    lease = PgLease(
        config.database.url,
        config.ha.lock_key,
        config.ha.lease_seconds,
        on_active=active.set,
        on_stop=lambda reason: None,  # nothing acts yet: run_stack checks the state
        may_acquire=None if peers is None else peers.reachable,
    )
    lease.start()
    stack.push_async_callback(lease.stop)

    def health() -> Health:
        return Health(False, writer.db_reachable, writer.stats().journal_ok, role="standby")

    runner = await start_site(
        create_app(health, https=config.web.https),
        config.web.host,
        config.web.port,
        web_context(config),
    )
    log.info("stack.standby", key=config.ha.lock_key, lease_seconds=config.ha.lease_seconds)
    if not notify("READY=1"):  # a service is ready as a standby too: systemd must not wait
        print(f"Siaga 112 is a standby: {config.web.url}/healthz", flush=True)
    watchdog = None
    if (interval := watchdog_interval()) is not None:
        watchdog = Watchdog(lease.running, interval)  # a dead lease loop: restart the standby
        watchdog.start()
    try:
        _, pending = await asyncio.wait(
            [asyncio.ensure_future(active.wait()), asyncio.ensure_future(stop.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()
    finally:
        if watchdog is not None:
            await watchdog.stop()
        await runner.cleanup()
    return lease if active.is_set() else None


async def keep_node_records(
    config: Config,
    node: AsteriskNode,
    writer: RecordWriter,
    journal: RecordWriter | RecordingCheck,
    stack: contextlib.AsyncExitStack,
) -> None:
    """A node's own records, kept by its own `siaga run` whether its app is active or the
    standby (docs/ha.md): the calls its dialplan fallback takes (its AMI), and Asterisk's
    record of every call it saw (its CEL file) reconciled against its own ARI. A node that
    dies takes its CEL file with it; started again, its process reconciles what it holds."""
    local = node_config(config, node)
    recorder = FallbackRecorder(local, journal)
    await recorder.start()
    stack.push_async_callback(recorder.stop)
    ast = local.asterisk
    session = aiohttp.ClientSession()
    stack.push_async_callback(session.close)
    ari = AriConfig(username=ast.ari_user, password=ast.ari_password, app=ast.app, url=ast.ari_url)
    reconciler = Reconciler(
        asterisk_log_dir(local) / CEL_FILE,
        config.database.url,
        writer,
        app=ast.app,
        operators_by_interface=operators_by_interface(local),
        ask_pbx=functools.partial(pbx_now, AriRest.from_session(session, ari)),
        node=node.name,
    )

    async def settled() -> None:
        await writer.wait_replayed(30.0)  # the journal left by a crash first

    reconciler.start(ready=settled)
    stack.push_async_callback(reconciler.stop)


async def run_stack(config: Config, node: AsteriskNode | None = None) -> int:
    """The whole stack until stopped; `node`: this machine's node of [[asterisk.nodes]]."""
    stop = asyncio.Event()
    abort = asyncio.Event()  # a second Ctrl-C / SIGTERM: stop now
    lost = asyncio.Event()  # [ha]: another app is active now; this one halted

    def on_signal() -> None:
        (abort if stop.is_set() else stop).set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    ssl_context = web_context(config)  # before anything starts: a bad certificate stops here
    if warning := plain_sip_warning(config):
        log.warning("stack.sip_unencrypted", detail=warning)
    async with contextlib.AsyncExitStack() as stack:
        if config.database.embedded:
            await stack.enter_async_context(embedded_postgres(config))
        config = dataclasses.replace(
            config, database=dataclasses.replace(config.database, url=database_url(config))
        )
        await migrate(config.database.url)
        prompts_dir = None
        recordings_dir = asterisk_recordings_dir(config)
        if config.asterisk.embedded:
            local = config if node is None else node_config(config, node)
            instance = await stack.enter_async_context(embedded_asterisk(local))
            prompts_dir = instance.prompts_dir
            recordings_dir = instance.recordings_dir
        elif recordings_dir is not None and not recordings_dir.is_dir():
            log.warning("stack.recordings_dir_missing", path=str(recordings_dir))
            recordings_dir = None  # an Asterisk on another machine: its recordings are its own
        journal_dir = state_dir() / "journal"
        journal_path = journal_dir / "records.jsonl"
        writer = RecordWriter(config.database.url, journal_path)
        await writer.start()
        stack.push_async_callback(writer.close)
        journal_dir.mkdir(parents=True, exist_ok=True)  # watched from the start
        folders = {"journal": journal_dir}
        journal: RecordWriter | RecordingCheck = writer
        recording_check: RecordingCheck | None = None
        if recordings_dir is not None:
            folders["recordings"] = recordings_dir
            # Calls from here on (not those reconciled from Asterisk's record) get their
            # recording looked at when they end; closed before the writer, which it writes to.
            journal = recording_check = RecordingCheck(
                writer, recordings_dir, node=None if node is None else node.name
            )
            stack.push_async_callback(recording_check.close)
        disk = DiskGuard(folders, config.disk)
        await disk.start()
        stack.push_async_callback(disk.stop)
        pool = await agi_pool(config.database.url)
        stack.push_async_callback(pool.close)
        agi: AgiServer | None = None
        if node is not None:
            await keep_node_records(config, node, writer, journal, stack)
            # The node's dialplan screens every call over AGI on its own machine, whichever
            # app is active here; feature codes wait for an active app (`operators`).
            agi = AgiServer(config, pool, None, prompts_dir=prompts_dir)
            await agi.start()
            stack.push_async_callback(agi.stop)
        lease: PgLease | None = None
        # The other machines of an HA topology: alone, a standby does not try for the lease
        # and an active app halts (docs/ha.md).
        peers = Peers.of(config, None if node is None else node.name)
        if peers is not None:
            stack.push_async_callback(peers.close)
        if config.ha is not None:
            lease = await wait_for_lease(config, writer, stack, stop, peers)
            if lease is None:
                return 0
        if node is None:  # the single box: its one Asterisk's records are the app's to keep
            recorder = FallbackRecorder(config, journal)  # AMI: fallback calls from now on
            await recorder.start()
            stack.push_async_callback(recorder.stop)

        def halt(reason: str) -> None:
            # Before anything else runs: the other app may act once our lease has run out.
            app.halt()
            log.error("stack.halted", reason=reason)
            lost.set()
            stop.set()
            abort.set()

        app = SiagaApp(
            config,
            journal,
            prompts_dir=prompts_dir,
            on_replaced=None if lease is None else lambda: halt("ApplicationReplaced"),
            peers=None if peers is None else peers.answering,
            on_isolated=None if lease is None else lambda: halt("isolated"),
        )
        if node is not None:
            # A lost node's calls this app never held: closed from their rows (docs/ha.md).
            closer = LostNodeCloser(
                config.database.url, writer, app.node_of, on_closed=app.lost_calls.update
            )
            app.on_node_lost = closer
            app.ended_as_lost = functools.partial(ended_as_lost, config.database.url)
            stack.push_async_callback(closer.stop)
        if lease is not None:
            lease.on_stop = halt
            if lease.state is not LeaseState.ACTIVE:
                log.error("stack.halted", reason="lease lost while starting")
                return LEASE_LOST_EXIT
        await app.start()
        stack.push_async_callback(app.stop)
        if node is None:
            reconciler = Reconciler(
                asterisk_log_dir(config) / CEL_FILE,
                config.database.url,
                writer,
                app=config.asterisk.app,
                operators_by_interface=operators_by_interface(config),
                ask_pbx=app.pbx_now,
            )

            async def settled() -> None:
                # Compare once the journal left by a crash is in, and ARI says what is live.
                await asyncio.gather(writer.wait_replayed(30.0), app.wait_connected(10.0))

            reconciler.start(ready=settled)
            stack.push_async_callback(reconciler.stop)
        if recordings_dir is not None:
            retention = RetentionJob(config.database.url, recordings_dir, config.recordings)
            retention.start()
            stack.push_async_callback(retention.stop)
        if agi is None:
            agi = AgiServer(config, pool, app, prompts_dir=prompts_dir)
            await agi.start()
            stack.push_async_callback(agi.stop)
        else:
            agi.operators = app

        role = None if lease is None else "active"
        console = Console(
            ConsoleSettings(
                dsn=config.database.url,
                dev_mode=config.centre.development,
                recordings_dir=recordings_dir,
            ),
            config,
            AppCentre(app),
        )
        collector = CentreCollector(
            config,
            app,
            writer=writer,
            journal_path=journal_path,
            disk=disk,
            recordings=recording_check,
            today=console.today,
        )
        runner = await start_site(
            create_app(
                lambda: health_of(app, writer, disk, role),
                console,
                collector,
                https=config.web.https,
            ),
            config.web.host,
            config.web.port,
            ssl_context,
        )
        stack.push_async_callback(runner.cleanup)
        freeze_startup_heap()
        if notify("READY=1"):
            # A service: its journal takes JSON lines only, and nobody is there to press Ctrl-C.
            log.info(
                "stack.ready",
                console=f"http://{config.web.host}:{config.web.port}/",
                sip=f"udp {config.asterisk.sip_host}:{config.asterisk.sip_port}",
                database=redacted_url(config.database.url),
            )
        else:
            print(banner(config, console.dev_logins()), flush=True)
        if (interval := watchdog_interval()) is not None:
            watchdog = Watchdog(lambda: app.connected, interval)
            watchdog.start()
            stack.push_async_callback(watchdog.stop)
        await stop.wait()
        notify("STOPPING=1")
        log.info("stack.stopping", calls=len(app.calls))
        if not lost.is_set():  # a halted app hands nothing over: its calls are the other's
            await app.drain(timeout=30.0, abort=abort)
        await writer.flush(timeout=10.0)
        if lost.is_set():
            exit_halted()
    return 0


def exit_halted() -> NoReturn:
    """End a halted app's process now. Its calls are the other app's, everything it wrote is in
    its journal (fsync'd, replayed at its next start), and what it still holds (sockets, the
    lock session) the kernel closes. A graceful teardown would wait on whatever cut it off: a
    partitioned database or node keeps connections' close() waiting for an answer."""
    log.error("stack.exiting", code=LEASE_LOST_EXIT)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(LEASE_LOST_EXIT)
