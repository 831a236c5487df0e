"""Migration audit.0007: the sealer's queue gives way to the horizon without losing an event, and
back."""

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.models import AuditEvent, AuditLeaf
from audit.sealer import horizon, seal, unsealed
from audit.services import record
from audit.verify_log import verify_log

from ..dbroles import as_owner

BEFORE = [("audit", "0006_lean_event_writes")]
AFTER = [("audit", "0007_sealer_horizon")]


def migrate(targets):
    with as_owner():
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_queued_events_are_sealed_after_the_queue_goes(author):
    with transaction.atomic():
        sealed_before = [record(actor=author, action="post.submitted") for _ in range(3)]
    seal()
    try:
        old = migrate(BEFORE)
        # Under 0006 every event is a leaf or in the queue: three more, queued.
        Event, Unsealed = (
            old.get_model("audit", "AuditEvent"),
            old.get_model("audit", "AuditUnsealed"),
        )
        with transaction.atomic():
            queued = [
                Event.objects.create(at=timezone.now(), action="post.approved", data={"n": n})
                for n in range(3)
            ]
            Unsealed.objects.bulk_create([Unsealed(seq=event.seq) for event in queued])
    finally:
        migrate(AFTER)

    assert horizon() == sealed_before[-1].seq
    assert sorted(unsealed(horizon()).values_list("seq", flat=True)) == [e.seq for e in queued]
    seal()
    assert AuditLeaf.objects.count() == AuditEvent.objects.count() == 6
    assert verify_log().ok
