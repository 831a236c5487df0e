"""Approval chains in a real browser: a drafter submits from the compose page, two approvers in
two stages approve from their inbox without a page reload, and the post becomes scheduled;
another post gets "request changes", the author reads the comment, edits and resubmits, and the
reviewer sees the diff. The inbox, review page, post page and notifications pass axe-core."""

import re

import pytest
from playwright.sync_api import expect

from networks.models import Channel
from publishing.models import Post

from ..factories import PASSWORD, SocialAccountFactory
from .conftest import TIMEOUT_MS, axe_check, login

pytestmark = pytest.mark.browser


@pytest.fixture
def account(org):
    return SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, handle="@north")


@pytest.fixture
def person(browser, live_server):
    """A signed-in page per person, each in its own browser context (own cookies)."""
    contexts = []

    def sign_in(username: str):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        login(page, live_server, username, PASSWORD)
        return page

    yield sign_in
    for context in contexts:
        context.close()


def nav(page):
    return page.get_by_role("navigation", name="Main")


def compose_and_submit(page, live_server, account, text: str) -> str:
    """Write a post on the compose page and "Save and submit"; returns the post page's URL."""
    nav(page).get_by_role("link", name="Compose").click()
    page.wait_for_url(f"{live_server.url}/posts/new/")
    page.get_by_label("Team").select_option(label="North")
    page.get_by_role("checkbox", name=re.compile(rf"^{re.escape(account.handle)} ")).check()
    page.get_by_label("Text", exact=True).fill(text)
    page.get_by_role("button", name="Save and submit").click()
    page.wait_for_url(re.compile(rf"{re.escape(live_server.url)}/posts/\d+/$"))
    expect(page.locator(".messages")).to_contain_text("Submitted for approval.")
    expect(page.locator("#post-status")).to_have_text("In review")
    return page.url


def open_review_from_inbox(page, live_server, post_id: int, version: int = 1) -> None:
    nav(page).get_by_role("link", name=re.compile(r"^Approvals \(\d+ waiting\)$")).click()
    page.wait_for_url(f"{live_server.url}/approvals/")
    page.get_by_role("link", name=f"Review post {post_id}, version {version}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Review post {post_id}, version {version}"
    )


def decide_without_reload(page, verdict: str, comment: str = "") -> None:
    """Send the decision form and check that the page did not navigate: a marker set on
    `window` survives only if the document was never replaced."""
    page.evaluate("window.__noReload = 'still here'")
    page.get_by_role("radio", name=verdict, exact=True).check()
    if comment:
        page.get_by_label("Comment").fill(comment)
    page.get_by_role("button", name="Send decision").click()
    expect(page.locator("#review-live")).to_contain_text("You ")
    assert page.evaluate("window.__noReload") == "still here"


def test_two_approvers_in_two_stages_approve_and_the_post_is_scheduled(
    person, live_server, author, approver, hq_approver, account, two_stage_policy
):
    alice = person("alice")
    post_url = compose_and_submit(alice, live_server, account, "Harbour festival this Saturday.")
    post = Post.objects.get()
    expect(alice.locator("#approval")).to_contain_text("Stage 1 of 2: Regional check")

    bob = person("bob")
    expect(nav(bob).get_by_role("link", name="Approvals (1 waiting)")).to_be_visible()
    nav(bob).get_by_role("link", name="Approvals (1 waiting)").click()
    inbox = bob.get_by_role("table", name="Steps waiting for your decision, oldest first")
    expect(inbox).to_contain_text("Stage 1 of 2: Regional check")
    expect(inbox).to_contain_text("Harbour festival this Saturday.")
    axe_check(bob, "approvals-inbox")
    open_review_from_inbox(bob, live_server, post.pk)
    preview = bob.get_by_role("article", name="@north on Mastodon")
    expect(preview).to_contain_text("Harbour festival this Saturday.")
    expect(bob.locator("#review-diff")).to_contain_text("This is the first version")
    axe_check(bob, "approvals-review")

    review_url = bob.url
    decide_without_reload(bob, "Approve")
    assert bob.url == review_url
    expect(bob.locator("#review-live")).to_contain_text("You approved version 1.")
    expect(bob.locator("#approval-chain")).to_contain_text(
        "Stage 2 of 2: HQ sign-off — waiting for hana"
    )
    expect(bob.locator("#decision-panel")).to_contain_text("You decided “Approve” on version 1")
    expect(bob.get_by_role("heading", name="Your decision")).to_be_focused()
    axe_check(bob, "approvals-review-decided")

    hana = person("hana")
    open_review_from_inbox(hana, live_server, post.pk)
    decide_without_reload(hana, "Approve")
    expect(hana.locator("#approval-chain")).to_contain_text("Approved at every stage (2 of 2)")

    alice.goto(post_url)
    expect(alice.locator("#post-status")).to_have_text("Scheduled")
    approval = alice.get_by_role("region", name="Approval")
    expect(approval).to_contain_text("Approved at every stage (2 of 2) on version 1.")
    expect(approval).to_contain_text("bob: Approve on version 1")
    expect(approval).to_contain_text("hana: Approve on version 1")
    axe_check(alice, "post-page-approved")


def test_changes_are_requested_then_the_edit_is_resubmitted_and_the_diff_shown(
    person, live_server, author, approver, hq_approver, account, two_stage_policy
):
    alice = person("alice")
    post_url = compose_and_submit(
        alice, live_server, account, "The bridge closes on Monday.\nUse the ferry."
    )
    post = Post.objects.get()

    bob = person("bob")
    open_review_from_inbox(bob, live_server, post.pk)
    # Asking for changes without saying which is refused beside the comment field.
    bob.evaluate("window.__noReload = 'still here'")
    bob.get_by_role("radio", name="Request changes").check()
    bob.get_by_role("button", name="Send decision").click()
    comment = bob.get_by_label("Comment")
    expect(comment).to_have_attribute("aria-invalid", "true")
    expect(comment).to_be_focused()
    expect(bob.locator("#decide-comment-error")).to_have_text(
        "Required when requesting changes or rejecting."
    )
    expect(bob.locator("#review-live")).to_contain_text("Say what must change")
    assert bob.evaluate("window.__noReload") == "still here"
    axe_check(bob, "approvals-review-error")

    decide_without_reload(bob, "Request changes", "Say which bridge, and until when.")
    expect(bob.locator("#review-live")).to_contain_text("You requested changes to version 1")
    expect(bob.locator("#approval-chain")).to_contain_text(
        "Changes requested at stage 1 of 2 (Regional check) by bob"
    )

    alice.reload()
    nav(alice).get_by_role("link", name="Notifications (1 unread)").click()
    alice.wait_for_url(f"{live_server.url}/notifications/")
    notifications = alice.get_by_role("list", name="Your notifications, newest first")
    expect(notifications.get_by_role("listitem").filter(has_text="Unread")).to_contain_text(
        f"Changes requested on post #{post.pk}"
    )
    expect(alice.get_by_text("Say which bridge, and until when.")).to_be_visible()
    axe_check(alice, "notifications")
    alice.get_by_role("button", name="Mark all as read").click()
    expect(nav(alice).get_by_role("link", name="Notifications (0 unread)")).to_be_visible()
    expect(notifications.get_by_text("Unread", exact=True)).to_have_count(0)
    alice.get_by_role("link", name=f"Changes requested on post #{post.pk}").click()
    alice.wait_for_url(post_url)
    expect(alice.locator("#post-status")).to_have_text("Draft")
    expect(alice.get_by_role("region", name="Approval")).to_contain_text(
        "“Say which bridge, and until when.”"
    )
    axe_check(alice, "post-page-changes-requested")

    alice.get_by_role("link", name="Edit").click()
    alice.get_by_label("Text", exact=True).fill(
        "The Elm Street bridge closes on Monday until Friday.\nUse the ferry."
    )
    alice.get_by_role("button", name="Save and submit").click()
    alice.wait_for_url(post_url)
    expect(alice.locator("#post-status")).to_have_text("In review")
    expect(alice.locator("details.past-rounds summary")).to_have_text("Earlier approval rounds (1)")

    bob.goto(f"{live_server.url}/")
    open_review_from_inbox(bob, live_server, post.pk, version=2)
    diff = bob.locator("#review-diff")
    expect(diff.get_by_role("heading", level=2)).to_have_text(
        "Changes since version 1, which you last reviewed"
    )
    expect(diff).to_contain_text("Removed: The bridge closes on Monday.")
    expect(diff).to_contain_text("Added: The Elm Street bridge closes on Monday until Friday.")
    expect(diff).to_contain_text("Unchanged: Use the ferry.")
    axe_check(bob, "approvals-review-diff")
    decide_without_reload(bob, "Approve")
    expect(bob.locator("#approval-chain")).to_contain_text("Stage 2 of 2: HQ sign-off")
