"""Logs an operator can search: one JSON object a line (or plain text for a demo), each carrying
the request id of the web request it belongs to. The id comes from the request's X-Request-ID
(when it is sane) or is made here, goes back in the response's X-Request-ID, and travels in the
headers of every Celery task queued while the request runs, so the task's lines carry it too
(and the tasks those queue, in turn)."""

import contextvars
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from django.utils.functional import SimpleLazyObject, empty

REQUEST_ID_HEADER = "X-Request-ID"
# The Celery message header the id travels in.
TASK_HEADER = "cxhub_request_id"
# Ids others made are kept when they are plain (what proxies and load balancers make: UUIDs,
# hex, base64url), so one id follows a request through them; anything else is replaced, so no
# one writes newlines or markup into the logs through a header.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cxhub_request_id", default=None
)
# The task running in this process (name, id), for its log lines.
task_var: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "cxhub_task", default=None
)

access_log = logging.getLogger("cxhub.request")
task_log = logging.getLogger("cxhub.task")


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(value: str | None) -> str | None:
    """`value` when it may stand as a request id, else None."""
    if value and _SANE_ID.fullmatch(value):
        return value
    return None


def current_request_id() -> str | None:
    return request_id_var.get()


# Formatters ---------------------------------------------------------------------------------

# What every LogRecord has; anything else on a record came through `extra=` and is logged as a
# field of its own. `request` (Django's HttpRequest on django.request's lines) is left out: its
# path is there already and its repr says nothing more.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request",
    "taskName",
}

# Celery's line of a finished task carries the task's arguments as `data`: people's e-mail
# addresses among them, which its plain line never showed.
_LEFT_OUT = frozenset({("celery.app.trace", "data")})


def _context(record: logging.LogRecord) -> dict:
    fields = {}
    # django.request logs a 4xx or 5xx once every middleware has returned: its record carries
    # the request, and the request its id.
    request_id = (
        getattr(record, "request_id", None)
        or getattr(getattr(record, "request", None), "request_id", None)
        or request_id_var.get()
    )
    if request_id:
        fields["request_id"] = request_id
    task = task_var.get()
    if task is not None:
        fields["task"], fields["task_id"] = task
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object a line: timestamp (UTC), level, logger, message, the request id and task
    of the context, and whatever the line was given with `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context(record))
        for key, value in record.__dict__.items():
            if (
                key not in _RECORD_FIELDS
                and key not in entry
                and (record.name, key) not in _LEFT_OUT
            ):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Lines for people (`make run`): time, level, logger, [request id], message."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        context = _context(record)
        record.request_id = context.get("request_id", "-")
        return super().format(record)


# The web side ---------------------------------------------------------------------------------


def _user_id(request) -> int | None:
    """The signed-in person's id, when something in the request already looked them up (reading
    request.user here would cost a session query on requests that never needed one)."""
    user = request.__dict__.get("user")
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    return user.pk if getattr(user, "is_authenticated", False) else None


def _logged_path(request) -> str:
    """The path, with any secret the URL carries (a password reset token) replaced."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    if match is not None:
        for name, value in match.kwargs.items():
            if "token" in name and isinstance(value, str) and value:
                path = path.replace(value, "[token]")
    return path


class RequestLogMiddleware:
    """Outermost: gives the request its id (request.request_id), answers with it, and logs one
    line per request: method, path, status, duration in ms, the person where known."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            status = response.status_code
            access_log.log(
                logging.WARNING if status >= 500 else logging.INFO,
                "%s %s %s",
                request.method,
                _logged_path(request),
                status,
                extra={
                    "method": request.method,
                    "path": _logged_path(request),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user_id": _user_id(request),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


# The Celery side: connected by cxhub/celery.py ------------------------------------------------

_running: dict[str, tuple[contextvars.Token, contextvars.Token, float]] = {}


def on_before_task_publish(headers=None, **kwargs) -> None:
    """A task queued while a request (or a task) runs carries its request id."""
    request_id = request_id_var.get()
    if request_id and headers is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


def on_task_prerun(task_id=None, task=None, **kwargs) -> None:
    """The task's lines carry the id it was queued with (an eager task keeps its caller's)."""
    carried = sane_request_id(getattr(task.request, TASK_HEADER, None))
    request_token = request_id_var.set(carried or request_id_var.get())
    task_token = task_var.set((task.name, task_id))
    _running[task_id] = (request_token, task_token, time.perf_counter())


def on_task_postrun(task_id=None, task=None, state=None, **kwargs) -> None:
    """One line per task run, in its context: name, id, state, duration in ms."""
    running = _running.pop(task_id, None)
    if running is None:
        return
    request_token, task_token, started = running
    try:
        task_log.info(
            "task %s %s",
            task.name,
            state,
            extra={"state": state, "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
        )
    finally:
        task_var.reset(task_token)
        request_id_var.reset(request_token)
