"""Password pages in a real browser, as a person uses them: "Forgot password?" on the sign-in
page, the e-mailed link, a breached password refused beside its field, then "Change password"
from the menu; every page passes axe-core."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts import tasks

from ..factories import PASSWORD
from .conftest import axe_check, login

pytestmark = pytest.mark.browser

NEW = "plum-orbit-lantern-42"
NEWER = "quiet-harbour-meadow-77"


def test_a_person_resets_a_forgotten_password_then_changes_it(
    page, live_server, author, monkeypatch
):
    # The reset e-mail's task runs in the server's thread, as a worker would run it.
    monkeypatch.setattr(
        tasks.send_password_reset, "delay", lambda **kw: tasks.send_password_reset.apply(kwargs=kw)
    )
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Forgot password?").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    axe_check(page, "password-reset")
    page.get_by_label("E-mail address").fill("alice@agency.example")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    axe_check(page, "password-reset-sent")

    [message] = mail.outbox
    [url] = re.findall(r"https?://\S+", message.body)
    page.goto(live_server.url + urlsplit(url).path)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    assert "set-password" in page.url  # the token left the address bar
    page.get_by_label("New password", exact=True).fill("Password2024!")
    page.get_by_label("New password again").fill("Password2024!")
    page.get_by_role("button", name="Set the new password").click()
    field = page.get_by_label("New password", exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(re.compile("known from data breaches"))
    expect(page.get_by_role("alert")).to_contain_text("New password: This password is known")
    axe_check(page, "password-reset-refused")

    page.get_by_label("New password", exact=True).fill(NEW)
    page.get_by_label("New password again").fill(NEW)
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url(f"{live_server.url}/login/")
    expect(page.get_by_role("status")).to_contain_text("Your password was reset")

    login(page, live_server, "alice", NEW)
    page.get_by_role("link", name="Change password").click()
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    axe_check(page, "password-change")
    page.get_by_label("Current password").fill(NEW)
    page.get_by_label("New password", exact=True).fill(NEWER)
    page.get_by_label("New password again").fill(NEWER)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("status")).to_contain_text("Your password was changed")
    author.refresh_from_db()
    assert author.check_password(NEWER) and not author.check_password(PASSWORD)
