"""The admin for organisation set-up: every admin page opens, and the admin records an audit
event for every write it makes past the services (the social accounts' admin:
tests/networks/test_admin.py)."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts import selectors
from accounts.models import Membership, Role, Team
from audit.models import AuditEvent
from tests.factories import UserFactory


def events(action: str):
    return AuditEvent.objects.filter(action=action)


@pytest.mark.parametrize(
    "name",
    [
        "accounts_team_changelist",
        "accounts_team_add",
        "accounts_membership_changelist",
        "accounts_membership_add",
        "networks_socialaccount_changelist",
        "networks_socialaccount_add",
        "accounts_user_changelist",
        "accounts_user_add",
    ],
)
def test_every_admin_page_opens(admin_client, org, author, north_account, name):
    response = admin_client.get(reverse(f"admin:{name}"))
    assert response.status_code == 200


def test_adding_a_team_in_the_admin_puts_it_in_the_tree_and_audits_it(admin_client, org):
    response = admin_client.post(
        reverse("admin:accounts_team_add"),
        {
            "name": "North Coast",
            "slug": "north-coast",
            "late_approval_grace_minutes": 15,
            "treebeard_position": "sorted-child",
            "treebeard_ref_node": org["north"].pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    team = Team.objects.get(slug="north-coast")
    assert Team.objects.get_parent(team) == org["north"]
    event = events("team.changed_in_admin").get()
    assert event.team_id == team.pk


def test_moving_a_team_in_the_admin_is_audited(admin_client, org, author):
    # when North Centre is dragged below South
    response = admin_client.post(
        "/admin/accounts/team/move/",
        {"node": org["north_centre"].pk, "target": org["south"].pk, "relation": "child"},
    )
    # then North's drafter no longer holds it, and the move is recorded
    assert response.status_code == 200
    moved = Team.objects.get(pk=org["north_centre"].pk)
    assert Team.objects.get_parent(moved) == org["south"]
    assert not selectors.user_has_role(user=author, team=moved, role=Role.DRAFTER)
    assert events("team.moved_in_admin").get().team_id == moved.pk


def test_memberships_deleted_in_bulk_are_audited(admin_client, org, author, approver):
    # when an operator deletes two memberships with the "delete selected" action
    ids = list(Membership.objects.filter(user__in=[author, approver]).values_list("pk", flat=True))
    response = admin_client.post(
        reverse("admin:accounts_membership_changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    # then they are gone and each has its event
    assert response.status_code == 302
    assert not Membership.objects.filter(pk__in=ids).exists()
    recorded = events("membership.deleted_in_admin")
    assert sorted(recorded.values_list("object_id", flat=True)) == sorted(map(str, ids))


def test_a_membership_added_on_the_user_page_is_audited(admin_client, org):
    # given a person without memberships
    user = UserFactory(username="erin", date_joined=datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
    url = reverse("admin:accounts_user_change", args=[user.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {
        **{name: value for name, value in form.initial.items() if value is not None},
        "username": "erin",
        "display_name": "Erin",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "09:00:00",
        # date_joined has a callable default, so its form compares against a hidden initial.
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "09:00:00",
        "last_login_0": "",
        "last_login_1": "",
        "is_active": "on",
        "groups": [],
        "user_permissions": [],
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-team": org["south"].pk,
        "memberships-0-role": "approver",
    }
    data.pop("is_staff", None)
    data.pop("is_superuser", None)
    # when an operator gives them a role there
    response = admin_client.post(url, data)
    # then they hold it, and both the user change and the membership are recorded
    assert response.status_code == 302, response.content.decode()[:3000]
    assert selectors.user_has_role(user=user, team=org["south_centre"], role=Role.APPROVER)
    assert events("user.changed_in_admin").get().data["fields"] == ["display_name"]
    membership_event = events("membership.changed_in_admin").get()
    assert membership_event.data["created"] is True
    assert membership_event.team_id == org["south"].pk


def test_a_password_set_in_the_admin_is_audited_without_the_password(admin_client, author):
    # when an operator sets the author's password
    url = reverse("admin:auth_user_password_change", args=[author.pk])
    response = admin_client.post(
        url,
        {
            "password1": "a-New-passphrase-42",
            "password2": "a-New-passphrase-42",
            "set-password": "",
        },
    )
    # then it is changed and recorded, without the password
    assert response.status_code == 302, response.content.decode()[:2000]
    author.refresh_from_db()
    assert author.check_password("a-New-passphrase-42")
    event = events("user.password_changed_in_admin").get()
    assert event.object_id == str(author.pk)
    assert "passphrase" not in str(event.data)


def test_a_refused_password_change_records_nothing(admin_client, author):
    url = reverse("admin:auth_user_password_change", args=[author.pk])
    response = admin_client.post(url, {"password1": "one-Passphrase-1", "password2": "other-2"})
    assert response.status_code == 200
    assert not events("user.password_changed_in_admin").exists()


def test_deleting_a_team_in_the_admin_is_audited_on_its_parent(admin_client, lead):
    # given a team created outside the services (so no audit event protects it)
    from tests.factories import make_team

    hq = Team.objects.get(slug="hq")
    desk = make_team("Night Desk", hq)
    # when an operator deletes it
    response = admin_client.post(
        reverse("admin:accounts_team_delete", args=[desk.pk]), {"post": "yes"}
    )
    # then it is gone and the event hangs on HQ
    assert response.status_code == 302
    assert not Team.objects.filter(slug="night-desk").exists()
    event = events("team.deleted_in_admin").get()
    assert event.team_id == hq.pk
    assert event.data["slug"] == "night-desk"
