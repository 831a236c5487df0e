import threading

import pytest
from django.db import connection, transaction

from audit.models import AuditChainHead, AuditEvent
from audit.services import record
from audit.verify import verify_chain

WRITERS = 8
EVENTS_EACH = 25


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("head_exists", [True, False], ids=["head-exists", "head-missing"])
def test_concurrent_writers_leave_one_unbroken_chain(org, author, head_exists):
    # Given a head row (from the migration) or none (after a flush): the writers create it.
    if head_exists:
        AuditChainHead.objects.get_or_create(pk=1)
    else:
        AuditChainHead.objects.all().delete()
    start = threading.Barrier(WRITERS, timeout=30)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            start.wait()
            for i in range(EVENTS_EACH):
                with transaction.atomic():
                    record(
                        actor=author,
                        action="test.concurrent",
                        team=org["north"],
                        data={"writer": number, "i": i},
                    )
        except BaseException as exc:  # reported by the test thread below
            errors.append(exc)
        finally:
            connection.close()

    # When eight writers, each on its own connection, record at once
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then there is one chain, 1..200, with every writer's events in their own order.
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, WRITERS * EVENTS_EACH + 1))
    for number in range(WRITERS):
        mine = AuditEvent.objects.filter(data__writer=number).order_by("seq")
        assert [event.data["i"] for event in mine] == list(range(EVENTS_EACH))
    result = verify_chain(batch_size=64)
    assert result.ok, (result.broken_seq, result.reason)
    assert result.count == WRITERS * EVENTS_EACH
    assert AuditChainHead.objects.get().seq == WRITERS * EVENTS_EACH
