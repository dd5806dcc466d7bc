"""The real stack a browser test drives: an Asterisk 22 of its own (free ports), the ARI app,
the record writer and the console served on `config.web.port`, with the users the test adds;
everything hung up, stopped and removed at the end, also when the test fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ari_app.app import SiagaApp
from db.writer import RecordWriter
from pbx.asterisk import AsteriskInstance
from pbx.provision import ensure_asterisk_root, render_prompts
from siaga.config import Config
from supervisor.console import Console, ConsoleSettings
from supervisor.live import AppCentre
from supervisor.web import Health, create_app, start_site


@dataclass(frozen=True)
class RunningConsole:
    app: SiagaApp
    asterisk: AsteriskInstance
    url: str


@contextlib.asynccontextmanager
async def running_console(
    config: Config,
    dsn: str,
    journal: Path,
    name: str,
    add_users: Callable[[asyncpg.Connection], Awaitable[None]],
) -> AsyncIterator[RunningConsole]:
    """`name`: the Asterisk instance's prefix; `add_users`: the console users the test needs."""
    root = await asyncio.to_thread(ensure_asterisk_root)
    prompts = await asyncio.to_thread(render_prompts)
    asterisk = AsteriskInstance(root, f"{name}-{os.getpid()}-{uuid.uuid4().hex[:4]}", config)
    await asyncio.to_thread(asterisk.prepare, prompts)
    await asyncio.to_thread(asterisk.start)
    writer = RecordWriter(dsn, journal)
    await writer.start()
    app = SiagaApp(config, writer, prompts_dir=asterisk.prompts_dir)
    runner = None
    try:
        await app.start()
        await app.wait_connected(10)
        conn = await asyncpg.connect(dsn)
        try:
            await add_users(conn)
        finally:
            await conn.close()
        console = Console(
            ConsoleSettings(dsn=dsn, recordings_dir=asterisk.recordings_dir),
            config,
            AppCentre(app),
        )
        site = create_app(lambda: Health(app.connected, writer.db_reachable), console)
        runner = await start_site(site, "127.0.0.1", config.web.port)
        yield RunningConsole(app, asterisk, f"http://127.0.0.1:{config.web.port}")
    finally:
        if runner is not None:
            await runner.cleanup()
        await asyncio.to_thread(asterisk.cli, "channel request hangup all")
        await app.stop()
        await writer.close()
        await asyncio.to_thread(asterisk.stop)
        shutil.rmtree(asterisk.outside(asterisk.layout.base), ignore_errors=True)
