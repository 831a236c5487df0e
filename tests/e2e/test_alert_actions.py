"""From an alert to an approved public answer, in a real browser: a lead who drafts for her team
adds an approved response on the inbox's responses page, opens an alert, is told beside the
field that a draft needs an account, drafts a post from the response and lands on the post's
page; she answers a top post the same way, and points the watch's alerts at a chat webhook,
whose secret is shown once. axe-core checks every page and state shown."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from inbox.models import ApprovedResponse
from listening import alerts, services
from networks.models import Channel
from publishing.models import Post, PostStatus

from ..factories import PASSWORD, SocialAccountFactory, UserFactory, grant
from ..listening.conftest import T0, public
from .conftest import axe_check, login

pytestmark = pytest.mark.browser

LINE = "We never ask for bank details by text. Report the message to 7726."


@pytest.fixture
def nora(org):
    """A lead of North who drafts for it too."""
    user = UserFactory(username="nora")
    grant(user, org["north"], Role.LEAD, Role.DRAFTER)
    return user


@pytest.fixture
def alert(org, nora):
    """A false claim repeated by two public posts on X: an alert of North's census watch."""
    watch = services.watch_create(
        by=nora,
        team_id=org["north"].pk,
        values={
            "name": "Census scams",
            "terms": ["census"],
            "networks": ["x"],
            "topic_tags": ["census"],
            "topic_campaign": "Census 2026",
        },
    )
    services.claim_create(by=nora, watch=watch, claim="The census fines by text", terms=["fine"])
    stored = services.posts_store(
        watch=watch,
        network="x",
        posts=[
            public("Census says pay a fine by link or else", at=T0, reposts=40),
            public("Got a census fine text, is it real?", at=T0, reposts=3),
        ],
    )
    [raised] = alerts.claims_matched(watch, stored.claims)
    return raised


def test_a_lead_drafts_a_post_and_a_reply_from_an_approved_response(
    page, live_server, org, nora, alert, settings
):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    account = SocialAccountFactory(team=org["north"], channel=Channel.X, handle="@north_census")
    login(page, live_server, "nora", PASSWORD)

    # The inbox links the approved responses; nora adds one for North.
    page.goto(f"{live_server.url}/inbox/")
    page.get_by_role("link", name="Approved responses").click()
    page.wait_for_url(f"{live_server.url}/inbox/responses/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Approved responses")
    page.get_by_label("Title").fill("Scam texts")
    page.get_by_role("button", name="Add the response").click()
    expect(page.locator("#response-body-error")).to_contain_text("Write the response.")
    expect(page.get_by_label("Title")).to_have_value("Scam texts")
    axe_check(page, "inbox-responses-refused")
    page.get_by_label("The response", exact=True).fill(LINE)
    page.get_by_role("button", name="Add the response").click()
    expect(page.locator(".messages")).to_contain_text("Added “Scam texts”")
    expect(page.locator("table.responses")).to_contain_text(LINE)
    axe_check(page, "inbox-responses")
    line = ApprovedResponse.objects.get()

    # The alert's page offers the response and North's accounts.
    page.goto(f"{live_server.url}/listening/alerts/{alert.pk}/")
    draft = page.get_by_role("form", name="Draft a post from an approved response")
    draft.get_by_label("Approved response").select_option(label="Scam texts (North)")
    draft.get_by_role("button", name="Draft the post").click()
    expect(page.locator("#draft-accounts-error")).to_contain_text("Choose at least one")
    expect(page.locator("#draft-response")).to_have_value(str(line.pk))
    assert not Post.objects.exists()
    axe_check(page, "alert-draft-refused")

    draft.get_by_label("@north_census").check()
    draft.get_by_role("button", name="Draft the post").click()
    post = Post.objects.get()
    page.wait_for_url(f"{live_server.url}/posts/{post.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Post {post.pk}")
    expect(page.locator(".messages")).to_contain_text("Drafted the post from the approved response")
    assert (post.status, post.body, post.tags, post.campaign) == (
        PostStatus.DRAFT,
        LINE,
        ["census"],
        "Census 2026",
    )
    assert [t.social_account_id for t in post.targets.all()] == [account.pk]
    axe_check(page, "alert-drafted-post")

    # Beside the most shared post: a reply in the response's words.
    page.goto(f"{live_server.url}/listening/alerts/{alert.pk}/")
    first = page.locator(".evidence-posts > li").first
    first.get_by_text("Reply to this post").click()
    first.get_by_label("Approved response").select_option(label="Scam texts (North)")
    expect(first.get_by_label("Answer from")).to_have_value(str(account.pk))
    axe_check(page, "alert-reply-form")
    first.get_by_role("button", name=re.compile("^Draft the reply")).click()
    reply = Post.objects.filter(is_reply=True).get()
    page.wait_for_url(f"{live_server.url}/posts/{reply.pk}/")
    expect(page.locator(".messages")).to_contain_text("Drafted the reply.")
    assert reply.body == LINE

    # The watch's chat webhook: its secret is shown this once.
    page.goto(f"{live_server.url}/listening/watches/{alert.watch_id}/")
    page.get_by_label("Webhook address").fill("http://127.0.0.1:8123/hooks/cxhub")
    page.get_by_role("button", name="Save the webhook").click()
    expect(page.locator("#webhook-secret-panel")).to_contain_text("It will not be shown again.")
    secret = page.locator("#webhook-secret").inner_text()
    assert len(secret) >= 40
    axe_check(page, "watch-webhook-secret")
    page.goto(f"{live_server.url}/listening/watches/{alert.watch_id}/")
    expect(page.locator("#webhook-secret")).to_have_count(0)
    expect(page.locator("#watch-webhook")).to_have_text("http://127.0.0.1:8123/hooks/cxhub")
    assert secret not in page.content()
