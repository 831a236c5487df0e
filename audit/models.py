"""The audit trail: append-only events, folded by the sealer (audit.sealer) into a Merkle tree
whose signed checkpoints are sent to witnesses outside the database.

Events written before the tree existed also carry the SHA-256 hash chain of the first design
(prev_hash, hash, and the chain head); that chain was closed when the sealer took over and stays
verifiable for what it covered (audit.verify.verify_chain)."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

GENESIS_HASH = "0" * 64


class AuditImmutableError(Exception):
    """Something tried to change or remove an audit event: events are append-only."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutableError("audit events are append-only: QuerySet.update() is refused")

    def delete(self):
        raise AuditImmutableError("audit events are append-only: QuerySet.delete() is refused")

    def bulk_update(self, objs, fields, batch_size=None):
        # Refused up front: inside bulk_update's own atomic block the error would spoil the
        # caller's transaction.
        raise AuditImmutableError("audit events are append-only: bulk_update() is refused")


class AuditEvent(models.Model):
    """One thing that happened, written by `audit.services.record` in the transaction of the
    change it records. Never updated, never deleted (PostgreSQL enforces it with a trigger).

    Every index is paid for by every audited write: only those the pages, filters and checks
    read are kept (no single-column foreign key indexes beside the (actor, seq) and (team, seq)
    ones; the chain hash unique only where it is set).
    """

    # Taken from the database's sequence in the writer's transaction, with no lock: rising, but
    # with holes where a transaction rolled back, and committed out of order by concurrent
    # writers. The event's place in the Merkle tree is its AuditLeaf's index, given by the sealer.
    seq = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    # Null for the system (tasks, failed sign-ins). PROTECT: the trail must outlive no one.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        db_index=False,  # audit_event_actor_seq leads with it
        # No database constraint: its check at commit would lock the person's row (FOR KEY
        # SHARE) in every audited transaction; PROTECT still stops deleting them in Django.
        db_constraint=False,
    )
    # The username at the time, so the record still reads right after a rename.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100, blank=True)  # "app_label.model"
    object_id = models.CharField(max_length=255, blank=True)
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        db_index=False,  # audit_event_team_seq leads with it
        db_constraint=False,  # as for the actor
    )
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    # The closed hash chain (events up to AuditChainHead.seq); blank and null after it.
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        # Django's internal queries (e.g. related lookups) go through the refusing QuerySet too.
        base_manager_name = "objects"
        indexes = [
            models.Index(fields=["team", "-seq"], name="audit_event_team_seq"),
            models.Index(fields=["object_type", "object_id"], name="audit_event_object"),
            models.Index(fields=["actor", "-seq"], name="audit_event_actor_seq"),
            # And on "at", made by migration audit.0007 outside this list: a BRIN index on
            # PostgreSQL (the events come in time order, so a block range summary finds a
            # period, for a fraction of a B-tree's cost on every insert), a B-tree elsewhere.
            # Exact and prefix filters on the action (LIKE 'post.%' needs pattern ops).
            models.Index(
                fields=["action"], name="audit_event_action", opclasses=["varchar_pattern_ops"]
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["hash"],
                condition=models.Q(hash__isnull=False),
                name="audit_event_chain_hash_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    def save(self, **kwargs):
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields"):
            raise AuditImmutableError(f"audit events are append-only: event #{self.seq} exists")
        kwargs["force_insert"] = True
        super().save(**kwargs)

    save.alters_data = True

    def delete(self, *args, **kwargs):
        raise AuditImmutableError(f"audit events are append-only: event #{self.seq} stays")

    delete.alters_data = True


class AuditChainHead(models.Model):
    """The single row (id=1) holding the last chained event's seq and hash.

    Under the first design writers locked it to take the next seq in turn. Since the Merkle tree
    (migration 0005) it is frozen: it marks the end of the closed chain, which verify_chain still
    checks, so removing the chain's last events does not go unnoticed.
    """

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="audit_chain_head_singleton"),
        ]

    def __str__(self) -> str:
        return f"chain head #{self.seq} {self.hash[:12]}…"


class MerkleNode(models.Model):
    """The hash of one perfect (complete, aligned) subtree of the Merkle tree over the events.

    ``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds
    the leaf hashes (leaf i is the event AuditLeaf i names). Every perfect subtree gets its row
    once it is complete, so appending a leaf writes 1 row plus one per subtree it completes (2 on
    average, at most log2(n) + 1), and the root of any size or any RFC 9162 proof folds O(log n)
    rows (see audit.merkle_store). Rows are written by ``merkle_append`` alone and never change.
    """

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "index"], name="audit_merkle_node_position"),
        ]

    def __str__(self) -> str:
        return f"merkle node {self.level}/{self.index} {bytes(self.hash).hex()[:12]}…"


class AuditLeaf(models.Model):
    """Leaf ``index`` of the Merkle tree is this event (given by the sealer, in the order it
    folds events in). Dense from 0; never changes."""

    index = models.BigIntegerField(primary_key=True)
    event = models.OneToOneField(
        AuditEvent, on_delete=models.PROTECT, related_name="leaf", db_column="event_seq"
    )

    def __str__(self) -> str:
        return f"leaf {self.index} = event #{self.event_id}"


class AuditTreeHead(models.Model):
    """The single row (id=1) with the tree's size and root: the sealer locks it, so one sealer
    appends at a time, and reads it to know where the next leaf goes."""

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID)
    size = models.BigIntegerField(default=0)
    root = models.BinaryField(max_length=32, default=b"")
    sealed_at = models.DateTimeField(null=True, blank=True)
    # Every event with a seq up to the horizon is a leaf (or its transaction rolled back): the
    # sealer looks for new events above it only (audit.sealer, "The horizon").
    horizon = models.BigIntegerField(default=0)
    # A seq the horizon may move up to once every transaction running when it was read has
    # ended, and the first transaction id not yet started then (PostgreSQL's xid8, as a number).
    next_horizon = models.BigIntegerField(null=True, blank=True)
    next_horizon_xmax = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="audit_tree_head_singleton"),
        ]

    def __str__(self) -> str:
        return f"tree head {self.size} leaves"


class AuditCheckpoint(models.Model):
    """A signed checkpoint of the tree (audit.checkpoint: a C2SP tlog-checkpoint in a signed
    note), kept here for the pages and the API; what proves anything is the copy the witnesses
    hold."""

    size = models.BigIntegerField(db_index=True)
    root = models.BinaryField(max_length=32)
    at = models.DateTimeField()
    note = models.TextField()

    class Meta:
        ordering = ["-size", "-id"]

    def __str__(self) -> str:
        return f"checkpoint {self.size} at {self.at:%Y-%m-%d %H:%M:%S}"


class AuditWitnessDelivery(models.Model):
    """A checkpoint sent (or still to be sent) to one witness: a directory, a webhook or the
    auditors' e-mail (audit.witnesses)."""

    checkpoint = models.ForeignKey(
        AuditCheckpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    witness = models.CharField(max_length=100)
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["checkpoint", "witness"], name="audit_witness_delivery_once"
            ),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.checkpoint_id} to {self.witness}"
