"""A worker that dies is noticed from its own missing heartbeat (cxhub/liveness.py) within
seconds, and what it had claimed goes back: its sends to be reconciled, queued targets to be
claimed again. The broker's visibility timeout no longer bounds recovery."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audit.models import AuditEvent
from cxhub import liveness
from cxhub.models import Heartbeat
from publishing.dispatch import claim, start, sweep
from publishing.models import PostTarget, PublishAttempt, TargetStatus

from ..integration.dispatch_support import approved_post, webhook_account

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def lost_settings(settings):
    settings.CXHUB_WORKER_LOST_SECONDS = 15
    settings.CXHUB_SENDING_STUCK_SECONDS = 300
    settings.CXHUB_QUEUED_STUCK_SECONDS = 600


def _post(author, org, handle):
    account = webhook_account(org["north"], f"https://www.agency.example/{handle}", handle=handle)
    with time_machine.travel(T0, tick=False):
        return approved_post(author=author, team=org["north"], accounts=[account])


def _beat(name, at):
    Heartbeat.objects.create(name=liveness.PREFIX + name, seen_at=at)


def test_a_silent_worker_is_lost_its_sends_reconciled_and_queued_targets_claimed_again(author, org):
    dead_send = _post(author, org, "a").targets.get()
    live_send = _post(author, org, "b").targets.get()
    queued = _post(author, org, "c").targets.get()
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        # Given one send by a worker that then went silent, one by a live worker, one queued
        start._start_attempts(target_ids=[dead_send.pk], worker="celery@a:100/101")
        start._start_attempts(target_ids=[live_send.pk], worker="celery@b:200/201")
        _beat("celery@a:100", T0 + timedelta(seconds=2))
    with time_machine.travel(T0 + timedelta(seconds=20), tick=False):
        _beat("celery@b:200", T0 + timedelta(seconds=19))

        # When the sweeper runs, 18 s after the dead worker's last beat
        result = sweep.sweep_stuck()

    # Then well before the stuck thresholds (300 s, 600 s) what the dead worker had is back
    assert result.workers_lost == ["celery@a:100"]
    dead_send.refresh_from_db()
    assert (dead_send.status, dead_send.needs_reconcile) == (TargetStatus.WAITING, True)
    assert PublishAttempt.objects.get(target=dead_send).outcome == PublishAttempt.Outcome.UNKNOWN
    assert PostTarget.objects.get(pk=live_send.pk).status == TargetStatus.SENDING
    assert PostTarget.objects.get(pk=queued.pk).status == TargetStatus.WAITING
    assert list(Heartbeat.objects.values_list("name", flat=True)) == ["worker:celery@b:200"]
    event = AuditEvent.objects.get(action="dispatch.workers_lost")
    assert event.data["sending"] == [dead_send.pk] and event.data["queued"] == [queued.pk]

    # And the next try asks the network first
    with time_machine.travel(T0 + timedelta(seconds=21), tick=False):
        assert dead_send.pk in claim.dispatch_due().queued


def test_a_worker_that_beats_is_left_alone(author, org):
    target = _post(author, org, "a").targets.get()
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        start._start_attempts(target_ids=[target.pk], worker="celery@a:100/101")
    with time_machine.travel(T0 + timedelta(seconds=60), tick=False):
        _beat("celery@a:100", T0 + timedelta(seconds=50))
        result = sweep.sweep_stuck()
    assert result.workers_lost == [] and result.sending == []
    assert PostTarget.objects.get(pk=target.pk).status == TargetStatus.SENDING


def test_worker_labels_name_their_worker(monkeypatch):
    monkeypatch.setitem(liveness._state, "identity", "celery@host:42")
    label = liveness.worker_label("celery@host")
    assert liveness.owner_of(label) == "celery@host:42"
    assert liveness.owner_of("test:1") == ""
