"""Thin tasks of the dispatch engine (publishing/dispatch/): they take ids and call a service.

Each is safe to run twice: a redelivered publish_target finds its target no longer queued and
does nothing. A database error before anything was sent retries the task after a few seconds
(far below the broker's visibility timeout); everything else is left to the sweeper.
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from cxhub import liveness

from . import engagement
from .dispatch import claim, send, sweep


@shared_task(name="publishing.tasks.dispatch_due")
def dispatch_due() -> int:
    """Periodic (cxhub/celery.py): claim due targets and queue a publish task for each."""
    return len(claim.dispatch_due().queued)


@shared_task(
    name="publishing.tasks.publish_target",
    bind=True,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=5,
    retry_backoff=2,
    retry_backoff_max=30,
    retry_jitter=True,
)
def publish_target(self, target_id: int) -> str:
    """One target (what earlier versions queued; the dispatcher now queues groups)."""
    worker = liveness.worker_label(self.request.hostname)
    return send.publish_target(target_id=int(target_id), worker=worker)


@shared_task(
    name="publishing.tasks.publish_targets",
    bind=True,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=5,
    retry_backoff=2,
    retry_backoff_max=30,
    retry_jitter=True,
)
def publish_targets(self, target_ids: list[int]) -> dict[int, str]:
    """A group of targets claimed by one dispatcher batch (dispatch/claim.py)."""
    worker = liveness.worker_label(self.request.hostname)
    return send.publish_targets(
        target_ids=[int(i) for i in target_ids],
        worker=worker,
        # In a worker, the group's sends may go on after the task returns (lanes.in_background).
        in_background=not self.request.is_eager,
    )


@shared_task(name="publishing.tasks.sweep_stuck")
def sweep_stuck() -> int:
    """Periodic (cxhub/celery.py): return targets whose worker or message was lost."""
    result = sweep.sweep_stuck()
    return len(result.sending) + len(result.queued)


@shared_task(name="publishing.tasks.engagement_due")
def engagement_due() -> int:
    """Periodic (cxhub/celery.py): claim the published targets whose reading is due and queue a
    reading per account (the claim has committed)."""
    due = engagement.claim_due()
    for account_id, target_ids in due.items():
        read_engagement.delay(account_id, target_ids)
    return sum(len(ids) for ids in due.values())


@shared_task(
    name="publishing.tasks.read_engagement",
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=2,
    retry_jitter=True,
)
def read_engagement(account_id: int, target_ids: list[int]) -> int:
    """One account's figures; how many readings were stored."""
    return engagement.account_engagement_read(
        account_id=int(account_id), target_ids=[int(i) for i in target_ids]
    ).stored
