"""API plumbing shared by every app: error shape and pagination.

Every error is `{"message": "...", "extra": {...}}`; validation errors put the field messages
in `extra.fields`, keyed by field name, so a client can show each next to its input.
"""

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, pagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import ApplicationError
from .uploads import discard_partial_uploads, too_large_body


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
    with how deep it is."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500

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
