"""The agency's approved responses (inbox/responses.py): kept by a team's leads, offered to the
team and the teams below it, audited."""

import pytest

from audit.models import AuditEvent
from cxhub.errors import ApplicationError, NotAllowed
from inbox import responses

pytestmark = pytest.mark.django_db

LINE = "We never ask for bank details by text. Report the message to 7726."


def test_a_lead_keeps_a_response_offered_below_and_not_beside(org, lead, author):
    kept = responses.response_create(by=lead, team_id=org["hq"].pk, title="Scam texts", body=LINE)

    assert list(responses.responses_for(team=org["north_centre"])) == [kept]
    assert list(responses.responses_for(team=org["hq"])) == [kept]
    north_only = responses.response_create(
        by=lead, team_id=org["north"].pk, title="North roadworks", body="The A1 reopens Monday."
    )
    assert north_only not in responses.responses_for(team=org["south"])
    assert AuditEvent.objects.filter(action="inbox.response_created").count() == 2


def test_only_leads_keep_responses_and_errors_name_the_field(org, lead, author):
    with pytest.raises(ApplicationError) as caught:
        responses.response_create(by=author, team_id=org["north"].pk, title="x", body="y")
    assert "team" in caught.value.extra["fields"]
    for title, body, field in [
        ("", LINE, "title"),
        ("Scam", " ", "body"),
        ("x" * 201, LINE, "title"),
    ]:
        with pytest.raises(ApplicationError) as caught:
            responses.response_create(by=lead, team_id=org["hq"].pk, title=title, body=body)
        assert field in caught.value.extra["fields"]
    kept = responses.response_create(by=lead, team_id=org["hq"].pk, title="Scam", body=LINE)
    with pytest.raises(NotAllowed):
        responses.response_update(by=author, response=kept, active=False)


def test_a_withdrawn_response_is_offered_no_more_and_the_change_is_audited(org, lead):
    kept = responses.response_create(by=lead, team_id=org["hq"].pk, title="Scam", body=LINE)

    responses.response_update(by=lead, response=kept, body=LINE + " Thank you.", active=False)

    assert not responses.responses_for(team=org["north"]).exists()
    event = AuditEvent.objects.get(action="inbox.response_changed")
    assert event.data["changed"]["active"] == [True, False]
    assert event.data["changed"]["body"][1].endswith("Thank you.")
