"""The posts API: shapes of DESIGN §8, scope (404 outside it), errors naming fields."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from networks.models import Channel
from publishing import services
from publishing.models import Post, PostStatus

from ..factories import SocialAccountFactory, UserFactory, grant


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def _payload(org, account, **extra):
    payload = {
        "team": org["north"].pk,
        "body": "Launch window opens at dawn.",
        "targets": [{"social_account": account.pk}],
        "scheduled_at": (timezone.now() + timedelta(days=1)).isoformat(),
        "timezone": "Europe/London",
        "tags": ["launch"],
    }
    payload.update(extra)
    return payload


def test_create_read_back_with_the_documented_shape(author, org, north_mastodon):
    response = api(author).post("/api/v1/posts/", _payload(org, north_mastodon), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    for key in ("id", "status", "version", "content_hash", "author", "targets", "scheduled_at"):
        assert key in body
    assert body["status"] == "draft"
    assert body["author"] == author.pk
    (target,) = body["targets"]
    assert {"id", "status", "external_id", "external_url"} <= set(target)
    assert target["social_account"] == north_mastodon.pk
    again = api(author).get(f"/api/v1/posts/{body['id']}/").json()
    assert again == body


def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(author, org, north_mastodon):
    cases = [
        ({"team": "north"}, "team"),
        ({"targets": [{"social_account": "x"}]}, "targets"),
        ({"scheduled_at": "2026-13-40"}, "scheduled_at"),
        ({"scheduled_at": "2026-03-29T09:00:00"}, "scheduled_at"),
        ({"timezone": "Nowhere"}, "timezone"),
        ({"link": "ftp://example.com"}, "link"),
        ({"media": [99999]}, "media[0]"),
    ]
    for change, field in cases:
        response = api(author).post(
            "/api/v1/posts/", _payload(org, north_mastodon, **change), format="json"
        )
        assert response.status_code == 400, (change, response.content)
        body = response.json()
        assert field in body["extra"]["fields"], (change, body)
        assert body["message"]
    assert Post.objects.count() == 0


def test_targeting_another_regions_account_is_refused(author, org, south_account):
    response = api(author).post("/api/v1/posts/", _payload(org, south_account), format="json")
    assert response.status_code == 400
    assert "targets[0].social_account" in response.json()["extra"]["fields"]


def test_another_regions_drafter_cannot_see_or_touch_a_post(author, outsider, org, north_mastodon):
    post_id = (
        api(author)
        .post("/api/v1/posts/", _payload(org, north_mastodon), format="json")
        .json()["id"]
    )
    client = api(outsider)
    assert client.get(f"/api/v1/posts/{post_id}/").status_code == 404
    assert (
        client.patch(f"/api/v1/posts/{post_id}/", {"body": "x"}, format="json").status_code == 404
    )
    for action in ("submit", "cancel", "duplicate", "preflight"):
        assert client.post(f"/api/v1/posts/{post_id}/{action}/").status_code == 404, action
    assert client.get("/api/v1/posts/").json()["results"] == []


def test_edit_submit_cancel_duplicate_through_the_api(author, approver, org, north_mastodon):
    client = api(author)
    post_id = client.post("/api/v1/posts/", _payload(org, north_mastodon), format="json").json()[
        "id"
    ]
    edited = client.patch(f"/api/v1/posts/{post_id}/", {"body": "Dawn launch."}, format="json")
    assert edited.json()["version"] == 2
    preflight = client.get(f"/api/v1/posts/{post_id}/preflight/").json()
    assert preflight["ok"] is True
    submitted = client.post(f"/api/v1/posts/{post_id}/submit/")
    assert submitted.status_code == 200
    assert submitted.json()["status"] == "in_review"
    again = client.post(f"/api/v1/posts/{post_id}/submit/")
    assert again.status_code == 409
    cancelled = client.post(f"/api/v1/posts/{post_id}/cancel/", {"reason": "moved"}, format="json")
    assert cancelled.json()["status"] == "cancelled"
    copy = client.post(f"/api/v1/posts/{post_id}/duplicate/")
    assert copy.status_code == 201
    assert copy.json()["status"] == "draft"


def test_a_blocked_submit_lists_the_problems(author, org, north_mastodon):
    client = api(author)
    post_id = client.post(
        "/api/v1/posts/", _payload(org, north_mastodon, body="y" * 501), format="json"
    ).json()["id"]
    response = client.post(f"/api/v1/posts/{post_id}/submit/")
    assert response.status_code == 400
    problems = response.json()["extra"]["problems"]
    assert problems[0]["code"] == "text_too_long"
    assert "1 too many" in problems[0]["message"] or "501" in problems[0]["message"]


def test_list_filters(author, org, north_mastodon):
    client = api(author)
    soon = datetime(2030, 5, 1, 9, tzinfo=UTC)
    later = datetime(2030, 6, 1, 9, tzinfo=UTC)
    for moment in (soon, later):
        client.post(
            "/api/v1/posts/",
            _payload(org, north_mastodon, scheduled_at=moment.isoformat()),
            format="json",
        )
    response = client.get("/api/v1/posts/?since=2030-05-15T00:00:00Z")
    assert len(response.json()["results"]) == 1
    assert client.get("/api/v1/posts/?status=draft").json()["results"]
    assert client.get("/api/v1/posts/?status=published").json()["results"] == []
    assert client.get(f"/api/v1/posts/?account={north_mastodon.pk}").json()["results"]
    bad = client.get("/api/v1/posts/?status=done")
    assert bad.status_code == 400
    assert "status" in bad.json()["extra"]["fields"]
    assert client.get("/api/v1/posts/?since=yesterday").status_code == 400


@pytest.mark.parametrize("count", [5, 60])
def test_the_post_list_costs_the_same_queries_for_any_number_of_posts(
    author, org, north_mastodon, count, django_assert_num_queries
):
    second = SocialAccountFactory(team=org["north"], channel=Channel.X, handle="@northx")
    for index in range(count):
        services.post_create(
            by=author,
            team_id=org["north"].pk,
            body=f"Post {index}",
            targets=[
                services.TargetInput(social_account_id=north_mastodon.pk),
                services.TargetInput(social_account_id=second.pk),
            ],
        )
    client = api(author)
    # posts (scope subquery inside), targets with their accounts' handles, media
    with django_assert_num_queries(3):
        response = client.get("/api/v1/posts/?page_size=100")
    assert len(response.json()["results"]) == count


def test_a_lead_of_hq_sees_every_regions_posts(author, lead, org, north_mastodon):
    api(author).post("/api/v1/posts/", _payload(org, north_mastodon), format="json")
    assert len(api(lead).get("/api/v1/posts/").json()["results"]) == 1


def test_approver_of_the_team_can_read_but_not_edit(author, approver, org, north_mastodon):
    post_id = (
        api(author)
        .post("/api/v1/posts/", _payload(org, north_mastodon), format="json")
        .json()["id"]
    )
    client = api(approver)
    assert client.get(f"/api/v1/posts/{post_id}/").status_code == 200
    response = client.patch(f"/api/v1/posts/{post_id}/", {"body": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["message"]


def test_a_post_cannot_change_team(author, org, north_mastodon):
    post_id = (
        api(author)
        .post("/api/v1/posts/", _payload(org, north_mastodon), format="json")
        .json()["id"]
    )
    response = api(author).patch(
        f"/api/v1/posts/{post_id}/", {"team": org["south"].pk}, format="json"
    )
    assert response.status_code == 400
    assert "team" in response.json()["extra"]["fields"]


def test_post_status_values_are_the_documented_ones():
    assert set(PostStatus.values) >= {
        "draft",
        "in_review",
        "approved",
        "scheduled",
        "publishing",
        "published",
        "partially_published",
        "failed",
        "rejected",
        "cancelled",
    }


def test_drafter_of_a_granted_account_only(org, north_mastodon):
    user = UserFactory(username="granted")
    grant(user, org["south"], Role.DRAFTER)
    response = api(user).post("/api/v1/posts/", _payload(org, north_mastodon), format="json")
    assert response.status_code == 400  # cannot post for North's team
