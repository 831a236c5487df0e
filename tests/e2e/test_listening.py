"""Listening in a real browser: a lead starts a watch through the form (a wrong value first,
named beside its field), names a false claim, sees the dashboard fill once the sandbox's posts
and a surge arrive (charts with the alerts marked, their tables, top posts), then acknowledges
and closes an alert. axe-core checks every page and state shown."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from audit.models import AuditEvent
from listening import sandbox
from listening.models import Alert, AlertStatus, FalseClaim, Watch

from ..factories import PASSWORD, UserFactory, grant
from .conftest import axe_check, login

pytestmark = pytest.mark.browser


@pytest.fixture
def nora(org):
    """A lead of North."""
    user = UserFactory(username="nora")
    grant(user, org["north"], Role.LEAD)
    return user


def open_listening(page, live_server):
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Listening").click()
    page.wait_for_url(f"{live_server.url}/listening/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Listening")


def test_a_lead_starts_a_watch_sees_its_dashboard_and_deals_with_an_alert(
    page, live_server, org, nora
):
    login(page, live_server, "nora", PASSWORD)
    open_listening(page, live_server)
    expect(page.locator("#no-watches")).to_be_visible()
    expect(page.locator("#no-alerts")).to_be_visible()
    axe_check(page, "listening-empty")

    # A hashtag the networks cannot read is refused beside its field, with what was typed.
    form = page.locator("form", has=page.get_by_role("button", name="Start the watch"))
    form.get_by_label("Team").select_option(label="North")
    form.get_by_label("Name").fill("Census scams")
    form.get_by_label("Terms and phrases").fill("census\ncensus form")
    form.get_by_label("Hashtags").fill("census day")
    form.get_by_label("Demo watch").check()
    form.get_by_role("button", name="Start the watch").click()
    expect(page.locator("#new-hashtags-error")).to_contain_text("is not a hashtag")
    expect(page.get_by_label("Hashtags")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name")).to_have_value("Census scams")
    expect(page.get_by_label("Terms and phrases")).to_have_value("census\ncensus form")
    assert not Watch.objects.exists()
    axe_check(page, "listening-new-watch-refused")

    page.get_by_label("Hashtags").fill("census2026, #CensusDay")
    page.get_by_label("Minimum volume").fill("10")
    page.get_by_role("button", name="Start the watch").click()

    watch = Watch.objects.get()
    page.wait_for_url(f"{live_server.url}/listening/watches/{watch.pk}/")
    expect(page.locator(".messages")).to_contain_text("The watch “Census scams” is listening.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Census scams")
    assert (watch.team, watch.terms, watch.hashtags, watch.sandbox) == (
        org["north"],
        ["census", "census form"],
        ["census2026", "CensusDay"],
        True,
    )
    expect(page.locator("#figure-posts")).to_have_text("0")
    axe_check(page, "listening-watch-new")

    # The lead names a false claim the scam repeats.
    page.get_by_label("The claim").fill("The census fines people who answer late, by text.")
    page.get_by_label("Terms its posts use").fill("pay a fine, fine by link")
    page.get_by_role("button", name="Add the claim").click()
    expect(page.locator(".messages")).to_contain_text("Added the false claim")
    expect(page.locator(".claims")).to_contain_text("The census fines people who answer late")
    assert FalseClaim.objects.get().terms == ["pay a fine", "fine by link"]

    # A day of steady talk, then a surge of angry posts about a scam: the alerts fire.
    watch.refresh_from_db()
    sandbox.seed_history(watch, hours=24)
    _, raised = sandbox.surge(watch, posts=80)
    assert {alert.kind for alert in raised} == {"spike", "sentiment", "false_claim"}

    page.reload()
    posts = int(page.locator("#figure-posts").inner_text().replace(",", ""))
    assert posts > 80
    volume = page.get_by_role("img", name=re.compile("Posts by the hour"))
    expect(volume).to_be_visible()
    # Each alert is marked by a band, a marker and a text label (the three are too close to
    # tell apart by the hour: one marker says "A1–A3"), and listed under the chart.
    expect(volume.locator(".alert-band")).to_have_count(3)
    expect(volume.locator(".alert-marker text").first).to_have_text(re.compile(r"^A1"))
    expect(page.locator(".alert-marks li")).to_have_count(3)
    sentiment = page.get_by_role("img", name=re.compile("Sentiment of the posts"))
    expect(sentiment.locator(".part-negative").first).to_be_visible()
    expect(page.get_by_role("img", name="Posts by language")).to_contain_text("English")
    expect(page.locator(".top-posts tbody tr")).to_have_count(10)
    page.get_by_text("The volume as a table").click()
    page.get_by_text("The sentiment as a table").click()
    page.get_by_text("The languages as a table").click()
    expect(page.get_by_role("row", name=re.compile(r"^English"))).to_contain_text(str(posts))
    axe_check(page, "listening-watch")

    # By the minute over the last hour: the surge stands out; the exports follow the choice.
    page.get_by_label("By the minute").check()
    page.get_by_label("Range", exact=True).select_option(label="Last hour")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"resolution=minute&range=1h"))
    expect(page.get_by_role("img", name=re.compile("Posts by the minute"))).to_be_visible()
    expect(page.get_by_role("link", name="CSV")).to_have_attribute(
        "href", f"/listening/watches/{watch.pk}/measures.csv?resolution=minute&range=1h"
    )
    csv = page.request.get(
        f"{live_server.url}/listening/watches/{watch.pk}/measures.csv?resolution=minute&range=1h"
    )
    assert csv.ok and csv.text().startswith("start,volume,positive")
    assert len(csv.text().strip().splitlines()) == 61
    axe_check(page, "listening-watch-by-minute")

    # The list shows the watch and its open alerts, newest first.
    open_listening(page, live_server)
    expect(page.locator(f"#watch-row-{watch.pk}")).to_contain_text("Census scams")
    expect(page.locator("#open-alerts tbody tr")).to_have_count(3)
    axe_check(page, "listening")

    spike = Alert.objects.get(kind="spike")
    page.locator(f"#alert-row-{spike.pk}").get_by_role("link", name="Spike in volume").click()
    page.wait_for_url(f"{live_server.url}/listening/alerts/{spike.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Spike in volume on “Census scams”")
    expect(page.locator("#evidence-figures")).to_contain_text("were expected from the baseline")
    expect(page.locator(".evidence-posts > li")).to_have_count(5)
    axe_check(page, "listening-alert")

    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".messages")).to_contain_text("You acknowledged the alert")
    expect(page.locator("#alert-status")).to_have_text("Acknowledged")
    expect(page.locator("#alert-acknowledged")).to_contain_text("By nora")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    axe_check(page, "listening-alert-acknowledged")

    page.get_by_label("Note on closing (optional)").fill("Press line published; scam reported.")
    page.get_by_role("button", name="Close").click()
    expect(page.locator(".messages")).to_contain_text("Closed the alert.")
    expect(page.locator("#alert-status")).to_have_text("Closed")
    expect(page.locator("#close-note")).to_have_text("Press line published; scam reported.")
    expect(page.get_by_role("button", name="Close")).to_have_count(0)
    axe_check(page, "listening-alert-closed")

    spike.refresh_from_db()
    assert (spike.status, spike.acknowledged_by, spike.closed_by, spike.close_note) == (
        AlertStatus.CLOSED,
        nora,
        nora,
        "Press line published; scam reported.",
    )
    assert set(
        AuditEvent.objects.filter(action__startswith="listening.alert_").values_list(
            "action", flat=True
        )
    ) >= {"listening.alert_acknowledged", "listening.alert_closed"}
