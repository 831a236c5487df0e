"""The re-check through a real HTTP exchange: a status deleted on a Mastodon test server after
cxhub read its mention is marked deleted upstream on the next round, the others stay as they
were (the channel's own cases: tests/publishing/networks/test_gone_mastodon.py)."""

import pytest

from inbox import ingestion, recheck
from inbox.models import InboundItem

from ..publishing.networks.conftest import loopback_allowed  # noqa: F401 (autouse, here only)

pytestmark = [pytest.mark.peer, pytest.mark.django_db]


def test_a_status_deleted_on_the_server_is_marked_on_the_next_round(
    mastodon_server, mastodon_account
):
    ingestion.claim_due()
    ingestion.account_ingest(account_id=mastodon_account.pk)  # the first page: nothing yet
    kept, deleted = (
        mastodon_server.add_mention("@north when does the centre open?"),
        mastodon_server.add_mention("@north this is a fake census text!"),
    )
    ingestion.account_ingest(account_id=mastodon_account.pk)
    assert InboundItem.objects.count() == 2
    mastodon_server.delete_status(deleted["id"])

    due = recheck.claim_due()
    [result] = [
        recheck.account_recheck(account_id=account_id, item_ids=item_ids)
        for account_id, item_ids in due.items()
    ]

    assert (result.asked, result.gone, result.error) == (2, 1, "")
    rows = {item.network_id: item for item in InboundItem.objects.all()}
    assert rows[deleted["id"]].deleted_upstream is True
    assert rows[kept["id"]].deleted_upstream is False
