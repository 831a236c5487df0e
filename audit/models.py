"""The audit trail: append-only events, each chained to the one before by a SHA-256 hash, and the
chain head that serialises writers and lets the verifier notice a removed tail."""

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
    change it records. Never updated, never deleted (PostgreSQL enforces it with a trigger)."""

    seq = models.BigIntegerField(unique=True, help_text="Position in the chain, from 1.")
    at = models.DateTimeField()
    # Null for the system (tasks, failed sign-ins). PROTECT: the trail must outlive no one.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
    )
    # The username at the time, so the record still reads right after a rename.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)  # "app_label.model"
    object_id = models.CharField(max_length=255, blank=True)
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
    )
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        # Django's internal queries (e.g. related lookups) go through the refusing QuerySet too.
        base_manager_name = "objects"
        indexes = [
            models.Index(fields=["team", "-seq"], name="audit_event_team_seq"),
            models.Index(fields=["object_type", "object_id"], name="audit_event_object"),
            models.Index(fields=["actor", "-seq"], name="audit_event_actor_seq"),
            models.Index(fields=["at"], name="audit_event_at"),
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
    """The single row (id=1) holding the last event's seq and hash.

    Writers lock it to take the next seq in turn; the verifier compares it with the last event,
    so removing events from the end of the chain does not go unnoticed. A data migration creates
    it, and `record` re-creates it if a test flush removed it.
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
    the leaf hashes (leaf i is the event of seq i + 1). Every perfect subtree gets its row once it
    is complete, so appending a leaf writes 1 row plus one per subtree it completes (2 on average,
    at most log2(n) + 1), and the root of any size or any RFC 9162 proof folds O(log n) rows (see
    audit.merkle_store). Rows are written by ``merkle_append`` alone and never change.
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
