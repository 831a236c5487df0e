"""The listening dashboard's charts, drawn as inline SVG by the templates from what is worked
out here: a time chart's frame (axes, ticks, a column per bucket, the alerts marked with a band,
a marker and a text label), volume and sentiment over time (stacked, each sentiment with its own
pattern), and the languages as bars; each with a description in words for screen readers, and
its data given as a table beside it by the page. Pure functions of the rows measures.series
gives (no database)."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf.locale import LANG_INFO

from .models import Resolution

# Languages drawn as bars; the rest are summed in one bar (the table lists them all).
LANGUAGES_DRAWN = 10


@dataclass
class Span:
    """The dashboard's resolution and range, checked: the buckets from `start` to `end`."""

    resolution: str
    range: str
    start: datetime
    end: datetime

    @property
    def query(self) -> str:
        return f"resolution={self.resolution}&range={self.range}"


WIDTH = 640
_LEFT, _RIGHT, _TOP = 56, 12, 44
_PLOT_HEIGHT = 180
SENTIMENTS = (
    # (field, label, what marks it in the chart)
    ("negative", "Negative", "white stripes"),
    ("neutral", "Neutral", "solid"),
    ("positive", "Positive", "white dots"),
    ("not_scored", "Not scored", "thin lines on white"),
)


def _f(value: float) -> str:
    return f"{value:.1f}"


def ticks(largest: float) -> list[int]:
    """Whole-number ticks from 0 to at least `largest`, about four steps of 1, 2 or 5 × 10ⁿ."""
    if largest <= 0:
        return [0, 1]
    step = 1
    while step * 4 < largest:
        for factor in (2, 2.5, 2):  # 1 → 2 → 5 → 10
            step = int(step * factor)
            if step * 4 >= largest:
                break
    return [step * index for index in range(math.ceil(largest / step) + 1)]


def _time_label(at: datetime, span: Span) -> str:
    if span.resolution == Resolution.DAY:
        return f"{at.day} {at:%b}"
    if span.resolution == Resolution.HOUR and span.end - span.start > timedelta(hours=24):
        return f"{at.day} {at:%b} {at:%H:%M}"
    return f"{at:%H:%M}"


def when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _time_frame(rows: list[dict], span: Span, largest: float, alerts_marked: list) -> dict:
    """The frame of a chart over time: its gridlines and their values, the time labels, the
    slots of the buckets, and the alerts' markers."""
    plot_width = WIDTH - _LEFT - _RIGHT
    base = _TOP + _PLOT_HEIGHT
    scale = ticks(largest)
    top_value = scale[-1]
    slot = plot_width / max(len(rows), 1)
    long_labels = span.resolution == Resolution.HOUR and span.end - span.start > timedelta(days=1)
    every = max(1, math.ceil(len(rows) / (5 if long_labels else 8)))
    seconds = (span.end - span.start).total_seconds()

    def x_at(at: datetime) -> float:
        share = min(max((at - span.start).total_seconds() / seconds, 0.0), 1.0)
        return _LEFT + plot_width * share

    # Alerts whose markers would touch share one marker, labelled with all their numbers.
    clusters: list[list] = []
    for number, alert in alerts_marked:
        x = x_at(alert.window_start)
        if clusters and x - clusters[-1][0] < 30:
            clusters[-1][1].append(number)
        else:
            clusters.append([x, [number]])
    markers = []
    for x, numbers in clusters:
        if len(numbers) == 1:
            label = f"A{numbers[0]}"
        elif numbers == list(range(numbers[0], numbers[-1] + 1)):
            label = f"A{numbers[0]}–A{numbers[-1]}"
        else:
            label = ", ".join(f"A{number}" for number in numbers)
        # A label near an edge is written inwards from its marker, not past the edge.
        anchor = "end" if x > WIDTH - 60 else "start" if x < 60 else "middle"
        markers.append(
            {
                "x": _f(x),
                "points": f"{_f(x - 6)},{_f(_TOP - 18)} {_f(x + 6)},{_f(_TOP - 18)} "
                f"{_f(x)},{_f(_TOP - 6)}",
                "label": label,
                "label_x": _f(x + 8 if anchor == "end" else x - 8 if anchor == "start" else x),
                "anchor": anchor,
            }
        )
    bands = [
        {
            "x": _f(x_at(alert.window_start)),
            "width": _f(max(x_at(alert.window_end) - x_at(alert.window_start), 2.0)),
        }
        for _, alert in alerts_marked
    ]
    return {
        "width": WIDTH,
        "left": _LEFT,
        "right": WIDTH - _RIGHT,
        "top": _TOP,
        "base": base,
        "plot_height": _PLOT_HEIGHT,
        "markers": markers,
        "bands": bands,
        "marker_top": _TOP - 6,
        "marker_label_y": _TOP - 22,
        "gridlines": [
            {"y": _f(base - _PLOT_HEIGHT * value / top_value), "label": f"{value:,}"}
            for value in scale
        ],
        "labels": [
            {"x": _f(_LEFT + slot * (index + 0.5)), "text": _time_label(row["start"], span)}
            for index, row in enumerate(rows)
            if index % every == 0
        ],
        "label_y": base + 18,
        "slot": slot,
        "bar": max(slot * 0.8, 0.6),
        "top_value": top_value,
    }


def _column(frame: dict, index: int, low: float, high: float) -> dict:
    """The rectangle of bucket `index` from value `low` to `high`."""
    scale = frame["plot_height"] / frame["top_value"]
    x = frame["left"] + frame["slot"] * index + (frame["slot"] - frame["bar"]) / 2
    return {
        "x": _f(x),
        "y": _f(frame["base"] - high * scale),
        "width": _f(frame["bar"]),
        "height": _f((high - low) * scale),
    }


def _alert_words(alerts_marked: list) -> str:
    if not alerts_marked:
        return " No alert in this range."
    words = "; ".join(
        f"A{number}: {alert.get_kind_display().lower()} from {when(alert.window_start)}"
        for number, alert in alerts_marked
    )
    return f" Alerts marked: {words}."


def volume_chart(rows: list[dict], span: Span, alerts_marked: list) -> dict:
    volumes = [row["volume"] for row in rows]
    frame = _time_frame(rows, span, max(volumes, default=0), alerts_marked)
    frame["height"] = frame["base"] + 32
    frame["stacks"] = None
    frame["columns"] = [
        _column(frame, index, 0, volume) for index, volume in enumerate(volumes) if volume
    ]
    total = sum(volumes)
    if total:
        peak = max(range(len(rows)), key=lambda index: volumes[index])
        busiest = (
            f" The most in one {span.resolution}: {volumes[peak]:,} ({when(rows[peak]['start'])})."
        )
    else:
        busiest = ""
    frame["title"] = f"Posts by the {span.resolution}"
    frame["description"] = (
        f"{total:,} posts from {when(span.start)} to {when(span.end)}.{busiest}"
        + _alert_words(alerts_marked)
    )
    return frame


def sentiment_chart(rows: list[dict], span: Span, alerts_marked: list) -> dict:
    largest = max((row["volume"] for row in rows), default=0)
    frame = _time_frame(rows, span, largest, alerts_marked)
    legend_y = frame["base"] + 40
    frame["height"] = legend_y + 16
    frame["legend"] = [
        {"part": part, "label": label, "x": _LEFT + 130 * index, "y": legend_y - 12}
        for index, (part, label, _) in enumerate(SENTIMENTS)
    ]
    frame["legend_y"] = legend_y
    stacks = []
    for index, row in enumerate(rows):
        low = 0
        for part, _, _ in SENTIMENTS:
            if row[part]:
                stacks.append({"part": part, **_column(frame, index, low, low + row[part])})
                low += row[part]
    frame["stacks"] = stacks
    frame["columns"] = None
    totals = {part: sum(row[part] for row in rows) for part, _, _ in SENTIMENTS}
    counted = ", ".join(f"{totals[part]:,} {label.lower()}" for part, label, _ in SENTIMENTS)
    marks = ", ".join(f"{label.lower()} {mark}" for _, label, mark in SENTIMENTS)
    frame["title"] = f"Sentiment of the posts by the {span.resolution}"
    frame["description"] = (
        f"Of {sum(totals.values()):,} posts: {counted}. Stacked from the bottom: {marks}."
        + _alert_words(alerts_marked)
    )
    frame["totals"] = totals
    return frame


def language_rows(rows: list[dict]) -> list[dict]:
    """Posts per language over the range, most first: name, count and share."""
    counts: dict[str, int] = {}
    for row in rows:
        for code, count in row["languages"].items():
            counts[code] = counts.get(code, 0) + count
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], language_name(pair[0])))
    return [
        {
            "code": code,
            "name": language_name(code),
            "posts": count,
            "share": f"{count / total:.0%}" if total else "—",
        }
        for code, count in ranked
    ]


def languages_chart(languages: list[dict]) -> dict:
    drawn = languages[:LANGUAGES_DRAWN]
    rest = languages[LANGUAGES_DRAWN:]
    if rest:
        drawn = drawn[: LANGUAGES_DRAWN - 1] + [
            {
                "name": f"{len(languages) - LANGUAGES_DRAWN + 1} other languages",
                "posts": sum(row["posts"] for row in languages[LANGUAGES_DRAWN - 1 :]),
            }
        ]
    total = sum(row["posts"] for row in languages)
    label_width, value_width, bar, gap, top = 150, 110, 18, 10, 8
    plot_width = WIDTH - label_width - value_width
    largest = max((row["posts"] for row in drawn), default=0) or 1
    bars = []
    for index, row in enumerate(drawn):
        y = top + index * (bar + gap)
        length = plot_width * row["posts"] / largest
        share = f"{row['posts'] / total:.0%}" if total else ""
        bars.append(
            {
                "label": row["name"] if len(row["name"]) <= 22 else row["name"][:21] + "…",
                "label_x": label_width - 8,
                "text_y": _f(y + bar - 4),
                "y": y,
                "width": _f(length),
                "value_x": _f(label_width + length + 6),
                "value": f"{row['posts']:,} ({share})",
            }
        )
    words = "; ".join(f"{row['name']}: {row['posts']:,}" for row in drawn)
    return {
        "width": WIDTH,
        "height": max(top + len(drawn) * (bar + gap) + 8, 44),
        "left": label_width,
        "bar": bar,
        "bars": bars,
        "axis_bottom": top + len(drawn) * (bar + gap),
        "title": "Posts by language",
        "description": f"{total:,} posts. {words}." if drawn else "No posts in this range.",
    }


def language_name(code: str) -> str:
    if not code:
        return "Not known"
    return LANG_INFO.get(code, {}).get("name") or code
