"""How an API request proves who sends it with a token, and what a token looks like.

`Authorization: Token <token>` (or `Bearer <token>`). A token reads `cxh_<prefix>_<secret>`:
the prefix, which is not secret, finds the row in one query, and the SHA-256 of the whole string
is compared with the stored hash in constant time. Tokens moved over from
rest_framework.authtoken (40 hex characters, no prefix) are found by their hash instead.

Expired, revoked and unknown tokens and deactivated people are refused with 401; a read-only
token is refused with 403 on any method that could change something, here, for every API view
at once (a view cannot forget a permission class).
"""

import hashlib
import hmac
import re
import secrets
import string
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS

from .models import ApiToken

SCHEME = "cxh"
PREFIX_LENGTH = 8
SECRET_BYTES = 32
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
# cxh_<8 of [a-z0-9]>_<32 bytes as 43 url-safe base64 characters>
_CURRENT = re.compile(rf"^{SCHEME}_[a-z0-9]{{{PREFIX_LENGTH}}}_[A-Za-z0-9_-]{{43}}$")
_PREFIX_END = len(SCHEME) + 1 + PREFIX_LENGTH
# rest_framework.authtoken's keys: 20 random bytes in hex.
_LEGACY = re.compile(r"^[0-9a-f]{40}$")
# last_used_at is written at most this often per token: not a write per request.
TOUCH_INTERVAL = timedelta(minutes=1)
KEYWORDS = (b"token", b"bearer")


def hash_secret(raw: str) -> str:
    """The stored form of a token: SHA-256 of the string the client sends, in hex."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh (prefix, token): the token is the prefix, "_" and 32 random bytes."""
    prefix = f"{SCHEME}_" + "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return prefix, f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def token_find(raw: str) -> ApiToken | None:
    """The token `raw` proves, with its user, in one query; None when nothing matches. Says
    nothing about expiry, revocation or the user being active: the caller decides."""
    if _CURRENT.match(raw):
        lookup = {"prefix": raw[:_PREFIX_END]}
    elif _LEGACY.match(raw):
        lookup = {"secret_hash": hash_secret(raw)}
    else:
        return None
    try:
        token = ApiToken.objects.select_related("user").get(**lookup)
    except ApiToken.DoesNotExist:
        return None
    expected = token.secret_hash.encode("ascii")
    if not hmac.compare_digest(expected, hash_secret(raw).encode("ascii")):
        return None
    return token


def token_touch(token: ApiToken, now) -> None:
    """Note that the token was used: at most one write a minute, and none by two processes at
    once (the UPDATE only matches while the stored time is still stale)."""
    stale = now - TOUCH_INTERVAL
    if token.last_used_at is not None and token.last_used_at > stale:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)
    token.last_used_at = now


class ApiTokenAuthentication(BaseAuthentication):
    """DRF authentication by ApiToken; `request.auth` is the ApiToken."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the token as `Authorization: Token <token>` (one token, no spaces)."
            )
        try:
            raw = parts[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = token_find(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                "This token was revoked. Ask for a new one (POST /api/v1/auth/token/)."
            )
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed(
                f"This token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC. "
                "Ask for a new one (POST /api/v1/auth/token/)."
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This account is deactivated.")
        token_touch(token, now)
        if token.read_only and request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied(
                "This token is read-only: it may read but not change anything."
            )
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes a refusal a 401 with WWW-Authenticate, rather than a 403.
        return 'Token realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes ApiTokenAuthentication."""

    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                'A token from POST /api/v1/auth/token/, sent as "Token <token>" or '
                '"Bearer <token>". Tokens expire; a read-only token is refused (403) on '
                "anything but GET, HEAD and OPTIONS."
            ),
        }
