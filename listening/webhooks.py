"""Alerts to the agency's chat tool: a watch's webhook is told of each alert raised, by a signed
POST from an outbox (`AlertDelivery`, written with the alert), tried again with a growing wait.

The protocol (what a receiver implements):

- `POST <webhook_url>` with a JSON body `{"event": "alert.raised", "delivery": "<uuid>",
  "alert": {"id", "kind", "status", "watch": {"id", "name"}, "window_start", "window_end",
  "evidence", "url"}}` and the headers `X-Cxhub-Event: alert.raised`,
  `Idempotency-Key: <uuid>` (the same on every try of one delivery), `X-Cxhub-Timestamp: <unix
  seconds>` and `X-Cxhub-Signature: sha256=<hex>`, the HMAC-SHA256, keyed with the watch's
  webhook secret, of `<timestamp>.<body>`. The receiver checks the signature and that the
  timestamp is recent, and keeps each key once.
- Any 2xx takes the delivery. 408, 425, 429 and 5xx, or no answer, are tried again after
  min(CAP, BASE × 2^(tries-1)) seconds, up to CXHUB_LISTENING_WEBHOOK_ATTEMPTS tries; any other
  answer refuses it for good. A delivery that fails for good is audited and its watch's leads
  are told in the app. Redirects are not followed; addresses that are not public are refused
  (as for the networks), except CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS.
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.crypto import decrypt_token, encrypt_token
from accounts.models import User
from accounts.notifications import notify
from audit.services import record
from cxhub.errors import ApplicationError, NotAllowed
from networks.channels.errors import ChannelError, RetryableError, UnknownOutcome
from networks.channels.http import check_server, request

from .models import Alert, AlertDelivery, Watch
from .recipients import alert_url, lead_ids
from .services import may_manage

log = logging.getLogger("cxhub.listening")

EVENT = "alert.raised"
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
_RETRYABLE = {408, 425, 429}


def _field_error(message: str) -> ApplicationError:
    return ApplicationError(message, {"fields": {"webhook_url": [message]}})


@transaction.atomic
def watch_set_webhook(*, by: User, watch: Watch, url: str) -> str:
    """Point the watch's alerts at `url` (a lead of its team), with a new secret, returned once
    for the receiver to keep; "" removes the webhook. Audited (the address, never the secret)."""
    if not may_manage(user=by, watch=watch):
        raise NotAllowed("Only a lead of the watch's team can set its webhook.")
    url = (url or "").strip()
    secret = ""
    if url:
        if len(url) > 500:
            raise _field_error("At most 500 characters.")
        try:
            check_server(url, what="webhook")
        except ChannelError as exc:
            raise _field_error(str(exc)) from None
        secret = secrets.token_urlsafe(32)
    watch.webhook_url = url
    watch.webhook_secret_encrypted = encrypt_token(secret) if secret else ""
    watch.save(update_fields=["webhook_url", "webhook_secret_encrypted", "updated_at"])
    record(
        actor=by,
        action="listening.webhook_set",
        obj=watch,
        team=watch.team,
        data={"webhook_url": url},
    )
    return secret


def delivery_queue(alert: Alert) -> AlertDelivery | None:
    """The alert's delivery to its watch's webhook, written in the caller's transaction and sent
    by a task once it commits; None when the watch has no webhook."""
    watch = alert.watch
    if not watch.webhook_url:
        return None
    delivery = AlertDelivery.objects.create(
        alert=alert, url=watch.webhook_url, key=uuid.uuid4(), next_at=timezone.now()
    )
    transaction.on_commit(lambda: _send_later(delivery.pk))
    return delivery


def _send_later(delivery_id: int) -> None:
    current_app.send_task("listening.tasks.deliver_alert", args=[delivery_id])


def body_of(delivery: AlertDelivery) -> bytes:
    alert = delivery.alert
    payload = {
        "event": EVENT,
        "delivery": str(delivery.key),
        "alert": {
            "id": alert.pk,
            "kind": alert.kind,
            "status": alert.status,
            "watch": {"id": alert.watch_id, "name": alert.watch.name},
            "window_start": alert.window_start,
            "window_end": alert.window_end,
            "evidence": alert.evidence,
            "url": alert_url(alert),
        },
    }
    return json.dumps(payload, cls=DjangoJSONEncoder, sort_keys=True).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def backoff_seconds(attempts: int) -> float:
    return float(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1)))


def deliver(*, delivery_id: int) -> str:
    """Try one delivery that is due: its status after the try ("" when it was not due, or is
    taken by another worker). The POST is made outside any transaction; the row is claimed
    first (its next try moved past the call's timeout), so two workers do not send it at once."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            AlertDelivery.objects.select_for_update(skip_locked=True)
            .select_related("alert__watch")
            .filter(pk=delivery_id, status=AlertDelivery.Status.PENDING, next_at__lte=now)
            .first()
        )
        if delivery is None:
            return ""
        lease = timedelta(seconds=4 * settings.CXHUB_WEBHOOK_TIMEOUT_SECONDS)
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            next_at=now + lease, attempts=delivery.attempts + 1
        )
    delivery.attempts += 1
    watch = delivery.alert.watch
    status, error = None, ""
    try:
        check_server(delivery.url, what="webhook")
        secret = (
            decrypt_token(watch.webhook_secret_encrypted) if watch.webhook_secret_encrypted else ""
        )
        body = body_of(delivery)
        timestamp = str(int(time.time()))
        response = request(
            "POST",
            delivery.url,
            changes=False,  # a repeat is harmless: the receiver keeps each key once
            what="Telling the webhook of an alert",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Cxhub-Event": EVENT,
                "Idempotency-Key": str(delivery.key),
                "X-Cxhub-Timestamp": timestamp,
                "X-Cxhub-Signature": signature(secret, timestamp, body),
            },
            timeout=settings.CXHUB_WEBHOOK_TIMEOUT_SECONDS,
        )
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}: {response.text[:300]}"
    except (RetryableError, UnknownOutcome) as exc:
        error = str(exc)  # no answer: tried again
    except ChannelError as exc:
        error, status = str(exc), 0  # refused before sending (an address not allowed): for good
    return _settle(delivery, status=status, error=error)


def _retryable(status: int | None) -> bool:
    """No answer (None), or an answer that asks to be tried again; 0 is a refusal before
    sending (an address not allowed), for good."""
    return status is None or status in _RETRYABLE or status >= 500


def _settle(delivery: AlertDelivery, *, status: int | None, error: str) -> str:
    now = timezone.now()
    fields: dict[str, object] = {"last_status": status or None, "last_error": error[:2000]}
    if not error:
        fields |= {"status": AlertDelivery.Status.SENT, "sent_at": now}
    elif _retryable(status) and delivery.attempts < settings.CXHUB_LISTENING_WEBHOOK_ATTEMPTS:
        fields |= {"next_at": now + timedelta(seconds=backoff_seconds(delivery.attempts))}
    else:
        fields |= {"status": AlertDelivery.Status.FAILED}
    with transaction.atomic():
        AlertDelivery.objects.filter(pk=delivery.pk).update(**fields)
        alert = delivery.alert
        outcome = fields.get("status")
        if outcome:
            record(
                actor=None,
                action=(
                    "listening.alert_delivered"
                    if outcome == AlertDelivery.Status.SENT
                    else "listening.alert_delivery_failed"
                ),
                obj=alert,
                team=alert.watch.team,
                data={
                    "delivery": str(delivery.key),
                    "url": delivery.url,
                    "attempts": delivery.attempts,
                    "last_status": status,
                    "error": error[:300],
                },
            )
        if outcome == AlertDelivery.Status.FAILED:
            notify(
                users=User.objects.filter(pk__in=lead_ids(alert.watch)),
                kind="listening_webhook_failed",
                title=f"An alert on “{alert.watch.name}” did not reach the webhook",
                body=f"{delivery.url} refused it after {delivery.attempts} tries: {error[:200]}",
                url=alert_url(alert),
            )
    if error:
        log.warning("listening: alert delivery %s: %s", delivery.pk, error[:200])
    return str(fields.get("status", AlertDelivery.Status.PENDING))


def deliveries_due(*, limit: int = 500) -> list[int]:
    """Deliveries whose (next) try is due: a task lost, or a wait over."""
    return list(
        AlertDelivery.objects.filter(
            status=AlertDelivery.Status.PENDING, next_at__lte=timezone.now()
        )
        .order_by("next_at")
        .values_list("pk", flat=True)[:limit]
    )
