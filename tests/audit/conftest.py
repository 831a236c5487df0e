"""A short recorded chain, and raw SQL as someone with database rights would run it."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection, transaction

from accounts.models import Role
from audit.services import record

from ..dbroles import as_owner
from ..factories import UserFactory, grant


@pytest.fixture
def chain(org, author, lead):
    """Five events, seq 1 to 5, as services would record them."""
    events = []
    with transaction.atomic():
        events.append(
            record(actor=lead, action="team.created", obj=org["north"], team=org["north"])
        )
        events.append(
            record(actor=lead, action="membership.granted", obj=author, team=org["north"])
        )
        events.append(
            record(actor=author, action="post.submitted", obj=author, data={"text": "Hello"})
        )
        events.append(record(actor=None, action="auth.login_failed", data={"username": "eve"}))
        events.append(record(actor=author, action="auth.logout", obj=author))
    return events


@pytest.fixture
def dba_sql(db):
    """Run raw SQL going around the ORM; on PostgreSQL also around the append-only trigger,
    which only the table's owner or a superuser can switch off (the suite's app role cannot: it
    steps back to the owner here). The test's transaction rolls the switch back."""

    def run(sql: str, params=None) -> None:
        with as_owner(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # ALTER TABLE refuses a table with pending trigger events: run the deferred
                # foreign-key checks of the rows the test inserted first.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            cursor.execute(sql, params)
            if connection.vendor == "postgresql":
                cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    return run


# When each event of `trail` happened (UTC), so date filters have known answers.
TRAIL_TIMES = {
    "north.team_created": datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
    "north_centre.post_created": datetime(2025, 3, 2, 10, 0, tzinfo=UTC),
    "south.post_created": datetime(2025, 3, 3, 11, 0, tzinfo=UTC),
    "south_centre.membership_granted": datetime(2025, 3, 4, 12, 0, tzinfo=UTC),
    "login_failed": datetime(2025, 3, 5, 13, 0, tzinfo=UTC),
    "north.post_submitted": datetime(2025, 3, 6, 14, 0, tzinfo=UTC),
    "hq.postbox_opened": datetime(2025, 3, 7, 15, 0, tzinfo=UTC),
}


@pytest.fixture
def south_lead(org):
    user = UserFactory(username="sol")
    grant(user, org["south"], Role.LEAD)
    return user


@pytest.fixture
def trail(org, author, lead, outsider):
    """Seven events across the tree, one a day from 1 March 2025, keyed by a short name."""

    def at(name, **kwargs):
        with time_machine.travel(TRAIL_TIMES[name], tick=False), transaction.atomic():
            events[name] = record(**kwargs)

    events = {}
    at("north.team_created", actor=lead, action="team.created", obj=org["north"], team=org["north"])
    at(
        "north_centre.post_created",
        actor=author,
        action="post.created",
        object_type="publishing.post",
        object_id="101",
        team=org["north_centre"],
        data={"body": "Hello North"},
    )
    at(
        "south.post_created",
        actor=outsider,
        action="post.created",
        object_type="publishing.post",
        object_id="102",
        team=org["south"],
    )
    at(
        "south_centre.membership_granted",
        actor=lead,
        action="membership.granted",
        obj=author,
        team=org["south_centre"],
        data={"role": "drafter"},
    )
    at("login_failed", actor=None, action="auth.login_failed", data={"username": "eve"})
    at(
        "north.post_submitted",
        actor=author,
        action="post.submitted",
        object_type="publishing.post",
        object_id="101",
        team=org["north"],
    )
    at("hq.postbox_opened", actor=lead, action="postbox.opened", team=org["hq"])
    return events
