"""The secrets the networks give cxhub, kept encrypted at rest (accounts/crypto.py): renewing an
account's tokens once whoever asks, cxhub's registrations with the servers of a network, and
re-encrypting both under the newest key (`manage.py rotate_token_keys`). The channels call these;
nothing here talks to a network."""

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction

from accounts.crypto import rotate_token
from accounts.models import User
from accounts.rotation import rotate_encrypted_fields
from audit.services import record

from .models import OAuthApp, SocialAccount


def social_account_tokens_refresh(*, account: SocialAccount, renew: Callable[[str], Any]) -> bool:
    """Renew an account's tokens once, whoever asks: the account's row is locked, and when
    another worker renewed while this one waited, its tokens are taken (a refresh token is
    often single-use: spending it twice would lose the account). `renew(refresh_token)` talks
    to the network and returns a TokenSet (access_token, refresh_token, expires_at); its
    exceptions (AuthExpired, RetryableError) pass through unchanged and nothing is stored.
    Updates `account` in place; True when this call renewed the tokens."""
    stale = account.access_token_encrypted
    with transaction.atomic():
        current = SocialAccount.objects.select_for_update().get(pk=account.pk)
        if current.access_token_encrypted != stale:
            account.access_token_encrypted = current.access_token_encrypted
            account.refresh_token_encrypted = current.refresh_token_encrypted
            account.expires_at = current.expires_at
            return False
        tokens = renew(current.refresh_token)
        current.set_tokens(
            access_token=tokens.access_token,
            # Networks that do not rotate refresh tokens answer none: keep the one we have.
            refresh_token=tokens.refresh_token or current.refresh_token,
        )
        current.expires_at = tokens.expires_at
        current.save(
            update_fields=[
                "access_token_encrypted",
                "refresh_token_encrypted",
                "expires_at",
                "updated_at",
            ]
        )
        record(
            actor=None,
            action="social_account.token_refreshed",
            obj=current,
            team=current.team,
            data={"channel": current.channel, "expires_at": tokens.expires_at},
        )
        account.access_token_encrypted = current.access_token_encrypted
        account.refresh_token_encrypted = current.refresh_token_encrypted
        account.expires_at = current.expires_at
        return True


def social_account_rotate_tokens(*, by: User | None = None, batch_size: int = 500) -> int:
    """Re-encrypt every stored token under the newest key of CXHUB_TOKEN_KEYS, in batches
    (accounts/rotation.py). Returns how many accounts it rewrote."""
    return rotate_encrypted_fields(
        queryset=SocialAccount.objects.all(),
        fields=("access_token_encrypted", "refresh_token_encrypted"),
        also_save=("updated_at",),
        action="social_account.tokens_rotated",
        data_key="accounts",
        by=by,
        batch_size=batch_size,
    )


@transaction.atomic
def oauth_app_register(
    *, channel: str, base_url: str, redirect_uri: str, client_id: str, client_secret: str
) -> OAuthApp:
    """Keep cxhub's registration with one server (a Mastodon server's POST /api/v1/apps
    answer). When two connects registered at once, the first one kept wins and is returned."""
    found = OAuthApp.objects.filter(
        channel=channel, base_url=base_url, redirect_uri=redirect_uri
    ).first()
    if found is not None:
        return found
    app = OAuthApp(channel=channel, base_url=base_url, redirect_uri=redirect_uri)
    app.client_id = client_id
    app.set_client_secret(client_secret)
    try:
        with transaction.atomic():
            app.save()
    except IntegrityError:
        return OAuthApp.objects.get(channel=channel, base_url=base_url, redirect_uri=redirect_uri)
    # The event names the server, never the secret.
    record(
        actor=None,
        action="oauth_app.registered",
        obj=app,
        data={"channel": channel, "base_url": base_url, "redirect_uri": redirect_uri},
    )
    return app


def oauth_app_rotate_secrets(*, by: User | None = None) -> int:
    """Re-encrypt the stored client secrets under the newest key of CXHUB_TOKEN_KEYS (the
    companion of social_account_rotate_tokens; there are few registrations: one transaction).
    Returns how many it rewrote."""
    with transaction.atomic():
        apps = list(
            OAuthApp.objects.select_for_update().exclude(client_secret_encrypted="").order_by("pk")
        )
        for app in apps:
            app.client_secret_encrypted = rotate_token(app.client_secret_encrypted)
            app.save(update_fields=["client_secret_encrypted"])
        if apps:
            record(
                actor=by,
                action="oauth_app.secrets_rotated",
                object_type="networks.oauthapp",
                object_id=f"{apps[0].pk}..{apps[-1].pk}",
                data={"apps": [app.pk for app in apps]},
            )
        return len(apps)
