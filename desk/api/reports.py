"""Reports API: the figures of the report pages as JSON, for the lead's subtree (or one team of
it) and a period. A team outside the lead's scope is a 404; bad input is a 400 naming the field."""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import reports, selectors

_PARAMETERS = [
    OpenApiParameter("team", int, description="A team you lead: it and the teams below it."),
    OpenApiParameter(
        "since", OpenApiTypes.DATE, description="First day (inclusive); default 29 days ago."
    ),
    OpenApiParameter(
        "until", OpenApiTypes.DATE, description="Last day (inclusive); default today."
    ),
]

_SHAPES = {
    "turnaround": "`overall`, `by_team` and `by_stage`, each with `count`, `median_seconds` and "
    "`p90_seconds` (linear interpolation between closest ranks) for approval steps decided in "
    "the period.",
    "on-time": "`overall`, `by_team` and `by_network`, each with `published`, `on_time` and "
    "`share` (0–1, null when nothing was published): targets whose post had a time, on time when "
    "published within `tolerance_seconds` of it.",
    "failures": "`overall`, `by_network`, `by_reason` and `rows` (network × reason), each with "
    "`failed_targets` and `failed_attempts` (outcomes permanent, retryable, unknown).",
    "volume": "`total`, `by_team`, `by_network` and `by_week` (ISO weeks, with `week_start`), "
    "each with `published`: targets published in the period.",
    "sla": "`overall`, `by_team` and `by_stage`, each with `steps` (due in the period), "
    "`breaches`, `decided_late`, `escalated`, `open_overdue` and `share`.",
    "engagement": "`overall`, `by_team`, `by_network`, `by_campaign` (`campaign` null for posts "
    "of no campaign) and `by_week` (ISO weeks of publishing, with `week_start`), each with "
    "`posts`, `posts_with_figures`, the sums of `likes`, `reposts`, `replies`, `quotes`, "
    "`impressions` and `clicks` (null when no target of the row has that figure), "
    "`interactions` (likes + reposts + replies + quotes) and `engagement_rate` (interactions / "
    "impressions over the targets whose network gives impressions; null without any): targets "
    "published in the period, each at its latest reading.",
}


class _ReportApi(APIView):
    """Parse the filters, find the teams (404 outside the scope), compute one report."""

    report = ""
    error_statuses = {"get": (404,)}  # for someone who leads no team, or a team outside the scope

    def figures(self, request) -> Response:
        scope = selectors.audit_scope(user=request.user)
        if not scope.may_read:
            raise Http404
        filters = reports.parse_report_filters(request.query_params)
        teams = reports.report_teams(scope=scope, team_id=filters.team_id)
        figures = reports.REPORTS[self.report](teams=teams, period=filters.period)
        return Response({"team": filters.team_id, **figures})


# The shapes of the answers, so that a client (and the contract test) can rely on them.
def _object(**properties) -> dict:
    return {"type": "object", "required": list(properties), "properties": properties}


_INT = {"type": "integer", "minimum": 0}
_SHARE = {"type": "number", "nullable": True, "minimum": 0, "maximum": 1}
_SECONDS = {"type": "number", "nullable": True, "description": "null when there is no figure."}
_TEXT = {"type": "string"}
_BY_TEAM = {"team": {"type": "integer"}, "team_name": _TEXT}
_BY_NETWORK = {"network": _TEXT, "network_label": _TEXT}


def _rows(**properties) -> dict:
    return {"type": "array", "items": _object(**properties)}


_TIMES = {"count": _INT, "median_seconds": _SECONDS, "p90_seconds": _SECONDS}
_ON_TIME = {"published": _INT, "on_time": _INT, "share": _SHARE}
_FAILED = {"failed_targets": _INT, "failed_attempts": _INT}
_REASON = {"reason": _TEXT, "reason_label": _TEXT}
_SLA = {
    "steps": _INT,
    "breaches": _INT,
    "decided_late": _INT,
    "escalated": _INT,
    "open_overdue": _INT,
    "share": _SHARE,
}
_PUBLISHED = {"published": _INT}
_SUM = {
    "type": "integer",
    "nullable": True,
    "minimum": 0,
    "description": "null when no target of the row has this figure.",
}
_ENGAGED = {
    "posts": _INT,
    "posts_with_figures": _INT,
    "likes": _SUM,
    "reposts": _SUM,
    "replies": _SUM,
    "quotes": _SUM,
    "impressions": _SUM,
    "clicks": _SUM,
    "interactions": _SUM,
    "engagement_rate": {"type": "number", "nullable": True, "minimum": 0},
}
_WEEK = {
    "week": {"type": "string", "pattern": r"^\d{4}-W\d{2}$"},
    "week_start": {"type": "string", "format": "date"},
}
_FIGURES = {
    "turnaround": {
        "overall": _object(**_TIMES),
        "by_team": _rows(**_BY_TEAM, **_TIMES),
        "by_stage": _rows(stage=_TEXT, **_TIMES),
    },
    "on-time": {
        "tolerance_seconds": _INT,
        "overall": _object(**_ON_TIME),
        "by_team": _rows(**_BY_TEAM, **_ON_TIME),
        "by_network": _rows(**_BY_NETWORK, **_ON_TIME),
    },
    "failures": {
        "overall": _object(**_FAILED),
        "by_network": _rows(**_BY_NETWORK, **_FAILED),
        "by_reason": _rows(**_REASON, **_FAILED),
        "rows": _rows(**_BY_NETWORK, **_REASON, **_FAILED),
    },
    "volume": {
        "total": _INT,
        "by_team": _rows(**_BY_TEAM, **_PUBLISHED),
        "by_network": _rows(**_BY_NETWORK, **_PUBLISHED),
        "by_week": _rows(**_WEEK, **_PUBLISHED),
    },
    "sla": {
        "overall": _object(**_SLA),
        "by_team": _rows(**_BY_TEAM, **_SLA),
        "by_stage": _rows(stage=_TEXT, **_SLA),
    },
    "engagement": {
        "overall": _object(**_ENGAGED),
        "by_team": _rows(**_BY_TEAM, **_ENGAGED),
        "by_network": _rows(**_BY_NETWORK, **_ENGAGED),
        "by_campaign": _rows(
            campaign={"type": "string", "nullable": True}, campaign_label=_TEXT, **_ENGAGED
        ),
        "by_week": _rows(**_WEEK, **_ENGAGED),
    },
}


def _answer(name: str) -> dict:
    return _object(
        team={"type": "integer", "nullable": True, "description": "The team asked for, or null."},
        since={"type": "string", "format": "date"},
        until={"type": "string", "format": "date"},
        **_FIGURES[name],
    )


def _schema(name: str, summary: str):
    return extend_schema(
        operation_id=f"v1_reports_{name.replace('-', '_')}",
        summary=summary,
        description=_SHAPES[name] + " Periods are whole days in the site's time zone.",
        parameters=_PARAMETERS,
        responses={200: OpenApiResponse(_answer(name), description=_SHAPES[name])},
    )


class TurnaroundApi(_ReportApi):
    report = "turnaround"

    @_schema(report, "Approval turnaround: median and 90th percentile")
    def get(self, request):
        return self.figures(request)


class OnTimeApi(_ReportApi):
    report = "on-time"

    @_schema(report, "Share of targets published within 60 s of their time")
    def get(self, request):
        return self.figures(request)


class FailuresApi(_ReportApi):
    report = "failures"

    @_schema(report, "Failed publishing by network and reason")
    def get(self, request):
        return self.figures(request)


class VolumeApi(_ReportApi):
    report = "volume"

    @_schema(report, "Targets published by team, network and ISO week")
    def get(self, request):
        return self.figures(request)


class SlaApi(_ReportApi):
    report = "sla"

    @_schema(report, "Approval steps that missed their deadline")
    def get(self, request):
        return self.figures(request)


class EngagementApi(_ReportApi):
    report = "engagement"

    @_schema(report, "Engagement of the posts published, by team, network, campaign and week")
    def get(self, request):
        return self.figures(request)
