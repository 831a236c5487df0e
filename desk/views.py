"""The communications lead's pages: the audit trail of their subtree (filtered, newest first, a
keyset page at a time, with downloads of the same selection from the API), the reports with
their charts, a post's timeline, and the verify page of an event (its inclusion proof checked
with the standalone verifier's functions, the proof and the verifier to download)."""

import json
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from audit import proofs, verifier
from cxhub.api import MAX_ID
from cxhub.errors import ApplicationError

from . import reports as figures
from . import selectors, timeline
from .api.serializers import EventOutput
from .charts import PALETTE, Series, bar_chart, column_chart, number
from .filters import FILTER_FIELDS, EventFilters, parse_event_filters
from .integrity import integrity

PAGE_SIZE = 50
_MAX_SEQ = 2**63 - 1


@login_required
def audit_log(request):
    user = request.user
    # One query gives the right to read, the team select's options and the team filter's scope.
    scope = selectors.audit_scope(user=user)
    if not scope.may_read:
        raise Http404
    top = min((team.depth for team in scope.teams), default=1)
    for team in scope.teams:
        team.indent = "— " * (team.depth - top)
    context = {"teams": scope.teams, "errors": {}, "events": [], "integrity": integrity()}
    try:
        filters = parse_event_filters(request.GET)
    except ApplicationError as error:
        context.update(errors=error.extra["fields"], given=_given(request.GET))
        return render(request, "desk/log.html", context, status=400)

    try:
        team = scope.team(filters.team_id) if filters.team_id else None
    except selectors.TeamNotFound:
        raise Http404 from None
    events = selectors.events_for(user=user, scope=scope, team=team, **filters.selector_kwargs())
    before = request.GET.get("before", "")
    if before.isdecimal() and before.isascii() and int(before) <= _MAX_SEQ:
        events = events.filter(seq__lt=int(before))
    page = list(events[: PAGE_SIZE + 1])
    has_more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    for event in page:
        event.data_json = json.dumps(event.data, ensure_ascii=False, sort_keys=True)
        event.verify_url = reverse("audit-event-verify", args=[event.seq])
    context.update(
        given=filters.given,
        events=page,
        filtered=bool(filters.given),
        **_links(filters, next_before=page[-1].seq if has_more else None),
    )
    return render(request, "desk/log.html", context)


def _given(params) -> dict[str, str]:
    """The values as typed, to show them again beside their errors."""
    return {name: params.get(name, "") for name in FILTER_FIELDS}


def _links(filters: EventFilters, *, next_before: int | None) -> dict:
    query = list(filters.given.items())
    api = reverse("api-audit-events")
    return {
        "older_url": f"?{urlencode([*query, ('before', next_before)])}" if next_before else None,
        "csv_url": f"{api}?{urlencode([*query, ('format', 'csv')])}",
        "jsonl_url": f"{api}?{urlencode([*query, ('format', 'jsonl')])}",
    }


# Reports -----------------------------------------------------------------------------------------
@login_required
def reports(request):
    """The six reports of the lead's subtree (or one team of it) for a period, each figure as a
    chart with its table. A fixed number of queries: the scope, then one per report (three for
    engagement)."""
    scope = selectors.audit_scope(user=request.user)
    if not scope.may_read:
        raise Http404
    top = min((team.depth for team in scope.teams), default=1)
    for team in scope.teams:
        team.indent = "— " * (team.depth - top)
    context = {"teams": scope.teams, "errors": {}, "sections": []}
    try:
        filters = figures.parse_report_filters(request.GET)
    except ApplicationError as error:
        given = {name: request.GET.get(name, "") for name in figures.REPORT_FIELDS}
        context.update(errors=error.extra["fields"], given=given)
        return render(request, "desk/reports.html", context, status=400)
    try:
        teams = figures.report_teams(scope=scope, team_id=filters.team_id)
    except selectors.TeamNotFound:
        raise Http404 from None
    period = filters.period
    data = {name: report(teams=teams, period=period) for name, report in figures.REPORTS.items()}
    pairs = list(period.as_dict().items())
    if filters.team_id:
        pairs.insert(0, ("team", filters.team_id))
    query = urlencode(pairs)
    context.update(
        given={"team": str(filters.team_id or ""), **period.as_dict()},
        period=period,
        sections=_sections(data, query),
    )
    return render(request, "desk/reports.html", context)


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    hours = seconds / 3600
    return f"{hours:.2f} h" if hours < 1 else f"{number(hours)} h"


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{number(share * 100)}%"


def _figure(key: str, caption: str, headers: list[str], rows: list[tuple], svg) -> dict:
    """One chart and its table: `rows` are (label, [cells])."""
    return {"id": key, "caption": caption, "headers": headers, "rows": rows, "svg": svg}


def _wide(figure: dict) -> dict:
    """A table too wide to sit beside its chart goes below it."""
    figure["wide"] = len(figure["headers"]) > 4
    return figure


def _turnaround_figure(key: str, what: str, rows: list[dict], label_of) -> dict:
    labels = [label_of(row) for row in rows]
    hours = [
        Series("Median", [_in_hours(row["median_seconds"]) for row in rows], PALETTE[0]),
        Series("90th percentile", [_in_hours(row["p90_seconds"]) for row in rows], PALETTE[1]),
    ]
    caption = f"Approval turnaround by {what}"
    svg = bar_chart(
        chart_id=f"chart-{key}",
        title=f"{caption}: median and 90th percentile, in hours",
        labels=labels,
        series=hours,
        value_text=lambda value: f"{number(value)} h",
        empty_message="No approval step was decided in this period.",
    )
    table = [
        (label, [row["count"], _hours(row["median_seconds"]), _hours(row["p90_seconds"])])
        for label, row in zip(labels, rows, strict=True)
    ]
    headers = [what.capitalize(), "Decisions", "Median", "90th percentile"]
    return _figure(key, caption, headers, table, svg)


def _in_hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _share_figure(key: str, caption: str, what: str, rows: list[dict], label_of) -> dict:
    labels = [label_of(row) for row in rows]
    shares = [None if row["share"] is None else row["share"] * 100 for row in rows]
    svg = bar_chart(
        chart_id=f"chart-{key}",
        title=f"{caption}, share of targets published on time (%)",
        labels=labels,
        series=[Series("On time", shares, PALETTE[2])],
        value_text=lambda value: f"{number(value)}%",
        axis_max=100,
        empty_message="Nothing with a set time was published in this period.",
    )
    table = [
        (label, [row["published"], row["on_time"], _percent(row["share"])])
        for label, row in zip(labels, rows, strict=True)
    ]
    headers = [what.capitalize(), "Published", "On time", "Share on time"]
    return _figure(key, caption, headers, table, svg)


def _count_figure(
    key: str, caption: str, what: str, rows: list[dict], label_of, columns, empty: str
) -> dict:
    """Bars of counts: `columns` are (field, heading, colour) and each becomes a series."""
    labels = [label_of(row) for row in rows]
    series = [
        Series(heading, [row[name] for row in rows], color) for name, heading, color in columns
    ]
    svg = bar_chart(
        chart_id=f"chart-{key}", title=caption, labels=labels, series=series, empty_message=empty
    )
    table = [
        (label, [row[name] for name, _, _ in columns])
        for label, row in zip(labels, rows, strict=True)
    ]
    headers = [what.capitalize(), *(heading for _, heading, _ in columns)]
    return _figure(key, caption, headers, table, svg)


def _team(row: dict) -> str:
    return row["team_name"]


def _network(row: dict) -> str:
    return row["network_label"]


def _stage(row: dict) -> str:
    return row["stage"]


def _sections(data: dict, query: str) -> list[dict]:
    """The page's six sections, each a title, a summary, its JSON link and its figures."""
    api = {name: f"{reverse(f'api-report-{name}')}?{query}" for name in figures.REPORTS}
    sections = [
        _turnaround_section(data["turnaround"]),
        _on_time_section(data["on-time"]),
        _failures_section(data["failures"]),
        _volume_section(data["volume"]),
        _sla_section(data["sla"]),
        _engagement_section(data["engagement"]),
    ]
    for section in sections:
        section["api"] = api[section["id"]]
    return sections


def _turnaround_section(report: dict) -> dict:
    overall = report["overall"]
    return {
        "id": "turnaround",
        "title": "Approval turnaround",
        "summary": (
            f"{overall['count']} approval steps decided; median "
            f"{_hours(overall['median_seconds'])}, 90th percentile "
            f"{_hours(overall['p90_seconds'])} from the step's start to its decision."
        ),
        "figures": [
            _turnaround_figure("turnaround-team", "team", report["by_team"], _team),
            _turnaround_figure("turnaround-stage", "stage", report["by_stage"], _stage),
        ],
    }


def _on_time_section(report: dict) -> dict:
    overall = report["overall"]
    return {
        "id": "on-time",
        "title": "Published on time",
        "summary": (
            f"{overall['on_time']} of {overall['published']} targets with a set time went out "
            f"within {report['tolerance_seconds']} seconds of it ({_percent(overall['share'])})."
        ),
        "figures": [
            _share_figure("on-time-team", "On time by team", "team", report["by_team"], _team),
            _share_figure(
                "on-time-network", "On time by network", "network", report["by_network"], _network
            ),
        ],
    }


_FAILED = [
    ("failed_targets", "Targets failed", PALETTE[3]),
    ("failed_attempts", "Unsuccessful attempts", PALETTE[1]),
]


def _failures_section(report: dict) -> dict:
    overall = report["overall"]
    return {
        "id": "failures",
        "title": "Failures",
        "summary": (
            f"{overall['failed_targets']} targets failed; {overall['failed_attempts']} publish "
            "attempts did not succeed (including those retried)."
        ),
        "figures": [
            _count_figure(
                "failures-network",
                "Failures by network",
                "network",
                report["by_network"],
                _network,
                _FAILED,
                _NO_FAILURES,
            ),
            _count_figure(
                "failures-reason",
                "Failures by network and reason",
                "network and reason",
                report["rows"],
                lambda row: f"{row['network_label']}: {row['reason_label']}",
                _FAILED,
                _NO_FAILURES,
            ),
        ],
    }


_PUBLISHED = [("published", "Published", PALETTE[0])]


def _volume_section(report: dict) -> dict:
    weeks = report["by_week"]
    by_week = _figure(
        "volume-week",
        "Targets published by ISO week",
        ["Week", "Starts on", "Published"],
        [(row["week"], [row["week_start"], row["published"]]) for row in weeks],
        column_chart(
            chart_id="chart-volume-week",
            title="Targets published by ISO week",
            labels=[row["week"].split("-")[1] for row in weeks],
            values=[row["published"] for row in weeks],
            description="; ".join(f"{row['week']}: {row['published']}" for row in weeks) + ".",
        ),
    )
    return {
        "id": "volume",
        "title": "Volume published",
        "summary": f"{report['total']} targets published.",
        "figures": [
            by_week,
            _count_figure(
                "volume-team",
                "Targets published by team",
                "team",
                report["by_team"],
                _team,
                _PUBLISHED,
                _NO_VOLUME,
            ),
            _count_figure(
                "volume-network",
                "Targets published by network",
                "network",
                report["by_network"],
                _network,
                _PUBLISHED,
                _NO_VOLUME,
            ),
        ],
    }


_SLA_BARS = [("steps", "Steps due", PALETTE[0]), ("breaches", "Breaches", PALETTE[3])]
_SLA_MORE = [
    ("decided_late", "Decided late"),
    ("escalated", "Escalated"),
    ("open_overdue", "Still open, overdue"),
]


def _sla_figure(key: str, caption: str, what: str, rows: list[dict], label_of) -> dict:
    figure = _count_figure(key, caption, what, rows, label_of, _SLA_BARS, _NO_SLA)
    figure["headers"] += [heading for _, heading in _SLA_MORE] + ["Share breached"]
    for (_, cells), row in zip(figure["rows"], rows, strict=True):
        cells += [row[name] for name, _ in _SLA_MORE] + [_percent(row["share"])]
    return _wide(figure)


def _sla_section(report: dict) -> dict:
    overall = report["overall"]
    return {
        "id": "sla",
        "title": "Approval deadlines (SLA)",
        "summary": (
            f"{overall['breaches']} of {overall['steps']} approval steps due in this period "
            f"missed their deadline ({_percent(overall['share'])}): decided late, escalated, or "
            "still open past it."
        ),
        "figures": [
            _sla_figure("sla-team", "Approval deadlines by team", "team", report["by_team"], _team),
            _sla_figure(
                "sla-stage", "Approval deadlines by stage", "stage", report["by_stage"], _stage
            ),
        ],
    }


def _count(value: int | None) -> str:
    return "—" if value is None else number(value)


# The interactions, each a series of the bars; the table (below the chart: too wide to sit
# beside it) has every figure.
_INTERACTIONS = [
    ("likes", "Likes", PALETTE[0]),
    ("reposts", "Reposts", PALETTE[2]),
    ("replies", "Replies", PALETTE[1]),
    ("quotes", "Quotes", PALETTE[3]),
]
_ENGAGEMENT_MORE = [("impressions", "Impressions"), ("clicks", "Clicks")]


def _engagement_figure(key: str, what: str, rows: list[dict], label_of) -> dict:
    labels = [label_of(row) for row in rows]
    caption = f"Engagement by {what}"
    svg = bar_chart(
        chart_id=f"chart-{key}",
        title=f"{caption}: likes, reposts, replies and quotes, as last read",
        labels=labels,
        series=[
            Series(heading, [row[name] for row in rows], color)
            for name, heading, color in _INTERACTIONS
        ],
        empty_message=_NO_VOLUME,
    )
    table = [
        (
            label,
            [
                _count(row["posts"]),
                _count(row["posts_with_figures"]),
                *(_count(row[name]) for name, _, _ in _INTERACTIONS),
                *(_count(row[name]) for name, _ in _ENGAGEMENT_MORE),
                _percent(row["engagement_rate"]),
            ],
        )
        for label, row in zip(labels, rows, strict=True)
    ]
    headers = [
        what.capitalize(),
        "Posts",
        "Posts with figures",
        *(heading for _, heading, _ in _INTERACTIONS),
        *(heading for _, heading in _ENGAGEMENT_MORE),
        "Engagement rate",
    ]
    return _wide(_figure(key, caption, headers, table, svg))


def _engagement_week_figure(weeks: list[dict]) -> dict:
    caption = "Interactions by ISO week of publishing"

    def said(row: dict) -> str:
        value = row["interactions"]
        return "no figures" if value is None else f"{number(value)} interactions"

    svg = column_chart(
        chart_id="chart-engagement-week",
        title=f"{caption}: likes, reposts, replies and quotes, as last read",
        labels=[row["week"].split("-")[1] for row in weeks],
        values=[row["interactions"] for row in weeks],
        color=PALETTE[2],
        description="; ".join(f"{row['week']}: {said(row)}" for row in weeks) + ".",
    )
    # Narrow enough to sit beside the chart: the weeks' first days are in the JSON.
    table = [
        (
            row["week"],
            [_count(row["posts"]), _count(row["interactions"]), _percent(row["engagement_rate"])],
        )
        for row in weeks
    ]
    headers = ["Week", "Posts", "Interactions", "Engagement rate"]
    return {**_figure("engagement-week", caption, headers, table, svg), "short_labels": True}


def _campaign(row: dict) -> str:
    return row["campaign_label"]


def _engagement_section(report: dict) -> dict:
    overall = report["overall"]
    summary = (
        f"{overall['posts']} posts published, {overall['posts_with_figures']} of them with "
        "figures, each target counted at its latest reading."
    )
    if overall["interactions"] is not None:
        summary += (
            f" {_count(overall['interactions'])} interactions: {_count(overall['likes'])} likes, "
            f"{_count(overall['reposts'])} reposts, {_count(overall['replies'])} replies and "
            f"{_count(overall['quotes'])} quotes."
        )
    if overall["impressions"] is not None:
        summary += (
            f" Engagement rate {_percent(overall['engagement_rate'])} of "
            f"{_count(overall['impressions'])} impressions, on the networks that give them."
        )
    return {
        "id": "engagement",
        "title": "Engagement of our posts",
        "summary": summary,
        "figures": [
            _engagement_week_figure(report["by_week"]),
            _engagement_figure("engagement-network", "network", report["by_network"], _network),
            _engagement_figure("engagement-team", "team", report["by_team"], _team),
            _engagement_figure("engagement-campaign", "campaign", report["by_campaign"], _campaign),
        ],
    }


_NO_SLA = "No approval step was due in this period."
_NO_FAILURES = "No publish attempt failed in this period."
_NO_VOLUME = "Nothing was published in this period."


# A post's timeline -------------------------------------------------------------------------------
@login_required
def post_timeline(request, post_id: int):
    """Everything that happened to a post; 404 for anyone who may not see the post."""
    story = timeline.post_timeline(user=request.user, post_id=post_id)
    if story is None:
        raise Http404
    # Whoever sees the post sees its story; the verify page is for those who may read the
    # event in the audit trail (its leads), so only they get the link.
    scope = selectors.audit_scope(user=request.user)
    readable = set(scope.team_ids())
    for row in story.events:
        if scope.everything or row.event.team_id in readable:
            row.verify_url = reverse("audit-event-verify", args=[row.event.seq])
    return render(request, "desk/timeline.html", {"timeline": story, "post": story.post})


# Verifying an event ------------------------------------------------------------------------------
def _readable_event(request, seq: int):
    event = selectors.event_for(user=request.user, seq=seq) if seq <= MAX_ID else None
    if event is None:
        raise Http404
    return event


@login_required
def event_verify(request, seq: int):
    """An event, its leaf, the checkpoint and the inclusion proof, checked here with the
    standalone verifier's own functions; 404 for an event the user may not read."""
    event = _readable_event(request, seq)
    event.data_json = json.dumps(event.data, ensure_ascii=False, sort_keys=True)
    proof = proofs.event_proof(event)
    context = {"event": event, "proof": proof, "verified": "", "failed": ""}
    if proof is None:
        context["failed"] = "The audit log has no signed checkpoint yet: nothing to prove against."
        return render(request, "desk/verify.html", context, status=409)
    try:
        context["verified"] = proofs.check_event_proof(proof)
    except ValueError as error:
        context["failed"] = str(error)
    context.update(
        leaf=proof.leaf.decode("utf-8"),
        leaf_hash=proofs.b64(proof.leaf_hash),
        hashes=[proofs.b64(value) for value in proof.proof],
        verifier_keys=proofs.verifier_keys(),
        origin=proofs.origin(proof.checkpoint),
    )
    return render(request, "desk/verify.html", context)


@login_required
def event_proof_download(request, seq: int):
    """The event's proof as the API gives it, as a file that audit/verifier.py checks."""
    event = _readable_event(request, seq)
    proof = proofs.event_proof(event)
    if proof is None:
        raise Http404
    response = JsonResponse(
        proofs.proof_document(proof, EventOutput(event).data), json_dumps_params={"indent": 2}
    )
    response["Content-Disposition"] = f'attachment; filename="audit-proof-{event.seq}.json"'
    return response


@login_required
def verifier_download(request):
    """The standalone verifier itself, the very file the server checks proofs with."""
    return FileResponse(
        Path(verifier.__file__).open("rb"),
        as_attachment=True,
        filename="verifier.py",
        content_type="text/x-python; charset=utf-8",
    )
