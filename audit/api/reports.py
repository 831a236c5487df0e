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


def _schema(name: str, summary: str):
    return extend_schema(
        operation_id=f"v1_reports_{name.replace('-', '_')}",
        summary=summary,
        description=_SHAPES[name] + " Periods are whole days in the site's time zone.",
        parameters=_PARAMETERS,
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description=_SHAPES[name])},
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
