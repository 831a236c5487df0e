"""Asking the networks again about what was kept: an item deleted by its author (or hidden, or
taken down) after cxhub read it is marked deleted upstream, never removed. Listing does not say
so on most networks (a deleted status simply leaves Mastodon's notifications), so a periodic
dispatcher (`claim_due`) takes the items posted in the last CXHUB_INBOX_RECHECK_DAYS that were
not asked about for CXHUB_INBOX_RECHECK_HOURS, and a task per account (`account_recheck`) asks
its network in batches (Channel.items_gone), outside any transaction, on the account's reading
budget (it gives way to publishing as ingestion does).

A claimed item counts as asked at the claim: a re-check that fails (a 429, a network down) waits
for the next round rather than hammering the network; a kept item is only ever marked, so a late
mark is the cost, never a wrong one.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from networks import ratelimits
from networks.channels import get_channel
from networks.models import AccountStatus, SocialAccount

from .ingestion import hearing_channels
from .models import InboundItem
from .services import items_mark_gone

log = logging.getLogger("cxhub.inbox")


@dataclass(frozen=True)
class Recheck:
    account_id: int
    asked: int = 0
    gone: int = 0
    error: str = ""


def claim_due(*, now: datetime | None = None) -> dict[int, list[int]]:
    """The items whose re-check is due, by account, claimed (counted as asked now)."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.CXHUB_INBOX_RECHECK_DAYS)
    asked_before = now - timedelta(hours=settings.CXHUB_INBOX_RECHECK_HOURS)
    with transaction.atomic():
        due = list(
            InboundItem.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                Q(checked_at__isnull=True) | Q(checked_at__lte=asked_before),
                posted_at__gte=since,
                deleted_upstream=False,
                account__status=AccountStatus.CONNECTED,
                account__sandbox=False,
                account__channel__in=hearing_channels(),
            )
            .order_by("checked_at", "posted_at")
            .values_list("pk", "account_id")[: settings.CXHUB_INBOX_RECHECK_BATCH_SIZE]
        )
        InboundItem.objects.filter(pk__in=[pk for pk, _ in due]).update(checked_at=now)
    by_account: dict[int, list[int]] = defaultdict(list)
    for item_id, account_id in due:
        by_account[account_id].append(item_id)
    return dict(by_account)


def account_recheck(*, account_id: int, item_ids: list[int]) -> Recheck:
    """Ask the account's network which of `item_ids` it no longer has, and mark those."""
    account = SocialAccount.objects.select_related("team").filter(pk=account_id).first()
    items = dict(
        InboundItem.objects.filter(
            pk__in=item_ids, account_id=account_id, deleted_upstream=False
        ).values_list("network_id", "pk")
    )
    if account is None or not items:
        return Recheck(account_id)
    channel = get_channel(account.channel)
    host = urlsplit(account.base_url or "").netloc.lower() or account.channel
    whose = ratelimits.caller(account_id=account.pk, channel=account.channel, host=host)
    if ratelimits.wait_for(whose, reading=True) > 0:
        return Recheck(account_id, error="rate limit")
    try:
        with ratelimits.calling(account_id=account.pk, channel=account.channel, host=host):
            gone = channel.items_gone(account, list(items))
    except NotImplementedError:
        return Recheck(account_id, error="the network cannot be asked")
    except Exception as exc:  # a refusal or a channel's bug: the next round asks again
        log.warning("inbox: re-checking account %s failed: %s", account.pk, exc)
        return Recheck(account_id, asked=len(items), error=str(exc))
    marked = items_mark_gone(
        account=account, item_ids=[items[network_id] for network_id in gone if network_id in items]
    )
    return Recheck(account_id, asked=len(items), gone=len(marked))
