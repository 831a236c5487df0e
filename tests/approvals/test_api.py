"""Approvals API: inbox (constant queries), chain, decide, break-glass; refusals are 4xx."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Notification, Role
from approvals.models import ApprovalRequest, Decision
from publishing import services as publishing

from ..factories import UserFactory, grant


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_inbox_lists_what_waits_for_me_with_overdue_flags(submitted, approver, author):
    post = submitted()
    body = api(approver).get("/api/v1/approvals/inbox/").json()
    (item,) = body["results"]
    assert item["post"] == post.pk
    assert item["overdue"] is False
    assert api(author).get("/api/v1/approvals/inbox/").json()["results"] == []


def test_decide_through_the_api_and_read_the_chain(submitted, approver):
    post = submitted()
    request_id = ApprovalRequest.objects.get(post=post).pk
    response = api(approver).post(
        f"/api/v1/approvals/{request_id}/decide/", {"verdict": "approve"}, format="json"
    )
    assert response.status_code == 200, response.content
    chain = response.json()
    assert chain["status"] == "approved"
    assert chain["decisions"][0]["username"] == "bob"
    assert chain["steps"][0]["eligible"] == ["bob"]


@pytest.mark.parametrize(
    ("who", "payload", "status", "field"),
    [
        ("author", {"verdict": "approve"}, 403, None),
        ("approver", {"verdict": "maybe"}, 400, "verdict"),
        ("approver", {"verdict": "reject"}, 400, "comment"),
        ("outsider", {"verdict": "approve"}, 404, None),
    ],
)
def test_refusals_are_4xx_with_a_message_and_change_nothing(
    submitted, approver, author, outsider, who, payload, status, field
):
    post = submitted()
    request_id = ApprovalRequest.objects.get(post=post).pk
    person = {"author": author, "approver": approver, "outsider": outsider}[who]
    response = api(person).post(f"/api/v1/approvals/{request_id}/decide/", payload, format="json")
    assert response.status_code == status
    assert response.json()["message"]
    if field:
        assert field in response.json()["extra"]["fields"]
    assert not Decision.objects.exists()


def test_double_decision_and_stale_version_are_409(submitted, approver, author, org):
    other = UserFactory(username="other")
    grant(other, org["north"], Role.APPROVER)
    post = submitted()
    request_id = ApprovalRequest.objects.get(post=post).pk
    client = api(approver)
    publishing.post_update(post=post, by=author, body="edited")
    response = client.post(f"/api/v1/approvals/{request_id}/decide/", {"verdict": "approve"})
    assert response.status_code == 409
    assert "changed" in response.json()["message"]


@pytest.mark.parametrize("count", [3, 40])
def test_the_inbox_costs_the_same_queries_whatever_its_length(
    org, author, approver, north_account, count, django_assert_num_queries
):
    for index in range(count):
        post = publishing.post_create(
            by=author,
            team_id=org["north"].pk,
            body=f"Post {index}",
            targets=[publishing.TargetInput(social_account_id=north_account.pk)],
        )
        publishing.post_submit(post=post, by=author)
    client = api(approver)
    # the waiting steps; their requests with the posts' bodies, teams and authors
    with django_assert_num_queries(2):
        response = client.get("/api/v1/approvals/inbox/?page_size=100")
    assert len(response.json()["results"]) == count


def test_break_glass_api(submitted, lead, approver):
    post = submitted(scheduled_at=timezone.now() + timedelta(days=2))
    response = api(lead).post(
        f"/api/v1/posts/{post.pk}/break-glass/", {"justification": "short"}, format="json"
    )
    assert response.status_code == 400
    assert "justification" in response.json()["extra"]["fields"]
    response = api(approver).post(
        f"/api/v1/posts/{post.pk}/break-glass/",
        {"justification": "The road is closed and people must know now."},
        format="json",
    )
    assert response.status_code == 403
    response = api(lead).post(
        f"/api/v1/posts/{post.pk}/break-glass/",
        {"justification": "The road is closed and people must know now."},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["status"] == "scheduled"


def test_notifications_list_and_read(submitted, approver):
    submitted()
    client = api(approver)
    response = client.get("/api/v1/notifications/?unread=1")
    assert response["X-Unread-Count"] == "1"
    assert response.json()["results"][0]["kind"] == "approval.waiting"
    client.post("/api/v1/notifications/read/", {}, format="json")
    assert not Notification.objects.filter(user=approver, read_at__isnull=True).exists()
