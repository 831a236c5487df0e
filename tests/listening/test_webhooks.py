"""Alerts to the agency's chat tool (listening/webhooks.py): a signed POST to a receiver on
127.0.0.1 that fails, recovers and receives each alert once (one key over every try); a receiver
that refuses for good fails the delivery, audited, and the leads are told."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from accounts.models import Notification
from audit.models import AuditEvent
from listening import alerts, services, webhooks
from listening.models import AlertDelivery

from .conftest import T0, public

pytestmark = pytest.mark.django_db


class Receiver:
    """An HTTP endpoint on 127.0.0.1 answering each POST with the next of `answers` (then 200),
    keeping what it was sent, and each Idempotency-Key once."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.requests: list[dict] = []
        self.kept: dict[str, dict] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                status = receiver.answers.pop(0) if receiver.answers else 200
                if status == 200:
                    receiver.kept.setdefault(self.headers["Idempotency-Key"], json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    made = []

    def make(answers=()):
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for one in made:
        one.stop()


@pytest.fixture
def queued(monkeypatch):
    """The deliveries a committed alert queues as tasks."""
    ids: list[int] = []
    monkeypatch.setattr(webhooks, "_send_later", ids.append)
    return ids


@pytest.fixture
def raise_alert(django_capture_on_commit_callbacks):
    """A false-claim alert on `watch`, raised and committed (its on-commit work done)."""

    def make(watch, lead):
        services.claim_create(by=lead, watch=watch, claim="Fake fines", terms=["fine"])
        stored = services.posts_store(
            watch=watch, network="x", posts=[public("census fine text", at=T0)]
        )
        with django_capture_on_commit_callbacks(execute=True):
            [alert] = alerts.claims_matched(watch, stored.claims)
        return alert

    return make


def _due_now(delivery_id):
    AlertDelivery.objects.filter(pk=delivery_id).update(next_at=timezone.now())


def test_a_receiver_that_fails_then_recovers_receives_the_alert_once_signed(
    watch, north_lead, receiver, queued, raise_alert
):
    endpoint = receiver([503])
    secret = webhooks.watch_set_webhook(by=north_lead, watch=watch, url=endpoint.url)
    alert = raise_alert(watch, north_lead)
    [delivery_id] = queued

    assert webhooks.deliver(delivery_id=delivery_id) == "pending"
    waiting = AlertDelivery.objects.get(pk=delivery_id)
    assert (waiting.attempts, waiting.last_status) == (1, 503)
    assert waiting.next_at > timezone.now() + timedelta(seconds=20)
    assert webhooks.deliver(delivery_id=delivery_id) == ""  # not due yet: nothing sent
    _due_now(delivery_id)
    assert webhooks.deliveries_due() == [delivery_id]
    assert webhooks.deliver(delivery_id=delivery_id) == "sent"

    assert len(endpoint.requests) == 2
    keys = {request["headers"]["Idempotency-Key"] for request in endpoint.requests}
    assert len(keys) == 1 and len(endpoint.kept) == 1
    last = endpoint.requests[-1]
    timestamp = last["headers"]["X-Cxhub-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + last["body"], hashlib.sha256)
    assert last["headers"]["X-Cxhub-Signature"] == "sha256=" + expected.hexdigest()
    [body] = endpoint.kept.values()
    assert body["event"] == "alert.raised"
    assert (body["alert"]["id"], body["alert"]["kind"]) == (alert.pk, "false_claim")
    assert body["alert"]["evidence"]["observed"] == 1
    assert webhooks.deliveries_due() == []
    assert AuditEvent.objects.filter(action="listening.alert_delivered").count() == 1


def test_a_receiver_that_refuses_fails_the_delivery_and_the_leads_are_told(
    watch, north_lead, receiver, queued, raise_alert
):
    endpoint = receiver([400])
    webhooks.watch_set_webhook(by=north_lead, watch=watch, url=endpoint.url)
    raise_alert(watch, north_lead)
    [delivery_id] = queued

    assert webhooks.deliver(delivery_id=delivery_id) == "failed"

    assert len(endpoint.requests) == 1
    event = AuditEvent.objects.get(action="listening.alert_delivery_failed")
    assert event.data["last_status"] == 400
    assert Notification.objects.filter(user=north_lead, kind="listening_webhook_failed").exists()


def test_the_tries_run_out(watch, north_lead, receiver, queued, raise_alert, settings):
    settings.CXHUB_LISTENING_WEBHOOK_ATTEMPTS = 3
    endpoint = receiver([500, 502, 503, 200])
    webhooks.watch_set_webhook(by=north_lead, watch=watch, url=endpoint.url)
    raise_alert(watch, north_lead)
    [delivery_id] = queued

    outcomes = []
    for _ in range(3):
        _due_now(delivery_id)
        outcomes.append(webhooks.deliver(delivery_id=delivery_id))

    assert outcomes == ["pending", "pending", "failed"]
    assert AlertDelivery.objects.get(pk=delivery_id).attempts == 3


def test_a_webhook_on_an_internal_address_is_refused_naming_the_field(watch, north_lead):
    with pytest.raises(services.ApplicationError) as caught:
        webhooks.watch_set_webhook(by=north_lead, watch=watch, url="http://10.0.0.5/hook")

    assert "webhook_url" in caught.value.extra["fields"]
    watch.refresh_from_db()
    assert watch.webhook_url == ""


def test_without_a_webhook_no_delivery_is_written(watch, north_lead, queued, raise_alert):
    raise_alert(watch, north_lead)

    assert queued == [] and not AlertDelivery.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1",
        "https://chat.example:70000/hook",
        "https://chat..example/hook",
        "https://" + "a" * 70 + ".example/hook",
        "ftp://chat.example/hook",
    ],
)
def test_a_malformed_webhook_address_is_refused_naming_the_field(watch, north_lead, url):
    with pytest.raises(services.ApplicationError) as caught:
        webhooks.watch_set_webhook(by=north_lead, watch=watch, url=url)

    assert "webhook_url" in caught.value.extra["fields"]
