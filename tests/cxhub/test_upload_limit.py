"""Oversize uploads are refused with 413 while they arrive, through real HTTP servers: the bytes
the application read before answering are counted (tests/cxhub/counting_wsgi.py), and so is the
largest temporary file it had written. Bodies are generated lazily and are far above the limit.

The limit is lowered to 1 MB for a file (so a whole request may be 1 MB plus Django's 2.5 MB for
the other fields); the servers: wsgiref in a thread (declared lengths), gunicorn in its own
process (chunked bodies, which it de-chunks for the application)."""

import asyncio
import http.client
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test import Client

from networks.channels import all_channels
from publishing.models import Media
from tests.integration.dispatch_harness import database_url

from ..publishing.media.images import encode, noisy_rgb
from .counting_wsgi import counting, largest_temp_file

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

REPO = Path(__file__).resolve().parents[2]
LIMIT = 1_000_000
REQUEST_LIMIT = LIMIT + 2_621_440  # + DATA_UPLOAD_MAX_MEMORY_SIZE
# What the application may read beyond a limit before it notices: a few read chunks (64 KiB) and
# the multipart headers.
MARGIN = 256 * 1024
HUGE = 10 * REQUEST_LIMIT  # ten times what a whole request may be
PIECE = 64 * 1024
CSRF = "a" * 32  # an unmasked CSRF secret, sent as cookie and header
BOUNDARY = "cxhubtestboundary7d3f"


# --- The client: sends lazily, stops as soon as the server answers ------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    sent: int  # body bytes the client managed to hand to its socket

    @property
    def read_by_app(self) -> int:
        return int(self.headers["X-Test-Body-Read"])

    @property
    def largest_temp_file(self) -> int:
        return int(self.headers["X-Test-Temp-Largest"])


def exchange(
    port: int,
    path: str,
    *,
    content_type: str,
    body: Iterator[bytes],
    length: int | None,
    cookies: str = "",
    headers: dict | None = None,
) -> Answer:
    """POST `body` (pieces from a generator) with a declared `length`, or chunked when None."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Type: {content_type}"]
    head.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    if cookies:
        head.append(f"Cookie: {cookies}")
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = 0
    for piece in body:
        answered, _, _ = select.select([sock], [], [], 0)
        if answered:
            break  # the server has answered: no point sending the rest
        frame = piece if length is not None else b"%x\r\n%s\r\n" % (len(piece), piece)
        try:
            sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
    else:
        if length is None:
            sock.sendall(b"0\r\n\r\n")
    response = http.client.HTTPResponse(sock)
    response.begin()
    answer = Answer(response.status, response.headers, response.read(), sent)
    sock.close()
    return answer


def zeros(size: int) -> Iterator[bytes]:
    while size > 0:
        yield bytes(min(PIECE, size))
        size -= PIECE


def multipart(field: str, file: Iterator[bytes], *, fields: dict | None = None) -> Iterator[bytes]:
    for name, value in (fields or {}).items():
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    yield from file
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def multipart_length(field: str, file_size: int, *, fields: dict | None = None) -> int:
    return sum(len(piece) for piece in multipart(field, iter([bytes(file_size)]), fields=fields))


FORM = f"multipart/form-data; boundary={BOUNDARY}"


def signed_in(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}; csrftoken={CSRF}"


# --- Servers ------------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@pytest.fixture
def limits(settings, tmp_path):
    settings.CXHUB_UPLOAD_MAX_BYTES = LIMIT
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    settings.MEDIA_ROOT = tmp_path / "media"
    os.mkdir(settings.FILE_UPLOAD_TEMP_DIR)
    return settings


@pytest.fixture
def wsgiref_port(limits, transactional_db):
    """cxhub's WSGI application behind the standard library's HTTP server, in a thread."""
    server = _ThreadingServer(("127.0.0.1", 0), _QuietHandler)
    server.set_app(counting(WSGIHandler()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def gunicorn_port(limits, transactional_db):
    """cxhub behind gunicorn (sync worker), its own process on the test database: gunicorn
    de-chunks a chunked body and streams it to the application as it arrives."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CXHUB_UPLOAD_MAX_BYTES": str(LIMIT),
        "CXHUB_UPLOAD_TEMP_DIR": limits.FILE_UPLOAD_TEMP_DIR,
        "CXHUB_MEDIA_ROOT": str(limits.MEDIA_ROOT),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "1",
            "tests.cxhub.counting_wsgi:make_application()",
        ],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        log = []
        for line in process.stderr:  # ends if gunicorn dies
            log.append(line)
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "gunicorn did not start:\n" + "".join(log)
        # Keep its log flowing, so that a full pipe never blocks it.
        threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
        yield port
    finally:
        process.terminate()
        process.wait(timeout=60)


# --- The limit ----------------------------------------------------------------------------------


def test_the_default_limit_admits_the_heaviest_image_any_network_takes():
    from cxhub import settings as project_settings

    heaviest = max(
        max(channel.limits.max_image_bytes, channel.limits.max_gif_bytes or 0)
        for channel in all_channels()
    )
    limit = project_settings.CXHUB_UPLOAD_MAX_BYTES
    # and no more than a quarter above it: the limit follows the networks, it is not arbitrary
    assert heaviest <= limit <= heaviest * 1.25


# --- A declared length above the limit: refused unread ------------------------------------------


def test_api_refuses_a_declared_oversize_upload_without_reading_it(wsgiref_port, author):
    total = multipart_length("file", HUGE, fields={"alt_text": "A rocket"})

    answer = exchange(
        wsgiref_port,
        "/api/v1/media/",
        content_type=FORM,
        body=multipart("file", zeros(HUGE), fields={"alt_text": "A rocket"}),
        length=total,
        cookies=signed_in(author),
        headers={"X-CSRFToken": CSRF},
    )

    assert answer.status == 413
    assert answer.read_by_app == 0
    assert answer.largest_temp_file == 0
    assert answer.sent < total  # the client could stop early
    error = json.loads(answer.body)
    assert error["extra"]["fields"]["file"] == [error["message"]]
    assert "1,000,000 bytes" in error["message"]
    assert error["extra"]["max_bytes"] == LIMIT
    assert not Media.objects.exists()


def test_page_refuses_a_declared_oversize_upload_without_reading_it(wsgiref_port, author):
    total = multipart_length("image", HUGE)

    answer = exchange(
        wsgiref_port,
        "/posts/new/",
        content_type=FORM,
        body=multipart("image", zeros(HUGE)),
        length=total,
        cookies=signed_in(author),
    )

    assert answer.status == 413
    assert answer.headers["Content-Type"].startswith("text/html")
    assert b"Upload too large" in answer.body
    assert b"1,000,000 bytes" in answer.body
    assert answer.read_by_app == 0
    assert answer.largest_temp_file == 0


def test_a_json_body_above_the_limit_is_refused_unread_too(wsgiref_port, author):
    answer = exchange(
        wsgiref_port,
        "/api/v1/posts/",
        content_type="application/json",
        body=zeros(HUGE),
        length=HUGE,
        cookies=signed_in(author),
        headers={"X-CSRFToken": CSRF},
    )

    assert answer.status == 413
    assert answer.read_by_app == 0


# --- A file that grows past the limit while it streams ------------------------------------------


def test_api_stops_reading_a_file_once_it_passes_the_limit(wsgiref_port, limits, author):
    size = 3 * LIMIT  # the request itself is within what a request may be: only the file is big
    total = multipart_length("file", size, fields={"alt_text": "A rocket"})
    assert total < REQUEST_LIMIT

    answer = exchange(
        wsgiref_port,
        "/api/v1/media/",
        content_type=FORM,
        body=multipart("file", zeros(size), fields={"alt_text": "A rocket"}),
        length=total,
        cookies=signed_in(author),
        headers={"X-CSRFToken": CSRF},
    )

    assert answer.status == 413
    assert LIMIT < answer.read_by_app <= LIMIT + MARGIN
    # Django spooled this upload to disk (it is above FILE_UPLOAD_MAX_MEMORY_SIZE), but never
    # a byte past the limit; and the partial file is gone once the answer is out.
    assert answer.largest_temp_file <= LIMIT
    assert os.listdir(limits.FILE_UPLOAD_TEMP_DIR) == []
    error = json.loads(answer.body)
    assert list(error["extra"]["fields"]) == ["file"]
    assert not Media.objects.exists()


def test_page_stops_reading_an_image_once_it_passes_the_limit(wsgiref_port, author):
    size = 3 * LIMIT
    fields = {"csrfmiddlewaretoken": CSRF, "body": "Launch day", "image_alt": "A rocket"}
    total = multipart_length("image", size, fields=fields)

    answer = exchange(
        wsgiref_port,
        "/posts/new/",
        content_type=FORM,
        body=multipart("image", zeros(size), fields=fields),
        length=total,
        cookies=signed_in(author),
    )

    assert answer.status == 413
    assert b"Upload too large" in answer.body
    assert LIMIT < answer.read_by_app <= LIMIT + MARGIN
    assert answer.largest_temp_file <= LIMIT
    assert not Media.objects.exists()


def test_an_upload_within_the_limit_still_goes_through_the_real_server(wsgiref_port, author):
    image = encode(noisy_rgb(300, 200), "JPEG")
    chunks = multipart("file", iter([image]), fields={"alt_text": "Noise, for testing"})
    total = multipart_length("file", len(image), fields={"alt_text": "Noise, for testing"})

    answer = exchange(
        wsgiref_port,
        "/api/v1/media/",
        content_type=FORM,
        body=chunks,
        length=total,
        cookies=signed_in(author),
        headers={"X-CSRFToken": CSRF},
    )

    assert answer.status == 201, answer.body
    assert Media.objects.get().width == 300


# --- Chunked bodies: no length to declare -------------------------------------------------------


def test_a_chunked_upload_past_the_limit_is_refused_after_reading_at_most_the_limit(
    gunicorn_port, author
):
    answer = exchange(
        gunicorn_port,
        "/api/v1/media/",
        content_type=FORM,
        body=multipart("file", zeros(HUGE), fields={"alt_text": "A rocket"}),
        length=None,
        cookies=signed_in(author),
        headers={"X-CSRFToken": CSRF},
    )

    assert answer.status == 413
    assert REQUEST_LIMIT < answer.read_by_app <= REQUEST_LIMIT + MARGIN
    assert answer.sent < HUGE
    error = json.loads(answer.body)
    assert list(error["extra"]["fields"]) == ["file"]
    assert not Media.objects.exists()


def test_a_chunked_page_upload_past_the_limit_gets_the_413_page(gunicorn_port, author):
    answer = exchange(
        gunicorn_port,
        "/posts/new/",
        content_type=FORM,
        body=multipart("image", zeros(HUGE)),
        length=None,
        cookies=signed_in(author),
    )

    assert answer.status == 413
    assert b"Upload too large" in answer.body
    assert answer.read_by_app <= REQUEST_LIMIT + MARGIN


def test_a_chunked_upload_within_the_limit_is_accepted(gunicorn_port, author):
    image = encode(noisy_rgb(300, 200), "JPEG")

    answer = exchange(
        gunicorn_port,
        "/api/v1/media/",
        content_type=FORM,
        body=multipart("file", iter([image]), fields={"alt_text": "Noise, for testing"}),
        length=None,
        cookies=signed_in(author),
        headers={"X-CSRFToken": CSRF},
    )

    assert answer.status == 201, answer.body
    assert Media.objects.get().width == 300


def test_a_server_that_cannot_dechunk_gets_411_not_an_empty_body(wsgiref_port, author):
    answer = exchange(
        wsgiref_port,
        "/api/v1/media/",
        content_type=FORM,
        body=multipart("file", zeros(HUGE), fields={"alt_text": "A rocket"}),
        length=None,
        cookies=signed_in(author),
        headers={"X-CSRFToken": CSRF},
    )

    assert answer.status == 411
    assert answer.read_by_app == 0


# --- Django's own limit on the other fields is a 413 as well -----------------------------------


def test_form_fields_beyond_djangos_limit_are_413_not_400(limits, author):
    client = Client()
    client.force_login(author)

    response = client.post("/posts/new/", {"body": "x" * 3_000_000, "image_alt": ""})

    assert response.status_code == 413


# --- ASGI: Django reads the body before the middleware; cxhub.asgi stops it at the limit ---------


def asgi_post(
    path: str, body: Iterator[bytes], *, length: int | None, extra_headers=()
) -> tuple[list, int]:
    """Call cxhub's ASGI application as a server would: the body in messages pulled one at a
    time. Returns what it sent and how many body bytes it pulled."""
    from cxhub.asgi import BoundedASGIHandler

    headers = [(b"content-type", FORM.encode()), (b"host", b"127.0.0.1"), *extra_headers]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    pulled = 0
    pieces = iter(body)
    following = next(pieces, None)
    done = asyncio.Event()
    sent = []

    async def receive():
        nonlocal pulled, following
        piece, following = following, next(pieces, None)
        if piece is None:
            await done.wait()  # the body is over: nothing more until the client goes
            return {"type": "http.disconnect"}
        pulled += len(piece)
        return {"type": "http.request", "body": piece, "more_body": following is not None}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    asyncio.run(BoundedASGIHandler()(scope, receive, send))
    return sent, pulled


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "chunked"])
def test_asgi_stops_receiving_an_upload_past_the_limit(limits, declared):
    total = multipart_length("file", HUGE)

    sent, pulled = asgi_post(
        "/api/v1/media/", multipart("file", zeros(HUGE)), length=total if declared else None
    )

    assert sent[0]["status"] == 413
    assert pulled <= (0 if declared else REQUEST_LIMIT + PIECE)
    error = json.loads(b"".join(message.get("body", b"") for message in sent[1:]))
    assert list(error["extra"]["fields"]) == ["file"]
    assert largest_temp_file() == 0


def test_asgi_still_takes_an_upload_within_the_limit(limits, transactional_db, author):
    image = encode(noisy_rgb(300, 200), "JPEG")
    fields = {"alt_text": "Noise, for testing"}

    sent, pulled = asgi_post(
        "/api/v1/media/",
        multipart("file", iter([image]), fields=fields),
        length=None,
        extra_headers=[(b"cookie", signed_in(author).encode()), (b"x-csrftoken", CSRF.encode())],
    )

    assert sent[0]["status"] == 201, sent
    assert pulled == multipart_length("file", len(image), fields=fields)
    assert Media.objects.get().width == 300


def test_a_file_past_the_limit_is_413_when_drf_parses_it_in_the_view(limits, author):
    """Signed in by token, not session: no CSRF check parses the form early, the view does."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(author)

    response = client.post(
        "/api/v1/media/",
        {"file": SimpleUploadedFile("big.png", bytes(2 * LIMIT)), "alt_text": "A rocket"},
        format="multipart",
    )

    assert response.status_code == 413
    assert list(response.json()["extra"]["fields"]) == ["file"]
    assert os.listdir(limits.FILE_UPLOAD_TEMP_DIR) == []
