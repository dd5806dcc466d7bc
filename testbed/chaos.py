"""The chaos harness: the real stack under steady calls while its parts are killed at random
moments, then every call in Asterisk's own record compared with Siaga's records.

Used by `bench/chaos.py` (full size) and `tests/integration/test_chaos.py` (scaled down). The
stack's pieces are in testbed/chaos_stack.py.

The stack has the production shape: a PostgreSQL cluster and an Asterisk instance of the run's
own, and the app as `siaga run` in a process of its own, with a siaga.toml written for the run
(`embedded = false` for both, pointing at them). Callers are SIPp UACs dialling 112 with real
RFC 4733 digits; operators are real SIP phones (SIPp UASes, each serving a few operators'
registrations), since the fallback queue rings PJSIP/<sip_user> while the app is away.

Faults come one after the other at seeded random moments: SIGKILL of the app's process group,
restarted 0-10 s later; kill -9 of the PostgreSQL postmaster, restarted; kill -9 of Asterisk,
restarted (its channels die with it, so those calls are cut), after which the phones register
again. Once the callers are done and Asterisk has no channel left, the app is restarted once
more (its start-up pass reconciles the records with Asterisk's) and the records are compared
(testbed/chaos_compare.py): every call Asterisk saw must have exactly one `calls` row, closed,
with arrival, answer and end within a second of Asterisk's, the right outcome, the fallback
flag when the fallback took it, and no event a call has once (arrival, end, abandon) written
twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import shutil
import socket
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog

from db.reconcile import SETTLE
from pbx.asterisk import AsteriskInstance
from pbx.provision import ensure_asterisk_root, render_prompts
from siaga.config import Config, load_config
from testbed.chaos_compare import Comparison, compare_now
from testbed.chaos_stack import (
    CALLER_KINDS,
    CALLER_RECV_TIMEOUT_S,
    EXAMPLE,
    PG_SETTINGS,
    AppProcess,
    OperatorPhones,
    Ports,
    active_channels,
    caller_sipps,
    channel_summary,
    chaos_phones,
    chaos_settings,
    kill_asterisk,
    kill_postgres,
    restart_postgres,
    sipp_running,
    write_config,
)
from testbed.cluster import ClusterError, PgCluster
from testbed.sipp import Sipp, SippError, free_port

log = structlog.get_logger(__name__)


class FaultKind(StrEnum):
    APP = "app"
    POSTGRES = "postgres"
    ASTERISK = "asterisk"


@dataclass(frozen=True, slots=True)
class Fault:
    at: float  # seconds after the first call
    kind: FaultKind
    down_for: float  # seconds between the kill and the restart


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    rate: float = 10.0  # calls per second
    duration: float = 120.0  # seconds of arrivals
    app_kills: int = 10
    postgres_kills: int = 2
    asterisk_kills: int = 1
    seed: int = 0
    operators: int = 0  # 0: enough for the rate
    max_app_down: float = 10.0

    def operator_count(self) -> int:
        # ~80 % of the callers reach someone and keep them ~6 s (ring, talk, wrap-up).
        return self.operators or max(6, math.ceil(self.rate * 6) + 4)


def fault_schedule(plan: ChaosPlan) -> list[Fault]:
    """The faults at seeded random moments within the arrivals (not in the first or last
    few seconds, so that each hits calls in every state), in the order they happen."""
    rng = random.Random(plan.seed)
    kinds = (
        [FaultKind.APP] * plan.app_kills
        + [FaultKind.POSTGRES] * plan.postgres_kills
        + [FaultKind.ASTERISK] * plan.asterisk_kills
    )
    faults = []
    for kind in kinds:
        at = rng.uniform(0.05 * plan.duration, 0.85 * plan.duration)
        down = (
            rng.uniform(0.0, plan.max_app_down) if kind is FaultKind.APP else rng.uniform(0.5, 3.0)
        )
        faults.append(Fault(round(at, 3), kind, round(down, 3)))
    return sorted(faults, key=lambda f: f.at)


@dataclass
class ChaosRun:
    """One run: the stack, the load, the faults; `run()` returns its JSON."""

    plan: ChaosPlan
    keep: bool = False
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="siaga-chaos-")))
    faults_done: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    channels_left: dict[str, int] = field(default_factory=dict)
    phase_ends_at: dict[str, float] = field(default_factory=dict)  # seconds from the start

    async def run(self) -> dict[str, Any]:
        os.chmod(self.folder, 0o755)  # PostgreSQL runs as `postgres` when we are root
        started = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            if not self.keep:
                stack.callback(shutil.rmtree, self.folder, True)
            cluster = PgCluster(
                self.folder / "pg", free_port(socket.SOCK_STREAM), settings=PG_SETTINGS
            )
            stack.callback(self._stop_postgres, cluster)
            await asyncio.to_thread(cluster.start)

            root, prompts = await asyncio.to_thread(ensure_asterisk_root), render_prompts()
            name = f"chaos-{os.getpid()}"
            example = load_config(EXAMPLE)
            # Where this instance will log (the layout depends on the name alone).
            future = AsteriskInstance(root, name, example)
            log_dir = future.outside(future.layout.log_dir)
            ports = Ports.free()
            phones = chaos_phones(self.plan.operator_count())
            settings = chaos_settings(
                tomllib.loads(EXAMPLE.read_text(encoding="utf-8")),
                dsn=cluster.dsn,
                ports=ports,
                phones=phones,
                log_dir=log_dir,
                recordings_dir=future.recordings_dir,
            )
            config_path = self.folder / "siaga.toml"
            config = write_config(config_path, settings)
            instance = AsteriskInstance(root, name, config)
            # After the stop below (callbacks run last in, first out).
            stack.callback(self._remove_instance, instance)
            stack.callback(instance.stop)
            await asyncio.to_thread(instance.prepare, prompts)
            # In this thread: Asterisk is told to die with the thread that started it.
            instance.start()

            app = AppProcess(config_path, self.folder, ports.web)
            stack.push_async_callback(app.stop)
            await app.start()
            if not await app.wait_healthy(90):
                raise RuntimeError(f"the app did not come up:\n{app.log_tail()}")

            operator_phones = OperatorPhones(phones, ports.sip, self.folder, self.plan.seed)
            stack.push_async_callback(operator_phones.stop)
            await operator_phones.start()

            callers = caller_sipps(self.plan.rate, self.plan.duration, ports.sip, self.folder)
            for sipp in callers:
                stack.push_async_callback(sipp.stop)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for sipp in callers:
                await sipp.start()
            await asyncio.sleep(0.5)
            for sipp in callers:
                if not sipp_running(sipp):
                    raise SippError(f"a callers' SIPp exited at once:\n{sipp.diagnostics()}")
            self._phase("setup", started)
            faults = fault_schedule(self.plan)
            await self._inject(faults, t0, app, cluster, instance, operator_phones)
            longest = max(k.delay_ms + k.hold_ms for k in CALLER_KINDS) / 1000
            await self._wait_callers(
                callers, t0 + self.plan.duration + longest + CALLER_RECV_TIMEOUT_S + 10
            )
            self._phase("calls", started)
            await self._settle(instance)
            self._phase("settle", started)
            dead = sum(1 for uas in operator_phones.uases if not sipp_running(uas))
            if dead:
                self.notes.append(f"{dead} operators' SIPp processes died during the run")

            # The app's start-up pass reconciles the records with Asterisk's: it leaves alone
            # the calls that ended less than SETTLE ago. Killed, not stopped: a graceful stop
            # would wait for calls still up, and hand the waiting ones to the fallback.
            await asyncio.sleep(SETTLE.total_seconds() + 1)
            await app.kill()
            await app.start()
            if not await app.wait_healthy(90):
                self.notes.append("the app was not healthy after its final restart")
            comparison, record_error = await self._final_comparison(cluster.dsn, instance, config)
            self._phase("final", started)
            result = self._result(comparison, record_error, callers, operator_phones, app)
            result["seconds"] = round(time.monotonic() - started, 1)
            result["phase_ends_at"] = self.phase_ends_at
        return result

    async def _inject(
        self,
        faults: Sequence[Fault],
        t0: float,
        app: AppProcess,
        cluster: PgCluster,
        instance: AsteriskInstance,
        phones: OperatorPhones,
    ) -> None:
        """Each fault at its moment, one after the other: a fault due while the one before is
        still down comes as soon as that one is back (`at` says when it came)."""
        loop = asyncio.get_running_loop()
        for fault in faults:
            await asyncio.sleep(max(0.0, t0 + fault.at - loop.time()))
            done: dict[str, Any] = {
                "kind": fault.kind.value,
                "planned_at": fault.at,
                "at": round(loop.time() - t0, 3),
                "down_for": fault.down_for,
            }
            log.info("chaos.fault", **done)
            if fault.kind is FaultKind.APP:
                await app.kill()
                await asyncio.sleep(fault.down_for)
                await app.start()
            elif fault.kind is FaultKind.POSTGRES:
                kill_postgres(cluster)
                await asyncio.sleep(fault.down_for)
                await asyncio.to_thread(restart_postgres, cluster)
            else:
                kill_asterisk(instance)
                await asyncio.sleep(fault.down_for)
                # In this thread (see run()); the loop waits the second or two it takes.
                instance.start()
                await phones.register()
            done["back_at"] = round(loop.time() - t0, 3)
            self.faults_done.append(done)

    async def _wait_callers(self, callers: Sequence[Sipp], until: float) -> None:
        loop = asyncio.get_running_loop()
        for sipp in callers:
            if sipp.process is None:
                continue
            try:
                await asyncio.wait_for(sipp.process.wait(), max(1.0, until - loop.time()))
            except TimeoutError:
                self.notes.append("a caller SIPp was still running long after its last call")
                await sipp.stop()

    async def _settle(self, instance: AsteriskInstance, timeout: float = 30.0) -> None:
        """Until Asterisk has no channel left: every call over."""
        deadline = time.monotonic() + timeout
        left = None
        while time.monotonic() < deadline:
            left = await asyncio.to_thread(active_channels, instance)
            if left == 0:
                return
            await asyncio.sleep(1.0)
        self.notes.append(f"{left} channels were still up {timeout:g} s after the last caller")
        self.channels_left = await asyncio.to_thread(channel_summary, instance)

    async def _final_comparison(
        self, dsn: str, instance: AsteriskInstance, config: Config, timeout: float = 30.0
    ) -> tuple[Comparison, str | None]:
        """Compared until clean, or until the same twice in a row (the records caught up with
        whatever the start-up pass wrote), or `timeout`."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            comparison, error = await compare_now(dsn, instance, config)
            summary = comparison.summary()
            if comparison.clean or summary == last or time.monotonic() > deadline:
                return comparison, error
            last = summary
            await asyncio.sleep(3.0)

    def _phase(self, name: str, started: float) -> None:
        self.phase_ends_at[name] = round(time.monotonic() - started, 1)

    def _result(
        self,
        comparison: Comparison,
        record_error: str | None,
        callers: Sequence[Sipp],
        phones: OperatorPhones,
        app: AppProcess,
    ) -> dict[str, Any]:
        kills = Counter(f["kind"] for f in self.faults_done)
        return {
            "benchmark": "chaos",
            "seed": self.plan.seed,
            "plan": asdict(self.plan),
            "operators": len(phones.phones),
            "calls_placed": sum(s.calls for s in callers),
            "kills": {kind.value: kills.get(kind.value, 0) for kind in FaultKind},
            "faults": self.faults_done,
            "app_starts": app.starts,
            "app_exits": len(app.exits),  # of its own accord, then started again
            "app_exit_examples": app.exits[:3],
            "phone_registrations_failed": phones.failed_registrations,
            "asterisk_record": "cel" if record_error is None else f"missing ({record_error})",
            **comparison.summary(),
            "notes": self.notes,
            "channels_left": self.channels_left,
            "folder": str(self.folder) if self.keep else None,
        }

    def _remove_instance(self, instance: AsteriskInstance) -> None:
        """The instance's folders go; with `keep`, its logs (CEL, queue_log) stay in ours."""
        if self.keep:
            shutil.copytree(
                instance.outside(instance.layout.log_dir),
                self.folder / "asterisk-log",
                dirs_exist_ok=True,
            )
        shutil.rmtree(instance.outside(instance.layout.base), ignore_errors=True)

    @staticmethod
    def _stop_postgres(cluster: PgCluster) -> None:
        with contextlib.suppress(ClusterError):
            cluster.stop("immediate")


async def run_chaos(plan: ChaosPlan, *, keep: bool = False) -> dict[str, Any]:
    return await ChaosRun(plan, keep=keep).run()
