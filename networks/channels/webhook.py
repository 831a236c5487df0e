"""The organisation's own sites, reached by a signed webhook: our own generous limits (there is
no network to cite), so that a long announcement with a gallery goes through.

The protocol (what a receiving site implements):

- Publish: `POST <account base_url>` with a JSON body
  `{"idempotency_key", "account": {"handle", "external_id"}, "text", "media": [...]}` and the
  headers `Idempotency-Key: <uuid>`, `X-Cxhub-Timestamp: <unix seconds>` and
  `X-Cxhub-Signature: sha256=<hex>`, the HMAC-SHA256, keyed with the account's access token, of
  `<timestamp>.<body>`. The receiver checks the signature and that the timestamp is recent, and
  stores each idempotency key once: a second POST with a key it has seen answers the first
  result again. Answer 2xx with `{"id": "…", "url": "…"}`; 429 (with Retry-After, in seconds
  or as an HTTP date) to be tried again; 401 when the signature fails (the account needs a new
  secret); any other 4xx refuses the post for good. A 5xx is an unknown outcome (the site may
  have stored the post before failing): cxhub asks (below) before it sends again. Redirects are
  not followed.
- Reconcile: `GET <base_url>?idempotency_key=<uuid>` with the same headers, the signature made
  over `<timestamp>.<uuid>`. Answer 200 `{"id", "url"}` when that key was published, 404 when
  it was not. The look-up is by key: no text is compared, so no post can be taken for another.

Every call has a connect and read timeout (CXHUB_WEBHOOK_TIMEOUT_SECONDS). A timeout or a broken
connection after the request went out, or a 5xx, is an unknown outcome: dispatch reconciles
before it sends again. Addresses that are not public are refused, except the networks listed in
CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

import requests
from django.conf import settings

from .base import Channel, Limits, ReconcileHints
from .errors import AuthExpired, RetryableError, UnknownOutcome
from .http import (
    Published,
    check_server,
    error_for_status,
    http_session,
    not_sent,
    retry_after_seconds,
)

USER_AGENT = "cxhub-webhook/1"


def sign(secret: str, timestamp: str, payload: bytes) -> str:
    """The signature header's value for `payload` (the body, or the key of a reconcile)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _check_destination(url: str) -> None:
    """Refuse a URL that is not http(s), or whose host resolves to a non-public address."""
    check_server(url, what="webhook")


def _timeout() -> float:
    return float(settings.CXHUB_WEBHOOK_TIMEOUT_SECONDS)


def _result(response: requests.Response, key: str) -> Published:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    return Published(
        external_id=str(data.get("id") or key)[:255],
        external_url=str(data.get("url") or "")[:2000],
        http_status=response.status_code,
    )


def _refusal(response: requests.Response, what: str, *, changes: bool = False) -> Exception:
    status = response.status_code
    detail = f"{what}: HTTP {status} {response.text[:300]!r}"
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    return error_for_status(status, detail, retry_after=wait, changes=changes)


class WebhookChannel(Channel):
    name = "webhook"
    label = "Webhook"
    limits = Limits(
        max_text=100_000,
        text_unit="characters",
        max_text_bytes=None,
        max_media=10,
        media_formats=frozenset({"JPEG", "PNG", "GIF", "WEBP"}),
        max_image_bytes=20 * 1024 * 1024,
        max_alt_text=5_000,
    )
    # Set up by an admin (the site's address and signing secret), no sign-in at a network.
    connect_method = "none"

    def _headers(self, account: Any, key: str, signed: bytes) -> dict[str, str]:
        secret = account.access_token
        if not secret:
            raise AuthExpired("The webhook account has no signing secret; reconnect it.")
        timestamp = str(int(time.time()))
        return {
            "User-Agent": USER_AGENT,
            "Idempotency-Key": key,
            "X-Cxhub-Timestamp": timestamp,
            "X-Cxhub-Signature": sign(secret, timestamp, signed),
        }

    def publish(
        self, account: Any, text: str, media: Sequence[Any], *, idempotency_key: str
    ) -> Published:
        url = account.base_url
        _check_destination(url)
        key = str(idempotency_key)
        body = json.dumps(
            {
                "idempotency_key": key,
                "account": {"handle": account.handle, "external_id": account.external_id},
                "text": text,
                "media": list(media),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = self._headers(account, key, body)
        headers["Content-Type"] = "application/json"
        try:
            response = http_session().post(
                url, data=body, headers=headers, timeout=_timeout(), allow_redirects=False
            )
        except requests.ConnectionError as exc:
            if not_sent(exc):
                raise RetryableError(f"Could not connect: {exc}") from exc
            raise UnknownOutcome(f"The connection broke after sending: {exc}") from exc
        except requests.Timeout as exc:  # a read timeout: the request went out
            raise UnknownOutcome(f"No answer within {_timeout():g} s: {exc}") from exc
        except requests.RequestException as exc:
            raise UnknownOutcome(f"The request failed: {exc}") from exc
        if 200 <= response.status_code < 300:
            return _result(response, key)
        raise _refusal(response, "The webhook refused the post", changes=True)

    def reconcile(
        self,
        account: Any,
        text: str,
        *,
        idempotency_key: str,
        hints: ReconcileHints | None = None,
    ) -> Published | None:
        url = account.base_url
        _check_destination(url)
        key = str(idempotency_key)
        headers = self._headers(account, key, key.encode())
        try:
            response = http_session().get(
                url,
                params={"idempotency_key": key},
                headers=headers,
                timeout=_timeout(),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            # Asking changes nothing: whatever broke, ask again later.
            raise RetryableError(f"Could not ask the webhook about {key}: {exc}") from exc
        if response.status_code == 404:
            return None
        if 200 <= response.status_code < 300:
            return _result(response, key)
        raise _refusal(response, "The webhook did not answer the reconcile")
