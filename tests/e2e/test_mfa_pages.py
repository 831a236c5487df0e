"""The authenticator-app and recovery-code pages in the real browser, axe-checked: an admin
scans nothing but types the key the page shows into this test's own TOTP (RFC 6238), makes
recovery codes, and signs in again with a code."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Role

from ..accounts.test_mfa import now, totp
from ..factories import PASSWORD, UserFactory, grant
from .conftest import axe_check

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def mfa_for_leads_and_admins(settings):
    settings.CXHUB_MFA_REQUIRED_ROLES = ["lead", "admin"]


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_an_admin_adds_an_app_makes_recovery_codes_and_signs_in_with_a_code(page, live_server, org):
    admin = UserFactory(username="adam", is_staff=True)
    grant(admin, org["hq"], Role.ADMIN)
    base = live_server.url

    sign_in(page, base, "adam")
    page.wait_for_url(re.compile(r"/security/"))
    page.get_by_role("link", name="Add an authenticator app").click()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    axe_check(page, "mfa-totp-add")
    secret = page.locator("#totp-secret").inner_text()

    page.get_by_label("Code from the app").fill("000000")
    page.get_by_role("button", name="Add the app").click()
    expect(page.get_by_label("Code from the app")).to_have_attribute("aria-invalid", "true")
    axe_check(page, "mfa-totp-add-wrong-code")
    page.get_by_label("Code from the app").fill(totp(secret, now()))
    page.get_by_role("button", name="Add the app").click()
    page.wait_for_url(f"{base}/security/")
    expect(page.locator(".messages")).to_contain_text("Authenticator app added")
    axe_check(page, "security")

    page.get_by_role("button", name=re.compile("Make new recovery codes")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    axe_check(page, "mfa-recovery-codes")

    # The admin site is open to this verified session.
    page.goto(f"{base}/admin/")
    expect(page).to_have_url(f"{base}/admin/")

    page.goto(f"{base}/")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "adam")
    page.wait_for_url(re.compile(r"/login/verify/"))
    axe_check(page, "mfa-verify")
    page.get_by_label("One of your recovery codes").fill(codes[0])
    page.get_by_role("button", name="Use recovery code").click()
    page.wait_for_url(f"{base}/")
