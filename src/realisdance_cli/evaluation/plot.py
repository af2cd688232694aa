"""The plot beside `rdance eval`'s table: pose error and flicker over time, a line per method.

Written as SVG by hand (no plotting library is a dependency): two panels sharing the frame axis,
each line the mean over a method's videos at that frame index; the truth's flicker is the grey
dashed line, since real motion flickers too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

WIDTH, PANEL_HEIGHT, MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, GAP = 720, 220, 70, 160, 30, 70
# Matplotlib's default cycle: distinct, readable on white.
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
TRUTH_COLOUR = "#888888"
PANELS = (
    ("pose_error", "pose error (in body sizes; hands in their own)"),
    ("flicker", "flicker (mean |Δ luma| between frames)"),
)
TICKS = 4  # intervals on each axis


def _nice_top(value: float) -> float:
    """The smallest of 1, 2, 4, 8 x 10^k at or above `value` (its quarters are round numbers)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 4, 8, 10) if step * power >= value)


Line = tuple[str, Sequence[float], str, str]  # name, values, colour, extra SVG attributes


def _polyline(values: Sequence[float], box: tuple[float, float, float, float], top: float) -> list[str]:
    """Polyline point lists for `values` (NaN breaks the line) in the box x, y, width, height."""
    x, y, width, height = box
    step = width / max(len(values) - 1, 1)
    runs: list[list[str]] = [[]]
    for index, value in enumerate(values):
        if math.isfinite(value):
            level = y + height - min(value / top, 1.0) * height
            runs[-1].append(f"{x + index * step:.1f},{level:.1f}")
        elif runs[-1]:
            runs.append([])
    return [" ".join(run) for run in runs if len(run) > 1 or (run and len(values) == 1)]


def _panel(title: str, lines: list[Line], y: float) -> list[str]:
    """One panel's frame, grid, scale, legend and lines, its box's top at `y`."""
    inner = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    finite = [v for _, values, _, _ in lines for v in values if math.isfinite(v)]
    top = _nice_top(max(finite, default=0.0))
    frames = max(len(values) for _, values, _, _ in lines)
    legend_x = WIDTH - MARGIN_RIGHT + 12
    parts = [
        f'<text x="{MARGIN_LEFT}" y="{y - 8}" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{MARGIN_LEFT}" y="{y}" width="{inner}" height="{PANEL_HEIGHT}" '
        'fill="none" stroke="#333"/>',
        f'<text x="{MARGIN_LEFT + inner / 2}" y="{y + PANEL_HEIGHT + 32}" text-anchor="middle">frame</text>',
    ]
    for tick in range(TICKS + 1):
        level = y + PANEL_HEIGHT - tick / TICKS * PANEL_HEIGHT
        frame = round(tick / TICKS * max(frames - 1, 0))
        along = MARGIN_LEFT + frame / max(frames - 1, 1) * inner
        parts += [
            f'<line x1="{MARGIN_LEFT - 4}" y1="{level:.1f}" x2="{MARGIN_LEFT + inner}" y2="{level:.1f}" '
            'stroke="#ddd"/>',
            f'<text x="{MARGIN_LEFT - 8}" y="{level + 4:.1f}" text-anchor="end">'
            f"{top * tick / TICKS:.3g}</text>",
            f'<text x="{along:.1f}" y="{y + PANEL_HEIGHT + 16}" text-anchor="middle">{frame}</text>',
        ]
    for index, (name, values, colour, extra) in enumerate(lines):
        for points in _polyline(values, (MARGIN_LEFT, y, inner, PANEL_HEIGHT), top):
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{extra} points="{points}">'
                f"<title>{escape(name)}</title></polyline>"
            )
        legend_y = y + 14 + index * 18
        parts += [
            f'<line x1="{legend_x}" y1="{legend_y - 4}" x2="{legend_x + 24}" y2="{legend_y - 4}" '
            f'stroke="{colour}" stroke-width="2"{extra}/>',
            f'<text x="{legend_x + 30}" y="{legend_y}">{escape(name)}</text>',
        ]
    return parts


def svg(curves: Mapping[str, Mapping[str, Sequence[float]]]) -> str:
    """curves: method -> {"pose_error", "flicker", "truth_flicker"} per-frame lists (any absent)."""
    panels = [(key, title) for key, title in PANELS if any(key in c for c in curves.values())]
    height = MARGIN_TOP + len(panels) * (PANEL_HEIGHT + GAP) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
    ]
    for row, (key, title) in enumerate(panels):
        lines: list[Line] = [
            (method, c[key], COLOURS[index % len(COLOURS)], "")
            for index, (method, c) in enumerate(curves.items())
            if key in c
        ]
        truth = next((c["truth_flicker"] for c in curves.values() if "truth_flicker" in c), None)
        if key == "flicker" and truth is not None:
            lines.append(("truth", truth, TRUTH_COLOUR, ' stroke-dasharray="6 4"'))
        parts += _panel(title, lines, MARGIN_TOP + row * (PANEL_HEIGHT + GAP))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
