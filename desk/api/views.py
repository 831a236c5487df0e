"""Audit API: the events of the teams a lead leads, a page at a time or streamed as an export
(with their proofs), and the proofs themselves: an event's inclusion proof, a consistency proof
between two tree sizes, the latest signed checkpoint.

Anything outside the user's scope is a 404, never a 403 that would confirm it exists; people
who lead no team get a 404 for the whole list.
"""

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.settings import APISettings
from rest_framework.views import APIView

from audit import proofs, services
from audit.proofs import covering_checkpoint, verifier_keys
from audit.sealer import latest_checkpoint
from cxhub.api import MAX_ID, CursorPagination
from cxhub.errors import ApplicationError

from .. import exports, selectors
from ..filters import EXPORT_FORMATS, parse_event_filters, parse_format
from .serializers import CheckpointOutput, ConsistencyOutput, EventOutput, ProofOutput

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


def _readable_scope(user) -> selectors.AuditScope:
    scope = selectors.audit_scope(user=user)
    if not scope.may_read:
        raise Http404
    return scope


class AuditEventProofApi(APIView):
    """An event's inclusion proof (RFC 9162) in the tree of a signed checkpoint: its leaf index,
    the tree size, the proof's hashes, the leaf (the event's canonical JSON) and its hash, the
    checkpoint's signed note and the keys to check it. Events not yet in a checkpoint are sealed
    and signed first. audit/verifier.py checks the answer as it is (save it to a file).

    The same events as the list: those of the teams you lead and below; 404 for any other."""

    error_statuses = {"get": (409,)}  # no signing key: nothing to prove against

    @extend_schema(operation_id="v1_audit_event_proof", responses={200: ProofOutput})
    def get(self, request, seq: int):
        if seq > MAX_ID:
            raise Http404
        event = selectors.event_for(user=request.user, seq=seq)
        if event is None:
            raise Http404
        proof = proofs.event_proof(event)
        if proof is None:
            raise proofs.NoCheckpoint
        return Response(proofs.proof_document(proof, EventOutput(event).data))


def _size(params, name: str, limit: int) -> int:
    value = params.get(name, "")
    if not (value.isascii() and value.isdecimal() and int(value) <= limit):
        message = f"A whole number from 0 to {limit}, the latest checkpoint's size."
        raise ApplicationError(f"{name}: {message}", {"fields": {name: [message]}})
    return int(value)


class AuditConsistencyApi(APIView):
    """The RFC 9162 consistency proof that the log of `first` events is a prefix of the log of
    `second` (it only grew): both at most the latest checkpoint's size, `first` ≤ `second`.
    For anyone who may read the audit trail (a lead); 404 for others."""

    error_statuses = {"get": (404,)}

    @extend_schema(
        operation_id="v1_audit_consistency",
        parameters=[
            OpenApiParameter(
                "first",
                {"type": "integer", "minimum": 0},
                required=True,
                description="The older tree size. Not a whole number up to `second`: a 400.",
            ),
            OpenApiParameter(
                "second",
                {"type": "integer", "minimum": 0},
                required=True,
                description="The newer tree size, at most the latest checkpoint's: else a 400.",
            ),
        ],
        responses={200: ConsistencyOutput},
    )
    def get(self, request):
        _readable_scope(request.user)
        checkpoint = latest_checkpoint()
        limit = checkpoint.size if checkpoint is not None else 0
        second = _size(request.query_params, "second", limit)
        first = _size(request.query_params, "first", limit)
        if first > second:
            message = "At most second."
            raise ApplicationError(f"first: {message}", {"fields": {"first": [message]}})
        if checkpoint is None:
            raise proofs.NoCheckpoint
        proof = proofs.consistency(first=first, second=second, checkpoint=checkpoint)
        return Response(proofs.consistency_document(proof))


class AuditCheckpointApi(APIView):
    """The latest signed checkpoint of the audit log (404 before the first one), for anyone who
    may read the audit trail (a lead)."""

    error_statuses = {"get": (404,)}

    @extend_schema(operation_id="v1_audit_checkpoint", responses={200: CheckpointOutput})
    def get(self, request):
        _readable_scope(request.user)
        checkpoint = latest_checkpoint()
        if checkpoint is None:
            raise Http404
        return Response(proofs.checkpoint_document(checkpoint))
