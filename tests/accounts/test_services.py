"""Writes of teams and memberships: each refuses what is wrong with a message
naming the field, and each change records exactly one audit event (refusals record none)."""

import pytest

from accounts import services
from accounts.models import Membership, Role, Team
from audit.models import AuditEvent
from cxhub.errors import ApplicationError
from tests.factories import UserFactory


def events(action: str):
    return AuditEvent.objects.filter(action=action).order_by("seq")


# Teams -------------------------------------------------------------------------------------------
def test_team_create_adds_a_child_below_its_parent_and_records_it(org, lead):
    # when a team is created below North
    team = services.team_create(name="North Coast", parent=org["north"], by=lead)
    # then it sits below North in the tree, with a slug from its name
    assert team.slug == "north-coast"
    assert Team.objects.get_parent(team) == org["north"]
    assert team.path.startswith(org["north"].path)
    # and one event says so
    (event,) = events("team.created")
    assert event.actor == lead
    assert event.team_id == team.pk
    assert event.object_id == str(team.pk)
    assert event.data["parent"] == org["north"].pk


def test_team_create_without_a_parent_makes_a_root(db):
    team = services.team_create(name="Agency", by=None)
    assert team.is_root()
    assert events("team.created").count() == 1


def test_team_create_refuses_a_taken_slug(org):
    # when a second team would get North's slug
    with pytest.raises(ApplicationError) as excinfo:
        services.team_create(name="North", parent=org["hq"], by=None)
    # then it is refused naming the field, and nothing is recorded
    assert "slug" in excinfo.value.extra["fields"]
    assert Team.objects.filter(slug="north").count() == 1
    assert not events("team.created").exists()


def test_team_create_refuses_a_blank_name(org):
    with pytest.raises(ApplicationError) as excinfo:
        services.team_create(name="   ", parent=org["hq"], by=None)
    assert "name" in excinfo.value.extra["fields"]
    assert not events("team.created").exists()


# Memberships -------------------------------------------------------------------------------------
def test_membership_grant_gives_the_role_and_records_it(org, lead):
    # given someone new
    user = UserFactory(username="dora")
    # when a lead makes them an approver of South
    membership = services.membership_grant(user=user, team=org["south"], role="approver", by=lead)
    # then they are, and one event says so
    assert Membership.objects.get(user=user).role == Role.APPROVER
    (event,) = events("membership.granted")
    assert event.actor == lead
    assert event.team_id == org["south"].pk
    assert event.object_id == str(membership.pk)
    assert event.data["role"] == "approver"


def test_membership_grant_is_idempotent(org, author):
    # when the author's existing role is granted again
    existing = Membership.objects.get(user=author)
    membership = services.membership_grant(
        user=author, team=org["north"], role=Role.DRAFTER, by=None
    )
    # then nothing changes and nothing more is recorded
    assert membership == existing
    assert Membership.objects.filter(user=author).count() == 1
    assert not events("membership.granted").exists()


def test_membership_grant_refuses_an_unknown_role_naming_the_field(org):
    user = UserFactory()
    # when a role that does not exist is granted
    with pytest.raises(ApplicationError) as excinfo:
        services.membership_grant(user=user, team=org["north"], role="overlord", by=None)
    # then the error names the field and the allowed values, and nothing is written
    assert "overlord" in excinfo.value.message
    assert "role" in excinfo.value.extra["fields"]
    assert "drafter" in excinfo.value.extra["fields"]["role"][0]
    assert not Membership.objects.filter(user=user).exists()
    assert not events("membership.granted").exists()


def test_membership_revoke_removes_the_role_and_records_it(org, author, lead):
    # given the author's membership
    membership = Membership.objects.get(user=author)
    membership_id = membership.pk
    # when it is revoked
    services.membership_revoke(membership=membership, by=lead)
    # then it is gone, and one event names it
    assert not Membership.objects.filter(pk=membership_id).exists()
    (event,) = events("membership.revoked")
    assert event.object_type == "accounts.membership"
    assert event.object_id == str(membership_id)
    assert event.team_id == org["north"].pk
    assert event.data["username"] == "alice"
