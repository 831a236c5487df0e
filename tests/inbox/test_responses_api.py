"""The approved responses' API: read by everyone with a role (those of their teams and of the
teams above), kept by leads, every error naming its field, and a list whose cost does not grow."""

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from inbox import responses
from inbox.models import ApprovedResponse

pytestmark = pytest.mark.django_db

LINE = "We never ask for bank details by text. Report the message to 7726."


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def fields(response) -> dict:
    return response.json()["extra"]["fields"]


def keep(lead, team, title="Scam texts", body=LINE):
    return responses.response_create(by=lead, team_id=team.pk, title=title, body=body)


@pytest.fixture
def kept(org, lead):
    """One response at HQ, one at North, one at North Centre, one at South."""
    return {
        name: keep(lead, org[name], title=f"{name} line")
        for name in ("hq", "north", "north_centre", "south")
    }


def titles(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["title"] for row in response.json()["results"]}


def test_a_lead_adds_a_response_and_reads_it_back(org, lead):
    response = api(lead).post(
        "/api/v1/responses/",
        {"team": org["north"].pk, "title": "  Scam   texts ", "body": LINE},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    kept = ApprovedResponse.objects.get()
    assert body == {
        "id": kept.pk,
        "team": org["north"].pk,
        "team_name": "North",
        "title": "Scam texts",
        "body": LINE,
        "active": True,
        "created_by": lead.pk,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert api(lead).get(f"/api/v1/responses/{kept.pk}/").json() == body
    assert AuditEvent.objects.filter(action="inbox.response_created").count() == 1


def test_i_read_the_responses_of_my_teams_and_of_the_teams_above(org, kept, author, outsider, lead):
    # alice drafts for North: North Centre is below it, HQ above; South is beside it.
    assert titles(api(author).get("/api/v1/responses/")) == {
        "hq line",
        "north line",
        "north_centre line",
    }
    assert titles(api(outsider).get("/api/v1/responses/")) == {"hq line", "south line"}
    assert len(titles(api(lead).get("/api/v1/responses/"))) == 4
    assert api(outsider).get(f"/api/v1/responses/{kept['north'].pk}/").status_code == 404


def test_the_team_filter_gives_what_is_offered_to_that_team(org, kept, author):
    offered = api(author).get(f"/api/v1/responses/?team={org['north_centre'].pk}")
    only_north = api(author).get(f"/api/v1/responses/?team={org['north'].pk}")

    assert titles(offered) == {"hq line", "north line", "north_centre line"}
    assert titles(only_north) == {"hq line", "north line"}


@pytest.mark.parametrize(
    "query, field",
    [("team=abc", "team"), ("team=0", "team"), ("active=maybe", "active")],
)
def test_a_bad_filter_is_a_400_naming_it(author, query, field):
    response = api(author).get(f"/api/v1/responses/?{query}")

    assert response.status_code == 400
    assert field in fields(response)


def test_a_team_i_hold_no_role_on_is_a_400_naming_the_team(org, kept, author):
    response = api(author).get(f"/api/v1/responses/?team={org['south'].pk}")

    assert response.status_code == 400
    assert fields(response) == {"team": ["A team you hold a role on."]}


def test_withdrawn_responses_are_listed_only_when_asked(org, kept, lead, author):
    responses.response_update(by=lead, response=kept["north"], active=False)

    assert "north line" not in titles(api(author).get("/api/v1/responses/"))
    assert titles(api(author).get("/api/v1/responses/?active=false")) == {"north line"}


def test_a_drafter_cannot_keep_responses(org, kept, author):
    made = api(author).post(
        "/api/v1/responses/", {"team": org["north"].pk, "title": "Mine", "body": LINE}
    )
    changed = api(author).patch(
        f"/api/v1/responses/{kept['north'].pk}/", {"active": False}, format="json"
    )

    assert made.status_code == 400
    assert fields(made) == {"team": ["No team with this id that you lead."]}
    assert changed.status_code == 403
    assert changed.json()["message"] == "Only a lead of the response's team can change it."
    assert ApprovedResponse.objects.get(pk=kept["north"].pk).active


@pytest.mark.parametrize(
    "values, field",
    [
        ({"title": "", "body": LINE}, "title"),
        ({"title": "   ", "body": LINE}, "title"),
        ({"title": "x" * 201, "body": LINE}, "title"),
        ({"title": "Scam", "body": ""}, "body"),
        ({"title": "Scam", "body": "x" * 5001}, "body"),
        ({"title": "Scam"}, "body"),
        ({"team": "North", "title": "Scam", "body": LINE}, "team"),
        ({"team": 2**64, "title": "Scam", "body": LINE}, "team"),
        ({"team": None, "title": "Scam", "body": LINE}, "team"),
    ],
)
def test_a_bad_response_is_a_400_naming_the_field(org, lead, values, field):
    response = api(lead).post(
        "/api/v1/responses/", {"team": org["north"].pk, **values}, format="json"
    )

    assert response.status_code == 400
    assert field in fields(response)
    assert not ApprovedResponse.objects.exists()


def test_a_lead_changes_withdraws_and_restores_a_response(org, kept, lead, author):
    url = f"/api/v1/responses/{kept['north'].pk}/"

    changed = api(lead).patch(url, {"body": LINE + " Thank you."}, format="json")
    withdrawn = api(lead).patch(url, {"active": False}, format="json")
    # A form that leaves `active` out changes nothing of it (it is not read as false).
    titled = api(lead).patch(url, {"title": "North scam texts"})

    assert changed.status_code == 200 and changed.json()["body"].endswith("Thank you.")
    assert withdrawn.json()["active"] is False
    assert (titled.json()["title"], titled.json()["active"]) == ("North scam texts", False)
    restored = api(lead).patch(url, {"active": True}, format="json")
    assert restored.json()["active"] is True
    assert AuditEvent.objects.filter(action="inbox.response_changed").count() == 4
    assert api(lead).patch(url, {"title": ""}, format="json").status_code == 400
    assert api(author).patch("/api/v1/responses/999999/", {}, format="json").status_code == 404


@pytest.mark.parametrize("count", [2, 30])
def test_the_list_costs_the_same_queries(org, lead, author, count, django_assert_num_queries):
    for n in range(count):
        keep(lead, org[("hq", "north", "north_centre")[n % 3]], title=f"Line {n}")

    with django_assert_num_queries(1):
        response = api(author).get("/api/v1/responses/?page_size=100")
    assert len(response.json()["results"]) == count
    with django_assert_num_queries(2):  # the team, then the page
        api(author).get(f"/api/v1/responses/?team={org['north'].pk}&page_size=100")


def test_the_schema_documents_the_responses(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    listed = schema["paths"]["/api/v1/responses/"]
    assert {"get", "post"} <= set(listed)
    assert {p["name"] for p in listed["get"]["parameters"]} >= {"team", "active"}
    assert {"get", "patch"} <= set(schema["paths"]["/api/v1/responses/{response_id}/"])
    assert "403" in schema["paths"]["/api/v1/responses/{response_id}/"]["patch"]["responses"]
