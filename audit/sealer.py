"""The sealer: folds committed events into the Merkle tree and signs checkpoints of it, off the
request path (a periodic task, audit.tasks.seal; `manage.py audit_checkpoint` at once).

Design note
-----------
* Writers only insert the event (its seq from the database's sequence), in their own
  transaction. Seqs rise but commit out of order, and rolled-back transactions leave holes, so
  the tree does not index by seq: the sealer reads the committed events that are not yet leaves,
  gives each the next leaf index in seq order, and writes its AuditLeaf row, the tree's new
  nodes and the tree head, in one transaction. One sealer at a time: it locks the tree head row.
* The horizon (AuditTreeHead.horizon): every event at or below it is a leaf, so the sealer
  looks above it only (an anti-join on the leaves' unique event column). It moves up in two
  steps, because an event below the newest seq may still be on its way (taken, not committed):
  the sealer notes the sequence's last value L, then the first transaction id not yet started,
  X (a new statement, so a new snapshot, after L was read). Writers take their seq through
  audit_next_seq(), which gives the transaction its id first, so every transaction holding a
  seq up to L had an id below X. At a later run, once the oldest running transaction is at or
  past X, all of them have committed (their events are read by that run) or rolled back, and
  the horizon moves to L. Transaction ids are the server's, so a long transaction anywhere on it
  (another database's too) holds the horizon where it is; the sealer still seals every committed
  event, reading further above the horizon meanwhile. SQLite runs one writing transaction at a
  time, so its seqs commit in order and the horizon follows the last event sealed.
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
from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef
from django.utils import timezone

from .bulk import insert_leaves
from .checkpoint import NoteSigner, checkpoint_body, load_signing_key, sign_note_with
from .hashing import EVENT_FIELDS, canonical_event
from .merkle import EMPTY_ROOT, leaf_hash
from .merkle_store import merkle_append, merkle_root
from .models import AuditCheckpoint, AuditEvent, AuditLeaf, AuditTreeHead
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


def unsealed(horizon: int):
    """The committed events not yet in the tree: above the horizon, without a leaf."""
    return AuditEvent.objects.filter(seq__gt=horizon).exclude(
        Exists(AuditLeaf.objects.filter(event_id=OuterRef("seq")))
    )


def horizon() -> int:
    """The sealed horizon, read without a lock (0 before the first seal)."""
    found = AuditTreeHead.objects.filter(pk=AuditTreeHead.SINGLETON_ID).values_list("horizon")
    return next(iter(found), (0,))[0]


def _horizon_reached(head: AuditTreeHead) -> bool:
    """Has every transaction that was running when the sealer noted next_horizon ended?"""
    if head.next_horizon is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        [oldest_running] = cursor.fetchone()
    return oldest_running >= head.next_horizon_xmax


def _note_next_horizon(head: AuditTreeHead) -> None:
    """The sequence's last value, then (a statement later, so in a new snapshot) the first
    transaction id not yet started: see "The horizon" above."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(pg_sequence_last_value("
            "pg_get_serial_sequence('audit_auditevent', 'seq')::regclass), 0)"
        )
        [last_value] = cursor.fetchone()
        cursor.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        [xmax] = cursor.fetchone()
    head.next_horizon, head.next_horizon_xmax = last_value, xmax


def _seal_batch(head: AuditTreeHead, batch_size: int) -> int:
    """Fold up to batch_size committed events above the horizon into the tree, and move the
    horizon when it may; the number folded. Rows as tuples and bulk writes (audit.bulk): no
    model instance per event."""
    postgresql = connection.vendor == "postgresql"
    # Before the events are read: a transaction seen ended here has its events read below.
    reached = postgresql and _horizon_reached(head)
    rows = list(unsealed(head.horizon).order_by("seq").values_list(*EVENT_FIELDS)[:batch_size])
    if rows:
        leaves = [
            leaf_hash(canonical_event(**dict(zip(EVENT_FIELDS, row, strict=True))).encode("utf-8"))
            for row in rows
        ]
        size = merkle_append(leaf_hashes=leaves, start_index=head.size)
        insert_leaves(head.size, [row[0] for row in rows])
        head.size = size
        head.root = merkle_root(size=size)
        head.sealed_at = timezone.now()
    moved = False
    if len(rows) < batch_size:  # every committed event is in: the horizon may move
        if not postgresql:
            moved = bool(rows)
            head.horizon = max(head.horizon, rows[-1][0]) if rows else head.horizon
        elif reached or head.next_horizon is None:
            moved = True
            if reached:
                head.horizon = max(head.horizon, head.next_horizon)
            _note_next_horizon(head)
    if rows or moved:
        head.save()
    return len(rows)


def seal(*, batch_size: int = SEAL_BATCH, sign: bool = True) -> SealResult:
    """Fold every committed event not yet in the tree into it, a batch per transaction, then sign a
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
    """Seal what has committed and sign a checkpoint even if the latest covers the same size."""
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


def checkpoint_lag(*, latest=_UNSET, sealed_to: int | None = None) -> CheckpointLag:
    """The oldest event not covered by the latest checkpoint (given, or read: one query more):
    not yet sealed (above the horizon: given as ``sealed_to``, or read), or sealed into leaves
    beyond the checkpoint's size. Two indexed queries, and those not given."""
    if latest is _UNSET:
        latest = latest_checkpoint()
    covered = latest.size if latest is not None else 0
    if sealed_to is None:
        sealed_to = horizon()
    oldest = unsealed(sealed_to).aggregate(at=Min("at"))["at"]
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
