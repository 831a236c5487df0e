"""The sealer: folds committed events into the Merkle tree and signs checkpoints of it, off the
request path (a periodic task, audit.tasks.seal; `manage.py audit_checkpoint` at once).

Design note
-----------
* Writers only insert: the event (its seq from the database's sequence) and a row in the queue
  (AuditUnsealed), in their own transaction. Seqs rise but commit out of order, and rolled-back
  transactions leave holes, so the tree does not index by seq: the sealer reads the queue (which
  holds committed events only), gives each event the next leaf index in seq order, and writes
  its AuditLeaf row, the tree's new nodes and the tree head, and empties those queue rows, all in
  one transaction. One sealer at a time: it locks the tree head row.
* A checkpoint (audit.checkpoint: a C2SP tlog-checkpoint, its origin the signing key's name, one
  extension line ``time <UTC ISO 8601>``) is signed whenever the tree grew since the last one,
  with the key from the environment or a file (never the database), and stored with a delivery
  row per configured witness; audit.witnesses sends them after the commit.
* The window from an event's commit to its first signed checkpoint is
  CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS; ``checkpoint_lag`` measures it for /healthz and the page.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from .bulk import delete_queued, insert_leaves
from .checkpoint import NoteSigner, checkpoint_body, load_signing_key, sign_note_with
from .hashing import EVENT_FIELDS, canonical_event
from .merkle import EMPTY_ROOT, leaf_hash
from .merkle_store import merkle_append, merkle_root
from .models import AuditCheckpoint, AuditEvent, AuditLeaf, AuditTreeHead, AuditUnsealed
from .witnesses import queue_deliveries

SEAL_BATCH = 1000


@dataclass(frozen=True)
class SealResult:
    before: int  # tree size before
    after: int  # tree size after
    root: bytes
    checkpoint: AuditCheckpoint | None = None  # signed in this run, if any

    @property
    def added(self) -> int:
        return self.after - self.before


def locked_tree_head() -> AuditTreeHead:
    """The tree head, locked until the transaction ends (re-created after a test flush)."""
    head = AuditTreeHead.objects.select_for_update().filter(pk=AuditTreeHead.SINGLETON_ID).first()
    if head is None:
        AuditTreeHead.objects.bulk_create(
            [AuditTreeHead(id=AuditTreeHead.SINGLETON_ID, size=0, root=EMPTY_ROOT)],
            ignore_conflicts=True,
        )
        head = AuditTreeHead.objects.select_for_update().get(pk=AuditTreeHead.SINGLETON_ID)
    return head


def tree_head() -> tuple[int, bytes]:
    """The sealed tree's (size, root), read without a lock."""
    head = AuditTreeHead.objects.filter(pk=AuditTreeHead.SINGLETON_ID).first()
    if head is None or not head.size:
        return 0, EMPTY_ROOT
    return head.size, bytes(head.root)


def _seal_batch(head: AuditTreeHead, batch_size: int) -> int:
    """Fold up to batch_size queued events into the tree; the number folded. Rows as tuples and
    bulk writes (audit.bulk): no model instance per event."""
    queued = list(AuditUnsealed.objects.order_by("seq").values_list("seq", flat=True)[:batch_size])
    if not queued:
        return 0
    rows = list(
        AuditEvent.objects.filter(seq__in=queued).order_by("seq").values_list(*EVENT_FIELDS)
    )
    leaves = [
        leaf_hash(canonical_event(**dict(zip(EVENT_FIELDS, row, strict=True))).encode("utf-8"))
        for row in rows
    ]
    seqs = [row[0] for row in rows]
    if leaves:
        size = merkle_append(leaf_hashes=leaves, start_index=head.size)
        insert_leaves(head.size, seqs)
        head.size = size
        head.root = merkle_root(size=size)
        head.sealed_at = timezone.now()
        head.save(update_fields=["size", "root", "sealed_at"])
    # A queued seq without its event cannot come from record() (both go in one transaction);
    # it leaves the queue too, or it would block it.
    delete_queued(queued)
    return len(queued)


def seal(*, batch_size: int = SEAL_BATCH, sign: bool = True) -> SealResult:
    """Fold every committed, queued event into the tree, a batch per transaction, then sign a
    checkpoint if the tree grew since the last one (and a signing key is set), in a transaction
    of its own: a signing key that fails to load leaves the tree sealed, and says so."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    before = None
    while True:
        with transaction.atomic():
            head = locked_tree_head()
            if before is None:
                before = head.size
            if _seal_batch(head, batch_size) < batch_size:
                break
    checkpoint = None
    if sign:
        with transaction.atomic():
            head = locked_tree_head()
            checkpoint = sign_checkpoint(head)
    return SealResult(
        before=before,
        after=head.size,
        root=bytes(head.root) if head.size else EMPTY_ROOT,
        checkpoint=checkpoint,
    )


def signers() -> list[NoteSigner]:
    """The keys checkpoints are signed with (today one: CXHUB_AUDIT_SIGNING_KEY)."""
    signer = load_signing_key()
    return [signer] if signer is not None else []


def sign_checkpoint(head: AuditTreeHead, *, force: bool = False) -> AuditCheckpoint | None:
    """Sign and store a checkpoint of the (locked) tree head, unless the latest already covers
    its size or was signed less than CXHUB_AUDIT_CHECKPOINT_SECONDS ago (``force`` signs anyway:
    an export or a proof that needs the whole tree covered, a key rotation); None without a
    signing key. The interval bounds the checkpoints a busy log piles up (and every verifier
    reads): a few a minute, not one a sealer run."""
    keys = signers()
    if not keys:
        return None
    latest = latest_checkpoint()
    now = timezone.now()
    if latest is not None and not force:
        if latest.size >= head.size:
            return None
        if now - latest.at < timedelta(seconds=settings.CXHUB_AUDIT_CHECKPOINT_SECONDS):
            return None
    root = bytes(head.root) if head.size else EMPTY_ROOT
    body = checkpoint_body(keys[0].name, head.size, root, (f"time {format_time(now)}",))
    checkpoint = AuditCheckpoint.objects.create(
        size=head.size, root=root, at=now, note=sign_note_with(body, keys)
    )
    queue_deliveries(checkpoint)
    return checkpoint


def checkpoint_now() -> AuditCheckpoint | None:
    """Seal what is queued and sign a checkpoint even if the latest covers the same size."""
    seal(sign=False)
    with transaction.atomic():
        return sign_checkpoint(locked_tree_head(), force=True)


def format_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def latest_checkpoint() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-size", "-id").first()


@dataclass(frozen=True)
class CheckpointLag:
    """How long the oldest event without a signed checkpoint has waited, against the window."""

    window: timedelta
    oldest_uncovered_at: datetime | None  # None: every event is in a checkpoint
    now: datetime
    signing_key: bool

    @property
    def lag(self) -> timedelta:
        if self.oldest_uncovered_at is None:
            return timedelta(0)
        return max(timedelta(0), self.now - self.oldest_uncovered_at)

    @property
    def exceeded(self) -> bool:
        return self.oldest_uncovered_at is not None and self.lag > self.window


_UNSET = object()


def checkpoint_lag(*, latest=_UNSET) -> CheckpointLag:
    """The oldest event not covered by the latest checkpoint (given, or read: one query more):
    still queued, or sealed into leaves beyond the checkpoint's size. Two indexed queries."""
    if latest is _UNSET:
        latest = latest_checkpoint()
    covered = latest.size if latest is not None else 0
    oldest = AuditEvent.objects.filter(seq__in=AuditUnsealed.objects.values("seq")).aggregate(
        at=Min("at")
    )["at"]
    first_uncovered = (
        AuditLeaf.objects.filter(index=covered).values_list("event__at", flat=True).first()
    )
    candidates = [at for at in (oldest, first_uncovered) if at is not None]
    return CheckpointLag(
        window=timedelta(seconds=settings.CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS),
        oldest_uncovered_at=min(candidates) if candidates else None,
        now=timezone.now(),
        signing_key=bool(signers()),
    )
