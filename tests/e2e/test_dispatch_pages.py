"""The lead's freeze page and a training account's sandbox feed, in a real browser with axe."""

import pytest
from playwright.sync_api import expect

from publishing import freezes
from publishing.dispatch import claim, send
from publishing.models import PostTarget

from ..factories import PASSWORD
from ..integration.dispatch_support import approved_post, sandbox_account
from .conftest import axe_check, login

pytestmark = pytest.mark.browser


def test_a_lead_freezes_and_lifts_publishing_and_the_page_passes_axe(page, live_server, lead):
    login(page, live_server, "lena", PASSWORD)
    page.goto(f"{live_server.url}/freezes/")
    axe_check(page, "freezes")
    page.get_by_label("Reason").first.fill("Election period: nothing goes out until Monday.")
    page.get_by_role("button", name="Freeze").first.click()
    expect(page.get_by_text("Election period")).to_be_visible()
    axe_check(page, "freezes-active")


def test_a_training_accounts_feed_shows_what_it_published(page, live_server, author, org):
    account = sandbox_account(org["north"], handle="training")
    post = approved_post(author=author, team=org["north"], accounts=[account])
    claim.dispatch_due()
    send.publish_target(target_id=PostTarget.objects.get(post=post).pk)

    login(page, live_server, "alice", PASSWORD)
    page.goto(f"{live_server.url}/sandbox/{account.pk}/")
    expect(page.get_by_text("Launch window opens at dawn.")).to_be_visible()
    axe_check(page, "sandbox-feed")


def test_a_lead_gives_a_held_post_a_new_time_on_the_freeze_page(
    page, live_server, lead, author, org
):
    from datetime import timedelta

    from django.utils import timezone

    from ..integration.dispatch_support import webhook_account

    hook = webhook_account(org["north"], "https://www.agency.example/hook", handle="agency-site")
    post = approved_post(author=author, team=org["north"], accounts=[hook])
    freezes.freeze_create(by=lead, scope="everything", reason="Incident review")

    login(page, live_server, "lena", PASSWORD)
    page.goto(f"{live_server.url}/freezes/")
    row = page.locator(f"#held-{post.pk}")
    expect(row).to_contain_text("agency-site")
    axe_check(page, "freezes-held")
    day = (timezone.now() + timedelta(days=3)).date().isoformat()
    page.get_by_label(f"New day for post {post.pk}").fill(day)
    page.get_by_label(f"New time for post {post.pk}").fill("10:15")
    row.get_by_label("Reason for the new time").fill("After the briefing")
    page.get_by_role("button", name=f"Reschedule post {post.pk}").click()
    expect(page.get_by_text(f"Post #{post.pk} now goes out at {day} 10:15")).to_be_visible()
    target = PostTarget.objects.get(post=post)
    assert target.status == "held" and target.next_attempt_at.date().isoformat() == day
