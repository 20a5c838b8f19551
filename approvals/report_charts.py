"""Server-side SVG charts for the admin Reports page: no script, no external asset.

Two shapes cover every report: vertical grouped bars over time buckets (``columns``) and
horizontal grouped bars over named rows (``rows``: workflows, steps, approvers). Every text is
escaped; the markup is safe to put in a page as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLORS = ("#2f6db5", "#e0802b", "#3f9c5a", "#b5403a")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%"
    return f"{value:g}" if value < 1000 else f"{value:,.0f}"


def _legend(names: Sequence[str], x: int, y: int) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        left = x + i * 150
        parts.append(f'<rect x="{left}" y="{y - 9}" width="10" height="10" fill="{COLORS[i % len(COLORS)]}"/>')
        parts.append(f'<text x="{left + 14}" y="{y}" {FONT}>{escape(name)}</text>')
    return parts


def _empty(title: str, width: int, height: int) -> SafeString:
    return mark_safe(  # noqa: S308 (escaped above)
        f'<svg xmlns="http://www.w3.org/2000/svg" class="report-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
        f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" {FONT} fill="#777">'
        "No data for this period</text>"
        "</svg>"
    )


def columns(
    title: str, labels: Sequence[str], series: dict[str, Sequence[float]], *, width: int = 760, height: int = 260
) -> SafeString:
    """Vertical grouped bars: one group per label (a day or week), one bar per series."""
    if not labels or not any(v for values in series.values() for v in values):
        return _empty(title, width, height)
    left, right, top, bottom = 44, 12, 28, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max(v for values in series.values() for v in values))
    group_w = plot_w / len(labels)
    bar_w = max(1.0, (group_w * 0.8) / len(series))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="report-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
    ]
    for i in range(5):
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{_fmt(value, False)}</text>')
    every = max(1, math.ceil(len(labels) / 12))  # at most ~12 axis labels
    for g, label in enumerate(labels):
        x0 = left + g * group_w + group_w * 0.1
        for s, (name, values) in enumerate(series.items()):
            value = values[g]
            h = plot_h * value / top_value
            parts.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLORS[s % len(COLORS)]}">'
                f"<title>{escape(label)} {escape(name)}: {_fmt(value, False)}</title></rect>"
            )
        if g % every == 0:
            parts.append(
                f'<text x="{left + g * group_w + group_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                f"{FONT}>{escape(label)}</text>"
            )
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#999"/>')
    parts += _legend(list(series), left, height - 8)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every text escaped)


def rows(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    percent: bool = False,
    width: int = 760,
) -> SafeString:
    """Horizontal grouped bars: one group per label (a workflow, step or approver), one bar per series."""
    values = [v for vals in series.values() for v in vals if v is not None]
    bar_h, gap, top = 14, 10, 12
    height = max(80, top + len(labels) * (bar_h * len(series) + gap) + 22)
    if not labels or not any(values):
        return _empty(title, width, 80)
    left, right = 230, 60
    plot_w = width - left - right
    top_value = 1.0 if percent else _nice_max(max(values))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="report-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
    ]
    y = top
    for g, label in enumerate(labels):
        group_h = bar_h * len(series)
        text = label if len(label) <= 36 else label[:35] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + group_h / 2 + 4:.1f}" text-anchor="end" {FONT}>{escape(text)}</text>'
        )
        for s, (name, vals) in enumerate(series.items()):
            value = vals[g]
            w = 0 if value is None else plot_w * value / top_value
            shown = "–" if value is None else _fmt(value, percent)
            parts.append(
                f'<rect x="{left}" y="{y + s * bar_h}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{COLORS[s % len(COLORS)]}"><title>{escape(label)} {escape(name)}: {shown}</title></rect>'
            )
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + s * bar_h + 10}" {FONT}>{shown}</text>')
        y += group_h + gap
    parts += _legend(list(series), left, height - 8)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every text escaped)
