"""The sealer (audit.sealer): queued events into the tree, checkpoints signed when it grew, and
the window between an event's commit and its first signed checkpoint, as /healthz reports it."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from audit import merkle
from audit.checkpoint import NoteVerifier, parse_checkpoint, verify_note
from audit.merkle_store import event_leaf_hash
from audit.models import AuditCheckpoint, AuditLeaf
from audit.sealer import checkpoint_lag, checkpoint_now, horizon, seal, tree_head, unsealed
from audit.services import record
from audit.tasks import seal as seal_task
from cxhub.env import ImproperlyConfiguredEnv
from tests.settings import TEST_AUDIT_VERIFIER_KEY


def verified(checkpoint: AuditCheckpoint):
    body = verify_note(checkpoint.note, [NoteVerifier.from_vkey(TEST_AUDIT_VERIFIER_KEY)])
    return parse_checkpoint(body)


def test_it_folds_the_new_events_into_the_tree_and_signs_a_checkpoint(chain):
    result = seal()

    assert (result.before, result.after, result.added) == (0, 5, 5)
    assert not unsealed(horizon()).exists()
    leaves = [event_leaf_hash(event) for event in chain]
    assert result.root == merkle.root_from_leaf_hashes(leaves) == tree_head()[1]
    body = verified(result.checkpoint)
    assert (body.origin, body.size, body.root) == ("cxhub.test/audit", 5, result.root)
    assert body.extensions[0].startswith("time ") and body.extensions[0].endswith("Z")
    assert (result.checkpoint.size, bytes(result.checkpoint.root)) == (5, result.root)


def test_nothing_new_signs_nothing_and_more_events_sign_again(chain, author):
    first = seal().checkpoint
    assert seal().checkpoint is None

    with transaction.atomic():
        record(actor=author, action="auth.logout", obj=author)
    second = seal().checkpoint

    assert (first.size, second.size) == (5, 6)
    assert AuditLeaf.objects.get(index=5).event.action == "auth.logout"


def test_checkpoint_now_signs_even_when_the_tree_did_not_grow(chain):
    seal()
    again = checkpoint_now()

    assert again.size == 5 and AuditCheckpoint.objects.filter(size=5).count() == 2
    assert verified(again).size == 5


def test_an_empty_trail_gets_a_checkpoint_of_the_empty_tree_on_demand(db):
    checkpoint = checkpoint_now()

    assert verified(checkpoint).size == 0
    assert bytes(checkpoint.root) == merkle.EMPTY_ROOT


def test_without_a_signing_key_the_tree_grows_but_nothing_is_signed(chain, monkeypatch):
    monkeypatch.delenv("CXHUB_AUDIT_SIGNING_KEY")

    result = seal()

    assert result.after == 5 and result.checkpoint is None
    assert not AuditCheckpoint.objects.exists()
    assert checkpoint_lag().signing_key is False


def test_the_periodic_task_seals(chain):
    assert seal_task.apply().get() == 5


def test_the_lag_counts_from_the_oldest_event_without_a_checkpoint(chain, author, settings):
    settings.CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS = 60
    with time_machine.travel(timezone.now() + timedelta(seconds=90), tick=False):
        lag = checkpoint_lag()
        assert lag.exceeded and lag.lag >= timedelta(seconds=90)
        # Sealed without a signature still counts as waiting: only a checkpoint covers.
        seal(sign=False)
        assert checkpoint_lag().exceeded
        seal()
        # An old checkpoint that misses newer sealed leaves leaves those waiting.
        assert not checkpoint_lag().exceeded
        assert checkpoint_lag().oldest_uncovered_at is None


def test_healthz_reports_the_window_exceeded_without_failing(client, chain, settings):
    settings.CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS = 60
    assert client.get("/healthz").json()["checks"]["audit"]["ok"] is True

    with time_machine.travel(timezone.now() + timedelta(seconds=300), tick=False):
        response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded: audit"
    assert body["checks"]["audit"]["ok"] is False
    assert "beyond the window of 60 s" in body["checks"]["audit"]["detail"]


def test_healthz_says_when_the_signing_key_is_missing(client, chain, settings, monkeypatch):
    monkeypatch.delenv("CXHUB_AUDIT_SIGNING_KEY")
    settings.CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS = 60
    seal()

    with time_machine.travel(timezone.now() + timedelta(seconds=300), tick=False):
        detail = client.get("/healthz").json()["checks"]["audit"]["detail"]

    assert "no signing key is set" in detail


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_any_batch_size_gives_the_same_tree(chain, batch_size):
    assert seal(batch_size=batch_size).root == merkle.root_from_leaf_hashes(
        [event_leaf_hash(event) for event in chain]
    )


def test_a_signing_key_that_fails_to_load_leaves_the_tree_sealed(chain, monkeypatch):
    monkeypatch.setenv("CXHUB_AUDIT_SIGNING_KEY", "not a key")

    with pytest.raises(ImproperlyConfiguredEnv, match="CXHUB_AUDIT_SIGNING_KEY"):
        seal()

    assert tree_head()[0] == 5 and not unsealed(horizon()).exists()
    assert not AuditCheckpoint.objects.exists()


def test_a_checkpoint_waits_for_the_interval_unless_forced(chain, author, settings):
    settings.CXHUB_AUDIT_CHECKPOINT_SECONDS = 30
    first = seal().checkpoint
    with transaction.atomic():
        record(actor=author, action="auth.logout", obj=author)

    # Sealed at once, but signed only once the last checkpoint is 30 s old …
    assert seal().checkpoint is None and tree_head()[0] == 6
    with time_machine.travel(first.at + timedelta(seconds=31), tick=False):
        later = seal().checkpoint
    assert (first.size, later.size) == (5, 6)

    # … or when forced (an export's or a proof's covering checkpoint, audit_checkpoint).
    with transaction.atomic():
        record(actor=author, action="auth.logout", obj=author)
    assert seal().checkpoint is None
    assert checkpoint_now().size == 7
