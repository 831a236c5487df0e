"""Writing the audit trail: `record` appends one event inside the caller's transaction, so the
event commits or rolls back with the change it records.

Recording takes no lock and writes one row: the event, its seq from the database's sequence.
The sealer (audit.sealer) finds committed events above its horizon, folds them into the Merkle
tree and signs checkpoints, off the request path."""

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import models, transaction
from django.utils import timezone

from .bulk import writer_execute
from .hashing import EVENT_FIELDS, normalise_data
from .models import AuditEvent


class AuditOutsideTransactionError(RuntimeError):
    """`record` was called in autocommit mode: the event could outlive a change that rolls back
    (or be lost when the change commits). Call it inside the service's transaction."""


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
    """Append an event to the audit trail and return it.

    `actor` is the user who acted, or None (or an AnonymousUser) for the system. `obj` gives
    `object_type` ("app_label.model") and `object_id` unless they are given explicitly.
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
    """Append several events, in the order given (their seqs rise in that order): what a worker
    storing the outcomes of a batch of sends uses. Each mapping takes record()'s keyword
    arguments; the same rules hold (inside the caller's transaction). One statement writes them
    all (on PostgreSQL see _insert_postgresql)."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise AuditOutsideTransactionError(
            "audit.services.record() must run inside the transaction of the change it records "
            "(wrap the service in @transaction.atomic)"
        )
    if not events:
        return []
    now = timezone.now()
    built = [AuditEvent(at=now, **_prepare(**event)) for event in events]
    if connection.vendor == "postgresql":
        _insert_postgresql(connection, built)
    else:
        AuditEvent.objects.bulk_create(built)
    return built


_EVENT_COLUMNS = EVENT_FIELDS[1:]  # the seq comes from audit_next_seq()
_EVENT_VALUES = "(audit_next_seq(), %s, %s, %s, %s, %s, %s, %s, %s::jsonb, '')"


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    """The statement for this many events, made once. Constants and placeholders only: the
    values go as parameters."""
    columns = ", ".join(_EVENT_COLUMNS)
    values = ", ".join([_EVENT_VALUES] * rows)
    return f"INSERT INTO audit_auditevent (seq, {columns}, prev_hash) VALUES {values} RETURNING seq"  # noqa: S608


def _insert_postgresql(connection, built: list[AuditEvent]) -> None:
    """The events in one statement, one round trip: the cost of recording is what an
    audited service pays on every call (bench/audit.py). Each seq is taken by audit_next_seq()
    (migration audit.0007), which gives the transaction its id first, as the sealer's horizon
    needs. The seqs come back ascending, in the events' order (taken row by row as the VALUES
    are inserted)."""
    sql = _insert_sql(len(built))
    params = []
    for event in built:
        params.extend(getattr(event, name) for name in _EVENT_COLUMNS[:-1])
        params.append(json.dumps(event.data, ensure_ascii=False))  # the last column: data
    # On a cursor kept on the connection (audit.bulk.writer_execute).
    seqs = sorted(seq for (seq,) in writer_execute(connection, sql, params))
    for event, seq in zip(built, seqs, strict=True):
        event.seq = seq
        event._state.adding = False  # saved: a later save() is refused as an update
        event._state.db = connection.alias


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
    """One event's columns, checked."""
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
