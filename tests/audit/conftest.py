"""A short recorded trail, a chain as the first design wrote it, and raw SQL as someone with
database rights would run it."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection, transaction

from accounts.models import Role
from audit.hashing import event_hash
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from audit.services import record
from cxhub.dbroles import APPEND_ONLY_TABLES

from ..dbroles import as_owner
from ..factories import UserFactory, grant


@pytest.fixture
def chain(org, author, lead):
    """Five events, in seq order, as services record them (queued for the sealer)."""
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


def build_legacy_chain(specs: list[dict]) -> list[AuditEvent]:
    """Events of seq 1, 2, … hash-chained as the first design recorded them (before the Merkle
    tree, migration 0005), with the chain head at the last: the closed chain verify_chain checks.
    Each spec holds record()'s columns (actor, action, object_type, object_id, team, data)."""
    events, prev_hash = [], GENESIS_HASH
    for seq, spec in enumerate(specs, start=1):
        actor = spec.get("actor")
        event = AuditEvent(
            seq=seq,
            at=datetime(2025, 1, 1, 9, 0, seq, tzinfo=UTC),
            actor=actor,
            actor_name=actor.get_username() if actor is not None else "",
            action=spec["action"],
            object_type=spec.get("object_type", ""),
            object_id=spec.get("object_id", ""),
            team=spec.get("team"),
            data=spec.get("data", {}),
            prev_hash=prev_hash,
        )
        event.hash = prev_hash = event_hash(
            prev_hash=prev_hash,
            seq=seq,
            at=event.at,
            actor_id=event.actor_id,
            actor_name=event.actor_name,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            team_id=event.team_id,
            data=event.data,
        )
        event.save()
        events.append(event)
    # Not yet in the tree, as migration 0005 left the events of the closed chain: above the
    # sealer's horizon (0), without a leaf.
    AuditChainHead.objects.update_or_create(
        pk=AuditChainHead.SINGLETON_ID, defaults={"seq": len(events), "hash": prev_hash}
    )
    if connection.vendor == "postgresql":
        # Later record() calls must not take the seqs written here.
        with as_owner(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'seq'), "
                "GREATEST((SELECT MAX(seq) FROM audit_auditevent), "
                "(SELECT last_value FROM audit_auditevent_seq_seq)))"
            )
    return events


@pytest.fixture
def legacy_chain(org, author, lead):
    """Five events, seq 1 to 5, chained as before the Merkle tree."""
    return build_legacy_chain(
        [
            {
                "actor": lead,
                "action": "team.created",
                "object_type": "accounts.team",
                "object_id": str(org["north"].pk),
                "team": org["north"],
            },
            {
                "actor": lead,
                "action": "membership.granted",
                "object_type": "accounts.user",
                "object_id": str(author.pk),
                "team": org["north"],
            },
            {
                "actor": author,
                "action": "post.submitted",
                "object_type": "accounts.user",
                "object_id": str(author.pk),
                "data": {"text": "Hello"},
            },
            {"actor": None, "action": "auth.login_failed", "data": {"username": "eve"}},
            {
                "actor": author,
                "action": "auth.logout",
                "object_type": "accounts.user",
                "object_id": str(author.pk),
            },
        ]
    )


@pytest.fixture
def dba_sql(db):
    """Run raw SQL going around the ORM; on PostgreSQL also around the append-only triggers of
    the audit tables, which only their owner or a superuser can switch off (the suite's app role
    cannot: it steps back to the owner here). The test's transaction rolls the switch back."""

    def run(sql: str, params=None) -> None:
        with as_owner(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # ALTER TABLE refuses a table with pending trigger events: run the deferred
                # foreign-key checks of the rows the test inserted first.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                for table in APPEND_ONLY_TABLES:
                    cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            cursor.execute(sql, params)
            if connection.vendor == "postgresql":
                for table in APPEND_ONLY_TABLES:
                    cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
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
