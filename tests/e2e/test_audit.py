"""The audit trail in a real browser: a lead filters it, downloads what they see as CSV, and the
page passes axe-core."""

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from accounts.services import membership_grant, team_create

from ..factories import PASSWORD
from .conftest import axe_check, login

pytestmark = pytest.mark.browser


def test_a_lead_filters_the_trail_by_action_and_downloads_it_as_csv(
    page, live_server, org, lead, author
):
    team_create(name="East", parent=org["hq"], by=lead)
    membership_grant(user=author, team=org["south"], role=Role.DRAFTER, by=lead)
    membership_grant(user=author, team=org["north_centre"], role=Role.APPROVER, by=lead)
    login(page, live_server, "lena", PASSWORD)
    page.goto(f"{live_server.url}/audit/")
    table = page.get_by_role("table", name="Audit events, newest first")
    expect(table.get_by_role("cell", name="team.created")).to_have_count(1)

    page.get_by_label("Action", exact=True).fill("membership.*")
    page.get_by_role("button", name="Filter").click()

    page.wait_for_url(re.compile(r"/audit/\?.*action=membership.*"))
    expect(page.get_by_label("Action", exact=True)).to_have_value("membership.*")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.get_by_role("cell", name="membership.granted")).to_have_count(2)
    expect(table.get_by_role("cell", name="team.created")).to_have_count(0)
    axe_check(page, "audit-trail-filtered")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV", exact=True).click()
    download = download_info.value

    assert re.fullmatch(r"audit-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8", newline="") as file:
        text = file.read()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.startswith("seq,at,actor,actor_name,action,object_type,object_id,team,")
    assert [row["action"] for row in rows] == ["membership.granted", "membership.granted"]
    assert [row["team_name"] for row in rows] == ["South", "North Centre"]
    assert {row["actor_name"] for row in rows} == {"lena"}


def test_a_lead_verifies_an_event_from_the_trail_and_downloads_the_verifier(
    page, live_server, org, lead
):
    team_create(name="East", parent=org["hq"], by=lead)
    login(page, live_server, "lena", PASSWORD)
    page.goto(f"{live_server.url}/audit/")
    table = page.get_by_role("table", name="Audit events, newest first")
    row = table.locator("tbody tr").filter(has_text="team.created")

    row.get_by_role("link", name=re.compile(r"^Verify")).click()

    page.wait_for_url(re.compile(r"/audit/events/\d+/verify/$"))
    expect(page.get_by_role("status")).to_contain_text(
        re.compile(r"verified: included in the tree of \d+ events signed by cxhub\.test/audit\+")
    )
    expect(page.locator("#leaf-data")).to_contain_text('"action":"team.created"')
    axe_check(page, "audit-verify")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="the verifier").click()
    assert download_info.value.suggested_filename == "verifier.py"
