"""Admins manage approval policies through the API; every change is audited; a request in
flight keeps its chain."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from approvals.models import ApprovalPolicy
from audit.models import AuditEvent

from ..factories import UserFactory, grant


@pytest.fixture
def north_admin(org):
    user = UserFactory(username="nadia")
    grant(user, org["north"], Role.ADMIN)
    return user


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def _policy(org, **extra):
    payload = {
        "name": "North chain",
        "team": org["north"].pk,
        "stages": [
            {"name": "Regional", "decider_team": org["north"].pk, "decider_role": "approver"},
            {"name": "HQ", "decider_team": org["hq"].pk, "decider_role": "lead", "sla_hours": 4},
        ],
    }
    payload.update(extra)
    return payload


def test_an_admin_creates_reads_changes_and_deletes_a_policy(north_admin, org):
    client = api(north_admin)
    response = client.post("/api/v1/approval-policies/", _policy(org), format="json")
    assert response.status_code == 201, response.content
    policy_id = response.json()["id"]
    assert [s["name"] for s in response.json()["stages"]] == ["Regional", "HQ"]
    assert client.get("/api/v1/approval-policies/").json()["results"][0]["id"] == policy_id
    changed = client.patch(
        f"/api/v1/approval-policies/{policy_id}/",
        {"stages": [{"name": "Only HQ", "decider_team": org["hq"].pk, "decider_role": "lead"}]},
        format="json",
    )
    assert [s["name"] for s in changed.json()["stages"]] == ["Only HQ"]
    assert client.delete(f"/api/v1/approval-policies/{policy_id}/").status_code == 204
    actions = list(
        AuditEvent.objects.filter(action__startswith="approval_policy.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "approval_policy.created",
        "approval_policy.changed",
        "approval_policy.deleted",
    ]


def test_others_cannot_create_or_see_it(north_admin, author, outsider, org):
    response = api(author).post("/api/v1/approval-policies/", _policy(org), format="json")
    assert response.status_code == 400
    assert "team" in response.json()["extra"]["fields"]
    policy_id = (
        api(north_admin)
        .post("/api/v1/approval-policies/", _policy(org), format="json")
        .json()["id"]
    )
    assert api(outsider).get(f"/api/v1/approval-policies/{policy_id}/").status_code == 404


@pytest.mark.parametrize(
    ("stages", "field"),
    [
        ([], "stages"),
        ([{"name": "Nobody"}], "stages[0].decider_role"),
        (
            [{"name": "Q", "rule": "quorum", "decider_team": 1, "decider_role": "approver"}],
            "stages[0].quorum",
        ),
        (
            [{"name": "X", "decider_team": 99999, "decider_role": "approver"}],
            "stages[0].decider_team",
        ),
    ],
)
def test_bad_stages_are_400_naming_the_field(north_admin, org, stages, field):
    response = api(north_admin).post(
        "/api/v1/approval-policies/", _policy(org, stages=stages), format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["extra"]["fields"], response.json()
    assert not ApprovalPolicy.objects.exists()
