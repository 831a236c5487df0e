"""What the audit page shows of the log's integrity: the tree, the latest signed checkpoint, the
window an event may wait for one (and whether it is exceeded), and what each witness last got.
Seven queries (one more per witness with deliveries waiting), whatever the length of the trail."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max

from audit.models import AuditCheckpoint, AuditTreeHead, AuditWitnessDelivery
from audit.proofs import origin
from audit.sealer import CheckpointLag, checkpoint_lag, latest_checkpoint, unsealed


@dataclass(frozen=True)
class WitnessStatus:
    name: str
    last_delivered_at: datetime | None
    pending: int
    last_error: str


@dataclass(frozen=True)
class Integrity:
    tree_size: int
    unsealed: int
    checkpoint: AuditCheckpoint | None
    origin: str
    lag: CheckpointLag
    witnesses: list[WitnessStatus]

    @property
    def window(self) -> timedelta:
        return self.lag.window


def integrity() -> Integrity:
    checkpoint = latest_checkpoint()
    head = AuditTreeHead.objects.filter(pk=AuditTreeHead.SINGLETON_ID).values_list(
        "size", "horizon"
    )
    size, horizon = next(iter(head), (0, 0))
    return Integrity(
        tree_size=size,
        unsealed=unsealed(horizon).count(),
        checkpoint=checkpoint,
        origin=origin(checkpoint) if checkpoint is not None else "",
        lag=checkpoint_lag(latest=checkpoint, sealed_to=horizon),
        witnesses=_witnesses(),
    )


def _witnesses() -> list[WitnessStatus]:
    """Per witness that has been sent anything: its last delivery, how many wait, and the error
    of the latest that waits (one query per witness: there are at most a few)."""
    delivered = dict(
        AuditWitnessDelivery.objects.filter(delivered_at__isnull=False)
        .values("witness")
        .annotate(last=Max("delivered_at"))
        .values_list("witness", "last")
    )
    pending = dict(
        AuditWitnessDelivery.objects.filter(delivered_at__isnull=True)
        .values("witness")
        .annotate(count=Count("id"))
        .values_list("witness", "count")
    )
    statuses = []
    for name in sorted(set(delivered) | set(pending)):
        error = ""
        if pending.get(name):
            error = (
                AuditWitnessDelivery.objects.filter(witness=name, delivered_at__isnull=True)
                .order_by("-id")
                .values_list("last_error", flat=True)
                .first()
            ) or ""
        statuses.append(
            WitnessStatus(
                name=name,
                last_delivered_at=delivered.get(name),
                pending=pending.get(name, 0),
                last_error=error,
            )
        )
    return statuses
