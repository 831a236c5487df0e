"""Thin tasks of the inbox's ingestion (ingestion.py): they take ids and call it. Each is safe
to run twice: a second run of an account reads from the cursor the first one stored."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import ingestion, recheck, sandbox


@shared_task(name="inbox.tasks.ingest_due")
def ingest_due() -> int:
    """Periodic (cxhub/celery.py): claim the accounts whose turn has come and queue a run each
    (claim_due has committed: the tasks are queued after the claim)."""
    account_ids = ingestion.claim_due()
    for account_id in account_ids:
        ingest_account.delay(account_id)
    return len(account_ids)


@shared_task(
    name="inbox.tasks.ingest_account",
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=2,
    retry_jitter=True,
)
def ingest_account(account_id: int) -> int:
    """One account's run; the number of items it added."""
    return ingestion.account_ingest(account_id=int(account_id)).added


@shared_task(name="inbox.tasks.sandbox_trickle")
def sandbox_trickle() -> int:
    """Periodic in the demo (CXHUB_SANDBOX_INBOUND_SECONDS): one item on a sandbox account."""
    stored = sandbox.sandbox_trickle()
    return len(stored.added) if stored is not None else 0


@shared_task(name="inbox.tasks.recheck_due")
def recheck_due() -> int:
    """Periodic (cxhub/celery.py): claim the kept items whose re-check is due and queue a
    re-check per account (the claim has committed)."""
    due = recheck.claim_due()
    for account_id, item_ids in due.items():
        recheck_account.delay(account_id, item_ids)
    return sum(len(ids) for ids in due.values())


@shared_task(
    name="inbox.tasks.recheck_account",
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=2,
    retry_jitter=True,
)
def recheck_account(account_id: int, item_ids: list[int]) -> int:
    """One account's re-check; how many items it marked deleted upstream."""
    return recheck.account_recheck(
        account_id=int(account_id), item_ids=[int(i) for i in item_ids]
    ).gone
