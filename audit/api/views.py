"""Audit API: the events of the teams a lead leads, a page at a time or streamed as an export.

Anything outside the user's scope is a 404, never a 403 that would confirm it exists; people
who lead no team get a 404 for the whole list.
"""

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.settings import APISettings
from rest_framework.views import APIView

from cxhub.api import CursorPagination

from .. import exports, selectors, services
from ..filters import EXPORT_FORMATS, parse_event_filters, parse_format
from ..proofs import covering_checkpoint, verifier_keys
from .serializers import EventOutput

EXPORT_BATCH_SIZE = 2000


class _FormatPicksTheExport(DefaultContentNegotiation):
    """Here `?format=` chooses the export (csv, jsonl), not one of DRF's renderers, whose
    negotiation would answer 404 for a format it has no renderer for."""

    settings = APISettings({"URL_FORMAT_OVERRIDE": None})

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            # `Accept: text/csv` with ?format=csv is fair: JSON renders only the errors then.
            if request.query_params.get("format") in EXPORT_FORMATS:
                return renderers[0], renderers[0].media_type
            raise


class _NewestFirst(CursorPagination):
    ordering = "-seq"


_FILTER_PARAMETERS = [
    OpenApiParameter("team", int, description="A team you lead: it and the teams below it."),
    OpenApiParameter("actor", str, description="A user id, or a username."),
    OpenApiParameter(
        "action", str, description="Exact, or a prefix ending with `.` or `*` (`post.*`)."
    ),
    OpenApiParameter("object_type", str, description='"app_label.model", e.g. accounts.team.'),
    OpenApiParameter("object_id", str, description="With object_type."),
    OpenApiParameter(
        "since",
        str,
        description="ISO 8601 date-time with offset, or a date (from its start); inclusive.",
    ),
    OpenApiParameter(
        "until",
        str,
        description="ISO 8601 date-time with offset (exclusive), or a date (to its end).",
    ),
    OpenApiParameter(
        "format",
        str,
        enum=["json", "csv", "jsonl"],
        description="csv or jsonl: the whole filtered trail, streamed, oldest first; the export "
        "is itself recorded as an `audit.exported` event.",
    ),
]


class AuditEventListApi(APIView):
    """Events of my subtree, newest first, keyset-paginated; `?format=csv|jsonl` streams them all.

    Filters: team (subtree), actor, action (prefix with `.`/`*`), object_type + object_id,
    since, until.
    """

    content_negotiation_class = _FormatPicksTheExport
    error_statuses = {"get": (404,)}  # for someone who leads no team
    pagination_class = _NewestFirst

    @extend_schema(
        operation_id="v1_audit_events_list",
        parameters=_FILTER_PARAMETERS,
        responses={
            200: EventOutput(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
            (200, "application/jsonl"): OpenApiResponse(OpenApiTypes.STR),
        },
    )
    def get(self, request):
        user = request.user
        scope = selectors.audit_scope(user=user)
        if not scope.may_read:
            raise Http404
        fmt = parse_format(request.query_params)
        filters = parse_event_filters(request.query_params)
        team = scope.team(filters.team_id) if filters.team_id else None
        events = selectors.events_for(
            user=user, scope=scope, team=team, **filters.selector_kwargs()
        )

        if fmt in EXPORT_FORMATS:
            exported = services.audit_exported(by=user, fmt=fmt, filters=filters.given, team=team)
            batches = selectors.event_batches(
                events,
                batch_size=getattr(settings, "AUDIT_EXPORT_BATCH_SIZE", EXPORT_BATCH_SIZE),
                below_seq=exported.seq,
            )
            # Seal the trail (the export's own event included) and have a checkpoint cover it
            # before the first row goes out, so that every exported event has its proof.
            proofs = exports.ExportProofs(
                checkpoint=covering_checkpoint(), verifier_keys=verifier_keys()
            )
            return exports.streaming_response(batches, fmt=fmt, proofs=proofs)

        paginator = self.pagination_class()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(EventOutput(page, many=True).data)
