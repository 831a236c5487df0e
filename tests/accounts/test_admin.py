"""The admin for organisation set-up: it never shows a token, takes new ones write-only, and
records an audit event for every write it makes past the services."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts import selectors
from accounts.models import Membership, Role, Team
from audit.models import AuditEvent
from networks.models import SocialAccount
from tests.factories import UserFactory

ACCESS = "admin-ACCESS-token-123"
REFRESH = "admin-REFRESH-token-456"


def events(action: str):
    return AuditEvent.objects.filter(action=action)


def account_form(account: SocialAccount, **changes) -> dict:
    data = {
        "team": account.team_id,
        "channel": account.channel,
        "handle": account.handle,
        "display_name": account.display_name,
        "external_id": account.external_id,
        "base_url": account.base_url,
        "status": account.status,
        "expires_at_0": "",
        "expires_at_1": "",
        "new_access_token": "",
        "new_refresh_token": "",
    }
    data.update(changes)
    return data


@pytest.fixture
def account_with_tokens(north_account):
    north_account.set_tokens(access_token=ACCESS, refresh_token=REFRESH)
    north_account.save()
    return north_account


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


def test_the_social_account_pages_never_show_a_token(admin_client, account_with_tokens):
    # given an account holding tokens
    account = account_with_tokens
    # when an operator opens its list and its page
    pages = [
        admin_client.get(reverse("admin:networks_socialaccount_changelist")),
        admin_client.get(reverse("admin:networks_socialaccount_change", args=[account.pk])),
    ]
    # then neither the tokens nor their ciphertext appear, only the write-only fields
    for response in pages:
        assert response.status_code == 200
        html = response.content.decode()
        for secret in (ACCESS, REFRESH, account.access_token_encrypted):
            assert secret not in html
    assert 'name="new_access_token"' in pages[1].content.decode()
    assert "access_token_encrypted" not in pages[1].content.decode()


def test_a_new_access_token_is_stored_encrypted_and_the_change_audited(
    admin_client, org, account_with_tokens
):
    # when an operator enters a new access token and a new display name
    account = account_with_tokens
    response = admin_client.post(
        reverse("admin:networks_socialaccount_change", args=[account.pk]),
        account_form(account, display_name="North Centre", new_access_token="fresh-access"),
    )
    # then the token is replaced, the refresh token kept
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.access_token == "fresh-access"
    assert account.refresh_token == REFRESH
    # and one event names the changed fields, not the token
    (event,) = events("social_account.changed_in_admin")
    assert event.actor.username == "admin"
    assert event.team_id == org["north_centre"].pk
    assert event.data["fields"] == ["display_name", "new_access_token"]
    assert "fresh-access" not in str(event.data)


def test_an_empty_token_field_keeps_the_stored_tokens(admin_client, account_with_tokens):
    account = account_with_tokens
    stored = account.access_token_encrypted
    admin_client.post(
        reverse("admin:networks_socialaccount_change", args=[account.pk]),
        account_form(account, status="needs_reconnect"),
    )
    account.refresh_from_db()
    assert account.status == "needs_reconnect"
    assert account.access_token_encrypted == stored
    assert events("social_account.changed_in_admin").get().data["fields"] == ["status"]


def test_a_refresh_token_alone_needs_an_access_token(admin_client, north_account):
    # given an account without tokens
    # when only a refresh token is entered
    response = admin_client.post(
        reverse("admin:networks_socialaccount_change", args=[north_account.pk]),
        account_form(north_account, new_refresh_token="lonely-refresh"),
    )
    # then the form is refused and nothing is stored or recorded
    assert response.status_code == 200
    north_account.refresh_from_db()
    assert not north_account.has_tokens
    assert not events("social_account.changed_in_admin").exists()


def test_adding_an_account_in_the_admin_is_audited(admin_client, org):
    response = admin_client.post(
        reverse("admin:networks_socialaccount_add"),
        account_form(
            SocialAccount(team=org["south"], channel="bluesky", handle="@south.bsky"),
            new_access_token=ACCESS,
        ),
    )
    assert response.status_code == 302
    account = SocialAccount.objects.get(handle="@south.bsky")
    assert account.access_token == ACCESS
    event = events("social_account.changed_in_admin").get()
    assert event.data["created"] is True
    assert ACCESS not in str(event.data)


def test_a_drafting_grant_through_the_permissions_page_goes_through_the_service(
    admin_client, outsider, north_account
):
    # given the account's object-permissions page
    url = reverse(
        "admin:networks_socialaccount_permissions_manage_user",
        args=[north_account.pk, outsider.pk],
    )
    assert (
        admin_client.get(
            reverse("admin:networks_socialaccount_permissions", args=[north_account.pk])
        ).status_code
        == 200
    )
    page = admin_client.get(url)
    # then drafting is the only permission offered
    assert page.status_code == 200
    assert page.context["form"].fields["permissions"].choices == [
        ("draft_socialaccount", "Can draft posts for this account")
    ]
    # when the operator grants it
    response = admin_client.post(url, {"permissions": ["draft_socialaccount"]})
    # then the South drafter may draft for the North account, and the grant is audited
    assert response.status_code == 302
    assert north_account in selectors.social_accounts_for(user=outsider, roles=Role.DRAFTER)
    assert events("social_account.drafting_granted").count() == 1
    # and when it is taken away again, that is audited too
    admin_client.post(url, {"submit_manage_user": "Save"})  # nothing selected
    assert north_account not in selectors.social_accounts_for(user=outsider)
    assert events("social_account.drafting_revoked").count() == 1


def test_group_grants_are_refused(admin_client, north_account):
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="National desk")
    url = reverse(
        "admin:networks_socialaccount_permissions_manage_group",
        args=[north_account.pk, group.pk],
    )
    response = admin_client.post(url, {"permissions": ["draft_socialaccount"]})
    assert response.status_code == 302
    assert not north_account.socialaccountgroupobjectpermission_set.exists()


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


def test_cxhubs_server_registrations_are_shown_read_only_without_their_secret(admin_client):
    from networks.models import OAuthApp

    app = OAuthApp(
        channel="mastodon",
        base_url="https://social.example",
        redirect_uri="https://cxhub.example/accounts/connect/callback/",
        client_id="client-123",
    )
    app.set_client_secret("very-secret-value")
    app.save()
    listing = admin_client.get(reverse("admin:networks_oauthapp_changelist"))
    page = admin_client.get(reverse("admin:networks_oauthapp_change", args=[app.pk]))
    for response in (listing, page):
        assert response.status_code == 200
        html = response.content.decode()
        assert "client-123" in html
        assert "very-secret-value" not in html and app.client_secret_encrypted not in html
    assert admin_client.get(reverse("admin:networks_oauthapp_add")).status_code == 403
