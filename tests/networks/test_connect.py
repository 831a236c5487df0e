"""Connecting accounts through the real pages (DESIGN §2): our side through Django's test client,
the browser's hops to the network with requests, against the Mastodon and Bluesky test
servers on 127.0.0.1. Then what follows a connect: refusals, reconnecting (which releases the
held posts), disconnecting (which revokes), and renewing tokens before they expire."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.crypto import decrypt_token
from accounts.models import Notification, Role
from audit.models import AuditEvent
from networks import channels as channels_module
from networks import tasks
from networks.channels.base import Channel, Identity, Limits, OAuthClient, OAuthSpec, TokenSet
from networks.models import AccountStatus, OAuthApp, SocialAccount
from networks.services import social_account_needs_reconnect, social_accounts_refresh_expiring
from publishing import preflight
from publishing.dispatch import claim, common
from publishing.models import PostTarget, TargetStatus

from ..factories import PASSWORD, SocialAccountFactory, UserFactory, grant
from ..integration.dispatch_support import approved_post
from ..publishing.networks.bluesky_server import BlueskyServer
from ..publishing.networks.mastodon_server import MastodonServer

CALLBACK = "http://testserver/accounts/connect/callback/"


@pytest.fixture(autouse=True)
def loopback_networks(settings, monkeypatch):
    """The test servers live on 127.0.0.1 over http: allowed here, as nowhere in production."""
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    settings.CXHUB_NETWORK_TIMEOUT_SECONDS = 30.0  # never late on a loaded machine
    settings.CXHUB_PUBLIC_URL = ""
    settings.CXHUB_OAUTH_CLIENTS = {}
    settings.CXHUB_NETWORK_BASE_URLS = {}
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def mastodon():
    server = MastodonServer().start()
    yield server
    server.stop()


@pytest.fixture
def bluesky():
    server = BlueskyServer().start()
    yield server
    server.stop()


@pytest.fixture
def admin(org):
    """adam, an administrator of North (and so of North Centre)."""
    user = UserFactory(username="adam")
    grant(user, org["north"], Role.ADMIN)
    return user


@pytest.fixture
def hq_admin(org):
    user = UserFactory(username="hugo")
    grant(user, org["hq"], Role.ADMIN)
    return user


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin)
    return client


def browser_hop(url: str) -> str:
    """What the person's browser does at the network: open the authorize page (it approves at
    once), and come back: the address it is sent back to."""
    answer = requests.get(url, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def come_back(client, location: str):
    assert location.startswith(CALLBACK)
    parts = urlsplit(location)
    return client.get(f"{parts.path}?{parts.query}")


def connect_mastodon(client, server, team):
    started = client.post("/accounts/connect/mastodon/", {"team": team.pk, "server": server.url})
    assert started.status_code == 302, started.content.decode()
    assert started["Location"].startswith(f"{server.url}/oauth/authorize?")
    return come_back(client, browser_hop(started["Location"]))


def the_account(**filters) -> SocialAccount:
    return SocialAccount.objects.get(**filters)


# Connecting ---------------------------------------------------------------------------------------
def test_an_admin_connects_a_mastodon_account_through_the_real_pages(as_admin, mastodon, org):
    # Given a Mastodon server that announces its own limits
    mastodon.max_characters = 1000

    # When adam connects its account to North: start, the server's authorize page, callback
    response = connect_mastodon(as_admin, mastodon, org["north"])

    # Then the account is connected and listed
    account = the_account(channel="mastodon")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/#account-{account.pk}"
    assert (account.team, account.handle, account.external_id, account.base_url) == (
        org["north"],
        "@north@mastodon.test",
        "109",
        mastodon.url,
    )
    assert account.display_name == "North region"
    assert account.status == AccountStatus.CONNECTED
    page = as_admin.get("/accounts/")
    assert "@north@mastodon.test" in page.content.decode()
    assert "Connected @north@mastodon.test on Mastodon (North)." in page.content.decode()
    # The token works at the server, and is stored encrypted
    [issued] = mastodon.token_clients
    stored = SocialAccount.objects.filter(pk=account.pk).values_list(
        "access_token_encrypted", flat=True
    )[0]
    assert issued not in stored
    assert decrypt_token(stored) == issued == account.access_token
    # cxhub registered itself once, its secret encrypted too, and the grant used PKCE and state
    app = OAuthApp.objects.get()
    [registration] = mastodon.apps.values()
    assert (app.base_url, app.redirect_uri, registration["redirect_uris"]) == (
        mastodon.url,
        CALLBACK,
        [CALLBACK],
    )
    assert registration["secret"] not in app.client_secret_encrypted
    assert app.client_secret == registration["secret"]
    assert registration["scopes"] == ["read", "write"]
    [code] = mastodon.codes.values()
    assert code["challenge"] and code["used"]
    # The server's limits came along, for preflight
    statuses = account.network_settings["instance"]["configuration"]["statuses"]
    assert statuses["max_characters"] == 1000
    assert account.network_settings["oauth_client_id"] == app.client_id
    assert {"oauth_app.registered", "social_account.connected"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )


def test_a_second_account_on_the_same_server_reuses_the_registration(as_admin, mastodon, org):
    connect_mastodon(as_admin, mastodon, org["north"])
    mastodon.account_id, mastodon.username = "110", "south"

    connect_mastodon(as_admin, mastodon, org["north_centre"])

    assert len(mastodon.apps) == 1
    assert OAuthApp.objects.count() == 1
    assert sorted(SocialAccount.objects.values_list("handle", flat=True)) == [
        "@north@mastodon.test",
        "@south@mastodon.test",
    ]


def test_preflight_checks_a_mastodon_account_against_its_servers_limits(
    as_admin, mastodon, org, author
):
    from publishing import services

    mastodon.max_characters = 300
    connect_mastodon(as_admin, mastodon, org["north"])
    account = the_account(channel="mastodon")
    default = SocialAccountFactory(team=org["north"], handle="@plain")
    default.set_tokens(access_token="x")
    default.save()

    post = services.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Doors open at nine. " * 20,  # 400 characters
        targets=[
            services.TargetInput(social_account_id=account.pk),
            services.TargetInput(social_account_id=default.pk),
        ],
    )
    too_long = {
        f.social_account: f.message for f in preflight.run(post=post) if f.code == "text_too_long"
    }

    # The server allows 300: flagged; the default allows 500: not
    assert list(too_long) == [account.pk]
    assert "Mastodon allows 300" in too_long[account.pk]


def test_bluesky_connects_with_an_app_password_that_is_not_kept(as_admin, bluesky, org):
    response = as_admin.post(
        "/accounts/connect/bluesky/",
        {
            "team": org["north"].pk,
            "server": bluesky.url,
            "identifier": "@north.test",
            "password": bluesky.password,
        },
    )

    assert response.status_code == 302
    account = the_account(channel="bluesky")
    assert (account.handle, account.external_id, account.base_url) == (
        "north.test",
        bluesky.did,
        bluesky.url,
    )
    assert account.access_token in bluesky.access
    assert account.refresh_token in bluesky.refresh
    row = SocialAccount.objects.filter(pk=account.pk).values().get()
    assert bluesky.password not in repr(row)


def test_a_wrong_app_password_is_refused_on_the_page_and_nothing_is_made(as_admin, bluesky, org):
    response = as_admin.post(
        "/accounts/connect/bluesky/",
        {
            "team": org["north"].pk,
            "server": bluesky.url,
            "identifier": "north.test",
            "password": "x",
        },
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "Bluesky refused the sign-in" in page
    assert 'href="#id_password"' in page
    assert not SocialAccount.objects.exists()


class TwoPages(Channel):
    """A network whose one sign-in reaches two Pages, each with a token of its own (as a
    Facebook user managing two Pages); its OAuth side is the Mastodon test server's."""

    name = "facebook"
    label = "Facebook"
    limits = Limits(
        max_text=1000,
        text_unit="characters",
        max_text_bytes=None,
        max_media=1,
        media_formats=frozenset({"JPEG"}),
        max_image_bytes=1,
    )

    def __init__(self, server, client):
        self.server, self.client = server, client

    def oauth_spec(self, base_url):
        return OAuthSpec(
            authorize_url=f"{self.server.url}/oauth/authorize",
            token_url=f"{self.server.url}/oauth/token",
            scopes=("read",),
        )

    def oauth_client(self, base_url, *, redirect_uri):
        return self.client

    def identify(self, base_url, tokens):
        assert tokens.access_token in self.server.tokens
        return [
            Identity("Agency North", "page-1", tokens=TokenSet("page-token-1")),
            Identity("Agency North Events", "page-2", "Events", tokens=TokenSet("page-token-2")),
        ]


@pytest.fixture
def two_pages(mastodon, monkeypatch, settings):
    registered = requests.post(
        f"{mastodon.url}/api/v1/apps",
        data={"client_name": "cxhub", "redirect_uris": CALLBACK, "scopes": "read"},
        timeout=30,
    ).json()
    channel = TwoPages(mastodon, OAuthClient(registered["client_id"], registered["client_secret"]))
    monkeypatch.setitem(channels_module._CHANNELS, "facebook", channel)
    settings.CXHUB_NETWORK_BASE_URLS = {"facebook": mastodon.url}
    return channel


def test_a_grant_reaching_two_accounts_asks_which_one_to_connect(as_admin, two_pages, org):
    started = as_admin.post("/accounts/connect/facebook/", {"team": org["north"].pk})
    back = come_back(as_admin, browser_hop(started["Location"]))

    # Then the person is asked to choose
    assert back.status_code == 302
    choose = back["Location"]
    assert choose.startswith("/accounts/connect/choose/")
    page = as_admin.get(choose)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Agency North" in text and "Events (Agency North Events)" in text
    assert not SocialAccount.objects.exists()

    # An answer that is not one of them is refused, naming the field
    assert as_admin.post(choose, {"identity": "page-9"}).status_code == 400

    # When they choose the second Page
    done = as_admin.post(choose, {"identity": "page-2"})

    # Then that Page is connected, with its own token
    assert done.status_code == 302
    account = the_account(channel="facebook")
    assert (account.handle, account.external_id, account.access_token) == (
        "Agency North Events",
        "page-2",
        "page-token-2",
    )
    # The choice is spent
    assert as_admin.post(choose, {"identity": "page-1"}).status_code == 400
    assert SocialAccount.objects.count() == 1


# Refusals -----------------------------------------------------------------------------------------
def test_an_unknown_state_is_a_400_page_and_nothing_is_made(as_admin, mastodon, org):
    response = as_admin.get("/accounts/connect/callback/?state=made-up&code=abc")

    assert response.status_code == 400
    assert "does not belong to a connect started in this browser session" in (
        response.content.decode()
    )
    assert not SocialAccount.objects.exists()


def test_an_answer_is_used_once(as_admin, mastodon, org):
    started = as_admin.post(
        "/accounts/connect/mastodon/", {"team": org["north"].pk, "server": mastodon.url}
    )
    location = browser_hop(started["Location"])
    assert come_back(as_admin, location).status_code == 302

    replay = come_back(as_admin, location)

    assert replay.status_code == 400
    assert SocialAccount.objects.count() == 1


def test_a_sign_in_that_took_too_long_is_refused(as_admin, mastodon, org):
    started = as_admin.post(
        "/accounts/connect/mastodon/", {"team": org["north"].pk, "server": mastodon.url}
    )
    location = browser_hop(started["Location"])

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        response = come_back(as_admin, location)

    assert response.status_code == 400
    assert "took longer than 10 minutes" in response.content.decode()
    assert not SocialAccount.objects.exists()


def test_access_denied_at_the_network_is_a_clear_message_and_nothing_is_made(
    as_admin, mastodon, org
):
    mastodon.deny_authorization = True

    response = connect_mastodon(as_admin, mastodon, org["north"])

    assert response.status_code == 400
    page = response.content.decode()
    assert "Mastodon: cxhub was not given access (you, or the network, refused)." in page
    assert "Nothing was connected" in page
    assert not SocialAccount.objects.exists()


def test_a_code_the_server_refuses_is_a_clear_message(as_admin, mastodon, org):
    started = as_admin.post(
        "/accounts/connect/mastodon/", {"team": org["north"].pk, "server": mastodon.url}
    )
    location = browser_hop(started["Location"])
    for code in mastodon.codes.values():
        code["used"] = True  # as if the code had been spent already

    response = come_back(as_admin, location)

    assert response.status_code == 400
    assert "Mastodon refused to give cxhub its tokens (invalid_grant" in response.content.decode()
    assert not SocialAccount.objects.exists()


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("http://10.1.2.3", "not a public address"),
        ("ftp://mastodon.example", "is not a server address"),
        ("", "This field is required"),
    ],
)
def test_a_server_address_that_is_refused_names_the_field(as_admin, org, server, message):
    response = as_admin.post(
        "/accounts/connect/mastodon/", {"team": org["north"].pk, "server": server}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert 'href="#id_server"' in page
    assert not OAuthApp.objects.exists()


def test_an_unknown_network_is_a_clear_400(as_admin):
    response = as_admin.get("/accounts/connect/myspace/")

    assert response.status_code == 400
    assert "cxhub has no network called" in response.content.decode()


class Unregistered(Channel):
    name = "linkedin"
    label = "LinkedIn"
    limits = TwoPages.limits

    def oauth_spec(self, base_url):
        return OAuthSpec(
            authorize_url="https://www.linkedin.com/oauth/v2/authorization",
            token_url="https://www.linkedin.com/oauth/v2/accessToken",
            scopes=("w_member_social",),
        )


def test_a_network_without_a_client_registration_says_what_to_set(as_admin, org, monkeypatch):
    monkeypatch.setitem(channels_module._CHANNELS, "linkedin", Unregistered())

    index = as_admin.get("/accounts/connect/").content.decode()
    page = as_admin.get("/accounts/connect/linkedin/").content.decode()
    refused = as_admin.post("/accounts/connect/linkedin/", {"team": org["north"].pk})

    for text in (index, page):
        assert "cxhub is not registered with LinkedIn" in text
        assert "CXHUB_OAUTH_CLIENTS" in text
    assert CALLBACK in page
    assert refused.status_code == 400


def test_only_admins_connect(client, author, org):
    client.force_login(author)

    assert client.get("/accounts/connect/").status_code == 403
    response = client.post("/accounts/connect/mastodon/", {"team": org["north"].pk})
    assert response.status_code == 403
    assert "Only administrators of a team connect accounts" in response.content.decode()


def test_an_admin_of_one_team_cannot_connect_to_a_team_they_only_draft_for(
    client, admin, org, mastodon
):
    grant(admin, org["south"], Role.DRAFTER)
    client.force_login(admin)

    response = client.post(
        "/accounts/connect/mastodon/", {"team": org["south"].pk, "server": mastodon.url}
    )

    assert response.status_code == 403
    assert "Only administrators of South" in response.content.decode()
    assert mastodon.apps == {}


def test_a_team_out_of_sight_is_a_400_on_the_team_field(as_admin, org, mastodon):
    response = as_admin.post(
        "/accounts/connect/mastodon/", {"team": org["south"].pk, "server": mastodon.url}
    )

    assert response.status_code == 400
    assert "Choose one of the teams listed" in response.content.decode()


# Reconnecting -------------------------------------------------------------------------------------
@pytest.fixture
def held(as_admin, mastodon, org, author, admin, hq_admin):
    """A connected Mastodon account whose network then refused it: its approved post is held."""
    connect_mastodon(as_admin, mastodon, org["north"])
    account = the_account(channel="mastodon")
    post = approved_post(author=author, team=org["north"], accounts=[account])
    social_account_needs_reconnect(account_id=account.pk, error="The access token is invalid")
    claim.dispatch_due()
    target = PostTarget.objects.get(post=post)
    assert (target.status, target.held_reason) == (TargetStatus.HELD, common.HOLD_ACCOUNT)
    return account, target


def test_a_refused_account_needs_reconnect_and_its_admins_are_told(held, admin, hq_admin, author):
    account, _ = held
    account.refresh_from_db()

    assert account.status == AccountStatus.NEEDS_RECONNECT
    told = Notification.objects.filter(kind="account_needs_reconnect")
    assert sorted(told.values_list("user__username", flat=True)) == ["adam", "hugo"]
    assert "The access token is invalid" in told.first().body
    assert AuditEvent.objects.filter(
        action="social_account.needs_reconnect", object_id=str(account.pk)
    ).exists()
    # Said once, however many times it is seen
    assert social_account_needs_reconnect(account_id=account.pk, error="again") is False
    assert told.count() == 2


def test_the_list_shows_needs_reconnect_loudly_with_a_reconnect_button(client, held, author):
    account, _ = held
    client.force_login(author)  # a drafter of North: may reconnect, not disconnect

    page = client.get("/accounts/").content.decode()

    assert "⚠ 1 account needs reconnecting." in page
    assert "Needs reconnect" in page
    assert f'href="/accounts/{account.pk}/reconnect/"' in page
    assert f'href="/accounts/{account.pk}/disconnect/"' not in page
    assert "Connect an account" not in page


def test_a_drafter_reconnects_and_the_held_posts_are_released(client, held, mastodon, author):
    account, target = held
    client.force_login(author)
    assert client.get(f"/accounts/{account.pk}/reconnect/").status_code == 200

    started = client.post(f"/accounts/{account.pk}/reconnect/")
    response = come_back(client, browser_hop(started["Location"]))

    assert response.status_code == 302
    account.refresh_from_db()
    target.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    assert account.access_token in mastodon.tokens
    assert (target.status, target.held_reason) == (TargetStatus.WAITING, "")
    assert AuditEvent.objects.filter(action="social_account.reconnected").exists()
    assert AuditEvent.objects.filter(action="social_account.targets_released").exists()
    assert claim.dispatch_due().queued == [target.pk]


def test_reconnecting_as_another_account_is_refused(as_admin, held, mastodon):
    account, target = held
    mastodon.account_id, mastodon.username = "777", "someone_else"

    started = as_admin.post(f"/accounts/{account.pk}/reconnect/")
    response = come_back(as_admin, browser_hop(started["Location"]))

    assert response.status_code == 400
    assert "but the account to reconnect is @north@mastodon.test" in response.content.decode()
    account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_RECONNECT
    assert SocialAccount.objects.count() == 1


def test_someone_from_another_team_cannot_see_the_reconnect_page(client, held, outsider):
    account, _ = held
    client.force_login(outsider)

    assert client.get(f"/accounts/{account.pk}/reconnect/").status_code == 404
    assert client.post(f"/accounts/{account.pk}/reconnect/").status_code == 404


def test_an_approver_of_the_team_may_not_reconnect(client, held, approver):
    account, _ = held
    client.force_login(approver)

    response = client.post(f"/accounts/{account.pk}/reconnect/")

    assert response.status_code == 403
    assert "Only administrators of North and the people who draft for" in (
        response.content.decode()
    )


def test_a_bluesky_account_is_reconnected_with_a_new_app_password(as_admin, bluesky, org):
    as_admin.post(
        "/accounts/connect/bluesky/",
        {
            "team": org["north"].pk,
            "server": bluesky.url,
            "identifier": "north.test",
            "password": bluesky.password,
        },
    )
    account = the_account(channel="bluesky")
    bluesky.revoke_refresh_tokens()
    social_account_needs_reconnect(account_id=account.pk, error="ExpiredToken")
    page = as_admin.get(f"/accounts/{account.pk}/reconnect/").content.decode()
    assert 'for="id_password"' in page and 'id="id_server"' not in page

    refused = as_admin.post(f"/accounts/{account.pk}/reconnect/", {"password": "wrong"})
    assert refused.status_code == 400
    done = as_admin.post(f"/accounts/{account.pk}/reconnect/", {"password": bluesky.password})

    assert done.status_code == 302
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    assert account.refresh_token in bluesky.refresh


# Disconnecting ------------------------------------------------------------------------------------
def test_disconnect_asks_first_then_revokes_and_posts_are_held(
    as_admin, mastodon, org, author, client
):
    connect_mastodon(as_admin, mastodon, org["north"])
    account = the_account(channel="mastodon")
    token = account.access_token
    post = approved_post(author=author, team=org["north"], accounts=[account])

    confirm = as_admin.get(f"/accounts/{account.pk}/disconnect/")
    assert confirm.status_code == 200
    assert f"Disconnect {account.handle}?" in confirm.content.decode()
    response = as_admin.post(f"/accounts/{account.pk}/disconnect/")

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.status == AccountStatus.DISCONNECTED
    assert not account.access_token_encrypted and account.expires_at is None
    # Revoked at the server: the token no longer works there
    assert mastodon.revoked == [token]
    verify = requests.get(
        f"{mastodon.url}/api/v1/accounts/verify_credentials",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert verify.status_code == 401
    event = AuditEvent.objects.get(action="social_account.disconnected")
    assert event.data["revoked_at_network"] is True
    # Its post is held when due, not failed
    claim.dispatch_due()
    target = PostTarget.objects.get(post=post)
    assert (target.status, target.held_reason) == (TargetStatus.HELD, common.HOLD_ACCOUNT)


def test_a_drafter_may_not_disconnect(client, author, org, mastodon, as_admin):
    connect_mastodon(as_admin, mastodon, org["north"])
    account = the_account(channel="mastodon")
    client.force_login(author)

    response = client.post(f"/accounts/{account.pk}/disconnect/")

    assert response.status_code == 403
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    assert mastodon.revoked == []


def test_disconnect_goes_ahead_when_the_network_cannot_be_reached(as_admin, mastodon, org):
    connect_mastodon(as_admin, mastodon, org["north"])
    account = the_account(channel="mastodon")
    mastodon.fail_next("revoke", "500")

    assert as_admin.post(f"/accounts/{account.pk}/disconnect/").status_code == 302

    account.refresh_from_db()
    assert account.status == AccountStatus.DISCONNECTED
    assert AuditEvent.objects.get(action="social_account.disconnected").data == {
        "channel": "mastodon",
        "handle": "@north@mastodon.test",
        "previous_status": "connected",
        "revoked_at_network": False,
    }


def test_a_bluesky_disconnect_ends_the_session(as_admin, bluesky, org):
    as_admin.post(
        "/accounts/connect/bluesky/",
        {
            "team": org["north"].pk,
            "server": bluesky.url,
            "identifier": "north.test",
            "password": bluesky.password,
        },
    )
    account = the_account(channel="bluesky")
    refresh = account.refresh_token

    as_admin.post(f"/accounts/{account.pk}/disconnect/")

    assert bluesky.deleted_sessions == 1
    assert refresh not in bluesky.refresh


# Renewing before expiry ---------------------------------------------------------------------------
def test_tokens_near_expiry_are_renewed_and_a_refused_renewal_needs_reconnect(
    as_admin, mastodon, org, admin, hq_admin, settings
):
    # Given two accounts on a server that issues expiring tokens with refresh tokens
    mastodon.refresh_tokens_enabled = True
    mastodon.expires_in = 600  # within the margin: due for renewal at once
    settings.CXHUB_TOKEN_REFRESH_MARGIN_SECONDS = 3600
    connect_mastodon(as_admin, mastodon, org["north"])
    mastodon.account_id, mastodon.username = "110", "centre"
    connect_mastodon(as_admin, mastodon, org["north_centre"])
    renewed = the_account(handle="@north@mastodon.test")
    refused = the_account(handle="@centre@mastodon.test")
    # and a third, far from expiry, left alone
    later = SocialAccountFactory(team=org["north"], handle="@later")
    later.set_tokens(access_token="a", refresh_token="r")
    later.expires_at = timezone.now() + timedelta(days=30)
    later.save()
    old_token = renewed.access_token
    # The server no longer honours the second account's refresh token
    with mastodon.lock:
        for value, grant_ in list(mastodon.refresh_tokens.items()):
            if grant_["access"] == refused.access_token:
                del mastodon.refresh_tokens[value]
    mastodon.expires_in = 7200

    # When the periodic task runs
    counts = tasks.refresh_expiring_tokens.apply().get()

    # Then the first is renewed, the second needs reconnecting and its admins are told
    assert counts == {"renewed": 1, "needs_reconnect": 1, "retry": 0, "skipped": 0, "failed": 0}
    renewed.refresh_from_db()
    refused.refresh_from_db()
    assert renewed.access_token != old_token and renewed.access_token in mastodon.tokens
    assert old_token not in mastodon.tokens
    assert renewed.expires_at > timezone.now() + timedelta(seconds=7000)
    assert renewed.status == AccountStatus.CONNECTED
    assert refused.status == AccountStatus.NEEDS_RECONNECT
    told = Notification.objects.filter(kind="account_needs_reconnect")
    assert sorted(told.values_list("user__username", flat=True)) == ["adam", "hugo"]
    assert "invalid_grant" in told.first().body
    # And running again does nothing more
    assert social_accounts_refresh_expiring() == {
        "renewed": 0,
        "needs_reconnect": 0,
        "retry": 0,
        "skipped": 0,
        "failed": 0,
    }


def test_a_renewal_that_cannot_reach_the_network_is_tried_next_run(
    as_admin, mastodon, org, settings
):
    mastodon.refresh_tokens_enabled = True
    mastodon.expires_in = 60
    connect_mastodon(as_admin, mastodon, org["north"])
    account = the_account(channel="mastodon")
    mastodon.fail_next("token", "503")

    assert social_accounts_refresh_expiring()["retry"] == 1
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED

    assert social_accounts_refresh_expiring()["renewed"] == 1


# The list -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [2, 20])
def test_the_accounts_page_costs_the_same_queries(
    client, admin, org, count, django_assert_num_queries
):
    for number in range(count):
        SocialAccountFactory(
            team=org["north_centre"] if number % 2 else org["north"],
            status=AccountStatus.NEEDS_RECONNECT if number % 3 == 0 else AccountStatus.CONNECTED,
        )
    client.force_login(admin)

    # session, user, accounts (team joined), memberships (team joined), grants; the navigation:
    # roles, approvals waiting, unread notifications
    with django_assert_num_queries(8):
        response = client.get("/accounts/")

    assert response.status_code == 200
    assert response.content.decode().count('href="/accounts/connect/"') == 1
    assert response.content.decode().count("/disconnect/") == count


def test_the_accounts_page_query_count_does_not_grow(client, admin, org):
    client.force_login(admin)
    SocialAccountFactory(team=org["north"])
    with CaptureQueriesContext(connection) as few:
        client.get("/accounts/")
    for _ in range(15):
        SocialAccountFactory(team=org["north_centre"])
    with CaptureQueriesContext(connection) as many:
        client.get("/accounts/")

    assert len(many) == len(few)


def test_signing_out_ends_a_connect_under_way(client, admin, org, mastodon):
    """Signing in again (a new session) loses a connect under way: its answer is refused."""
    client.force_login(admin)
    started = client.post(
        "/accounts/connect/mastodon/", {"team": org["north"].pk, "server": mastodon.url}
    )
    location = browser_hop(started["Location"])
    client.logout()
    client.post("/login/", {"username": "adam", "password": PASSWORD})

    response = come_back(client, location)

    assert response.status_code == 400
    assert not SocialAccount.objects.exists()
    assert parse_qs(urlsplit(location).query)["code"]
