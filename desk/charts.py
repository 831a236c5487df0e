"""Charts drawn on the server as inline SVG: our own few lines, no script, no third-party code.

Each chart is one image with a title and a description (`<svg role="img" aria-labelledby=…>`,
the description listing the figures); the page shows the same figures in a table beside it, for
screen readers and for anyone who wants the numbers. Colours meet 4.5:1 on white, and a value
is always written at the end of its bar: colour is never the only way to read a chart.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Ink colours of the site (static/cxhub/cxhub.css): accent blue, warning brown, green, red.
PALETTE = ("#0b57a4", "#8a3b00", "#1e6b34", "#a4161a")
INK = "#1b1f24"
MUTED = "#4a5360"
GRID = "#c9d0d8"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

WIDTH = 640
LABEL_WIDTH = 176  # the label column of horizontal bars
VALUE_WIDTH = 84  # room after the longest bar for its value
MAX_LABEL = 26  # characters; the table beside the chart has the full label
DESCRIBED_ROWS = 12  # the description lists this many rows, then points to the table


@dataclass(frozen=True)
class Series:
    """One set of bars: a name for the legend and one value per label (None: no figure)."""

    name: str
    values: Sequence[float | None]
    color: str = PALETTE[0]


def number(value: float) -> str:
    """A figure as people write it: no trailing zeros, at most one decimal."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _scale(largest: float, *, whole: bool) -> list[float]:
    """Ticks from 0 to the end of the axis, about four steps of 1, 2 or 5 × 10ⁿ (also 2.5 × 10ⁿ
    unless the figures are whole numbers, whose ticks stay whole)."""
    if largest <= 0:
        return [0.0, 1.0]
    rough = largest / 4
    power = 10 ** math.floor(math.log10(rough))
    steps = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    step = next(size * power for size in steps if size * power >= rough - 1e-9)
    if whole:
        step = max(1.0, step)
    count = max(1, math.ceil(largest / step - 1e-9))
    return [step * index for index in range(count + 1)]


def _whole(values) -> bool:
    return all(value == int(value) for value in values if value is not None)


def _open(chart_id: str, title: str, description: str, width: int, height: int) -> list[str]:
    ids = f"{chart_id}-title {chart_id}-desc"
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{escape(ids)}" '
        f'id="{escape(chart_id)}" class="chart-svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="{escape(FONT)}" font-size="13" '
        f'focusable="false">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
    ]


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = INK, **attrs) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>'
        f"{escape(text)}</text>"
    )


def _empty(chart_id: str, title: str, message: str) -> SafeString:
    parts = _open(chart_id, title, message, WIDTH, 48)
    parts.append(_text(8, 28, message, fill=MUTED))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()


def describe(
    labels: Sequence[str], series: Sequence[Series], value_text: Callable[[float], str]
) -> str:
    """The figures in words, for the chart's <desc>: "North: median 2.5 h, p90 7.9 h; …"."""
    rows = []
    for index, label in enumerate(labels[:DESCRIBED_ROWS]):
        values = []
        for each in series:
            value = each.values[index]
            shown = "no figure" if value is None else value_text(value)
            values.append(shown if len(series) == 1 else f"{each.name} {shown}")
        rows.append(f"{label}: {', '.join(values)}")
    text = "; ".join(rows)
    if len(labels) > DESCRIBED_ROWS:
        text += f"; and {len(labels) - DESCRIBED_ROWS} more (see the table)"
    return text + "."


def bar_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    value_text: Callable[[float], str] = number,
    axis_max: float | None = None,
    description: str = "",
    empty_message: str = "No figures for this period.",
) -> SafeString:
    """Horizontal bars, one group per label, one bar per series (a legend when more than one).
    `axis_max` fixes the end of the axis (1 for shares); otherwise it fits the largest value."""
    if not labels:
        return _empty(chart_id, title, empty_message)
    for each in series:
        if len(each.values) != len(labels):
            raise ValueError(
                f"series {each.name!r} has {len(each.values)} values for {len(labels)} labels"
            )
    figures = [v for each in series for v in each.values if v is not None]
    if axis_max is not None:
        ticks = [axis_max * index / 4 for index in range(5)]
    else:
        ticks = _scale(max(figures, default=0), whole=_whole(figures))
    axis_end = ticks[-1]
    bar, gap, pad = 16, 3, 10
    legend = 26 if len(series) > 1 else 0
    group = len(series) * bar + (len(series) - 1) * gap
    top = 8 + legend
    height = top + len(labels) * (group + pad) + 30
    x0 = LABEL_WIDTH + 8
    plot = WIDTH - x0 - VALUE_WIDTH

    parts = _open(
        chart_id, title, description or describe(labels, series, value_text), WIDTH, height
    )
    if legend:
        x = x0
        for each in series:
            parts.append(f'<rect x="{x}" y="8" width="14" height="14" fill="{each.color}"/>')
            parts.append(_text(x + 20, 20, each.name))
            x += 28 + 8 * len(each.name)
    axis_bottom = height - 24
    for tick in ticks:
        x = x0 + plot * tick / axis_end
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_bottom}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(_text(x, axis_bottom + 16, value_text(tick), anchor="middle", fill=MUTED))
    for row, label in enumerate(labels):
        y = top + row * (group + pad)
        parts.append(_text(x0 - 8, y + group / 2 + 4, _short(label), anchor="end"))
        for index, each in enumerate(series):
            value = each.values[row]
            bar_y = y + index * (bar + gap)
            length = 0.0 if value is None else plot * min(value, axis_end) / axis_end
            if length > 0:
                parts.append(
                    f'<rect x="{x0}" y="{bar_y}" width="{length:.1f}" height="{bar}" '
                    f'fill="{each.color}"/>'
                )
            shown = "—" if value is None else value_text(value)
            parts.append(_text(x0 + length + 4, bar_y + bar - 4, shown))
    parts.append(
        f'<line x1="{x0}" y1="{top - 4}" x2="{x0}" y2="{axis_bottom}" stroke="{INK}" '
        'stroke-width="1"/>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()


def column_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    value_text: Callable[[float], str] = number,
    color: str = PALETTE[0],
    description: str = "",
    empty_message: str = "No figures for this period.",
) -> SafeString:
    """Vertical columns along a time axis (weeks), labelled below; when there are many, every
    n-th label is written so they never overlap, and the table has them all. A value of None
    (no figure) has no column, and "—" where its value would be written."""
    if not labels:
        return _empty(chart_id, title, empty_message)
    height, left, bottom, top = 240, 48, 36, 16
    plot_w, plot_h = WIDTH - left - 8, height - top - bottom
    figures = [value for value in values if value is not None]
    ticks = _scale(max(figures, default=0), whole=_whole(figures))
    axis_end = ticks[-1]
    series = [Series(title, values, color)]
    parts = _open(
        chart_id, title, description or describe(labels, series, value_text), WIDTH, height
    )
    base = top + plot_h
    for tick in ticks:
        y = base - plot_h * tick / axis_end
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" stroke="{GRID}" '
            'stroke-width="1"/>'
        )
        parts.append(_text(left - 6, y + 4, value_text(tick), anchor="end", fill=MUTED))
    slot = plot_w / len(values)
    every = max(1, math.ceil(len(values) / 12))
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + index * slot + slot * 0.15
        width = slot * 0.7
        tall = 0.0 if value is None else plot_h * min(value, axis_end) / axis_end
        if tall > 0:
            parts.append(
                f'<rect x="{x:.1f}" y="{base - tall:.1f}" width="{width:.1f}" '
                f'height="{tall:.1f}" fill="{color}"/>'
            )
        centre = x + width / 2
        if len(values) <= 16:
            shown = "—" if value is None else value_text(value)
            parts.append(_text(centre, base - tall - 4, shown, anchor="middle"))
        if index % every == 0:
            parts.append(_text(centre, base + 16, label, anchor="middle", fill=MUTED))
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{WIDTH - 8}" y2="{base}" stroke="{INK}" '
        'stroke-width="1"/>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()
