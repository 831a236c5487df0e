"""OAuth 2 pieces the networks share (RFC 6749, RFC 7009): cxhub's client registration, the
token endpoint's answers turned into a TokenSet or one of the channel errors, refresh under
the account's row lock, revocation, and "call, and on an expired token renew once and call
again".

The authorization-code dance itself (authorize URL, state, PKCE, code exchange) runs in the
connect views with requests-oauthlib; what a worker needs later is here.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import requests
from django.utils import timezone

from ..tokens import social_account_tokens_refresh
from .base import OAuthClient, OAuthSpec, TokenSet, configured_client
from .errors import AuthExpired, PermanentError, RetryableError
from .http import json_or_empty, rate_limit_wait, request, with_status

if TYPE_CHECKING:
    from .base import Channel

T = TypeVar("T")


def tokens_from_answer(data: dict[str, Any], *, what: str) -> TokenSet:
    """A token endpoint's JSON answer (RFC 6749 §5.1) as a TokenSet."""
    access = data.get("access_token")
    if not access:
        raise RetryableError(f"{what}: the answer has no access_token")
    expires_at = None
    expires_in = data.get("expires_in")
    if isinstance(expires_in, int | float | str) and str(expires_in).strip():
        try:
            expires_at = timezone.now() + timedelta(seconds=float(expires_in))
        except ValueError:
            expires_at = None
    return TokenSet(
        access_token=str(access),
        refresh_token=str(data.get("refresh_token") or ""),
        expires_at=expires_at,
    )


def token_error(response: requests.Response, *, what: str) -> Exception:
    """A refused token request (RFC 6749 §5.2) as a channel error: invalid_grant and friends
    mean the grant is gone (reconnect); 429 and 5xx can be tried again."""
    data = json_or_empty(response)
    code = str(data.get("error") or "")
    detail = str(data.get("error_description") or data.get("message") or response.text[:300])
    message = f"{what} (HTTP {response.status_code}{', ' + code if code else ''}): {detail}"
    status = response.status_code
    if status == 429 or status >= 500:
        # Retry-After, else the reset header: X-RateLimit-Reset (Mastodon, most) or
        # x-rate-limit-reset (X).
        wait = rate_limit_wait(response, reset_header="X-RateLimit-Reset")
        if wait is None:
            wait = rate_limit_wait(response, reset_header="x-rate-limit-reset")
        return with_status(RetryableError(message, retry_after=wait), status)
    if status in (400, 401, 403):
        return with_status(AuthExpired(message), status)
    return with_status(PermanentError(message), status)


def _authenticated(
    spec: OAuthSpec, client: OAuthClient, form: dict[str, str]
) -> tuple[dict[str, str], tuple[str, str] | None]:
    """The form and HTTP auth of a call to the token or revocation endpoint, with the client
    authenticated as the network wants (RFC 6749 §2.3.1: Basic, or the credentials in the
    body)."""
    if spec.client_auth == "basic" and client.client_secret:
        return dict(form), (client.client_id, client.client_secret)
    form = {**form, "client_id": client.client_id}
    if client.client_secret:
        form["client_secret"] = client.client_secret
    return form, None


def token_request(
    spec: OAuthSpec, client: OAuthClient, form: dict[str, str], *, what: str
) -> TokenSet:
    """POST to the token endpoint with the client authenticated as the network wants."""
    form, auth = _authenticated(spec, client, form)
    response = request(
        "POST",
        spec.token_url,
        # A token request changes nothing that a second one would duplicate.
        changes=False,
        what=what,
        data=form,
        auth=auth,
        headers={"Accept": "application/json"},
    )
    if response.status_code != 200:
        raise token_error(response, what=what)
    return tokens_from_answer(json_or_empty(response), what=what)


def refresh_oauth2(channel: "Channel", account: Any, *, client: OAuthClient | None = None) -> None:
    """Renew `account`'s tokens with its refresh token (RFC 6749 §6), stored under the row lock;
    AuthExpired when there is none or the network refuses it."""
    spec = channel.oauth_spec(account.base_url)
    client = client or configured_client(channel)

    def renew(refresh_token: str) -> TokenSet:
        if not refresh_token:
            raise AuthExpired(
                f"The {channel.label} token expired and cannot be renewed; connect the account "
                "again."
            )
        return token_request(
            spec,
            client,
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            what=f"Renewing the {channel.label} token",
        )

    social_account_tokens_refresh(account=account, renew=renew)


def revoke_oauth2(spec: OAuthSpec, client: OAuthClient, token: str, *, hint: str = "") -> bool:
    """Revoke a token (RFC 7009); True when the network confirmed it (200), False where it has
    no revocation endpoint or refused (the token is forgotten by cxhub either way)."""
    if not spec.revoke_url or not token:
        return False
    form, auth = _authenticated(
        spec, client, {"token": token, **({"token_type_hint": hint} if hint else {})}
    )
    try:
        response = request(
            "POST", spec.revoke_url, changes=False, what="Revoking the token", data=form, auth=auth
        )
    except RetryableError:
        return False
    return response.status_code == 200


def with_fresh_token(channel: "Channel", account: Any, call: Callable[[str], T]) -> T:
    """`call(access_token)`; when it raises AuthExpired and the account has a refresh token,
    renew once (channel.refresh_token) and call again. A refused renewal is AuthExpired."""
    token = account.access_token
    if not token:
        raise AuthExpired(f"The {channel.label} account has no token; connect it again.")
    try:
        return call(token)
    except AuthExpired:
        if not account.refresh_token_encrypted:
            raise
    channel.refresh_token(account)
    return call(account.access_token)
