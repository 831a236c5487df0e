"""Connecting an account in a real browser: an admin goes from the accounts page to the
Mastodon test server's authorize page and back, and sees the account listed; every page on the
way passes axe. Then the same account needing a reconnect, and its disconnect confirmation."""

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from networks.models import SocialAccount
from networks.services import social_account_needs_reconnect

from ..factories import PASSWORD, UserFactory, grant
from ..publishing.networks.mastodon_server import MastodonServer
from .conftest import axe_check, login

pytestmark = pytest.mark.browser


@pytest.fixture
def mastodon(settings, monkeypatch):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    settings.CXHUB_NETWORK_TIMEOUT_SECONDS = 30.0  # never late on a loaded machine
    settings.CXHUB_PUBLIC_URL = ""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    server = MastodonServer().start()
    yield server
    server.stop()


@pytest.fixture
def admin(org):
    user = UserFactory(username="adam")
    grant(user, org["north"], Role.ADMIN)
    return user


def test_an_admin_connects_a_mastodon_account_and_sees_it_listed(
    page, live_server, admin, mastodon
):
    login(page, live_server, "adam", PASSWORD)
    page.goto(f"{live_server.url}/accounts/")
    axe_check(page, "social-accounts-empty")

    page.get_by_role("link", name="Connect an account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Connect an account")
    axe_check(page, "connect")
    page.get_by_role("link", name="Connect a Mastodon account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Connect a Mastodon account")
    axe_check(page, "connect-mastodon")

    # A server address that is refused is shown beside its field
    page.get_by_label("Team").select_option(label="North")
    page.get_by_label("Server address").fill("http://10.9.8.7")
    page.get_by_role("button", name="Continue to Mastodon").click()
    expect(page.get_by_role("alert")).to_contain_text("not a public address")
    expect(page.get_by_label("Server address")).to_have_attribute("aria-invalid", "true")
    axe_check(page, "connect-mastodon-refused")

    # The real server address: to its authorize page, which approves and sends us back
    page.get_by_label("Server address").fill(mastodon.url)
    page.get_by_role("button", name="Continue to Mastodon").click()
    page.wait_for_url(f"{live_server.url}/accounts/**")

    expect(page.get_by_text("Connected @north@mastodon.test on Mastodon (North).")).to_be_visible()
    row = page.get_by_role("row", name="@north@mastodon.test")
    expect(row).to_contain_text("Connected")
    expect(row).to_contain_text("North")
    assert ("GET", "/oauth/authorize") in mastodon.requests
    axe_check(page, "social-accounts-connected")

    # When the network refuses it later, the list says so loudly, with a way back
    account = SocialAccount.objects.get()
    social_account_needs_reconnect(account_id=account.pk, error="The access token is invalid")
    page.reload()
    expect(page.get_by_text("1 account needs reconnecting.")).to_be_visible()
    expect(row).to_contain_text("Needs reconnect")
    axe_check(page, "social-accounts-needs-reconnect")
    row.get_by_role("link", name="Reconnect").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reconnect @north@mastodon.test")
    axe_check(page, "connect-reconnect")
    page.get_by_role("button", name="Continue to Mastodon").click()
    page.wait_for_url(f"{live_server.url}/accounts/**")
    expect(page.get_by_text("Reconnected @north@mastodon.test")).to_be_visible()
    expect(page.get_by_role("row", name="@north@mastodon.test")).to_contain_text("Connected")

    # Disconnecting asks first
    page.get_by_role("row", name="@north@mastodon.test").get_by_role(
        "link", name="Disconnect"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Disconnect @north@mastodon.test?")
    axe_check(page, "connect-disconnect")
    page.get_by_role("button", name="Disconnect @north@mastodon.test").click()
    page.wait_for_url(f"{live_server.url}/accounts/**")
    expect(page.get_by_role("row", name="@north@mastodon.test")).to_contain_text("Disconnected")
    assert mastodon.revoked
