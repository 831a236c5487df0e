"""API plumbing shared by every app: error shape and pagination.

Every error is `{"message": "...", "extra": {...}}`; validation errors put the field messages
in `extra.fields`, keyed by field name, so a client can show each next to its input.
"""

from base64 import b64decode
from urllib import parse

from django.core.exceptions import FieldDoesNotExist, PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, pagination, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import ApplicationError
from .uploads import discard_partial_uploads, too_large_body

MAX_ID = 2**63 - 1  # ids are bigints; a larger number would overflow the database, not miss


class IdField(serializers.IntegerField):
    """An object's id in input: a whole number from 1 to MAX_ID (a 400 outside, never a 500
    from an integer the database cannot hold)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


def query_id(params, name: str) -> int | None:
    """An id given in the query string (`?team=12`): None when absent or empty, a 400 naming the
    parameter when it is not a whole number from 1 to MAX_ID."""
    value = params.get(name)
    if value in (None, ""):
        return None
    if not (value.isascii() and value.isdecimal() and 1 <= int(value) <= MAX_ID):
        raise ApplicationError(f"{name} must be an id.", {"fields": {name: ["A whole number."]}})
    return int(value)


def id_parameter(name: str, description: str) -> OpenApiParameter:
    """The schema of a query parameter read by `query_id`."""
    return OpenApiParameter(
        name,
        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        description=description + " Not a whole number from 1: a 400 naming it.",
    )


def query_choice(params, name: str, choices) -> str | None:
    """One of `choices` given in the query string; None when absent or empty, else a 400."""
    value = params.get(name)
    if value in (None, ""):
        return None
    if value not in choices:
        raise ApplicationError(
            f"Unknown {name} {value!r}.", {"fields": {name: [f"One of {', '.join(choices)}."]}}
        )
    return value


def query_bool(params, name: str) -> bool | None:
    """`true`/`false` (or `1`/`0`) in the query string; None when absent or empty, else a 400."""
    value = params.get(name)
    if value in (None, ""):
        return None
    if value not in ("true", "false", "1", "0"):
        raise ApplicationError(
            f"{name} must be true or false.", {"fields": {name: ["true or false."]}}
        )
    return value in ("true", "1")


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            inner = _first_message(value)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
        return "Invalid input."
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        response = Response({"message": exc.message, "extra": exc.extra}, status=exc.status)
        if exc.status == 429 and exc.extra.get("retry_after_seconds"):
            response["Retry-After"] = str(exc.extra["retry_after_seconds"])
        return response
    if isinstance(exc, RequestDataTooBig):
        # An upload stopped while it streamed in (cxhub.uploads): 413, not Django's 400.
        discard_partial_uploads(context["request"]._request)
        return Response(too_large_body(exc), status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"message": _first_message(detail), "extra": {"fields": detail}}
    else:
        message = response.data.get("detail") if isinstance(response.data, dict) else None
        response.data = {"message": str(message or exc), "extra": {}}
    return response


class CursorPagination(pagination.CursorPagination):
    """Keyset pages: `{"results": [...], "next": url | null}`; the cost of a page does not grow
    with how deep it is.

    Strict about its parameters: a `page_size` that is not a whole number from 1 to
    `max_page_size`, or a `cursor` that is not one of the `next` links' cursors, is a 400 naming
    the parameter (never silently replaced by the default, never a 500)."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        self._model = getattr(queryset, "model", None)
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        if not (value.isascii() and value.isdecimal() and 1 <= int(value) <= self.max_page_size):
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return int(value)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            tokens = parse.parse_qs(
                b64decode(encoded.encode("ascii"), validate=True).decode("ascii"),
                keep_blank_values=True,
                strict_parsing=True,
            )
            offset = pagination._positive_int(tokens.get("o", ["0"])[0], cutoff=self.offset_cutoff)
            reverse = tokens.get("r", ["0"])[0]
            if reverse not in ("0", "1"):
                raise ValueError(reverse)
            position = tokens.get("p", [None])[0]
            if position is not None:
                self._check_position(position)
        except (TypeError, ValueError, DjangoValidationError):
            raise exceptions.ValidationError(
                {self.cursor_query_param: ["Not a cursor: use the `next` link of a page."]}
            ) from None
        return pagination.Cursor(offset=offset, reverse=reverse == "1", position=position)

    def _check_position(self, position: str) -> None:
        """A position must be a value of the ordering field, or the filter it becomes fails."""
        if self._model is None:
            return
        name = self.ordering[0].lstrip("-")  # set by paginate_queryset before the cursor
        try:
            field = self._model._meta.get_field(name)
        except FieldDoesNotExist:
            return
        value = field.to_python(position)
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ValueError(position)

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: the `cursor` of the previous page's "
                "`next` link. Anything else is a 400.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.page_size}); outside 1 to "
                f"{self.max_page_size} it is a 400, not replaced by the default.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
