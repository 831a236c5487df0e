"""What operators read, from real processes: gunicorn (two workers, multiprocess metrics) and a
Celery worker (prefork) on the test's database and the pass's broker. A request's id is found
again in the log of the task it queued, run by the worker; /metrics adds up the requests every
gunicorn worker answered."""

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from ..factories import UserFactory
from .dispatch_harness import REPO, Worker, database_url, purge, wait_until, worker_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

TOKEN = "integration-metrics-token-" + "t" * 32


def _json_lines(path: Path) -> list[dict]:
    """The log's lines that are JSON objects (a worker also prints a banner and the console
    e-mail backend's messages)."""
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


class Gunicorn:
    def __init__(self, env: dict, workdir: Path, workers: int = 2):
        self.log = workdir / "gunicorn.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "python:cxhub.gunicorn_conf",  # its hooks keep /metrics right
                    "--bind",
                    "127.0.0.1:0",
                    "--workers",
                    str(workers),
                    "cxhub.wsgi:application",
                ],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        found = wait_until(
            lambda: (
                re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", self.log.read_text())
                or self.process.poll() is not None
            ),
            timeout=60,
            what="gunicorn to listen",
            logs=[self.log],
        )
        assert self.process.poll() is None, self.log.read_text()
        self.url = f"http://127.0.0.1:{found.group(1)}"
        self.workers = workers
        wait_until(
            lambda: self.log.read_text().count("Booting worker") >= workers,
            timeout=60,
            what="gunicorn's workers",
            logs=[self.log],
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=10)


@pytest.fixture
def stack(tmp_path):
    broker = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
    purge(broker)
    env = worker_env(
        database=database_url(connection.settings_dict),
        broker=broker,
        var_dir=tmp_path / "var",
        CXHUB_METRICS_TOKEN=TOKEN,
        CXHUB_LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
    )
    started = []
    try:
        worker = Worker(env, tmp_path, name="logs", concurrency=1, beat=False)
        started.append(worker)
        worker.start()
        web = Gunicorn(env, tmp_path)
        started.append(web)
        yield web, worker, tmp_path / "prometheus"
    finally:
        for process in reversed(started):
            process.stop()
        purge(broker)


def test_the_request_id_is_found_again_in_the_log_of_the_task_it_queued(stack):
    web, worker, _ = stack
    UserFactory(username="alice", email="alice@example.org")
    request_id = f"itest-{uuid.uuid4().hex}"

    # Given a person asking for a password reset link (the page queues the e-mail's task)
    session = requests.Session()
    form = session.get(f"{web.url}/password/reset/", timeout=30)
    assert form.status_code == 200
    response = session.post(
        f"{web.url}/password/reset/",
        data={"email": "alice@example.org", "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"X-Request-ID": request_id},
        allow_redirects=False,
        timeout=30,
    )

    # Then the answer carries the id, and the web's log line is JSON with it
    assert response.status_code == 302, response.text[:500]
    assert response.headers["X-Request-ID"] == request_id
    [line] = wait_until(
        lambda: [
            e
            for e in _json_lines(web.log)
            if e.get("request_id") == request_id and e["logger"] == "cxhub.request"
        ],
        timeout=30,
        what="the web's log line of the request",
        logs=[web.log],
    )
    assert line["path"] == "/password/reset/" and line["status"] == 302

    # and the worker that ran the task logs it with the same id
    task_lines = wait_until(
        lambda: [
            e
            for e in _json_lines(worker.log)
            if e.get("task") == "accounts.tasks.send_password_reset"
            and e.get("logger") == "cxhub.task"
        ],
        timeout=60,
        what="the worker's log line of the task",
        logs=[worker.log, web.log],
    )
    [done] = task_lines
    assert done["request_id"] == request_id
    assert done["state"] == "SUCCESS" and done["task_id"]
    # (Celery's own line of the task, in the same context, carries it too)
    assert any(
        e.get("request_id") == request_id and e["logger"].startswith("celery")
        for e in _json_lines(worker.log)
    )


def _requests_answered(families, route: str) -> float:
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "cxhub_http_requests_total" and sample.labels["route"] == route
    )


def test_metrics_add_up_the_requests_of_every_web_worker(stack):
    web, _, folder = stack
    answered = 24
    for _ in range(answered):
        # a new connection each: either gunicorn worker may take it
        assert requests.get(f"{web.url}/healthz", timeout=30).status_code == 200

    # Whichever worker answers the scrape, it counts every worker's requests
    for _ in range(4):
        response = requests.get(
            f"{web.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        assert response.status_code == 200
        families = list(text_string_to_metric_families(response.text))
        assert _requests_answered(families, "healthz") == answered
    assert list(folder.glob("counter_*.db"))  # the counts live in the shared folder

    assert requests.get(f"{web.url}/metrics", timeout=30).status_code == 401
