"""Witnesses: every signed checkpoint sent somewhere the database's writers cannot change.

(First slice: the delivery rows are queued by the sealer; sending comes with the witnesses.)
"""

from .models import AuditCheckpoint, AuditWitnessDelivery


def configured_witnesses() -> list[str]:
    """The names of the witnesses this installation sends checkpoints to."""
    return []


def queue_deliveries(checkpoint: AuditCheckpoint) -> None:
    """One delivery row per configured witness, in the checkpoint's transaction."""
    AuditWitnessDelivery.objects.bulk_create(
        [
            AuditWitnessDelivery(checkpoint=checkpoint, witness=name)
            for name in configured_witnesses()
        ]
    )
