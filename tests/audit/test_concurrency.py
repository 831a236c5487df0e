import threading

import pytest
from django.db import connection, transaction

from audit import merkle
from audit.merkle_store import event_leaf_hash, merkle_root
from audit.models import AuditEvent, AuditLeaf
from audit.sealer import horizon, seal, tree_head, unsealed
from audit.services import record

WRITERS = 8
EVENTS_EACH = 25


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_and_a_sealer_leave_every_event_in_the_tree_once(org, author):
    start = threading.Barrier(WRITERS + 1, timeout=30)
    writers_done = threading.Event()
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

    def sealer() -> None:
        # Sealing while the writers commit out of seq order: no event may be skipped or doubled.
        try:
            start.wait()
            while not writers_done.is_set():
                seal(batch_size=7)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # When eight writers, each on its own connection, record at once while a sealer runs
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    sealing = threading.Thread(target=sealer)
    for thread in [*threads, sealing]:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    writers_done.set()
    sealing.join(timeout=120)
    seal()

    # Then every event got its own seq, each writer's in its own order …
    assert not any(thread.is_alive() for thread in [*threads, sealing])
    assert errors == []
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert len(seqs) == len(set(seqs)) == WRITERS * EVENTS_EACH
    for number in range(WRITERS):
        mine = AuditEvent.objects.filter(data__writer=number).order_by("seq")
        assert [event.data["i"] for event in mine] == list(range(EVENTS_EACH))
    # … and is exactly one leaf of the tree, whose stored root is the one its leaves give.
    assert not unsealed(horizon()).exists()
    leaves = list(AuditLeaf.objects.order_by("index").select_related("event"))
    assert [leaf.index for leaf in leaves] == list(range(len(seqs)))
    assert sorted(leaf.event_id for leaf in leaves) == seqs
    size, root = tree_head()
    expected = merkle.root_from_leaf_hashes([event_leaf_hash(leaf.event) for leaf in leaves])
    assert size == len(seqs)
    assert root == expected == merkle_root(size=size)
