"""Request bodies bounded while they arrive: an upload above the limit is refused with 413 before
it is read, or as soon as the bytes read pass the limit, and is never spooled to disk whole.

One limit, settings.CXHUB_UPLOAD_MAX_BYTES, for a file; a whole request may carry that plus the
form's other fields (DATA_UPLOAD_MAX_MEMORY_SIZE, Django's own limit for them):
- `RequestSizeMiddleware` refuses a declared Content-Length above `request_max_bytes()` without
  reading a byte. A chunked body declares nothing: it is read through a counter up to the limit
  when the server de-chunks it (`wsgi.input_terminated`), and refused with 411 when it does not
  (Django's runserver: such a body cannot be read at all, so it is not taken for an empty one).
  Under ASGI, where Django reads the whole body before any middleware, `bounded_receive`
  (cxhub.asgi) stops receiving past the limit and marks the request for the middleware's 413.
- `UploadLimitHandler`, first of FILE_UPLOAD_HANDLERS, counts each file's bytes as the multipart
  parser streams them and stops at the file limit, before the handlers after it write them.
- Both raise `RequestTooLarge`; the middleware (pages) and `cxhub.api.exception_handler` (API)
  answer any RequestDataTooBig with 413, never Django's default 400.
"""

import asyncio
import tempfile

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

_READ_SIZE = 64 * 1024
# In an ASGI scope: the body was cut at the limit (bounded_receive); the request gets a 413.
_CUT = "cxhub.body_too_large"
_END_OF_BODY = {"type": "http.request", "body": b"", "more_body": False}


def request_max_bytes() -> int:
    """The largest request body accepted: one file at the upload limit plus the other fields."""
    return settings.CXHUB_UPLOAD_MAX_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class RequestTooLarge(RequestDataTooBig):
    """A body or a file above the limit. `field` is the form field when known."""

    def __init__(self, *, limit: int, field: str | None = None):
        self.limit = limit
        self.field = field
        super().__init__(f"The upload is larger than {limit:,} bytes, the most accepted.")


class UploadLimitHandler(FileUploadHandler):
    """Counts each uploaded file's bytes as they stream and stops past the file limit. Installed
    ahead of Django's handlers, so they never receive (nor write to disk) a byte beyond it."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        limit = settings.CXHUB_UPLOAD_MAX_BYTES
        if start + len(raw_data) > limit:
            raise RequestTooLarge(limit=limit, field=self.field_name)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler makes the file


def _declared_length(meta) -> int | None:
    try:
        return int(meta.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def too_large_message(exc: RequestDataTooBig) -> tuple[str, str, int | None]:
    """(message, field, limit) for a body refused as too large."""
    limit = getattr(exc, "limit", None)
    if limit is None:  # Django's own: the form's fields beyond DATA_UPLOAD_MAX_MEMORY_SIZE
        return "The request is too large.", "non_field_errors", None
    field = getattr(exc, "field", None) or "file"
    megabytes = f"{limit / 1_000_000:.1f}".rstrip("0").rstrip(".")
    return (
        f"The file is larger than {megabytes} MB ({limit:,} bytes), the most accepted. "
        "Please upload a smaller or more compressed image.",
        field,
        limit,
    )


def too_large_body(exc: RequestDataTooBig) -> dict:
    """The API's error shape for a refused body."""
    message, field, limit = too_large_message(exc)
    extra: dict = {"fields": {field: [message]}, "code": "too_large"}
    if limit is not None:
        extra["max_bytes"] = limit
    return {"message": message, "extra": extra}


def discard_partial_uploads(request: HttpRequest) -> None:
    """Delete what the upload handlers had written before the refusal, now rather than when the
    request is garbage-collected; and make request.POST/FILES empty, never parsed again from a
    half-read body."""
    for handler in getattr(request, "_upload_handlers", None) or []:
        file = getattr(handler, "file", None)
        if file is not None:
            file.close()
    request._mark_post_parse_error()


def too_large_response(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    discard_partial_uploads(request)
    if request.path_info.startswith("/api/"):
        return JsonResponse(too_large_body(exc), status=413)
    message, _field, limit = too_large_message(exc)
    return render(request, "413.html", {"message": message, "limit": limit}, status=413)


def _spool_terminated_body(request: HttpRequest, limit: int) -> None:
    """Read a body the server de-chunked, counting, into a spool that Django then reads as a
    body of known length. Raises RequestTooLarge once more than `limit` bytes came."""
    source = request.META["wsgi.input"]
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (the request reads it later)
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, dir=settings.FILE_UPLOAD_TEMP_DIR
    )
    size = 0
    while chunk := source.read(_READ_SIZE):
        size += len(chunk)
        if size > limit:
            spool.close()
            raise RequestTooLarge(limit=settings.CXHUB_UPLOAD_MAX_BYTES)
        spool.write(chunk)
    spool.seek(0)
    request.META["CONTENT_LENGTH"] = str(size)
    request._stream = LimitedStream(spool, size)


def bounded_receive(scope: dict, receive):
    """An ASGI `receive` that ends the body once it passes the limit (or at once when its
    declared length does), marking the scope; after that it receives nothing more. A body of
    undeclared length that ends within the limit gets its Content-Length, which Django needs."""
    limit = request_max_bytes()
    headers = dict(scope.get("headers") or [])
    declared = _declared_length({"CONTENT_LENGTH": headers.get(b"content-length", b"").decode()})
    received = 0
    cut = declared is not None and declared > limit
    end_pending = cut
    if cut:
        scope[_CUT] = True

    async def wrapped():
        nonlocal received, cut, end_pending
        if end_pending:
            end_pending = False
            return dict(_END_OF_BODY)
        if cut:
            # Read nothing more: Django cancels this wait once the 413 is sent, and the server
            # drops the connection with the rest of the body unread.
            await asyncio.Future()
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                cut = True
                scope[_CUT] = True
                return dict(_END_OF_BODY)
            if declared is None and received and not message.get("more_body", False):
                # A chunked body, now whole: Django reads only as much as Content-Length says.
                scope["headers"] = [*scope["headers"], (b"content-length", b"%d" % received)]
        return message

    return wrapped


class RequestSizeMiddleware:
    """Placed before anything that reads the body (CsrfViewMiddleware reads POST forms)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = request_max_bytes()
        declared = _declared_length(request.META)
        if (declared is not None and declared > limit) or getattr(request, "scope", {}).get(_CUT):
            return too_large_response(
                request, RequestTooLarge(limit=settings.CXHUB_UPLOAD_MAX_BYTES)
            )
        if declared is None and request.META.get("HTTP_TRANSFER_ENCODING"):
            if "wsgi.input" not in request.META:
                pass  # ASGI: the server de-chunked it, bounded_receive bounded it
            elif not request.META.get("wsgi.input_terminated"):
                return HttpResponse(
                    "A request body needs a Content-Length here.",
                    status=411,
                    content_type="text/plain; charset=utf-8",
                )
            else:
                try:
                    _spool_terminated_body(request, limit)
                except RequestTooLarge as exc:
                    return too_large_response(request, exc)
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        # A page's form is parsed by CsrfViewMiddleware.process_view, where an exception can only
        # become Django's 400: parse it here first, through the same upload handlers. API views
        # (csrf_exempt) parse inside DRF, whose exception handler answers 413.
        if (
            request.method == "POST"
            and request.content_type == "multipart/form-data"
            and not getattr(view_func, "csrf_exempt", False)
        ):
            try:
                request.POST  # noqa: B018 (parsing is the point)
            except RequestDataTooBig as exc:
                return too_large_response(request, exc)
        return None

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig):
            return too_large_response(request, exception)
        return None
