"""Passkeys in the real browser: Chromium with a virtual authenticator (the DevTools protocol's
WebAuthn domain), under a Content-Security-Policy that allows no inline script, so the ceremony
runs on django-otp-webauthn's static scripts and our own alone.

WebAuthn needs a secure context and a domain for its relying party (an IP address is not one):
the pages are opened at http://localhost:<port>, and the relying party is that host."""

import re

import pytest
from django_otp_webauthn.models import WebAuthnCredential
from playwright.sync_api import expect

from audit.models import AuditEvent

from ..factories import PASSWORD
from .conftest import axe_check

pytestmark = pytest.mark.browser

# Scripts only from this origin, none inline, no eval: what matters for these pages' scripts.
STRICT_CSP = "script-src 'self'; object-src 'none'; base-uri 'none'"


@pytest.fixture(autouse=True)
def mfa_for_leads_and_admins(settings):
    settings.CXHUB_MFA_REQUIRED_ROLES = ["lead", "admin"]


@pytest.fixture
def origin(live_server) -> str:
    return live_server.url.replace("127.0.0.1", "localhost")


@pytest.fixture
def strict_page(page):
    """Every page served with a CSP without 'unsafe-inline' (the header cxhub's own CSP will
    send is another piece of work): a violation is recorded and fails the test."""

    def add_csp(route):
        if route.request.resource_type != "document":
            route.continue_()
            return
        # Redirects go back to the browser, which follows them itself (and keeps the URL true).
        response = route.fetch(max_redirects=0)
        headers = {**response.headers, "content-security-policy": STRICT_CSP}
        route.fulfill(response=response, headers=headers)

    page.route("**/*", add_csp)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.violations = violations
    return page


@pytest.fixture
def authenticator(strict_page):
    """A platform authenticator that holds resident keys and verifies its user at once."""
    cdp = strict_page.context.new_cdp_session(strict_page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    yield cdp, added["authenticatorId"]
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": added["authenticatorId"]})


def sign_in_with_password(page, origin: str, username: str) -> None:
    page.goto(f"{origin}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_lead_adds_a_passkey_and_signs_in_with_it(strict_page, authenticator, origin, lead):
    page = strict_page
    cdp, authenticator_id = authenticator

    # A lead without a second factor lands on the security page and can go nowhere else.
    sign_in_with_password(page, origin, "lena")
    page.wait_for_url(re.compile(r"/security/\?next="))
    expect(page.get_by_role("alert")).to_contain_text("Your role needs a second factor")
    axe_check(page, "security-enrol")

    page.get_by_role("button", name="Add a passkey").click()
    # The page reloads once the passkey is stored, and lists it.
    expect(page.get_by_role("button", name=re.compile(r"^Remove "))).to_be_visible()
    credential = WebAuthnCredential.objects.get(user=lead)
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    assert len(stored["credentials"]) == 1
    assert AuditEvent.objects.get(action="mfa.device_added").data["kind"] == "passkey"
    # Adding the first passkey verified this session.
    page.goto(f"{origin}/")
    expect(page.get_by_role("heading", level=1)).not_to_have_text("Sign-in security")
    expect(page).to_have_url(f"{origin}/")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/"))

    # Next time the password is not enough: the passkey completes the sign-in.
    sign_in_with_password(page, origin, "lena")
    page.wait_for_url(re.compile(r"/login/verify/"))
    axe_check(page, "verify-passkey")
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url(f"{origin}/")
    assert AuditEvent.objects.filter(action="mfa.verified", data__method="passkey").exists()
    credential.refresh_from_db()
    assert credential.last_used_at is not None

    assert page.violations == []


def test_a_passkey_of_another_browser_is_not_accepted(strict_page, authenticator, origin, lead):
    page = strict_page
    cdp, authenticator_id = authenticator
    sign_in_with_password(page, origin, "lena")
    page.wait_for_url(re.compile(r"/security/"))
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("button", name=re.compile(r"^Remove "))).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/"))

    # The key is gone from this browser (another device, a wiped phone): refused, and the
    # failure is recorded; the lead stays on the verify page.
    cdp.send("WebAuthn.clearCredentials", {"authenticatorId": authenticator_id})
    sign_in_with_password(page, origin, "lena")
    page.wait_for_url(re.compile(r"/login/verify/"))
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.locator("#passkey-verification-status-message")).to_contain_text(
        re.compile("canceled|not allowed|failed", re.I)
    )
    page.goto(f"{origin}/")
    expect(page).to_have_url(re.compile(r"/login/verify/"))
    assert page.violations == []
