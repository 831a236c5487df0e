"""Reading the networks for the watches: a periodic dispatcher claims the sources whose turn has
come (`claim_due`), and a task per source (`source_collect`) reads its network from the stored
cursor, page by page, each page stored with the cursor that follows it (services.posts_store),
then runs the watch's detectors. So a run stopped anywhere starts again after its last stored
page, and a post read twice is kept and counted once.

A source reads through a connected account of its network in the watch's team, or the nearest
team above it, with that account's credentials and within its request budget: listening reads
in the "reading" scope, which gives way to publishing (networks/ratelimits.py). The interval
adapts as the inbox's does: halved after a run that found something, half as long again after
a quiet one, between CXHUB_LISTENING_MIN_INTERVAL_SECONDS and CXHUB_LISTENING_MAX_INTERVAL_SECONDS,
doubled after a failure.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone

from inbox.ingestion import adapted_interval, reading_failure
from networks import ratelimits
from networks.channels import PublicQuery, get_channel
from networks.models import AccountStatus, SocialAccount

from . import alerts
from .models import Source, Watch
from .services import posts_store


@dataclass(frozen=True)
class Run:
    """What one run of one source did."""

    source_id: int
    hits: int = 0
    pages: int = 0
    alerts: int = 0
    skipped: str = ""
    error: str = ""


def next_interval(current: int, *, found: int, failed: bool = False) -> int:
    return adapted_interval(
        current,
        found=found,
        failed=failed,
        low=settings.CXHUB_LISTENING_MIN_INTERVAL_SECONDS,
        high=settings.CXHUB_LISTENING_MAX_INTERVAL_SECONDS,
    )


def claim_due(*, now: datetime | None = None) -> list[int]:
    """The sources of active watches whose turn has come, claimed for one run each: their next
    turn moves out by the lease (a run whose worker is lost is taken again after it)."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.CXHUB_LISTENING_LEASE_SECONDS)
    with transaction.atomic():
        due = list(
            Source.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(next_at__lte=now, watch__active=True)
            .order_by("next_at")
            .values_list("pk", flat=True)[: settings.CXHUB_LISTENING_BATCH_SIZE]
        )
        Source.objects.filter(pk__in=due).update(next_at=now + lease)
    return due


def reading_account(watch: Watch, network: str) -> SocialAccount | None:
    """The connected account of `network` a watch reads through: one of its team's or a team's
    below it (the nearest first), else one of the nearest team above."""
    team = watch.team
    paths = [team.path[:end] for end in range(team.steplen, len(team.path) + 1, team.steplen)]
    accounts = SocialAccount.objects.filter(
        channel=network, status=AccountStatus.CONNECTED, sandbox=False
    ).select_related("team")
    inside = accounts.filter(team__path__startswith=team.path).order_by("team__depth", "pk").first()
    if inside is not None:
        return inside
    return (
        accounts.filter(team__path__in=paths)
        .annotate(
            nearness=Case(
                *[When(team__path=path, then=Value(len(path))) for path in paths],
                default=Value(0),
                output_field=IntegerField(),
            )
        )
        .order_by("-nearness", "pk")
        .first()
    )


def source_collect(*, source_id: int, now: datetime | None = None) -> Run:
    """Read one source from its cursor, up to CXHUB_LISTENING_PAGES_PER_RUN pages, store what
    its watch keeps, run the watch's detectors, and set the source's next turn. Calls the network
    outside any transaction."""
    source = Source.objects.select_related("watch__team").filter(pk=source_id).first()
    if source is None:
        return Run(source_id, skipped="no source")
    watch = source.watch
    if not watch.active:
        return Run(source_id, skipped="watch paused")
    channel = get_channel(source.network)
    account = reading_account(watch, source.network)
    if account is None:
        message = f"No connected {channel.label} account in this team or above to read with."
        _finish(source, found=0, error=message)
        return Run(source_id, skipped="no account", error=message)
    host = urlsplit(account.base_url or "").netloc.lower() or account.channel
    whose = ratelimits.caller(account_id=account.pk, channel=account.channel, host=host)
    wait = ratelimits.wait_for(whose, reading=True)
    if wait > 0:
        _put_off(source, wait=wait)
        return Run(source_id, skipped="rate limit")
    query = PublicQuery(kind=source.kind, text=source.query, languages=tuple(watch.languages))
    cursor, hits, pages, raised = source.cursor, 0, 0, 0
    try:
        with ratelimits.calling(account_id=account.pk, channel=account.channel, host=host):
            while pages < settings.CXHUB_LISTENING_PAGES_PER_RUN:
                page = channel.search_public(
                    account, query, cursor, limit=settings.CXHUB_LISTENING_PAGE_SIZE
                )
                pages += 1
                stored = posts_store(
                    watch=watch,
                    network=source.network,
                    posts=page.posts,
                    source=source,
                    cursor=page.cursor,
                    read_via=account,
                )
                hits += len(stored.hits)
                cursor = page.cursor
                if stored.claims:
                    raised += len(alerts.claims_matched(watch, stored.claims))
                if not page.more or ratelimits.wait_for(whose, reading=True) > 0:
                    break
    except Exception as exc:  # a channel's bug must not stop the source for good
        failure = reading_failure(exc, account=account, whose=whose, what="listening")
        _finish(source, found=hits, error=failure.error, wait=failure.wait)
        return Run(source_id, hits=hits, pages=pages, error=str(exc))
    _finish(source, found=hits)
    watch.refresh_from_db(fields=["listening_since"])
    raised += len(alerts.evaluate(watch, now=now))
    return Run(source_id, hits=hits, pages=pages, alerts=raised)


def _finish(source: Source, *, found: int, error: str = "", wait: float | None = None) -> None:
    now = timezone.now()
    interval = next_interval(source.interval_seconds, found=found, failed=bool(error))
    after = max(float(interval), wait or 0.0)
    updates = {
        "next_at": now + timedelta(seconds=after),
        "interval_seconds": interval,
        "last_run_at": now,
        "last_error": error[:2000],
        "failures": source.failures + 1 if error else 0,
    }
    if found:
        updates["posts_total"] = F("posts_total") + found
    Source.objects.filter(pk=source.pk).update(**updates)


def _put_off(source: Source, *, wait: float) -> None:
    after = max(float(source.interval_seconds), wait)
    Source.objects.filter(pk=source.pk).update(next_at=timezone.now() + timedelta(seconds=after))
