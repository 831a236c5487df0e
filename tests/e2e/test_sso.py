"""Single sign-on in the real browser: the login page with its "Sign in with …" button passes
axe, and a person signs in through the real OpenID Connect provider (tests/sso/oidc_idp) by
clicking it, typing their password at the provider, and landing on their dashboard."""

import pytest
import requests
from playwright.sync_api import expect

from accounts.models import Role, User
from sso import services
from tests.sso.conftest import CLIENT_ID, CLIENT_SECRET, new_username, oidc_idp  # noqa: F401

from .conftest import axe_check

pytestmark = pytest.mark.browser


@pytest.fixture
def oidc_live(oidc_idp, live_server, settings):  # noqa: F811 (the imported fixture)
    callback = f"{live_server.url}/sso/oidc/callback/"
    requests.post(
        f"{oidc_idp.url}/test/client/redirect-uris/", json={"redirect_uri": callback}, timeout=10
    ).raise_for_status()
    settings.CXHUB_OIDC_ISSUER = oidc_idp.issuer
    settings.CXHUB_OIDC_CLIENT_ID = CLIENT_ID
    settings.CXHUB_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.CXHUB_OIDC_NAME = "Agency ID"
    settings.CXHUB_OIDC_SCOPES = "openid email profile groups"
    return oidc_idp


def test_a_person_signs_in_through_the_provider_in_the_browser(page, live_server, oidc_live, org):
    services.sso_rule_create(
        claim="groups", value="cx-north-drafters", team=org["north"], role=Role.DRAFTER, by=None
    )
    username = new_username()
    oidc_live.person(username, groups=["cx-north-drafters"], password="provider-pw-1")

    page.goto(f"{live_server.url}/login/")
    button = page.get_by_role("link", name="Sign in with Agency ID")
    expect(button).to_be_visible()
    axe_check(page, "login-with-sso")
    button.click()
    page.wait_for_url(f"{oidc_live.url}/login/**")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill("provider-pw-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")

    expect(page.get_by_text("North")).not_to_have_count(0)
    user = User.objects.get(username=username)
    assert set(user.memberships.values_list("team__slug", "role")) == {("north", "drafter")}


def test_the_failed_sign_in_page_passes_axe(page, live_server, oidc_live):
    page.goto(f"{live_server.url}/sso/oidc/callback/?error=access_denied&state=gone")

    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in with Agency ID failed")
    expect(page.get_by_role("alert")).to_contain_text("access_denied")
    axe_check(page, "sso-failed")
