"""The inbox's reading by real processes: a Celery worker (prefork, beat embedded) on the test's
database and the pass's broker runs inbox.tasks.ingest_due on its schedule, which queues
inbox.tasks.ingest_account for the account; the mentions a Mastodon test server on 127.0.0.1
holds land in the database, and those that come later on a later turn, from the stored cursor.

Bounded in time (each wait has its deadline, the test its timeout); the worker, the server and
the broker's queues are cleaned up whatever happens."""

import re
from collections import Counter

import pytest

from inbox.models import InboundItem, IngestState

from .dispatch_harness import (
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

# Each turn of the dispatcher, and each account's interval, about a second: a test sees two
# turns within seconds.
FAST_INBOX = {
    "CXHUB_INBOX_SECONDS": "1",
    "CXHUB_INBOX_MIN_INTERVAL_SECONDS": "1",
    "CXHUB_INBOX_MAX_INTERVAL_SECONDS": "2",
}


@pytest.fixture
def worker(reading_worker):
    return reading_worker(**FAST_INBOX)


def _kept(account) -> Counter:
    return Counter(InboundItem.objects.filter(account=account).values_list("network_id", flat=True))


def test_a_worker_reads_the_accounts_mentions_into_the_inbox_turn_after_turn(
    mastodon_account, mastodon_server, worker
):
    account, mastodon = mastodon_account, mastodon_server
    # Given mentions waiting on the account's server
    waiting = [mastodon.add_mention(f"@north Question {n}?")["id"] for n in range(7)]

    # When a worker runs the inbox's schedule
    worker.start()

    # Then its turns read them into the inbox, each once
    wait_until(
        lambda: len(_kept(account)) >= len(waiting),
        timeout=60,
        what=lambda: f"{len(waiting)} items in the inbox (have {len(_kept(account))})",
        logs=[worker.log],
    )
    assert _kept(account) == Counter(dict.fromkeys(waiting, 1))
    first_cursor = IngestState.objects.get(account=account).cursor
    assert first_cursor == mastodon.notifications[-1]["id"]

    # When more mentions arrive
    later = [mastodon.add_mention(f"@north Follow-up {n}?")["id"] for n in range(3)]

    # Then a later turn reads only those, from the cursor it stored
    everything = [*waiting, *later]
    wait_until(
        lambda: len(_kept(account)) >= len(everything),
        timeout=60,
        what=lambda: f"{len(everything)} items in the inbox (have {len(_kept(account))})",
        logs=[worker.log],
    )
    assert _kept(account) == Counter(dict.fromkeys(everything, 1))
    state = IngestState.objects.get(account=account)
    assert state.cursor == mastodon.notifications[-1]["id"]
    assert state.items_total == len(everything)
    assert [first_cursor] in [q.get("min_id") for q in mastodon.notification_queries]
    # The worker did the work: the dispatcher's turns, and a run of the account in two of them.
    log = worker.log_text()
    assert _succeeded("inbox.tasks.ingest_due", log) >= 2
    assert _succeeded("inbox.tasks.ingest_account", log) >= 2


def _succeeded(task: str, log: str) -> int:
    return len(re.findall(rf"Task {re.escape(task)}\[[^\]]+\] succeeded", log))
