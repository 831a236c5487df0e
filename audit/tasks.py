"""Periodic work of the audit trail: the sealer (audit.sealer) and the witnesses' deliveries."""

from celery import shared_task

from . import sealer, witnesses


@shared_task(name="audit.tasks.seal")
def seal() -> int:
    """Fold committed events into the tree, sign a checkpoint if it grew, and send the pending
    checkpoints to the witnesses (failed ones again); the new size."""
    size = sealer.seal().after
    witnesses.deliver_pending()
    return size
