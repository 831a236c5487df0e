"""Periodic work of the audit trail: the sealer (audit.sealer) and the witnesses' deliveries."""

from celery import shared_task

from . import sealer


@shared_task(name="audit.tasks.seal")
def seal() -> int:
    """Fold committed events into the tree and sign a checkpoint if it grew; the new size."""
    return sealer.seal().after
