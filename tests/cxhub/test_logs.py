"""Log lines (cxhub/logs.py): one JSON object a line, each request's with its request id, taken
from X-Request-ID when sane and echoed back. The worker side is
tests/integration/test_request_id_worker.py."""

import io
import json
import logging

import pytest
from celery import shared_task

from cxhub import logs
from cxhub.logs import JsonFormatter, PlainFormatter


@pytest.fixture
def log_lines():
    """What the root logger writes through the project's configured formatter, as lines."""
    [formatter] = {
        handler.formatter
        for handler in logging.getLogger().handlers
        if isinstance(handler.formatter, JsonFormatter | PlainFormatter)
    }
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: stream.getvalue().splitlines()
    root.removeHandler(handler)


def _request_lines(lines):
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    return [entry for entry in entries if entry["logger"] == "cxhub.request"]


def test_a_request_is_logged_as_json_with_the_id_it_came_with(client, db, log_lines):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a9c")
    assert response["X-Request-ID"] == "edge-7f3a9c"
    [entry] = _request_lines(log_lines())
    assert entry["request_id"] == "edge-7f3a9c"
    assert entry["path"] == "/healthz" and entry["method"] == "GET"
    assert entry["status"] == 200 and entry["duration_ms"] >= 0
    assert entry["level"] == "INFO" and entry["timestamp"].endswith("Z")
    assert entry["user_id"] is None


@pytest.mark.parametrize(
    "given", ["", "has space", "x" * 129, "line\nbreak", "<script>", "-leading-dash"]
)
def test_an_unfit_request_id_is_replaced_by_a_new_one(client, db, log_lines, given):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)
    made = response["X-Request-ID"]
    assert made != given and len(made) == 32 and int(made, 16) >= 0
    [entry] = _request_lines(log_lines())
    assert entry["request_id"] == made


def test_each_request_without_an_id_gets_its_own(client, db, log_lines):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_the_signed_in_person_is_named(client, author, log_lines):
    client.force_login(author)
    client.get("/")
    [entry] = _request_lines(log_lines())
    assert entry["user_id"] == author.pk


def test_a_token_in_the_path_is_not_logged(client, db, log_lines):
    client.get("/password/reset/MQ/secret-reset-token-abc/")
    [entry] = _request_lines(log_lines())
    assert "secret-reset-token-abc" not in json.dumps(entry)
    assert entry["path"] == "/password/reset/MQ/[token]/"


def test_lines_logged_while_a_request_runs_carry_its_id(client, db, log_lines, monkeypatch):
    # django.request logs a 404 as a warning, inside the request
    client.get("/api/v1/no-such-thing/", HTTP_X_REQUEST_ID="req-404")
    entries = [json.loads(line) for line in log_lines()]
    assert {entry["logger"] for entry in entries} >= {"django.request", "cxhub.request"}
    assert {entry["request_id"] for entry in entries} == {"req-404"}


def test_the_plain_format_shows_the_request_id():
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hello"})
    token = logs.request_id_var.set("abc123")
    try:
        line = PlainFormatter().format(record)
    finally:
        logs.request_id_var.reset(token)
    assert line.endswith("INFO x [abc123] hello")


@shared_task(name="tests.logs.echo")
def _echo():
    logging.getLogger("tests.logs").info("inside")
    return logs.current_request_id()


def test_an_eager_task_keeps_its_callers_request_id(log_lines):
    token = logs.request_id_var.set("caller-1")
    try:
        assert _echo.apply().get() == "caller-1"
    finally:
        logs.request_id_var.reset(token)
    entries = [json.loads(line) for line in log_lines()]
    inside = next(entry for entry in entries if entry["message"] == "inside")
    assert inside["request_id"] == "caller-1" and inside["task"] == "tests.logs.echo"
    assert logs.current_request_id() is None
