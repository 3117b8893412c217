"""Small inline SVG charts for the static report (report.py): no script, no network, no dependency.

Every mark carries its figures in ``data-*`` attributes and a ``<title>`` (the browser's tooltip), so a
reader can hover for the exact value and a test can read what was drawn.
"""

from __future__ import annotations

import math
from html import escape
from typing import Callable, Sequence

# Colour-blind-safe qualitative palette (Okabe & Ito 2008).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

Fmt = Callable[[float], str]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


def _attrs(**kv: object) -> str:
    return " ".join(f'{k.replace("_", "-")}="{escape(str(v))}"' for k, v in kv.items() if v is not None)


class _Frame:
    """A plot area with linear x and y scales and its axes."""

    def __init__(self, width: int, height: int, left: int = 64, right: int = 16, top: int = 16, bottom: int = 44):
        self.w, self.h, self.l, self.r, self.t, self.b = width, height, left, right, top, bottom

    def scales(self, xlo: float, xhi: float, ylo: float, yhi: float) -> None:
        self.xlo, self.xhi, self.ylo, self.yhi = xlo, xhi, ylo, yhi

    def x(self, v: float) -> float:
        span = (self.xhi - self.xlo) or 1.0
        return self.l + (v - self.xlo) / span * (self.w - self.l - self.r)

    def y(self, v: float) -> float:
        span = (self.yhi - self.ylo) or 1.0
        return self.h - self.b - (v - self.ylo) / span * (self.h - self.t - self.b)

    def y_axis(self, ticks: Sequence[float], fmt: Fmt, title: str) -> list[str]:
        out = [f'<line class="axis" x1="{self.l}" y1="{self.t}" x2="{self.l}" y2="{self.h - self.b}"/>']
        for v in ticks:
            y = self.y(v)
            out.append(f'<line class="grid" x1="{self.l}" y1="{y:.1f}" x2="{self.w - self.r}" y2="{y:.1f}"/>')
            out.append(f'<text class="tick" x="{self.l - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(v))}</text>')
        out.append(f'<text class="axis-title" transform="translate(14,{(self.t + self.h - self.b) / 2:.0f}) rotate(-90)" '
                   f'text-anchor="middle">{escape(title)}</text>')
        return out

    def x_axis(self, ticks: Sequence[float], fmt: Fmt, title: str) -> list[str]:
        base = self.h - self.b
        out = [f'<line class="axis" x1="{self.l}" y1="{base}" x2="{self.w - self.r}" y2="{base}"/>']
        for v in ticks:
            x = self.x(v)
            out.append(f'<text class="tick" x="{x:.1f}" y="{base + 16}" text-anchor="middle">{escape(fmt(v))}</text>')
        out.append(f'<text class="axis-title" x="{(self.l + self.w - self.r) / 2:.0f}" y="{self.h - 6}" '
                   f'text-anchor="middle">{escape(title)}</text>')
        return out

    def svg(self, body: list[str], label: str, klass: str) -> str:
        return (f'<svg class="chart {klass}" role="img" aria-label="{escape(label)}" viewBox="0 0 {self.w} {self.h}" '
                f'width="{self.w}" height="{self.h}" xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>")


def scatter(points: Sequence[dict], *, x_title: str, y_title: str, x_fmt: Fmt, y_fmt: Fmt, label: str,
            width: int = 900, height: int = 400) -> str:
    """Points ``{x, y, name, series}``, one colour per series, each point named beside it."""
    f = _Frame(width, height, left=64, right=210)
    xs = [p["x"] for p in points] or [0.0]
    ys = [p["y"] for p in points] or [0.0]
    xt = nice_ticks(0.0, max(xs) * 1.05 or 1.0)
    ylo = min(ys)
    yt = nice_ticks(max(0.0, ylo - (1 - ylo) * 0.5 - 0.005), 1.0)
    f.scales(xt[0], xt[-1], yt[0], max(yt[-1], 1.0))
    body = f.y_axis(yt, y_fmt, y_title) + f.x_axis(xt, x_fmt, x_title)
    series = list(dict.fromkeys(p["series"] for p in points))
    for i, name in enumerate(series):  # legend
        y = 20 + 18 * i
        body.append(f'<circle cx="{width - 196}" cy="{y}" r="5" fill="{PALETTE[i % len(PALETTE)]}"/>'
                    f'<text class="legend" x="{width - 186}" y="{y + 4}">{escape(name)}</text>')
    # Boxes taken so far (the legend, then each label): no label is drawn over another or the legend.
    placed: list[tuple[float, float, float, float]] = [(width - 202, 8, width, 28 + 18 * len(series))]
    for p in sorted(points, key=lambda p: (-p["y"], p["x"])):
        colour = PALETTE[series.index(p["series"]) % len(PALETTE)]
        cx, cy = f.x(p["x"]), f.y(p["y"])
        w = 6.2 * len(p["name"])
        boxes = [(cx + dx, cy + dy - 10, cx + dx + w, cy + dy + 2)
                 for dy in (-6, 10, -20, 24, -34, 38) for dx in (8, -w - 8)]
        inside = [b for b in boxes if b[0] >= f.l and b[1] >= 0 and b[2] <= width and b[3] <= height] or boxes
        box = next((b for b in inside if not any(b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3]
                                                 for o in placed)), inside[0])
        placed.append(box)
        tip = f"{p['series']}: {p['name']} — {x_fmt(p['x'])}, {y_fmt(p['y'])}"
        body.append(f'<g class="point" {_attrs(data_series=p["series"], data_name=p["name"], data_x=repr(p["x"]), data_y=repr(p["y"]))}>'
                    f'<title>{escape(tip)}</title>'
                    f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5.5" fill="{colour}" fill-opacity="0.85"/>'
                    f'<text class="point-label" x="{box[0]:.1f}" y="{box[3] - 2:.1f}">{escape(p["name"])}</text></g>')
    return f.svg(body, label, "scatter")


def bars(groups: Sequence[str], stacks: Sequence[str], values: Sequence[Sequence[float]], *, y_title: str,
         y_fmt: Fmt, label: str, colours: Sequence[str] | None = None, width: int = 900, height: int = 280,
         group_title: Fmt | None = None) -> str:
    """Stacked bars: ``values[g][s]`` is stack ``s`` of group ``g`` (one bar per group, left to right)."""
    f = _Frame(width, height, left=72, right=150, bottom=56)
    totals = [sum(v or 0 for v in row) for row in values] or [0.0]
    yt = nice_ticks(0.0, max(totals) or 1.0)
    n = max(len(groups), 1)
    f.scales(0, n, 0, yt[-1])
    body = f.y_axis(yt, y_fmt, y_title)
    base = height - f.b
    body.append(f'<line class="axis" x1="{f.l}" y1="{base}" x2="{width - f.r}" y2="{base}"/>')
    colours = list(colours or PALETTE)
    for i, name in enumerate(stacks):
        y = 20 + 18 * i
        body.append(f'<rect x="{width - 145}" y="{y - 6}" width="10" height="10" fill="{colours[i % len(colours)]}"/>'
                    f'<text class="legend" x="{width - 130}" y="{y + 4}">{escape(name)}</text>')
    slot = (width - f.l - f.r) / n
    bar_w = max(2.0, min(48.0, slot * 0.7))
    every = max(1, math.ceil(n / 12))  # at most ~12 group names under the axis
    for g, (name, row) in enumerate(zip(groups, values)):
        x = f.x(g + 0.5) - bar_w / 2
        acc = 0.0
        for s, v in enumerate(row):
            if not v:
                continue
            y0, y1 = f.y(acc), f.y(acc + v)
            acc += v
            body.append(f'<rect class="bar" {_attrs(data_group=name, data_stack=stacks[s], data_value=repr(v))} '
                        f'x="{x:.1f}" y="{y1:.1f}" width="{bar_w:.1f}" height="{max(y0 - y1, 0.5):.1f}" '
                        f'fill="{colours[s % len(colours)]}"><title>{escape(f"{name} · {stacks[s]}: {y_fmt(v)}")}</title></rect>')
        if g % every == 0:
            shown = group_title(g) if group_title else name
            body.append(f'<text class="tick" x="{f.x(g + 0.5):.1f}" y="{base + 16}" text-anchor="middle">{escape(shown)}</text>')
    return f.svg(body, label, "bars")
