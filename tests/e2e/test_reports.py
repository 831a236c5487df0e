"""The reports and a post's timeline in a real browser: a lead opens the reports from the
navigation, chooses a period, sees every chart (an SVG image with a title) beside its table,
and both pages pass axe-core. Screenshots: test-artifacts/reports.png, post-timeline.png."""

import pytest
from playwright.sync_api import expect

from approvals.models import ApprovalRequest
from networks.models import Channel

from ..desk.test_reports import known_timings
from ..desk.test_timeline import publish
from ..factories import PASSWORD, SocialAccountFactory
from .conftest import axe_check, login

pytestmark = pytest.mark.browser

FIGURES = 15  # the engagement section has 4 (tests/e2e/test_engagement_report.py)


@pytest.fixture
def accounts(org):
    return {
        "north_mastodon": SocialAccountFactory(team=org["north"], handle="@north"),
        "north_bluesky": SocialAccountFactory(
            team=org["north_centre"], channel=Channel.BLUESKY, handle="north.bsky.social"
        ),
        "south_mastodon": SocialAccountFactory(team=org["south"], handle="@south"),
        "south_bluesky": SocialAccountFactory(
            team=org["south"], channel=Channel.BLUESKY, handle="south.bsky.social"
        ),
    }


def test_a_lead_sees_the_reports_as_charts_with_their_tables(
    page, live_server, org, lead, author, accounts
):
    known_timings(org, author, accounts)
    login(page, live_server, "lena", PASSWORD)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    page.wait_for_url(f"{live_server.url}/reports/")
    page.get_by_label("From (inclusive)").fill("2025-03-01")
    page.get_by_label("To (inclusive)").fill("2025-03-31")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/reports/?*since=2025-03-01*")

    charts = page.locator('svg[role="img"]')
    expect(charts).to_have_count(FIGURES)
    titles = charts.evaluate_all(
        """(svgs) => svgs.map((svg) => {
            const ids = svg.getAttribute('aria-labelledby').split(' ');
            const title = document.getElementById(ids[0]);
            return {
                title: title && title.tagName.toLowerCase() === 'title' ? title.textContent : '',
                desc: document.getElementById(ids[1])?.textContent || '',
                bars: svg.querySelectorAll('rect').length,
                width: svg.getBoundingClientRect().width,
            };
        })"""
    )
    assert all(chart["title"] and chart["desc"] for chart in titles), titles
    assert all(chart["width"] > 200 for chart in titles), titles
    assert sum(chart["bars"] for chart in titles) > FIGURES
    turnaround = page.get_by_role("img", name="Approval turnaround by team: median and 90th")
    expect(turnaround).to_be_visible()
    table = page.get_by_role("table", name="Approval turnaround by team: the chart's figures")
    expect(table.get_by_role("row", name="North")).to_contain_text("2.5 h")
    expect(table.get_by_role("row", name="North")).to_contain_text("7.9 h")

    axe_check(page, "reports")


def test_a_post_timeline_passes_axe(page, live_server, org, author, approver, lead):
    from approvals.models import ApprovalPolicy, ApprovalStage
    from approvals.services import decide
    from publishing import services

    account = SocialAccountFactory(team=org["north"], handle="@north")
    policy = ApprovalPolicy.objects.create(name="North chain", team=org["north"])
    ApprovalStage.objects.create(
        policy=policy,
        order=1,
        name="Regional check",
        decider_team=org["north"],
        decider_role="approver",
    )
    post = services.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Line one\nLine two",
        targets=[services.TargetInput(social_account_id=account.pk)],
    )
    post = services.post_update(post=post, by=author, body="Line one\nLine 2, now clearer")
    post = services.post_submit(post=post, by=author)
    decide(request=ApprovalRequest.objects.get(post=post), by=approver, verdict="approve")
    publish(post.targets.get(), url="https://social.example/@north/109")
    login(page, live_server, "lena", PASSWORD)

    page.goto(f"{live_server.url}/posts/{post.pk}/timeline/")

    expect(page.get_by_role("heading", name=f"Timeline of post {post.pk}")).to_be_visible()
    expect(page.get_by_role("link", name="See it on Mastodon")).to_have_attribute(
        "href", "https://social.example/@north/109"
    )
    axe_check(page, "post-timeline")
