"""Compose in a real browser: the counters count as each network counts while typing, an image is
uploaded with its alt text, the post is saved and submitted; every page passes axe-core."""

import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from networks.channels import get_channel
from networks.models import Channel
from publishing.models import Post
from publishing.preflight import published_text

from ..factories import PASSWORD, SocialAccountFactory
from .conftest import TIMEOUT_MS, axe_check, login

pytestmark = pytest.mark.browser

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one ZWJ sequence


@pytest.fixture
def accounts(org):
    return {
        "mastodon": SocialAccountFactory(
            team=org["north"], channel=Channel.MASTODON, handle="@north"
        ),
        "bluesky": SocialAccountFactory(
            team=org["north_centre"],
            channel=Channel.BLUESKY,
            handle="north.bsky.social",
            base_url="https://bsky.social",
        ),
        "x": SocialAccountFactory(
            team=org["north"], channel=Channel.X, handle="@north_x", base_url="https://x.com"
        ),
    }


@pytest.fixture
def paris_page(browser):
    """A browser whose own time zone is Paris: compose offers it when the person has none yet."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id="Europe/Paris"
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def counter(page, account, kind="text"):
    return page.locator(f"#preview-{account.pk} .counter[data-kind='{kind}']")


def expected(network: str, text: str, link: str = "") -> str:
    """The counter's words for `text`, from the server's own counting."""
    channel = get_channel(network)
    sent = published_text(Post(body=text, link=link), network, "")
    value, limit = channel.count(sent), channel.limits.max_text
    words = f"{value:,} / {limit:,} {channel.limits.text_unit}"
    return words + (f" — {value - limit:,} over" if value > limit else "")


def test_a_drafter_composes_uploads_saves_and_submits(
    paris_page, live_server, author, approver, accounts, tmp_path
):
    page = paris_page
    mastodon, bluesky, x = accounts["mastodon"], accounts["bluesky"], accounts["x"]
    login(page, live_server, "alice", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Compose").click()
    page.wait_for_url(f"{live_server.url}/posts/new/")
    expect(page.get_by_role("heading", level=1)).to_have_text("New post")
    # No post yet: the browser's zone is the default.
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")

    page.get_by_label("Team").select_option(label="North")
    for account in (mastodon, bluesky, x):
        page.get_by_role("checkbox", name=re.compile(rf"^{re.escape(account.handle)} ")).check()
    expect(counter(page, bluesky)).to_have_text("0 / 300 graphemes")
    expect(counter(page, mastodon)).to_have_text("0 / 500 characters")
    expect(page.get_by_label(f"Text for {bluesky.handle} on Bluesky — leave empty")).to_be_visible()

    body = page.get_by_label("Text", exact=True)
    text = f"Family day {FAMILY}"
    body.fill(text)
    # One grapheme on Bluesky and Mastodon, two weighted characters on X.
    expect(counter(page, bluesky)).to_have_text("12 / 300 graphemes")
    expect(counter(page, bluesky, "bytes")).to_have_text("36 / 3,000 bytes")
    expect(counter(page, mastodon)).to_have_text("12 / 500 characters")
    expect(counter(page, x)).to_have_text("13 / 280 weighted characters")
    for network, account in (("bluesky", bluesky), ("mastodon", mastodon), ("x", x)):
        expect(counter(page, account)).to_have_text(expected(network, text))
    expect(page.locator(f"#preview-{bluesky.pk}-text")).to_have_text(text)

    # Links: 23 on X and Mastodon whatever their length, as written on Bluesky.
    text = (
        "Read https://agency.example/guides/2027/a-very-long-path-to-the-guide now, "
        "or ask @help@agency.example"
    )
    body.fill(text)
    for network, account in (("bluesky", bluesky), ("mastodon", mastodon), ("x", x)):
        expect(counter(page, account)).to_have_text(expected(network, text))

    body.fill("a" * 313)
    expect(counter(page, bluesky)).to_have_text("313 / 300 graphemes — 13 over")
    expect(counter(page, bluesky)).to_have_class(re.compile(r"\bover\b"))
    expect(counter(page, mastodon)).not_to_have_class(re.compile(r"\bover\b"))

    text = f"Family day at the North Centre on Saturday {FAMILY} Come along!"
    body.fill(text)
    expect(counter(page, bluesky)).not_to_have_class(re.compile(r"\bover\b"))
    page.get_by_label("Link (optional)").fill("https://agency.example/family-day")
    link = "https://agency.example/family-day"
    expect(counter(page, x)).to_have_text(expected("x", text, link))
    expect(page.locator(f"#preview-{mastodon.pk}-text")).to_have_text(f"{text}\n\n{link}")

    picture = tmp_path / "courtyard.png"
    Image.new("RGB", (640, 480), (40, 140, 90)).save(picture)
    page.get_by_label("Image file").set_input_files(str(picture))
    page.get_by_label("Alt text for this image").fill("A sunny courtyard with families.")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-status")).to_contain_text("Image uploaded")
    thumbnail = page.locator("#media-list img")
    expect(thumbnail).to_be_visible()
    page.wait_for_function(
        "() => { const img = document.querySelector('#media-list img');"
        " return img && img.complete && img.naturalWidth > 0; }"
    )
    expect(page.locator("#media-list")).to_contain_text(
        "Alt text: A sunny courtyard with families."
    )
    expect(page.get_by_role("checkbox", name="Attach image 1")).to_be_checked()

    page.get_by_label("Date").fill("2027-06-15")
    page.get_by_label("Time", exact=True).fill("10:30")
    axe_check(page, "compose")

    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(rf"{re.escape(live_server.url)}/posts/\d+/$"))
    expect(page.locator(".messages")).to_contain_text("Draft saved.")
    expect(page.locator("#post-status")).to_have_text("Draft")
    expect(page.get_by_text("Tuesday 15 June 2027, 10:30")).to_be_visible()
    expect(page.get_by_text("2027-06-15 08:30 UTC")).to_be_visible()
    for account, network in ((mastodon, "Mastodon"), (bluesky, "Bluesky"), (x, "X")):
        preview = page.get_by_role("article", name=f"{account.handle} on {network}")
        expect(preview).to_contain_text(text)
    expect(page.get_by_role("article", name=f"{bluesky.handle} on Bluesky")).to_contain_text(
        "300 graphemes"
    )
    expect(page.get_by_text("Alt text: A sunny courtyard with families.")).to_be_visible()
    axe_check(page, "post-page")

    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_load_state()
    expect(page.locator("#post-status")).to_have_text("In review")
    post_url = page.url

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Posts").click()
    page.wait_for_url(f"{live_server.url}/posts/")
    table = page.get_by_role("table", name="Posts, newest first")
    expect(table.get_by_role("cell", name="In review")).to_be_visible()
    axe_check(page, "posts-list")

    page.goto(f"{live_server.url}/calendar/?month=2027-06&tz=Europe/Paris")
    day = page.get_by_role("list", name="Tuesday 15 June 2027")
    expect(day.get_by_role("link")).to_contain_text("10:30")
    day.get_by_role("link").click()
    page.wait_for_url(post_url)
    page.go_back()
    axe_check(page, "calendar-month")
    page.get_by_role("rowheader").get_by_role("link", name="Week of 14 Jun").click()
    expect(page.get_by_role("heading", name="Week of 14 June 2027")).to_be_visible()
    expect(page.get_by_role("list", name="Tuesday 15 June 2027")).to_contain_text("In review")
    axe_check(page, "calendar-week")


def test_an_upload_without_alt_text_is_refused_beside_the_field(
    page, live_server, author, accounts, tmp_path
):
    login(page, live_server, "alice", PASSWORD)
    page.goto(f"{live_server.url}/posts/new/")
    picture = tmp_path / "blank.png"
    Image.new("RGB", (32, 32), (255, 255, 255)).save(picture)

    page.get_by_label("Image file").set_input_files(str(picture))
    page.get_by_role("button", name="Upload").click()

    alt = page.get_by_label("Alt text for this image")
    expect(alt).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#compose-image-alt-error")).to_have_text("Alt text is required.")
    expect(alt).to_be_focused()
    expect(page.locator("#media-list img")).to_have_count(0)
    axe_check(page, "compose-upload-error")


def test_a_form_error_is_announced_and_linked_to_its_field(page, live_server, author, accounts):
    login(page, live_server, "alice", PASSWORD)
    page.goto(f"{live_server.url}/posts/new/")
    page.get_by_label("Team").select_option(label="North")
    page.get_by_label("Text", exact=True).fill("Nobody will receive this.")

    page.get_by_role("button", name="Save draft").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Choose at least one social account.")
    alert.get_by_role("link", name="Choose at least one social account.").click()
    expect(page.get_by_label("Text", exact=True)).to_have_value("Nobody will receive this.")
    expect(page.get_by_role("checkbox", name=re.compile(r"^@north "))).to_have_attribute(
        "aria-invalid", "true"
    )
    axe_check(page, "compose-errors")
