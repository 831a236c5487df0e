"""The proofs API: an event's inclusion proof, a consistency proof between two tree sizes and the
latest checkpoint, each checked with the standalone verifier's functions, scoped like the events
(no leaks across teams) and answering bad input with a 400 naming the field."""

import base64
import json

import pytest
from rest_framework.test import APIClient

from audit import merkle
from audit.hashing import event_leaf
from audit.models import AuditCheckpoint
from audit.sealer import checkpoint_now
from audit.verifier import NoteVerifier, signed_checkpoint, verify_export
from tests.settings import TEST_AUDIT_VERIFIER_KEY

KEYS = [NoteVerifier.from_vkey(TEST_AUDIT_VERIFIER_KEY)]


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def unb64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(value) for value in values]


def test_an_events_proof_checks_out_with_the_verifiers_functions(lead, trail):
    event = trail["north_centre.post_created"]

    response = api(lead).get(f"/api/v1/audit/events/{event.seq}/proof/")

    assert response.status_code == 200
    body = response.json()
    assert body["seq"] == event.seq
    assert body["leaf"].encode() == event_leaf(event)
    assert base64.b64decode(body["leaf_hash"]) == merkle.leaf_hash(event_leaf(event))
    assert body["verifier_keys"] == [TEST_AUDIT_VERIFIER_KEY]
    assert body["event"]["actor_name"] == "alice"
    checkpoint, _ = signed_checkpoint(body["checkpoint"], KEYS, origins=["cxhub.test/audit"])
    assert checkpoint.size == body["tree_size"] == AuditCheckpoint.objects.latest("id").size
    merkle.verify_inclusion(
        merkle.leaf_hash(body["leaf"].encode()),
        body["leaf_index"],
        body["tree_size"],
        unb64(body["inclusion_proof"]),
        checkpoint.root,
    )
    # The answer saved as a file is what the standalone verifier checks.
    report = verify_export(json.dumps(body), KEYS)
    assert report.ok and report.proven == 1, report.problems


def test_a_proof_of_an_altered_leaf_is_refused_by_the_verifier(lead, trail):
    body = api(lead).get(f"/api/v1/audit/events/{trail['north.team_created'].seq}/proof/").json()
    body["event"]["object_id"] = "12345"

    problems = verify_export(json.dumps(body), KEYS).problems

    assert problems[0] == "the proof's leaf is not the canonical JSON of its event"
    assert "not in the signed tree" in problems[1]


def test_an_event_of_another_subtree_is_a_404_like_one_that_does_not_exist(south_lead, trail):
    client = api(south_lead)
    north = trail["north_centre.post_created"]
    south = trail["south.post_created"]

    hidden = client.get(f"/api/v1/audit/events/{north.seq}/proof/")
    absent = client.get("/api/v1/audit/events/999999/proof/")
    huge = client.get(f"/api/v1/audit/events/{2**70}/proof/")

    assert hidden.status_code == absent.status_code == huge.status_code == 404
    assert hidden.json() == absent.json() == {"message": "Not found.", "extra": {}}
    assert client.get(f"/api/v1/audit/events/{south.seq}/proof/").status_code == 200


def test_people_who_lead_nothing_get_404s(author, trail):
    client = api(author)
    seq = trail["north_centre.post_created"].seq

    assert client.get(f"/api/v1/audit/events/{seq}/proof/").status_code == 404
    assert client.get("/api/v1/audit/checkpoint/").status_code == 404
    assert client.get("/api/v1/audit/consistency/", {"first": 0, "second": 0}).status_code == 404


def test_the_latest_checkpoint(lead, trail):
    checkpoint = checkpoint_now()

    body = api(lead).get("/api/v1/audit/checkpoint/").json()

    assert body["size"] == checkpoint.size
    assert body["note"] == checkpoint.note
    assert body["origin"] == "cxhub.test/audit"
    assert base64.b64decode(body["root"]) == bytes(checkpoint.root)
    assert body["verifier_keys"] == [TEST_AUDIT_VERIFIER_KEY]


def test_no_checkpoint_yet_is_a_404(lead):
    response = api(lead).get("/api/v1/audit/checkpoint/")

    assert response.status_code == 404
    assert set(response.json()) == {"message", "extra"}


def test_a_consistency_proof_between_two_sizes_checks_out(lead, org, trail):
    older = checkpoint_now()
    client = api(lead)
    client.get("/api/v1/audit/events/", {"format": "jsonl"})  # an event more, sealed and signed
    newer = AuditCheckpoint.objects.latest("id")
    assert newer.size > older.size

    response = client.get("/api/v1/audit/consistency/", {"first": older.size, "second": newer.size})

    assert response.status_code == 200
    body = response.json()
    assert base64.b64decode(body["first_root"]) == bytes(older.root)
    assert base64.b64decode(body["second_root"]) == bytes(newer.root)
    merkle.verify_consistency(
        older.size, newer.size, bytes(older.root), bytes(newer.root), unb64(body["proof"])
    )
    assert body["checkpoint"] == newer.note


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"second": 1}, "first"),
        ({"first": 1}, "second"),
        ({"first": "x", "second": 1}, "first"),
        ({"first": -1, "second": 1}, "first"),
        ({"first": 0, "second": 10**30}, "second"),
        ({"first": 0, "second": "LIMIT+1"}, "second"),
        ({"first": 3, "second": 2}, "first"),
    ],
)
def test_bad_sizes_are_a_400_naming_the_field(lead, trail, params, field):
    limit = checkpoint_now().size
    params = {k: limit + 1 if v == "LIMIT+1" else v for k, v in params.items()}

    response = api(lead).get("/api/v1/audit/consistency/", params)

    assert response.status_code == 400
    assert list(response.json()["extra"]["fields"]) == [field]


def test_proofs_need_a_signing_key(lead, trail, monkeypatch):
    monkeypatch.setenv("CXHUB_AUDIT_SIGNING_KEY", "")
    seq = trail["north.team_created"].seq

    response = api(lead).get(f"/api/v1/audit/events/{seq}/proof/")

    assert response.status_code == 409
    assert response.json()["extra"] == {"status": "unsigned"}
