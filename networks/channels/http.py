"""HTTP pieces the network channels share: one pooled session, a timeout on every call, the
check of a server address a person typed, rate-limit headers read as seconds (by
networks/ratelimits.py, which also keeps what they say for every worker), and the rule for
which failures mean "nothing went out" and which mean "it may have gone out"; what a
publication is (Published) and what an answer other than success means (error_for_status).
Every channel, the webhook's included, builds on these.

The rule, for a call that creates a post (`changes`): only what proves the network did not take
it is retried blind (a connection never opened, 408/425/429, a 4xx in the network's words);
everything else (a timeout or a dropped connection after sending, a 5xx) is UnknownOutcome,
and dispatch reconciles before any retry. Reads and uploads that cannot post anything on their
own are retried freely.
"""

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from networks.ratelimits import reset_seconds, retry_after_seconds

from .errors import AuthExpired, PermanentError, RetryableError, UnknownOutcome
from .session import http_session

__all__ = [
    "Published",
    "check_server",
    "error_for_status",
    "http_session",
    "not_sent",
    "network_timeout",
    "rate_limit_wait",
    "request",
    "retry_after_seconds",
    "with_status",
]


@dataclass(frozen=True)
class Published:
    """Where a post now is on its network. (Shared by every channel's publish/reconcile.)"""

    external_id: str
    external_url: str = ""
    http_status: int | None = None


def not_sent(exc: requests.ConnectionError) -> bool:
    """Whether a connection error happened before the request left (nothing can have landed)."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def network_timeout() -> float:
    """Connect and read timeout of each call to a network, in seconds. Below the task's soft
    time limit, so a slow network is an unknown outcome (reconciled), not a killed task."""
    return float(settings.CXHUB_NETWORK_TIMEOUT_SECONDS)


def network_base_url(channel: Any) -> str:
    """Where a network's API is for new accounts: its public origin, or the address
    settings.CXHUB_NETWORK_BASE_URLS gives it (a test server)."""
    override = settings.CXHUB_NETWORK_BASE_URLS.get(channel.name)
    return str(override or channel.default_base_url).rstrip("/")


def on_server(real_url: str, base_url: str, default_base_url: str) -> str:
    """`real_url` (e.g. https://x.com/i/oauth2/authorize) as found on `base_url`: itself when the
    account talks to the real network, else the same path on base_url's origin (a test server
    answers every endpoint of its network at the real paths)."""
    base_url = (base_url or default_base_url).rstrip("/")
    if base_url == default_base_url.rstrip("/"):
        return real_url
    parts = urlsplit(real_url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return base_url + path


def with_status(error: Exception, status: int | None) -> Exception:
    error.http_status = status  # read by dispatch for the attempt's record
    return error


def error_for_status(
    status: int,
    detail: str,
    *,
    retry_after: float | None = None,
    expired: bool = False,
    changes: bool = False,
) -> Exception:
    """What a network's answer other than the one expected means for dispatch, the same on
    every network: 401 (or the network's own expired-token error, `expired`) → AuthExpired;
    408, 425 and 429 → RetryableError with the wait the network asked for (the request was not
    taken). A 5xx proves nothing about a call that `changes` something (one that creates a
    post): the server may have made the post and failed to answer, and may ignore an
    Idempotency-Key, so it is UnknownOutcome (reconcile before any retry), as is a 2xx whose
    shape the channel did not expect; for a read, a 5xx is RetryableError. Anything else (a
    4xx in the network's words) → PermanentError, whose words the author sees."""
    if status == 401 or expired:
        return with_status(AuthExpired(detail), status)
    if status in (408, 425, 429):
        return with_status(RetryableError(detail, retry_after=retry_after), status)
    if changes and (status >= 500 or 200 <= status < 300):
        return with_status(UnknownOutcome(detail, retry_after=retry_after), status)
    if status >= 500:
        return with_status(RetryableError(detail, retry_after=retry_after), status)
    return with_status(PermanentError(detail), status)


def _allowed_private() -> list[Any]:
    networks = getattr(settings, "CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS", [])
    return [ipaddress.ip_network(net, strict=False) for net in networks]


def check_server(url: str, *, what: str) -> None:
    """Refuse a server address (a Mastodon instance, a Bluesky PDS) that is not https, or whose
    host resolves to a private, loopback or link-local address, before any request is made.
    Networks listed in CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS are allowed, over http too (the
    tests' servers on 127.0.0.1)."""
    try:
        parts = urlsplit(url or "")
        port = parts.port  # a port out of range, or not a number, is a ValueError here
    except ValueError:
        raise PermanentError(f"The {what} address is not a web address: {url!r}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError(f"The {what} address is not a web address: {url!r}.")
    allowed = _allowed_private()
    try:
        infos = socket.getaddrinfo(
            parts.hostname,
            port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except UnicodeError:  # a label empty or longer than 63 characters: no name at all
        raise PermanentError(f"The {what} address has no valid host name: {url!r}.") from None
    except OSError as exc:
        raise RetryableError(f"Cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if any(address in network for network in allowed):
            continue
        if not address.is_global:
            raise PermanentError(
                f"The {what} {parts.hostname} resolves to {address}, which is not a public "
                "address; cxhub does not send to internal networks."
            )
        if parts.scheme != "https":
            raise PermanentError(f"The {what} address must use https://.")


def rate_limit_wait(response: requests.Response, *, reset_header: str) -> float | None:
    """How long the network asked us to wait: Retry-After first, then its reset header."""
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    if wait is None:
        wait = reset_seconds(response.headers.get(reset_header))
    return wait


def request(method: str, url: str, *, changes: bool, what: str, **kwargs: Any) -> requests.Response:
    """One call with a timeout. A failure before the request left is retryable; after it left,
    a call that `changes` something is an unknown outcome, a read-only one is retryable."""
    kwargs.setdefault("timeout", network_timeout())
    kwargs.setdefault("allow_redirects", False)
    try:
        return http_session().request(method, url, **kwargs)
    except requests.ConnectionError as exc:
        if not_sent(exc) or not changes:
            raise RetryableError(f"{what}: could not connect: {exc}") from exc
        raise UnknownOutcome(f"{what}: the connection broke after sending: {exc}") from exc
    except requests.Timeout as exc:  # a read timeout: the request went out
        if not changes:
            raise RetryableError(f"{what}: no answer in time: {exc}") from exc
        raise UnknownOutcome(f"{what}: no answer within {kwargs['timeout']:g} s: {exc}") from exc
    except requests.RequestException as exc:
        if not changes:
            raise RetryableError(f"{what}: the request failed: {exc}") from exc
        raise UnknownOutcome(f"{what}: the request failed: {exc}") from exc


def json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
