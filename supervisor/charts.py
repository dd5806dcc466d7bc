"""Small server-side SVG charts for the reports page: no script, every text escaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 220
_PAD_LEFT = 44
_PAD_BOTTOM = 40
_PAD_TOP = 24


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css_class: str  # the bar colour comes from console.css
    values: Sequence[float]


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    scale: float | None = None,
) -> Markup:
    """One bar per label, the series stacked in order; a legend underneath. `scale` fixes
    the top of the axis (default: the highest bar)."""
    count = len(labels)
    totals = [sum(s.values[i] for s in series) for i in range(count)]
    top = scale if scale else max([*totals, 1.0])
    plot_w = WIDTH - _PAD_LEFT - 8
    plot_h = HEIGHT - _PAD_BOTTOM - _PAD_TOP
    slot = plot_w / max(count, 1)
    bar_w = max(2.0, slot * 0.7)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT + 20}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<text class="axis" x="{_PAD_LEFT - 6}" y="{_PAD_TOP + 4}" '
        f'text-anchor="end">{escape(_fmt(top))}{escape(unit)}</text>',
        f'<text class="axis" x="{_PAD_LEFT - 6}" y="{_PAD_TOP + plot_h}" '
        f'text-anchor="end">0</text>',
        f'<line class="axis" x1="{_PAD_LEFT}" y1="{_PAD_TOP + plot_h}" '
        f'x2="{WIDTH - 8}" y2="{_PAD_TOP + plot_h}"/>',
    ]
    label_every = max(1, count // 24)
    for i, label in enumerate(labels):
        x = _PAD_LEFT + i * slot + (slot - bar_w) / 2
        base: float = _PAD_TOP + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            parts.append(
                f'<rect class="{escape(s.css_class)}" x="{x:.1f}" y="{base:.1f}" '
                f'width="{bar_w:.1f}" height="{h:.1f}"><title>{escape(label)}: '
                f"{escape(s.name)} {escape(_fmt(value))}{escape(unit)}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text class="label" x="{x + bar_w / 2:.1f}" y="{HEIGHT - _PAD_BOTTOM + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    legend_x = _PAD_LEFT
    for s in series:
        parts.append(
            f'<rect class="{escape(s.css_class)}" x="{legend_x}" y="{HEIGHT + 2}" '
            f'width="12" height="12"/><text class="label" x="{legend_x + 16}" '
            f'y="{HEIGHT + 12}">{escape(s.name)}</text>'
        )
        legend_x += 24 + 8 * len(s.name)
    parts.append("</svg>")
    return Markup("".join(parts))


def percent_bars(title: str, labels: Sequence[str], values: Sequence[float | None]) -> Markup:
    """Ratios 0..1 as bars on a 0-100 % scale; None (no calls) leaves a gap."""
    series = Series(title, "bar-sl", [100 * v if v is not None else 0.0 for v in values])
    # A fixed 100 % scale: a day at 60 % must not look like a day at 100 %.
    return stacked_bars(title, labels, [series], unit="%", scale=100.0)
