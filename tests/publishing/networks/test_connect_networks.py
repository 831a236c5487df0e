"""Connecting an X, Facebook, Instagram and LinkedIn account through cxhub's real pages, against
each network's test server (Mastodon and Bluesky: tests/accounts/test_connect.py): the admin
starts at /accounts/connect/<network>/, the browser goes to the network's authorize page (which
approves at once, as a person clicking "Allow"), comes back to the callback, picks the account
where the grant reaches several, and the account is connected, its tokens encrypted, and it
publishes."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from accounts.crypto import decrypt_token
from accounts.models import Role
from audit.models import AuditEvent
from networks.channels import get_channel
from networks.models import AccountStatus, SocialAccount

from ...factories import UserFactory, grant

CALLBACK = "http://testserver/accounts/connect/callback/"
KEY = "3b1f6c1e-2a0d-4c55-9f7e-1d2c3b4a5f60"


@pytest.fixture(autouse=True)
def insecure_transport_allowed(monkeypatch, settings):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test servers speak http
    settings.CXHUB_PUBLIC_URL = ""


@pytest.fixture
def admin_client(client, org):
    user = UserFactory(username="adam")
    grant(user, org["north"], Role.ADMIN)
    client.force_login(user)
    return client


def _connect(client, network: str, team, *, choose: str | None = None):
    started = client.post(f"/accounts/connect/{network}/", {"team": team.pk})
    assert started.status_code == 302, started.content.decode()[:2000]
    authorize = started["Location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["redirect_uri"] == [CALLBACK] and query["state"][0]
    # The person's browser at the network: it approves, and sends them back with a code.
    answer = requests.get(authorize, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    done = client.get(f"{back.path}?{back.query}")
    assert done.status_code == 302, done.content.decode()[:2000]
    if done["Location"].startswith("/accounts/connect/choose/"):
        assert choose is not None, "the grant reached several accounts"
        page = client.get(done["Location"]).content.decode()
        assert f'value="{choose}"' in page
        done = client.post(done["Location"], {"identity": choose})
        assert done.status_code == 302, done.content.decode()[:2000]
    assert done["Location"].startswith("/accounts/#account-")
    return SocialAccount.objects.get(pk=int(done["Location"].rsplit("-", 1)[1]))


def _publishes(account) -> None:
    published = get_channel(account.channel).publish(
        account, "Connected from cxhub's own pages.", [], idempotency_key=KEY
    )
    assert published.external_id


def _encrypted(account) -> None:
    stored = SocialAccount.objects.filter(pk=account.pk).values_list(
        "access_token_encrypted", flat=True
    )[0]
    assert account.access_token and account.access_token not in stored
    assert decrypt_token(stored) == account.access_token


def test_an_admin_connects_an_x_account_with_pkce(admin_client, org, x_server):
    x_server.redirect_uris.add(CALLBACK)
    account = _connect(admin_client, "x", org["north"])
    assert (account.channel, account.handle, account.status) == ("x", "@north_desk", "connected")
    assert account.refresh_token and account.expires_at is not None
    _encrypted(account)
    assert AuditEvent.objects.filter(action="social_account.connected").exists()
    _publishes(account)
    assert len(x_server.tweets) == 1


def test_an_admin_connects_a_facebook_page_chosen_among_the_persons_pages(
    admin_client, org, graph_server
):
    page = graph_server.pages[0]
    account = _connect(admin_client, "facebook", org["north"], choose=str(page["id"]))
    assert account.channel == "facebook" and account.external_id == str(page["id"])
    assert account.status == AccountStatus.CONNECTED
    _encrypted(account)
    _publishes(account)
    assert len(graph_server.posts) == 1


def test_an_admin_connects_an_instagram_account_through_its_page(admin_client, org, graph_server):
    # Only the North Desk Page has an Instagram account linked: the one identity, no choice.
    account = _connect(admin_client, "instagram", org["north"])
    assert (account.channel, account.handle) == ("instagram", "@north.desk")
    assert account.external_id == "17841400000000001"
    assert account.expires_at is not None  # a long-lived User token, renewed ahead
    _encrypted(account)


def test_an_admin_connects_a_linkedin_company_page(admin_client, org, linkedin_server):
    linkedin_server.redirect_uris.add(CALLBACK)
    account = _connect(admin_client, "linkedin", org["north"], choose="urn:li:organization:2414183")
    assert account.channel == "linkedin" and account.external_id == "urn:li:organization:2414183"
    assert account.refresh_token
    _encrypted(account)
    _publishes(account)
    assert len(linkedin_server.posts) == 1


def test_a_network_not_registered_says_what_to_set_instead_of_failing(admin_client, settings):
    settings.CXHUB_OAUTH_CLIENTS = {}
    page = admin_client.get("/accounts/connect/x/")
    assert page.status_code in (200, 400)
    assert "CXHUB_OAUTH_CLIENTS" in page.content.decode()
