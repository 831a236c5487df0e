"""A watch's figures over time: the new hits of each store added to the minutes, hours and days
they land in (`add`), read back for charts and exports (`series`, `top_posts`, `top_authors`),
and summed over a window and its baseline for the detectors (`figures`). `recount` counts a
watch's buckets again from its hits, the reference `add` is tested against.

Adding is exact because of how it is called: only hits new to the watch are added (a page
stored twice adds nothing the second time), and the stores of one watch run one after the other
(posts_store locks the watch's row), so no two adds read the same bucket at once. What it costs
grows with the page, not with the day: a surge's busiest minute costs what a quiet one does."""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Trunc

from inbox.models import Sentiment

from .models import Hit, Measure, Resolution, Watch, WatchAuthor

STEP = {
    Resolution.MINUTE: timedelta(minutes=1),
    Resolution.HOUR: timedelta(hours=1),
    Resolution.DAY: timedelta(days=1),
}
_SENTIMENTS = {
    "positive": Sentiment.POSITIVE,
    "neutral": Sentiment.NEUTRAL,
    "negative": Sentiment.NEGATIVE,
    "not_scored": Sentiment.NOT_SCORED,
}


def bucket_start(at: datetime, resolution: str) -> datetime:
    at = at.astimezone(UTC)
    if resolution == Resolution.MINUTE:
        return at.replace(second=0, microsecond=0)
    if resolution == Resolution.HOUR:
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def add(
    watch: Watch,
    hits: Sequence[Hit],
    firsts: Sequence[tuple[datetime | None, datetime]] = (),
) -> int:
    """Add `hits` (new to the watch, each once) to its minutes, hours and days, with `firsts`:
    the authors whose first moment in the watch changed (the moment before, None for a new
    author; the moment now). The number of buckets written. Call with the watch's row locked.
    One query per resolution for the authors already counted, one read and one upsert."""
    if not hits and not firsts:
        return 0
    counts: dict[tuple[str, datetime], Counter] = defaultdict(Counter)
    languages: dict[tuple[str, datetime], Counter] = defaultdict(Counter)
    pairs: dict[str, set[tuple[datetime, str]]] = defaultdict(set)
    for hit in hits:
        for resolution in Resolution.values:
            start = bucket_start(hit.at, resolution)
            key = (resolution, start)
            counts[key]["volume"] += 1
            counts[key][_SENTIMENT_FIELD.get(hit.sentiment, "not_scored")] += 1
            languages[key][hit.language] += 1
            pairs[resolution].add((start, hit.author_key))
    for resolution, found in pairs.items():
        for start, _author in found - _counted_before(watch, resolution, found, hits):
            counts[(resolution, start)]["authors"] += 1
    for before, now in firsts:
        for resolution in Resolution.values:
            if before is not None:
                counts[(resolution, bucket_start(before, resolution))]["new_authors"] -= 1
            counts[(resolution, bucket_start(now, resolution))]["new_authors"] += 1
    kept = {
        (measure.resolution, measure.start): measure
        for measure in Measure.objects.filter(
            watch=watch,
            resolution__in=Resolution.values,
            start__in=sorted({start for _, start in counts}),
        )
        if (measure.resolution, measure.start) in counts
    }
    rows = []
    for key, delta in counts.items():
        measure = kept.get(key) or Measure(watch=watch, resolution=key[0], start=key[1])
        for name in _FIELDS:
            setattr(measure, name, max(0, getattr(measure, name) + delta[name]))
        if languages[key]:
            merged = Counter(measure.languages) + languages[key]
            measure.languages = dict(sorted(merged.items()))
        rows.append(measure)
    Measure.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["watch", "resolution", "start"],
        update_fields=[*_FIELDS, "languages"],
    )
    return len(rows)


_FIELDS = (
    "volume",
    "positive",
    "neutral",
    "negative",
    "not_scored",
    "authors",
    "new_authors",
)
_SENTIMENT_FIELD = {
    value: name
    for name, value in {
        "positive": Sentiment.POSITIVE,
        "neutral": Sentiment.NEUTRAL,
        "negative": Sentiment.NEGATIVE,
        "not_scored": Sentiment.NOT_SCORED,
    }.items()
}


def _counted_before(
    watch: Watch, resolution: str, pairs: set[tuple[datetime, str]], hits: Sequence[Hit]
) -> set[tuple[datetime, str]]:
    """Which of these (bucket, author) pairs the watch's earlier hits already counted: the
    authors of the page, in the page's buckets, among hits that are not the page's. One query,
    on the (watch, author, time) index."""
    starts = [start for start, _ in pairs]
    low, high = min(starts), max(starts) + STEP[resolution]
    return (
        set(
            Hit.objects.filter(
                watch=watch,
                author_key__in=sorted({author for _, author in pairs}),
                at__gte=low,
                at__lt=high,
            )
            .exclude(pk__in=[hit.pk for hit in hits])
            .annotate(bucket=Trunc("at", resolution, tzinfo=UTC))
            .values_list("bucket", "author_key")
            .distinct()
        )
        & pairs
    )


def recount(watch: Watch, moments: Iterable[datetime]) -> int:
    """Count again the minutes, hours and days of `watch` that hold `moments`, from its hits
    (what `add` keeps, worked out the long way: the reference its tests compare with); the
    number of buckets written. Three grouped queries per resolution, whatever the number of
    buckets, and one upsert."""
    moments = list(moments)
    if not moments:
        return 0
    rows: list[Measure] = []
    for resolution in Resolution.values:
        starts = {bucket_start(at, resolution) for at in moments}
        low, high = min(starts), max(starts) + STEP[resolution]
        rows += _counted(watch, resolution, starts, low, high)
    Measure.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["watch", "resolution", "start"],
        update_fields=[
            "volume",
            "positive",
            "neutral",
            "negative",
            "not_scored",
            "authors",
            "new_authors",
            "languages",
        ],
    )
    return len(rows)


def _counted(
    watch: Watch, resolution: str, starts: set[datetime], low: datetime, high: datetime
) -> list[Measure]:
    hits = Hit.objects.filter(watch=watch, at__gte=low, at__lt=high).annotate(
        bucket=Trunc("at", resolution, tzinfo=UTC)
    )
    counts = {
        row["bucket"]: row
        for row in hits.values("bucket").annotate(
            volume=Count("id"),
            authors=Count("author_key", distinct=True),
            **{name: Count("id", filter=Q(sentiment=value)) for name, value in _SENTIMENTS.items()},
        )
    }
    languages: dict[datetime, dict[str, int]] = defaultdict(dict)
    for row in hits.values("bucket", "language").annotate(n=Count("id")):
        languages[row["bucket"]][row["language"]] = row["n"]
    new_authors = dict(
        WatchAuthor.objects.filter(watch=watch, first_at__gte=low, first_at__lt=high)
        .annotate(bucket=Trunc("first_at", resolution, tzinfo=UTC))
        .values("bucket")
        .annotate(n=Count("id"))
        .values_list("bucket", "n")
    )
    rows = []
    for start in sorted(starts):
        row = counts.get(start, {})
        rows.append(
            Measure(
                watch=watch,
                resolution=resolution,
                start=start,
                volume=row.get("volume", 0),
                authors=row.get("authors", 0),
                new_authors=new_authors.get(start, 0),
                languages=dict(sorted(languages.get(start, {}).items())),
                **{name: row.get(name, 0) for name in _SENTIMENTS},
            )
        )
    return rows


@dataclass(frozen=True)
class Figures:
    """Sums over a span of minutes."""

    volume: int = 0
    negative: int = 0
    scored: int = 0


def figures(watch: Watch, start: datetime, end: datetime) -> Figures:
    """The watch's posts from `start` to `end` (minute buckets), and how many were scored and
    negative. One query."""
    row = Measure.objects.filter(
        watch=watch, resolution=Resolution.MINUTE, start__gte=start, start__lt=end
    ).aggregate(
        volume=Sum("volume"),
        negative=Sum("negative"),
        positive=Sum("positive"),
        neutral=Sum("neutral"),
    )
    negative = row["negative"] or 0
    return Figures(
        volume=row["volume"] or 0,
        negative=negative,
        scored=negative + (row["positive"] or 0) + (row["neutral"] or 0),
    )


def series(
    watch: Watch, resolution: str, start: datetime, end: datetime
) -> list[dict[str, object]]:
    """The watch's buckets from `start` to `end`, one per step, empty steps included (a chart
    needs its zeros). One query."""
    kept = {
        measure.start: measure
        for measure in Measure.objects.filter(
            watch=watch, resolution=resolution, start__gte=start, start__lt=end
        )
    }
    out, at, step = [], bucket_start(start, resolution), STEP[resolution]
    if at < start:
        at += step
    while at < end:
        measure = kept.get(at)
        out.append(
            {
                "start": at,
                "volume": measure.volume if measure else 0,
                "positive": measure.positive if measure else 0,
                "neutral": measure.neutral if measure else 0,
                "negative": measure.negative if measure else 0,
                "not_scored": measure.not_scored if measure else 0,
                "authors": measure.authors if measure else 0,
                "new_authors": measure.new_authors if measure else 0,
                "languages": measure.languages if measure else {},
            }
        )
        at += step
    return out


def series_across(
    watches: QuerySet[Watch], resolution: str, start: datetime, end: datetime
) -> list[dict[str, object]]:
    """The buckets of several watches summed, one per step from `start` to `end`, empty steps
    included: what a lead sees across a team's subtree. A post two watches found counts in each;
    authors are summed over the watches (an author of two watches counts twice). One query."""
    totals: dict[datetime, dict[str, object]] = {}
    for row in Measure.objects.filter(
        watch__in=watches, resolution=resolution, start__gte=start, start__lt=end
    ).values("start", "languages", *_FIELDS):
        total = totals.setdefault(
            row["start"], {**dict.fromkeys(_FIELDS, 0), "languages": Counter()}
        )
        for name in _FIELDS:
            total[name] += row[name]
        total["languages"].update(row["languages"])
    out, at, step = [], bucket_start(start, resolution), STEP[resolution]
    if at < start:
        at += step
    while at < end:
        total = totals.get(at)
        out.append(
            {
                "start": at,
                **({name: total[name] for name in _FIELDS} if total else dict.fromkeys(_FIELDS, 0)),
                "languages": dict(sorted(total["languages"].items())) if total else {},
            }
        )
        at += step
    return out


def top_posts(watch: Watch, start: datetime, end: datetime, *, limit: int = 5) -> list[Hit]:
    """The watch's most shared posts from `start` to `end`: by reposts, then likes, then time.
    One query (posts purged after the retention are no longer there to rank)."""
    return list(
        Hit.objects.filter(watch=watch, at__gte=start, at__lt=end)
        .select_related("post")
        .order_by(
            F("post__reposts").desc(nulls_last=True),
            F("post__likes").desc(nulls_last=True),
            "-at",
            "-id",
        )[:limit]
    )


def top_authors(
    watch: Watch, start: datetime, end: datetime, *, limit: int = 5
) -> list[dict[str, object]]:
    """The authors with the most posts in the watch from `start` to `end`. One query."""
    return list(
        Hit.objects.filter(watch=watch, at__gte=start, at__lt=end)
        .values("author_key")
        .annotate(posts=Count("id"))
        .order_by("-posts", "author_key")[:limit]
    )
