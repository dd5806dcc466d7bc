"""The Siaga app in a process of its own, for the stack benchmark (its CPU and memory are
measured apart from the load generator). Started by bench/bench_stack.py:

    python -m bench.siaga_proc SPEC.json

SPEC.json holds an `AppSpec`. Like `siaga run`, it serves the dialplan's screening (FastAGI)
and watches the fallback queue over AMI beside the ARI app (only the web console is left
out). The process prints `ready` once ARI is connected, runs until SIGTERM (or the end of its
stdin: the benchmark is gone), then stops the app, flushes the records and writes its
timeline (when, on the wall clock, each call reached each step inside the app) to the spec's
`timeline` file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

from agi.fallback import FallbackRecorder
from agi.records import agi_pool
from agi.server import AgiServer
from ari_app.app import SiagaApp
from ari_app.ari.events import (
    AriEvent,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    StasisEnd,
    StasisStart,
)
from bench.stack_env import AppSpec, app_config
from db.writer import RecordWriter
from queues import events as acd_events
from queues.decisions import Decision, Offer
from siaga.logging import configure_logging
from stack.run import freeze_startup_heap


class Timeline:
    """(step, id, wall time) triples; the ids are call ids or operator-leg channel ids."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float]] = []
        self._dtmf_seen: set[str] = set()

    def add(self, step: str, ident: str, at: float | None = None) -> None:
        self.rows.append((step, ident, time.time() if at is None else at))


def _is_leg(channel_id: str) -> bool:
    """An operator leg as the app sees it (<call id>-opN), not its Local ;2 half."""
    return "-op" in channel_id and not channel_id.endswith(";2")


def instrument_events(app: SiagaApp, timeline: Timeline) -> None:
    """Before start(): note when the app receives a call and its first digit."""
    original = app._on_event

    async def on_event(event: AriEvent) -> None:
        if isinstance(event, StasisStart) and not (event.args and event.args[0] == "operator"):
            timeline.add("stasis_received", event.channel.id)
            if event.timestamp is not None:
                timeline.add("stasis_sent", event.channel.id, event.timestamp.timestamp())
        elif isinstance(event, ChannelHangupRequest | StasisEnd) and _is_leg(event.channel.id):
            timeline.add("leg_gone", event.channel.id)  # an operator's leg ends
        elif isinstance(event, ChannelDtmfReceived) and event.channel.id not in timeline._dtmf_seen:
            timeline._dtmf_seen.add(event.channel.id)
            timeline.add("dtmf", event.channel.id)
        await original(event)

    app._on_event = on_event  # type: ignore[method-assign]

    acd = app.to_acd

    def acd_with_times(event: acd_events.Event) -> list[Decision]:
        if isinstance(event, acd_events.CallQueued):
            timeline.add("queued", event.call_id)
        decisions = acd(event)
        now = time.time()
        for decision in decisions:
            if isinstance(decision, Offer):
                timeline.add("offer", decision.call_id, now)
        return decisions

    app.to_acd = acd_with_times  # type: ignore[method-assign]


def instrument_rest(app: SiagaApp, timeline: Timeline) -> None:
    """After start(): note when the answer and the operator's originate are done."""
    rest = app.rest
    answer, originate = rest.answer, rest.originate

    async def answer_with_time(channel_id: str) -> None:
        await answer(channel_id)
        timeline.add("answered", channel_id)

    async def originate_with_time(endpoint: str, **kwargs: Any) -> Any:
        channel_id = str(kwargs.get("channel_id", ""))
        timeline.add("originate_sent", channel_id)
        result = await originate(endpoint, **kwargs)
        timeline.add("originate_done", channel_id)
        return result

    rest.answer = answer_with_time  # type: ignore[method-assign]
    rest.originate = originate_with_time  # type: ignore[method-assign]


async def run(spec: AppSpec) -> None:
    config = app_config(spec)
    writer = RecordWriter(spec.database_url, Path(spec.spool))
    await writer.start()
    prompts_dir = PurePosixPath(spec.prompts_dir)
    app = SiagaApp(config, writer, prompts_dir=prompts_dir)
    pool = await agi_pool(spec.database_url)
    agi = AgiServer(config, pool, app, prompts_dir=prompts_dir)
    fallback = FallbackRecorder(config, writer)
    timeline = Timeline()
    instrument_events(app, timeline)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The benchmark holds our stdin open: end of file means it is gone, so stop too.
    threading.Thread(
        target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
    ).start()
    try:
        await fallback.start()
        await app.start()
        await agi.start()
        instrument_rest(app, timeline)
        await app.wait_connected(20)
        freeze_startup_heap()  # as `siaga run` does
        print("ready", flush=True)
        await stop.wait()
    finally:
        await agi.stop()
        await app.stop()
        await fallback.stop()
        await pool.close()
        await writer.close(timeout=30)
        stats = writer.stats()
        dump = Path(spec.timeline).write_text
        await asyncio.to_thread(
            dump,
            json.dumps(
                {
                    "rows": timeline.rows,
                    "calls_started": app.calls_started,
                    "screened": agi.screened,
                    "unscreened": agi.unscreened,
                    "writer": {
                        "enqueued": stats.enqueued,
                        "written": stats.written,
                        "spooled": stats.spooled,
                        "rejected": stats.rejected,
                    },
                }
            ),
        )


def main() -> int:
    # Warnings only: per-call info lines on a pipe would be measured as the app's cost.
    configure_logging("json", logging.WARNING)
    spec = AppSpec(**json.loads(Path(sys.argv[1]).read_text()))
    asyncio.run(run(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
