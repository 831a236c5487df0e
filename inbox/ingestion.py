"""Reading what comes back, account by account: a periodic dispatcher claims the accounts whose
turn has come (`claim_due`), and a task per account (`account_ingest`) reads its network from
the stored cursor, page by page, each page stored with the cursor that follows it
(services.items_store). So a run stopped anywhere starts again after its last stored page, and
an item read twice at a page edge is kept once (unique by account and network id).

The interval adapts to activity: halved after a run that found something, down to
CXHUB_INBOX_MIN_INTERVAL_SECONDS; half as long again after a quiet one, up to
CXHUB_INBOX_MAX_INTERVAL_SECONDS; doubled after a failure. Reading shares the account's request
budget with publishing and gives way first (networks/ratelimits.py: the "reading" scope stops
while publishing's reserve is all that is left; a 429 stops both).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from networks import ratelimits
from networks.channels import all_channels, get_channel
from networks.channels.errors import AuthExpired, ChannelError, RetryableError
from networks.models import AccountStatus, SocialAccount
from networks.services import social_account_needs_reconnect

from .models import IngestState
from .services import items_store

log = logging.getLogger("cxhub.inbox")


@dataclass(frozen=True)
class Run:
    """What one run of one account did."""

    account_id: int
    added: int = 0
    pages: int = 0
    # Why it did not read (or stopped): "" when it read to the end of what was waiting.
    skipped: str = ""
    error: str = ""


def hearing_channels() -> list[str]:
    return [channel.name for channel in all_channels() if channel.hears_back]


def next_interval(current: int, *, found: int, failed: bool = False) -> int:
    """The next wait of an account whose last run found `found` items (or failed)."""
    return adapted_interval(
        current,
        found=found,
        failed=failed,
        low=settings.CXHUB_INBOX_MIN_INTERVAL_SECONDS,
        high=settings.CXHUB_INBOX_MAX_INTERVAL_SECONDS,
    )


def adapted_interval(current: int, *, found: int, failed: bool, low: int, high: int) -> int:
    """The next wait of something read on a timer (an account's inbox, a watch's source) whose
    last run found `found` (or failed): half as long after a run that found something, half as
    long again after a quiet one, twice as long after a failure, between `low` and `high`."""
    high = max(low, high)
    if failed:
        wanted = current * 2
    elif found:
        wanted = current // 2
    else:
        wanted = current * 3 // 2
    return max(low, min(high, wanted))


# The dispatcher ---------------------------------------------------------------------------------
def claim_due(*, now: datetime | None = None) -> list[int]:
    """The accounts whose turn has come, claimed for one run each: their next turn moves out by
    the lease (a run whose worker is lost is taken again after it). Accounts that hear back and
    have no state yet get one, due now."""
    now = now or timezone.now()
    channels = hearing_channels()
    _start_new_accounts(channels, now)
    lease = timedelta(seconds=settings.CXHUB_INBOX_LEASE_SECONDS)
    with transaction.atomic():
        due = list(
            IngestState.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                next_at__lte=now,
                account__status=AccountStatus.CONNECTED,
                account__sandbox=False,
                account__channel__in=channels,
            )
            .order_by("next_at")
            .values_list("pk", "account_id")[: settings.CXHUB_INBOX_BATCH_SIZE]
        )
        IngestState.objects.filter(pk__in=[pk for pk, _ in due]).update(next_at=now + lease)
    return [account_id for _, account_id in due]


def _start_new_accounts(channels: list[str], now: datetime) -> None:
    missing = SocialAccount.objects.filter(
        status=AccountStatus.CONNECTED,
        sandbox=False,
        channel__in=channels,
        ingest_state__isnull=True,
    ).values_list("pk", flat=True)
    interval = settings.CXHUB_INBOX_MIN_INTERVAL_SECONDS
    IngestState.objects.bulk_create(
        [IngestState(account_id=pk, next_at=now, interval_seconds=interval) for pk in missing],
        ignore_conflicts=True,
    )


# One account's run ------------------------------------------------------------------------------
def account_ingest(*, account_id: int) -> Run:
    """Read what came to one account since its cursor, up to CXHUB_INBOX_PAGES_PER_RUN pages,
    then set its next turn. Calls the network outside any transaction."""
    state = (
        IngestState.objects.select_related("account__team").filter(account_id=account_id).first()
    )
    if state is None:
        return Run(account_id, skipped="no state")
    account = state.account
    channel = get_channel(account.channel)
    if account.status != AccountStatus.CONNECTED or account.sandbox or not channel.hears_back:
        _finish(state, found=0, wait=settings.CXHUB_INBOX_MAX_INTERVAL_SECONDS)
        return Run(account_id, skipped="not read")
    host = urlsplit(account.base_url or "").netloc.lower() or account.channel
    whose = ratelimits.caller(account_id=account.pk, channel=account.channel, host=host)
    wait = ratelimits.wait_for(whose, reading=True)
    if wait > 0:
        _put_off(state, wait=wait)
        return Run(account_id, skipped="rate limit")

    cursor, added, pages = state.cursor, 0, 0
    try:
        with ratelimits.calling(account_id=account.pk, channel=account.channel, host=host):
            while pages < settings.CXHUB_INBOX_PAGES_PER_RUN:
                page = channel.fetch_inbound(account, cursor, limit=settings.CXHUB_INBOX_PAGE_SIZE)
                pages += 1
                stored = items_store(account=account, items=page.items, cursor=page.cursor)
                added += len(stored.added)
                cursor = page.cursor
                if not page.more or ratelimits.wait_for(whose, reading=True) > 0:
                    break
    except Exception as exc:  # a channel's bug must not stop the account's reading for good
        failure = reading_failure(exc, account=account, whose=whose, what="inbox")
        _finish(state, found=added, error=failure.error, wait=failure.wait)
        return Run(account_id, added=added, pages=pages, error=str(exc))
    _finish(state, found=added)
    return Run(account_id, added=added, pages=pages)


@dataclass(frozen=True)
class Failure:
    """What a reading run that stopped on `exc` leaves on its record: the error, and how long
    the network asked to wait (None: the run's own interval)."""

    error: str
    wait: float | None = None


def reading_failure(
    exc: Exception, *, account: SocialAccount, whose: ratelimits.Caller, what: str
) -> Failure:
    """How a run that reads `account` (the inbox's, or listening's for a watch) takes a failure,
    the same for both: a retryable one waits as long as the network said (or its budget says);
    a refused token marks the account "needs reconnect"; a row kept meanwhile by another writer
    rolled its page back, to be read again; anything else is kept as the run's error (logged
    with its trace when it is not a channel's error: a bug must not stop the reading for good)."""
    if isinstance(exc, RetryableError):
        wait = max(exc.retry_after or 0.0, ratelimits.wait_for(whose, reading=True))
        return Failure(str(exc), wait or None)
    if isinstance(exc, AuthExpired):
        social_account_needs_reconnect(account_id=account.pk, error=str(exc))
        return Failure(str(exc))
    if isinstance(exc, IntegrityError):
        # Another writer kept one of the page's rows first: the page was rolled back, and the
        # next run reads it again from the cursor before it.
        return Failure(f"kept meanwhile by another writer: {exc}"[:500])
    if isinstance(exc, ChannelError | NotImplementedError):
        return Failure(str(exc))
    log.exception("%s: reading with account %s failed", what, account.pk)
    return Failure(f"{type(exc).__name__}: {exc}")


def _finish(state: IngestState, *, found: int, error: str = "", wait: float | None = None) -> None:
    """Set the account's next turn: after its (new) interval, or after `wait` when the network
    asked for longer."""
    now = timezone.now()
    interval = next_interval(state.interval_seconds, found=found, failed=bool(error))
    after = max(float(interval), wait or 0.0)
    updates = {
        "next_at": now + timedelta(seconds=after),
        "interval_seconds": interval,
        "last_run_at": now,
        "last_error": error[:2000],
        "failures": state.failures + 1 if error else 0,
    }
    if found:
        updates["last_new_at"] = now
        updates["items_total"] = F("items_total") + found
    IngestState.objects.filter(pk=state.pk).update(**updates)


def _put_off(state: IngestState, *, wait: float) -> None:
    """Move a turn that read nothing, because the network still holds the account, to when it
    may read (or its interval, if longer). No run took place: the last run's time, error and
    count of failures in a row stay as that run left them, so a held account does not read as
    healthy."""
    after = max(float(state.interval_seconds), wait)
    IngestState.objects.filter(pk=state.pk).update(
        next_at=timezone.now() + timedelta(seconds=after)
    )
