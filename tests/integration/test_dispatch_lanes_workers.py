"""Politeness across processes: two real workers (prefork, two processes each, eight send
threads a process) publish a batch to sites that count the requests they hold at once. The caps
per host and per account hold across all four processes (slots: advisory locks on PostgreSQL,
file locks on the embedded default), and each post reaches its site once."""

import threading
from collections import Counter

import pytest
from django.test import override_settings

from publishing.models import PostTarget, PublishAttempt, TargetStatus

from ..publishing.test_dispatch_lanes import Sites
from .dispatch_support import bulk_due_posts, webhook_account
from .test_dispatch_worker import stacks  # noqa: F401 (the fixture)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]


def _wait_until_all_published(stack, ids, *, timeout: float) -> None:
    stack.wait(
        lambda: (
            PostTarget.objects.filter(pk__in=ids, status=TargetStatus.PUBLISHED).count() == len(ids)
        ),
        timeout=timeout,
        what="every target published",
    )


def _due_on_two_hosts(site: Sites, author, org, *, accounts: int, posts: int, per_post: int):
    """Due posts over `accounts` accounts a0, a1, … on the site's two hosts in turn."""
    made = [
        webhook_account(org["north"], site.url(n % 2, f"a{n}"), handle=f"a{n}")
        for n in range(accounts)
    ]
    return bulk_due_posts(
        author=author, team=org["north"], accounts=made, posts=posts, per_post=per_post
    )


@override_settings(CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS=["127.0.0.1/32"])
def test_the_caps_hold_across_worker_processes(stacks, author, org):  # noqa: F811
    site = Sites(hosts=2, delay=0.15)
    try:
        ids = _due_on_two_hosts(site, author, org, accounts=10, posts=40, per_post=2)
        stack = stacks(
            CXHUB_PUBLISH_THREADS="8",
            CXHUB_PUBLISH_PER_HOST="3",
            CXHUB_PUBLISH_PER_ACCOUNT="1",
            CXHUB_PUBLISH_GROUP_SIZE="5",
        )
        stack.worker(name="one")
        stack.worker(name="two", beat=False)
        _wait_until_all_published(stack, ids, timeout=120)
    finally:
        site.close()
    hosts = [Sites.host(server) for server in site.servers]
    assert max(site.most[host] for host in hosts) <= 3
    assert max(site.most[f"/hook/a{n}"] for n in range(10)) == 1
    assert sorted(site.stored.values()) == [1] * len(ids)
    # and the sends did overlap: the cap was reached on a host
    assert max(site.most[host] for host in hosts) == 3


@override_settings(CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS=["127.0.0.1/32"])
def test_a_worker_killed_during_concurrent_sends_publishes_each_post_once(
    stacks,  # noqa: F811
    author,
    org,
):
    """Exactly once when a worker dies with several groups' sends out at once: some sends had
    reached their site (which stores them as the worker dies), some waited for a slot, some were
    answered. A new worker looks for every one left `sending` and sends only what is not there."""
    site = Sites(hosts=2, delay=0.05)
    held_host, free_host = (Sites.host(server) for server in site.servers)
    held = site.hold[held_host] = threading.Event()
    try:
        ids = _due_on_two_hosts(site, author, org, accounts=12, posts=12, per_post=1)
        stack = stacks(
            CXHUB_PUBLISH_THREADS="8",
            CXHUB_PUBLISH_PER_HOST="3",
            CXHUB_PUBLISH_GROUP_SIZE="3",
            CXHUB_PUBLISH_GROUPS_AT_ONCE="4",
            # The held sends wait for their answer until the worker is killed (a timeout would
            # make them unknown outcomes before it), however slowly a loaded machine gets the
            # other six answered; the lost worker is noticed by its silent heartbeat, not these
            CXHUB_WEBHOOK_TIMEOUT_SECONDS="90",
            CXHUB_TASK_SOFT_TIME_LIMIT="100",
            CXHUB_TASK_TIME_LIMIT="101",
            CXHUB_SENDING_STUCK_SECONDS="102",
        )
        first = stack.worker(name="first")
        stack.wait(
            lambda: site.in_flight[held_host] == 3 and site.answered[free_host] == 6,
            timeout=60,
            what="three sends held by a site, the other host's six answered",
        )
        assert site.most[held_host] == 3  # the cap, with the other three waiting for a slot
        first.kill()
        held.set()  # the held sends reach the site's store, with no worker left to hear it
        stack.worker(name="second")
        _wait_until_all_published(stack, ids, timeout=90)
    finally:
        held.set()
        site.close()
    assert sorted(site.stored.values()) == [1] * len(ids)  # each post reached its site once
    outcomes = Counter(
        tuple(
            PublishAttempt.objects.filter(target_id=pk)
            .order_by("number")
            .values_list("outcome", flat=True)
        )
        for pk in ids
    )
    Outcome = PublishAttempt.Outcome
    # A group stores its outcomes together once its last send is done, and every group had a
    # held send: the answered ones were not yet recorded either. Found on their site, not sent
    # again; the three that never left were looked for and then sent once.
    assert outcomes == {
        (Outcome.UNKNOWN, Outcome.RECONCILED): 9,
        (Outcome.UNKNOWN, Outcome.PUBLISHED): 3,
    }
    assert len(site.looked) == 12
