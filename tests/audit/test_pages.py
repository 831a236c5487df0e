"""The audit trail page: leads see the events of their subtree, newest first."""

import pytest
from django.db import transaction

from accounts import services
from accounts.models import Role

from ..factories import UserFactory, grant


def test_a_lead_sees_the_events_of_their_subtree_only(client, org, author):
    south_lead = UserFactory(username="sol")
    grant(south_lead, org["south"], Role.LEAD)
    services.team_create(name="North Annex", parent=org["north"], by=None)
    services.team_create(name="South Annex", parent=org["south"], by=None)

    client.force_login(south_lead)
    page = client.get("/audit/").content.decode()
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
    page = client.get("/audit/?action=membership.granted").content.decode()
    assert "membership.granted" in page
    assert "team.created" not in page


@pytest.mark.parametrize("events", [5, 120])
def test_the_audit_page_costs_the_same_queries_whatever_the_trail(
    client, lead, org, events, django_assert_num_queries
):
    from audit.services import record

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
    # session + user, roles (nav), roles (view check), the page of events
    with django_assert_num_queries(5):
        response = client.get("/audit/")
    assert response.status_code == 200
    assert response.content.decode().count("test.event") == min(events, 50)
