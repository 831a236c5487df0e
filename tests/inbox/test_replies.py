"""Replies (issue 17, item 4): drafted from an item, approved by the chain the team's policies set
for replies (or none), published as the network's reply, and the item answered and closed."""

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from approvals.models import ApprovalPolicy, ApprovalRequest, ApprovalStage
from audit.models import AuditEvent
from inbox.models import InboundItem, ItemStatus
from networks.models import Channel
from publishing import services as publishing
from publishing.dispatch import claim, send
from publishing.models import Post, PostStatus, PostTarget, SandboxPublication

from ..factories import SocialAccountFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def account(org):
    """A training account on Mastodon: its replies go to the sandbox feed."""
    return SocialAccountFactory(
        team=org["north"], channel=Channel.MASTODON, handle="@north", sandbox=True
    )


@pytest.fixture
def item(account):
    return InboundItem.objects.create(
        account=account,
        network_id="109",
        thread_id="100",
        kind="reply",
        author_handle="amira@example.social",
        text="When does the visitor centre open?",
        posted_at=T0,
        raw={"id": "109", "status": {"id": "109"}},
    )


def _reply(user, item, body="It opens at nine. Welcome!"):
    response = api(user).post(f"/api/v1/inbox/{item.pk}/reply/", {"body": body}, format="json")
    assert response.status_code == 201, response.json()
    return Post.objects.get(pk=response.json()["id"])


def test_a_reply_is_a_post_that_carries_the_item(author, item):
    post = _reply(author, item)

    [target] = post.targets.all()
    assert post.is_reply and post.status == PostStatus.DRAFT
    assert post.team == item.account.team
    assert target.social_account == item.account
    assert target.in_reply_to == {"network_id": "109", "thread_id": "100", "raw": item.raw}
    item.refresh_from_db()
    assert item.status == ItemStatus.WAITING
    assert AuditEvent.objects.filter(action="inbox.reply_drafted", object_id=str(item.pk)).exists()


def test_the_reply_reads_back_as_a_post_with_the_item_it_answers(author, item):
    response = api(author).post(
        f"/api/v1/inbox/{item.pk}/reply/", {"body": "It opens at nine."}, format="json"
    )

    data = response.json()
    assert data["is_reply"] is True
    assert data["targets"][0]["in_reply_to"] == "109"
    assert data["status"] == "draft"


def test_a_reply_and_a_post_of_the_same_text_are_different_content(author, item):
    reply = _reply(author, item, body="Thank you!")
    post = publishing.post_create(
        by=author,
        team_id=item.account.team_id,
        body="Thank you!",
        targets=[publishing.TargetInput(social_account_id=item.account_id)],
    )

    assert reply.content_hash != post.content_hash


def test_a_reply_cannot_move_to_another_account(author, item, org):
    other = SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, handle="@other")
    reply = _reply(author, item)

    response = api(author).patch(
        f"/api/v1/posts/{reply.pk}/", {"targets": [{"social_account": other.pk}]}, format="json"
    )

    assert response.status_code == 400
    assert "targets" in response.json()["extra"]["fields"]


def test_an_empty_reply_and_a_reply_by_an_outsider_are_refused(author, outsider, item):
    empty = api(author).post(f"/api/v1/inbox/{item.pk}/reply/", {"body": "  "}, format="json")
    foreign = api(outsider).post(f"/api/v1/inbox/{item.pk}/reply/", {"body": "Hi"}, format="json")

    assert empty.status_code == 400
    assert "body" in empty.json()["extra"]["fields"]
    assert foreign.status_code == 404
    assert not Post.objects.exists()


def test_without_a_policy_a_reply_needs_an_approver_as_any_post(author, approver, item):
    post = _reply(author, item)

    publishing.post_submit(post=post, by=author)

    request = ApprovalRequest.objects.get(post=post)
    assert request.status == "open"
    assert [step.name for step in request.steps.all()] == ["Approval by the team"]


def test_a_policy_may_give_replies_a_lighter_chain(author, approver, lead, item, org):
    policy = ApprovalPolicy.objects.create(name="North", team=org["north"])
    ApprovalStage.objects.create(
        policy=policy, order=1, name="Desk", decider_team=org["north"], decider_role=Role.APPROVER
    )
    ApprovalStage.objects.create(
        policy=policy,
        order=2,
        name="Press office",
        decider_team=org["hq"],
        decider_role=Role.LEAD,
        for_replies=False,
    )
    reply = _reply(author, item)

    publishing.post_submit(post=reply, by=author)

    request = ApprovalRequest.objects.get(post=reply)
    assert [step.name for step in request.steps.all()] == ["Desk"]


def test_a_policy_may_let_replies_through_without_approval(author, item, org):
    ApprovalPolicy.objects.create(name="North", team=org["north"], replies_need_approval=False)
    reply = _reply(author, item)

    submitted = publishing.post_submit(post=reply, by=author)

    assert submitted.status == PostStatus.SCHEDULED
    assert submitted.approved_content_hash == reply.content_hash
    request = ApprovalRequest.objects.get(post=reply)
    assert request.status == "approved"
    actions = list(
        AuditEvent.objects.filter(seq__gt=0).order_by("seq").values_list("action", flat=True)
    )
    assert actions[-3:] == ["post.submitted", "approval.not_needed", "post.approved"]


def test_a_post_of_its_own_still_passes_every_stage(author, approver, item, org):
    ApprovalPolicy.objects.create(name="North", team=org["north"], replies_need_approval=False)
    post = publishing.post_create(
        by=author,
        team_id=org["north"].pk,
        body="A post, not a reply.",
        targets=[publishing.TargetInput(social_account_id=item.account_id)],
    )

    publishing.post_submit(post=post, by=author)

    assert ApprovalRequest.objects.get(post=post).status == "open"


def test_a_published_reply_answers_and_closes_its_item(author, item, org):
    ApprovalPolicy.objects.create(name="North", team=org["north"], replies_need_approval=False)
    reply = publishing.post_submit(post=_reply(author, item), by=author)
    claim.dispatch_due()
    target = PostTarget.objects.get(post=reply)

    assert send.publish_target(target_id=target.pk) == "published"

    item.refresh_from_db()
    target.refresh_from_db()
    assert item.status == ItemStatus.CLOSED
    assert item.first_response_at == target.published_at == item.closed_at
    assert item.response_seconds == (target.published_at - T0).total_seconds()
    publication = SandboxPublication.objects.get()
    assert publication.text == "It opens at nine. Welcome!"
    event = AuditEvent.objects.get(action="inbox.item_answered")
    assert event.data == {"post": reply.pk, "target": target.pk, "status_before": "waiting"}


def test_a_network_without_replies_is_a_preflight_error(author, org):
    site = SocialAccountFactory(team=org["north"], channel=Channel.WEBHOOK, handle="site")
    item = InboundItem.objects.create(
        account=site, network_id="x1", kind="comment", author_handle="a", posted_at=T0
    )
    reply = _reply(author, item)

    response = api(author).post(f"/api/v1/posts/{reply.pk}/submit/")

    assert response.status_code == 400
    codes = [p["code"] for p in response.json()["extra"]["problems"]]
    assert "replies_unsupported" in codes


def test_the_reply_page_shows_the_item_it_answers(client, author, item):
    reply = _reply(author, item)
    client.force_login(author)

    page = client.get(f"/posts/{reply.pk}/").content.decode()

    assert "In reply to" in page
    assert "When does the visitor centre open?" in page


def test_a_post_page_shows_what_came_back_on_it(client, author, account, org):
    post = publishing.post_create(
        by=author,
        team_id=org["north"].pk,
        body="The visitor centre reopens.",
        targets=[publishing.TargetInput(social_account_id=account.pk)],
    )
    target = post.targets.get()
    InboundItem.objects.create(
        account=account,
        network_id="201",
        kind="reply",
        author_handle="ben_walks",
        text="Great news <b>finally</b>",
        posted_at=T0,
        target=target,
    )
    client.force_login(author)

    page = client.get(f"/posts/{post.pk}/").content.decode()

    assert "What came back" in page
    assert "Great news &lt;b&gt;finally&lt;/b&gt;" in page


def test_a_reply_on_a_network_that_needs_images_for_posts_needs_none(author, approver, org):
    page = SocialAccountFactory(
        team=org["north"], channel=Channel.INSTAGRAM, handle="@north_ig", sandbox=True
    )
    item = InboundItem.objects.create(
        account=page, network_id="c1", kind="comment", author_handle="a", posted_at=T0
    )
    reply = _reply(author, item)

    response = api(author).post(f"/api/v1/posts/{reply.pk}/submit/")

    assert response.status_code == 200, response.json()
