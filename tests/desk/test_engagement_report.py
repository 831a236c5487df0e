"""The engagement report (desk/reports.py `engagement`, its section of `/reports/` and
`/api/v1/reports/engagement/`): figures checked against sums worked out by hand on a known set of
posts and readings, scope, and a cost in queries that does not grow with the data."""

import re
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from desk import reports
from networks.models import Channel
from publishing.models import Post, PostStatus, PostTarget, TargetMetrics, TargetStatus

from ..factories import SocialAccountFactory, UserFactory

# Monday 10 March 2025, 09:00 UTC: ISO week 2025-W11 (W12 starts on the 17th).
T = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
MARCH = {"since": "2025-03-01", "until": "2025-03-31"}
URL = "/api/v1/reports/engagement/"
FIGURES = ("likes", "reposts", "replies", "quotes", "impressions", "clicks")


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


class Published:
    """Writes published posts, their targets and their readings directly, as the dispatcher and
    the engagement reader would have left them."""

    def __init__(self, author):
        self.author = author
        self.numbers = count(1)

    def post(self, team, campaign="") -> Post:
        return Post.objects.create(
            team=team,
            author=self.author,
            body=f"Post {next(self.numbers)}",
            campaign=campaign,
            status=PostStatus.PUBLISHED,
            content_hash="0" * 64,
        )

    def target(self, post, account, published_at) -> PostTarget:
        return PostTarget.objects.create(
            post=post,
            social_account=account,
            status=TargetStatus.PUBLISHED,
            published_at=published_at,
            external_id=f"ext-{next(self.numbers)}",
        )

    def read(self, target, at, *figures) -> TargetMetrics:
        """`figures` in the order of FIGURES; those not given are None (the network gives none)."""
        values = dict(zip(FIGURES, figures, strict=False))
        return TargetMetrics.objects.create(target=target, at=at, **values)


def make_accounts(org) -> dict:
    return {
        "north_mastodon": SocialAccountFactory(team=org["north"], handle="@north"),
        "north_bluesky": SocialAccountFactory(
            team=org["north_centre"], channel=Channel.BLUESKY, handle="north.bsky.social"
        ),
        "north_x": SocialAccountFactory(team=org["north"], channel=Channel.X, handle="@northx"),
        "south_mastodon": SocialAccountFactory(team=org["south"], handle="@south"),
        "south_bluesky": SocialAccountFactory(
            team=org["south"], channel=Channel.BLUESKY, handle="south.bsky.social"
        ),
        "south_x": SocialAccountFactory(team=org["south"], channel=Channel.X, handle="@southx"),
    }


@pytest.fixture
def accounts(org):
    return make_accounts(org)


def known_engagement(org, author, accounts) -> None:
    """Two teams, three networks, two campaigns (and posts of none), two weeks; several readings
    per target, of which only the latest counts. The figures the tests expect are worked out
    from the latest readings, listed beside each target as likes, reposts, replies, quotes,
    impressions, clicks ("·" where the network gives none)."""
    rows = Published(author)
    north, south = org["north"], org["south"]
    hour, day = timedelta(hours=1), timedelta(days=1)

    # P1: North, Spring fair, W11 — on Mastodon (10 4 2 · · ·) and X (20 5 3 2 1000 30).
    p1 = rows.post(north, "Spring fair")
    t1 = rows.target(p1, accounts["north_mastodon"], T)
    rows.read(t1, T + hour / 4, 1, 0, 0)
    rows.read(t1, T + day, 10, 4, 2)
    t2 = rows.target(p1, accounts["north_x"], T)
    rows.read(t2, T + hour, 5, 1, 0, 0, 100, 3)
    rows.read(t2, T + 2 * day, 20, 5, 3, 2, 1000, 30)
    # P2: North, Flu jabs, W11 — on Bluesky (8 2 1 1 · ·).
    p2 = rows.post(north, "Flu jabs")
    t3 = rows.target(p2, accounts["north_bluesky"], T + day)
    rows.read(t3, T + day + hour, 2, 0, 1, 0)
    rows.read(t3, T + 3 * day, 8, 2, 1, 1)
    # P3: North, no campaign, W12 — on Mastodon, not read yet.
    p3 = rows.post(north)
    rows.target(p3, accounts["north_mastodon"], T + 7 * day)
    # P4: South, Spring fair, W12 — on X (100 20 10 10 4000 80) and Mastodon (6 3 0 · · ·).
    # X's reading stored last was taken earlier: the newest by time counts, not by storage.
    p4 = rows.post(south, "Spring fair")
    t5 = rows.target(p4, accounts["south_x"], T + 8 * day)
    rows.read(t5, T + 8 * day + hour, 50, 10, 5, 5, 2000, 40)
    rows.read(t5, T + 9 * day, 100, 20, 10, 10, 4000, 80)
    rows.read(t5, T + 8 * day + hour / 2, 1, 1, 1, 1, 10, 1)
    t6 = rows.target(p4, accounts["south_mastodon"], T + 8 * day)
    rows.read(t6, T + 9 * day, 6, 3, 0)
    # P5: South, Flu jabs, W11 — on Bluesky (4 1 1 0 · ·): a quote count of 0, not none.
    p5 = rows.post(south, "Flu jabs")
    t7 = rows.target(p5, accounts["south_bluesky"], T + 2 * day)
    rows.read(t7, T + 2 * day + hour, 3, 0, 0, 0)
    rows.read(t7, T + 4 * day, 4, 1, 1, 0)

    # Not counted: published in April; not published (waiting, then failed).
    april = rows.post(north, "Spring fair")
    late = rows.target(april, accounts["north_x"], T + 30 * day)
    rows.read(late, T + 31 * day, 999, 999, 999, 999, 999, 999)
    waiting = rows.post(north, "Spring fair")
    PostTarget.objects.create(
        post=waiting, social_account=accounts["north_x"], status=TargetStatus.WAITING
    )
    PostTarget.objects.create(
        post=waiting, social_account=accounts["north_mastodon"], status=TargetStatus.FAILED
    )


@pytest.fixture
def engagement(org, author, accounts):
    known_engagement(org, author, accounts)


def figures(posts, with_figures, likes, reposts, replies, quotes, impressions, clicks, rate):
    interactions = [value for value in (likes, reposts, replies, quotes) if value is not None]
    return {
        "posts": posts,
        "posts_with_figures": with_figures,
        "likes": likes,
        "reposts": reposts,
        "replies": replies,
        "quotes": quotes,
        "impressions": impressions,
        "clicks": clicks,
        "interactions": sum(interactions) if interactions else None,
        "engagement_rate": rate,
    }


NONE = figures(0, 0, None, None, None, None, None, None, None)


# Figures -----------------------------------------------------------------------------------------
def test_overall_sums_each_targets_latest_reading(lead, engagement):
    body = api(lead).get(URL, MARCH).json()

    # Likes 10 + 20 + 8 + 100 + 6 + 4 = 148; the rate over X's targets only, the one network
    # giving impressions: (20 + 5 + 3 + 2) + (100 + 20 + 10 + 10) = 170 of 5000.
    assert body["overall"] == figures(5, 4, 148, 35, 17, 13, 5000, 110, 0.034)
    assert body["overall"]["interactions"] == 213
    assert (body["since"], body["until"], body["team"]) == ("2025-03-01", "2025-03-31", None)


def test_by_team(lead, engagement, org):
    body = api(lead).get(URL, MARCH).json()

    assert body["by_team"] == [
        {
            "team": org["north"].pk,
            "team_name": "North",
            **figures(3, 2, 38, 11, 6, 3, 1000, 30, 0.03),
        },
        {
            "team": org["south"].pk,
            "team_name": "South",
            **figures(2, 2, 110, 24, 11, 10, 4000, 80, 0.035),
        },
    ]


def test_by_network_keeps_a_figure_no_target_has_as_null(lead, engagement):
    body = api(lead).get(URL, MARCH).json()

    # Mastodon gives no quotes, impressions or clicks here: null, not 0, and no rate. Bluesky's
    # quotes are 1 + 0: a 0 is a figure.
    assert body["by_network"] == [
        {
            "network": "mastodon",
            "network_label": "Mastodon",
            **figures(3, 2, 16, 7, 2, None, None, None, None),
        },
        {
            "network": "bluesky",
            "network_label": "Bluesky",
            **figures(2, 2, 12, 3, 2, 1, None, None, None),
        },
        {"network": "x", "network_label": "X", **figures(2, 2, 120, 25, 13, 12, 5000, 110, 0.034)},
    ]


def test_by_campaign_with_the_posts_of_none_in_one_row(lead, engagement):
    body = api(lead).get(URL, MARCH).json()

    assert body["by_campaign"] == [
        {
            "campaign": "Flu jabs",
            "campaign_label": "Flu jabs",
            **figures(2, 2, 12, 3, 2, 1, None, None, None),
        },
        {
            "campaign": "Spring fair",
            "campaign_label": "Spring fair",
            **figures(2, 2, 136, 32, 15, 12, 5000, 110, 0.034),
        },
        {"campaign": None, "campaign_label": "No campaign", **NONE, "posts": 1},
    ]


def test_by_iso_week_of_publishing_every_week_of_the_period(lead, engagement):
    body = api(lead).get(URL, MARCH).json()

    weeks = {row["week"]: row for row in body["by_week"]}
    assert [(row["week"], row["week_start"]) for row in body["by_week"]] == [
        ("2025-W09", "2025-02-24"),
        ("2025-W10", "2025-03-03"),
        ("2025-W11", "2025-03-10"),
        ("2025-W12", "2025-03-17"),
        ("2025-W13", "2025-03-24"),
        ("2025-W14", "2025-03-31"),
    ]
    week = {key: value for key, value in weeks["2025-W11"].items() if key in NONE}
    assert week == figures(3, 3, 42, 12, 7, 3, 1000, 30, 0.03)
    week = {key: value for key, value in weeks["2025-W12"].items() if key in NONE}
    assert week == figures(2, 1, 106, 23, 10, 10, 4000, 80, 0.035)
    for empty in ("2025-W09", "2025-W10", "2025-W13", "2025-W14"):
        assert {key: value for key, value in weeks[empty].items() if key in NONE} == NONE


def test_a_post_counts_once_in_each_network_and_week_it_has_a_target_in(org, author, accounts):
    rows = Published(author)
    post = rows.post(org["north"], "Spring fair")
    sunday = T + timedelta(days=6)  # Sunday 16 March, W11
    rows.read(rows.target(post, accounts["north_mastodon"], sunday), sunday, 1)
    rows.read(rows.target(post, accounts["north_x"], sunday + timedelta(days=1)), sunday, 2)

    report = reports.engagement(
        teams=[org["north"]], period=reports.Period(T.date(), T.date() + timedelta(days=13))
    )

    assert report["overall"]["posts"] == report["by_team"][0]["posts"] == 1
    assert [(row["network"], row["posts"], row["likes"]) for row in report["by_network"]] == [
        ("mastodon", 1, 1),
        ("x", 1, 2),
    ]
    assert [(row["week"], row["posts"], row["likes"]) for row in report["by_week"]] == [
        ("2025-W11", 1, 1),
        ("2025-W12", 1, 2),
    ]


def test_of_two_readings_at_the_same_moment_the_one_stored_last_counts(org, author, accounts):
    rows = Published(author)
    target = rows.target(rows.post(org["north"]), accounts["north_mastodon"], T)
    rows.read(target, T + timedelta(hours=1), 5)
    rows.read(target, T + timedelta(hours=1), 7)

    report = reports.engagement(teams=[org["north"]], period=reports.Period(T.date(), T.date()))

    assert report["overall"]["likes"] == 7


def test_no_rate_when_the_impressions_are_zero(org, author, accounts):
    rows = Published(author)
    target = rows.target(rows.post(org["north"]), accounts["north_x"], T)
    rows.read(target, T + timedelta(hours=1), 0, 0, 0, 0, 0, 0)

    report = reports.engagement(teams=[org["north"]], period=reports.Period(T.date(), T.date()))

    assert report["overall"] == figures(1, 1, 0, 0, 0, 0, 0, 0, None)


def test_a_team_narrows_the_report_to_its_subtree(lead, engagement, org):
    body = api(lead).get(URL, {**MARCH, "team": org["south"].pk}).json()

    assert body["team"] == org["south"].pk
    assert body["overall"] == figures(2, 2, 110, 24, 11, 10, 4000, 80, 0.035)
    assert [row["team_name"] for row in body["by_team"]] == ["South"]


# Scope -------------------------------------------------------------------------------------------
def test_a_lead_of_south_sees_only_south(south_lead, engagement, org):
    client = api(south_lead)

    body = client.get(URL, MARCH).json()
    assert [row["team_name"] for row in body["by_team"]] == ["South"]
    assert body["overall"]["likes"] == 110
    assert client.get(URL, {"team": org["north"].pk}).status_code == 404
    assert client.get(URL, {"team": 99999}).status_code == 404


def test_people_who_lead_no_team_get_404_and_signed_out_people_are_refused(author, client):
    assert api(author).get(URL).status_code == 404
    assert client.get(URL).status_code in (401, 403)


def test_a_superuser_reports_on_every_team(engagement):
    root = UserFactory(username="root", is_superuser=True)

    assert api(root).get(URL, MARCH).json()["overall"]["posts"] == 5


def test_bad_input_is_400_naming_the_field(lead):
    response = api(lead).get(URL, {"since": "2025-03-10", "until": "2025-03-09"})

    assert response.status_code == 400
    assert list(response.json()["extra"]["fields"]) == ["until"]


def test_the_schema_documents_the_report_and_its_parameters(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"][URL]["get"]
    assert operation["operationId"] == "v1_reports_engagement"
    assert {parameter["name"] for parameter in operation["parameters"]} == {
        "team",
        "since",
        "until",
    }
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(answer["required"]) >= {"overall", "by_team", "by_network", "by_campaign", "by_week"}
    row = answer["properties"]["by_campaign"]["items"]["properties"]
    assert row["campaign"]["nullable"] is True
    assert row["likes"]["nullable"] is True


def test_every_row_has_exactly_the_fields_the_schema_states(client, lead, engagement):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    answer = schema["paths"][URL]["get"]["responses"]["200"]["content"]["application/json"]
    shape = answer["schema"]["properties"]

    body = api(lead).get(URL, MARCH).json()

    assert set(body["overall"]) == set(shape["overall"]["required"])
    for name in ("by_team", "by_network", "by_campaign", "by_week"):
        assert body[name]
        for row in body[name]:
            assert set(row) == set(shape[name]["items"]["required"]), name


# The page ----------------------------------------------------------------------------------------
def test_the_page_shows_the_section_with_charts_and_their_tables(client, lead, engagement):
    client.force_login(lead)

    response = client.get("/reports/", MARCH)

    assert response.status_code == 200
    page = response.content.decode()
    section = page.split('<section class="report" aria-labelledby="engagement-heading">', 1)[1]
    section = section.split("</section>", 1)[0]
    assert '<h2 id="engagement-heading">Engagement of our posts</h2>' in section
    charts = re.findall(r'<svg [^>]*role="img"[^>]*aria-labelledby="([^"]+)"', section)
    assert [ids.split()[0] for ids in charts] == [
        "chart-engagement-week-title",
        "chart-engagement-network-title",
        "chart-engagement-team-title",
        "chart-engagement-campaign-title",
    ]
    for labelled_by in charts:
        title_id, desc_id = labelled_by.split()
        assert f'<title id="{title_id}">' in section
        assert f'<desc id="{desc_id}">' in section
    assert section.count("<table>") == 4
    # The hand-worked figures, in the summary, the charts' descriptions and the tables.
    assert "5 posts published, 4 of them with figures" in section
    assert "Engagement rate 3.4% of 5,000 impressions" in section
    assert "2025-W11: 64 interactions; 2025-W12: 149 interactions" in section
    assert "2025-W13: no figures" in section
    assert "Mastodon: Likes 16, Reposts 7, Replies 2, Quotes no figure" in section
    assert "No campaign: Likes no figure" in section
    north = re.search(r"<tr><th scope=\"row\">North</th>(.*?)</tr>", section).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', north)
    assert cells == ["3", "2", "38", "11", "6", "3", "1,000", "30", "3%"]
    mastodon = re.search(r"<tr><th scope=\"row\">Mastodon</th>(.*?)</tr>", section).group(1)
    assert re.findall(r'<td class="num">([^<]*)</td>', mastodon)[-4:] == ["—", "—", "—", "—"]
    assert f'href="{URL}?since=2025-03-01&amp;until=2025-03-31"' in section


def test_an_empty_period_still_draws_the_titled_charts(client, lead):
    client.force_login(lead)

    page = client.get("/reports/", MARCH).content.decode()

    section = page.split('aria-labelledby="engagement-heading"', 1)[1].split("</section>", 1)[0]
    assert section.count('role="img"') == 4
    assert "0 posts published, 0 of them with figures" in section
    assert "Nothing was published in this period." in section


# Cost --------------------------------------------------------------------------------------------
def _more(org, author, accounts, copies: int) -> None:
    for _ in range(copies):
        known_engagement(org, author, accounts)


@pytest.mark.parametrize("copies", [1, 12])
def test_the_report_costs_three_queries_whatever_the_data(
    org, author, accounts, copies, django_assert_num_queries
):
    _more(org, author, accounts, copies)
    teams = [org["hq"], org["north"], org["south"], org["north_centre"], org["south_centre"]]
    period = reports.Period(T.date() - timedelta(days=9), T.date() + timedelta(days=21))

    # by team and campaign, by network, by week
    with django_assert_num_queries(3):
        report = reports.engagement(teams=teams, period=period)
    assert report["overall"]["posts"] == 5 * copies
    assert report["overall"]["likes"] == 148 * copies


def test_the_api_costs_the_same_queries_whatever_the_data(
    lead, org, author, accounts, django_assert_num_queries
):
    client = api(lead)
    _more(org, author, accounts, 1)
    # the scope (one query), the report (three)
    with django_assert_num_queries(4):
        small = client.get(URL, MARCH)
    _more(org, author, accounts, 15)
    with django_assert_num_queries(4):
        large = client.get(URL, MARCH)
    assert small.status_code == large.status_code == 200
    assert large.json()["overall"]["likes"] == 16 * small.json()["overall"]["likes"]


def _queries(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = call()
    assert response.status_code == 200
    return len(queries)


def test_the_page_costs_the_same_queries_whatever_the_data(client, lead, org, author, accounts):
    client.force_login(lead)
    _more(org, author, accounts, 1)
    small = _queries(lambda: client.get("/reports/", MARCH))
    _more(org, author, accounts, 15)
    large = _queries(lambda: client.get("/reports/", MARCH))

    assert small == large
