"""The inbox in a real browser: triage by keyboard alone (move, open, assign to me, close), a bulk
close of two items, a note added without a reload, and the live update announcing an item that
arrives while the page is open. axe-core checks every state shown."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inbox import views as inbox_views
from inbox.models import InboundItem, ItemNote, ItemStatus
from inbox.sandbox import sandbox_inbound
from networks.models import Channel

from ..factories import PASSWORD, SocialAccountFactory
from .conftest import axe_check, login

pytestmark = pytest.mark.browser


@pytest.fixture
def account(org):
    return SocialAccountFactory(
        team=org["north"], channel=Channel.MASTODON, handle="@north", sandbox=True
    )


def make_items(account, count: int) -> list[InboundItem]:
    """`count` items, the last made the newest (first in the list)."""
    now = timezone.now()
    return [
        InboundItem.objects.create(
            account=account,
            network_id=f"n{n}",
            kind="mention",
            author_handle=f"person{n}",
            author_name=f"Person {n}",
            text=f"Question number {n}: when does the office open?",
            posted_at=now - timedelta(minutes=count - n),
            sentiment="neutral",
            language="en",
        )
        for n in range(1, count + 1)
    ]


def row(page, item):
    return page.locator(f"#item-row-{item.pk}")


def open_inbox(page, live_server):
    login(page, live_server, "alice", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Inbox").click()
    page.wait_for_url(f"{live_server.url}/inbox/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Inbox")
    # The script is loaded and ready (it shows what works only with it).
    expect(page.get_by_role("button", name="Keyboard shortcuts")).to_be_visible()


def test_triage_by_keyboard_alone(page, live_server, author, account):
    first, second, third = make_items(account, 3)  # shown third, second, first
    open_inbox(page, live_server)
    axe_check(page, "inbox")

    # Move: j down, k up; the selected row has focus and says it is the current one.
    page.keyboard.press("j")
    expect(row(page, third)).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    expect(row(page, first)).to_be_focused()
    page.keyboard.press("k")
    expect(row(page, second)).to_be_focused()
    expect(row(page, second)).to_have_attribute("aria-current", "true")
    expect(row(page, third)).not_to_have_attribute("aria-current", "true")

    # Open: Enter puts the item in the panel and focus on its heading.
    page.keyboard.press("Enter")
    heading = page.locator("#item-panel-heading")
    expect(heading).to_have_text("Mention from Person 2")
    expect(heading).to_be_focused()
    expect(page.locator("#item-panel")).to_contain_text(second.text)
    axe_check(page, "inbox-item-open")

    # Assign to me, then close: the row and the panel say so, and the live region reads it out.
    page.keyboard.press("a")
    live = page.locator("#inbox-live")
    expect(live).to_have_text("Gave the mention from Person 2 to you.")
    expect(row(page, second)).to_contain_text("alice")
    expect(page.locator("#item-panel")).to_contain_text(re.compile(r"Assigned to\s*alice"))
    page.keyboard.press("e")
    expect(live).to_have_text("Closed the mention from Person 2.")
    expect(row(page, second)).to_contain_text("Closed")
    expect(page.locator("#item-panel")).to_contain_text(re.compile(r"Status\s*Closed"))
    expect(row(page, second)).to_have_attribute("aria-current", "true")
    expect(heading).to_be_focused()
    second.refresh_from_db()
    assert (second.status, second.assignee) == (ItemStatus.CLOSED, author)
    axe_check(page, "inbox-item-closed")

    # x checks the selected row's box; o opens the row the keys moved to.
    page.keyboard.press("j")
    expect(row(page, first)).to_be_focused()
    page.keyboard.press("x")
    expect(row(page, first).get_by_role("checkbox")).to_be_checked()
    page.keyboard.press("o")
    expect(heading).to_have_text("Mention from Person 1")

    # Typing in a field is typing, not a shortcut.
    page.keyboard.press("/")
    expect(page.get_by_label("Account")).to_be_focused()
    page.locator("#bulk-tag").focus()
    page.keyboard.type("jeo")
    expect(page.locator("#bulk-tag")).to_have_value("jeo")
    first.refresh_from_db()
    assert first.status == ItemStatus.OPEN

    # ? lists the shortcuts (here from the button next to the field); Escape closes the list.
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Tag selected")).to_be_focused()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Assign the item to me")
    axe_check(page, "inbox-shortcuts")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_bulk_close_of_two_items(page, live_server, author, account):
    first, second, third = make_items(account, 3)
    open_inbox(page, live_server)

    row(page, first).get_by_role("checkbox").check()
    row(page, third).get_by_role("checkbox").check()
    expect(page.locator("#bulk-count")).to_have_text("(2 selected)")
    page.get_by_role("button", name="Close selected").click()

    expect(page.locator(".messages")).to_contain_text("Closed 2 items.")
    expect(row(page, first)).to_contain_text("Closed")
    expect(row(page, third)).to_contain_text("Closed")
    expect(row(page, second)).not_to_contain_text("Closed")
    statuses = dict(InboundItem.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "closed", second.pk: "open", third.pk: "closed"}
    axe_check(page, "inbox-bulk-closed")

    # "Select all on this page" checks every row.
    page.get_by_label("Select all items on this page").check()
    for item in (first, second, third):
        expect(row(page, item).get_by_role("checkbox")).to_be_checked()

    # A filter the page cannot read is named beside its field.
    page.goto(f"{live_server.url}/inbox/?sentiment=angry")
    expect(page.locator("#filter-sentiment-error")).to_have_text(
        "Choose a sentiment from the list."
    )
    axe_check(page, "inbox-filter-errors")


def test_a_note_is_added_without_a_reload(page, live_server, author, account):
    [item] = make_items(account, 1)
    open_inbox(page, live_server)
    page.evaluate("window.__noReload = 'still here'")

    row(page, item).get_by_role("link", name="Mention from Person 1").click()
    panel = page.locator("#item-panel")
    expect(panel.get_by_role("heading", level=2)).to_have_text("Mention from Person 1")
    panel.get_by_label("Add a note").fill("Asked the visitor centre; will answer by noon.")
    panel.get_by_role("button", name="Add note").click()

    expect(page.locator("#inbox-live")).to_have_text(
        "Added your note to the mention from Person 1."
    )
    expect(panel.locator(".notes")).to_contain_text(
        "Asked the visitor centre; will answer by noon."
    )
    expect(panel.get_by_label("Add a note")).to_have_value("")
    assert page.evaluate("window.__noReload") == "still here"
    note = ItemNote.objects.get()
    assert (note.item_id, note.author) == (item.pk, author)
    axe_check(page, "inbox-note-added")

    # A tag without a name is refused beside its field, with focus on it.
    panel.get_by_label("New tag").fill("   ")
    panel.get_by_role("button", name="Add tag").click()
    expect(panel.locator("#tag-error")).to_have_text("Give the tag a name.")
    expect(panel.get_by_label("New tag")).to_be_focused()
    axe_check(page, "inbox-tag-refused")

    # The item's own page (what the panel's link and a browser without the script show).
    panel.get_by_role("link", name="Open this item on a page of its own").click()
    page.wait_for_url(f"{live_server.url}/inbox/{item.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mention from Person 1")
    expect(page.locator(".notes")).to_contain_text("Asked the visitor centre")
    axe_check(page, "inbox-item-page")


def test_an_item_that_arrives_is_announced_without_a_reload(
    page, live_server, author, account, monkeypatch
):
    monkeypatch.setattr(inbox_views, "POLL_SECONDS", 1)
    [item] = make_items(account, 1)
    open_inbox(page, live_server)
    page.evaluate("window.__noReload = 'still here'")
    page.keyboard.press("j")
    expect(row(page, item)).to_be_focused()

    stored = sandbox_inbound(account=account, count=1, seed=7)

    status = page.locator("#inbox-updates")
    expect(status).to_have_text("1 new item came since this page was loaded.")
    # Announced only: the list, the selection and the focus stay as they were.
    expect(row(page, item)).to_be_focused()
    expect(page.locator("#inbox-items tbody tr")).to_have_count(1)
    assert page.evaluate("window.__noReload") == "still here"
    axe_check(page, "inbox-live-update")

    page.get_by_role("button", name="Show the new item").click()
    [new_id] = stored.added
    new_row = page.locator(f"#item-row-{new_id}")
    expect(page.locator("#inbox-items tbody tr").first).to_have_id(f"item-row-{new_id}")
    expect(new_row).to_be_focused()
    expect(status).to_have_text("1 new item is now at the top of the list.")
    assert page.evaluate("window.__noReload") == "still here"
    axe_check(page, "inbox-live-update-shown")
    assert re.fullmatch(r"item-row-\d+", new_row.get_attribute("id"))


def test_a_reply_is_drafted_from_the_inbox_approved_and_published(
    browser, live_server, author, approver, account
):
    """Alice answers an item from its panel, submits the reply; Bob approves it; once sent, the
    item is closed with its first response."""
    from publishing.dispatch import claim, send
    from publishing.models import PostTarget

    from .conftest import TIMEOUT_MS

    [item] = make_items(account, 1)

    def person(username):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        login(page, live_server, username, PASSWORD)
        return context, page

    alice_context, alice = person("alice")
    bob_context, bob = person("bob")
    try:
        alice.goto(f"{live_server.url}/inbox/{item.pk}/")
        alice.get_by_label("Reply as @north").fill("The office opens at nine. Welcome!")
        axe_check(alice, "inbox-reply-form")
        alice.get_by_role("button", name="Draft the reply").click()
        alice.wait_for_url(re.compile(rf"{re.escape(live_server.url)}/posts/\d+/$"))
        expect(alice.get_by_role("region", name="In reply to")).to_contain_text("Question number 1")
        alice.get_by_role("button", name="Submit for approval").click()
        expect(alice.locator("#post-status")).to_have_text("In review")
        axe_check(alice, "reply-post-page")
        post_id = int(alice.url.rstrip("/").rsplit("/", 1)[1])

        bob.get_by_role("navigation", name="Main").get_by_role(
            "link", name=re.compile(r"^Approvals \(\d+ waiting\)$")
        ).click()
        bob.get_by_role("link", name=f"Review post {post_id}, version 1").click()
        expect(bob.get_by_role("region", name="In reply to")).to_contain_text("Question number 1")
        axe_check(bob, "review-of-a-reply")
        bob.get_by_role("radio", name="Approve", exact=True).check()
        bob.get_by_role("button", name="Send decision").click()
        expect(bob.locator("#review-live")).to_contain_text("You ")

        claim.dispatch_due()
        target = PostTarget.objects.get(post_id=post_id)
        assert send.publish_target(target_id=target.pk) == "published"

        alice.goto(f"{live_server.url}/inbox/{item.pk}/")
        panel = alice.locator("#item-panel")
        expect(panel.locator(".status")).to_have_text("Closed")
        expect(panel).to_contain_text("after it was posted")
        expect(panel.get_by_role("link", name=f"Reply {post_id}")).to_be_visible()
        axe_check(alice, "inbox-item-answered")
    finally:
        alice_context.close()
        bob_context.close()
    item.refresh_from_db()
    assert item.status == ItemStatus.CLOSED and item.first_response_at is not None
