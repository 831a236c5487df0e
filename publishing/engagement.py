"""How our published posts did: each published target's figures (likes, reposts, replies,
quotes, impressions, clicks) read from its network on a decaying schedule, kept as a series
(TargetMetrics) for the post page, the API and the reports.

The schedule (`next_reading`): a first reading a quarter of an hour after publishing, then every
half hour for the first six hours, every three hours until the second day ends, then daily until
the thirtieth; then no more. A periodic task claims the targets whose reading is due
(`claim_due`, SKIP LOCKED, a lease) and a task per account reads them in as few calls as its
network allows (`account_engagement_read`, Channel.fetch_engagement), outside any transaction.
Reading shares the account's request budget with publishing and gives way first (the "reading"
scope of networks/ratelimits.py), as the inbox's ingestion does.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import record
from networks import ratelimits
from networks.channels import Engagement, get_channel
from networks.channels.errors import ChannelError, RetryableError
from networks.models import SocialAccount

from .models import PostTarget, TargetMetrics, TargetStatus
from .preflight import delivery_channel

log = logging.getLogger("cxhub.publishing")

FIRST_READING = timedelta(minutes=15)
# (age below which, the step between readings)
STEPS = (
    (timedelta(hours=6), timedelta(minutes=30)),
    (timedelta(hours=48), timedelta(hours=3)),
    (timedelta(days=30), timedelta(days=1)),
)
# Posts asked for in one call at most (the smallest batch the networks take: Bluesky's 25).
BATCH = 25
# A claimed reading whose worker was lost is claimed again after this.
LEASE = timedelta(minutes=10)
# After a failure that names no wait, the next try.
RETRY = timedelta(minutes=10)
_FIGURES = ("likes", "reposts", "replies", "quotes", "impressions", "clicks")


def first_reading(published_at: datetime) -> datetime:
    return published_at + FIRST_READING


def next_reading(published_at: datetime, now: datetime) -> datetime | None:
    """When a target published at `published_at` is read next, after a reading at `now`;
    None once it is thirty days old."""
    age = now - published_at
    for below, step in STEPS:
        if age < below:
            return min(now + step, published_at + STEPS[-1][0])
    return None


# The dispatcher ---------------------------------------------------------------------------------
def claim_due(*, now: datetime | None = None) -> dict[int, list[int]]:
    """The targets whose reading is due, claimed (their next reading moves out by the lease), by
    account."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            PostTarget.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(metrics_next_at__lte=now, status=TargetStatus.PUBLISHED)
            .exclude(external_id="")
            .order_by("metrics_next_at")
            .values_list("pk", "social_account_id")[: settings.CXHUB_ENGAGEMENT_BATCH_SIZE]
        )
        PostTarget.objects.filter(pk__in=[pk for pk, _ in due]).update(metrics_next_at=now + LEASE)
    by_account: dict[int, list[int]] = defaultdict(list)
    for target_id, account_id in due:
        by_account[account_id].append(target_id)
    return dict(by_account)


# One account's reading --------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    account_id: int
    stored: int = 0
    error: str = ""


def account_engagement_read(*, account_id: int, target_ids: list[int]) -> Reading:
    """Read the figures of `target_ids` (published targets of one account) and store them."""
    account = SocialAccount.objects.select_related("team").filter(pk=account_id).first()
    # Only targets still waiting for this reading (due, or claimed within the lease): a task
    # the broker delivers twice finds them read, their next reading beyond the lease, and
    # stores nothing twice.
    targets = list(
        PostTarget.objects.filter(
            pk__in=target_ids,
            social_account_id=account_id,
            status=TargetStatus.PUBLISHED,
            metrics_next_at__lte=timezone.now() + LEASE,
        ).exclude(external_id="")
    )
    if account is None or not targets:
        return Reading(account_id)
    channel = get_channel(delivery_channel(account))
    host = urlsplit(account.base_url or "").netloc.lower() or account.channel
    whose = ratelimits.caller(account_id=account.pk, channel=account.channel, host=host)
    wait = ratelimits.wait_for(whose, reading=True)
    if wait > 0:
        _postpone(targets, timedelta(seconds=wait))
        return Reading(account_id, error="rate limit")
    figures: dict[str, Engagement] = {}
    try:
        with ratelimits.calling(account_id=account.pk, channel=account.channel, host=host):
            for start in range(0, len(targets), BATCH):
                ids = [target.external_id for target in targets[start : start + BATCH]]
                figures.update(channel.fetch_engagement(account, ids))
    except NotImplementedError:
        # The network gives no figures (a webhook): never asked again.
        PostTarget.objects.filter(pk__in=[t.pk for t in targets]).update(metrics_next_at=None)
        return Reading(account_id, error="no figures on this network")
    except RetryableError as exc:
        _postpone(targets, max(RETRY, timedelta(seconds=exc.retry_after or 0)))
        if figures:
            engagement_store(account=account, targets=targets, figures=figures)
        return Reading(account_id, error=str(exc))
    except Exception as exc:  # a refusal, or a channel's bug: neither stops the other readings
        if not isinstance(exc, ChannelError):
            log.exception("engagement: reading account %s failed", account.pk)
        _postpone(targets, timedelta(hours=1))
        return Reading(account_id, error=str(exc))
    stored = engagement_store(account=account, targets=targets, figures=figures)
    return Reading(account_id, stored=stored)


def _postpone(targets: list[PostTarget], wait: timedelta) -> None:
    PostTarget.objects.filter(pk__in=[t.pk for t in targets]).update(
        metrics_next_at=timezone.now() + wait
    )


@transaction.atomic
def engagement_store(
    *, account: SocialAccount, targets: list[PostTarget], figures: dict[str, Engagement]
) -> int:
    """Keep one reading per target the network answered for and set each target's next reading
    (none for a post the network no longer has); one audit event for the batch."""
    now = timezone.now()
    rows, read, gone = [], [], []
    for target in targets:
        found = figures.get(target.external_id)
        if found is None:
            target.metrics_next_at = now + RETRY
            continue
        if found.deleted:
            target.metrics_next_at = None
            gone.append(target.pk)
            continue
        rows.append(
            TargetMetrics(
                target=target,
                at=now,
                **{name: _count(getattr(found, name)) for name in _FIGURES},
            )
        )
        read.append(target.pk)
        target.metrics_next_at = next_reading(target.published_at or now, now)
    TargetMetrics.objects.bulk_create(rows)
    PostTarget.objects.bulk_update(targets, ["metrics_next_at"])
    if read or gone:
        record(
            actor=None,
            action="engagement.read",
            obj=account,
            team=account.team,
            data={"targets": sorted(read), "gone_from_network": sorted(gone)},
        )
    return len(rows)


def _count(value: int | None) -> int | None:
    """A figure as stored: a whole number from 0, None when the network gave none."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
