"""The chart of accesses per purpose over time, as inline SVG (no script, no external file).

A stacked column per time bucket, one colour per purpose (the Okabe-Ito palette, readable
with the common colour-vision deficiencies; purposes past its eight colours share grey), a
legend, and a ``<title>`` on every segment so a browser shows its count on hover. Drawn by
hand: a chart library would bring more code than the chart, and scripts (most of them)
would make the page depend on something other than itself.
"""

from __future__ import annotations

import datetime
from html import escape

from privata_mongo.core.report.data import Timeline

__all__ = ["PALETTE", "svg"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_OTHER = "#999999"
_WIDTH, _HEIGHT = 960, 340
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 16, 64


def _nice(most: int) -> int:
    """The axis maximum: ``most`` rounded up to 1, 2 or 5 times a power of ten."""
    if most <= 1:
        return 1
    power = int(10 ** (len(str(most)) - 1))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= most)


def _label(at: datetime.datetime, unit: str) -> str:
    if unit == "second":
        return at.strftime("%H:%M:%S")
    if unit in ("minute", "hour"):
        return at.strftime("%m-%d %H:%M")
    return at.strftime("%Y-%m-%d")


def colour(index: int) -> str:
    """The colour of the ``index``-th purpose."""
    return PALETTE[index] if index < len(PALETTE) else _OTHER


def svg(line: Timeline) -> str:
    """The chart of ``line`` as an ``<svg>`` element (an empty note when nothing was audited)."""
    buckets = len(line.edges) - 1
    if buckets <= 0 or not line.total:
        return '<p class="empty">No audited operation in the trail.</p>'
    totals = [sum(c[i] for c in line.series.values()) for i in range(buckets)]
    top = _nice(max(totals))
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    slot = plot_w / buckets
    bar = max(slot * 0.8, 1.0)
    out = [
        f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'width="100%" role="img" '
        f'aria-label="Audited operations per purpose, per {escape(line.unit)}">',
        '<g font-family="sans-serif" font-size="11" fill="#333">',
    ]
    for step in range(5):  # the y axis: five gridlines
        value = top * step / 4
        y = _TOP + plot_h - plot_h * step / 4
        out.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd"/><text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{value:g}</text>"
        )
    for i in range(buckets):
        x = _LEFT + slot * i + (slot - bar) / 2
        base = float(_TOP + plot_h)
        when = _label(line.edges[i], line.unit)
        for index, (purpose, counts) in enumerate(line.series.items()):
            if not counts[i]:
                continue
            h = plot_h * counts[i] / top
            base -= h
            out.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour(index)}"><title>{escape(when)} {escape(purpose)}: '
                f"{counts[i]}</title></rect>"
            )
    every = max(1, round(buckets / 8))  # at most about eight labels under the axis
    for i in range(0, buckets, every):
        x = _LEFT + slot * i + slot / 2
        out.append(
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle">'
            f"{escape(_label(line.edges[i], line.unit))}</text>"
        )
    x = _LEFT
    y = _HEIGHT - 18
    for index, purpose in enumerate(line.series):  # the legend, left to right
        out.append(
            f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colour(index)}"/>'
            f'<text x="{x + 16}" y="{y}">{escape(purpose)}</text>'
        )
        x += 28 + 7 * len(purpose)
    out.append("</g></svg>")
    return "\n".join(out)
