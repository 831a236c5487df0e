"""The sealer's horizon (audit.sealer, "The horizon"): it finds the committed events above it,
and moves up only once no transaction that could hold a lower seq is running, so an event that
commits after a later one is sealed, never skipped; a rolled-back seq does not hold it back.

The horizon waits for every transaction on the server (PostgreSQL's transaction ids are the
cluster's): a test waits for it to move, as long as other work there keeps one open."""

import threading

import pytest
from django.db import connection, transaction

from audit.models import AuditLeaf
from audit.sealer import horizon, seal, unsealed
from audit.services import record
from tests.integration.dispatch_harness import wait_until


def sealed(seq: int) -> bool:
    return AuditLeaf.objects.filter(event_id=seq).exists()


def horizon_reaches(seq: int) -> None:
    """Seal until the horizon is at or past seq (on PostgreSQL it moves at the run after it
    was noted, once the transactions running then have ended)."""

    def reached() -> bool:
        seal()
        return horizon() >= seq

    wait_until(reached, timeout=120, what=f"the sealer's horizon to reach seq {seq}")


@pytest.mark.django_db(transaction=True)  # no test transaction running beside the sealer
def test_with_no_writer_running_the_horizon_reaches_the_last_event(author):
    with transaction.atomic():
        first = record(actor=author, action="post.submitted")
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        record(actor=author, action="post.submitted")  # its seq is a hole
        1 / 0
    with transaction.atomic():
        last = record(actor=author, action="post.approved")

    seal()

    assert sealed(first.seq) and sealed(last.seq)
    horizon_reaches(last.seq)
    assert not unsealed(horizon()).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_committing_after_a_later_one_holds_the_horizon_and_is_sealed(author):
    recorded, release = threading.Event(), threading.Event()
    slow: list = []
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                slow.append(record(actor=author, action="post.submitted", data={"slow": True}))
                recorded.set()
                assert release.wait(timeout=60)
        except BaseException as error:  # reported by the test below
            errors.append(error)
            recorded.set()
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert recorded.wait(timeout=60) and not errors
        with transaction.atomic():
            later = record(actor=author, action="post.approved")
        assert later.seq > slow[0].seq

        seal()
        seal()  # the horizon was noted while the slow writer ran: it must not move past it

        assert sealed(later.seq) and not sealed(slow[0].seq)
        assert horizon() < slow[0].seq
    finally:
        release.set()
        writer.join(timeout=60)
    assert not writer.is_alive() and errors == []

    seal()

    assert sealed(slow[0].seq)
    horizon_reaches(later.seq)
    assert not unsealed(horizon()).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_seq_is_taken_by_a_transaction_that_already_has_its_id():
    # The horizon relies on it: every seq up to L was taken by a transaction older than X.
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id_if_assigned()")
            assert cursor.fetchone()[0] is None
            cursor.execute("SELECT audit_next_seq()")
            cursor.execute("SELECT pg_current_xact_id_if_assigned()")
            assert cursor.fetchone()[0] is not None
        1 / 0  # nothing to keep
