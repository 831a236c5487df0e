"""Every write of social accounts: adding one, per-account drafting grants, connecting,
reconnecting and disconnecting, marking one that needs a reconnect, and renewing the tokens that
expire soon. One function per use case, each in a transaction and each recording its audit event."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from accounts.models import Role, Team, User
from accounts.notifications import notify
from accounts.selectors import user_has_role
from audit.services import record
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed

from . import hooks
from .channels import all_channels, get_channel
from .channels.errors import AuthExpired, ChannelError, RetryableError
from .models import AccountStatus, Channel, SocialAccount
from .selectors import social_account_powers, social_accounts_for

log = logging.getLogger("cxhub.networks")


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
    assign_perm("networks.draft_socialaccount", user, account)
    record(
        actor=by,
        action="social_account.drafting_granted",
        obj=account,
        team=account.team,
        data={"user": user.pk, "username": user.username},
    )


@transaction.atomic
def social_account_revoke_drafting(*, account: SocialAccount, user: User, by: User | None) -> None:
    remove_perm("networks.draft_socialaccount", user, account)
    record(
        actor=by,
        action="social_account.drafting_revoked",
        obj=account,
        team=account.team,
        data={"user": user.pk, "username": user.username},
    )


# Connecting accounts (DESIGN §2) -----------------------------------------------------------------
def social_account_may_connect(*, by: User, team: Team) -> bool:
    """Admins of a team (or of a team above it) connect accounts to it and disconnect them."""
    return user_has_role(user=by, team=team, role=Role.ADMIN)


def social_account_may_reconnect(*, by: User, account: SocialAccount) -> bool:
    """Re-authorising an account: its team's admins, or those who draft for it (a drafter role
    on its team or above, or a grant of that one account) unless it was disconnected on
    purpose (selectors.social_account_powers states the rule)."""
    social_account_powers(user=by, accounts=[account])
    return account.may_reconnect


@dataclass(frozen=True)
class ConnectResult:
    account: SocialAccount
    # True when an account cxhub knew already was given new tokens.
    reconnected: bool
    # Scheduled targets that were held for the account and now wait again.
    released: int = 0


def _label(channel: str) -> str:
    return Channel(channel).label if channel in Channel.values else channel


def _check_may_reconnect(*, by: User, account: SocialAccount, channel: str) -> None:
    # An account disconnected on purpose comes back only through its team's admins.
    if social_account_may_reconnect(by=by, account=account):
        return
    if social_accounts_for(user=by).filter(pk=account.pk).exists():
        raise NotAllowed(
            f"{account.handle} was disconnected; only administrators of {account.team.name} "
            "(or of a team above it) connect it again.",
            {"fields": {"account": ["You are not an administrator of its team."]}},
        )
    raise ApplicationError(
        f"{account.handle} on {_label(channel)} is connected to another team in cxhub already; "
        "ask that team's administrators.",
        {"fields": {"account": ["Connected to another team already."]}},
    )


def _network_account(channel: str, base_url: str, external_id: str, handle: str):
    """The locked row of the same account on the same network, if cxhub knows it."""
    accounts = SocialAccount.objects.select_for_update().filter(channel=channel, base_url=base_url)
    if external_id:
        # Or one an admin added by hand before it was ever connected (no external id yet).
        return (
            accounts.filter(external_id=external_id).first()
            or accounts.filter(handle=handle, external_id="").first()
        )
    return accounts.filter(handle=handle).first()


@transaction.atomic
def social_account_connect(
    *,
    by: User,
    team: Team,
    channel: str,
    base_url: str,
    handle: str,
    external_id: str,
    access_token: str,
    refresh_token: str = "",
    expires_at: datetime | None = None,
    display_name: str = "",
    network_settings: Mapping[str, Any] | None = None,
    reconnect: SocialAccount | None = None,
) -> ConnectResult:
    """Keep the tokens of a grant the person just gave: a new account on `team`, or, when cxhub
    knows the same network account already (channel + base_url + external_id), new tokens for
    it, which connects it again and releases the posts held for it. `reconnect` is the account
    the person set out to re-authorise: the grant must be for that one."""
    if channel not in Channel.values:
        raise ApplicationError(
            f"Unknown network {channel!r}.",
            {"fields": {"channel": [f"One of {', '.join(Channel.values)}."]}},
        )
    handle = handle.strip()
    if not handle:
        raise ApplicationError(
            f"{_label(channel)} did not say which account this is.",
            {"fields": {"handle": ["Required."]}},
        )
    if not access_token:
        raise ApplicationError(
            f"{_label(channel)} gave no access token.", {"fields": {"access_token": ["Required."]}}
        )
    settings_json = dict(network_settings or {})
    existing = _network_account(channel, base_url, external_id, handle)
    if reconnect is not None and (existing is None or existing.pk != reconnect.pk):
        raise ApplicationError(
            f"You signed in to {_label(channel)} as {handle}, but the account to reconnect is "
            f"{reconnect.handle}. Sign in as {reconnect.handle} and try again.",
            {"fields": {"account": [f"Sign in as {reconnect.handle}."]}},
        )
    if existing is not None:
        _check_may_reconnect(by=by, account=existing, channel=channel)
        previous = existing.status
        existing.set_tokens(access_token=access_token, refresh_token=refresh_token)
        existing.expires_at = expires_at
        existing.status = AccountStatus.CONNECTED
        existing.network_settings = settings_json
        fields = [
            "access_token_encrypted",
            "refresh_token_encrypted",
            "expires_at",
            "status",
            "network_settings",
            "updated_at",
        ]
        if external_id and not existing.external_id:
            existing.external_id = external_id[:200]
            fields.append("external_id")
        if display_name and display_name != existing.display_name:
            existing.display_name = display_name[:200]
            fields.append("display_name")
        renamed = (
            handle != existing.handle
            and not SocialAccount.objects.filter(channel=channel, base_url=base_url, handle=handle)
            .exclude(pk=existing.pk)
            .exists()
        )
        if renamed:
            existing.handle = handle[:200]
            fields.append("handle")
        existing.save(update_fields=fields)
        # Its held targets are locked and released in this transaction, before its event.
        released = sum(hooks.account_reconnected.send(account=existing, by=by))
        record(
            actor=by,
            action="social_account.reconnected",
            obj=existing,
            team=existing.team,
            data={
                "channel": channel,
                "handle": existing.handle,
                "base_url": base_url,
                "previous_status": previous,
                "released": released,
            },
        )
        return ConnectResult(account=existing, reconnected=True, released=released)

    if not social_account_may_connect(by=by, team=team):
        raise NotAllowed(
            f"Only administrators of {team.name} (or of a team above it) connect accounts to it.",
            {"fields": {"team": ["You are not an administrator of this team."]}},
        )
    if SocialAccount.objects.filter(channel=channel, base_url=base_url, handle=handle).exists():
        raise ApplicationError(
            f"{handle} on {_label(channel)} is connected already.",
            {"fields": {"handle": ["Taken."]}},
        )
    account = SocialAccount(
        team=team,
        channel=channel,
        handle=handle[:200],
        external_id=external_id[:200],
        display_name=display_name[:200],
        base_url=base_url,
        expires_at=expires_at,
        status=AccountStatus.CONNECTED,
        network_settings=settings_json,
    )
    account.set_tokens(access_token=access_token, refresh_token=refresh_token)
    account.save()
    record(
        actor=by,
        action="social_account.connected",
        obj=account,
        team=team,
        data={"channel": channel, "handle": account.handle, "base_url": base_url},
    )
    return ConnectResult(account=account, reconnected=False)


def social_account_disconnect(*, account: SocialAccount, by: User) -> SocialAccount:
    """Disconnect on purpose: the tokens are revoked at the network where it allows (best
    effort, outside any lock: a slow network holds nothing), then forgotten; nothing publishes
    until the account is connected again (dispatch holds its posts meanwhile)."""
    if not social_account_may_connect(by=by, team=account.team):
        raise NotAllowed(
            f"Only administrators of {account.team.name} (or of a team above it) disconnect its "
            "accounts.",
            {"fields": {"account": ["You are not an administrator of its team."]}},
        )
    if account.status == AccountStatus.DISCONNECTED:
        raise InvalidTransition(
            f"{account.handle} is disconnected already.",
            {"fields": {"account": ["Disconnected already."]}},
        )
    revoked = _revoke_at_network(account)
    with transaction.atomic():
        current = (
            SocialAccount.objects.select_for_update().select_related("team").get(pk=account.pk)
        )
        if current.status == AccountStatus.DISCONNECTED:
            raise InvalidTransition(
                f"{current.handle} is disconnected already.",
                {"fields": {"account": ["Disconnected already."]}},
            )
        previous = current.status
        current.set_tokens(access_token="", refresh_token="")
        current.expires_at = None
        current.status = AccountStatus.DISCONNECTED
        current.save(
            update_fields=[
                "access_token_encrypted",
                "refresh_token_encrypted",
                "expires_at",
                "status",
                "updated_at",
            ]
        )
        record(
            actor=by,
            action="social_account.disconnected",
            obj=current,
            team=current.team,
            data={
                "channel": current.channel,
                "handle": current.handle,
                "previous_status": previous,
                "revoked_at_network": revoked,
            },
        )
    return current


def _revoke_at_network(account: SocialAccount) -> bool:
    """Whether the network confirmed the revocation; any failure only means it did not."""
    if not account.has_tokens:
        return False
    try:
        return bool(get_channel(account.channel).revoke(account))
    except (ChannelError, NotImplementedError, KeyError) as exc:
        log.warning(
            "revoke failed account=%s channel=%s error=%s", account.pk, account.channel, exc
        )
        return False


def _admins_over(team: Team) -> list[User]:
    """The admins of `team` and of every team above it. One query."""
    steplen = team.steplen
    paths = [team.path[:end] for end in range(steplen, len(team.path) + 1, steplen)]
    return list(
        User.objects.filter(
            is_active=True,
            memberships__role=Role.ADMIN,
            memberships__team__path__in=paths,
        )
        .distinct()
        .order_by("pk")
    )


def social_account_needs_reconnect(*, account_id: int, error: str) -> bool:
    """The network refused the account's tokens for good: a CONNECTED account becomes
    NEEDS_RECONNECT (a conditional update, so it happens once however many workers see the
    refusal), the event is recorded and the admins of its team and the teams above are told.
    Runs inside the caller's transaction (dispatch stores an outcome in its own). True when it
    changed the account."""
    with transaction.atomic():
        changed = SocialAccount.objects.filter(
            pk=account_id, status=AccountStatus.CONNECTED
        ).update(status=AccountStatus.NEEDS_RECONNECT, updated_at=timezone.now())
        if not changed:
            return False
        account = SocialAccount.objects.select_related("team").get(pk=account_id)
        label = _label(account.channel)
        record(
            actor=None,
            action="social_account.needs_reconnect",
            object_type="networks.socialaccount",
            object_id=str(account.pk),
            team=account.team,
            data={"channel": account.channel, "handle": account.handle, "error": error[:1000]},
        )
        notify(
            users=_admins_over(account.team),
            kind="account_needs_reconnect",
            title=f"Reconnect {account.handle} on {label}: its posts are held",
            body=(
                f"{label} refused cxhub's access to {account.handle} ({account.team.name}): "
                f"{error[:500]}\n\nIts scheduled posts are held, not lost. Reconnect the account "
                "and they go out."
            ),
            url=reverse("social-accounts") + f"#account-{account.pk}",
        )
        return True


# Accounts renewed per run at most; the next run (10 minutes later) takes the rest.
REFRESH_BATCH = 200


def social_accounts_refresh_expiring(
    *, now: datetime | None = None, batch_size: int = REFRESH_BATCH
) -> dict:
    """Renew the tokens of connected accounts that expire within
    CXHUB_TOKEN_REFRESH_MARGIN_SECONDS, soonest first, before a publish finds them expired.
    A refusal marks the account as needing a reconnect (its admins are told); a network that
    cannot be reached is tried again next run; a network without renewal is left alone.
    Idempotent: a renewed account no longer expires soon, and a renewal that raced another
    worker's is not repeated (social_account_tokens_refresh locks the row)."""
    now = now or timezone.now()
    horizon = now + timedelta(seconds=settings.CXHUB_TOKEN_REFRESH_MARGIN_SECONDS)
    ids = list(
        SocialAccount.objects.filter(
            status=AccountStatus.CONNECTED, expires_at__isnull=False, expires_at__lte=horizon
        )
        # Without a refresh token only a network that renews the access token itself can.
        .filter(
            ~Q(refresh_token_encrypted="")
            | Q(channel__in=[c.name for c in all_channels() if c.renews_with_access_token])
        )
        .order_by("expires_at", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    counts = {"renewed": 0, "needs_reconnect": 0, "retry": 0, "skipped": 0, "failed": 0}
    for account_id in ids:
        account = SocialAccount.objects.filter(
            pk=account_id, status=AccountStatus.CONNECTED
        ).first()
        if account is None:
            continue
        try:
            get_channel(account.channel).refresh_token(account)
        except AuthExpired as exc:
            if social_account_needs_reconnect(account_id=account.pk, error=str(exc)):
                counts["needs_reconnect"] += 1
        except RetryableError as exc:
            counts["retry"] += 1
            log.warning(
                "token renewal failed account=%s, next run tries again: %s", account_id, exc
            )
        except NotImplementedError:
            counts["skipped"] += 1
        except Exception:  # one account's surprise must not stop the others' renewal
            counts["failed"] += 1
            log.exception("token renewal failed account=%s", account_id)
        else:
            counts["renewed"] += 1
    if ids:
        log.info("token renewal %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts
