"""Kept items asked about again (inbox/recheck.py): an item deleted on its network since cxhub
read it is marked, never removed; failures wait for the next round."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from inbox import recheck
from inbox.models import InboundItem
from inbox.services import items_store
from networks.channels.errors import RetryableError
from networks.models import Channel

from ..factories import SocialAccountFactory
from .conftest import inbound

pytestmark = pytest.mark.django_db


@pytest.fixture
def kept(feed, account):
    """Three items posted an hour ago."""
    hour_ago = timezone.now() - timedelta(hours=1)
    items_store(account=account, items=[inbound(n, created_at=hour_ago) for n in (1, 2, 3)])
    return {item.network_id: item for item in InboundItem.objects.all()}


def _run():
    due = recheck.claim_due()
    return [
        recheck.account_recheck(account_id=account_id, item_ids=item_ids)
        for account_id, item_ids in due.items()
    ]


def test_items_gone_from_the_network_are_marked_never_removed(feed, account, kept):
    feed.gone = {"2"}

    [result] = _run()

    assert (result.asked, result.gone) == (3, 1)
    assert feed.asked == [["1", "2", "3"]]
    assert InboundItem.objects.count() == 3
    assert set(
        InboundItem.objects.filter(deleted_upstream=True).values_list("network_id", flat=True)
    ) == {"2"}
    event = AuditEvent.objects.get(action="inbox.items_gone")
    assert event.data == {"items": [kept["2"].pk]}


def test_an_item_is_asked_about_once_a_round_and_old_ones_no_more(feed, account, kept, settings):
    settings.CXHUB_INBOX_RECHECK_HOURS = 24
    settings.CXHUB_INBOX_RECHECK_DAYS = 7
    _run()

    assert recheck.claim_due() == {}  # asked less than a day ago
    tomorrow = timezone.now() + timedelta(hours=25)
    assert sorted(recheck.claim_due(now=tomorrow)[account.pk]) == sorted(
        item.pk for item in kept.values()
    )
    next_week = timezone.now() + timedelta(days=8)
    assert recheck.claim_due(now=next_week) == {}  # posted more than a week before


def test_a_failed_recheck_marks_nothing_and_waits_for_the_next_round(feed, account, kept):
    feed.gone = RetryableError("429 Too Many Requests", retry_after=60)

    [result] = _run()

    assert result.error == "429 Too Many Requests"
    assert not InboundItem.objects.filter(deleted_upstream=True).exists()
    assert not AuditEvent.objects.filter(action="inbox.items_gone").exists()
    assert recheck.claim_due() == {}


def test_sandbox_and_disconnected_accounts_and_marked_items_are_not_asked(feed, org, account, kept):
    sandbox = SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, sandbox=True)
    items_store(account=sandbox, items=[inbound(9, created_at=timezone.now())])
    InboundItem.objects.filter(network_id="1").update(deleted_upstream=True)

    due = recheck.claim_due()

    assert list(due) == [account.pk]
    assert sorted(due[account.pk]) == sorted([kept["2"].pk, kept["3"].pk])
