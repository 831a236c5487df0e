"""A post's figures on its page in a real browser: the latest reading, a chart of likes, reposts
and replies over the readings, and every reading in a table (the chart's data beside it); the
page passes axe-core. Screenshot: test-artifacts/post-engagement.png."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from publishing.dispatch import claim, send
from publishing.models import PostTarget, TargetMetrics

from ..factories import PASSWORD
from ..integration.dispatch_support import approved_post, sandbox_account
from .conftest import axe_check, login

pytestmark = pytest.mark.browser


def test_the_author_reads_how_the_post_did(page, live_server, org, author):
    account = sandbox_account(org["north"], handle="training")
    post = approved_post(author=author, team=org["north"], accounts=[account])
    claim.dispatch_due()
    target = PostTarget.objects.get(post=post)
    assert send.publish_target(target_id=target.pk) == "published"
    now = timezone.now()
    TargetMetrics.objects.bulk_create(
        TargetMetrics(
            target=target,
            at=now - timedelta(hours=6 - n),
            likes=n * 4,
            reposts=n,
            replies=n // 2,
            quotes=0,
            impressions=n * 100,
            clicks=n * 2,
        )
        for n in range(6)
    )
    login(page, live_server, "alice", PASSWORD)

    page.goto(f"{live_server.url}/posts/{post.pk}/")

    section = page.get_by_role("region", name="How it did")
    expect(section).to_contain_text("Likes")
    expect(section.locator(".figures")).to_contain_text("20")
    chart = section.get_by_role("img")
    expect(chart).to_have_count(1)
    expect(chart).to_have_accessible_name(
        "Likes (now 20), Reposts (now 5), Replies (now 2) over 6 readings, on a scale of 0 to 20"
    )
    section.get_by_text("Every reading (6)").click()
    table = section.get_by_role("table", name="Figures of training by reading")
    expect(table.get_by_role("row")).to_have_count(7)
    axe_check(page, "post-engagement")
