"""Charts as SVG drawn on the server: no JavaScript, nothing from the internet, readable when printed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#1f6feb", "#9aa4b2")


def _nice_max(value: float) -> float:
    """A round top for the y axis that splits into four round ticks (230 → 240: 60, 120, 180, 240)."""
    if value <= 0:
        return 4
    mag = 10 ** max(0, len(str(int(value))) - 2)
    return math.ceil(value / (4 * mag)) * 4 * mag


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, width: int = 880,
               height: int = 260, title: str = "") -> Markup:
    """A line chart: one polyline per (name, values); x labels thinned to fit."""
    left, right, top, bottom = 48, 16, 28, 36
    w, h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    peak = _nice_max(max((v for _, vals in series for v in vals), default=0))

    def x(i: int) -> float:
        return left + (w * i / (n - 1) if n > 1 else w / 2)

    def y(v: float) -> float:
        return top + h - h * v / peak

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="100%" aria-label="{escape(title)}">', f'<title>{escape(title)}</title>']
    for k in range(5):
        v = peak * k / 4
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7280">'
                     f'{v:,.0f}</text>')
    step = max(1, n // 10)
    for i, label in enumerate(labels):
        if i % step == 0 or (i == n - 1 and i % step > step // 2):
            parts.append(f'<text x="{x(i):.1f}" y="{height - 12}" text-anchor="middle" font-size="11" '
                         f'fill="#6b7280">{escape(label)}</text>')
    for idx, (name, values) in enumerate(series):
        color = PALETTE[idx % len(PALETTE)]
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        dash = ' stroke-dasharray="5 4"' if idx else ""
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{pts}"/>')
        lx = left + idx * 160
        parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="12" y2="12" stroke="{color}" stroke-width="2"{dash}/>'
                     f'<text x="{lx + 24}" y="16" font-size="12" fill="#374151">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(rows: Sequence[tuple[str, float]], *, width: int = 420, title: str = "",
              value_text: Sequence[str] | None = None) -> Markup:
    """Horizontal bars, largest first as given, label left and value right."""
    bar_h, gap, label_w, value_w = 18, 8, 110, 70
    height = max(1, len(rows)) * (bar_h + gap) + 8
    peak = max((v for _, v in rows), default=0) or 1
    w = width - label_w - value_w
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="100%" aria-label="{escape(title)}">', f'<title>{escape(title)}</title>']
    for i, (label, value) in enumerate(rows):
        top = 4 + i * (bar_h + gap)
        bw = max(1.0, w * max(value, 0) / peak)
        text = value_text[i] if value_text else f"{value:g}"
        parts.append(f'<text x="{label_w - 8}" y="{top + 13}" text-anchor="end" font-size="12" fill="#374151">'
                     f'{escape(label[:10])}</text>'
                     f'<rect x="{label_w}" y="{top}" width="{bw:.1f}" height="{bar_h}" rx="3" fill="{PALETTE[0]}"/>'
                     f'<text x="{label_w + bw + 6:.1f}" y="{top + 13}" font-size="12" fill="#374151">'
                     f'{escape(text)}</text>')
    if not rows:
        parts.append('<text x="8" y="16" font-size="12" fill="#6b7280">—</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
