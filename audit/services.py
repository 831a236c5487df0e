"""Writing the audit trail: `record` appends one event to the chain, inside the caller's
transaction, so the event commits or rolls back with the change it records."""

from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import models, transaction
from django.utils import timezone

from .hashing import event_hash, normalise_data
from .models import GENESIS_HASH, AuditChainHead, AuditEvent


class AuditOutsideTransactionError(RuntimeError):
    """`record` was called in autocommit mode: the event could outlive a change that rolls back
    (or be lost when the change commits). Call it inside the service's transaction."""


def _locked_chain_head() -> AuditChainHead:
    """The chain head, locked until the caller's transaction ends: writers take seqs in turn.

    The data migration creates the row; a flush between transactional tests removes it, so it is
    re-created here with an INSERT that ignores a concurrent writer's identical insert.
    """
    head = AuditChainHead.objects.select_for_update().filter(pk=AuditChainHead.SINGLETON_ID).first()
    if head is None:
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(id=AuditChainHead.SINGLETON_ID, seq=0, hash=GENESIS_HASH)],
            ignore_conflicts=True,
        )
        head = AuditChainHead.objects.select_for_update().get(pk=AuditChainHead.SINGLETON_ID)
    return head


def record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    team=None,
    data: dict | None = None,
) -> AuditEvent:
    """Append an event to the audit chain and return it.

    `actor` is the user who acted, or None (or an AnonymousUser) for the system. `obj` gives
    `object_type` ("app_label.model") and `object_id` unless they are given explicitly.

    The chain head stays locked until the caller's transaction ends, so every audited write
    after this call waits for it: record near the end of the transaction.
    """
    [event] = record_many(
        [
            {
                "actor": actor,
                "action": action,
                "obj": obj,
                "object_type": object_type,
                "object_id": object_id,
                "team": team,
                "data": data,
            }
        ]
    )
    return event


def record_many(events: Sequence[Mapping[str, Any]]) -> list[AuditEvent]:
    """Append several events, in the order given, with one lock of the chain head and one
    insert: what a worker storing the outcomes of a batch of sends uses. Each mapping takes
    record()'s keyword arguments; the same rules hold (inside the caller's transaction)."""
    if not transaction.get_connection().in_atomic_block:
        raise AuditOutsideTransactionError(
            "audit.services.record() must run inside the transaction of the change it records "
            "(wrap the service in @transaction.atomic)"
        )
    if not events:
        return []
    prepared = [_prepare(**event) for event in events]
    head = _locked_chain_head()
    seq, prev_hash = head.seq, head.hash
    built = []
    for fields in prepared:
        seq += 1
        # Stamped under the lock, so time runs forward along the chain.
        event = AuditEvent(seq=seq, at=timezone.now(), prev_hash=prev_hash, **fields)
        event.hash = event_hash(
            prev_hash=event.prev_hash,
            seq=event.seq,
            at=event.at,
            actor_id=event.actor_id,
            actor_name=event.actor_name,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            team_id=event.team_id,
            data=event.data,
        )
        prev_hash = event.hash
        built.append(event)
    if len(built) == 1:
        built[0].save()
    else:
        AuditEvent.objects.bulk_create(built)
    AuditChainHead.objects.filter(pk=head.pk).update(seq=seq, hash=prev_hash)
    return built


def _prepare(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    team=None,
    data: dict | None = None,
) -> dict[str, Any]:
    """One event's columns, checked, before the chain head is locked."""
    if not action:
        raise ValueError("an audit event needs an action")
    if obj is not None:
        if obj.pk is None:
            raise ValueError(f"cannot audit an unsaved {obj._meta.label}")
        if object_type is None:
            object_type = obj._meta.label_lower
        if object_id is None:
            object_id = str(obj.pk)
    if actor is not None and (isinstance(actor, AnonymousUser) or not actor.is_authenticated):
        actor = None
    return {
        "actor": actor,
        "actor_name": actor.get_username() if actor is not None else "",
        "action": action,
        "object_type": object_type or "",
        "object_id": "" if object_id is None else str(object_id),
        "team": team,
        "data": normalise_data(data),
    }


def audit_exported(*, by, fmt: str, filters: dict[str, str], team=None) -> AuditEvent:
    """Record that `by` exported the events matching `filters` as `fmt`, committed in a
    transaction of its own before the first row goes out: an export that fails half-way was
    still taken."""
    with transaction.atomic(durable=True):
        return record(
            actor=by,
            action="audit.exported",
            team=team,
            data={"format": fmt, "filters": filters},
        )
