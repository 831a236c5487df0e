"""Reports (desk/reports.py, `/reports/`, `/api/v1/reports/…`): figures checked against values
worked out by hand on rows with known timings, scope, bad input, and a cost in queries that does
not grow with the data."""

import re
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from approvals.models import ApprovalRequest, ApprovalStep, RequestStatus, StepStatus
from desk import reports
from networks.models import Channel
from publishing.models import Post, PostStatus, PostTarget, PublishAttempt, TargetStatus

from ..factories import SocialAccountFactory, UserFactory

# Monday 10 March 2025, 09:00 UTC: ISO week 2025-W11. The period is March 2025.
T = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
MARCH = {"since": "2025-03-01", "until": "2025-03-31"}
HOUR = 3600
Outcome = PublishAttempt.Outcome


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


class Rows:
    """Writes report rows directly, with the timings the test says (as the services and the
    dispatcher would have left them)."""

    def __init__(self, author):
        self.author = author
        self.numbers = count(1)

    def post(self, team, *, scheduled_at=None, status=PostStatus.PUBLISHED) -> Post:
        return Post.objects.create(
            team=team,
            author=self.author,
            body=f"Post {next(self.numbers)}",
            scheduled_at=scheduled_at,
            status=status,
            content_hash="0" * 64,
        )

    def target(self, post, account, *, published_at=None, status=None) -> PostTarget:
        status = status or (TargetStatus.PUBLISHED if published_at else TargetStatus.WAITING)
        return PostTarget.objects.create(
            post=post, social_account=account, status=status, published_at=published_at
        )

    def attempt(self, target, number, started_at, outcome, http_status=None) -> PublishAttempt:
        return PublishAttempt.objects.create(
            target=target,
            number=number,
            started_at=started_at,
            finished_at=started_at + timedelta(seconds=2),
            outcome=outcome,
            http_status=http_status,
        )

    def step(
        self,
        team,
        name,
        *,
        activated_at,
        took_hours=None,
        sla_hours=4,
        status=StepStatus.APPROVED,
        escalated_at=None,
        order=1,
        request=None,
    ) -> ApprovalStep:
        if request is None:
            post = self.post(team, status=PostStatus.SCHEDULED)
            request = ApprovalRequest.objects.create(
                post=post,
                version=1,
                content_hash=post.content_hash,
                status=RequestStatus.APPROVED if took_hours else RequestStatus.OPEN,
            )
        completed_at = activated_at + timedelta(hours=took_hours) if took_hours else None
        return ApprovalStep.objects.create(
            request=request,
            order=order,
            name=name,
            rule="any",
            sla_hours=sla_hours,
            status=status,
            activated_at=activated_at,
            due_at=activated_at + timedelta(hours=sla_hours),
            escalated_at=escalated_at,
            completed_at=completed_at,
        )


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


def known_timings(org, author, accounts) -> None:
    """The fixture whose figures are worked out by hand in the tests below."""
    rows = Rows(author)
    north, south = org["north"], org["south"]
    north_m, north_b = accounts["north_mastodon"], accounts["north_bluesky"]
    south_m, south_b = accounts["south_mastodon"], accounts["south_bluesky"]

    # Approval steps decided in March: North 1 h, 2 h, 3 h, 10 h; South 4 h. Deadline 4 h after
    # activation: only North's 10 h is late (South's 4 h is decided exactly at it: on time).
    first = rows.step(north, "Regional check", activated_at=T, took_hours=1)
    rows.step(
        north,
        "HQ sign-off",
        activated_at=T + timedelta(hours=2),
        took_hours=2,
        order=2,
        request=first.request,
    )
    second = rows.step(north, "Regional check", activated_at=T + timedelta(days=1), took_hours=3)
    rows.step(
        north,
        "HQ sign-off",
        activated_at=T + timedelta(days=1, hours=4),
        took_hours=10,
        order=2,
        request=second.request,
    )
    rows.step(south, "Regional check", activated_at=T, took_hours=4)
    # Not decided: closed by an edit after 30 min (no turnaround; a step due in March, on time);
    # still open and escalated (no turnaround; an SLA breach).
    rows.step(north, "Regional check", activated_at=T, took_hours=0.5, status=StepStatus.CLOSED)
    rows.step(
        north,
        "HQ sign-off",
        activated_at=T,
        status=StepStatus.ACTIVE,
        escalated_at=T + timedelta(hours=5),
    )
    # Decided in February: outside the period for every report.
    rows.step(north, "Regional check", activated_at=T - timedelta(days=20), took_hours=7)

    # Published targets. On time = within 60 s of the post's time.
    a = rows.post(north, scheduled_at=T)
    rows.target(a, north_m, published_at=T + timedelta(seconds=30))  # on time
    rows.target(a, north_b, published_at=T + timedelta(seconds=61))  # late
    b = rows.post(north, scheduled_at=T + timedelta(days=1))
    rows.target(b, north_m, published_at=T + timedelta(days=1, seconds=60))  # on time, just
    c = rows.post(south, scheduled_at=T)
    rows.target(c, south_m, published_at=T + timedelta(minutes=5))  # late
    d = rows.post(north)  # no time: counted in volume only, in week 12
    rows.target(d, north_m, published_at=T + timedelta(days=7))
    april = rows.post(north, scheduled_at=T + timedelta(days=30))
    rows.target(april, north_m, published_at=T + timedelta(days=30))  # outside the period

    # Failures. North Mastodon: a 503 (retried), then a 422 that failed the target.
    e = rows.post(north, scheduled_at=T, status=PostStatus.FAILED)
    failed_north = rows.target(e, north_m, status=TargetStatus.FAILED)
    rows.attempt(failed_north, 1, T, Outcome.RETRYABLE, 503)
    rows.attempt(failed_north, 2, T + timedelta(hours=1), Outcome.PERMANENT, 422)
    # South Bluesky: no answer, then 429 twice, the last one failing the target.
    f = rows.post(south, scheduled_at=T, status=PostStatus.FAILED)
    failed_south = rows.target(f, south_b, status=TargetStatus.FAILED)
    rows.attempt(failed_south, 1, T, Outcome.UNKNOWN)
    rows.attempt(failed_south, 2, T + timedelta(minutes=1), Outcome.RETRYABLE, 429)
    rows.attempt(failed_south, 3, T + timedelta(minutes=5), Outcome.RETRYABLE, 429)
    # Not failures: a success, a skip (frozen), an expired token; and a failure in February.
    g = rows.post(north, scheduled_at=T, status=PostStatus.PUBLISHING)
    other = rows.target(g, north_b, status=TargetStatus.HELD)
    rows.attempt(other, 1, T, Outcome.SKIPPED)
    rows.attempt(other, 2, T + timedelta(hours=1), Outcome.AUTH_EXPIRED, 401)
    rows.attempt(other, 3, T - timedelta(days=20), Outcome.PERMANENT, 400)
    published = PostTarget.objects.get(post=a, social_account=north_m)
    rows.attempt(published, 1, T, Outcome.PUBLISHED, 200)


@pytest.fixture
def timings(org, author, accounts):
    known_timings(org, author, accounts)


# Percentiles -------------------------------------------------------------------------------------
def test_percentiles_interpolate_between_the_closest_ranks():
    hours = [1, 2, 3, 10]

    assert reports.percentile(hours, 0.5) == 2.5
    assert reports.percentile(hours, 0.9) == pytest.approx(7.9)  # 3 + 0.7 × (10 − 3)
    assert reports.percentile([5], 0.9) == 5
    assert reports.percentile([], 0.5) is None
    assert reports.percentile([3, 1, 2], 0) == 1
    assert reports.percentile([3, 1, 2], 1) == 3


# Figures -----------------------------------------------------------------------------------------
def test_turnaround_is_median_and_p90_by_team_and_stage(lead, timings, org):
    body = api(lead).get("/api/v1/reports/turnaround/", MARCH).json()

    # Overall 1, 2, 3, 4, 10 h: median 3 h; p90 at rank 3.6 → 4 + 0.6 × 6 = 7.6 h.
    assert body["overall"] == {"count": 5, "median_seconds": 3 * HOUR, "p90_seconds": 7.6 * HOUR}
    # North 1, 2, 3, 10 h: median 2.5 h, p90 7.9 h. South 4 h.
    assert body["by_team"] == [
        {
            "team": org["north"].pk,
            "team_name": "North",
            "count": 4,
            "median_seconds": 2.5 * HOUR,
            "p90_seconds": 7.9 * HOUR,
        },
        {
            "team": org["south"].pk,
            "team_name": "South",
            "count": 1,
            "median_seconds": 4 * HOUR,
            "p90_seconds": 4 * HOUR,
        },
    ]
    # HQ sign-off 2, 10 h: median 6 h, p90 2 + 0.9 × 8 = 9.2 h.
    # Regional check 1, 3, 4 h: median 3 h, p90 at rank 1.8 → 3 + 0.8 × 1 = 3.8 h.
    assert body["by_stage"] == [
        {"stage": "HQ sign-off", "count": 2, "median_seconds": 6 * HOUR, "p90_seconds": 9.2 * HOUR},
        {
            "stage": "Regional check",
            "count": 3,
            "median_seconds": 3 * HOUR,
            "p90_seconds": 3.8 * HOUR,
        },
    ]
    assert (body["since"], body["until"], body["team"]) == ("2025-03-01", "2025-03-31", None)


def test_on_time_counts_targets_within_60_seconds_of_their_time(lead, timings, org):
    body = api(lead).get("/api/v1/reports/on-time/", MARCH).json()

    assert body["tolerance_seconds"] == 60
    assert body["overall"] == {"published": 4, "on_time": 2, "share": 0.5}
    assert [
        (r["team_name"], r["published"], r["on_time"], r["share"]) for r in body["by_team"]
    ] == [
        ("North", 3, 2, 0.6667),
        ("South", 1, 0, 0.0),
    ]
    assert [(r["network"], r["published"], r["on_time"]) for r in body["by_network"]] == [
        ("mastodon", 3, 2),
        ("bluesky", 1, 0),
    ]


def test_failures_are_grouped_by_network_and_normalised_reason(lead, timings):
    body = api(lead).get("/api/v1/reports/failures/", MARCH).json()

    assert body["overall"] == {"failed_targets": 2, "failed_attempts": 5}
    assert [
        (r["network"], r["failed_targets"], r["failed_attempts"]) for r in body["by_network"]
    ] == [("mastodon", 1, 2), ("bluesky", 1, 3)]
    assert [
        (r["network"], r["reason"], r["failed_targets"], r["failed_attempts"]) for r in body["rows"]
    ] == [
        ("mastodon", "invalid", 1, 1),
        ("mastodon", "server", 0, 1),
        ("bluesky", "rate_limited", 1, 2),
        ("bluesky", "no_answer", 0, 1),
    ]
    assert {r["reason"]: r["reason_label"] for r in body["by_reason"]}["rate_limited"] == (
        "Rate limited (429)"
    )


def test_volume_is_by_team_network_and_iso_week_with_empty_weeks(lead, timings):
    body = api(lead).get("/api/v1/reports/volume/", MARCH).json()

    assert body["total"] == 5
    assert [(r["team_name"], r["published"]) for r in body["by_team"]] == [
        ("North", 4),
        ("South", 1),
    ]
    assert [(r["network"], r["published"]) for r in body["by_network"]] == [
        ("mastodon", 4),
        ("bluesky", 1),
    ]
    assert [(r["week"], r["week_start"], r["published"]) for r in body["by_week"]] == [
        ("2025-W09", "2025-02-24", 0),
        ("2025-W10", "2025-03-03", 0),
        ("2025-W11", "2025-03-10", 4),
        ("2025-W12", "2025-03-17", 1),
        ("2025-W13", "2025-03-24", 0),
        ("2025-W14", "2025-03-31", 0),
    ]


def test_sla_breaches_are_late_escalated_or_overdue_steps(lead, timings):
    body = api(lead).get("/api/v1/reports/sla/", MARCH).json()

    assert body["overall"] == {
        "steps": 7,
        "breaches": 2,
        "decided_late": 1,
        "escalated": 1,
        "open_overdue": 1,
        "share": 0.2857,
    }
    assert [(r["team_name"], r["steps"], r["breaches"]) for r in body["by_team"]] == [
        ("North", 6, 2),
        ("South", 1, 0),
    ]
    assert [(r["stage"], r["steps"], r["breaches"]) for r in body["by_stage"]] == [
        ("HQ sign-off", 3, 2),
        ("Regional check", 4, 0),
    ]


def test_a_team_narrows_every_report_to_its_subtree(lead, timings, org):
    params = {**MARCH, "team": org["south"].pk}
    client = api(lead)

    assert client.get("/api/v1/reports/turnaround/", params).json()["overall"]["count"] == 1
    assert client.get("/api/v1/reports/on-time/", params).json()["overall"]["published"] == 1
    assert client.get("/api/v1/reports/failures/", params).json()["overall"] == {
        "failed_targets": 1,
        "failed_attempts": 3,
    }
    assert client.get("/api/v1/reports/volume/", params).json()["total"] == 1
    assert client.get("/api/v1/reports/sla/", params).json()["overall"]["steps"] == 1


def test_the_period_defaults_to_the_last_30_days(lead, timings):
    body = api(lead).get("/api/v1/reports/volume/").json()

    until = datetime.fromisoformat(body["until"]).date()
    since = datetime.fromisoformat(body["since"]).date()
    assert (until - since).days == 29
    assert until == datetime.now(UTC).date()


# Scope -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["turnaround", "on-time", "failures", "volume", "sla", "engagement"]
)
def test_a_lead_of_south_sees_only_south(south_lead, timings, org, name):
    client = api(south_lead)

    body = client.get(f"/api/v1/reports/{name}/", MARCH).json()
    assert {row["team_name"] for row in body.get("by_team", [])} <= {"South", "South Centre"}
    assert client.get(f"/api/v1/reports/{name}/", {"team": org["north"].pk}).status_code == 404
    assert client.get(f"/api/v1/reports/{name}/", {"team": 99999}).status_code == 404


@pytest.mark.parametrize("url", ["/api/v1/reports/sla/", "/reports/"])
def test_people_who_lead_no_team_get_404(author, url):
    client = APIClient()
    client.force_login(author)

    assert client.get(url).status_code == 404


def test_the_page_of_another_subtree_is_404(client, south_lead, org):
    client.force_login(south_lead)

    assert client.get("/reports/", {"team": org["north"].pk}).status_code == 404
    assert client.get("/reports/", {"team": org["south_centre"].pk}).status_code == 200


def test_signed_out_people_are_sent_to_sign_in(client):
    assert client.get("/reports/").status_code == 302
    assert client.get("/api/v1/reports/volume/").status_code in (401, 403)


# Bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2025-13-01"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"since": "2025-03-01T00:00:00Z"}, "since"),
        ({"team": "north"}, "team"),
        ({"team": "-1"}, "team"),
        ({"since": "2025-03-10", "until": "2025-03-09"}, "until"),
        ({"since": "2020-01-01", "until": "2025-01-01"}, "since"),
    ],
)
def test_bad_input_is_400_naming_the_field(lead, params, field):
    response = api(lead).get("/api/v1/reports/turnaround/", params)

    assert response.status_code == 400
    body = response.json()
    assert list(body["extra"]["fields"]) == [field]
    assert body["message"].startswith(f"{field}: ")


def test_the_page_shows_bad_input_beside_its_field(client, lead):
    client.force_login(lead)

    response = client.get("/reports/", {"since": "soon"})

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="report-since" name="since" value="soon" aria-invalid="true"' in page
    assert "Not a date" in page


# Pages -------------------------------------------------------------------------------------------
def test_the_page_draws_a_chart_with_its_table_for_every_figure(client, lead, timings):
    client.force_login(lead)

    response = client.get("/reports/", MARCH)

    assert response.status_code == 200
    page = response.content.decode()
    charts = re.findall(r'<svg [^>]*role="img"[^>]*aria-labelledby="([^"]+)"', page)
    assert len(charts) == 15
    for labelled_by in charts:
        title_id, desc_id = labelled_by.split()
        assert f'<title id="{title_id}">' in page
        assert f'<desc id="{desc_id}">' in page
    assert page.count("<table>") == 15
    # The hand-worked figures, in the tables and in the charts' descriptions.
    assert '<td class="num">2.5 h</td>' in page  # North's median
    assert '<td class="num">7.9 h</td>' in page  # North's p90
    assert "North: Median 2.5 h, 90th percentile 7.9 h" in page
    assert '<td class="num">66.7%</td>' in page  # North on time
    assert "2025-W11: 4" in page
    assert "<script" not in page.split("</header>", 1)[1]


def test_the_page_links_each_report_to_its_json(client, lead, org):
    client.force_login(lead)

    page = client.get("/reports/", {**MARCH, "team": org["north"].pk}).content.decode()

    query = f"team={org['north'].pk}&amp;since=2025-03-01&amp;until=2025-03-31"
    for name in ("turnaround", "on-time", "failures", "volume", "sla", "engagement"):
        assert f'href="/api/v1/reports/{name}/?{query}"' in page


def test_an_empty_period_still_draws_titled_charts(client, lead):
    client.force_login(lead)

    page = client.get("/reports/", MARCH).content.decode()

    assert page.count('role="img"') == 15
    assert "No approval step was decided in this period." in page


def test_the_reports_link_is_in_the_navigation_of_leads_only(client, lead, author):
    client.force_login(lead)
    assert 'href="/reports/"' in client.get("/audit/").content.decode()
    client.force_login(author)
    assert 'href="/reports/"' not in client.get("/").content.decode()


def test_the_schema_documents_the_reports(client):
    schema = client.get("/api/schema/").content

    for name in ("turnaround", "on-time", "failures", "volume", "sla", "engagement"):
        assert f"/api/v1/reports/{name}/".encode() in schema


# Cost --------------------------------------------------------------------------------------------
def _more(org, author, accounts, copies: int) -> None:
    for _ in range(copies):
        known_timings(org, author, accounts)


def _queries(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = call()
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("name", ["turnaround", "on-time", "failures", "volume", "sla"])
def test_each_report_costs_the_same_queries_whatever_the_data(
    lead, org, author, accounts, name, django_assert_num_queries
):
    client = api(lead)
    url = f"/api/v1/reports/{name}/"
    _more(org, author, accounts, 1)
    # the scope (one query), the report (one query)
    with django_assert_num_queries(2):
        small = client.get(url, MARCH)
    _more(org, author, accounts, 15)
    with django_assert_num_queries(2):
        large = client.get(url, MARCH)
    assert small.status_code == large.status_code == 200
    assert small.json() != large.json()


def test_the_page_costs_the_same_queries_whatever_the_data(client, lead, org, author, accounts):
    client.force_login(lead)
    _more(org, author, accounts, 1)
    small = _queries(lambda: client.get("/reports/", MARCH))
    _more(org, author, accounts, 15)
    large = _queries(lambda: client.get("/reports/", MARCH))

    assert small == large


def test_a_superuser_reports_on_every_team(timings, org):
    root = UserFactory(username="root", is_superuser=True)

    body = api(root).get("/api/v1/reports/volume/", MARCH).json()

    assert body["total"] == 5
