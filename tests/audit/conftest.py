"""A short recorded chain, and raw SQL as someone with database rights would run it."""

import pytest
from django.db import connection, transaction

from audit.services import record


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
    which only the table's owner or a superuser can switch off. The test's transaction rolls the
    switch back."""

    def run(sql: str, params=None) -> None:
        with connection.cursor() as cursor:
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
