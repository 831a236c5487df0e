"""The admin of the social accounts: it never shows a token, takes new ones write-only, records
an audit event for every write it makes past the services, and grants drafting through them."""

import pytest
from django.urls import reverse

from accounts.models import Role
from audit.models import AuditEvent
from networks.models import SocialAccount
from networks.selectors import social_accounts_for

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
    assert north_account in social_accounts_for(user=outsider, roles=Role.DRAFTER)
    assert events("social_account.drafting_granted").count() == 1
    # and when it is taken away again, that is audited too
    admin_client.post(url, {"submit_manage_user": "Save"})  # nothing selected
    assert north_account not in social_accounts_for(user=outsider)
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
