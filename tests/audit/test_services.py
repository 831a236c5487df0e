from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from uuid import UUID

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from audit.models import AuditChainHead, AuditEvent
from audit.sealer import horizon, unsealed
from audit.services import AuditOutsideTransactionError, record, record_many


def test_each_event_gets_a_rising_seq_and_waits_for_the_sealer(chain):
    seqs = [event.seq for event in chain]
    assert all(before < after for before, after in pairwise(seqs))
    assert list(unsealed(horizon()).order_by("seq").values_list("seq", flat=True)) == seqs
    # The closed chain is not extended: new events carry no chain hash.
    assert {(event.prev_hash, event.hash) for event in chain} == {("", None)}
    assert not AuditChainHead.objects.filter(seq__gt=0).exists()


def test_several_events_go_in_with_one_statement(author, django_assert_num_queries):
    with transaction.atomic(), django_assert_num_queries(1):
        events = record_many(
            [{"actor": author, "action": "post.submitted", "data": {"n": n}} for n in range(3)]
        )

    seqs = [event.seq for event in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert set(unsealed(horizon()).values_list("seq", flat=True)) == set(seqs)


@pytest.mark.django_db(transaction=True)
def test_it_refuses_to_record_outside_a_transaction(author):
    with pytest.raises(AuditOutsideTransactionError, match="inside the transaction"):
        record(actor=author, action="auth.login", obj=author)

    assert not AuditEvent.objects.exists()


def test_the_event_rolls_back_with_the_change_it_records(chain, author):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        record(actor=author, action="post.submitted", obj=author)
        1 / 0  # the change being recorded fails after the event was written

    assert AuditEvent.objects.count() == 5
    assert unsealed(horizon()).count() == 5  # nothing for the sealer from the rolled-back one
    with transaction.atomic():
        event = record(actor=author, action="post.submitted", obj=author)
    assert event.seq > chain[-1].seq


def test_it_takes_object_type_and_id_from_the_object(org, lead):
    with transaction.atomic():
        event = record(actor=lead, action="team.created", obj=org["south"], team=org["south"])

    assert (event.object_type, event.object_id) == ("accounts.team", str(org["south"].pk))
    assert event.team == org["south"]


def test_explicit_object_type_and_id_win_over_the_object(org, lead):
    with transaction.atomic():
        event = record(
            actor=lead,
            action="membership.revoked",
            obj=org["south"],
            object_type="accounts.membership",
            object_id="42",
        )

    assert (event.object_type, event.object_id) == ("accounts.membership", "42")


@pytest.mark.parametrize("actor", [None, AnonymousUser()], ids=["none", "anonymous"])
def test_the_system_and_anonymous_users_record_without_an_actor(db, actor):
    with transaction.atomic():
        event = record(actor=actor, action="auth.login_failed", data={"username": "eve"})

    event.refresh_from_db()
    assert event.actor is None
    assert event.actor_name == ""
    assert (event.object_type, event.object_id) == ("", "")


def test_the_actor_name_survives_a_rename(author):
    with transaction.atomic():
        event = record(actor=author, action="auth.login", obj=author)

    author.username = "alice.smith"
    author.save()

    event.refresh_from_db()
    assert event.actor == author
    assert event.actor_name == "alice"


def test_data_is_stored_exactly_as_it_was_hashed(author):
    data = {
        "when": datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        "amount": Decimal("12.50"),
        "id": UUID("12345678-1234-5678-1234-567812345678"),
        "big": 1e16,
        "ratio": 0.1,
        "tiny": 1.5e-7,
        "z": {"b": [1, 2.5, None], "a": "ünïcode"},
        3: "an int key becomes a string",
    }
    with transaction.atomic():
        event = record(actor=author, action="post.scheduled", obj=author, data=data)

    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.data == event.data
    assert stored.data["when"] == "2025-03-01T12:30:00Z"
    assert stored.data["amount"] == "12.50"
    assert stored.data["big"] == 10**16
    assert stored.data["3"] == "an int key becomes a string"


def test_it_refuses_data_that_json_cannot_hold(author):
    with pytest.raises(ValueError), transaction.atomic():
        record(actor=author, action="post.scheduled", data={"score": float("nan")})

    assert not AuditEvent.objects.exists()
