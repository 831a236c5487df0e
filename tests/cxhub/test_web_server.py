"""The production web server, for real: gunicorn with cxhub/gunicorn_conf.py and cxhub.settings
(DEBUG off, the manifest storage after a real `collectstatic`) on the test database, as the
README's "Running in production" starts it. /readyz for the balancer, static files compressed and
cached for ever, WEB_CONCURRENCY workers, a graceful stop on SIGTERM, and a 503 naming the
database when it cannot be reached."""

import gzip
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import brotli
import pytest
from django.db import connection

from tests.integration.dispatch_harness import database_url, wait_until

pytestmark = [pytest.mark.peer, pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    """What the deploy step writes: every app's files, hashed, compressed, and the manifest."""
    root = tmp_path_factory.mktemp("static")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "cxhub.settings", "CXHUB_STATIC_ROOT": root},
        check=True,
        timeout=480,
    )
    return root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn -c python:cxhub.gunicorn_conf <app>` in a process of its own; its output in a
    file (the JSON access log on stdout, gunicorn's messages on stderr)."""

    def __init__(self, tmp_path: Path, *, env: dict, app: str = "cxhub.wsgi"):
        self.log = tmp_path / f"gunicorn-{len(list(tmp_path.glob('gunicorn-*')))}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "python:cxhub.gunicorn_conf", app],
                cwd=REPO,
                env={**os.environ, "CXHUB_BIND": "127.0.0.1:0", **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        found = wait_until(
            lambda: (
                self._exited()
                or re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", self.output())
            ),
            timeout=120,
            what="gunicorn to listen",
            logs=[self.log],
        )
        assert not isinstance(found, str), f"gunicorn exited:\n{self.output()}"
        self.port = int(found.group(1))

    def _exited(self) -> str:
        return "exited" if self.process.poll() is not None else ""

    def output(self) -> str:
        return self.log.read_text()

    def get(self, path: str, headers: dict | None = None, timeout: float = 60):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def workers(self) -> list[int]:
        """The master's children (its workers)."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[1]) == self.process.pid:
                children.append(int(stat.parent.name))
        return children

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start(tmp_path, transactional_db, static_root):
    started = []

    def start_server(*, app: str = "cxhub.wsgi", **env):
        env = {
            "DJANGO_SETTINGS_MODULE": "cxhub.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "CXHUB_STATIC_ROOT": str(static_root),
            "WEB_CONCURRENCY": "1",
            **env,
        }
        server = Gunicorn(tmp_path, env=env, app=app)
        started.append(server)
        return server

    yield start_server
    for server in started:
        server.stop()


def test_it_is_ready_serves_hashed_static_files_compressed_and_runs_web_concurrency_workers(
    start, static_root
):
    server = start(WEB_CONCURRENCY="2")

    # Ready: the database answers and is migrated, the broker answers, the manifest is there.
    status, _, body = server.get("/readyz")
    assert status == 200, body
    ready = json.loads(body)
    assert ready["status"] == "ready"
    assert set(ready["checks"]) == {"database", "migrations", "broker", "static"}
    assert all(check["ok"] for check in ready["checks"].values())

    # Two workers, as WEB_CONCURRENCY says.
    wait_until(lambda: len(server.workers()) == 2, timeout=60, what="two workers")
    assert server.output().count("Booting worker with pid") == 2

    # A file under its hashed name: compressed, and cacheable for a year and more, immutable.
    manifest = json.loads((static_root / "staticfiles.json").read_text())
    hashed = manifest["paths"]["cxhub/cxhub.css"]
    original = (REPO / "static" / "cxhub" / "cxhub.css").read_bytes()
    for encoding, decompress in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        status, headers, body = server.get(
            f"/static/{hashed}", headers={"Accept-Encoding": encoding}
        )
        assert status == 200
        assert headers["Content-Encoding"] == encoding
        assert decompress(body) == original
        cache = headers["Cache-Control"]
        assert "immutable" in cache, cache
        assert int(re.search(r"max-age=(\d+)", cache).group(1)) >= 31536000
        assert "Accept-Encoding" in headers["Vary"]

    # The unhashed name may change under the same URL: cached briefly only.
    status, headers, _ = server.get("/static/cxhub/cxhub.css")
    assert status == 200
    assert "immutable" not in headers["Cache-Control"]

    # The access log: one JSON object a line, on stdout.
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    assert {"method": "GET", "path": "/readyz", "status": 200}.items() <= lines[0].items()


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_connections(start, tmp_path):
    marker = tmp_path / "slow-request-started"
    server = start(app="tests.cxhub.slow_wsgi:application", CXHUB_TEST_SLOW_MARKER=str(marker))
    answer = {}

    def slow_request():
        answer["status"], _, body = server.get("/test/slow", timeout=120)
        answer["body"] = json.loads(body)

    # Given a request in flight,
    client = threading.Thread(target=slow_request)
    client.start()
    wait_until(marker.exists, timeout=60, what="the slow request to arrive", logs=[server.log])

    # when the server is told to stop,
    server.process.send_signal(signal.SIGTERM)
    client.join(timeout=90)

    # the request completes, having seen /readyz turn 503 meanwhile (the balancer drains it),
    assert answer["status"] == 200, server.output()
    assert answer["body"]["draining"] is True
    assert answer["body"]["readyz"]["status"] == 503
    assert answer["body"]["readyz"]["body"]["failed"] == ["shutdown"]
    # no new connection is taken any more,
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", server.port))
    # and the server exits cleanly.
    assert server.process.wait(timeout=60) == 0, server.output()
    assert '"path": "/test/slow", "status": 200' in server.output()


def test_readyz_is_503_naming_the_database_when_it_cannot_be_reached(start):
    unreachable = f"postgres://cxhub@127.0.0.1:{_free_port()}/cxhub"
    server = start(DATABASE_URL=unreachable)

    status, _, body = server.get("/readyz")

    assert status == 503
    answer = json.loads(body)
    assert answer["failed"] == ["database"]
    assert answer["status"] == "not ready: database"
    assert answer["checks"]["database"]["ok"] is False
    assert "migrations" not in answer["checks"]  # not asked of a database that does not answer
    # /healthz (liveness and the rest) still answers, naming it too.
    status, _, body = server.get("/healthz")
    assert status == 503
    assert json.loads(body)["status"] == "down: database"
