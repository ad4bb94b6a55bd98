"""The report's charts as inline SVG, drawn here (no script, no fetch): a pass-rate trend line
and horizontal bars of failures by rule.

Each chart carries its width and height, a role and a label for screen readers, and a
``<title>`` on every point and bar, so hovering shows the exact figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from html import escape

from conformance.report.model import Counts

WIDTH = 760
TREND_HEIGHT = 260
BAR_ROW = 26
LABEL_WIDTH = 280
LINE = "#1565c0"
FAIL = "#c62828"
GRID = "#d0d7de"
INK = "#24292f"
MUTED = "#57606a"
#: period labels drawn under the trend's x axis at most
X_LABELS = 8


def percent(rate: float | None) -> str:
    """A pass rate to one decimal, halves rounded up as an auditor rounds them: formatted as a
    float, 2 of 32 (6.25 %) showed as 6.2 %, binary floats rounding half to even."""
    if rate is None:
        return "–"
    return f"{Decimal(repr(rate * 100)).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


def trend_chart(points: Sequence[tuple[str, Counts]], label: str, empty: str) -> str:
    """Pass rate per period (0–100 %), a point per period with exchanges judged; periods with
    nothing judged leave a gap in the line."""
    left, right, top, bottom = 52, 16, 14, 44
    plot_w, plot_h = WIDTH - left - right, TREND_HEIGHT - top - bottom
    parts = [_open(WIDTH, TREND_HEIGHT, label, "chart-trend")]
    for tick in (0, 25, 50, 75, 100):
        y = top + plot_h * (1 - tick / 100)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="{MUTED}">{tick}%</text>'
        )
    judged = [(index, period, counts) for index, (period, counts) in enumerate(points) if counts.rate is not None]
    if not judged:
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
            f'font-size="14" fill="{MUTED}">{escape(empty)}</text>'
        )
        return "".join(parts) + "</svg>"
    step = plot_w / (len(points) - 1) if len(points) > 1 else 0.0

    def x_of(index: int) -> float:
        return left + (step * index if len(points) > 1 else plot_w / 2)

    def y_of(rate: float) -> float:
        return top + plot_h * (1 - rate)

    path, previous = [], None
    for index, _, counts in judged:
        command = "L" if previous is not None and index == previous + 1 else "M"
        path.append(f"{command}{x_of(index):.1f},{y_of(counts.rate or 0.0):.1f}")
        previous = index
    parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    for index, period, counts in judged:
        tip = f"{period}: {percent(counts.rate)} ({counts.passed}/{counts.judged})"
        parts.append(
            f'<circle cx="{x_of(index):.1f}" cy="{y_of(counts.rate or 0.0):.1f}" r="3.5" fill="{LINE}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    every = max(1, -(-len(points) // X_LABELS))
    last = len(points) - 1
    for index, (period, _) in enumerate(points):
        if index % every == 0 or index == last:
            # the ends are anchored inward so that no label is cut off at the chart's edge
            anchor = "start" if index == 0 and last else "end" if index == last and last else "middle"
            parts.append(
                f'<text x="{x_of(index):.1f}" y="{TREND_HEIGHT - bottom + 18}" text-anchor="{anchor}" '
                f'font-size="11" fill="{MUTED}">{escape(period)}</text>'
            )
    return "".join(parts) + "</svg>"


def bar_chart(bars: Sequence[tuple[str, int]], label: str, empty: str) -> str:
    """One horizontal bar per item, longest = the largest count, the count written after it."""
    height = max(1, len(bars)) * BAR_ROW + 16
    parts = [_open(WIDTH, height, label, "chart-bars")]
    if not bars:
        parts.append(f'<text x="{WIDTH / 2:.0f}" y="24" text-anchor="middle" font-size="14" fill="{MUTED}">')
        parts.append(f"{escape(empty)}</text></svg>")
        return "".join(parts)
    largest = max(count for _, count in bars) or 1
    room = WIDTH - LABEL_WIDTH - 70
    for row, (name, count) in enumerate(bars):
        y = 8 + row * BAR_ROW
        width = max(2.0, room * count / largest)
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end" font-size="12" fill="{INK}">'
            f"{escape(_clipped(name))}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{width:.1f}" height="{BAR_ROW - 8}" fill="{FAIL}" rx="2">'
            f"<title>{escape(name)}: {count}</title></rect>"
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 15}" font-size="12" fill="{INK}">{count}</text>'
        )
    return "".join(parts) + "</svg>"


def rate_bar(rate: float | None) -> str:
    """A small inline bar for a pass rate in a table cell."""
    if rate is None:
        return ""
    filled = round(rate * 80)
    return (
        '<svg class="rate" width="80" height="8" role="presentation">'
        f'<rect width="80" height="8" fill="{FAIL}" opacity="0.25"/>'
        f'<rect width="{filled}" height="8" fill="#2e7d32"/></svg>'
    )


def _open(width: int, height: int, label: str, css: str) -> str:
    return (
        f'<svg class="{css}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
    )


def _clipped(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
