"""/readyz, for a load balancer: 200 only while this process can serve (its database answers and
has every migration, its broker answers, its static files are collected), else 503 naming what
is not; 503 too once the process is told to stop. (Through a real gunicorn:
tests/cxhub/test_web_server.py.)"""

import socket

import pytest
from django.db.migrations.recorder import MigrationRecorder

from cxhub import shutdown
from cxhub.health import redacted
from tests.dbroles import as_owner


@pytest.fixture
def draining():
    shutdown.begin_draining()
    yield
    shutdown.reset()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_is_ready_when_the_database_is_migrated_and_the_broker_answers(client, db):
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["failed"] == []
    assert body["checks"]["migrations"] == {"ok": True, "detail": "all applied"}
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_migration_not_applied_makes_it_503_naming_it(client, db):
    latest = MigrationRecorder.Migration.objects.filter(app="publishing").order_by("-id").first()
    with as_owner():  # the application's role may only read django_migrations
        MigrationRecorder.Migration.objects.filter(pk=latest.pk).delete()

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["migrations"]
    assert body["status"] == "not ready: migrations"
    assert f"publishing.{latest.name}" in body["checks"]["migrations"]["detail"]
    assert "manage.py migrate" in body["checks"]["migrations"]["detail"]


def test_an_unreachable_broker_makes_it_503_naming_it_without_its_password(client, db, settings):
    settings.CELERY_BROKER_URL = f"redis://cxhub:s3cret-pw@127.0.0.1:{_closed_port()}/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]
    assert "s3cret-pw" not in response.content.decode()


def test_without_collected_static_files_it_is_503_naming_them(client, db, settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["static"]
    assert "collectstatic" in body["checks"]["static"]["detail"]


def test_once_told_to_stop_it_is_503_while_requests_finish(client, db, draining):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["shutdown"]
    assert response.json()["status"] == "not ready: shutting down"


def test_the_probes_answer_a_balancer_that_names_the_host_by_its_address(client, db):
    """ALLOWED_HOSTS does not list the instance's address, which a balancer's probe sends."""
    assert client.get("/readyz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.head("/readyz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    # Every other path still meets the host check.
    assert client.get("/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400


def test_it_takes_no_writes(client, db):
    assert client.post("/readyz").status_code == 405


def test_urls_quoted_in_an_error_lose_their_credentials():
    detail = "Error connecting to amqp://guest:hunter2@rabbit:5672//: refused"

    assert redacted(detail) == "Error connecting to amqp://…@rabbit:5672//: refused"
