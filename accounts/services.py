"""Every write of people, teams and social accounts: one function per use case, each in a
transaction and each recording its audit event."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from guardian.shortcuts import assign_perm, remove_perm

from audit.services import record
from cxhub.errors import ApplicationError

from .crypto import rotate_token
from .models import Channel, LoginFailure, Membership, Role, SocialAccount, Team, User


# Teams and memberships ---------------------------------------------------------------------------
@transaction.atomic
def team_create(*, name: str, parent: Team | None = None, slug: str = "", by: User | None) -> Team:
    name = name.strip()
    if not name:
        raise ApplicationError("A team needs a name.", {"fields": {"name": ["Required."]}})
    slug = slugify(slug or name)
    if parent is not None:
        # Lock the parent: two children added at once would otherwise compute the same path.
        parent = Team.objects.select_for_update().get(pk=parent.pk)
    if Team.objects.filter(slug=slug).exists():
        raise ApplicationError(
            f"A team with the slug {slug!r} exists already.", {"fields": {"slug": ["Taken."]}}
        )
    fields = {"name": name, "slug": slug}
    if parent is None:
        team = Team.objects.add_root(create_kwargs=fields)
    else:
        team = Team.objects.add_child(parent, create_kwargs=fields)
    record(
        actor=by,
        action="team.created",
        obj=team,
        team=team,
        data={"name": name, "slug": slug, "parent": parent.pk if parent else None},
    )
    return team


@transaction.atomic
def membership_grant(*, user: User, team: Team, role: str, by: User | None) -> Membership:
    if role not in Role.values:
        raise ApplicationError(
            f"Unknown role {role!r}.", {"fields": {"role": [f"One of {', '.join(Role.values)}."]}}
        )
    membership, created = Membership.objects.get_or_create(user=user, team=team, role=role)
    if created:
        record(
            actor=by,
            action="membership.granted",
            obj=membership,
            team=team,
            data={"user": user.pk, "username": user.username, "role": role},
        )
    return membership


@transaction.atomic
def membership_revoke(*, membership: Membership, by: User | None) -> None:
    data = {
        "user": membership.user_id,
        "username": membership.user.username,
        "role": membership.role,
    }
    team = membership.team
    object_id = membership.pk
    membership.delete()
    record(
        actor=by,
        action="membership.revoked",
        object_type="accounts.membership",
        object_id=str(object_id),
        team=team,
        data=data,
    )


# Social accounts ---------------------------------------------------------------------------------
@transaction.atomic
def social_account_create(
    *,
    team: Team,
    channel: str,
    handle: str,
    by: User | None,
    base_url: str = "",
    external_id: str = "",
    display_name: str = "",
    access_token: str = "",
    refresh_token: str = "",
    expires_at: datetime | None = None,
    sandbox: bool = False,
) -> SocialAccount:
    if channel not in Channel.values:
        raise ApplicationError(
            f"Unknown network {channel!r}.",
            {"fields": {"channel": [f"One of {', '.join(Channel.values)}."]}},
        )
    handle = handle.strip()
    if not handle:
        raise ApplicationError("An account needs a handle.", {"fields": {"handle": ["Required."]}})
    if SocialAccount.objects.filter(channel=channel, base_url=base_url, handle=handle).exists():
        raise ApplicationError(
            f"{handle} on {channel} is connected already.", {"fields": {"handle": ["Taken."]}}
        )
    account = SocialAccount(
        team=team,
        channel=channel,
        handle=handle,
        base_url=base_url,
        external_id=external_id,
        display_name=display_name,
        expires_at=expires_at,
        sandbox=sandbox,
    )
    account.set_tokens(access_token=access_token, refresh_token=refresh_token)
    account.save()
    # The event names the account, never its tokens.
    record(
        actor=by,
        action="social_account.created",
        obj=account,
        team=team,
        data={"channel": channel, "handle": handle, "base_url": base_url, "sandbox": sandbox},
    )
    return account


@transaction.atomic
def social_account_grant_drafting(*, account: SocialAccount, user: User, by: User | None) -> None:
    """Let one person draft for one account beyond their team roles (e.g. a national desk)."""
    assign_perm("accounts.draft_socialaccount", user, account)
    record(
        actor=by,
        action="social_account.drafting_granted",
        obj=account,
        team=account.team,
        data={"user": user.pk, "username": user.username},
    )


@transaction.atomic
def social_account_revoke_drafting(*, account: SocialAccount, user: User, by: User | None) -> None:
    remove_perm("accounts.draft_socialaccount", user, account)
    record(
        actor=by,
        action="social_account.drafting_revoked",
        obj=account,
        team=account.team,
        data={"user": user.pk, "username": user.username},
    )


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
    """Re-encrypt every stored token under the newest key of CXHUB_TOKEN_KEYS.

    Works in batches, each its own transaction with its rows locked and its own audit event, so
    it can run while the system is live, a failure part way leaves a true record of what was
    rewritten, and a re-run finishes the job. Returns how many accounts it rewrote.
    """
    rotated = 0
    last_id = 0
    while True:
        with transaction.atomic():
            batch = list(
                SocialAccount.objects.select_for_update()
                .filter(pk__gt=last_id)
                .order_by("pk")[:batch_size]
            )
            if not batch:
                break
            rewritten = []
            for account in batch:
                changed = []
                for field in ("access_token_encrypted", "refresh_token_encrypted"):
                    value = getattr(account, field)
                    if value:
                        # Raises TokenCipherError, rolling back this batch only.
                        setattr(account, field, rotate_token(value))
                        changed.append(field)
                if changed:
                    account.save(update_fields=[*changed, "updated_at"])
                    rewritten.append(account.pk)
            if rewritten:
                record(
                    actor=by,
                    action="social_account.tokens_rotated",
                    object_type="accounts.socialaccount",
                    object_id=f"{rewritten[0]}..{rewritten[-1]}",
                    data={"accounts": rewritten},
                )
            rotated += len(rewritten)
            last_id = batch[-1].pk
    return rotated


# Sign-in -----------------------------------------------------------------------------------------
def login_throttle_wait(*, username: str, address: str | None) -> int:
    """Seconds the caller must wait before trying again (0: may try now).

    Counts failures per username and per address within the window, across every web process
    (they are rows, not a per-process cache).
    """
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    since = timezone.now() - window
    limit = settings.LOGIN_FAILURE_LIMIT
    for filters in ({"username": username.lower()}, {"address": address} if address else None):
        if filters is None:
            continue
        recent = list(
            LoginFailure.objects.filter(at__gte=since, **filters)
            .order_by("-at")
            .values_list("at", flat=True)[:limit]
        )
        if len(recent) >= limit:
            oldest = recent[-1]
            return max(1, int((oldest + window - timezone.now()).total_seconds()))
    return 0


@transaction.atomic
def login_failed(*, username: str, address: str | None) -> None:
    LoginFailure.objects.create(username=username.lower()[:150], address=address, at=timezone.now())
    record(
        actor=None,
        action="auth.login_failed",
        object_type="accounts.user",
        object_id=username[:150],
        data={"username": username[:150], "address": address},
    )


@transaction.atomic
def login_succeeded(*, user: User, address: str | None) -> None:
    LoginFailure.objects.filter(username=user.username.lower()).delete()
    record(actor=user, action="auth.login", obj=user, data={"address": address})


@transaction.atomic
def logout_recorded(*, user: User, address: str | None) -> None:
    record(actor=user, action="auth.logout", obj=user, data={"address": address})
