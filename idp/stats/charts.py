"""Bar charts as inline SVG, drawn on the server: no script, no external resource.

Each chart names the table that holds its figures (`aria-describedby`); the table is the text
alternative. A suppressed value has no bar.
"""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 640, 200, 28


def bar_chart(title: str, labels: list[str], values: list[int | None], table_id: str) -> Markup:
    shown = [v for v in values if v is not None]
    top = max(shown, default=0) or 1
    count = max(len(values), 1)
    slot = (WIDTH - 2 * PAD) / count
    bars = []
    for index, value in enumerate(values):
        if value is None:
            continue
        height = (HEIGHT - 2 * PAD) * value / top
        x = PAD + index * slot + slot * 0.1
        y = HEIGHT - PAD - height
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{height:.1f}">'
            f"<title>{escape(labels[index])}: {value}</title></rect>"
        )
    first = escape(labels[0]) if labels else ""
    last = escape(labels[-1]) if labels else ""
    svg = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" aria-describedby="{escape(table_id)}" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        f'stroke="currentColor"/>'
        f'<text x="{PAD}" y="{PAD - 10}" font-size="12">{top}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="12">{first}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="12" text-anchor="end">{last}</text>'
        f'<g fill="currentColor" opacity="0.75">{"".join(bars)}</g></svg>'
    )
    return Markup(svg)  # noqa: S704 - every interpolated text is escaped above
