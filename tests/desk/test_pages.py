"""The audit trail page: leads see the events of their subtree, filtered, newest first."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import transaction

from accounts import services
from accounts.models import Role
from audit.services import record

from ..factories import UserFactory, grant


def page_of(client, params=None) -> str:
    response = client.get("/audit/", params or {})
    assert response.status_code == 200
    return response.content.decode()


def link(page: str, text: str) -> str:
    match = re.search(rf'<a href="([^"]+)"[^>]*>{re.escape(text)}</a>', page)
    assert match, f"no link {text!r}"
    return unescape(match.group(1))


def test_a_lead_sees_the_events_of_their_subtree_only(client, org, author):
    south_lead = UserFactory(username="sol")
    grant(south_lead, org["south"], Role.LEAD)
    services.team_create(name="North Annex", parent=org["north"], by=None)
    services.team_create(name="South Annex", parent=org["south"], by=None)

    client.force_login(south_lead)
    page = page_of(client)
    assert "team.created" in page
    assert "South Annex" in page
    assert "North Annex" not in page


def test_the_audit_page_is_404_for_people_who_do_not_lead(client, author):
    client.force_login(author)
    assert client.get("/audit/").status_code == 404


def test_filtering_by_action(client, lead, org):
    services.team_create(name="Annex", parent=org["north"], by=None)
    services.membership_grant(user=lead, team=org["north"], role=Role.APPROVER, by=None)
    client.force_login(lead)
    page = page_of(client, {"action": "membership.granted"})
    assert "membership.granted" in page
    assert "team.created" not in page


def test_the_form_has_a_labelled_field_for_every_filter(client, lead, trail):
    client.force_login(lead)

    page = page_of(client)

    for name in ("team", "actor", "action", "object_type", "object_id", "since", "until"):
        assert f'<label for="filter-{name}">' in page
        assert f'id="filter-{name}" name="{name}"' in page
    assert 'type="date" id="filter-since"' in page
    assert '<th scope="col">Action</th>' in page
    assert "<caption" in page


def test_the_team_select_offers_only_the_teams_the_lead_may_see(client, south_lead, org, trail):
    client.force_login(south_lead)

    page = page_of(client)

    assert f'<option value="{org["south"].pk}">South</option>' in page
    assert f'<option value="{org["south_centre"].pk}">— South Centre</option>' in page
    assert "North" not in page


def test_filtering_by_team_date_object_and_actor(client, lead, org, trail):
    client.force_login(lead)

    by_team = page_of(client, {"team": org["south"].pk})
    by_date = page_of(client, {"since": "2025-03-02", "until": "2025-03-02"})
    by_object = page_of(client, {"object_type": "publishing.post", "object_id": "102"})
    by_actor = page_of(client, {"actor": "alice"})

    assert by_team.count("<tr>") - 1 == 2
    assert f'<option value="{org["south"].pk}" selected>' in by_team
    assert by_date.count("<tr>") - 1 == 1 and "Hello North" in by_date
    assert by_object.count("<tr>") - 1 == 1 and "publishing.post 102" in by_object
    assert by_actor.count("<tr>") - 1 == 2


def test_a_team_the_lead_does_not_lead_is_a_404(client, south_lead, org, trail):
    client.force_login(south_lead)

    assert client.get("/audit/", {"team": org["north"].pk}).status_code == 404


def test_bad_filters_are_named_beside_their_fields(client, lead, trail):
    client.force_login(lead)

    response = client.get("/audit/", {"since": "soon", "object_id": "7", "action": "post.*"})

    assert response.status_code == 400
    page = response.content.decode()
    assert 'role="alert"' in page
    assert 'aria-describedby="filter-since-error"' in page
    assert 'id="filter-object_id-error"' in page
    assert "Give object_type too" in page
    assert 'value="post.*"' in page  # what was typed stays
    assert "<table" not in page


def test_older_events_keeps_the_filters_and_walks_every_event_once(client, lead, org):
    with transaction.atomic():
        for n in range(120):
            record(actor=lead, action="test.event", team=org["north"], data={"n": n})
        record(actor=lead, action="other.event", team=org["north"])
    client.force_login(lead)

    seen, query, pages = [], {"action": "test.*", "team": str(org["hq"].pk)}, 0
    while query is not None:
        page = page_of(client, query)
        seen += [int(n) for n in re.findall(r"\{&quot;n&quot;: (\d+)\}", page)]
        pages += 1
        query = None
        if "Older events" in page:
            older = parse_qs(urlsplit(link(page, "Older events")).query)
            assert older["action"] == ["test.*"] and older["team"] == [str(org["hq"].pk)]
            query = {key: values[0] for key, values in older.items()}

    assert seen == list(reversed(range(120)))
    assert pages == 3


def test_the_download_links_point_at_the_api_with_the_current_filters(client, lead, trail):
    client.force_login(lead)

    page = page_of(client, {"action": "post.*", "since": "2025-03-02"})

    csv_url = urlsplit(link(page, "CSV"))
    jsonl_url = urlsplit(link(page, "JSON Lines"))
    assert csv_url.path == jsonl_url.path == "/api/v1/audit/events/"
    assert parse_qs(csv_url.query) == {
        "action": ["post.*"],
        "since": ["2025-03-02"],
        "format": ["csv"],
    }
    assert parse_qs(jsonl_url.query)["format"] == ["jsonl"]
    assert client.get(link(page, "CSV")).status_code == 200


@pytest.mark.parametrize("events", [10, 200])
@pytest.mark.parametrize("filtered", [False, True], ids=["all", "filtered"])
def test_the_audit_page_costs_the_same_queries_whatever_the_trail(
    client, lead, org, events, filtered, django_assert_num_queries
):
    with transaction.atomic():
        for index in range(events):
            record(
                actor=lead,
                action="test.event",
                obj=org["north"],
                team=org["north"],
                data={"n": index},
            )
    client.force_login(lead)
    params = {"team": org["north"].pk, "actor": "lena", "action": "test.*"} if filtered else {}
    # session + user, roles (nav), approvals waiting and notifications unread (nav), the scope
    # (also the team select), the page of events; and the integrity box (desk.integrity)
    with django_assert_num_queries(7 + 7):
        response = client.get("/audit/", params)
    assert response.status_code == 200
    assert response.content.decode().count("test.event") == min(events, 50)
