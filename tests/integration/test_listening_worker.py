"""Listening by real processes: a Celery worker (prefork, beat embedded) on the test's database
and the pass's broker runs listening.tasks.collect_due on its schedule, which queues
listening.tasks.collect_source for the watch's source; the public posts a Mastodon test server
on 127.0.0.1 holds under the watched hashtag land in the database, each once, turn after turn;
and a surge among them raises one alert, told to the watch's lead.

Bounded in time (each wait has its deadline, the test its timeout); the worker, the server and
the broker's queues are cleaned up whatever happens."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Notification, Role
from listening import services
from listening.models import Alert, Hit, Watch

from ..factories import UserFactory, grant
from .dispatch_harness import (
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

# Each turn of the dispatcher, and each source's interval, about a second.
FAST_LISTENING = {
    "CXHUB_LISTENING_SECONDS": "1",
    "CXHUB_LISTENING_MIN_INTERVAL_SECONDS": "1",
    "CXHUB_LISTENING_MAX_INTERVAL_SECONDS": "2",
}


@pytest.fixture
def worker(reading_worker):
    return reading_worker(**FAST_LISTENING)


def _hits(watch) -> list[str]:
    return list(Hit.objects.filter(watch=watch).values_list("post__network_id", flat=True))


def test_a_worker_collects_a_watch_turn_after_turn_and_raises_one_alert_on_a_surge(
    org, mastodon_account, mastodon_server, worker
):
    lead = UserFactory(username="nora")
    grant(lead, org["north"], Role.LEAD)
    watch = services.watch_create(
        by=lead,
        team_id=org["north"].pk,
        values={"name": "Harbour", "hashtags": ["harbour"], "networks": ["mastodon"]},
    )
    # Given posts under the hashtag on the server
    first = [
        mastodon_server.add_public(f"Ferry times {n}", tags=("harbour",))["id"] for n in range(5)
    ]

    # When a worker runs listening's schedule
    worker.start()

    # Then its turns collect them, each once
    wait_until(
        lambda: len(_hits(watch)) >= len(first),
        timeout=60,
        what=lambda: f"{len(first)} hits (have {len(_hits(watch))})",
        logs=[worker.log],
    )
    assert sorted(_hits(watch)) == sorted(first)

    # When the watch has two quiet hours behind it and a surge comes
    Watch.objects.filter(pk=watch.pk).update(listening_since=timezone.now() - timedelta(hours=2))
    surge = [
        mastodon_server.add_public(
            f"Harbour closed?! {n}", tags=("harbour",), acct=f"p{n}@x.example"
        )["id"]
        for n in range(40)
    ]

    # Then a later turn collects them from the stored cursor and raises one alert
    everything = [*first, *surge]
    wait_until(
        lambda: Alert.objects.filter(watch=watch).exists() and len(_hits(watch)) >= len(everything),
        timeout=60,
        what=lambda: f"an alert and {len(everything)} hits (have {len(_hits(watch))})",
        logs=[worker.log],
    )
    assert sorted(_hits(watch)) == sorted(everything)
    [alert] = Alert.objects.filter(watch=watch)
    assert alert.kind == "spike"
    assert Notification.objects.filter(user=lead, kind="listening_alert").count() == 1
    log = worker.log_text()
    assert len(re.findall(r"Task listening\.tasks\.collect_due\[[^\]]+\] succeeded", log)) >= 2
    assert len(re.findall(r"Task listening\.tasks\.collect_source\[[^\]]+\] succeeded", log)) >= 2
