"""The communications lead's reports for a team subtree and a period: approval turnaround,
on-time publishing, failures, volume and SLA breaches (DESIGN §7). One set of figures feeds the
pages (with charts) and the JSON API, so the two can never disagree.

How they are computed, the same on SQLite and PostgreSQL:

- Counts and groupings are database aggregations (`values(...).annotate(Count(...))`): one query
  per report whatever the number of rows, returning one row per group.
- Percentiles are not portable SQL (PostgreSQL has `percentile_cont`, SQLite has nothing), so the
  turnaround report fetches the durations (computed by the database, completed_at − activated_at)
  with one `values_list` query and takes the percentiles in Python. The number of queries stays
  one; what grows with the data is the length of that one list of numbers.
- Percentiles interpolate linearly between the closest ranks: for sorted values v₀…vₙ₋₁ the
  q-th percentile sits at position p = (n − 1)·q, and is v⌊p⌋ + (v⌈p⌉ − v⌊p⌋)·(p − ⌊p⌋). This is
  PostgreSQL's `percentile_cont`, numpy's default and Excel's PERCENTILE.INC; the median is the
  50th percentile. Example: 1 h, 2 h, 3 h, 10 h → median 2.5 h, 90th percentile 7.9 h.

What each report counts (a period is whole days in the site's time zone, `until` included):

- turnaround: approval steps decided in the period (completed_at in it; approved, changes
  requested or rejected — steps closed by an edit or break-glass were never decided), the time
  from the step's activation to its decision; by the post's team and by stage name.
- on_time: targets published in the period (published_at in it) whose post had a time; on time
  when published within ON_TIME_SECONDS of it (either side); by team and by network.
- failures: unsuccessful publish attempts (outcome permanent, retryable or unknown) started in
  the period, and among them the targets that ended failed (counted once, at their last attempt),
  by network and by a reason normalised from the outcome and HTTP status (error texts differ per
  network; the status does not).
- volume: targets published in the period, by team, network and ISO week (weeks without any
  are shown as 0).
- sla: approval steps whose deadline (due_at) falls in the period; a breach is a step decided
  after its deadline, escalated, or still open past it; by team and by stage.
- engagement: targets published in the period (as volume), each with its latest reading
  (TargetMetrics: the newest `at`, the last stored on a tie), whenever it was read; the readings'
  likes, reposts, replies, quotes, impressions and clicks summed by team, network, campaign and
  ISO week of publishing. SQL's SUM skips a missing figure and is null when every one is
  missing, so a network that gives no impressions never counts as 0. A post counts once in each
  row it has a target in (once per team and campaign; once in each of its networks and weeks);
  "with figures" when at least one of its targets there has been read. The engagement rate is
  (likes + reposts + replies + quotes) / impressions, both taken over the targets whose network
  gave impressions only (a missing interaction counting 0), and null without any.
"""

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import (
    BigIntegerField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, ExtractIsoYear, ExtractWeek
from django.utils import timezone

from accounts.models import Team
from approvals.models import ApprovalStep, StepStatus
from cxhub.errors import ApplicationError
from networks.models import Channel
from publishing.models import PostTarget, PublishAttempt, TargetMetrics, TargetStatus

REPORT_FIELDS = ("team", "since", "until")
DEFAULT_DAYS = 30
MAX_DAYS = 732  # two years: the by-week figures stay a readable size
ON_TIME_SECONDS = 60
_MAX_ID = 2**63 - 1

DECIDED_STEP_STATUSES = (StepStatus.APPROVED, StepStatus.CHANGES_REQUESTED, StepStatus.REJECTED)
Outcome = PublishAttempt.Outcome
FAILED_OUTCOMES = (Outcome.PERMANENT, Outcome.RETRYABLE, Outcome.UNKNOWN)


# Input -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """Whole days in the site's time zone, from `since` to `until`, both included."""

    since: date
    until: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def end(self) -> datetime:
        """Exclusive: the start of the day after `until`."""
        following = self.until + timedelta(days=1)
        return datetime.combine(following, time.min, tzinfo=timezone.get_current_timezone())

    def as_dict(self) -> dict:
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}


@dataclass(frozen=True)
class ReportFilters:
    team_id: int | None
    period: Period
    given: dict[str, str] = field(default_factory=dict)


def parse_report_filters(params: Mapping[str, str], *, today: date | None = None) -> ReportFilters:
    """Read `team`, `since` and `until` (ISO dates, both included) from a query string; raise
    ApplicationError (400) naming every bad field. Defaults: the last DEFAULT_DAYS days, today
    included."""
    today = today or timezone.localdate()
    given = {name: params.get(name, "").strip() for name in REPORT_FIELDS}
    given = {name: value for name, value in given.items() if value}
    errors: dict[str, list[str]] = {}

    team_id = None
    if "team" in given:
        value = given["team"]
        if value.isdecimal() and value.isascii() and 0 < int(value) <= _MAX_ID:
            team_id = int(value)
        else:
            errors["team"] = ["Not a team id: give a whole number."]

    def day(name: str) -> date | None:
        if name not in given:
            return None
        try:
            if len(given[name]) != 10:
                raise ValueError
            return date.fromisoformat(given[name])
        except ValueError:
            errors[name] = ["Not a date: give it as YYYY-MM-DD, e.g. 2025-03-01."]
            return None

    since, until = day("since"), day("until")
    if "since" not in errors and "until" not in errors:
        until = until or today
        since = since or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            errors["until"] = ["Must be on or after since."]
        elif (until - since).days + 1 > MAX_DAYS:
            errors["since"] = [f"A report covers at most {MAX_DAYS} days."]
    if errors:
        first = next(iter(errors))
        raise ApplicationError(f"{first}: {errors[first][0]}", {"fields": errors})
    return ReportFilters(team_id=team_id, period=Period(since=since, until=until), given=given)


# Percentiles -------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0 ≤ q ≤ 1) by linear interpolation between closest ranks (see the
    module docstring); None for no values."""
    if not 0 <= q <= 1:
        raise ValueError("q must be between 0 and 1")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _summary(seconds: list[float]) -> dict:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "count": len(seconds),
        "median_seconds": rounded(percentile(seconds, 0.5)),
        "p90_seconds": rounded(percentile(seconds, 0.9)),
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# Rows keyed by team and by network, in a stable order --------------------------------------------
def _team_rows(teams: Sequence[Team], values: Mapping[int, dict]) -> list[dict]:
    """One row per team that has figures, in tree order."""
    return [
        {"team": team.pk, "team_name": team.name, **values[team.pk]}
        for team in teams
        if team.pk in values
    ]


def _network_rows(values: Mapping[str, dict]) -> list[dict]:
    known = [channel for channel in Channel.values if channel in values]
    unknown = sorted(set(values) - set(known))
    return [
        {"network": name, "network_label": _network_label(name), **values[name]}
        for name in [*known, *unknown]
    ]


def _network_label(name: str) -> str:
    try:
        return Channel(name).label
    except ValueError:
        return name


# The reports -------------------------------------------------------------------------------------
def turnaround(*, teams: Sequence[Team], period: Period) -> dict:
    """Median and 90th percentile of the time from a step's activation to its decision, overall,
    by team and by stage. One query."""
    durations = (
        ApprovalStep.objects.filter(
            request__post__team_id__in=[team.pk for team in teams],
            status__in=DECIDED_STEP_STATUSES,
            activated_at__isnull=False,
            completed_at__gte=period.start,
            completed_at__lt=period.end,
        )
        .annotate(took=ExpressionWrapper(F("completed_at") - F("activated_at"), DurationField()))
        .values_list("request__post__team_id", "name", "took")
    )
    overall: list[float] = []
    by_team: dict[int, list[float]] = defaultdict(list)
    by_stage: dict[str, list[float]] = defaultdict(list)
    for team_id, stage, took in durations:
        seconds = took.total_seconds()
        overall.append(seconds)
        by_team[team_id].append(seconds)
        by_stage[stage].append(seconds)
    return {
        **period.as_dict(),
        "overall": _summary(overall),
        "by_team": _team_rows(teams, {pk: _summary(v) for pk, v in by_team.items()}),
        "by_stage": [{"stage": name, **_summary(by_stage[name])} for name in sorted(by_stage)],
    }


def _published_in(teams: Sequence[Team], period: Period):
    return PostTarget.objects.filter(
        post__team_id__in=[team.pk for team in teams],
        status=TargetStatus.PUBLISHED,
        published_at__gte=period.start,
        published_at__lt=period.end,
    )


def on_time(*, teams: Sequence[Team], period: Period) -> dict:
    """Of the targets published in the period whose post had a time, how many went out within
    ON_TIME_SECONDS of it; overall, by team and by network. One query."""
    tolerance = timedelta(seconds=ON_TIME_SECONDS)
    in_time = Q(
        published_at__gte=F("post__scheduled_at") - tolerance,
        published_at__lte=F("post__scheduled_at") + tolerance,
    )
    rows = (
        _published_in(teams, period)
        .filter(post__scheduled_at__isnull=False)
        .values("post__team_id", "social_account__channel")
        .annotate(published=Count("pk"), on_time=Count("pk", filter=in_time))
        .order_by()
    )
    by_team: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    by_network: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        for bucket in (by_team[row["post__team_id"]], by_network[row["social_account__channel"]]):
            bucket[0] += row["published"]
            bucket[1] += row["on_time"]

    def figures(published: int, timely: int) -> dict:
        return {"published": published, "on_time": timely, "share": _share(timely, published)}

    published = sum(v[0] for v in by_team.values())
    timely = sum(v[1] for v in by_team.values())
    return {
        **period.as_dict(),
        "tolerance_seconds": ON_TIME_SECONDS,
        "overall": figures(published, timely),
        "by_team": _team_rows(teams, {pk: figures(*v) for pk, v in by_team.items()}),
        "by_network": _network_rows({name: figures(*v) for name, v in by_network.items()}),
    }


# A failure's reason, from what every network gives the same way: the outcome and the status.
REASONS = {
    "auth": "Not authorised (401/403)",
    "not_found": "Not found (404)",
    "invalid": "Refused: content or request invalid (other 4xx)",
    "rate_limited": "Rate limited (429)",
    "server": "Network's server error (5xx)",
    "refused": "Refused by the network (no status)",
    "connection": "Could not reach the network (no status)",
    "no_answer": "No answer (timeout after sending)",
}


def failure_reason(outcome: str, http_status: int | None) -> str:
    """A reason key of REASONS for an unsuccessful attempt."""
    if outcome == Outcome.UNKNOWN:
        return "no_answer"
    if http_status is None:
        return "refused" if outcome == Outcome.PERMANENT else "connection"
    if http_status in (401, 403):
        return "auth"
    if http_status == 404:
        return "not_found"
    if http_status == 429:
        return "rate_limited"
    if http_status >= 500:
        return "server"
    return "invalid"


def failures(*, teams: Sequence[Team], period: Period) -> dict:
    """Unsuccessful attempts started in the period and the targets that ended failed (at their
    last attempt), by network and reason. One query (the last attempt is a correlated
    subquery inside it)."""
    last_number = (
        PublishAttempt.objects.filter(target=OuterRef("target"))
        .order_by("-number")
        .values("number")[:1]
    )
    target_failed = Q(target__status=TargetStatus.FAILED, number=Subquery(last_number))
    rows = (
        PublishAttempt.objects.filter(
            target__post__team_id__in=[team.pk for team in teams],
            outcome__in=FAILED_OUTCOMES,
            started_at__gte=period.start,
            started_at__lt=period.end,
        )
        .values("target__social_account__channel", "outcome", "http_status")
        .annotate(attempts=Count("pk"), targets=Count("pk", filter=target_failed))
        .order_by()
    )
    cells: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        reason = failure_reason(row["outcome"], row["http_status"])
        cell = cells[(row["target__social_account__channel"], reason)]
        cell[0] += row["targets"]
        cell[1] += row["attempts"]

    def figures(targets: int, attempts: int) -> dict:
        return {"failed_targets": targets, "failed_attempts": attempts}

    by_network: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_reason: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (network, reason), (targets, attempts) in cells.items():
        for bucket in (by_network[network], by_reason[reason]):
            bucket[0] += targets
            bucket[1] += attempts
    networks = _network_rows({name: figures(*v) for name, v in by_network.items()})
    order = {row["network"]: index for index, row in enumerate(networks)}
    reason_order = list(REASONS)
    return {
        **period.as_dict(),
        "overall": figures(
            sum(v[0] for v in by_network.values()), sum(v[1] for v in by_network.values())
        ),
        "by_network": networks,
        "by_reason": [
            {"reason": key, "reason_label": REASONS[key], **figures(*by_reason[key])}
            for key in reason_order
            if key in by_reason
        ],
        "rows": [
            {
                "network": network,
                "network_label": _network_label(network),
                "reason": reason,
                "reason_label": REASONS[reason],
                **figures(*cells[(network, reason)]),
            }
            for network, reason in sorted(
                cells, key=lambda key: (order[key[0]], reason_order.index(key[1]))
            )
        ],
    }


def _weeks(period: Period) -> list[tuple[int, int, date]]:
    """(ISO year, ISO week, its Monday) for every week the period touches."""
    monday = period.since - timedelta(days=period.since.weekday())
    weeks = []
    while monday <= period.until:
        year, week, _ = monday.isocalendar()
        weeks.append((year, week, monday))
        monday += timedelta(days=7)
    return weeks


def volume(*, teams: Sequence[Team], period: Period) -> dict:
    """Targets published in the period: by team, network and ISO week (in the site's time
    zone). One query, grouped by all three at once; the sums are taken here."""
    rows = (
        _published_in(teams, period)
        .annotate(iso_year=ExtractIsoYear("published_at"), iso_week=ExtractWeek("published_at"))
        .values("post__team_id", "social_account__channel", "iso_year", "iso_week")
        .annotate(published=Count("pk"))
        .order_by()
    )
    by_team: dict[int, int] = defaultdict(int)
    by_network: dict[str, int] = defaultdict(int)
    by_week: dict[tuple[int, int], int] = defaultdict(int)
    for row in rows:
        by_team[row["post__team_id"]] += row["published"]
        by_network[row["social_account__channel"]] += row["published"]
        by_week[(row["iso_year"], row["iso_week"])] += row["published"]
    return {
        **period.as_dict(),
        "total": sum(by_team.values()),
        "by_team": _team_rows(teams, {pk: {"published": n} for pk, n in by_team.items()}),
        "by_network": _network_rows({name: {"published": n} for name, n in by_network.items()}),
        "by_week": [
            {
                "week": f"{year:04d}-W{week:02d}",
                "week_start": monday.isoformat(),
                "published": by_week.get((year, week), 0),
            }
            for year, week, monday in _weeks(period)
        ],
    }


def sla(*, teams: Sequence[Team], period: Period, now: datetime | None = None) -> dict:
    """Approval steps whose deadline fell in the period, and how many breached it (decided after
    it, escalated, or still open past it); overall, by team and by stage. One query."""
    now = now or timezone.now()
    late = Q(completed_at__gt=F("due_at"))
    escalated = Q(escalated_at__isnull=False)
    open_overdue = Q(completed_at__isnull=True, due_at__lt=now)
    rows = (
        ApprovalStep.objects.filter(
            request__post__team_id__in=[team.pk for team in teams],
            activated_at__isnull=False,
            due_at__gte=period.start,
            due_at__lt=period.end,
        )
        .values("request__post__team_id", "name")
        .annotate(
            steps=Count("pk"),
            breaches=Count("pk", filter=late | escalated | open_overdue),
            decided_late=Count("pk", filter=late),
            escalated=Count("pk", filter=escalated),
            open_overdue=Count("pk", filter=open_overdue),
        )
        .order_by()
    )
    keys = ("steps", "breaches", "decided_late", "escalated", "open_overdue")
    by_team: dict[int, dict] = defaultdict(lambda: dict.fromkeys(keys, 0))
    by_stage: dict[str, dict] = defaultdict(lambda: dict.fromkeys(keys, 0))
    for row in rows:
        for bucket in (by_team[row["request__post__team_id"]], by_stage[row["name"]]):
            for key in keys:
                bucket[key] += row[key]

    def figures(counts: dict) -> dict:
        return {**counts, "share": _share(counts["breaches"], counts["steps"])}

    total = {key: sum(bucket[key] for bucket in by_team.values()) for key in keys}
    return {
        **period.as_dict(),
        "overall": figures(total),
        "by_team": _team_rows(teams, {pk: figures(v) for pk, v in by_team.items()}),
        "by_stage": [{"stage": name, **figures(by_stage[name])} for name in sorted(by_stage)],
    }


# Engagement --------------------------------------------------------------------------------------
INTERACTIONS = ("likes", "reposts", "replies", "quotes")
ENGAGEMENT_FIGURES = (*INTERACTIONS, "impressions", "clicks")
NO_CAMPAIGN = "No campaign"


def _with_latest_reading(teams: Sequence[Team], period: Period):
    """The targets published in the period, each joined (LEFT JOIN, as `latest`) to its newest
    reading: the join's condition is a correlated subquery that picks that reading's id through
    the (target, -at) index, so every target comes once, with its figures or with none."""
    newest = (
        TargetMetrics.objects.filter(target=OuterRef("pk")).order_by("-at", "-pk").values("pk")[:1]
    )
    return _published_in(teams, period).annotate(
        latest=FilteredRelation("metrics", condition=Q(metrics__pk=Subquery(newest)))
    )


def _engagement_sums() -> dict:
    def counted(name: str):
        return Coalesce(F(f"latest__{name}"), Value(0), output_field=BigIntegerField())

    interactions = counted("likes") + counted("reposts") + counted("replies") + counted("quotes")
    return {
        "posts": Count("post", distinct=True),
        "posts_with_figures": Count("post", distinct=True, filter=Q(latest__isnull=False)),
        **{name: Sum(f"latest__{name}") for name in ENGAGEMENT_FIGURES},
        # The rate's numerator: the interactions of the targets whose impressions are known.
        "seen_interactions": Sum(interactions, filter=Q(latest__impressions__isnull=False)),
    }


_SUMMED = (*ENGAGEMENT_FIGURES, "seen_interactions")


def _plus(a: int | None, b: int | None) -> int | None:
    """Sums that keep "no figure" apart from 0, as SQL's SUM does."""
    if a is None:
        return b
    return a if b is None else a + b


def _engaged() -> dict:
    return {"posts": 0, "posts_with_figures": 0, **dict.fromkeys(_SUMMED)}


def _add_engaged(bucket: dict, row: Mapping) -> None:
    bucket["posts"] += row["posts"]
    bucket["posts_with_figures"] += row["posts_with_figures"]
    for name in _SUMMED:
        bucket[name] = _plus(bucket[name], row[name])


def _engagement_figures(bucket: Mapping) -> dict:
    interactions = None
    for name in INTERACTIONS:
        interactions = _plus(interactions, bucket[name])
    seen, impressions = bucket["seen_interactions"], bucket["impressions"]
    return {
        "posts": bucket["posts"],
        "posts_with_figures": bucket["posts_with_figures"],
        **{name: bucket[name] for name in ENGAGEMENT_FIGURES},
        "interactions": interactions,
        "engagement_rate": round(seen / impressions, 4) if impressions else None,
    }


def engagement(*, teams: Sequence[Team], period: Period) -> dict:
    """How the targets published in the period did, as last read: sums of their latest readings
    with counts of posts, overall and by team, network, campaign and ISO week (every week of the
    period, those without posts too). Three queries whatever the number of posts and readings:
    grouped by team and campaign (a post has one of each, so those rows add up to the overall
    figures exactly), by network, and by week (a post may have targets in several of those)."""
    rows = _with_latest_reading(teams, period)
    sums = _engagement_sums()
    by_post = rows.values("post__team_id", "post__campaign").annotate(**sums).order_by()
    by_channel = rows.values("social_account__channel").annotate(**sums).order_by()
    by_iso_week = (
        rows.annotate(iso_year=ExtractIsoYear("published_at"), iso_week=ExtractWeek("published_at"))
        .values("iso_year", "iso_week")
        .annotate(**sums)
        .order_by()
    )

    overall = _engaged()
    by_team: dict[int, dict] = defaultdict(_engaged)
    by_campaign: dict[str, dict] = defaultdict(_engaged)
    for row in by_post:
        for bucket in (overall, by_team[row["post__team_id"]], by_campaign[row["post__campaign"]]):
            _add_engaged(bucket, row)
    by_network = {row["social_account__channel"]: row for row in by_channel}
    by_week = {(row["iso_year"], row["iso_week"]): row for row in by_iso_week}

    named = sorted((name for name in by_campaign if name), key=lambda name: (name.casefold(), name))
    campaigns = [*named, ""] if "" in by_campaign else named
    return {
        **period.as_dict(),
        "overall": _engagement_figures(overall),
        "by_team": _team_rows(teams, {pk: _engagement_figures(v) for pk, v in by_team.items()}),
        "by_network": _network_rows(
            {name: _engagement_figures(row) for name, row in by_network.items()}
        ),
        "by_campaign": [
            {
                "campaign": name or None,
                "campaign_label": name or NO_CAMPAIGN,
                **_engagement_figures(by_campaign[name]),
            }
            for name in campaigns
        ],
        "by_week": [
            {
                "week": f"{year:04d}-W{week:02d}",
                "week_start": monday.isoformat(),
                **_engagement_figures(by_week.get((year, week), _engaged())),
            }
            for year, week, monday in _weeks(period)
        ],
    }


REPORTS = {
    "turnaround": turnaround,
    "on-time": on_time,
    "failures": failures,
    "volume": volume,
    "sla": sla,
    "engagement": engagement,
}


def report_teams(*, scope, team_id: int | None) -> list[Team]:
    """The teams a report covers: the subtree of `team_id`, or every team of the scope (a
    `desk.selectors.AuditScope`, already fetched: no query). A team outside it raises
    TeamNotFound, a 404 that confirms nothing."""
    if team_id is None:
        return list(scope.teams)
    team = scope.team(team_id)
    return [each for each in scope.teams if each.path.startswith(team.path)]
