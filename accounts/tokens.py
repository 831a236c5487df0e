"""API tokens: issuing one (its secret shown once), revoking one, revoking all of a person's.

Only the SHA-256 of a secret is stored (models.ApiToken); the format of a token and how a
request presents one are in accounts/authentication.py.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import record, record_many
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed

from .authentication import hash_secret, new_token
from .models import ApiToken, User
from .selectors import api_token_may_manage


def _lifetime(expires_in_days: int | None) -> timedelta:
    maximum = settings.CXHUB_API_TOKEN_MAX_DAYS
    if expires_in_days is None:
        return timedelta(days=settings.CXHUB_API_TOKEN_DAYS)
    if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int):
        raise ApplicationError(
            "expires_in_days must be a whole number of days.",
            {"fields": {"expires_in_days": ["A whole number of days."]}},
        )
    if not 1 <= expires_in_days <= maximum:
        message = f"A token lives between 1 and {maximum} days."
        raise ApplicationError(message, {"fields": {"expires_in_days": [message]}})
    return timedelta(days=expires_in_days)


def _token_data(token: ApiToken) -> dict:
    """What the trail says about a token: never its secret nor its hash."""
    return {
        "token": token.pk,
        "prefix": token.prefix,
        "name": token.name,
        "user": token.user_id,
        "username": token.user.username,
        "read_only": token.read_only,
        "expires_at": token.expires_at.isoformat(),
    }


@dataclass(frozen=True)
class IssuedToken:
    """A new token and its secret: the only time the secret exists outside the client."""

    token: ApiToken
    secret: str


@transaction.atomic
def api_token_create(
    *,
    user: User,
    name: str,
    expires_in_days: int | None = None,
    read_only: bool = False,
    by: User | None,
) -> IssuedToken:
    """Issue a new token for `user` (each call a new one); the secret is in the result only."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A token needs a name.", {"fields": {"name": ["Required."]}})
    if len(name) > 100:
        raise ApplicationError(
            "A token's name is at most 100 characters.",
            {"fields": {"name": ["At most 100 characters."]}},
        )
    lifetime = _lifetime(expires_in_days)
    if not user.is_active:
        raise NotAllowed("A deactivated account cannot be given a token.")
    now = timezone.now()
    for _ in range(5):
        prefix, secret = new_token()
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user,
                    name=name,
                    prefix=prefix,
                    secret_hash=hash_secret(secret),
                    expires_at=now + lifetime,
                    read_only=bool(read_only),
                )
            break
        except IntegrityError:  # a prefix drawn twice (1 in 2.8 × 10^12): draw again
            continue
    else:  # pragma: no cover - five collisions in a row means the generator is broken
        raise RuntimeError("could not draw an unused token prefix")
    record(actor=by, action="auth.token_issued", obj=token, data=_token_data(token))
    return IssuedToken(token=token, secret=secret)


def _check_may_revoke(*, token: ApiToken, by: User | None) -> None:
    if by is None or by.pk == token.user_id:
        return
    if not api_token_may_manage(user=by, token_id=token.pk):
        raise NotAllowed("Only the token's owner or an administrator over them may revoke it.")


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by: User | None) -> ApiToken:
    """Revoke one token at once: the next request with it is refused (401)."""
    token = ApiToken.objects.select_for_update(of=("self",)).select_related("user").get(pk=token.pk)
    _check_may_revoke(token=token, by=by)
    if token.revoked_at is not None:
        raise InvalidTransition("This token was revoked already.")
    token.revoked_at = timezone.now()
    token.revoked_by = by
    token.save(update_fields=["revoked_at", "revoked_by"])
    record(
        actor=by,
        action="auth.token_revoked",
        obj=token,
        data={**_token_data(token), "expired": token.expires_at <= token.revoked_at},
    )
    return token


@transaction.atomic
def api_tokens_revoke_all(
    *, user: User, by: User | None, reason: str = "", now: datetime | None = None
) -> int:
    """Revoke every live token of `user` (someone left, was deprovisioned at the identity
    provider, or lost a laptop): one `auth.token_revoked` event each. Returns how many."""
    now = now or timezone.now()
    tokens = list(
        ApiToken.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(user=user, revoked_at__isnull=True, expires_at__gt=now)
        .order_by("pk")
    )
    if not tokens:
        return 0
    ApiToken.objects.filter(pk__in=[t.pk for t in tokens]).update(revoked_at=now, revoked_by=by)
    record_many(
        [
            {
                "actor": by,
                "action": "auth.token_revoked",
                "obj": token,
                "data": {**_token_data(token), "all": True, "reason": reason[:200]},
            }
            for token in tokens
        ]
    )
    return len(tokens)
