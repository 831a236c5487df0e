"""Every page we have, in a real browser: it works with the keyboard and mouse, and axe-core finds
no serious or critical WCAG 2.2 AA violation on it."""

import pytest
from playwright.sync_api import expect

from accounts.services import team_create

from ..factories import PASSWORD
from .conftest import axe_check, login

pytestmark = pytest.mark.browser


def _focus_top_of_page(page) -> None:
    """Put keyboard focus where a person arriving from the address bar has it: before the first
    element. (The login form's autofocus has already put it in Username.)"""
    page.evaluate(
        """() => {
            document.activeElement.blur();
            const root = document.documentElement;
            root.tabIndex = -1;
            root.focus();
            root.removeAttribute('tabindex');
        }"""
    )


def test_the_login_page_passes_axe(page, live_server, db):
    page.goto(f"{live_server.url}/login/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to cxhub")
    expect(page.get_by_label("Username")).to_be_focused()

    axe_check(page, "login")


def test_a_wrong_password_shows_the_error_beside_the_form_and_passes_axe(page, live_server, author):
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    card = page.locator("section", has=page.locator("form"))
    alert = card.get_by_role("alert")
    expect(alert).to_contain_text("Wrong username or password")
    for field in ("Username", "Password"):
        expect(page.get_by_label(field)).to_have_attribute("aria-describedby", "login-errors")
        expect(page.get_by_label(field)).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(f"{live_server.url}/login/")
    axe_check(page, "login-wrong-password")


def test_signing_in_with_the_keyboard_only_lands_on_the_dashboard(page, live_server, author):
    page.goto(f"{live_server.url}/login/")
    skip_link = page.get_by_role("link", name="Skip to content")
    expect(skip_link).not_to_be_in_viewport()
    _focus_top_of_page(page)

    page.keyboard.press("Tab")
    expect(skip_link).to_be_focused()
    expect(skip_link).to_be_in_viewport()

    username = page.get_by_label("Username")
    for _ in range(5):
        page.keyboard.press("Tab")
        if username.evaluate("el => el === document.activeElement"):
            break
    expect(username).to_be_focused()
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")

    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def test_the_dashboard_passes_axe(page, live_server, author, north_account):
    login(page, live_server, "alice", PASSWORD)

    expect(page.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    expect(page.get_by_text("Drafter of North")).to_be_visible()
    expect(page.get_by_role("table", name="Accounts by network")).to_be_visible()
    axe_check(page, "dashboard")


def test_the_teams_page_passes_axe(page, live_server, lead):
    login(page, live_server, "lena", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Teams").click()

    page.wait_for_url(f"{live_server.url}/teams/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Teams")
    expect(page.get_by_role("listitem").filter(has_text="North Centre")).to_be_visible()
    axe_check(page, "teams")


def test_the_social_accounts_page_passes_axe(page, live_server, author, north_account):
    login(page, live_server, "alice", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Social accounts").click()

    page.wait_for_url(f"{live_server.url}/accounts/")
    table = page.get_by_role("table", name="Social accounts you can see")
    expect(table.get_by_role("cell", name="@north_centre")).to_be_visible()
    axe_check(page, "social-accounts")


def test_the_audit_trail_passes_axe(page, live_server, org, lead):
    team_create(name="East", parent=org["hq"], by=lead)
    team_create(name="East Centre", parent=org["hq"], by=lead)
    login(page, live_server, "lena", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit trail").click()

    page.wait_for_url(f"{live_server.url}/audit/")
    table = page.get_by_role("table", name="Audit events, newest first")
    expect(table.get_by_role("cell", name="team.created")).to_have_count(2)
    axe_check(page, "audit-trail")


def test_signing_out_from_the_header_returns_to_the_login_page(page, live_server, author):
    login(page, live_server, "alice", PASSWORD)

    page.get_by_role("banner").get_by_role("button", name="Sign out").click()

    page.wait_for_url(f"{live_server.url}/login/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to cxhub")
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
