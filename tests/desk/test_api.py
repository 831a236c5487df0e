"""`GET /api/v1/audit/events/`: a lead's subtree, filtered, newest first, a keyset page at a
time; errors as `{"message", "extra": {"fields"}}`."""

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from audit.services import record

from ..factories import UserFactory

URL = "/api/v1/audit/events/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def actions(response) -> list[str]:
    return [event["action"] for event in response.json()["results"]]


def test_a_lead_lists_their_subtree_newest_first(lead, trail):
    response = api(lead).get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [event["seq"] for event in body["results"]] == sorted(
        (event.seq for name, event in trail.items() if name != "login_failed"), reverse=True
    )


def test_each_event_reads_with_its_ids_names_data_and_hashes(lead, author, org, trail):
    event = trail["north_centre.post_created"]

    results = api(lead).get(URL, {"object_type": "publishing.post", "object_id": "101"}).json()

    assert results["results"][-1] == {
        "seq": event.seq,
        "at": "2025-03-02T10:00:00Z",
        "actor": author.pk,
        "actor_name": "alice",
        "action": "post.created",
        "object_type": "publishing.post",
        "object_id": "101",
        "team": org["north_centre"].pk,
        "team_name": "North Centre",
        "data": {"body": "Hello North"},
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def test_a_superuser_sees_events_of_no_team_with_null_team(trail):
    root = UserFactory(username="root", is_superuser=True)

    results = api(root).get(URL, {"action": "auth.login_failed"}).json()["results"]

    assert [(event["team"], event["team_name"], event["actor"]) for event in results] == [
        (None, None, None)
    ]


def test_a_south_lead_does_not_list_north_events(south_lead, trail):
    response = api(south_lead).get(URL)

    assert actions(response) == ["membership.granted", "post.created"]
    assert {event["team_name"] for event in response.json()["results"]} == {
        "South",
        "South Centre",
    }


def test_a_south_lead_filtering_on_north_gets_a_404(south_lead, org, trail):
    response = api(south_lead).get(URL, {"team": org["north"].pk})

    assert response.status_code == 404
    assert response.json() == {
        "message": "No team with this id among the teams you lead.",
        "extra": {"fields": {"team": ["No team with this id among the teams you lead."]}},
    }


def test_an_unknown_team_is_the_same_404(south_lead, trail):
    response = api(south_lead).get(URL, {"team": 999_999})

    assert response.status_code == 404
    assert "team" in response.json()["extra"]["fields"]


def test_people_who_lead_nothing_get_a_404(author, approver, trail):
    for user in (author, approver):
        response = api(user).get(URL)
        assert response.status_code == 404
        assert response.json() == {"message": "Not found.", "extra": {}}


def test_anonymous_requests_are_refused(trail):
    assert APIClient().get(URL).status_code in (401, 403)


def test_filters_apply(lead, author, org, trail):
    client = api(lead)

    assert actions(client.get(URL, {"team": org["north"].pk, "action": "post.*"})) == [
        "post.submitted",
        "post.created",
    ]
    assert actions(client.get(URL, {"actor": author.pk})) == ["post.submitted", "post.created"]
    assert actions(client.get(URL, {"actor": "alice", "action": "post.created"})) == [
        "post.created"
    ]
    between = {"since": "2025-03-03T12:00:00+01:00", "until": "2025-03-06"}
    assert actions(client.get(URL, between)) == [
        "post.submitted",
        "membership.granted",
        "post.created",
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "last tuesday"}, "since"),
        ({"until": "2025-03-01T10:00:00"}, "until"),
        ({"team": "north"}, "team"),
        ({"actor": "99999999999999999999"}, "actor"),
        ({"object_id": "101"}, "object_id"),
        ({"format": "xlsx"}, "format"),
        ({"format": "xlsx", "since": "nope"}, "format"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(lead, trail, params, field):
    response = api(lead).get(URL, params)

    assert response.status_code == 400
    body = response.json()
    assert body["message"].startswith(f"{field}: ")
    assert field in body["extra"]["fields"]


def test_format_json_is_the_paginated_list(lead, trail):
    response = api(lead).get(URL, {"format": "json"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 6


def test_keyset_pages_walk_every_event_exactly_once(lead, org):
    with transaction.atomic():
        for n in range(23):
            record(actor=lead, action="test.event", team=org["south"], data={"n": n})
    client = api(lead)

    seen, url, pages = [], f"{URL}?page_size=5&action=test.event", 0
    while url:
        body = client.get(url).json()
        seen += [event["data"]["n"] for event in body["results"]]
        url, pages = body["next"], pages + 1
        if url:
            assert "action=test.event" in url

    assert seen == list(reversed(range(23)))
    assert pages == 5


def test_a_page_keeps_its_place_when_new_events_arrive(lead, org):
    with transaction.atomic():
        for n in range(4):
            record(actor=lead, action="test.event", team=org["south"], data={"n": n})
    client = api(lead)
    first = client.get(URL, {"page_size": 2}).json()

    with transaction.atomic():
        record(actor=lead, action="test.event", team=org["south"], data={"n": 4})
    second = client.get(first["next"]).json()

    assert [event["data"]["n"] for event in second["results"]] == [1, 0]


@pytest.mark.parametrize("size", [10, 200])
@pytest.mark.parametrize("filtered", [False, True], ids=["all", "by-team"])
def test_a_page_costs_the_same_queries_whatever_the_trail(
    lead, org, size, filtered, django_assert_num_queries
):
    with transaction.atomic():
        for n in range(size):
            record(actor=lead, action="test.event", team=org["north_centre"], data={"n": n})
    client = api(lead)
    params = {"team": org["north"].pk, "actor": "lena"} if filtered else {}

    # the scope (which also finds the team), the page of events
    with django_assert_num_queries(2):
        response = client.get(URL, params)

    assert len(response.json()["results"]) == min(size, 50)


def test_the_schema_documents_the_endpoint(client):
    schema = client.get("/api/schema/")

    assert schema.status_code == 200
    assert b"/api/v1/audit/events/" in schema.content
