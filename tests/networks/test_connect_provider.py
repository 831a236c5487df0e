"""Connecting to a real OAuth 2 provider: django-oauth-toolkit, run as its own process on
127.0.0.1 (tests/oauth_provider), playing a Mastodon server's OAuth side at Mastodon's paths.
Our side goes through our real views (Django's test client); the person's browser hops to the
provider are made with requests, signed in there as a person would be. It shows cxhub's grant
(state, PKCE, code exchange), renewal (RFC 6749 §6) and revocation (RFC 7009) work with an
implementation we did not write."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from django.utils import timezone

pytest.importorskip(
    "oauth2_provider",
    reason="django-oauth-toolkit is not installed (pip install -e '.[dev]'): the real OAuth 2 "
    "provider of these tests cannot run",
)

from accounts.models import Role  # noqa: E402
from audit.models import AuditEvent  # noqa: E402
from networks.channels import get_channel  # noqa: E402
from networks.channels.errors import AuthExpired  # noqa: E402
from networks.channels.mastodon import _stored_client  # noqa: E402
from networks.channels.oauth import refresh_oauth2  # noqa: E402
from networks.models import AccountStatus, SocialAccount
from networks.services import social_accounts_refresh_expiring

from ..factories import UserFactory, grant  # noqa: E402
from ..oauth_provider.process import running_provider  # noqa: E402

pytestmark = pytest.mark.integration

CALLBACK = "http://testserver/accounts/connect/callback/"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with running_provider(tmp_path_factory.mktemp("oauth-provider")) as running:
        yield running


@pytest.fixture(autouse=True)
def loopback(settings, monkeypatch):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    settings.CXHUB_NETWORK_TIMEOUT_SECONDS = 5.0
    settings.CXHUB_PUBLIC_URL = ""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def admin(org, client):
    user = UserFactory(username="adam")
    grant(user, org["north"], Role.ADMIN)
    client.force_login(user)
    return user


def verify(provider, token: str) -> int:
    return requests.get(
        f"{provider.url}/api/v1/accounts/verify_credentials",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).status_code


def connect(client, provider, team) -> SocialAccount:
    started = client.post("/accounts/connect/mastodon/", {"team": team.pk, "server": provider.url})
    assert started.status_code == 302, started.content.decode()
    authorize = started["Location"]
    assert authorize.startswith(f"{provider.url}/oauth/authorize?")
    assert "code_challenge_method=S256" in authorize
    # The person, signed in at the provider, is sent straight back (skip_authorization)
    answer = provider.signed_in().get(authorize, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = answer.headers["Location"]
    assert back.startswith(CALLBACK), back
    parts = urlsplit(back)
    done = client.get(f"{parts.path}?{parts.query}")
    assert done.status_code == 302, done.content.decode()
    return SocialAccount.objects.get(channel="mastodon", base_url=provider.url)


def test_an_account_connects_through_our_views_against_django_oauth_toolkit(
    client, admin, org, provider
):
    account = connect(client, provider, org["north"])

    assert (account.handle, account.team, account.status) == (
        "@northdesk@provider.test",
        org["north"],
        AccountStatus.CONNECTED,
    )
    assert account.display_name == "North Desk"
    # DOT issued an expiring token with a refresh token, both stored encrypted
    row = SocialAccount.objects.filter(pk=account.pk).values().get()
    assert account.access_token and account.access_token not in row["access_token_encrypted"]
    assert account.refresh_token and account.refresh_token not in row["refresh_token_encrypted"]
    assert timedelta(minutes=55) < account.expires_at - timezone.now() < timedelta(minutes=61)
    assert verify(provider, account.access_token) == 200
    instance = account.network_settings["instance"]
    assert instance["configuration"]["statuses"]["max_characters"] == 640


def test_the_refresh_token_renews_against_it_and_the_old_one_is_then_refused(
    client, admin, org, provider
):
    account = connect(client, provider, org["north"])
    old_access, old_refresh = account.access_token, account.refresh_token
    client_registration = _stored_client(account)

    refresh_oauth2(get_channel("mastodon"), account, client=client_registration)

    account.refresh_from_db()
    assert account.access_token != old_access
    assert account.refresh_token != old_refresh
    assert verify(provider, account.access_token) == 200
    assert AuditEvent.objects.filter(action="social_account.token_refreshed").exists()
    # DOT rotated the refresh token: the old one is refused (invalid_grant)
    reuse = requests.post(
        f"{provider.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": old_refresh,
            "client_id": client_registration.client_id,
            "client_secret": client_registration.client_secret,
        },
        timeout=10,
    )
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # and so is our own renewal with it: AuthExpired, nothing stored
    account.set_tokens(access_token="stale", refresh_token=old_refresh)
    account.save()
    with pytest.raises(AuthExpired, match="invalid_grant"):
        refresh_oauth2(get_channel("mastodon"), account, client=client_registration)


def test_the_periodic_renewal_uses_it_too(client, admin, org, provider, settings):

    account = connect(client, provider, org["north"])
    old_access = account.access_token
    settings.CXHUB_TOKEN_REFRESH_MARGIN_SECONDS = 2 * 3600  # the one-hour token is due

    assert social_accounts_refresh_expiring()["renewed"] == 1

    account.refresh_from_db()
    assert account.access_token != old_access
    assert verify(provider, account.access_token) == 200


def test_disconnecting_through_our_view_revokes_the_token_at_it(client, admin, org, provider):
    account = connect(client, provider, org["north"])
    token = account.access_token
    assert verify(provider, token) == 200

    response = client.post(f"/accounts/{account.pk}/disconnect/")

    assert response.status_code == 302
    assert verify(provider, token) == 401
    account.refresh_from_db()
    assert account.status == AccountStatus.DISCONNECTED and not account.has_tokens
    event = AuditEvent.objects.get(action="social_account.disconnected")
    assert event.data["revoked_at_network"] is True
