"""A post whose reconcile could not tell whether it went out: the author sees both candidates on
the post page and decides, in a real browser with axe."""

import pytest
from playwright.sync_api import expect

from publishing.dispatch import common
from publishing.models import Post, PostStatus, PostTarget, TargetStatus

from ..factories import PASSWORD
from ..integration.dispatch_support import approved_post, webhook_account
from .conftest import axe_check, login

pytestmark = pytest.mark.browser


def test_the_author_picks_the_candidate_that_is_ours(page, live_server, author, org):
    account = webhook_account(org["north"], "https://www.agency.example/hook", handle="site")
    post = approved_post(author=author, team=org["north"], accounts=[account])
    Post.objects.filter(pk=post.pk).update(status=PostStatus.PUBLISHING)
    PostTarget.objects.filter(post=post).update(
        status=TargetStatus.HELD,
        held_reason=common.HOLD_DECISION,
        reconcile_candidates=[
            {
                "external_id": "111",
                "external_url": "https://site.example/111",
                "text": "Doors open at 9.",
                "created_at": "2026-03-02T09:00:01Z",
                "why": "same text",
            },
            {
                "external_id": "222",
                "external_url": "https://site.example/222",
                "text": "Doors open at 9.",
                "created_at": "2026-03-02T09:00:04Z",
                "why": "same text",
            },
        ],
    )

    login(page, live_server, author.username, PASSWORD)
    page.goto(f"{live_server.url}/posts/{post.pk}/")
    expect(page.get_by_role("heading", name="Did it go out?", exact=False)).to_be_visible()
    expect(page.get_by_role("link", name="open it on", exact=False)).to_have_count(2)
    axe_check(page, "post-reconcile-decision")

    page.get_by_role("button", name="This one is our post").nth(1).click()

    expect(page.get_by_text("Decided.", exact=False)).to_be_visible()
    target = PostTarget.objects.get(post=post)
    assert (target.status, target.external_id) == (TargetStatus.PUBLISHED, "222")
