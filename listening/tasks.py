"""Thin tasks of listening (collection.py): they take ids and call it. Each is safe to run
twice: a second run of a source reads from the cursor the first one stored."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import collection, sandbox, services, webhooks
from .models import Watch


@shared_task(name="listening.tasks.collect_due")
def collect_due() -> int:
    """Periodic (cxhub/celery.py): claim the sources whose turn has come and queue a run each
    (claim_due has committed: the tasks are queued after the claim)."""
    source_ids = collection.claim_due()
    for source_id in source_ids:
        collect_source.delay(source_id)
    return len(source_ids)


@shared_task(
    name="listening.tasks.collect_source",
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=2,
    retry_jitter=True,
)
def collect_source(source_id: int) -> int:
    """One source's run; the number of hits it added."""
    return collection.source_collect(source_id=int(source_id)).hits


@shared_task(name="listening.tasks.purge_due")
def purge_due() -> int:
    """Periodic (cxhub/celery.py): purge every watch's posts, hits and minute figures past its
    retention (services.watch_purge; each purge is audited); the number of hits purged."""
    total = 0
    for watch in Watch.objects.select_related("team").order_by("pk"):
        total += services.watch_purge(watch=watch)["hits"]
    return total


@shared_task(name="listening.tasks.deliver_alert")
def deliver_alert(delivery_id: int) -> str:
    """One try of an alert's delivery to its watch's webhook (webhooks.deliver)."""
    return webhooks.deliver(delivery_id=int(delivery_id))


@shared_task(name="listening.tasks.deliver_due")
def deliver_due() -> int:
    """Periodic (cxhub/celery.py): queue the deliveries whose next try is due."""
    due = webhooks.deliveries_due()
    for delivery_id in due:
        deliver_alert.delay(delivery_id)
    return len(due)


@shared_task(name="listening.tasks.sandbox_stream")
def sandbox_stream() -> int:
    """Periodic in the demo (CXHUB_SANDBOX_LISTENING_SECONDS): a few public posts for each
    sandbox watch, at its steady rate."""
    return sandbox.stream_tick()
