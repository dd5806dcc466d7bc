"""The whole high-availability topology (docs/ha.md) on one machine, each part on a host of
testbed/hosts.py:

- `edge`: Kamailio (testbed/ha.py) and the pg_auto_failover monitor;
- `node_a`, `node_b`: an Asterisk node, a pg_auto_failover keeper with its PostgreSQL
  (listening on the node's address) and a `siaga run` with `[ha]` (SIAGA_NODE=<node>);
- `callers`: SIPp dialling 112 at the edge; `operators`: one SIPp answering for every operator,
  each registered at the edge with its own credentials.

    async with topology(root, prompts) as bed:
        stream = bed.callers(rate=2, calls=60); await stream.start()
        await bed.kill_node(bed.active())
        ...

Both apps read one `siaga.toml` shape (`[asterisk] embedded = false` with `[[asterisk.nodes]]`,
`[edge]`, `[ha]`, `[database] embedded = false` with both nodes in its url); what differs per
app is what one machine needs: its state folder, its console's address, its node's log folder.
Everything (processes, namespaces, folders) is removed on exit, even after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from agi.fallback import operators_by_interface
from db.cel import OPERATOR_LEG, AsteriskCall, CelEvent, asterisk_calls
from edge.kamailio import is_active
from pbx.asterisk import _die_with_parent
from siaga.config import Config, load_config
from testbed.autofailover import AutoFailoverCluster, AutoFailoverError
from testbed.ha import (
    HOST_NAMES,
    NODE_NAMES,
    PAIR_HOST_NAMES,
    SIP_PORT,
    HaTopology,
    edge_and_nodes,
    shared_address,
)
from testbed.hosts import Host, Network
from testbed.sandbox import SIMULATED_SKILLS
from testbed.sipp import (
    Sipp,
    SippPhoneBank,
    caller_scenario,
    read_call_times,
    ringing_phone_scenario,
)

log = structlog.get_logger(__name__)

# A line of `siaga run`'s console log: `<ISO time>Z [error    ] stack.halted    reason=<why>`.
HALTED = re.compile(r"^(?P<at>\S+Z) \[error\s*\] stack\.halted\s+reason=(?P<reason>.*)$")
REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "siaga.toml"
WEB_PORT = 8112
LEASE_SECONDS = 2.0
HUNG_AFTER_S = 15.0  # an app that runs without answering /healthz this long is killed
OPERATORS = 10  # 2 calls/s of ~5 s each, with 1 s of wrap-up, keep about 10 operators busy
ALL_SKILLS = SIMULATED_SKILLS  # every operator takes every category


class TopologyError(Exception):
    """A part of the topology did not start, or did not reach the state awaited."""


# -- the configuration -----------------------------------------------------------------------


def operators_toml(count: int) -> str:
    """Operators 1003.. (the shipped 1001 and 1002 stay): every skill at level 1."""
    skills = ", ".join(f"{skill} = 1" for skill in ALL_SKILLS)
    return "".join(
        f'\n[[operators]]\nid = "{n}"\nname = "Operator {n}"\nsip_user = "{n}"\n'
        f'sip_password = "siaga-dev-{n}"\nskills = {{ {skills} }}\n'
        for n in range(1003, 1001 + count)
    )


def app_toml(
    shipped: str,
    *,
    node: str,
    addresses: dict[str, str],
    dsn: str,
    log_dir: Path,
    recordings_dir: Path,
    operators: int = OPERATORS,
    lease_seconds: float = LEASE_SECONDS,
    shared: str | None = None,
) -> str:
    """The shipped siaga.toml as the app of `node` runs it in the topology: the HA sections,
    both nodes' PostgreSQL, fast timers for tests, and what is its own on one machine (its
    console on its node's address, its node's log and recordings folders). With `shared`,
    the edge is the pair of hosts "edge" and "edge_b" sharing that address."""
    own = addresses[node]
    swaps = {
        r"(?m)^embedded = true": "embedded = false",
        r'(?m)^ari_url = "[^"]*"': f'ari_url = "http://{own}:8088"',
        r'(?m)^sip_host = "[^"]*"': f'sip_host = "{own}"',
        r'(?m)^log_dir = "[^"]*"': f'log_dir = "{log_dir}"',
        r'(?m)^recordings_dir = "[^"]*"': f'recordings_dir = "{recordings_dir}"',
        r'(?m)^url = "[^"]*"': f'url = "{dsn}"',
        r'(\[web\]\nhost = )"[^"]*"\nport = \d+': rf'\g<1>"{own}"\nport = {WEB_PORT}',
        r"(\[ivr\]\ntimeout_seconds = )\d+": r"\g<1>2",
        r"(?m)^ring_timeout_seconds = \d+": "ring_timeout_seconds = 4",
        r"(?m)^retry_after_busy_seconds = \d+": "retry_after_busy_seconds = 1",
        r"(?m)^wrap_up_seconds = \d+": "wrap_up_seconds = 1",
    }
    text = shipped
    for pattern, replacement in swaps.items():
        text, count = re.subn(pattern, replacement, text)
        if not count:
            raise TopologyError(f"siaga.toml has no {pattern!r}")
    nodes = "".join(
        f'\n[[asterisk.nodes]]\nname = "{name}"\nsip_host = "{addresses[name]}"\n'
        f'sip_port = {SIP_PORT}\nari_url = "http://{addresses[name]}:8088"\n'
        for name in NODE_NAMES
    )
    pair = f'hosts = ["{addresses["edge"]}", "{addresses["edge_b"]}"]\n' if shared else ""
    return (
        text
        + operators_toml(operators)
        + f'\n[edge]\nsip_host = "{shared or addresses["edge"]}"\nsip_port = {SIP_PORT}\n'
        + pair
        + "probe_interval_seconds = 1\ntimeout_ms = 1000\n"
        + nodes
        + f'\n[ha]\nrole = "auto"\nlease_seconds = {lease_seconds}\n'
    )


# -- the apps --------------------------------------------------------------------------------


@dataclass
class NodeApp:
    """`siaga run` of one node, on its node's host (SIAGA_NODE names the node)."""

    node: str
    host: Host
    config_path: Path
    state: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.state.with_name(f"{self.state.name}.log")

    @property
    def health_url(self) -> str:
        return f"http://{self.host.address}:{WEB_PORT}/healthz"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        env = {**os.environ, "SIAGA_STATE_DIR": str(self.state), "SIAGA_NODE": self.node}
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    *self.host.wrapper,
                    sys.executable,
                    "-m",
                    "stack.cli",
                    "--config",
                    str(self.config_path),
                    "run",
                ],
                env=env,
                cwd=REPO,  # this checkout's code, whatever the venv's own
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        log.info("topology.app_started", node=self.node, pid=self.process.pid)

    def health(self) -> dict[str, Any]:
        """What /healthz says ({} while nothing answers)."""
        try:
            with urllib.request.urlopen(self.health_url, timeout=1) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as error:  # a standby answers 503
            with contextlib.suppress(ValueError):
                return dict(json.load(error))
            return {}
        except (OSError, ValueError):
            return {}

    def role(self) -> str:
        """ "active", "standby" or "" (dead, or not answering)."""
        if not self.running:
            return ""
        return str(self.health().get("role") or "")

    def kill(self) -> None:
        """SIGKILL: nothing flushed, nothing hung up."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        log.info("topology.app_killed", node=self.node)

    def halts(self, since: float) -> list[tuple[float, str]]:
        """When the app halted since `since` (epoch), and why: its log's `stack.halted`."""
        if not self.log_path.exists():
            return []
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = HALTED.match(line)
            if match is not None:
                at = datetime.fromisoformat(match["at"].replace("Z", "+00:00")).timestamp()
                if at >= since:
                    found.append((at, match["reason"].strip("'\"")))
        return found

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# -- the callers -----------------------------------------------------------------------------


@dataclass
class CallerStream:
    """A steady stream of SIPp callers from the callers' host to 112 at the edge: each call
    has its own caller number (`number(n)`), presses 1 (medical) and holds `hold_ms` after
    its digit; `times()` is when each sent its INVITE and was answered (SIPp's own log)."""

    sipp: Sipp
    prefix: str
    rate: float
    calls: int

    @property
    def log_path(self) -> Path:
        return self.sipp.workdir / "calls.log"

    def number(self, n: int) -> str:
        return f"{self.prefix}{n}"

    def call_number(self, caller_number: str) -> int | None:
        """The SIPp call number of a caller number of this stream (None: not ours)."""
        rest = caller_number.removeprefix(self.prefix)
        if rest == caller_number or not rest.isdigit():
            return None
        return int(rest)

    def times(self) -> dict[int, dict[str, float]]:
        return read_call_times(self.log_path)

    async def start(self) -> None:
        await self.sipp.start()

    async def wait(self, timeout: float) -> int:
        """Wait for every call to end; SIPp's exit code (not 0 when any call failed)."""
        assert self.sipp.process is not None
        await asyncio.wait_for(self.sipp.process.wait(), timeout)
        return self.sipp.process.returncode or 0

    async def stop(self) -> None:
        await self.sipp.stop()


# -- the whole -------------------------------------------------------------------------------


@dataclass
class Topology:
    bed: Network
    cluster: AutoFailoverCluster
    ha: HaTopology
    apps: dict[str, NodeApp]
    phones: SippPhoneBank
    config: Config
    workdir: Path
    streams: list[CallerStream] = field(default_factory=list)

    def host(self, name: str) -> Host:
        return self.bed[name]

    # -- what is where ---

    def active(self) -> str | None:
        """The node whose app says it is active (None: no app is)."""
        actives = [name for name, app in self.apps.items() if app.role() == "active"]
        if len(actives) > 1:
            raise TopologyError(f"two apps say they are active: {actives}")
        return actives[0] if actives else None

    def other(self, node: str) -> str:
        return next(name for name in NODE_NAMES if name != node)

    def primary(self) -> str | None:
        """The node whose PostgreSQL takes writes."""
        return next((n for n in NODE_NAMES if self.cluster.writable(n)), None)

    def cel(self, node: str) -> list[CelEvent]:
        """Node `node`'s own record of its calls (its Asterisk's CEL file)."""
        return self.ha.cel(node)

    def offers_around(
        self, cut_off: str, cut_at: float, healed_at: float
    ) -> tuple[list[float], list[float]]:
        """When each app offered calls during a partition of `cut_off`'s host, by the nodes'
        record of the operator legs originated: (the old active's offers, on the cut-off node
        between the cut and the heal; the new active's, on the other node since the cut). The
        new active cannot reach the cut-off node, nor the old one the other node."""
        app = self.config.asterisk.app
        other = self.other(cut_off)
        old = [o.at for o in originations(cut_off, self.cel(cut_off), app)]
        new = [o.at for o in originations(other, self.cel(other), app)]
        return [t for t in old if cut_at <= t < healed_at], [t for t in new if t >= cut_at]

    def asterisk_calls(self, node: str) -> list[AsteriskCall]:
        """The calls in node `node`'s own record (db/cel.py), in arrival order."""
        calls = asterisk_calls(
            self.cel(node), self.config.asterisk.app, operators_by_interface(self.config)
        )
        return sorted(calls.values(), key=lambda call: call.arrived_at)

    async def calls(self) -> list[asyncpg.Record]:
        """The `calls` rows, from whichever PostgreSQL is the primary."""
        conn = await asyncpg.connect(self.cluster.dsn, timeout=5)
        try:
            return list(await conn.fetch("SELECT * FROM calls ORDER BY arrived_at"))
        finally:
            await conn.close()

    def dispatcher(self) -> dict[str, bool]:
        """Whether Kamailio sends calls to each node now."""
        nodes = self.ha.routing_edge().nodes()
        return {n: is_active(nodes.get(self.ha.node_uri(n), "")) for n in NODE_NAMES}

    def cpu_seconds(self, host: str) -> dict[str, float]:
        """CPU seconds used so far by the processes living on `host`, by program (asterisk,
        python3 for the app, postgres, pg_autoctl...), with their children that ended (a
        PostgreSQL backend that closed, counted with the server that reaped it)."""
        ticks: dict[str, int] = {}
        for pid in self.host(host).pids():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2 :].split()
                ticks[name] = ticks.get(name, 0) + sum(
                    int(f) for f in fields[11:15]
                )  # u+s, children's
        per_second = os.sysconf("SC_CLK_TCK")
        return {name: n / per_second for name, n in sorted(ticks.items())}

    # -- failures ---

    async def kill_node(self, name: str) -> float:
        """The node's host dies: Asterisk, app, keeper and PostgreSQL SIGKILLed at once.
        Returns the time of the kill (epoch seconds)."""
        at = time.time()
        await asyncio.to_thread(self.ha.kill_node, name)  # every process of the host
        await asyncio.to_thread(self._reap, name)
        return at

    def _reap(self, name: str) -> None:
        app, keeper = self.apps[name], self.cluster.nodes[name]
        if app.process is not None:
            app.process.wait()
        if keeper.process is not None:
            keeper.process.wait()

    async def kill_app(self, name: str) -> float:
        at = time.time()
        await asyncio.to_thread(self.apps[name].kill)
        return at

    async def kill_asterisk(self, name: str) -> float:
        at = time.time()
        instance = self.ha.nodes[name]
        assert instance.process is not None
        instance.process.kill()
        await asyncio.to_thread(instance.process.wait)
        instance.process = None
        return at

    async def kill_primary(self) -> tuple[str, float]:
        """SIGKILL the PostgreSQL primary's keeper and server; (its node, the time)."""
        primary = await asyncio.to_thread(self.primary)
        if primary is None:
            raise TopologyError("no primary to kill")
        at = time.time()
        await asyncio.to_thread(self.cluster.kill, primary)
        return primary, at

    async def partition(self, name: str) -> float:
        """Cut the host's link: its processes run on, alone. Returns the time the link was
        down (a request sent a moment before may have reached the host, its answer not)."""
        await asyncio.to_thread(self.host(name).set_link, False)
        return time.time()

    async def kill_edge(self) -> tuple[str, float]:
        """The machine of the edge holding the shared address is lost (a pair of edges);
        (its host, the time)."""
        holder = await asyncio.to_thread(self.ha.wait_edge_holder)
        at = time.time()
        await asyncio.to_thread(self.ha.kill_edge, holder)
        return holder, at

    async def heal(self, name: str) -> None:
        await asyncio.to_thread(self.host(name).set_link, True)

    async def restart_node(self, name: str) -> None:
        """Start the node's keeper, Asterisk and app again, and nothing else."""
        await asyncio.to_thread(self.cluster.run, self.cluster.nodes[name])
        if not self.ha.nodes[name].running_pid():
            await asyncio.to_thread(self.ha.start_node, name)
        await asyncio.to_thread(self.apps[name].start)

    # -- waiting ---

    async def wait_roles(self, timeout: float = 60.0) -> str:
        """Until one app is active and the other standby; the active node."""
        deadline = time.monotonic() + timeout
        while True:
            roles = {n: await asyncio.to_thread(app.role) for n, app in self.apps.items()}
            if sorted(roles.values()) == ["active", "standby"]:
                return next(n for n, r in roles.items() if r == "active")
            if time.monotonic() > deadline:
                raise TopologyError(f"roles {roles} after {timeout} s:\n{self.app_tails()}")
            await asyncio.sleep(0.2)

    async def wait_active(self, node: str, since: float, timeout: float = 30.0) -> float:
        """Until `node`'s app says it is active; seconds from `since` (epoch)."""
        deadline = time.monotonic() + timeout
        while await asyncio.to_thread(self.apps[node].role) != "active":
            if time.monotonic() > deadline:
                raise TopologyError(f"{node} not active in {timeout} s:\n{self.app_tails()}")
            await asyncio.sleep(0.05)
        return time.time() - since

    async def wait_database(self, timeout: float = 90.0) -> None:
        """Until one node is the primary and the other its streaming standby."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(AutoFailoverError, subprocess.TimeoutExpired):
                states = await asyncio.to_thread(self.cluster.states)
                if sorted(states.values()) == [("primary",) * 2, ("secondary",) * 2]:
                    return
            if time.monotonic() > deadline:
                raise TopologyError(f"the database pair is not whole after {timeout} s")
            await asyncio.sleep(0.3)

    async def wait_dispatcher(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not all((await asyncio.to_thread(self.dispatcher)).values()):
            if time.monotonic() > deadline:
                raise TopologyError(f"Kamailio does not send to both nodes: {self.dispatcher()}")
            await asyncio.sleep(0.1)

    async def ensure_whole(self, timeout: float = 90.0) -> str:
        """Bring back what a test left dead or cut off, and wait until everything is as at the
        start (the active node may have changed); the active node."""
        for name in NODE_NAMES:
            await self.heal(name)
        for name in sorted(self.ha.lost_edges):
            await asyncio.to_thread(self.ha.start_edge, name)
        await self._kill_hung_apps()
        for name in NODE_NAMES:
            await self.restart_node(name)
        await self.wait_database(timeout)
        await self.wait_dispatcher()
        return await self.wait_roles(timeout)

    async def _kill_hung_apps(self, grace: float = HUNG_AFTER_S) -> None:
        """Kill an app that runs but has not answered /healthz for `grace` seconds (one that
        halted and is still stopping), as systemd's watchdog would; restart_node starts it."""
        deadline = time.monotonic() + grace
        for name, app in self.apps.items():
            while app.running and not await asyncio.to_thread(app.role):
                if time.monotonic() > deadline:
                    log.warning("topology.app_hung", node=name)
                    await asyncio.to_thread(app.kill)
                    break
                await asyncio.sleep(0.5)

    def app_tails(self) -> str:
        return "\n".join(f"--- {n}\n{app.tail()}" for n, app in self.apps.items())

    # -- load ---

    def callers(
        self, *, rate: float, calls: int, hold_ms: int = 4000, delay_ms: int = 500
    ) -> CallerStream:
        """A stream of `calls` callers, `rate` a second (start it, then wait or stop it)."""
        host = self.host("callers")
        prefix = f"08{uuid.uuid4().int % 10**4:04d}0"
        workdir = Path(tempfile.mkdtemp(prefix="siaga-callers-", dir=self.workdir))
        sipp = Sipp(
            caller_scenario(
                routed=True,
                caller_id=f"{prefix}[call_number]",
                digits="1",
                delay_ms=delay_ms,
                hold_ms=hold_ms,
                timeline=True,
            ),
            SIP_PORT,
            target_host=self.ha.edge_address,
            local_ip=host.address,
            wrapper=host.wrapper,
            calls=calls,
            rate=rate,
            timeout=calls / rate + hold_ms / 1000 + 90,
            workdir=workdir,
            extra=("-trace_logs", "-log_file", str(workdir / "calls.log")),
        )
        stream = CallerStream(sipp, prefix, rate, calls)
        self.streams.append(stream)
        return stream


@contextlib.asynccontextmanager
async def topology(
    root: Path,
    prompts: Path,
    *,
    operators: int = OPERATORS,
    lease_seconds: float = LEASE_SECONDS,
    edge_pair: bool = False,
) -> AsyncIterator[Topology]:
    """Everything started in order and waited for (node_a's app active, node_b's standby);
    everything stopped and removed on exit. With `edge_pair`, the edge is a pair sharing its
    address (testbed/ha.py), and the monitor has a host of its own."""
    workdir = Path(tempfile.mkdtemp(prefix="siaga-topology-"))
    os.chmod(workdir, 0o755)  # PostgreSQL runs as `postgres` when we are root
    with contextlib.ExitStack() as sync:
        sync.callback(shutil.rmtree, workdir, True)
        names = (*PAIR_HOST_NAMES, "monitor") if edge_pair else HOST_NAMES
        bed = await asyncio.to_thread(sync.enter_context, Network(names))
        addresses = {name: host.address for name, host in bed.hosts.items()}
        shared = shared_address(bed) if edge_pair else None
        monitor = bed["monitor"] if edge_pair else bed["edge"]
        cluster = AutoFailoverCluster(
            workdir / "pg",
            settings={"fsync": "off"},
            hosts={"monitor": monitor, "node_a": bed["node_a"], "node_b": bed["node_b"]},
            trusted=str(bed.plan.subnet) if bed.plan else "",
        )
        sync.callback(cluster.stop)
        await asyncio.to_thread(cluster.start)
        shipped = SHIPPED.read_text(encoding="utf-8")
        paths = {name: workdir / f"siaga-{name}.toml" for name in NODE_NAMES}
        # Asterisk's folders are known once its instance exists: write a first config for
        # rendering the nodes, then each app's own.
        first = app_toml(
            shipped,
            node="node_a",
            addresses=addresses,
            dsn=cluster.dsn,
            log_dir=workdir,
            recordings_dir=workdir,
            operators=operators,
            lease_seconds=lease_seconds,
            shared=shared,
        )
        paths["node_a"].write_text(first, encoding="utf-8")
        base = load_config(paths["node_a"])
        ha = await asyncio.to_thread(
            sync.enter_context, edge_and_nodes(bed, root, prompts, base, edge_pair=edge_pair)
        )
        apps: dict[str, NodeApp] = {}
        for name in NODE_NAMES:
            instance = ha.nodes[name]
            text = app_toml(
                shipped,
                node=name,
                addresses=addresses,
                dsn=cluster.dsn,
                log_dir=instance.outside(instance.layout.log_dir),
                recordings_dir=instance.recordings_dir,
                operators=operators,
                lease_seconds=lease_seconds,
                shared=shared,
            )
            paths[name].write_text(text, encoding="utf-8")
            apps[name] = NodeApp(name, bed[name], paths[name], workdir / f"state-{name}")
            sync.callback(apps[name].kill)
        phones = SippPhoneBank(
            [(op.sip_user, op.sip_password) for op in base.operators],
            SIP_PORT,
            answer=ringing_phone_scenario(ring_ms=300),
            registrar_host=ha.edge_address,
            local_ip=bed["operators"].address,
            wrapper=bed["operators"].wrapper,
        )
        bed_ = Topology(bed, cluster, ha, apps, phones, base, workdir)
        try:
            await phones.start()
            apps["node_a"].start()
            await bed_.wait_active("node_a", time.time(), timeout=60)
            apps["node_b"].start()
            await bed_.wait_roles()
            await bed_.wait_dispatcher()
            yield bed_
        finally:
            for stream in bed_.streams:
                await stream.stop()
            await phones.stop()


# -- what happened, from SIPp's and Asterisk's own records ------------------------------------

NORMAL_ANSWER_S = 1.0  # Asterisk answers a 112 call within this, unless something failed


@dataclass(frozen=True, slots=True)
class CallFate:
    """One call of a stream: when the caller sent its INVITE and was answered (SIPp), and what
    the node that took it recorded (CEL). Times are epoch seconds."""

    number: int
    invite: float
    answered: float | None  # SIPp saw the 200 OK
    node: str | None  # the node whose CEL has it (None: no node ever saw it)
    call: AsteriskCall | None

    @property
    def human(self) -> float | None:
        """When an operator was connected (the app's or the fallback's), by the node's CEL."""
        if self.call is None or self.call.connected_at is None:
            return None
        return self.call.connected_at.timestamp()


def fates(stream: CallerStream, by_node: dict[str, list[AsteriskCall]]) -> list[CallFate]:
    """Every call the stream placed, joined by caller number with the node that took it."""
    seen: dict[int, tuple[str, AsteriskCall]] = {}
    for name, calls in by_node.items():
        for one in calls:
            n = stream.call_number(one.caller_number)
            if n is not None:
                seen[n] = (name, one)
    result = []
    for n, times in sorted(stream.times().items()):
        if "invite" not in times:
            continue
        node: str | None = None
        call: AsteriskCall | None = None
        if n in seen:
            node, call = seen[n]
        result.append(CallFate(n, times["invite"], times.get("answered"), node, call))
    return result


def disturbed_until(calls: Sequence[CallFate], since: float) -> float:
    """Seconds from `since` until new calls were answered normally again: over the calls sent
    from `since` on that were lost or answered later than NORMAL_ANSWER_S, the latest moment
    each was answered (or sent, when lost); 0 when none was."""
    worst = since
    for fate in calls:
        if fate.invite < since:
            continue
        if fate.answered is None:
            worst = max(worst, fate.invite)
        elif fate.answered - fate.invite > NORMAL_ANSWER_S:
            worst = max(worst, fate.answered)
    return worst - since


@dataclass(frozen=True, slots=True)
class Origination:
    """An operator leg an app originated, by the node's own record: the Stasis arguments
    `operator,<call>,<operator>` of its APP_START."""

    at: float
    node: str
    call_id: str
    operator_id: str


def originations(node: str, events: Sequence[CelEvent], app: str) -> list[Origination]:
    result = []
    for event in events:
        if event.kind != "APP_START" or event.app != "Stasis":
            continue
        args = event.app_data.split(",")
        if len(args) >= 4 and args[0] == app and args[1] == OPERATOR_LEG:
            result.append(Origination(event.at.timestamp(), node, args[2], args[3]))
    return result
