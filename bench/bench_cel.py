"""What Asterisk's own record of every call (CEL, `cel.conf`) costs Asterisk per call.

    .venv/bin/python -m bench.bench_cel            # under 2 minutes
    .venv/bin/python -m bench.bench_cel --quick    # about 40 s, scaled down

One Asterisk instance of the benchmark's own (bench/stack_env.py: bench-<pid>, free ports,
127.0.0.1 only) and nothing else: no app, no PostgreSQL, no SIP. Callers arrive at a steady
rate and take app_queue's equal-work path (bench/equal_work.py: recorded from arrival,
answered, the menu, digit 1 into the medical queue) to simulated Local operators who ring,
answer, talk and hang up; `--path plain` sends them straight to `Queue()`.

While the calls flow, CEL is turned on and off in turn, window after window, in the same
Asterisk process (on, off, on, off, ...): the instance's `cel.conf` rewritten with
`enable = yes` or `no` and `module reload cel`. Short windows back to back put what the
machine's other work does to the figures on both modes alike; finished phases of whole calls
(each call in one mode) were tried first, and the time their last calls took to end left
fewer, further apart phases, whose spread hid the figure. At a steady rate Asterisk does in
any window the work of as many calls as arrive in it: a window's Asterisk CPU
(`/proc/<pid>/stat`, all threads) over the calls that arrived in it is the CPU per call.
The same holds for the bytes and lines `cel.jsonl` grows. Per mode the median; CEL's cost is
the difference, in ms of Asterisk's CPU per call and in % of Asterisk's CPU per call with CEL
on (as shipped); beside it the median of each window against the two windows of the other mode
around it, which a drift of the machine's load over the run does not move.

Each toggle is checked twice, and a failed check stops the benchmark: `cel show status` must
say so, and `cel.jsonl` must grow in a window with CEL on and not at all in one with CEL off.
Every call must reach an operator (app_queue's completed-call counters), else the load was not
the one intended.

Prints JSON and writes it to --out (bench/results/cel.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import platform
import re
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from ari_app.ari.config import AriConfig
from ari_app.ari.errors import AriError
from ari_app.ari.rest import AriRest
from bench.bench_stack import FIRST_CHANCE, RING, TALK
from bench.equal_work import ENTRY_CONTEXT
from bench.stack_env import (
    CALLER_ENDPOINT,
    CALLER_FORMATS,
    QUEUE_CONTEXT,
    BenchStack,
    base_config,
    busy_percent,
    cpu_seconds,
    machine_cpu_seconds,
    queue_name,
)
from pbx.asterisk import AsteriskInstance
from siaga.logging import configure_logging

log = structlog.get_logger("bench.cel")

ROOT = Path(__file__).resolve().parents[1]
# A caller stays until its operator hangs up; this is only its limit.
PATIENCE = 60.0
# A call lasts about this long (menu heard, digit, ring, talk).
CALL_SECONDS = RING + TALK + 1.0
# After a toggle, before a window starts: the events of the mode before reach the file.
SETTLE_SECONDS = 0.3
DRAIN_TIMEOUT = 60.0  # after the last call placed, for every channel to be gone


class BenchError(RuntimeError):
    """The benchmark cannot measure what it claims to (a toggle or a call that did not work)."""


@dataclass(frozen=True)
class Plan:
    pairs: int  # windows with CEL on, and as many with CEL off
    window_seconds: float
    rate: float  # calls per second
    warm_up_seconds: float  # calls flowing before the first window: a steady state

    @property
    def operators(self) -> int:
        """Enough that a caller never waits: every call does the same work."""
        return math.ceil(self.rate * CALL_SECONDS * 1.3)


FULL = Plan(pairs=8, window_seconds=5.0, rate=20.0, warm_up_seconds=2 * CALL_SECONDS)
QUICK = Plan(pairs=3, window_seconds=4.0, rate=15.0, warm_up_seconds=CALL_SECONDS + 1)


@dataclass(frozen=True)
class Window:
    """A stretch of steady calls with CEL on or off."""

    cel: bool
    seconds: float
    calls: int  # arrived in the window
    asterisk_cpu_s: float
    cel_bytes: int
    cel_lines: int
    machine_busy_percent: float | None

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.asterisk_cpu_s / self.calls

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {
            "asterisk_cpu_ms_per_call": round(self.cpu_ms_per_call, 3),
            "cel_bytes_per_call": round(self.cel_bytes / self.calls, 1),
            "cel_lines_per_call": round(self.cel_lines / self.calls, 2),
        }


# ---- pure helpers -------------------------------------------------------------------------

_ENABLE = re.compile(r"^(enable\s*=\s*)\S+", re.MULTILINE)
_LOGGING = re.compile(r"^CEL Logging:\s*(\w+)", re.MULTILINE)
_COMPLETED = re.compile(r"\bC:(\d+)")


def modes(pairs: int) -> list[bool]:
    """CEL on, off, on, off...: each mode's windows spread over the whole run."""
    return [True, False] * pairs


def cel_conf(text: str, enabled: bool) -> str:
    """The instance's cel.conf with its one `enable` line set."""
    new, count = _ENABLE.subn(rf"\g<1>{'yes' if enabled else 'no'}", text)
    if count != 1:
        raise ValueError(f"cel.conf has {count} 'enable =' lines, not one")
    return new


def cel_logging(status: str) -> bool:
    """Whether `cel show status` says CEL is on."""
    found = _LOGGING.search(status)
    if found is None:
        raise ValueError(f"no 'CEL Logging:' line in {status!r}")
    word = found.group(1)
    if word not in ("Enabled", "Disabled"):
        raise ValueError(f"CEL Logging: {word!r}")
    return word == "Enabled"


def completed_calls(queue_show: str) -> int:
    """Calls answered by a member, over every queue of `queue show` (its `C:` counters)."""
    return sum(int(n) for n in _COMPLETED.findall(queue_show))


def check_window(window: Window) -> None:
    """A window with CEL on writes records, one with CEL off writes none: else the toggle did
    not work, and both modes would measure the same thing."""
    if window.calls <= 0:
        raise BenchError("no call arrived in the window")
    if window.cel and window.cel_bytes <= 0:
        raise BenchError("CEL on, yet cel.jsonl did not grow")
    if not window.cel and window.cel_bytes != 0:
        raise BenchError(f"CEL off, yet cel.jsonl grew by {window.cel_bytes} bytes")


def against_neighbours(windows: Sequence[Window]) -> list[float]:
    """CEL's cost per call seen by each window between two of the other mode: the window's CPU
    per call against the mean of theirs, with CEL on minus with CEL off. The machine's load
    drifts over a run (other work starts and stops); a drift that is steady over three windows
    cancels out here, where a difference of medians over the whole run keeps it."""
    out: list[float] = []
    for before, this, after in zip(windows, windows[1:], windows[2:], strict=False):
        if before.cel == after.cel != this.cel:
            others = (before.cpu_ms_per_call + after.cpu_ms_per_call) / 2
            difference = this.cpu_ms_per_call - others
            out.append(difference if this.cel else -difference)
    return out


def summarise(windows: Sequence[Window]) -> dict[str, Any]:
    """Medians per mode and their difference per call; and the median of each window against
    its neighbours (`against_neighbours`)."""
    on = [w for w in windows if w.cel]
    off = [w for w in windows if not w.cel]
    if not on or not off:
        raise ValueError("windows of both modes are needed")
    on_ms = statistics.median(w.cpu_ms_per_call for w in on)
    off_ms = statistics.median(w.cpu_ms_per_call for w in off)
    cost = on_ms - off_ms
    by_window = against_neighbours(windows)
    paired = statistics.median(by_window) if by_window else None
    return {
        "asterisk_cpu_ms_per_call": {"cel_on": round(on_ms, 3), "cel_off": round(off_ms, 3)},
        "cel_ms_per_call": round(cost, 3),
        # The share of Asterisk's CPU per call that CEL takes, as Siaga runs it (CEL on).
        "cel_percent_of_asterisk_cpu": _percent(cost, on_ms),
        "cel_ms_per_call_against_neighbours": None if paired is None else round(paired, 3),
        "cel_percent_against_neighbours": None if paired is None else _percent(paired, on_ms),
        # Their spread shows how far the machine's noise reaches.
        "cel_ms_per_call_by_window": [round(v, 3) for v in by_window],
        "cel_bytes_per_call": round(statistics.median(w.cel_bytes / w.calls for w in on), 1),
        "cel_lines_per_call": round(statistics.median(w.cel_lines / w.calls for w in on), 2),
    }


def _percent(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole > 0 else None


def markdown(report: dict[str, Any]) -> str:
    """The summary's lines: medians per mode and the differences."""
    m, plan = report["median"], report["plan"]
    cpu = m["asterisk_cpu_ms_per_call"]
    spread = m["cel_ms_per_call_by_window"]
    neighbours = m["cel_ms_per_call_against_neighbours"]
    against = (
        ""
        if neighbours is None
        else f"; each window against its neighbours: median {neighbours:.2f} ms "
        f"({m['cel_percent_against_neighbours']} %), from {min(spread):+.2f} to "
        f"{max(spread):+.2f} ms"
    )
    return (
        f"- Asterisk CPU per call: CEL on {cpu['cel_on']:.2f} ms, off {cpu['cel_off']:.2f} ms "
        f"(medians of {plan['pairs']} windows of {plan['window_seconds']:g} s each, "
        f"{plan['rate']:g} calls/s, {plan['path']} path)\n"
        f"- CEL costs {m['cel_ms_per_call']:.2f} ms of Asterisk CPU per call "
        f"({m['cel_percent_of_asterisk_cpu']} %){against}\n"
        f"- CEL writes {m['cel_bytes_per_call']:,.0f} bytes ({m['cel_lines_per_call']:g} events) "
        "per call\n"
    )


# ---- the run ------------------------------------------------------------------------------


@dataclass
class CelBench:
    asterisk: AsteriskInstance
    ari: AriRest
    plan: Plan
    plain: bool = False  # callers straight to Queue(), no menu, no recording
    placed: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def cel_file(self) -> Path:
        return self.asterisk.outside(self.asterisk.layout.cel_file)

    def cel_size(self) -> int:
        try:
            return self.cel_file.stat().st_size
        except FileNotFoundError:
            return 0

    def cel_lines(self, start: int, end: int) -> int:
        """Records (lines) written between two sizes of cel.jsonl."""
        if end <= start:
            return 0
        with self.cel_file.open("rb") as records:
            records.seek(start)
            return records.read(end - start).count(b"\n")

    def set_cel(self, enabled: bool) -> None:
        """Rewrite cel.conf and reload CEL; stop if Asterisk does not say it took."""
        conf = self.asterisk.outside(self.asterisk.layout.etc_dir) / "cel.conf"
        conf.write_text(cel_conf(conf.read_text(encoding="utf-8"), enabled), encoding="utf-8")
        self.asterisk.cli("module reload cel")
        status = self.asterisk.cli("cel show status")
        if cel_logging(status) != enabled:
            raise BenchError(f"CEL should be {'on' if enabled else 'off'}: {status.strip()!r}")

    def completed(self) -> int:
        return completed_calls(self.asterisk.cli("queue show"))

    async def place(self, call_id: str) -> None:
        """One caller into the equal-work path (or straight to Queue())."""
        if self.plain:
            context, digit = QUEUE_CONTEXT, ""
        else:
            context, digit = ENTRY_CONTEXT, FIRST_CHANCE.digit
        try:
            await self.ari.originate_to_dialplan(
                CALLER_ENDPOINT,
                channel_id=call_id,
                context=context,
                extension=queue_name(self.plan.operators),
                caller_id=f'"Bench" <08{call_id[-6:]:0>10}>',
                variables={
                    "SIAGA_DTMF": digit,
                    "SIAGA_DELAY": f"{FIRST_CHANCE.delay:.3f}",
                    "SIAGA_HOLD": str(PATIENCE),
                },
                formats=CALLER_FORMATS,
            )
        except AriError as exc:
            self.failed.append(str(exc)[:200])

    async def arrivals(self, stop: asyncio.Event) -> None:
        """Calls at the plan's rate, evenly spaced, until `stop`; waits for their requests."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        tasks: list[asyncio.Task[None]] = []
        while not stop.is_set():
            delay = began + self.placed / self.plan.rate - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            self.placed += 1
            tasks.append(loop.create_task(self.place(f"cel-{self.placed:06d}")))
        await asyncio.gather(*tasks)

    async def window(self, cel: bool) -> Window:
        await asyncio.to_thread(self.set_cel, cel)
        await asyncio.sleep(SETTLE_SECONDS)
        pid = self.asterisk.running_pid()
        if pid is None:
            raise BenchError("Asterisk is not running")
        size, placed, machine = self.cel_size(), self.placed, machine_cpu_seconds()
        cpu, began = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(self.plan.window_seconds)
        cpu, seconds = cpu_seconds(pid) - cpu, time.monotonic() - began
        calls, end = self.placed - placed, self.cel_size()
        window = Window(
            cel=cel,
            seconds=round(seconds, 3),
            calls=calls,
            asterisk_cpu_s=round(cpu, 3),
            cel_bytes=end - size,
            cel_lines=self.cel_lines(size, end),
            machine_busy_percent=busy_percent(machine, machine_cpu_seconds()),
        )
        check_window(window)
        log.info("cel.window", **window.to_json())
        return window

    async def drain(self) -> None:
        """Until every channel is gone; then every call placed must have reached an operator."""
        await asyncio.sleep(CALL_SECONDS)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while await self.ari.list_channels():
            if time.monotonic() > deadline:
                raise BenchError(f"channels still up {DRAIN_TIMEOUT} s after the last call")
            await asyncio.sleep(0.5)
        if self.failed:
            raise BenchError(f"{len(self.failed)} calls not placed: {self.failed[0]}")
        connected = await asyncio.to_thread(self.completed)
        if connected != self.placed:
            raise BenchError(f"{connected} of {self.placed} calls reached an operator")


async def run(plan: Plan, plain: bool) -> tuple[list[Window], int]:
    """The windows, and the calls placed in all."""
    config = base_config()
    stack = BenchStack(config, (plan.operators,), postgres=False)
    try:
        await stack.start()
        asterisk = stack.asterisk
        assert asterisk is not None
        await asyncio.to_thread(stack.set_operator_times, RING, TALK)
        ast = config.asterisk
        ari_config = AriConfig(
            username=ast.ari_user, password=ast.ari_password, app=ast.app, url=ast.ari_url
        )
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20)) as session:
            bench = CelBench(asterisk, AriRest.from_session(session, ari_config), plan, plain)
            stop = asyncio.Event()
            calls = asyncio.get_running_loop().create_task(bench.arrivals(stop))
            try:
                await asyncio.sleep(plan.warm_up_seconds)
                windows = [await bench.window(cel) for cel in modes(plan.pairs)]
            finally:
                stop.set()
                await calls
            await bench.drain()
            return windows, bench.placed
    finally:
        await asyncio.to_thread(stack.close)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="scaled down, about 40 s")
    parser.add_argument("--pairs", type=int, help="windows with CEL on (and as many off)")
    parser.add_argument("--window-seconds", type=float, help="length of each window")
    parser.add_argument("--rate", type=float, help="calls per second")
    parser.add_argument(
        "--path",
        choices=("equal", "plain"),
        default="equal",
        help="the callers' path: app_queue's equal-work path (default) or straight to Queue()",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cel.json")
    args = parser.parse_args(argv)
    configure_logging("console", logging.INFO)
    signal.signal(signal.SIGTERM, _interrupted)  # stop Asterisk in order, as on Ctrl-C
    plan = QUICK if args.quick else FULL
    changes = {"pairs": args.pairs, "window_seconds": args.window_seconds, "rate": args.rate}
    plan = dataclasses.replace(plan, **{k: v for k, v in changes.items() if v})
    began = time.monotonic()
    windows, placed = asyncio.run(run(plan, args.path == "plain"))
    report = {
        "benchmark": "cel",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.bench_cel" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "plan": dataclasses.asdict(plan) | {"operators": plan.operators, "path": args.path},
        "seconds": round(time.monotonic() - began, 1),
        "calls_placed": placed,
        "windows": [w.to_json() for w in windows],
        "median": summarise(windows),
    }
    text = json.dumps(report, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(markdown(report), file=sys.stderr)
    return 0


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
