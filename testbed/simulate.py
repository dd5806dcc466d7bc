"""`siaga simulate`: the whole flow with no phone at all.

Simulated callers (Local channels that press a random emergency digit) call 112; simulated
operators (Local channels that answer, talk a while and hang up) take the calls; a private
Asterisk and PostgreSQL on free ports carry it, so it runs beside `make run`. At the end it
prints what happened as JSON: every call accounted for, and the app's own latencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from ari_app.app import SiagaApp
from ari_app.ari.config import AriConfig
from ari_app.ari.rest import AriRest
from db.migrate import migrate
from db.writer import RecordWriter
from pbx.asterisk import AsteriskInstance
from pbx.provision import ensure_asterisk_root, render_prompts
from siaga.config import Config
from testbed.cluster import PgCluster, free_port
from testbed.sandbox import sandbox_config, simulated_operators

EMERGENCY_DIGITS = "12340"


async def place_caller(rest: AriRest, config: Config, digits: str, hold: float) -> str:
    call_id = f"sim-{uuid.uuid4().hex[:12]}"
    number = f"08{random.randrange(10**9, 10**10)}"
    await rest.originate_to_dialplan(
        "Local/caller@siaga-test",
        channel_id=call_id,
        context="siaga-local",
        extension=config.asterisk.emergency_number,
        caller_id=f'"Simulasi" <{number}>',
        variables={"SIAGA_DTMF": digits, "SIAGA_DELAY": "0.3", "SIAGA_HOLD": str(hold)},
    )
    return call_id


async def simulate(
    base: Config, *, callers: int, operators: int, talk: int, rate: float, patience: float
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="siaga-simulate-"))
    os.chmod(work, 0o755)  # PostgreSQL runs as its own user when we are root
    cluster = PgCluster(work / "pg", free_port())
    instance: AsteriskInstance | None = None
    try:
        await asyncio.to_thread(cluster.start)
        await migrate(cluster.dsn)
        config = sandbox_config(base, cluster.dsn)
        config = dataclasses.replace(
            config,
            operators=simulated_operators(operators, f"Local/talk-{talk}@siaga-test"),
            categories=tuple(dataclasses.replace(c, wrap_up_seconds=0) for c in config.categories),
        )
        root = await asyncio.to_thread(ensure_asterisk_root)
        prompts = await asyncio.to_thread(render_prompts)
        instance = AsteriskInstance(root, f"sim-{os.getpid()}", config)
        await asyncio.to_thread(instance.prepare, prompts)
        await asyncio.to_thread(instance.start)
        writer = RecordWriter(cluster.dsn, work / "journal.jsonl")
        await writer.start()
        app = SiagaApp(config, writer, prompts_dir=instance.prompts_dir)
        await app.start()
        await app.wait_connected()
        ast = config.asterisk
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            rest = AriRest.from_session(
                session,
                AriConfig(
                    username=ast.ari_user, password=ast.ari_password, app=ast.app, url=ast.ari_url
                ),
            )
            placed = []
            for _ in range(callers):
                digit = random.choice(EMERGENCY_DIGITS)
                placed.append(await place_caller(rest, config, digit, patience))
                await asyncio.sleep(1 / rate)
            deadline = time.monotonic() + patience + talk * callers / max(1, operators) + 30
            # Polls: a call may still be entering Stasis when the last one has gone.
            while (app.calls or app.calls_started < callers) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        wall = time.monotonic() - started
        metrics = app.metrics.summary()
        left = len(app.calls)
        await app.stop()
        await writer.close()
        conn = await asyncpg.connect(cluster.dsn)
        try:
            rows = await conn.fetch(
                "SELECT outcome, count(*) AS n FROM calls WHERE call_id = ANY($1::text[])"
                " GROUP BY outcome",
                placed,
            )
        finally:
            await conn.close()
        outcomes = {r["outcome"]: r["n"] for r in rows}
        return {
            "callers": callers,
            "operators": operators,
            "talk_seconds": talk,
            "arrival_rate_per_s": rate,
            "wall_seconds": round(wall, 1),
            "calls_recorded": sum(outcomes.values()),
            "calls_still_up": left,
            "outcomes": outcomes,
            "every_call_accounted_for": sum(outcomes.values()) == callers
            and set(outcomes) <= {"answered", "abandoned"},
            "latency": metrics,
        }
    finally:
        if instance is not None:
            await asyncio.to_thread(instance.stop)
            shutil.rmtree(instance.outside(instance.layout.base), ignore_errors=True)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(cluster.stop, "immediate")
        shutil.rmtree(work, ignore_errors=True)


def run(base: Config, **options: Any) -> int:
    result = asyncio.run(simulate(base, **options))
    print(json.dumps(result, indent=2))
    return 0 if result["every_call_accounted_for"] else 1
