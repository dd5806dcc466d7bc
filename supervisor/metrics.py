"""`/metrics` for Prometheus: the running centre, read when Prometheus scrapes.

One collector reads everything at scrape time (the ACD's snapshot, ARI, the record writer, the
disk guard, the recording check, today's figures), so nothing is kept twice; the app's own
histograms and counters (ari_app/metrics.py) are added as they are. The registry is this
collector's own, never the process-wide one.

No personal data: no caller number, name or call id; counts, ages and states by category.
The alerting rules that read these series: deploy/prometheus/siaga-rules.yml.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ari_app.metrics import Metrics
from db.reports import SERVICE_GOAL_RATIO, SERVICE_GOAL_SECONDS, CallStats
from db.writer import WriterStats
from queues.snapshot import Snapshot
from queues.states import OperatorState
from siaga.config import Config
from supervisor.board import longest_wait, never_seen, service_level_at
from supervisor.disk import DiskGuard

log = structlog.get_logger(__name__)

# A scrape must answer while PostgreSQL is away: today's figures are then left out.
TODAY_TIMEOUT_SECONDS = 2.0


class Centre(Protocol):
    """What the collector reads of the running app (`SiagaApp` is one)."""

    metrics: Metrics

    @property
    def connected(self) -> bool: ...

    def snapshot(self) -> Snapshot: ...


class Writer(Protocol):
    def stats(self) -> WriterStats: ...


class Recordings(Protocol):
    """The recording check (stack/recordings.py `RecordingCheck`)."""

    failures: int  # recordings found missing or cut since start


TodayFigures = Callable[[], Awaitable[Sequence[CallStats]]]


def _flag(value: bool) -> int:
    return 1 if value else 0


def queue_families(config: Config, snapshot: Snapshot) -> Iterator[Metric]:
    """Calls waiting per category, the longest wait against the category's target, and
    operators by state (those of siaga.toml never logged in count as logged out)."""
    waiting = GaugeMetricFamily(
        "siaga_calls_waiting", "Calls waiting in the queue.", labels=["category"]
    )
    oldest = GaugeMetricFamily(
        "siaga_oldest_wait_seconds",
        "Seconds the longest-waiting call of the category has waited (0: none waits).",
        labels=["category"],
    )
    target = GaugeMetricFamily(
        "siaga_answer_target_seconds",
        "The category's answer target (siaga.toml).",
        labels=["category"],
    )
    for view in snapshot.categories:
        waiting.add_metric([view.code], len(view.waiting))
        oldest.add_metric([view.code], longest_wait(view) or 0.0)
        target.add_metric([view.code], view.target_answer_seconds)
    yield from (waiting, oldest, target)

    states = Counter(op.state for op in snapshot.operators)
    states[OperatorState.LOGGED_OUT] += len(never_seen(snapshot, config))
    operators = GaugeMetricFamily("siaga_operators", "Operators by state.", labels=["state"])
    for state in OperatorState:
        operators.add_metric([state.value], states[state])
    yield operators


def service_level_families(snapshot: Snapshot, today: Sequence[CallStats]) -> Iterator[Metric]:
    """Today's service level: the centre's against its goal, and each category's at its own
    target. A ratio is left out while nothing was answered or abandoned."""
    yield GaugeMetricFamily(
        "siaga_service_goal_target_ratio",
        f"The centre's goal: this share of calls answered within {SERVICE_GOAL_SECONDS:g} s.",
        value=SERVICE_GOAL_RATIO,
    )
    goal = GaugeMetricFamily(
        "siaga_service_goal_today_ratio",
        f"Share of today's calls answered within {SERVICE_GOAL_SECONDS:g} s.",
    )
    total = next((s for s in today if s.scope == "total"), None)
    ratio = service_level_at(total, SERVICE_GOAL_SECONDS)
    if ratio is not None:
        goal.add_metric([], ratio)
    yield goal
    by_category = GaugeMetricFamily(
        "siaga_service_level_today_ratio",
        "Share of today's calls of the category answered within its answer target.",
        labels=["category"],
    )
    stats = {s.category: s for s in today if s.scope == "category"}
    for view in snapshot.categories:
        ratio = service_level_at(stats.get(view.code), view.target_answer_seconds)
        if ratio is not None:
            by_category.add_metric([view.code], ratio)
    yield by_category


def writer_families(stats: WriterStats, journal_bytes: int | None) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "siaga_database_reachable",
        "1 while the record writer reaches PostgreSQL.",
        value=_flag(stats.db_reachable),
    )
    yield GaugeMetricFamily(
        "siaga_record_writer_queued_events",
        "Records handed to the writer and not yet in PostgreSQL or the journal.",
        value=stats.in_memory,
    )
    yield GaugeMetricFamily(
        "siaga_journal_ok",
        "1 while the record journal can be written (0: a full or failing disk; records then go"
        " to PostgreSQL alone).",
        value=_flag(stats.journal_ok),
    )
    yield GaugeMetricFamily(
        "siaga_journal_backlog",
        "1 while the journal holds records not yet in PostgreSQL.",
        value=_flag(stats.journal_backlog),
    )
    if journal_bytes is not None:
        yield GaugeMetricFamily(
            "siaga_journal_bytes", "Size of the record journal file.", value=journal_bytes
        )
    for name, text, value in (
        ("siaga_records_written", "Records committed straight to PostgreSQL.", stats.written),
        ("siaga_records_spooled", "Records appended to the journal.", stats.spooled),
        ("siaga_records_replayed", "Records replayed from the journal.", stats.replayed),
        ("siaga_records_rejected", "Records PostgreSQL refused as data.", stats.rejected),
    ):
        yield CounterMetricFamily(name, text, value=value)


def disk_families(disk: DiskGuard) -> Iterator[Metric]:
    low = {found.folder for found in disk.low}
    family = GaugeMetricFamily(
        "siaga_disk_low",
        "1 while the file system of the folder (recordings, journal) runs low.",
        labels=["folder"],
    )
    for folder in sorted(disk.folders):
        family.add_metric([folder], _flag(folder in low))
    yield family


def _file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


class CentreCollector(Collector):
    """The collector of the running centre, in a registry of its own (`registry`). The sources
    other than the app are optional: each one given adds its series."""

    def __init__(
        self,
        config: Config,
        centre: Centre,
        *,
        writer: Writer | None = None,
        journal_path: Path | None = None,
        disk: DiskGuard | None = None,
        recordings: Recordings | None = None,
        today: TodayFigures | None = None,
    ) -> None:
        self.config = config
        self.centre = centre
        self.writer = writer
        self.journal_path = journal_path
        self.disk = disk
        self.recordings = recordings
        self.today = today
        self._today: Sequence[CallStats] = ()  # read by scrape() just before collect()
        self._today_failing = False
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    async def scrape(self) -> bytes:
        """The exposition text of every series, now."""
        # Today's figures come from PostgreSQL (through the console's cache), the only read
        # that awaits: done first, the rest is read in one go while the registry collects.
        self._today = await self._read_today()
        return generate_latest(self.registry)

    async def _read_today(self) -> Sequence[CallStats]:
        if self.today is None:
            return ()
        try:
            today = await asyncio.wait_for(self.today(), TODAY_TIMEOUT_SECONDS)
        except Exception as exc:  # PostgreSQL away or slow: the rest is still worth serving
            if not self._today_failing:  # once per outage, not every scrape
                log.warning("metrics.today_unavailable", error=str(exc) or type(exc).__name__)
            self._today_failing = True
            return ()
        if self._today_failing:
            log.info("metrics.today_available")
        self._today_failing = False
        return today

    def collect(self) -> Iterator[Metric]:
        snapshot = self.centre.snapshot()
        yield from queue_families(self.config, snapshot)
        yield from service_level_families(snapshot, self._today)
        yield GaugeMetricFamily(
            "siaga_ari_connected",
            "1 while the app is connected to Asterisk (ARI).",
            value=_flag(self.centre.connected),
        )
        if self.writer is not None:
            journal_bytes = None if self.journal_path is None else _file_size(self.journal_path)
            yield from writer_families(self.writer.stats(), journal_bytes)
        if self.disk is not None:
            yield from disk_families(self.disk)
        if self.recordings is not None:
            yield CounterMetricFamily(
                "siaga_recording_failures",
                "Calls whose recording was found missing or cut.",
                value=self.recordings.failures,
            )
        yield from self.centre.metrics.collect()
