import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent, AuditImmutableError
from audit.sealer import seal

from ..dbroles import as_owner


def test_it_refuses_to_save_an_event_again(chain):
    event = chain[2]
    event.action = "post.deleted"

    with pytest.raises(AuditImmutableError, match="append-only"):
        event.save()

    assert AuditEvent.objects.get(seq=chain[2].seq).action == "post.submitted"


def test_it_refuses_to_save_a_loaded_event(chain):
    event = AuditEvent.objects.get(seq=chain[2].seq)

    with pytest.raises(AuditImmutableError):
        event.save(update_fields=["action"])


def test_it_refuses_to_delete_an_event(chain):
    with pytest.raises(AuditImmutableError, match="append-only"):
        chain[2].delete()

    assert AuditEvent.objects.count() == 5


@pytest.mark.parametrize(
    "change",
    [
        lambda: AuditEvent.objects.filter(action="post.submitted").update(action="post.deleted"),
        lambda: AuditEvent.objects.update(action="post.deleted"),
        lambda: AuditEvent.objects.bulk_update(list(AuditEvent.objects.all()), fields=["action"]),
        lambda: AuditEvent.objects.filter(action="post.submitted").delete(),
        lambda: AuditEvent.objects.all().delete(),
    ],
    ids=["filter-update", "manager-update", "bulk-update", "filter-delete", "all-delete"],
)
def test_the_queryset_refuses_updates_and_deletes(chain, change):
    with pytest.raises(AuditImmutableError, match="append-only"):
        change()

    assert AuditEvent.objects.count() == 5
    assert not AuditEvent.objects.filter(action="post.deleted").exists()


def test_related_managers_refuse_deletes_too(chain, author):
    with pytest.raises(AuditImmutableError):
        author.audit_events.all().delete()

    assert AuditEvent.objects.count() == 5


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'post.deleted' WHERE action = 'post.submitted'",
        "DELETE FROM audit_auditevent WHERE action = 'post.submitted'",
        "DELETE FROM audit_auditevent",
    ],
    ids=["update", "delete-one", "delete-all"],
)
def test_postgresql_refuses_raw_updates_and_deletes(chain, sql):
    # The savepoint keeps the test's transaction usable after the refusal. As the owner: the app
    # role is refused earlier, by privilege (tests/cxhub/test_db_roles.py).
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        as_owner(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)

    assert AuditEvent.objects.count() == 5


@pytest.mark.postgres
@pytest.mark.parametrize(
    "table",
    [
        "audit_auditevent",
        "audit_auditchainhead",
        "audit_auditleaf",
        "audit_merklenode",
        "audit_auditcheckpoint",
    ],
)
def test_postgresql_refuses_truncate_even_to_the_owner(chain, table):
    seal()
    # The owner may TRUNCATE by privilege; the statement trigger still says no.
    with (
        pytest.raises(DatabaseError, match=f"append-only: TRUNCATE of {table} refused"),
        transaction.atomic(),
        as_owner(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE wants no pending FK checks
        cursor.execute(f"TRUNCATE {table} CASCADE")

    assert AuditEvent.objects.count() == 5


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditleaf SET event_seq = event_seq",
        "DELETE FROM audit_auditleaf",
        "UPDATE audit_merklenode SET hash = hash",
        "DELETE FROM audit_merklenode",
        "UPDATE audit_auditcheckpoint SET size = size",
        "DELETE FROM audit_auditcheckpoint",
    ],
)
def test_postgresql_keeps_the_tree_and_checkpoints_append_only_too(chain, sql):
    seal()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        as_owner(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
