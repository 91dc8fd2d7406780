"""Charts as inline SVG, drawn on the server: no script, no external resource, no library.

`chart` draws one or two series over the periods, as columns (one count) or lines (two
series, or a rate), on a value axis with a few round gridlines, each labelled, and a few
period labels under it. `sparkline` draws a small trend line for a tile or a table row.

A chart is an image (`role="img"`) named by its title and described by its data table
(`aria-describedby`), which the page shows in a disclosure: the table is the text alternative.
A sparkline is decoration beside figures written out (`aria-hidden`). A suppressed value
(None) draws nothing: no column, a gap in a line. The second series is dashed, so the two
differ by more than colour. Labels come formatted (the page's language): `label` writes a
value of the axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 30  # room for the value and period labels
GRIDLINES = 4
PERIOD_LABELS = 5  # at most, the first and the last among them
Value = int | float | None


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Value]


def nice_top(top: float, steps: int = GRIDLINES) -> tuple[float, float]:
    """A round top of the value axis at or above `top`, and its gridline step (1, 2, 2.5 or 5
    times a power of ten)."""
    if top <= 0:
        return 1.0, 1.0 / steps
    raw = top / steps
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step * steps >= top:
            return step * steps, step
    return 10 * power * steps, 10 * power  # pragma: no cover - 10 always fits


def _segments(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """The runs of drawn points between the gaps."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    return [run for run in runs if run]


def _path(run: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in run)


def chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    table_id: str,
    *,
    label: Callable[[float], str] = lambda v: f"{v:g}",
    lines: bool = False,
    top: float | None = None,
) -> Markup:
    """`series` over the periods `labels` (columns for one series unless `lines`); `top`: the
    least top of the value axis (1 for a share)."""
    shown = [v for s in series for v in s.values if v is not None]
    axis_top, step = nice_top(max([*shown, top or 0, 0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = max(len(labels), 1)
    slot = plot_w / count

    def y_of(value: float) -> float:
        return TOP + plot_h - plot_h * value / axis_top

    def x_of(index: int) -> float:
        return LEFT + slot * (index + 0.5)

    parts = ['<g class="idp-chart__grid" font-size="13">']
    for n in range(GRIDLINES + 1):
        value = step * n
        y = y_of(value)
        axis = ' class="idp-chart__axis"' if n == 0 else ""
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"{axis}/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label(value))}</text>'
        )
    every = max(1, math.ceil(count / PERIOD_LABELS))
    marked = [i for i in range(0, count, every)]
    if labels and marked[-1] != count - 1:
        if count - 1 - marked[-1] < every / 2 and len(marked) > 1:
            marked.pop()
        marked.append(count - 1)
    for index in marked if labels else []:
        anchor = "middle"
        if count > 1 and index in (0, count - 1):
            anchor = "start" if index == 0 else "end"
        x = {"start": LEFT, "end": WIDTH - RIGHT}.get(anchor, x_of(index))
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
            f"{escape(labels[index])}</text>"
        )
    parts.append("</g>")
    for number, one in enumerate(series):
        kind = f"idp-chart__series idp-chart__series--{number + 1}"
        if not lines and len(series) == 1:
            bars = []
            width = max(slot * 0.7, 1.0)
            for index, amount in enumerate(one.values):
                if amount is None:
                    continue
                y = y_of(amount)
                bars.append(
                    f'<rect x="{x_of(index) - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}" '
                    f'height="{TOP + plot_h - y:.1f}"><title>{escape(labels[index])}: '
                    f"{escape(label(amount))}</title></rect>"
                )
            parts.append(f'<g class="{kind}">{"".join(bars)}</g>')
            continue
        points = [
            None if value is None else (x_of(index), y_of(value))
            for index, value in enumerate(one.values)
        ]
        drawn = [
            f'<polyline points="{_path(run)}" fill="none"/>'
            if len(run) > 1
            else f'<circle cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="2.5"/>'
            for run in _segments(points)
        ]
        parts.append(f'<g class="{kind}">{"".join(drawn)}</g>')
    svg = (
        f'<svg class="idp-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" focusable="false" '
        f'aria-label="{escape(title)}" aria-describedby="{escape(table_id)}" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )
    return Markup(svg)  # noqa: S704 - every interpolated text is escaped above


def sparkline(values: Sequence[Value], width: int = 120, height: int = 32) -> Markup:
    """A small trend line of `values` (gaps for None), its last point marked; empty when
    fewer than two values are shown."""
    if sum(v is not None for v in values) < 2:
        return Markup("")
    shown = [v for v in values if v is not None]
    low, high = min(shown), max(shown)
    spread = (high - low) or 1
    count = max(len(values) - 1, 1)
    pad = 3

    def point(index: int, value: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * index / count
        y = height - pad - (height - 2 * pad) * ((value - low) / spread if high > low else 0.5)
        return x, y

    points = [None if v is None else point(i, v) for i, v in enumerate(values)]
    lines = "".join(
        f'<polyline points="{_path(run)}" fill="none"/>'
        for run in _segments(points)
        if len(run) > 1
    )
    last = next(p for p in reversed(points) if p is not None)
    svg = (
        f'<svg class="idp-sparkline" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-hidden="true" focusable="false" '
        f'xmlns="http://www.w3.org/2000/svg">{lines}'
        f'<circle cx="{last[0]:.1f}" cy="{last[1]:.1f}" r="2.5"/></svg>'
    )
    return Markup(svg)  # noqa: S704 - numbers only
