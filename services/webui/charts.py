"""Inline SVG line charts for resource usage: no JavaScript, no image files, escaped labels.

A chart is a string of SVG markup that a template inserts with `|safe`; every piece of text in it
goes through `html.escape`, and every number is formatted by this module, so nothing a user wrote
(a job's name, a step's name) can inject markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 560, 160
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 12, 22, 26


def line_chart(title: str, times_ms: Sequence[int], values: Sequence[float],
               format_value: Callable[[float], str], colour: str = "#2b6cb0") -> str:
    """One series against time since its first sample; an empty series renders a "no samples" box."""
    if len(times_ms) != len(values):
        raise ValueError("a chart needs one value per time")
    header = (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
              f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">'
              f'<text x="{PAD_LEFT}" y="14" class="chart-title">{escape(title)}</text>')
    if not values:
        return (header + f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" '
                         f'class="chart-empty">no samples</text></svg>')

    t0 = times_ms[0]
    span_ms = max(times_ms[-1] - t0, 1)
    top = max(max(values), 1e-9)  # a flat zero series still gets a scale
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(t: int) -> float:
        return PAD_LEFT + plot_w * (t - t0) / span_ms

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - v / top)

    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times_ms, values, strict=True))
    bottom = PAD_TOP + plot_h
    axes = (f'<line x1="{PAD_LEFT}" y1="{bottom}" x2="{WIDTH - PAD_RIGHT}" y2="{bottom}" class="axis"/>'
            f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{bottom}" class="axis"/>'
            f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 4}" text-anchor="end">{escape(format_value(top))}</text>'
            f'<text x="{PAD_LEFT - 4}" y="{bottom}" text-anchor="end">{escape(format_value(0))}</text>'
            f'<text x="{PAD_LEFT}" y="{HEIGHT - 6}">0s</text>'
            f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 6}" text-anchor="end">{span_ms / 1000:g}s</text>')
    line = f'<polyline fill="none" stroke="{escape(colour)}" stroke-width="1.5" points="{points}"/>'
    return header + axes + line + "</svg>"
