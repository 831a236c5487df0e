"""Thin tasks of the accounts app."""

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import AccountStatus, SocialAccount
from .notifications import notification_send_email

log = logging.getLogger("cxhub.accounts")

# Accounts renewed per run at most; the next run (10 minutes later) takes the rest.
REFRESH_BATCH = 200


@shared_task(name="accounts.tasks.send_notification_emails", acks_late=True)
def send_notification_emails(notification_ids: list[int]) -> None:
    for notification_id in notification_ids:
        notification_send_email(notification_id=notification_id)


def refresh_expiring(*, now: datetime | None = None, batch_size: int = REFRESH_BATCH) -> dict:
    """Renew the tokens of connected accounts that expire within
    CXHUB_TOKEN_REFRESH_MARGIN_SECONDS, soonest first, before a publish finds them expired.
    A refusal marks the account as needing a reconnect (its admins are told); a network that
    cannot be reached is tried again next run; a network without renewal is left alone.
    Idempotent: a renewed account no longer expires soon, and a renewal that raced another
    worker's is not repeated (social_account_tokens_refresh locks the row)."""
    from publishing.channels import all_channels, get_channel
    from publishing.channels.errors import AuthExpired, RetryableError

    from .services import social_account_needs_reconnect

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


@shared_task(name="accounts.tasks.refresh_expiring_tokens", acks_late=True)
def refresh_expiring_tokens() -> dict:
    return refresh_expiring()
