"""The verifier's worker processes (audit.verify_log, PostgreSQL, past PARALLEL_FROM leaves):
the same verdict as one process, named the same way, whatever the ranges the leaves fall in."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from audit import verify_log as module
from audit.models import AuditLeaf
from audit.services import record
from audit.verify_log import verify_log

from ..dbroles import as_owner

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def log(lead, settings, tmp_path):
    settings.CXHUB_AUDIT_WITNESS_DIR = str(tmp_path)
    for n in range(23):
        with transaction.atomic():
            record(actor=lead, action="post.submitted", data={"n": n, "text": f"café {n}"})
    call_command("audit_checkpoint", stdout=StringIO())
    return list(AuditLeaf.objects.order_by("index").values_list("event_id", flat=True))


def both_ways(monkeypatch, **kwargs):
    """(one process, worker processes): reports of the same log, in batches of 5 leaves."""
    monkeypatch.setattr(module, "PARALLEL_FROM", 10**12)
    alone = verify_log(batch_size=5, **kwargs)
    monkeypatch.setattr(module, "PARALLEL_FROM", 1)
    forked = []
    real = module._parallel_batches

    def spy(*args):
        forked.append(args)
        return real(*args)

    monkeypatch.setattr(module, "_parallel_batches", spy)
    parallel = verify_log(batch_size=5, **kwargs)
    assert forked, "the worker processes were not used"
    return alone, parallel


def same(alone, parallel) -> None:
    assert (parallel.ok, parallel.leaves, parallel.root) == (alone.ok, alone.leaves, alone.root)
    assert [finding.message for finding in parallel.findings] == [
        finding.message for finding in alone.findings
    ]


def test_an_honest_log_verifies_the_same_with_workers(log, monkeypatch):
    alone, parallel = both_ways(monkeypatch)

    same(alone, parallel)
    assert parallel.ok and parallel.leaves == 23


def test_a_rewritten_event_is_named_the_same_with_workers(log, monkeypatch):
    with as_owner(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        try:
            cursor.execute(
                "UPDATE audit_auditevent SET actor_name = 'mallory' WHERE seq = %s", [log[17]]
            )
        finally:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")

    alone, parallel = both_ways(monkeypatch)

    same(alone, parallel)
    assert not parallel.ok
    assert any(f"seq {log[17]} (leaf 17)" in finding.message for finding in parallel.findings)


def test_a_leaf_and_an_event_removed_are_named_the_same_with_workers(log, monkeypatch):
    # As a superuser: replica mode fires neither the append-only triggers nor the foreign keys.
    with as_owner(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute('DELETE FROM audit_auditleaf WHERE "index" IN (11, 12)')
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [log[20]])

    alone, parallel = both_ways(monkeypatch)

    same(alone, parallel)
    messages = [finding.message for finding in parallel.findings]
    assert "gap: leaves 11–12 are missing from the tree (their events removed)" in messages
    assert f"gap: leaf 20 names event seq {log[20]}, which is gone (event removed)" in messages
