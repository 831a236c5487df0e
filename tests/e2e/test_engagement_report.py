"""The engagement report in a real browser: a lead chooses one team and a period on the reports
page, follows the contents to the engagement section, and reads its charts (SVG images with a
title and a description) with their tables; the page passes axe-core. Screenshot:
test-artifacts/reports-engagement.png."""

import pytest
from playwright.sync_api import expect

from ..desk.test_engagement_report import known_engagement, make_accounts
from ..factories import PASSWORD
from .conftest import axe_check, login

pytestmark = pytest.mark.browser


def test_a_lead_reads_the_engagement_of_one_teams_posts(page, live_server, org, lead, author):
    known_engagement(org, author, make_accounts(org))
    login(page, live_server, "lena", PASSWORD)
    page.goto(f"{live_server.url}/reports/")

    page.get_by_label("Team (and the teams below it)").select_option(label="— North")
    page.get_by_label("From (inclusive)").fill("2025-03-01")
    page.get_by_label("To (inclusive)").fill("2025-03-31")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**/reports/?team={org['north'].pk}&since=2025-03-01&until=2025-03-31")
    page.get_by_role("navigation", name="Reports on this page").get_by_role(
        "link", name="Engagement of our posts"
    ).click()
    page.wait_for_url("**#engagement-heading")

    section = page.get_by_role("region", name="Engagement of our posts")
    expect(section.get_by_role("heading", level=2)).to_be_in_viewport()
    expect(section).to_contain_text("3 posts published, 2 of them with figures")
    expect(section).to_contain_text("Engagement rate 3% of 1,000 impressions")
    charts = section.get_by_role("img")
    expect(charts).to_have_count(4)
    by_week = section.get_by_role("img", name="Interactions by ISO week of publishing")
    described = charts.evaluate_all(
        """(svgs) => svgs.map((svg) => {
            const [title, desc] = svg.getAttribute('aria-labelledby').split(' ');
            return {
                title: document.getElementById(title)?.textContent || '',
                desc: document.getElementById(desc)?.textContent || '',
                bars: svg.querySelectorAll('rect').length,
                width: svg.getBoundingClientRect().width,
            };
        })"""
    )
    assert [chart["title"].split(":")[0] for chart in described] == [
        "Interactions by ISO week of publishing",
        "Engagement by network",
        "Engagement by team",
        "Engagement by campaign",
    ]
    assert all(chart["width"] > 200 and chart["bars"] > 0 for chart in described), described
    assert "2025-W11: 58 interactions" in described[0]["desc"]
    expect(by_week).to_be_visible()

    network = section.get_by_role("table", name="Engagement by network: the chart's figures")
    expect(network.get_by_role("row", name="X")).to_contain_text("3%")
    expect(network.get_by_role("row", name="Mastodon")).to_contain_text("—")
    campaign = section.get_by_role("table", name="Engagement by campaign: the chart's figures")
    expect(campaign.get_by_role("row")).to_have_count(4)  # the headings, two campaigns, none
    expect(campaign.get_by_role("row", name="No campaign")).to_be_visible()
    json = section.get_by_role("link", name="These figures as JSON")
    expect(json).to_have_attribute(
        "href",
        f"/api/v1/reports/engagement/?team={org['north'].pk}&since=2025-03-01&until=2025-03-31",
    )

    axe_check(page, "reports-engagement")
