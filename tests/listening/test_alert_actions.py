"""What a lead does from an alert (listening/alerts.py): a post drafted in the words of an
approved response, marked with the watch's topic, going through the usual approvals."""

import pytest

from accounts.models import Role
from audit.models import AuditEvent
from cxhub.errors import ApplicationError
from inbox import responses
from listening import alerts, services
from listening.models import Hit, PublicPost
from networks.models import Channel
from publishing.models import PostStatus

from ..factories import SocialAccountFactory, UserFactory, grant
from .conftest import T0, public

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(watch, north_lead):
    services.watch_update(
        by=north_lead,
        watch=watch,
        values={"topic_tags": ["#census", "scams"], "topic_campaign": "Census 2026"},
    )
    services.claim_create(by=north_lead, watch=watch, claim="Fake fines", terms=["fine"])
    stored = services.posts_store(
        watch=watch, network="x", posts=[public("census fine text", at=T0)]
    )
    [raised] = alerts.claims_matched(watch, stored.claims)
    return raised


@pytest.fixture
def line(org, lead):
    return responses.response_create(
        by=lead,
        team_id=org["hq"].pk,
        title="Scam texts",
        body="We never ask for bank details by text. Report the message to 7726.",
    )


def test_a_drafter_lead_drafts_the_approved_answer_marked_with_the_topic(
    org, alert, line, north_lead
):
    grant(north_lead, org["north"], Role.DRAFTER)
    account = SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, handle="@north")

    post = alerts.alert_draft_post(
        alert=alert, by=north_lead, response_id=line.pk, account_ids=[account.pk]
    )

    assert post.status == PostStatus.DRAFT
    assert post.body == line.body
    assert (post.tags, post.campaign) == (["census", "scams"], "Census 2026")
    assert list(post.targets.values_list("social_account_id", flat=True)) == [account.pk]
    event = AuditEvent.objects.get(action="listening.alert_post_drafted")
    assert event.data == {"watch": alert.watch_id, "post": post.pk, "response": line.pk}


def test_an_unknown_response_or_a_person_who_cannot_draft_is_refused(org, alert, line, north_lead):
    from cxhub.errors import NotAllowed

    # The lead drafts nothing for North: refused before anything else, nothing recorded.
    with pytest.raises(NotAllowed, match="cannot draft posts for North"):
        alerts.alert_draft_post(alert=alert, by=north_lead, response_id=line.pk, account_ids=[])
    with pytest.raises(NotAllowed):
        alerts.alert_reply_create(alert=alert, by=north_lead, post_id=1, account_id=1, body="Hi")
    grant(north_lead, org["north"], Role.DRAFTER)
    with pytest.raises(ApplicationError) as caught:
        alerts.alert_draft_post(alert=alert, by=north_lead, response_id=999999, account_ids=[])
    assert "response" in caught.value.extra["fields"]
    assert not AuditEvent.objects.filter(action="listening.alert_post_drafted").exists()


def test_a_reply_to_a_top_post_goes_from_our_account_on_its_network(org, alert, line, north_lead):
    grant(north_lead, org["north"], Role.DRAFTER)
    ours = SocialAccountFactory(team=org["north"], channel=Channel.X, handle="@north")
    top = alert.evidence["top_posts"][0]

    reply = alerts.alert_reply_create(
        alert=alert, by=north_lead, post_id=top["id"], account_id=ours.pk, response_id=line.pk
    )

    assert reply.is_reply and reply.body == line.body
    [target] = reply.targets.all()
    assert target.social_account_id == ours.pk
    assert target.in_reply_to["network_id"] == PublicPost.objects.get(pk=top["id"]).network_id
    event = AuditEvent.objects.get(action="listening.alert_reply_drafted")
    assert (event.data["post"], event.data["answers"]) == (reply.pk, top["id"])


def test_a_reply_needs_a_post_of_the_watch_and_an_account_that_can_answer_it(
    org, watch, alert, line, north_lead
):
    grant(north_lead, org["north"], Role.DRAFTER)
    top = alert.evidence["top_posts"][0]
    elsewhere = SocialAccountFactory(team=org["north"], channel=Channel.BLUESKY, handle="n.bsky")
    cases = [
        ({"post_id": 999999, "account_id": elsewhere.pk}, "post"),
        ({"post_id": top["id"], "account_id": elsewhere.pk}, "account"),
        ({"post_id": top["id"], "account_id": 999999}, "account"),
    ]
    for arguments, field in cases:
        with pytest.raises(ApplicationError) as caught:
            alerts.alert_reply_create(alert=alert, by=north_lead, body="Hello", **arguments)
        assert field in caught.value.extra["fields"], arguments
    # A Mastodon post is answered from the server that read it (its id is that server's).
    reader = SocialAccountFactory(
        team=org["north"], channel=Channel.MASTODON, handle="@r", base_url="https://one.example"
    )
    other = SocialAccountFactory(
        team=org["north"], channel=Channel.MASTODON, handle="@o", base_url="https://two.example"
    )
    stored = services.posts_store(
        watch=watch, network="mastodon", posts=[public("census help", at=T0)], read_via=reader
    )
    mastodon_post = Hit.objects.get(pk=stored.hits[0]).post_id
    with pytest.raises(ApplicationError, match="one.example"):
        alerts.alert_reply_create(
            alert=alert, by=north_lead, post_id=mastodon_post, account_id=other.pk, body="Hi"
        )
    reply = alerts.alert_reply_create(
        alert=alert, by=north_lead, post_id=mastodon_post, account_id=reader.pk, body="Hi"
    )
    assert reply.is_reply


def _scheduled(org, author, account, *, tags=(), campaign="", team="north"):
    from datetime import timedelta

    from django.utils import timezone

    from publishing import services as publishing
    from publishing.models import PostTarget

    post = publishing.post_create(
        by=author,
        team_id=org[team].pk,
        body=f"Post {tags} {campaign}",
        targets=[publishing.TargetInput(social_account_id=account.pk)],
        scheduled_at=timezone.now() + timedelta(hours=2),
        tags=tags,
        campaign=campaign,
    )
    # As if approved: waiting for its time, which is what a freeze holds.
    PostTarget.objects.filter(post=post).update(status="waiting")
    return post


def test_an_alerts_freeze_holds_exactly_the_posts_on_the_watch_topic(
    org, alert, north_lead, author
):
    from publishing.models import PostTarget, PublishingFreeze

    account = SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, handle="@n")
    south_author = UserFactory(username="sam")
    grant(south_author, org["south"], Role.DRAFTER)
    south_account = SocialAccountFactory(team=org["south"], channel=Channel.MASTODON, handle="@s")
    tagged = _scheduled(org, author, account, tags=["Census"])
    in_campaign = _scheduled(org, author, account, campaign="Census 2026")
    other = _scheduled(org, author, account, tags=["roads"])
    south = _scheduled(org, south_author, south_account, tags=["census"], team="south")

    freeze = alerts.alert_freeze_topic(alert=alert, by=north_lead, reason="Until we answer.")

    held = set(PostTarget.objects.filter(status="held").values_list("post_id", flat=True))
    assert held == {tagged.pk, in_campaign.pk}
    assert other.pk not in held and south.pk not in held
    assert freeze.scope == PublishingFreeze.Scope.TOPIC and freeze.team == org["north"]
    assert f"Alert {alert.pk}" in freeze.reason and "Until we answer." in freeze.reason
    event = AuditEvent.objects.get(action="listening.alert_freeze")
    assert (event.data["freeze"], event.data["held"]) == (freeze.pk, 2)


def test_an_alerts_freeze_needs_the_watch_topic_and_a_lead(org, watch, north_lead, author):
    services.claim_create(by=north_lead, watch=watch, claim="Fake", terms=["fine"])
    stored = services.posts_store(watch=watch, network="x", posts=[public("census fine", at=T0)])
    [bare] = alerts.claims_matched(watch, stored.claims)

    with pytest.raises(ApplicationError) as caught:
        alerts.alert_freeze_topic(alert=bare, by=north_lead)
    assert "topic_tags" in caught.value.extra["fields"]
    services.watch_update(by=north_lead, watch=watch, values={"topic_tags": ["census"]})
    with pytest.raises(ApplicationError):
        alerts.alert_freeze_topic(alert=bare, by=author)
