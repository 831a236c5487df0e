"""The page where leads keep the approved responses (/inbox/responses/), through Django's test
client: the list a person may read, a new response (errors beside their fields, with the
status), withdraw and restore, refusals (400 a team one does not lead, 403 not a lead of the
response's team, 404 what one may not read), linked from the inbox, and a cost that does not
grow with the responses."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from audit.models import AuditEvent
from inbox import responses
from inbox.models import ApprovedResponse

from ..factories import UserFactory, grant

pytestmark = pytest.mark.django_db

LINE = "We never ask for bank details by text. Report the message to 7726."


def html(response) -> str:
    return response.content.decode()


def text_of(response) -> str:
    page = re.sub(r"</?(?:a|strong|span|time|em|b)\b[^>]*>", "", html(response))
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("&#x27;", "'")


def signed_in(client, user):
    client.force_login(user)
    return client


def keep(lead, team, title="Scam texts", body=LINE):
    return responses.response_create(by=lead, team_id=team.pk, title=title, body=body)


def test_the_inbox_links_the_responses_page(client, author):
    page = html(signed_in(client, author).get("/inbox/"))

    assert '<a href="/inbox/responses/" id="responses-link">Approved responses</a>' in page


def test_a_lead_adds_a_response_to_a_team_they_lead(client, org, lead):
    signed_in(client, lead)
    page = html(client.get("/inbox/responses/"))
    assert "Add a response" in page
    options = re.findall(r'<option value="(\d+)"', page.split('id="response-team"')[1])
    assert set(options) == {str(team.pk) for team in org.values()}

    response = client.post(
        "/inbox/responses/new/",
        {"team": str(org["north"].pk), "title": "Scam texts", "body": LINE},
    )

    assert response.status_code == 302 and response["Location"] == "/inbox/responses/"
    kept = ApprovedResponse.objects.get()
    assert (kept.team, kept.title, kept.body, kept.created_by) == (
        org["north"],
        "Scam texts",
        LINE,
        lead,
    )
    page = text_of(client.get("/inbox/responses/"))
    assert "Added “Scam texts”: it is offered to North and the teams below." in page
    assert f"North Scam texts {LINE}" in page and "Offered" in page
    assert AuditEvent.objects.filter(action="inbox.response_created").count() == 1


@pytest.mark.parametrize(
    "values, field, said",
    [
        ({"title": ""}, "title", "Give the response a title."),
        ({"title": "x" * 201}, "title", "At most 200 characters."),
        ({"body": "  "}, "body", "Write the response."),
        ({"team": "North"}, "team", "Choose a team from the list."),
    ],
)
def test_a_wrong_response_comes_back_beside_its_field(client, org, lead, values, field, said):
    data = {"team": str(org["north"].pk), "title": "Scam texts", "body": LINE, **values}

    response = signed_in(client, lead).post("/inbox/responses/new/", data)

    assert response.status_code == 400
    page = html(response)
    assert re.search(rf'id="response-{field}-error">{re.escape(said)}', page)
    assert re.search(rf'id="response-{field}"[^>]*aria-invalid="true"', page)
    assert "The response was not added: correct what is named below." in page
    if field != "title":
        assert 'value="Scam texts"' in page  # what was typed stays
    assert not ApprovedResponse.objects.exists()


def test_a_drafter_reads_the_responses_but_cannot_keep_them(client, org, lead, author):
    kept = keep(lead, org["hq"])
    signed_in(client, author)

    page = text_of(client.get("/inbox/responses/"))
    made = client.post(
        "/inbox/responses/new/", {"team": str(org["north"].pk), "title": "Mine", "body": LINE}
    )
    withdrawn = client.post(f"/inbox/responses/{kept.pk}/active/", {"active": "0"})

    assert "Scam texts" in page and "Add a response" not in page
    assert "Leads keep the approved responses" in page
    assert 'id="response-withdraw-' not in html(client.get("/inbox/responses/"))
    assert made.status_code == 400
    assert "No team with this id that you lead." in text_of(made)
    assert withdrawn.status_code == 403
    assert "Only a lead of the response's team can change it." in text_of(withdrawn)
    kept.refresh_from_db()
    assert kept.active and ApprovedResponse.objects.count() == 1


def test_a_lead_withdraws_and_restores_a_response(client, org, lead):
    kept = keep(lead, org["north"])
    signed_in(client, lead)
    assert f'id="response-withdraw-{kept.pk}"' in html(client.get("/inbox/responses/"))

    withdrawn = client.post(f"/inbox/responses/{kept.pk}/active/", {"active": "0"})
    page = html(client.get("/inbox/responses/"))
    assert withdrawn.status_code == 302
    assert "Withdrew “Scam texts”: it is offered no more." in page
    assert f'id="response-restore-{kept.pk}"' in page and "Withdrawn" in page
    assert not responses.responses_for(team=org["north"]).exists()

    restored = client.post(f"/inbox/responses/{kept.pk}/active/", {"active": "1"})
    assert restored.status_code == 302
    assert list(responses.responses_for(team=org["north"])) == [kept]
    wrong = client.post(f"/inbox/responses/{kept.pk}/active/", {"active": "maybe"})
    assert wrong.status_code == 400 and "Choose withdraw or restore." in html(wrong)
    assert AuditEvent.objects.filter(action="inbox.response_changed").count() == 2


def test_a_lead_of_north_keeps_norths_responses_not_hqs(client, org, lead):
    hq = keep(lead, org["hq"], title="HQ line")
    north = keep(lead, org["north"], title="North line")
    nora = UserFactory(username="nora")
    grant(nora, org["north"], Role.LEAD)
    signed_in(client, nora)

    page = html(client.get("/inbox/responses/"))

    assert f'id="response-withdraw-{north.pk}"' in page
    assert f'id="response-withdraw-{hq.pk}"' not in page
    assert "Kept by the leads of HQ" in page


def test_a_response_i_may_not_read_is_a_404(client, org, lead, outsider):
    north = keep(lead, org["north"], title="North line")
    signed_in(client, outsider)

    assert "North line" not in html(client.get("/inbox/responses/"))
    assert client.post(f"/inbox/responses/{north.pk}/active/", {"active": "0"}).status_code == 404
    assert client.post("/inbox/responses/999999/active/", {"active": "0"}).status_code == 404


def test_someone_signed_out_is_sent_to_sign_in(client, db):
    for response in (
        client.get("/inbox/responses/"),
        client.post("/inbox/responses/new/", {}),
    ):
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_page_costs_the_same_queries_for_2_and_30_responses(
    client, org, lead, django_assert_num_queries
):
    for n in range(2):
        keep(lead, org["north"], title=f"Line {n}")
    signed_in(client, lead)
    with CaptureQueriesContext(connection) as baseline:
        assert client.get("/inbox/responses/").status_code == 200

    for n in range(2, 30):
        keep(lead, org[("hq", "north", "south_centre")[n % 3]], title=f"Line {n}")
    with django_assert_num_queries(len(baseline.captured_queries)):
        response = client.get("/inbox/responses/")
    assert html(response).count('id="response-row-') == 30
