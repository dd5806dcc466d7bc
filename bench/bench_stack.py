"""Siaga against Asterisk's app_queue on the same Asterisk 22, side by side, in one run.

    .venv/bin/python -m bench.bench_stack            # about 13 minutes
    .venv/bin/python -m bench.bench_stack --quick    # about 6 minutes, scaled down

It starts its own PostgreSQL (temporary folder) and Asterisk instance (bench-<pid>, free ports,
127.0.0.1 only), runs the Siaga app in a process of its own, and stops everything at the end,
also on failure. Both systems ring the same simulated operators (Local channels that ring
BENCH_RING s, answer and talk BENCH_TALK s) and get callers from the same generator; one AMI
observer times both with Asterisk's own clock:

- dispatch: more callers than operators; from an operator's phone hanging up to the next
  operator channel being created (first in, first matched), p50/p99/max;
- overhead: idle operators, one caller at a time; Siaga's steps inside the app (StasisStart ->
  answered, digit -> queued, queued -> offer) and, for both, queued -> operator channel;
- sustained: arrivals ramped step by step (IVR, queue, bridge, recording, records for Siaga);
  the highest rate held with no lost call and p99 queued -> operator channel under 1 s;
- cost: CPU seconds per 1,000 calls of the app and of Asterisk, the app's peak RSS;
- burst: N calls in S seconds (Poisson arrivals) against 20 operators, callers giving up after
  5 s to P s; every call accounted for, in Asterisk and in the records; waiting times;
- human: time to a human (a caller mix: first chance, after the menu, silent) at idle and at
  ~80 % operator occupancy: arrival -> phone ringing, arrival -> answered, p50/p90/p99.

app_queue's callers take the equal-work path (bench/equal_work.py: recording, the same menus
and prompts, a queue per category); `--app-queue plain` sends them straight to Queue().

Prints JSON and writes it with a Markdown table to --out (bench/results/stack.json and .md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import structlog

from ari_app.ari.config import AriConfig
from ari_app.ari.errors import AriError
from ari_app.ari.rest import AriRest
from ari_app.ivr import MENU_PREFIX
from bench import time_to_human
from bench.equal_work import ENTRY_CONTEXT
from bench.stack_env import (
    CALLER_ENDPOINT,
    CALLER_FORMATS,
    OPERATOR_CONTEXT,
    QUEUE_CONTEXT,
    AmiEvent,
    AmiObserver,
    AppSpec,
    BenchStack,
    base_config,
    busy_percent,
    cpu_seconds,
    machine_cpu_seconds,
    peak_rss_mb,
    queue_name,
    server_cpu_seconds,
)
from bench.stats import pct
from bench.time_to_human import Caller, CallerKind
from siaga.logging import configure_logging

log = structlog.get_logger("bench.stack")

ROOT = Path(__file__).resolve().parents[1]
SIAGA, APP_QUEUE = "siaga", "app_queue"
SYSTEMS = (SIAGA, APP_QUEUE)
TARGET_DISPATCH_P99_MS = 20.0
TARGET_RATE = 100.0
TARGET_OFFER_P99_MS = 1000.0
TARGET_IDLE_HUMAN_P90_S = 8.0  # caller created -> operator answered, at idle
HUMAN_BUSY_OCCUPANCY = 0.8  # the busy level's operator occupancy (arrivals chosen for it)
HUMAN_TALK_JITTER = 1.0
HUMAN_PATIENCE = 60.0  # the time-to-human callers wait for an operator, however long
TARGET_DISPATCH_SPEEDUP = 50.0  # app_queue's dispatch p50 over Siaga's
DIGIT_DELAY = 0.3  # a caller presses 1 this long after the menu starts (barge-in)
# The caller of every part but the time-to-human one: medical, at the first chance.
FIRST_CHANCE = Caller(CallerKind.FIRST, "1", DIGIT_DELAY)
RING = 0.2
# Operators talk at least this long: Siaga takes a hang-up within 2 s of answering for a
# ghost answer (pocket answer, faulty headset) and puts the caller back in the queue.
TALK = 2.5


@dataclass(frozen=True)
class Plan:
    runs: int  # repetitions of the dispatch and overhead parts
    dispatch_operators: int
    dispatch_seconds: float
    dispatch_talk: float
    overhead_calls: int
    overhead_operators: int
    ramp_rates: tuple[float, ...]
    ramp_step_seconds: float
    ramp_talk: float
    burst_calls: int
    burst_seconds: float
    burst_operators: int
    burst_talk: float
    burst_patience: float
    human_seconds: float  # arrivals of each time-to-human load level
    human_idle_operators: int
    human_idle_rate: float
    human_busy_operators: int

    @property
    def ramp_operators(self) -> int:
        return math.ceil(max(self.ramp_rates) * (RING + self.ramp_talk + 0.1) * 1.2)

    @property
    def queue_sizes(self) -> tuple[int, ...]:
        return (
            self.dispatch_operators,
            self.overhead_operators,
            self.ramp_operators,
            self.burst_operators,
            self.human_idle_operators,
            self.human_busy_operators,
        )


FULL = Plan(
    runs=3,
    dispatch_operators=20,
    dispatch_seconds=10.0,
    dispatch_talk=TALK,
    overhead_calls=8,
    overhead_operators=8,
    ramp_rates=(10, 20, 30, 40, 50, 60, 75, 90, 100),
    # Long enough that a rate the machine cannot keep up with shows as a growing backlog; in
    # 4 s steps a backlog of a few seconds still passed for "held".
    ramp_step_seconds=10.0,
    ramp_talk=TALK,
    burst_calls=1000,
    burst_seconds=60.0,
    burst_operators=20,
    burst_talk=TALK,
    burst_patience=30.0,
    human_seconds=60.0,
    human_idle_operators=20,
    human_idle_rate=1.0,
    human_busy_operators=10,
)
QUICK = Plan(
    runs=1,
    dispatch_operators=20,
    dispatch_seconds=7.0,
    dispatch_talk=TALK,
    overhead_calls=8,
    overhead_operators=8,
    ramp_rates=(10, 25, 50),
    ramp_step_seconds=5.0,
    ramp_talk=TALK,
    burst_calls=200,
    burst_seconds=20.0,
    burst_operators=20,
    burst_talk=TALK,
    burst_patience=15.0,
    human_seconds=40.0,
    human_idle_operators=20,
    human_idle_rate=1.0,
    human_busy_operators=10,
)


# ---- small statistics ---------------------------------------------------------------------


def summary_ms(seconds: Iterable[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {
        "n": len(ms),
        "p50": round(pct(ms, 50) or 0, 2),
        "p99": round(pct(ms, 99) or 0, 2),
        "max": round(max(ms), 2),
    }


def median_field(runs: Sequence[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 1)


# ---- the app in its own process -----------------------------------------------------------


class AppProcess:
    def __init__(self, spec: AppSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("not started")
        return self.proc.pid

    async def start(self) -> None:
        spec_file = Path(self.spec.timeline).with_suffix(".spec.json")
        spec_file.write_text(json.dumps(self.spec.to_json()))
        with self.log_path.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.siaga_proc",
                str(spec_file),
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,  # closed when we die: the app stops then
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self.stop()
            raise RuntimeError(f"the app did not start; see {self.log_path}")

    async def stop(self) -> dict[str, Any]:
        if self.proc is None:
            return {}
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None
        try:
            text = await asyncio.to_thread(Path(self.spec.timeline).read_text)
            data: dict[str, Any] = json.loads(text)
        except (OSError, ValueError):
            return {}
        return data


def first_times(rows: Iterable[Sequence[Any]]) -> dict[str, dict[str, float]]:
    """step -> id -> first wall time, from the app's timeline rows."""
    out: dict[str, dict[str, float]] = {}
    for step, ident, at in rows:
        out.setdefault(step, {}).setdefault(ident, at)
    return out


# ---- what Asterisk saw --------------------------------------------------------------------


def is_member(channel: str, half: str) -> bool:
    return (
        channel.startswith("Local/")
        and f"@{OPERATOR_CONTEXT}-" in channel
        and (channel.endswith(half))
    )


@dataclass
class CallTrace:
    arrived: float | None = None  # caller channel created
    joined: float | None = None  # app_queue: QueueCallerJoin
    offered: float | None = None  # first operator channel created for the call
    connected: float | None = None  # an operator channel entered the call's bridge
    ended: float | None = None  # caller channel gone


def traces(events: Sequence[AmiEvent], call_ids: set[str]) -> dict[str, CallTrace]:
    """Per placed call, when Asterisk saw each step (both systems, the same way)."""
    member_call: dict[str, str] = {}
    for e in events:
        if e.name == "DialBegin" and e.uniqueid in call_ids and is_member(e.dest_channel, ";1"):
            member_call[e.dest_uniqueid] = e.uniqueid  # app_queue dialling a member
        elif e.name == "Newchannel" and is_member(e.channel, ";1"):
            owner = e.uniqueid.rsplit("-op", 1)[0]  # Siaga's operator legs: <call id>-opN
            if owner in call_ids:
                member_call[e.uniqueid] = owner
    out = {cid: CallTrace() for cid in call_ids}
    for e in events:
        if e.uniqueid in out:
            t = out[e.uniqueid]
            if e.name == "Newchannel" and t.arrived is None:
                t.arrived = e.at
            elif e.name == "QueueCallerJoin" and t.joined is None:
                t.joined = e.at
            elif e.name == "Hangup":
                t.ended = e.at
        call = member_call.get(e.uniqueid)
        if call is not None:
            t = out[call]
            if e.name == "Newchannel" and t.offered is None:
                t.offered = e.at
            elif e.name == "BridgeEnter" and t.connected is None:
                t.connected = e.at
    return out


def operator_of(channel: str) -> str:
    """'Local/7@siaga-bench-op-0000001f;2' -> '7': the simulated operator's number."""
    return channel.removeprefix("Local/").split("@", 1)[0]


def dispatch_latencies(
    events: Sequence[AmiEvent], after: float, queued_at: dict[str, float]
) -> tuple[list[float], int]:
    """Each operator's phone hanging up -> that operator's next call offered (their next
    operator channel created).

    Paired by operator, not first in first out: one stray hang-up (a channel of the phase
    before, torn down late) would shift every later pair. Only where a caller was waiting
    when the phone hung up: if the call offered next joined the queue after that, the operator
    sat idle in between, which is the idle-operator case (part 2), not dispatch. Returns the
    latencies and how many such pairs were left out. `queued_at`: call id -> when it joined
    the queue (Siaga's timeline, app_queue's QueueCallerJoin).
    """
    member_call: dict[str, str] = {}
    for e in events:
        if e.name == "DialBegin" and is_member(e.dest_channel, ";1"):
            member_call[e.dest_uniqueid] = e.uniqueid  # app_queue dialling a member
    freed: dict[str, float] = {}  # operator -> when the phone hung up, until the next offer
    out: list[float] = []
    idle = 0
    for e in sorted(events, key=lambda e: e.at):
        if e.name == "Hangup" and is_member(e.channel, ";2"):
            freed[operator_of(e.channel)] = e.at
        elif e.name == "Newchannel" and is_member(e.channel, ";1"):
            at = freed.pop(operator_of(e.channel), None)
            if at is None or at < after:
                continue
            # Siaga's legs are <call id>-opN; app_queue's members are known by DialBegin.
            call = member_call.get(e.uniqueid) or e.uniqueid.rsplit("-op", 1)[0]
            if queued_at.get(call, at) > at:
                idle += 1
            else:
                out.append(e.at - at)
    return out, idle


def occupancy(events: Sequence[AmiEvent], operators: int, start: float, end: float) -> float | None:
    """The share of the operators' time between `start` and `end` that their phones were
    ringing or talking (operator channels, created -> hung up)."""
    if operators <= 0 or end <= start:
        return None
    born: dict[str, float] = {}
    busy = 0.0
    for e in sorted(events, key=lambda e: e.at):
        if e.name == "Newchannel" and is_member(e.channel, ";1"):
            born[e.uniqueid] = e.at
        elif e.name == "Hangup" and e.uniqueid in born:
            began = born.pop(e.uniqueid)
            busy += max(0.0, min(e.at, end) - max(began, start))
    busy += sum(max(0.0, end - max(began, start)) for began in born.values())
    return round(busy / (operators * (end - start)), 3)


def siaga_dispatch_breakdown(
    events: Sequence[AmiEvent], rows: Sequence[Sequence[Any]], after: float
) -> dict[str, Any]:
    """Where Siaga's dispatch time goes: Asterisk -> app -> ACD -> originate -> Asterisk."""
    t = first_times(rows)
    phone_down = {
        e.uniqueid.removesuffix(";2"): e.at
        for e in events
        if e.name == "Hangup" and is_member(e.channel, ";2")
    }
    created = {
        e.uniqueid: e.at for e in events if e.name == "Newchannel" and is_member(e.channel, ";1")
    }
    gone, sent, offers = t.get("leg_gone", {}), t.get("originate_sent", {}), t.get("offer", {})
    every_offer: dict[str, list[float]] = {}
    for step, ident, at in rows:
        if step == "offer":
            every_offer.setdefault(ident, []).append(at)

    def last(leg: str, sent_at: float) -> float | None:
        """The offer this leg was rung for: a call offered again (the first phone did not
        answer) has several."""
        before = [at for at in every_offer.get(leg.rsplit("-op", 1)[0], []) if at <= sent_at]
        return max(before) if before else None

    pending: deque[float] = deque()
    decide: list[float] = []
    marks = sorted([(at, 0) for at in gone.values()] + [(at, 1) for at in offers.values()])
    for at, kind in marks:
        if kind == 0:
            pending.append(at)
        elif pending:
            freed = pending.popleft()
            if freed >= after:
                decide.append(at - freed)
    return {
        "phone_down_to_app_event": summary_ms(
            [gone[leg] - at for leg, at in phone_down.items() if leg in gone and at >= after]
        ),
        "app_event_to_offer_decision": summary_ms(decide),
        "offer_decision_to_originate_sent": summary_ms(
            [at - offer for leg, at in sent.items() if at >= after and (offer := last(leg, at))]
        ),
        "originate_sent_to_channel": summary_ms(
            [created[leg] - at for leg, at in sent.items() if leg in created and at >= after]
        ),
    }


# ---- the benchmark ------------------------------------------------------------------------


@dataclass
class Placed:
    call_id: str
    at: float
    step: int = 0
    failed: str = ""


@dataclass
class Bench:
    stack: BenchStack
    plan: Plan
    ari: AriRest
    ami: AmiObserver
    work: Path
    placed: dict[str, Placed] = field(default_factory=dict)
    app: AppProcess | None = None
    plain_app_queue: bool = False  # app_queue's callers straight to Queue(), no IVR
    _seq: int = 0

    # -- helpers

    async def idle(self, timeout: float = 20.0) -> None:
        """Hang up what is left and wait for an idle PBX (as the AMI observer sees it)."""
        if self.ami.alive:
            await asyncio.to_thread(self.stack.hang_up_all)
        for _ in range(int(timeout / 0.2)):
            if not self.ami.alive:
                break
            await asyncio.sleep(0.2)
        if self.ami.alive:
            log.warning("bench.channels_left", count=len(self.ami.alive))
            await asyncio.to_thread(self.stack.hang_up_all)
        await asyncio.sleep(0.3)

    async def start_app(self, operators: int, tag: str) -> AppProcess:
        ast = self.stack.config.asterisk
        spec = AppSpec(
            ari_url=ast.ari_url,
            ami_port=ast.ami_port,
            sip_port=ast.sip_port,
            rtp_start=ast.rtp_start,
            agi_port=self.stack.config.agi.port,
            database_url=self.stack.dsn,
            prompts_dir=str(self.stack.asterisk.prompts_dir if self.stack.asterisk else ""),
            operators=operators,
            spool=str(self.work / f"{tag}.journal.jsonl"),
            timeline=str(self.work / f"{tag}.timeline.json"),
        )
        app = AppProcess(spec, self.work / "app.log")
        await app.start()
        self.app = app
        return app

    async def stop_app(self) -> dict[str, Any]:
        app, self.app = self.app, None
        return await app.stop() if app is not None else {}

    def new_id(self, system: str, phase: str) -> str:
        self._seq += 1
        return f"{system[0]}-{phase}-{self._seq:06d}"

    async def place(
        self,
        system: str,
        placed: Placed,
        operators: int,
        patience: float,
        caller: Caller = FIRST_CHANCE,
    ) -> None:
        """One caller: Siaga through 112 and its IVR, app_queue through the equal-work path
        (the same menus, a queue per category; or straight to Queue() if plain)."""
        call_id = placed.call_id
        digits, delay = caller.digit, caller.delay
        if system == SIAGA:
            context, exten = "siaga-local", self.stack.config.asterisk.emergency_number
        elif self.plain_app_queue:
            context, exten, digits, delay = QUEUE_CONTEXT, queue_name(operators), "", DIGIT_DELAY
        else:
            context, exten = ENTRY_CONTEXT, queue_name(operators)
        try:
            await self.ari.originate_to_dialplan(
                CALLER_ENDPOINT,
                channel_id=call_id,
                context=context,
                extension=exten,
                caller_id=f'"Bench" <08{call_id[-6:]:0>10}>',
                variables={
                    "SIAGA_DTMF": digits,
                    "SIAGA_DELAY": f"{delay:.3f}",
                    "SIAGA_HOLD": str(patience),
                },
                formats=CALLER_FORMATS,
            )
        except AriError as exc:
            placed.failed = str(exc)[:200]

    async def place_schedule(
        self,
        system: str,
        phase: str,
        offsets: Sequence[float],
        operators: int,
        patience: Sequence[float],
        step: int = 0,
        callers: Sequence[Caller] | None = None,
    ) -> list[str]:
        """Place one call at each offset (seconds from now); returns their ids."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        ids: list[str] = []
        tasks: list[asyncio.Task[None]] = []
        who = callers if callers is not None else [FIRST_CHANCE] * len(offsets)
        for offset, wait, caller in zip(offsets, patience, who, strict=True):
            delay = began + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            placed = Placed(self.new_id(system, phase), time.time(), step)
            self.placed[placed.call_id] = placed
            ids.append(placed.call_id)
            tasks.append(loop.create_task(self.place(system, placed, operators, wait, caller)))
        await asyncio.gather(*tasks)
        return ids

    async def wait_ended(self, ids: Sequence[str], since: float, timeout: float) -> None:
        """Until every caller's channel is gone (or the timeout)."""
        deadline = time.monotonic() + timeout
        wanted = set(ids)
        while time.monotonic() < deadline:
            gone = {e.uniqueid for e in self.ami.since(since) if e.name == "Hangup"}
            failed = {i for i in wanted if self.placed[i].failed}
            if wanted <= gone | failed:
                return
            await asyncio.sleep(0.5)

    async def records(self, ids: Sequence[str]) -> dict[str, Any]:
        """What the records say about these calls (Siaga only)."""
        conn = await asyncpg.connect(self.stack.dsn)
        try:
            rows = await conn.fetch(
                "SELECT outcome, count(*) AS n, percentile_cont(0.5) WITHIN GROUP"
                " (ORDER BY wait_seconds) AS p50, percentile_cont(0.99) WITHIN GROUP"
                " (ORDER BY wait_seconds) AS p99, max(wait_seconds) AS max"
                " FROM calls WHERE call_id = ANY($1::text[]) GROUP BY outcome",
                list(ids),
            )
        finally:
            await conn.close()
        outcomes = {r["outcome"]: int(r["n"]) for r in rows}
        answered = next((r for r in rows if r["outcome"] == "answered"), None)
        rows_found = sum(outcomes.values())
        return {
            "calls_placed": len(ids),
            "rows": rows_found,
            "missing": len(ids) - rows_found,
            "outcomes": outcomes,
            "answered_wait_s": {
                "p50": _num(answered["p50"]) if answered else None,
                "p99": _num(answered["p99"]) if answered else None,
                "max": _num(answered["max"]) if answered else None,
            },
        }

    async def warm_up(self, system: str) -> None:
        """A few calls through each system first: nothing is measured cold."""
        await asyncio.to_thread(self.stack.set_operator_times, RING, TALK)
        if system == SIAGA:
            await self.start_app(8, "warm-up")
        since = time.time()
        ids = await self.place_schedule(system, "w", [i * 0.1 for i in range(12)], 8, [10.0] * 12)
        await self.wait_ended(ids, since, 15)
        await self.idle()
        await self.stop_app()

    # -- 1. dispatch latency

    async def dispatch(self, system: str, run: int) -> dict[str, Any]:
        plan = self.plan
        ops = plan.dispatch_operators
        await asyncio.to_thread(self.stack.set_operator_times, RING, plan.dispatch_talk, 1.0)
        app_pid = (await self.start_app(ops, f"dispatch-{run}")).pid if system == SIAGA else None
        ast_pid = self.stack.asterisk.running_pid() if self.stack.asterisk else None
        pg_pid = self.stack.postgres_pid()
        since = time.time()
        cpu0 = _cpus(app_pid, ast_pid, pg_pid)
        ids = await self.keep_waiting(system, f"d{run}", ops, plan.dispatch_seconds)
        loaded = since + 2.0  # from here on callers wait in the queue whenever one frees
        cpu = _delta(cpu0, _cpus(app_pid, ast_pid, pg_pid))
        events = self.ami.since(since)
        await self.idle()
        rows = (await self.stop_app()).get("rows", []) if system == SIAGA else []
        queued_at = (
            first_times(rows).get("queued", {})
            if system == SIAGA
            else {e.uniqueid: e.at for e in events if e.name == "QueueCallerJoin"}
        )
        latencies, idle = dispatch_latencies(events, loaded, queued_at)
        result: dict[str, Any] = {
            "callers": len(ids),
            **summary_ms(latencies),
            "left_out_operator_was_idle": idle,
            "cpu_percent": {k: round(v / plan.dispatch_seconds * 100) for k, v in cpu.items()},
        }
        if system == SIAGA:
            result["inside_siaga_ms"] = siaga_dispatch_breakdown(events, rows, loaded)
            arrived = [
                i for i in ids if i in {e.uniqueid for e in events if e.name == "Newchannel"}
            ]
            result["records_missing"] = (await self.records(arrived))["missing"]
        log.info("dispatch", system=system, run=run, **summary_ms(latencies))
        return result

    async def keep_waiting(self, system: str, phase: str, ops: int, seconds: float) -> list[str]:
        """Keep a few callers waiting (not yet offered) for `seconds`: every operator who
        frees finds a caller in the queue, with no pile-up of waiting calls."""
        backlog = ops // 2 + 4
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        seen = len(self.ami.events)
        offered = 0
        ids: list[str] = []
        tasks: list[asyncio.Task[None]] = []
        while loop.time() < end:
            new = self.ami.events[seen:]
            seen += len(new)
            offered += sum(1 for e in new if e.name == "Newchannel" and is_member(e.channel, ";1"))
            for _ in range(max(0, backlog - (len(ids) - offered))):
                placed = Placed(self.new_id(system, phase), time.time())
                self.placed[placed.call_id] = placed
                ids.append(placed.call_id)
                tasks.append(loop.create_task(self.place(system, placed, ops, seconds + 60)))
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.02)
        await asyncio.gather(*tasks)
        return ids

    # -- 2. ACD overhead with idle operators

    async def overhead(self, system: str, run: int) -> dict[str, Any]:
        plan = self.plan
        ops = plan.overhead_operators
        await asyncio.to_thread(self.stack.set_operator_times, RING, TALK)
        if system == SIAGA:
            await self.start_app(ops, f"overhead-{run}")
        since = time.time()
        ids: list[str] = []
        for _ in range(plan.overhead_calls):
            ids += await self.place_schedule(system, f"o{run}", [0.0], ops, [10.0])
            await asyncio.sleep(0.6)
        await self.wait_ended(ids, since, 15)
        events = self.ami.since(since)
        await self.idle()
        calls = traces(events, set(ids))
        queued_at: dict[str, float]
        steps: dict[str, Any] = {}
        if system == SIAGA:
            timeline = first_times((await self.stop_app()).get("rows", []))
            t = timeline
            queued_at = t.get("queued", {})

            def gap(a: str, b: str) -> list[float]:
                return [t[b][i] - t[a][i] for i in ids if i in t.get(a, {}) and i in t.get(b, {})]

            legs = {
                i: min(
                    (at for leg, at in t.get("originate_sent", {}).items() if leg.startswith(i)),
                    default=None,
                )
                for i in ids
            }
            steps = {
                "stasis_event_delivery": summary_ms(gap("stasis_sent", "stasis_received")),
                "stasis_to_answered": summary_ms(gap("stasis_received", "answered")),
                "answered_to_queued": summary_ms(gap("answered", "queued")),
                "digit_to_queued": summary_ms(gap("dtmf", "queued")),
                "queued_to_offer_decision": summary_ms(gap("queued", "offer")),
                "offer_decision_to_originate": summary_ms(
                    [
                        leg - t["offer"][i]
                        for i, leg in legs.items()
                        if leg is not None and i in t.get("offer", {})
                    ]
                ),
            }
        else:
            queued_at = {i: c.joined for i, c in calls.items() if c.joined is not None}
            steps = {
                "arrival_to_queued": summary_ms(
                    [c.joined - c.arrived for c in calls.values() if c.joined and c.arrived]
                )
            }
        to_offer = [
            c.offered - queued_at[i]
            for i, c in calls.items()
            if c.offered is not None and i in queued_at
        ]
        result = {
            "calls": len(ids),
            "connected": sum(1 for c in calls.values() if c.connected is not None),
            "queued_to_operator_channel": summary_ms(to_offer),
            "steps": steps,
        }
        log.info("overhead", system=system, run=run, queued_to_offer=summary_ms(to_offer))
        return result

    # -- 3. sustained rate (ramp) and cost

    async def ramp(self, system: str) -> dict[str, Any]:
        plan = self.plan
        ops = plan.ramp_operators
        patience = 20.0
        await asyncio.to_thread(self.stack.set_operator_times, RING, plan.ramp_talk, 0.2)
        app_pid = (await self.start_app(ops, "ramp")).pid if system == SIAGA else None
        ast_pid = self.stack.asterisk.running_pid() if self.stack.asterisk else None
        pg_pid = self.stack.postgres_pid()
        since = time.time()
        cpu0 = _cpus(app_pid, ast_pid, pg_pid)
        step_ids: list[list[str]] = []
        step_cpu: list[dict[str, float]] = []
        stopped_after: float | None = None
        step_busy: list[float | None] = []
        for index, rate in enumerate(plan.ramp_rates):
            before = _cpus(app_pid, ast_pid, pg_pid)
            machine_before = machine_cpu_seconds()
            count = int(rate * plan.ramp_step_seconds)
            offsets = [i / rate for i in range(count)]
            ids = await self.place_schedule(
                system, f"r{index}", offsets, ops, [patience] * count, step=index
            )
            step_ids.append(ids)
            step_cpu.append(_delta(before, _cpus(app_pid, ast_pid, pg_pid)))
            # Everything on the machine, simulated phones included: a step that is not held
            # at ~100% ran out of CPU, not out of logic.
            step_busy.append(busy_percent(machine_before, machine_cpu_seconds()))
            # Live verdict (Asterisk's view only): every call of the step offered in time?
            await asyncio.sleep(1.5)
            if not self._step_looks_held(system, ids, since):
                stopped_after = rate
                break
        all_ids = [i for ids in step_ids for i in ids]
        await self.wait_ended(all_ids, since, patience + 15)
        cpu1 = _cpus(app_pid, ast_pid, pg_pid)
        events = self.ami.since(since)
        rss = peak_rss_mb(app_pid) if app_pid else None
        await self.idle()
        dump = await self.stop_app() if system == SIAGA else {}
        timeline = first_times(dump.get("rows", []))
        calls = traces(events, set(all_ids))
        queued_at = (
            timeline.get("queued", {})
            if system == SIAGA
            else {i: c.joined for i, c in calls.items() if c.joined is not None}
        )
        arrived = [i for i in all_ids if calls[i].arrived is not None]
        record = await self.records(arrived) if system == SIAGA else None
        steps = []
        highest_held: float | None = None
        for index, ids in enumerate(step_ids):
            rate = plan.ramp_rates[index]
            placed = [self.placed[i] for i in ids]
            failed = sum(1 for i in ids if calls[i].arrived is None)  # originate failed
            lost = sum(1 for i in ids if calls[i].arrived and calls[i].connected is None)
            to_offer = [
                calls[i].offered - queued_at[i]  # type: ignore[operator]
                for i in ids
                if calls[i].offered is not None and i in queued_at
            ]
            never_offered = sum(1 for i in ids if calls[i].offered is None)
            offer = summary_ms(to_offer)
            span = (placed[-1].at - placed[0].at) if len(placed) > 1 else 0.0
            achieved = round((len(placed) - 1) / span, 1) if span > 0 else None
            p99 = offer["p99"]
            held = (
                lost == 0
                and failed == 0
                and never_offered == 0
                and p99 is not None
                and p99 < TARGET_OFFER_P99_MS
                and achieved is not None
                and achieved >= 0.9 * rate
            )
            if held and (highest_held is None or rate > highest_held):
                highest_held = rate
            cpu = step_cpu[index]
            steps.append(
                {
                    "rate": rate,
                    "achieved_rate": achieved,
                    "calls": len(ids),
                    "not_placed": failed,
                    "lost": lost,
                    "queued_to_operator_channel_ms": offer,
                    "arrival_to_operator_channel_ms": summary_ms(
                        [
                            c.offered - c.arrived
                            for c in (calls[i] for i in ids)
                            if c.offered is not None and c.arrived is not None
                        ]
                    ),
                    "held": held,
                    "machine_busy_percent": step_busy[index],
                    "cpu_s_per_1000": {
                        k: round(v / len(ids) * 1000, 1) for k, v in cpu.items() if ids
                    },
                }
            )
        total = _delta(cpu0, cpu1)
        result: dict[str, Any] = {
            "operators": ops,
            "talk_s": plan.ramp_talk,
            "talk_jitter_s": 0.2,
            "ring_s": RING,
            "patience_s": patience,
            "stopped_after_rate": stopped_after,
            "highest_held_rate": highest_held,
            "steps": steps,
            "calls": len(all_ids),
            "cpu_s": {k: round(v, 2) for k, v in total.items()},
            "cpu_s_per_1000_calls": {
                k: round(v / len(all_ids) * 1000, 1) for k, v in total.items() if all_ids
            },
            # The whole stack, ms per call: the app, Asterisk and PostgreSQL (not the bench).
            "stack_cpu_ms_per_call": (
                round(sum(v for k, v in total.items() if k != "bench") / len(all_ids) * 1000, 2)
                if all_ids
                else None
            ),
            "app_peak_rss_mb": rss,
        }
        if record is not None:
            result["records"] = record
            result["screening"] = {k: dump.get(k) for k in ("screened", "unscreened")}
        log.info("ramp", system=system, highest_held=highest_held, stopped_after=stopped_after)
        return result

    def _step_looks_held(self, system: str, ids: Sequence[str], since: float) -> bool:
        calls = traces(self.ami.since(since), set(ids))
        ivr = system == SIAGA or not self.plain_app_queue
        grace = TARGET_OFFER_P99_MS / 1000 + (DIGIT_DELAY + 0.4 if ivr else 0.2)
        grace += 1.5  # a rough early stop; the step's verdict is computed at the end
        late = 0
        for i in ids:
            c = calls[i]
            missing = self.placed[i].failed or c.arrived is None or c.offered is None
            if missing or (c.offered or 0) - (c.arrived or 0) > grace:
                late += 1
        return late <= len(ids) // 100

    # -- 4. disaster burst

    async def burst(self, system: str) -> dict[str, Any]:
        plan = self.plan
        ops = plan.burst_operators
        await asyncio.to_thread(self.stack.set_operator_times, RING, plan.burst_talk, 0.5)
        app_pid = (await self.start_app(ops, "burst")).pid if system == SIAGA else None
        ast_pid = self.stack.asterisk.running_pid() if self.stack.asterisk else None
        pg_pid = self.stack.postgres_pid()
        rng = random.Random(112)
        rate = plan.burst_calls / plan.burst_seconds
        offsets: list[float] = []
        t = 0.0
        for _ in range(plan.burst_calls):
            offsets.append(min(t, plan.burst_seconds))
            t += rng.expovariate(rate)
        # Callers give up after 5 s to `burst_patience` s (uniform): as in a real disaster,
        # the ones not answered by then abandon; none is hung up on by the system.
        patience = [round(rng.uniform(5.0, plan.burst_patience), 1) for _ in offsets]
        since = time.time()
        cpu0 = _cpus(app_pid, ast_pid, pg_pid)
        ids = await self.place_schedule(system, "b", offsets, ops, patience)
        drain = plan.burst_patience + 10
        await self.wait_ended(ids, since, plan.burst_seconds + drain)
        cutoff = time.time()
        cpu1 = _cpus(app_pid, ast_pid, pg_pid)
        rss = peak_rss_mb(app_pid) if app_pid else None
        await self.idle()
        dump = await self.stop_app() if system == SIAGA else {}
        events = self.ami.since(since)
        calls = traces(events, set(ids))
        wait_of = dict(zip(ids, patience, strict=True))
        arrived = {i for i, c in calls.items() if c.arrived is not None}
        connected = {i for i, c in calls.items() if c.connected is not None}
        gone = {i for i, c in calls.items() if c.ended is not None and c.ended <= cutoff}
        # Abandoned: hung up unanswered once the caller's patience ran out (the caller's side
        # waits at least DIGIT_DELAY s before its patience starts). Dropped: gone unanswered
        # before.
        abandoned = {
            i
            for i in (arrived & gone) - connected
            if (calls[i].ended or 0) - (calls[i].arrived or 0) >= wait_of[i] + DIGIT_DELAY - 0.05
        }
        dropped = (arrived & gone) - connected - abandoned
        still_waiting = arrived - connected - gone
        waits = [
            c.connected - c.arrived
            for c in calls.values()
            if c.connected is not None and c.arrived is not None
        ]
        waits_s = sorted(waits)
        buckets = (1, 5, 10, 20, 30, 60, 120)
        histogram: dict[str, int] = {}
        low = 0.0
        for high in buckets:
            histogram[f"{low:g}-{high:g}s"] = sum(1 for w in waits_s if low <= w < high)
            low = high
        histogram[f">={low:g}s"] = sum(1 for w in waits_s if w >= low)
        total = _delta(cpu0, cpu1)
        result: dict[str, Any] = {
            "calls": len(ids),
            "seconds": plan.burst_seconds,
            "operators": ops,
            "talk_s": plan.burst_talk,
            "talk_jitter_s": 0.5,
            "patience_s": [5.0, plan.burst_patience],
            "drain_limit_s": round(drain),
            "not_placed": len(set(ids) - arrived),  # the generator's originate failed
            "arrived": len(arrived),
            "connected": len(connected),
            "abandoned": len(abandoned),
            "dropped": len(dropped),
            "still_waiting_at_cutoff": len(still_waiting),
            "unaccounted": len(arrived - connected - abandoned - dropped - still_waiting),
            "unended_after_cleanup": len(
                {i for i in arrived if calls[i].ended is None}  # not even hung up
            ),
            "lost": len(dropped | still_waiting),
            "wait_s": {
                "p50": _round(pct(waits_s, 50)),
                "p90": _round(pct(waits_s, 90)),
                "p99": _round(pct(waits_s, 99)),
                "max": _round(max(waits_s) if waits_s else None),
            },
            "wait_histogram": histogram,
            "cpu_s": {k: round(v, 2) for k, v in total.items()},
            "cpu_s_per_1000_calls": {k: round(v / len(ids) * 1000, 1) for k, v in total.items()},
            "app_peak_rss_mb": rss,
        }
        if system == SIAGA:
            await asyncio.sleep(0.5)
            record = await self.records(sorted(arrived))
            record["answered_matches_asterisk"] = record["outcomes"].get("answered", 0) == len(
                connected
            )
            result["records"] = record
            result["screening"] = {k: dump.get(k) for k in ("screened", "unscreened")}
        log.info(
            "burst",
            system=system,
            connected=len(connected),
            abandoned=result["abandoned"],
            lost=result["lost"],
        )
        return result

    # -- 5. time to a human

    async def human(self, system: str, load: str) -> dict[str, Any]:
        """The caller mix at one load level: `idle` (plenty of free operators) or `busy`
        (~80 % operator occupancy). Both systems get the same arrivals and the same callers."""
        plan = self.plan
        jitter = HUMAN_TALK_JITTER
        if load == "idle":
            ops, rate = plan.human_idle_operators, plan.human_idle_rate
        else:
            # Each call holds its operator's phone for the ring and the talk.
            hold = RING + TALK + jitter / 2
            ops = plan.human_busy_operators
            rate = round(HUMAN_BUSY_OCCUPANCY * ops / hold, 2)
        await asyncio.to_thread(self.stack.set_operator_times, RING, TALK, jitter)
        if system == SIAGA:
            await self.start_app(ops, f"human-{load}")
        rng = random.Random(f"human-{load}")
        offsets = time_to_human.poisson_offsets(rate, plan.human_seconds, rng)
        menu = await asyncio.to_thread(self.stack.prompt_seconds, "main")
        callers = time_to_human.caller_mix(
            len(offsets), rng, self.emergency_digits(), menu, DIGIT_DELAY
        )
        patience = [HUMAN_PATIENCE] * len(offsets)
        since = time.time()
        ids = await self.place_schedule(
            system, f"h{load[0]}", offsets, ops, patience, callers=callers
        )
        window_end = time.time()
        await self.wait_ended(ids, since, HUMAN_PATIENCE + 20)
        events = self.ami.since(since)
        await self.idle()
        await self.stop_app()
        calls = traces(events, set(ids))
        settle = menu + self.stack.config.ivr.timeout_seconds + 1.0
        kinds = {i: c.kind for i, c in zip(ids, callers, strict=True)}
        times = time_to_human.human_times(calls, kinds)
        result: dict[str, Any] = {
            "operators": ops,
            "rate_per_s": rate,
            "seconds": plan.human_seconds,
            "calls": len(ids),
            "not_placed": sum(1 for i in ids if calls[i].arrived is None),
            "menu_s": round(menu, 2),
            # From when the slowest callers (silent) can first reach an operator: before
            # that the operators are not yet as busy as the arrival rate makes them.
            "occupancy": occupancy(events, ops, since + settle, window_end),
            **times,
        }
        log.info(
            "human",
            system=system,
            load=load,
            occupancy=result["occupancy"],
            answer_p90=times["all"]["to_answer_s"]["p90"],
        )
        return result

    def emergency_digits(self) -> list[str]:
        """The main menu's digits that choose a category at once (an emergency caller's)."""
        main = self.stack.config.ivr.menus["main"].choices
        return sorted(d for d, target in main.items() if not target.startswith(MENU_PREFIX))


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _cpus(app_pid: int | None, ast_pid: int | None, pg_pid: int | None) -> dict[str, float]:
    out = {"asterisk": cpu_seconds(ast_pid) if ast_pid else 0.0, "bench": cpu_seconds(os.getpid())}
    if app_pid:
        out["app"] = cpu_seconds(app_pid)
    if pg_pid:
        # The records are part of what a Siaga call costs (app_queue writes none).
        out["postgres"] = server_cpu_seconds(pg_pid)
    return out


def _delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: b[k] - a[k] for k in b if k in a}


# ---- putting it together ------------------------------------------------------------------


async def run(
    plan: Plan,
    parts: set[str],
    keep: bool = False,
    sessionlimit: int | None = None,
    plain_app_queue: bool = False,
) -> dict[str, Any]:
    config = base_config()
    stack = BenchStack(config, plan.queue_sizes, http_sessionlimit=sessionlimit)
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="siaga-bench-work-"))
    try:
        await stack.start()
        ast = config.asterisk
        ami = AmiObserver(ast.ami_host, ast.ami_port, ast.ami_user, ast.ami_password)
        await ami.start()
        ari_config = AriConfig(
            username=ast.ari_user, password=ast.ari_password, app=ast.app, url=ast.ari_url
        )
        # Few connections: Asterisk serves at most `sessionlimit` (100) HTTP sessions, the app
        # needs them more than the load generator does.
        connector = aiohttp.TCPConnector(limit=20)
        async with aiohttp.ClientSession(connector=connector) as session:
            rest = AriRest.from_session(session, ari_config)
            bench = Bench(stack, plan, rest, ami, work, plain_app_queue=plain_app_queue)
            try:
                results = await _parts(bench, plan, parts)
            finally:
                await bench.stop_app()
                await ami.close()
    finally:
        await asyncio.to_thread(stack.close)
        if keep:
            log.info("bench.kept", folder=str(work))
        else:
            shutil.rmtree(work, ignore_errors=True)
    return results


async def _parts(bench: Bench, plan: Plan, parts: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for system in SYSTEMS:
        await bench.warm_up(system)
    if "dispatch" in parts:
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SYSTEMS}
        for run in range(plan.runs):
            for system in SYSTEMS:
                runs[system].append(await bench.dispatch(system, run))
        out["dispatch"] = {
            "operators": plan.dispatch_operators,
            "talk_s": plan.dispatch_talk,
            "talk_jitter_s": 1.0,
            "ring_s": RING,
            **{
                s: {
                    "runs": runs[s],
                    "median_ms": {k: median_field(runs[s], k) for k in ("p50", "p99", "max")},
                }
                for s in SYSTEMS
            },
        }
    if "overhead" in parts:
        over: dict[str, list[dict[str, Any]]] = {s: [] for s in SYSTEMS}
        for run in range(plan.runs):
            for system in SYSTEMS:
                over[system].append(await bench.overhead(system, run))
        out["overhead"] = {
            s: {
                "runs": over[s],
                "median_ms": _median_steps(over[s]),
            }
            for s in SYSTEMS
        }
    if "ramp" in parts:
        out["sustained"] = {s: await bench.ramp(s) for s in SYSTEMS}
    if "burst" in parts:
        out["burst"] = {s: await bench.burst(s) for s in SYSTEMS}
    if "human" in parts:
        out["time_to_human"] = {
            load: {s: await bench.human(s, load) for s in SYSTEMS} for load in ("idle", "busy")
        }
    return out


def _median_steps(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    keys = ["queued_to_operator_channel"]
    out: dict[str, Any] = {
        "queued_to_operator_channel": {
            q: median_field([r["queued_to_operator_channel"] for r in runs], q)
            for q in ("p50", "p99", "max")
        }
    }
    for step in runs[0]["steps"] if runs else []:
        keys.append(step)
        out[step] = {q: median_field([r["steps"][step] for r in runs], q) for q in ("p50", "p99")}
    return out


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    """The targets (TARGET_* above; bench/README.md), for Siaga, with the app_queue figure
    beside each."""
    out: dict[str, Any] = {}
    if "dispatch" in results:
        d = results["dispatch"]
        s, q = d[SIAGA]["median_ms"], d[APP_QUEUE]["median_ms"]
        out["dispatch_p99_ms"] = {
            "siaga": s["p99"],
            "app_queue": q["p99"],
            "target": TARGET_DISPATCH_P99_MS,
            "met": s["p99"] is not None and s["p99"] <= TARGET_DISPATCH_P99_MS,
            "app_queue_over_siaga_p50": ratio(q["p50"], s["p50"]),
            "app_queue_over_siaga_p99": ratio(q["p99"], s["p99"]),
        }
        speedup = ratio(q["p50"], s["p50"])
        out["dispatch_speedup_p50"] = {
            "app_queue_over_siaga": speedup,
            "target": TARGET_DISPATCH_SPEEDUP,
            "met": speedup is not None and speedup >= TARGET_DISPATCH_SPEEDUP,
        }
    if "sustained" in results:
        r = results["sustained"]
        rate = r[SIAGA]["highest_held_rate"]
        out["sustained_calls_per_s"] = {
            "siaga": rate,
            "app_queue": r[APP_QUEUE]["highest_held_rate"],
            "target": TARGET_RATE,
            "met": rate is not None and rate >= TARGET_RATE,
        }
        theirs = r[APP_QUEUE]["highest_held_rate"]
        out["sustained_at_least_app_queue"] = {
            "siaga": rate,
            "app_queue": theirs,
            "met": rate is not None and (theirs is None or rate >= theirs),
        }
    if "time_to_human" in results:
        h = results["time_to_human"]

        def p90(load: str, system: str) -> float | None:
            value: float | None = h[load][system]["all"]["to_answer_s"]["p90"]
            return value

        s_idle, q_idle = p90("idle", SIAGA), p90("idle", APP_QUEUE)
        out["human_idle_p90_s"] = {
            "siaga": s_idle,
            "app_queue": q_idle,
            "target": TARGET_IDLE_HUMAN_P90_S,
            "met": s_idle is not None
            and s_idle <= TARGET_IDLE_HUMAN_P90_S
            and (q_idle is None or s_idle <= q_idle),
        }
        s_busy, q_busy = p90("busy", SIAGA), p90("busy", APP_QUEUE)
        out["human_busy_p90_s"] = {
            "siaga": s_busy,
            "app_queue": q_busy,
            "occupancy": {s: h["busy"][s]["occupancy"] for s in SYSTEMS},
            "met": s_busy is not None and (q_busy is None or s_busy <= q_busy),
        }
    if "burst" in results:
        b = results["burst"][SIAGA]
        rec = b.get("records", {})
        out["burst_zero_lost"] = {
            "siaga_lost": b["lost"],
            "siaga_unaccounted": b["unaccounted"],
            "app_queue_lost": results["burst"][APP_QUEUE]["lost"],
            "met": b["lost"] == 0 and b["unaccounted"] == 0,
        }
        out["records_complete"] = {
            "missing": rec.get("missing"),
            "ongoing": rec.get("outcomes", {}).get("ongoing", 0),
            "met": rec.get("missing") == 0 and not rec.get("outcomes", {}).get("ongoing"),
        }
    return out


# ---- Markdown -----------------------------------------------------------------------------


def _f(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text}{unit}"


def markdown(result: dict[str, Any]) -> str:
    r = result["results"]
    lines = [
        f"Siaga vs app_queue on one Asterisk 22, {result['machine']['cpus']} cores, "
        f"{result['when'][:10]} (`{result['command']}`; medians of {result['plan']['runs']} "
        "run(s) where repeated)",
        "",
        "| figure | Siaga | app_queue | app_queue / Siaga |",
        "| --- | --- | --- | --- |",
    ]

    def row(name: str, s: Any, q: Any, unit: str = "") -> None:
        both = isinstance(s, int | float) and isinstance(q, int | float) and s
        rat = f"{q / s:.2g}x" if both and q / s < 10 else f"{q / s:,.0f}x" if both else "-"
        lines.append(f"| {name} | {_f(s, unit)} | {_f(q, unit)} | {rat} |")

    def cost(label: str, part: str, s: dict[str, Any], q: dict[str, Any]) -> None:
        for key in ("app", "asterisk", "postgres"):
            row(
                f"{label}: {key} CPU per 1,000 calls",
                s["cpu_s_per_1000_calls"].get(key),
                q["cpu_s_per_1000_calls"].get(key),
                " s",
            )
        row(f"app peak RSS ({part})", s["app_peak_rss_mb"], None, " MB")

    if "dispatch" in r:
        d = r["dispatch"]
        title = (
            f"dispatch: operator free -> next caller offered ({d['operators']} operators, "
            "more callers)"
        )
        for q in ("p50", "p99", "max"):
            row(f"{title} {q}", d[SIAGA]["median_ms"][q], d[APP_QUEUE]["median_ms"][q], " ms")
    if "overhead" in r:
        o = r["overhead"]
        for q in ("p50", "p99"):
            row(
                f"idle operator: queued -> operator channel {q}",
                o[SIAGA]["median_ms"]["queued_to_operator_channel"][q],
                o[APP_QUEUE]["median_ms"]["queued_to_operator_channel"][q],
                " ms",
            )
        steps = o[SIAGA]["median_ms"]
        for step in (
            "stasis_to_answered",
            "digit_to_queued",
            "queued_to_offer_decision",
            "offer_decision_to_originate",
        ):
            if step in steps:
                row(f"Siaga only: {step.replace('_', ' ')} p50", steps[step]["p50"], None, " ms")
        if "arrival_to_queued" in o[APP_QUEUE]["median_ms"]:
            row(
                "app_queue only: caller created -> QueueCallerJoin (+ menu if equal-work) p50",
                None,
                o[APP_QUEUE]["median_ms"]["arrival_to_queued"]["p50"],
                " ms",
            )
    if "sustained" in r:
        s, q = r["sustained"][SIAGA], r["sustained"][APP_QUEUE]
        row(
            "sustained: highest rate held (0 lost, p99 queued -> offer < 1 s)",
            s["highest_held_rate"],
            q["highest_held_rate"],
            " calls/s",
        )
        row(
            "ramp: whole stack CPU per call (app + Asterisk + PostgreSQL)",
            s.get("stack_cpu_ms_per_call"),
            q.get("stack_cpu_ms_per_call"),
            " ms",
        )
        cost("cost in the ramp", "ramp", s, q)
    if "burst" in r:
        s, q = r["burst"][SIAGA], r["burst"][APP_QUEUE]
        lines.append(
            f"| burst: {s['calls']} calls in {s['seconds']:g} s, {s['operators']} operators, "
            f"callers give up after {s['patience_s'][0]:g}-{s['patience_s'][1]:g} s | | | |"
        )
        row(
            "burst: calls placed / reached Asterisk",
            _pair(s, "calls", "arrived"),
            _pair(q, "calls", "arrived"),
        )
        row("burst: connected", s["connected"], q["connected"])
        row("burst: abandoned (the caller gave up)", s["abandoned"], q["abandoned"])
        row("burst: dropped (gone unanswered before giving up)", s["dropped"], q["dropped"])
        row(
            f"burst: still up at the cut-off ({s['drain_limit_s']} s after the last arrival)",
            s["still_waiting_at_cutoff"],
            q["still_waiting_at_cutoff"],
        )
        row("burst: lost (dropped or still up)", s["lost"], q["lost"])
        row("burst: unaccounted in Asterisk", s["unaccounted"], q["unaccounted"])
        rec = s.get("records", {})
        row("burst: records rows / missing", f"{rec.get('rows')} / {rec.get('missing')}", "-")
        for p in ("p50", "p90", "p99", "max"):
            row(f"burst: wait to connect {p}", s["wait_s"][p], q["wait_s"][p], " s")
        cost("burst", "burst", s, q)
    if "time_to_human" in r:
        lines += ["", *human_table(r["time_to_human"])]
    if "sustained" in r:
        lines += [
            "",
            "Ramp steps (calls/s: p99 queued -> offer, lost calls, and how busy the whole "
            "machine's CPU was while the step's calls arrived):",
            "",
        ]
        lines.append(
            "| rate | Siaga p99 ms | Siaga lost | Siaga CPU busy "
            "| app_queue p99 ms | app_queue lost | app_queue CPU busy |"
        )
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        # Each system's ramp stops after its first lost step: a rate only one reached has a
        # "-" (not run) on the other side.
        steps = {
            system: {st["rate"]: st for st in r["sustained"][system]["steps"]}
            for system in (SIAGA, APP_QUEUE)
        }
        for rate in sorted(steps[SIAGA].keys() | steps[APP_QUEUE].keys()):
            cells = []
            for system in (SIAGA, APP_QUEUE):
                st = steps[system].get(rate, {})
                p99 = st.get("queued_to_operator_channel_ms", {}).get("p99")
                busy = st.get("machine_busy_percent")
                cells += [_f(p99), _f(st.get("lost")), "-" if busy is None else f"{busy:.0f}%"]
            lines.append(f"| {_f(rate)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def human_table(h: dict[str, Any]) -> list[str]:
    """Time to a human, by load level and caller kind: p50 / p90 / p99 seconds."""
    lines = [
        "Time to a human (s from the caller's channel created; p50 / p90 / p99; "
        "occupancy measured from the operators' channels):",
        "",
        "| load | callers | to ringing Siaga | to ringing app_queue "
        "| answered Siaga | answered app_queue |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def cell(figures: dict[str, Any]) -> str:
        return " / ".join(_f(figures[q]) for q in ("p50", "p90", "p99"))

    for load in ("idle", "busy"):
        if load not in h:
            continue
        s, q = h[load][SIAGA], h[load][APP_QUEUE]
        occ = "/".join(
            "-" if x.get("occupancy") is None else f"{x['occupancy']:.0%}" for x in (s, q)
        )
        for kind in ("all", *(k.value for k in CallerKind)):
            a, b = s[kind], q[kind]
            lines.append(
                f"| {load} ({s['operators']} operators, {s['rate_per_s']:g}/s, {occ}) "
                f"| {kind} ({a['callers']}) | {cell(a['to_ringing_s'])} "
                f"| {cell(b['to_ringing_s'])} | {cell(a['to_answer_s'])} "
                f"| {cell(b['to_answer_s'])} |"
            )
    return lines


def _pair(b: dict[str, Any], first: str, second: str) -> str:
    return f"{b[first]} / {b[second]}"


# ---- command line -------------------------------------------------------------------------

PARTS = ("dispatch", "overhead", "ramp", "burst", "human")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a scaled-down run (~6 minutes)")
    parser.add_argument("--runs", type=int, help="repetitions of dispatch and overhead")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset")
    parser.add_argument("--burst-calls", type=int)
    parser.add_argument("--step-seconds", type=float, help="length of each ramp step")
    parser.add_argument(
        "--rates", help="comma-separated ramp rates in calls/s (default 10,...,100)"
    )
    parser.add_argument(
        "--http-sessionlimit",
        type=int,
        help="Asterisk's HTTP session limit (ARI); default: as shipped (Asterisk's 100)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the app's timelines and log (debugging)"
    )
    parser.add_argument(
        "--app-queue",
        choices=("equal", "plain"),
        default="equal",
        help="app_queue's callers: the equal-work path (default) or straight to Queue()",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stack.json")
    args = parser.parse_args(argv)
    configure_logging("console", logging.INFO)
    signal.signal(signal.SIGTERM, _interrupted)  # stop everything in order, as on Ctrl-C
    plan = QUICK if args.quick else FULL
    if args.runs:
        plan = _replace(plan, runs=args.runs)
    if args.burst_calls:
        plan = _replace(plan, burst_calls=args.burst_calls)
    if args.step_seconds:
        plan = _replace(plan, ramp_step_seconds=args.step_seconds)
    if args.rates:
        plan = _replace(plan, ramp_rates=tuple(float(r) for r in args.rates.split(",")))
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    began = time.monotonic()
    plain = args.app_queue == "plain"
    results = asyncio.run(run(plan, parts, args.keep, args.http_sessionlimit, plain))
    report = {
        "benchmark": "stack",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.bench_stack" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "plan": plan.__dict__
        | {"ramp_operators": plan.ramp_operators, "app_queue_path": args.app_queue},
        "seconds": round(time.monotonic() - began, 1),
        "results": results,
        "targets": verdict(results),
    }
    text = json.dumps(report, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    return 0


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _replace(plan: Plan, **changes: Any) -> Plan:
    import dataclasses

    return dataclasses.replace(plan, **changes)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
