"""Sandbox accounts hear back too: `manage.py sandbox_inbound` (inbox/sandbox.py)."""

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from inbox.models import InboundItem
from networks.models import Channel
from publishing.models import Post, PostTarget, TargetStatus

from ..factories import SocialAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox_account(org):
    return SocialAccountFactory(
        team=org["north"], channel=Channel.MASTODON, handle="@trainee", sandbox=True
    )


def test_the_command_makes_items_arrive(sandbox_account, capsys):
    call_command("sandbox_inbound", account=sandbox_account.pk, count=12, seed=1)

    assert InboundItem.objects.filter(account=sandbox_account).count() == 12
    assert "12 items arrived" in capsys.readouterr().out
    [event] = AuditEvent.objects.filter(action="inbox.items_received")
    assert len(event.data["items"]) == 12


def test_negative_items_are_scored_negative(sandbox_account):
    call_command("sandbox_inbound", account=sandbox_account.pk, count=10, sentiment="negative")

    sentiments = set(InboundItem.objects.values_list("sentiment", flat=True))
    assert sentiments == {"negative"}


def test_items_answer_what_the_account_published(sandbox_account, author):
    post = Post.objects.create(team=sandbox_account.team, author=author, body="Open day!")
    ours = PostTarget.objects.create(
        post=post,
        social_account=sandbox_account,
        status=TargetStatus.PUBLISHED,
        external_id="sandbox-1",
    )

    call_command("sandbox_inbound", account=sandbox_account.pk, count=30, seed=3)

    replies = InboundItem.objects.filter(kind="reply")
    assert replies.exists()
    assert set(replies.values_list("target", flat=True)) == {ours.pk}


def test_networks_with_comments_get_comments(org):
    page = SocialAccountFactory(
        team=org["north"], channel=Channel.FACEBOOK, handle="North page", sandbox=True
    )

    call_command("sandbox_inbound", account=page.pk, count=5)

    assert set(InboundItem.objects.values_list("kind", flat=True)) == {"comment"}


def test_an_account_on_a_network_is_refused(org):
    real = SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, handle="@real")

    with pytest.raises(CommandError, match="not a sandbox account"):
        call_command("sandbox_inbound", account=real.pk, count=1)
    with pytest.raises(CommandError, match="No social account"):
        call_command("sandbox_inbound", account=10**9, count=1)
    assert not InboundItem.objects.exists()
