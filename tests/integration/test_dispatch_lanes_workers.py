"""Politeness across processes: two real workers (prefork, two processes each, eight send
threads a process) publish a batch to sites that count the requests they hold at once. The caps
per host and per account hold across all four processes (slots: advisory locks on PostgreSQL,
file locks on the embedded default), and each post reaches its site once."""

import pytest
from django.test import override_settings

from publishing.models import PostTarget, TargetStatus

from ..publishing.test_dispatch_lanes import Sites
from .dispatch_support import bulk_due_posts, webhook_account
from .test_dispatch_worker import stacks  # noqa: F401 (the fixture)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]


@override_settings(CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS=["127.0.0.1/32"])
def test_the_caps_hold_across_worker_processes(stacks, author, org):  # noqa: F811
    site = Sites(hosts=2, delay=0.15)
    try:
        accounts = [
            webhook_account(org["north"], site.url(n % 2, f"a{n}"), handle=f"a{n}")
            for n in range(10)
        ]
        ids = bulk_due_posts(
            author=author, team=org["north"], accounts=accounts, posts=40, per_post=2
        )
        stack = stacks(
            CXHUB_PUBLISH_THREADS="8",
            CXHUB_PUBLISH_PER_HOST="3",
            CXHUB_PUBLISH_PER_ACCOUNT="1",
            CXHUB_PUBLISH_GROUP_SIZE="5",
        )
        stack.worker(name="one")
        stack.worker(name="two", beat=False)
        stack.wait(
            lambda: (
                PostTarget.objects.filter(pk__in=ids, status=TargetStatus.PUBLISHED).count()
                == len(ids)
            ),
            timeout=120,
            what="every target published",
        )
    finally:
        site.close()
    hosts = [Sites.host(server) for server in site.servers]
    assert max(site.most[host] for host in hosts) <= 3
    assert max(site.most[f"/hook/a{n}"] for n in range(10)) == 1
    assert sorted(site.stored.values()) == [1] * len(ids)
    # and the sends did overlap: the cap was reached on a host
    assert max(site.most[host] for host in hosts) == 3
