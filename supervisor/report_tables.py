"""The report as tables of plain values: one model that the reports page, the shift summary
and the CSV / XLSX exports all show, so that the page and the files never disagree.

Service level: each category against its own answer target (siaga.toml
`target_answer_seconds`), and every row at NENA's 15 s and 20 s. The ratio is the one of
db/reports.py: answered within the time / (answered + abandoned), where abandons within
`short_abandon_seconds` are counted apart and left out, and a prank or silent call counts like
any other (the disposition comes after the answer). In a row that mixes categories (the total, an
hour, a route) each call is held to its own category's target; a call never classified is held
to the centre's goal (15 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from db.reports import (
    NENA_THRESHOLDS,
    SERVICE_GOAL_SECONDS,
    Bucket,
    CallStats,
    OperatorStats,
    Report,
)
from siaga.config import Config
from supervisor.i18n import label, translate
from supervisor.words import Words


class Kind(StrEnum):
    """How a cell's value is shown: the exports keep the value, the page formats it."""

    TEXT = "text"
    COUNT = "count"
    RATIO = "ratio"  # 0..1; a percentage on the page and in the files
    SECONDS = "seconds"
    MINUTES = "minutes"  # the value is in seconds, shown in minutes


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class Table:
    key: str  # the page's table id is report-<key>; the export's file or sheet name
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[object, ...], ...]


TABLE_KEYS = ("categories", "buckets", "routes", "human", "operators")


def category_targets(config: Config) -> dict[str, float]:
    """Every category's answer target, for build_report(targets=...)."""
    return {c.code: c.target_answer_seconds for c in config.categories}


def category_target(config: Config, category: str | None) -> float:
    """A category's answer target; a call never classified is held to the centre's goal."""
    return category_targets(config).get(category or "", SERVICE_GOAL_SECONDS)


def _within(stats: CallStats, seconds: float) -> int:
    for level in stats.service_levels:
        if level.threshold_seconds == seconds:
            return level.answered_within
    raise ValueError(f"the report was not counted within {seconds:g} s")


def level_at(stats: CallStats, seconds: float) -> float | None:
    """Answered within `seconds` / (answered + abandoned); None when both are 0."""
    decided = stats.answered + stats.abandoned
    return _within(stats, seconds) / decided if decided else None


def level_at_target(stats: CallStats) -> float | None:
    """Answered within each call's own category's target / (answered + abandoned)."""
    decided = stats.answered + stats.abandoned
    if stats.answered_within_target is None:
        raise ValueError("the report was built without the categories' targets")
    return stats.answered_within_target / decided if decided else None


def bucket_label(bucket: datetime | None, by: Bucket) -> str:
    if bucket is None:
        return "-"
    if by is Bucket.HOUR:
        return bucket.strftime("%m-%d %H:00")
    if by is Bucket.DAY:
        return bucket.strftime("%Y-%m-%d")
    return bucket.strftime("%Y-%m")


class ReportTables:
    """The tables of one report in one language."""

    def __init__(self, report: Report, config: Config, lang: str) -> None:
        self.report = report
        self.config = config
        self.lang = lang
        self.words = Words(config, lang)

    def t(self, key: str) -> str:
        return translate(key, self.lang)

    def _sl(self, seconds: float) -> str:
        return f"{self.t('reports.sl')} {seconds:g} s"

    def _stats_columns(self, first: str, with_target: bool) -> tuple[Column, ...]:
        """`with_target`: a column with the row's target (a category's own)."""
        t = self.t
        target = (Column(t("reports.target"), Kind.SECONDS),) if with_target else ()
        return (
            Column(first, Kind.TEXT),
            Column(t("board.received"), Kind.COUNT),
            Column(t("board.answered"), Kind.COUNT),
            Column(t("board.abandoned"), Kind.COUNT),
            Column(t("reports.short"), Kind.COUNT),
            *target,
            Column(t("reports.sl_target"), Kind.RATIO),
            *(Column(self._sl(s), Kind.RATIO) for s in NENA_THRESHOLDS),
            Column(t("reports.asa"), Kind.SECONDS),
            Column(t("reports.longest"), Kind.SECONDS),
            Column(t("board.prank"), Kind.COUNT),
            Column(t("board.silent"), Kind.COUNT),
        )

    def _stats_row(
        self, name: str, s: CallStats, target: tuple[float | None, ...] = ()
    ) -> tuple[object, ...]:
        return (
            name,
            s.received,
            s.answered,
            s.abandoned,
            s.abandoned_short,
            *target,
            level_at_target(s),
            *(level_at(s, seconds) for seconds in NENA_THRESHOLDS),
            s.asa_seconds,
            s.longest_wait_seconds,
            s.prank,
            s.silent,
        )

    def categories(self) -> Table:
        """The total first (against every category's own target), then each category."""
        report = self.report
        rows = [self._stats_row(self.t("reports.total"), report.total, (None,))]
        for s in report.by_category:
            target = category_target(self.config, s.category)
            rows.append(self._stats_row(self.words.category(s.category), s, (target,)))
        return Table(
            "categories",
            self.t("reports.by_category"),
            self._stats_columns(self.t("board.category"), with_target=True),
            tuple(rows),
        )

    def buckets(self) -> Table:
        by = self.report.bucket
        return Table(
            "buckets",
            f"{self.t('reports.bucket')} ({self.t('reports.' + by.value)})",
            self._stats_columns(self.t("reports.bucket"), with_target=False),
            tuple(self._stats_row(bucket_label(s.bucket, by), s) for s in self.report.by_bucket),
        )

    def routes(self) -> Table:
        return Table(
            "routes",
            self.t("reports.by_route"),
            self._stats_columns(self.t("reports.route"), with_target=False),
            tuple(
                self._stats_row(label("route.", s.route or "", self.lang), s)
                for s in self.report.by_route
            ),
        )

    def outcomes(self) -> Table:
        """Calls by category and how they ended: the shift summary's first table."""
        t = self.t
        columns = (
            Column(t("board.category"), Kind.TEXT),
            Column(t("board.received"), Kind.COUNT),
            Column(t("outcome.answered"), Kind.COUNT),
            Column(t("board.abandoned"), Kind.COUNT),
            Column(t("reports.short"), Kind.COUNT),
            Column(t("outcome.unanswered"), Kind.COUNT),
            Column(t("outcome.fallback"), Kind.COUNT),
            Column(t("outcome.ongoing"), Kind.COUNT),
        )
        named = [(t("reports.total"), self.report.total)] + [
            (self.words.category(s.category), s) for s in self.report.by_category
        ]
        rows = tuple(
            (
                name,
                s.received,
                s.answered,
                s.abandoned,
                s.abandoned_short,
                s.unanswered,
                s.fallback,
                s.ongoing,
            )
            for name, s in named
        )
        return Table("outcomes", t("shift.outcomes"), columns, rows)

    def human(self) -> Table:
        t = self.t
        percentiles = ("p50", "p90", "p99")
        columns = (
            Column(t("board.category"), Kind.TEXT),
            Column(t("reports.offered"), Kind.COUNT),
            *(Column(f"{t('reports.to_ring')} {p}", Kind.SECONDS) for p in percentiles),
            Column(t("board.answered"), Kind.COUNT),
            *(Column(f"{t('reports.to_answer')} {p}", Kind.SECONDS) for p in percentiles),
        )
        named = [(t("reports.total"), self.report.total)] + [
            (self.words.category(s.category), s) for s in self.report.by_category
        ]
        rows = tuple(
            (
                name,
                s.to_ring.calls,
                s.to_ring.p50,
                s.to_ring.p90,
                s.to_ring.p99,
                s.to_answer.calls,
                s.to_answer.p50,
                s.to_answer.p90,
                s.to_answer.p99,
            )
            for name, s in named
        )
        return Table("human", t("reports.human"), columns, rows)

    def operators(self, operator_name: Callable[[str], str]) -> Table:
        t = self.t
        reasons = sorted({r for op in self.report.operators for r in op.pause_by_reason})
        columns = (
            Column(t("board.operator"), Kind.TEXT),
            Column(t("reports.logged_in"), Kind.MINUTES),
            Column(t("reports.available"), Kind.MINUTES),
            Column(t("reports.ringing"), Kind.MINUTES),
            Column(t("reports.talk"), Kind.MINUTES),
            Column(t("reports.wrap_up"), Kind.MINUTES),
            Column(t("reports.paused"), Kind.MINUTES),
            *(Column(label("pause.", r, self.lang), Kind.MINUTES) for r in reasons),
            Column(t("reports.calls"), Kind.COUNT),
            Column(t("reports.offers"), Kind.COUNT),
            Column(t("reports.offers_failed"), Kind.COUNT),
        )

        def row(op: OperatorStats) -> tuple[object, ...]:
            return (
                operator_name(op.operator_id),
                op.logged_in_seconds,
                op.available_seconds,
                op.ringing_seconds,
                op.talk_seconds,
                op.wrap_up_seconds,
                op.paused_seconds,
                *(op.pause_by_reason.get(r, 0.0) for r in reasons),
                op.calls_connected,
                op.offers,
                op.offers_failed,
            )

        return Table(
            "operators",
            t("reports.operators"),
            columns,
            tuple(row(op) for op in self.report.operators),
        )

    def all(self, operator_name: Callable[[str], str]) -> list[Table]:
        """Every table, in TABLE_KEYS order."""
        return [
            self.categories(),
            self.buckets(),
            self.routes(),
            self.human(),
            self.operators(operator_name),
        ]


def _number(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


def shown(value: object, kind: Kind) -> str:
    """A cell as the page shows it."""
    if value is None:
        return "-"
    if kind is Kind.RATIO:
        return f"{100 * _number(value):.0f}%"
    if kind is Kind.SECONDS:
        return f"{_number(value):.1f}"
    if kind is Kind.MINUTES:
        return f"{_number(value) / 60:.0f}"
    return str(value)


def exported(value: object, kind: Kind) -> object:
    """A cell as the files have it: numbers stay numbers; a ratio is a percentage with one
    decimal, minutes have one decimal; an empty cell is None."""
    if value is None:
        return None
    if kind is Kind.RATIO:
        return round(100 * _number(value), 1)
    if kind is Kind.SECONDS:
        return round(_number(value), 3)
    if kind is Kind.MINUTES:
        return round(_number(value) / 60, 1)
    return value
