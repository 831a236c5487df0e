"""The API token pages in a real browser: a person makes a token, copies it from the one page
that shows it, uses it, and revokes it; an administrator revokes a token of one of their people.
Each page passes axe-core."""

import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from accounts import tokens
from accounts.models import ApiToken, Role

from ..factories import PASSWORD, UserFactory, grant
from .conftest import axe_check, login

pytestmark = pytest.mark.browser


def test_a_person_makes_uses_and_revokes_a_token(page, live_server, author):
    login(page, live_server, "alice", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    page.wait_for_url(f"{live_server.url}/tokens/")
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()
    axe_check(page, "tokens-empty")

    form = page.get_by_role("form", name="Make a new token")
    form.get_by_label("Name").fill("Weekly report")
    form.get_by_label("Expires after (days)").fill("30")
    form.get_by_label("Read-only").check()
    form.get_by_role("button", name="Make token").click()

    secret_box = page.get_by_role("textbox", name="Token")
    expect(secret_box).to_be_focused()
    expect(page.get_by_text("shown only this once")).to_be_visible()
    secret = secret_box.input_value()
    table = page.get_by_role("table", name="Your API tokens, newest first")
    row = table.get_by_role("row").filter(has_text="Weekly report")
    expect(row.get_by_role("cell", name="Read-only")).to_be_visible()
    axe_check(page, "tokens-new-secret")

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert client.get("/api/v1/me/").status_code == 200

    page.goto(f"{live_server.url}/tokens/")  # the list again: the secret is gone for good
    expect(page.get_by_role("textbox", name="Token")).to_have_count(0)
    assert secret not in page.content()

    row = page.get_by_role("row").filter(has_text="Weekly report")
    row.get_by_role("link", name="Revoke Weekly report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke the token “Weekly report”?")
    axe_check(page, "token-revoke")
    page.get_by_role("button", name="Revoke “Weekly report”").click()

    page.wait_for_url(f"{live_server.url}/tokens/")
    expect(page.get_by_role("status")).to_contain_text("Revoked the token “Weekly report”")
    row = page.get_by_role("row").filter(has_text="Weekly report")
    expect(row.get_by_role("cell").filter(has_text="Revoked")).to_be_visible()
    assert client.get("/api/v1/me/").status_code == 401


def test_an_admin_revokes_a_token_of_one_of_their_people(page, live_server, author, org):
    admin = UserFactory(username="nora")
    grant(admin, org["north"], Role.ADMIN)
    issued = tokens.api_token_create(user=author, name="Alice's laptop", by=author)

    login(page, live_server, "nora", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People's tokens").click()
    page.wait_for_url(f"{live_server.url}/tokens/people/")
    table = page.get_by_role("table", name="Live API tokens of your people, newest first")
    expect(table.get_by_role("cell", name="Alice's laptop", exact=True)).to_be_visible()
    axe_check(page, "tokens-people")

    table.get_by_role("link", name="Revoke Alice's laptop of alice").click()
    page.get_by_role("button", name="Revoke “Alice's laptop”").click()

    page.wait_for_url(f"{live_server.url}/tokens/people/")
    expect(page.get_by_role("status")).to_contain_text("of alice: it no longer works")
    expect(page.get_by_text("None of your people has a live API token.")).to_be_visible()
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_by == admin
