"""The dispatch services (publishing/dispatch/): claim, publish one target, outcomes, retries,
reconcile, the sweeper and freezes — with a scripted channel in place of the network."""

import itertools
import logging
import random
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Notification, Role
from audit.models import AuditEvent
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed
from networks.channels.errors import (
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.channels.http import Published
from networks.channels.webhook import WebhookChannel
from networks.models import AccountStatus
from publishing import freezes, services
from publishing.dispatch import claim, outcome, send, start, sweep
from publishing.models import (
    Post,
    PostStatus,
    PostTarget,
    PublishAttempt,
    PublishingFreeze,
    TargetStatus,
)

from ..factories import UserFactory, grant
from ..integration.dispatch_support import approved_post, bulk_due_posts, webhook_account

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
Outcome = PublishAttempt.Outcome


class FakeChannel(WebhookChannel):
    """The webhook channel's rules with a scripted network: each call takes the next item
    (a Published to return, or an exception to raise); it notes whether a transaction was
    open when it was called."""

    def __init__(self):
        self.publish_script: list = []
        self.reconcile_script: list = []
        self.calls: list[tuple[str, str, str, bool]] = []

    def publish(self, account, text, media, *, idempotency_key):
        self.calls.append(("publish", idempotency_key, text, send._in_transaction()))
        item = (
            self.publish_script.pop(0)
            if self.publish_script
            else Published(f"ext-{idempotency_key[:8]}", f"https://site.example/{idempotency_key}")
        )
        if isinstance(item, Exception):
            raise item
        return item

    def reconcile(self, account, text, *, idempotency_key, hints=None):
        self.calls.append(("reconcile", idempotency_key, text, send._in_transaction()))
        item = self.reconcile_script.pop(0) if self.reconcile_script else None
        if isinstance(item, Exception):
            raise item
        return item

    def sent(self, kind="publish"):
        return [call for call in self.calls if call[0] == kind]


@pytest.fixture
def fake(monkeypatch):
    channel = FakeChannel()
    for module in (start, send):  # the text is rendered at start, sent at send
        monkeypatch.setattr(module, "get_channel", lambda name: channel)
    return channel


@pytest.fixture(autouse=True)
def dispatch_settings(settings):
    settings.CXHUB_PUBLISH_MAX_ATTEMPTS = 3
    settings.CXHUB_PUBLISH_BACKOFF_BASE_SECONDS = 10
    settings.CXHUB_PUBLISH_BACKOFF_CAP_SECONDS = 60
    settings.CXHUB_DISPATCH_BATCH_SIZE = 50
    settings.CXHUB_DISPATCH_MAX_BATCHES = 10
    settings.CXHUB_SENDING_STUCK_SECONDS = 300
    settings.CXHUB_QUEUED_STUCK_SECONDS = 600
    return settings


@pytest.fixture
def hook(org):
    return webhook_account(org["north"], "https://www.agency.example/hooks/a", handle="site-a")


@pytest.fixture
def hook_b(org):
    return webhook_account(org["north_centre"], "https://www.agency.example/hooks/b", handle="b")


@pytest.fixture
def post(author, org, hook):
    with time_machine.travel(T0, tick=False):
        return approved_post(author=author, team=org["north"], accounts=[hook])


def _target(post) -> PostTarget:
    return PostTarget.objects.get(post=post)


def _publish(target) -> str:
    return send.publish_target(target_id=target.pk, worker="test:1")


# Claiming -----------------------------------------------------------------------------------------
def test_it_claims_due_targets_marks_them_queued_and_the_post_publishing(post):
    # Given an approved post whose one target is due
    with time_machine.travel(T0 + timedelta(seconds=1), tick=False):
        # When the dispatcher runs
        result = claim.dispatch_due()

    # Then the target is queued and the post is publishing
    target = _target(post)
    assert result.queued == [target.pk]
    assert target.status == TargetStatus.QUEUED
    assert target.queued_at == T0 + timedelta(seconds=1)
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHING
    event = AuditEvent.objects.filter(action="dispatch.claimed").get()
    assert event.data["queued"] == [target.pk]
    assert event.data["posts_publishing"] == [post.pk]


def test_it_queues_the_claimed_targets_in_groups_once_the_batch_commits(
    post, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("publishing.tasks.publish_targets.delay", lambda ids: sent.append(ids))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        claim.dispatch_due()
    # Nothing goes to the broker before the commit …
    assert sent == []
    for callback in callbacks:
        callback()
    # … and every claimed target in exactly one task after it.
    assert sent == [[_target(post).pk]]


def test_groups_keep_a_posts_targets_together_and_spread_a_short_batch(settings):
    settings.CXHUB_PUBLISH_GROUP_SIZE = 4
    settings.CXHUB_PUBLISH_SPREAD = 2
    # Eight targets of four posts, claimed out of order: two groups, posts whole.
    posts = {1: 10, 2: 11, 3: 10, 4: 11, 5: 12, 6: 13, 7: 12, 8: 13}
    assert claim._publish_groups([8, 7, 6, 5, 4, 3, 2, 1], posts) == [
        [1, 3, 2, 4],
        [5, 7, 6, 8],
    ]
    # A short batch spreads one target a task over the workers; a long one fills the groups.
    assert claim._publish_groups([1, 2], posts) == [[1], [2]]
    many = list(range(100, 140))
    groups = claim._publish_groups(many, dict.fromkeys(many, 0))
    assert [len(group) for group in groups] == [4] * 10
    assert sorted(i for group in groups for i in group) == many
    assert claim._publish_groups([], {}) == []


def test_targets_due_before_the_next_run_are_claimed_now_and_start_at_their_time(
    author, org, hook, monkeypatch, settings, django_capture_on_commit_callbacks, fake
):
    settings.CXHUB_DISPATCH_LOOKAHEAD_SECONDS = 5
    due = T0 + timedelta(seconds=3)
    [target_id] = bulk_due_posts(
        author=author, team=org["north"], accounts=[hook], posts=1, due=due
    )
    later = bulk_due_posts(
        author=author, team=org["north"], accounts=[hook], posts=1, due=T0 + timedelta(seconds=9)
    )
    queued = []
    monkeypatch.setattr(
        "publishing.tasks.publish_targets.apply_async",
        lambda args, eta: queued.append((args[0], eta)),
    )
    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert claim.dispatch_due().queued == [target_id]
    # Its task starts at its time, not before; one due after the next run waits for that run.
    assert queued == [([target_id], due)]
    assert PostTarget.objects.get(pk=later[0]).status == TargetStatus.WAITING

    # A task that starts early anyway (a fast clock) sends nothing: the target waits again.
    with time_machine.travel(T0 + timedelta(seconds=1), tick=False):
        assert send.publish_targets(target_ids=[target_id]) == {target_id: "noop"}
    target = PostTarget.objects.get(pk=target_id)
    assert (target.status, fake.calls, target.attempts.count()) == (TargetStatus.WAITING, [], 0)
    unqueued = AuditEvent.objects.get(action="dispatch.unqueued")
    assert unqueued.data["targets"] == [target_id] and "early" in unqueued.data["reason"]
    # … and goes out when it is due.
    with time_machine.travel(due, tick=False):
        assert claim.dispatch_due().queued == [target_id]
        assert send.publish_targets(target_ids=[target_id]) == {target_id: "published"}


def test_when_the_broker_refuses_the_rest_of_the_batch_waits_again(
    author, org, hook, monkeypatch, django_capture_on_commit_callbacks
):
    ids = bulk_due_posts(author=author, team=org["north"], accounts=[hook], posts=3, due=T0)
    sent = []

    def delay(group):
        if len(sent) == 1:
            raise ConnectionError("broker down")
        sent.append(group)

    monkeypatch.setattr("publishing.tasks.publish_targets.delay", delay)
    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        claim.dispatch_due()

    statuses = dict(PostTarget.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == {
        ids[0]: TargetStatus.QUEUED,
        ids[1]: TargetStatus.WAITING,
        ids[2]: TargetStatus.WAITING,
    }
    assert AuditEvent.objects.filter(action="dispatch.unqueued").count() == 1


def test_it_claims_in_batches(author, org, hook, settings):
    settings.CXHUB_DISPATCH_BATCH_SIZE = 3
    ids = bulk_due_posts(author=author, team=org["north"], accounts=[hook], posts=7, due=T0)
    with time_machine.travel(T0, tick=False):
        result = claim.dispatch_due()
    assert sorted(result.queued) == sorted(ids)
    assert result.batches == 3
    assert AuditEvent.objects.filter(action="dispatch.claimed").count() == 3


def test_a_run_stops_after_max_batches(author, org, hook, settings):
    settings.CXHUB_DISPATCH_BATCH_SIZE = 2
    settings.CXHUB_DISPATCH_MAX_BATCHES = 2
    bulk_due_posts(author=author, team=org["north"], accounts=[hook], posts=7, due=T0)
    with time_machine.travel(T0, tick=False):
        assert len(claim.dispatch_due().queued) == 4
        assert len(claim.dispatch_due().queued) == 3


def test_a_batch_costs_the_same_queries_whatever_its_size(
    author, org, hook, hook_b, django_assert_num_queries
):
    bulk_due_posts(author=author, team=org["north"], accounts=[hook], posts=2, due=T0)
    with time_machine.travel(T0, tick=False), CaptureQueriesContext(connection) as small:
        assert len(claim.dispatch_due(max_batches=1).queued) == 2
    bulk_due_posts(
        author=author, team=org["north"], accounts=[hook, hook_b], posts=20, per_post=2, due=T0
    )
    with time_machine.travel(T0, tick=False), django_assert_num_queries(len(small)):
        assert len(claim.dispatch_due(max_batches=1).queued) == 40


def test_it_leaves_targets_that_are_not_due_or_whose_post_is_not_approved(
    author, org, hook, make_post
):
    with time_machine.travel(T0, tick=False):
        later = approved_post(author=author, team=org["north"], accounts=[hook])
        PostTarget.objects.filter(post=later).update(next_attempt_at=T0 + timedelta(hours=1))
        draft = make_post(targets=[services.TargetInput(social_account_id=hook.pk)])
        # A waiting row under a draft (no service makes one; the dispatcher must not care)
        PostTarget.objects.filter(post=draft).update(
            status=TargetStatus.WAITING, next_attempt_at=T0
        )
        assert claim.dispatch_due().queued == []
    assert Post.objects.get(pk=later.pk).status == PostStatus.SCHEDULED


def test_it_holds_the_targets_of_an_account_that_is_not_connected(post, hook):
    hook.status = AccountStatus.NEEDS_RECONNECT
    hook.save()
    result = claim.dispatch_due()
    target = _target(post)
    assert result.held == {"account": [target.pk]}
    assert (target.status, target.held_reason) == (TargetStatus.HELD, "account")
    # Nothing was queued, so the post has not started publishing.
    assert Post.objects.get(pk=post.pk).status == PostStatus.SCHEDULED


def test_a_reconnected_account_releases_its_held_targets(post, hook):
    hook.status = AccountStatus.NEEDS_RECONNECT
    hook.save()
    claim.dispatch_due()
    hook.status = AccountStatus.CONNECTED
    hook.save()
    assert sweep.targets_release_for_account(account=hook, by=None) == 1
    assert claim.dispatch_due().queued == [_target(post).pk]


# Publishing one target ----------------------------------------------------------------------------
def test_it_publishes_and_stores_the_external_id_outside_any_transaction(post, fake):
    claim.dispatch_due()
    target = _target(post)

    assert _publish(target) == Outcome.PUBLISHED

    target.refresh_from_db()
    assert target.status == TargetStatus.PUBLISHED
    assert target.external_id == f"ext-{str(target.idempotency_key)[:8]}"
    assert target.external_url == f"https://site.example/{target.idempotency_key}"
    assert target.attempt_count == 1
    # The channel got the target's idempotency key and the approved text, with no transaction open
    assert fake.calls == [
        ("publish", str(target.idempotency_key), "Launch window opens at dawn.", False)
    ]
    attempt = target.attempts.get()
    assert (attempt.number, attempt.outcome, attempt.worker) == (1, Outcome.PUBLISHED, "test:1")
    assert attempt.finished_at is not None
    post.refresh_from_db()
    assert post.status == PostStatus.PUBLISHED
    assert post.published_at is not None
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["target.published", "post.published"]


def test_a_redelivered_task_does_nothing(post, fake):
    claim.dispatch_due()
    target = _target(post)
    _publish(target)

    # The broker hands the same task out again
    assert _publish(target) == "noop"

    assert len(fake.sent()) == 1
    assert target.attempts.count() == 1


def test_a_task_for_a_target_being_sent_elsewhere_does_nothing(post, fake):
    claim.dispatch_due()
    target = _target(post)
    PostTarget.objects.filter(pk=target.pk).update(status=TargetStatus.SENDING)
    assert _publish(target) == "noop"
    assert fake.calls == []


def test_a_task_for_a_missing_target_does_nothing(db, fake):
    assert send.publish_target(target_id=987654) == "noop"


def test_it_logs_one_structured_line_per_attempt(post, fake, caplog):
    claim.dispatch_due()
    target = _target(post)
    fake.publish_script = [RetryableError("HTTP 503", retry_after=None)]
    with caplog.at_level(logging.INFO, logger="cxhub.publish"):
        _publish(target)
    lines = [r.getMessage() for r in caplog.records if "event=publish.attempt" in r.getMessage()]
    assert len(lines) == 1
    fields = dict(part.split("=", 1) for part in lines[0].split(" ") if "=" in part)
    assert fields["target"] == str(target.pk)
    assert fields["outcome"] == "retryable"
    assert fields["attempt"] == "1"
    assert fields["channel"] == "webhook"
    assert fields["target_status"] == "waiting"
    assert "duration_ms" in fields


# Never unapproved content -------------------------------------------------------------------------
def test_content_changed_behind_the_services_back_is_never_sent(post, fake):
    claim.dispatch_due()
    target = _target(post)
    # The body changes without a new version or approval (a bug, or a hand in the database)
    Post.objects.filter(pk=post.pk).update(body="Unapproved words.")

    assert _publish(target) == "held"

    assert fake.calls == []
    target.refresh_from_db()
    assert (target.status, target.held_reason) == (TargetStatus.HELD, "content")
    attempt = target.attempts.get()
    assert attempt.outcome == Outcome.SKIPPED
    assert AuditEvent.objects.filter(action="target.held", object_id=str(target.pk)).exists()
    assert AuditEvent.objects.filter(action="publish.alert", object_id=str(post.pk)).exists()


def test_a_variant_changed_behind_the_services_back_is_never_sent(post, fake):
    claim.dispatch_due()
    target = _target(post)
    PostTarget.objects.filter(pk=target.pk).update(body="A variant nobody approved.")
    assert _publish(target) == "held"
    assert fake.calls == []


def test_a_hash_that_is_not_the_approved_one_is_never_sent(post, fake):
    claim.dispatch_due()
    Post.objects.filter(pk=post.pk).update(content_hash="0" * 64)
    assert _publish(_target(post)) == "held"
    assert fake.calls == []


def test_an_edit_before_the_claim_sends_the_post_back_and_nothing_goes_out(post, author, fake):
    services.post_update(post=post, by=author, body="Edited after approval.")
    assert claim.dispatch_due().queued == []
    assert _target(post).status == TargetStatus.PENDING
    assert Post.objects.get(pk=post.pk).status == PostStatus.DRAFT


def test_once_publishing_started_the_post_can_no_longer_be_edited(post, author, fake):
    claim.dispatch_due()
    with pytest.raises(InvalidTransition):
        services.post_update(post=post, by=author, body="Too late.")
    _publish(_target(post))
    assert fake.sent()[0][2] == "Launch window opens at dawn."


# Retries, backoff, Retry-After --------------------------------------------------------------------
def test_backoff_doubles_with_jitter_and_stops_at_the_cap():
    low, high = random.Random(), random.Random()
    low.uniform = lambda a, b: a
    high.uniform = lambda a, b: b
    # base 10 s, cap 60 s (the fixture): between half and all of min(cap, base × 2^(n-1))
    assert [outcome.backoff_seconds(n, rng=high) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]
    assert [outcome.backoff_seconds(n, rng=low) for n in (1, 2, 3, 4)] == [5, 10, 20, 30]
    # Retry-After is a floor
    assert outcome.backoff_seconds(1, retry_after=45, rng=high) == 45
    assert outcome.backoff_seconds(4, retry_after=1, rng=low) == 30


def _lookahead():
    from django.conf import settings

    return timedelta(seconds=settings.CXHUB_DISPATCH_LOOKAHEAD_SECONDS)


def test_a_retryable_error_waits_with_backoff_then_is_due_again(post, fake):
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        target = _target(post)
        fake.publish_script = [RetryableError("HTTP 503")]
        fake.publish_script[0].http_status = 503
        assert _publish(target) == Outcome.RETRYABLE

    target.refresh_from_db()
    assert target.status == TargetStatus.WAITING
    assert T0 + timedelta(seconds=5) <= target.next_attempt_at <= T0 + timedelta(seconds=10)
    attempt = target.attempts.get()
    assert (attempt.outcome, attempt.http_status) == (Outcome.RETRYABLE, 503)
    assert not target.needs_reconcile
    # Not claimed before its time (less the dispatcher's look-ahead) …
    early = target.next_attempt_at - _lookahead() - timedelta(seconds=1)
    with time_machine.travel(early, tick=False):
        assert claim.dispatch_due().queued == []
    # … due after it; the second try publishes.
    with time_machine.travel(target.next_attempt_at, tick=False):
        assert claim.dispatch_due().queued == [target.pk]
        assert _publish(target) == Outcome.PUBLISHED
    assert list(target.attempts.values_list("number", "outcome")) == [
        (1, Outcome.RETRYABLE),
        (2, Outcome.PUBLISHED),
    ]


def test_retry_after_is_honoured(post, fake):
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        fake.publish_script = [RetryableError("HTTP 429", retry_after=120)]
        _publish(_target(post))
    target = _target(post)
    assert target.next_attempt_at == T0 + timedelta(seconds=120)
    assert target.attempts.get().retry_after_seconds == 120
    early = T0 + timedelta(seconds=120) - _lookahead() - timedelta(seconds=1)
    with time_machine.travel(early, tick=False):
        assert claim.dispatch_due().queued == []


def test_after_the_last_attempt_it_fails_and_alerts_author_and_leads(post, fake, author, lead):
    fake.publish_script = [RetryableError("HTTP 500")] * 3
    now = T0
    for _ in range(3):
        with time_machine.travel(now, tick=False):
            assert len(claim.dispatch_due().queued) == 1
            _publish(_target(post))
        now += timedelta(minutes=5)

    target = _target(post)
    assert target.status == TargetStatus.FAILED
    assert target.attempt_count == 3
    assert target.last_error == "HTTP 500"
    assert Post.objects.get(pk=post.pk).status == PostStatus.FAILED
    alert = AuditEvent.objects.get(action="publish.alert")
    assert alert.data["notify"] == {"author": author.pk, "leads": [lead.pk]}
    notified = Notification.objects.filter(kind="publish.alert", post_id=post.pk)
    assert sorted(notified.values_list("user_id", flat=True)) == sorted([author.pk, lead.pk])
    assert notified.first().body == "site-a: HTTP 500"
    assert AuditEvent.objects.filter(action="target.failed").count() == 1
    assert AuditEvent.objects.filter(action="post.failed").count() == 1


def test_a_permanent_error_fails_at_once(post, fake):
    claim.dispatch_due()
    fake.publish_script = [PermanentError("HTTP 422 text too long")]
    assert _publish(_target(post)) == Outcome.PERMANENT
    assert _target(post).status == TargetStatus.FAILED
    assert claim.dispatch_due().queued == []


def test_expired_auth_holds_the_target_and_marks_the_account(post, fake, hook):
    claim.dispatch_due()
    fake.publish_script = [AuthExpired("HTTP 401")]
    assert _publish(_target(post)) == Outcome.AUTH_EXPIRED
    target = _target(post)
    assert (target.status, target.held_reason) == (TargetStatus.HELD, "account")
    hook.refresh_from_db()
    assert hook.status == AccountStatus.NEEDS_RECONNECT
    assert AuditEvent.objects.filter(action="social_account.needs_reconnect").count() == 1


# Outcome of the post ------------------------------------------------------------------------------
def test_the_post_waits_for_every_target_then_is_partially_published(
    author, org, hook, hook_b, fake
):
    post = approved_post(author=author, team=org["north"], accounts=[hook, hook_b])
    claim.dispatch_due()
    first, second = PostTarget.objects.filter(post=post).order_by("id")
    _publish(first)
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHING
    fake.publish_script = [PermanentError("HTTP 403")]
    _publish(second)
    post.refresh_from_db()
    assert post.status == PostStatus.PARTIALLY_PUBLISHED
    assert AuditEvent.objects.filter(action="post.partially_published").count() == 1


def test_every_target_published_makes_the_post_published(author, org, hook, hook_b, fake):
    post = approved_post(author=author, team=org["north"], accounts=[hook, hook_b])
    claim.dispatch_due()
    for target in PostTarget.objects.filter(post=post):
        _publish(target)
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHED


# Unknown outcomes and reconcile -------------------------------------------------------------------
def test_an_unknown_outcome_is_reconciled_before_any_retry_and_found(post, fake):
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        fake.publish_script = [UnknownOutcome("read timeout")]
        assert _publish(_target(post)) == Outcome.UNKNOWN
    target = _target(post)
    assert target.status == TargetStatus.WAITING
    assert target.needs_reconcile

    # The next try asks first; the network has it: nothing is sent again
    fake.reconcile_script = [Published("ext-found", "https://site.example/found")]
    with time_machine.travel(target.next_attempt_at, tick=False):
        claim.dispatch_due()
        assert _publish(target) == Outcome.RECONCILED
    target.refresh_from_db()
    assert (target.status, target.external_id) == (TargetStatus.PUBLISHED, "ext-found")
    assert not target.needs_reconcile
    assert [call[0] for call in fake.calls] == ["publish", "reconcile"]
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHED


def test_an_unknown_outcome_not_found_is_sent_again_with_the_same_key(post, fake):
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        fake.publish_script = [UnknownOutcome("read timeout")]
        _publish(_target(post))
    target = _target(post)
    with time_machine.travel(target.next_attempt_at, tick=False):
        claim.dispatch_due()
        assert _publish(target) == Outcome.PUBLISHED
    assert [call[0] for call in fake.calls] == ["publish", "reconcile", "publish"]
    assert len({call[1] for call in fake.calls}) == 1
    assert not PostTarget.objects.get(pk=target.pk).needs_reconcile


def test_after_the_last_try_an_unknown_outcome_is_only_looked_for(post, fake):
    fake.publish_script = [RetryableError("HTTP 500")] * 2 + [UnknownOutcome("timeout")]
    now = T0
    for _ in range(3):
        with time_machine.travel(now, tick=False):
            claim.dispatch_due()
            _publish(_target(post))
        now += timedelta(minutes=5)
    target = _target(post)
    assert target.status == TargetStatus.WAITING and target.needs_reconcile

    # The next try only asks; not there: failed, and never sent a fourth time
    with time_machine.travel(now, tick=False):
        claim.dispatch_due()
        assert _publish(target) == Outcome.PERMANENT
    assert [call[0] for call in fake.calls] == ["publish"] * 3 + ["reconcile"]
    assert _target(post).status == TargetStatus.FAILED


def test_a_failing_reconcile_keeps_asking_and_never_sends(post, fake):
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        fake.publish_script = [UnknownOutcome("timeout")]
        _publish(_target(post))
    fake.reconcile_script = [RetryableError("HTTP 502")]
    target = _target(post)
    with time_machine.travel(target.next_attempt_at, tick=False):
        claim.dispatch_due()
        assert _publish(target) == Outcome.RETRYABLE
    target.refresh_from_db()
    assert target.needs_reconcile
    assert [call[0] for call in fake.calls] == ["publish", "reconcile"]


# The sweeper --------------------------------------------------------------------------------------
def test_the_sweeper_returns_targets_whose_worker_died_while_sending(post, fake):
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        target = _target(post)
        # A worker started sending, then died: the row stays `sending`
        start._start_attempt(target_id=target.pk, worker="dead:1")
    with time_machine.travel(T0 + timedelta(seconds=299), tick=False):
        assert sweep.sweep_stuck().sending == []
    with time_machine.travel(T0 + timedelta(seconds=301), tick=False):
        assert sweep.sweep_stuck().sending == [target.pk]

    target.refresh_from_db()
    assert target.status == TargetStatus.WAITING
    assert target.needs_reconcile
    attempt = target.attempts.get()
    assert attempt.outcome == Outcome.UNKNOWN and attempt.finished_at is not None
    # The next try reconciles before anything is sent
    with time_machine.travel(T0 + timedelta(seconds=302), tick=False):
        claim.dispatch_due()
        _publish(target)
    assert [call[0] for call in fake.calls] == ["reconcile", "publish"]


def test_the_sweeper_returns_targets_whose_message_was_lost(post):
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
    with time_machine.travel(T0 + timedelta(seconds=601), tick=False):
        result = sweep.sweep_stuck()
        assert result.queued == [_target(post).pk]
        assert _target(post).status == TargetStatus.WAITING
        assert claim.dispatch_due().queued == [_target(post).pk]
    assert AuditEvent.objects.filter(action="dispatch.swept").count() == 1


def test_a_slow_worker_that_comes_back_after_the_sweep_does_not_overwrite(post, fake):
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        started = start._start_attempt(target_id=_target(post).pk, worker="slow:1")
    with time_machine.travel(T0 + timedelta(seconds=301), tick=False):
        sweep.sweep_stuck()
        # The slow worker reports a retryable error: the target belongs to the next try now
        outcome._store_outcome(started, outcome._Result(Outcome.RETRYABLE, error="HTTP 500"))
    target = _target(post)
    assert target.status == TargetStatus.WAITING and target.needs_reconcile
    # … but a publication it reports is the truth, and is kept
    with time_machine.travel(T0 + timedelta(seconds=302), tick=False):
        outcome._store_outcome(
            started, outcome._Result(Outcome.PUBLISHED, published=Published("late", ""))
        )
    assert _target(post).status == TargetStatus.PUBLISHED


def test_a_dropped_connection_while_storing_the_outcome_is_retried(post, fake, monkeypatch):
    claim.dispatch_due()
    real = outcome._store_outcomes
    calls = []

    def flaky(results):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(results)

    monkeypatch.setattr(outcome, "_store_outcomes", flaky)
    monkeypatch.setattr(outcome, "STORE_RETRY_PAUSES", (0.01,))
    monkeypatch.setattr(outcome.connection, "close", lambda: None)  # keep the test's connection
    assert _publish(_target(post)) == Outcome.PUBLISHED
    assert len(calls) == 2
    assert _target(post).status == TargetStatus.PUBLISHED


# Freezes ------------------------------------------------------------------------------------------
@pytest.fixture
def north_lead(org):
    user = UserFactory(username="nora")
    grant(user, org["north"], Role.LEAD)
    return user


def test_a_freeze_holds_what_has_not_gone_out_and_lifting_sends_it(post, lead, fake):
    # Given a queued target (its task is on its way)
    claim.dispatch_due()
    # When a lead freezes everything
    freeze = freezes.freeze_create(by=lead, scope="everything", reason="Incident on site")
    # Then it is held, and the task that arrives does nothing
    target = _target(post)
    assert (target.status, target.held_reason) == (TargetStatus.HELD, "freeze")
    assert freeze.held_count == 1
    assert _publish(target) == "noop"
    assert claim.dispatch_due().queued == []

    # When the freeze is lifted, it is due now and goes out
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        lifted = freezes.freeze_lift(freeze=freeze, by=lead, reason="Site is back")
        assert lifted.released_count == 1
        target.refresh_from_db()
        assert target.status == TargetStatus.WAITING
        assert target.next_attempt_at == T0 + timedelta(hours=2)
        assert claim.dispatch_due().queued == [target.pk]
    assert _publish(target) == Outcome.PUBLISHED
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"freeze.created", "freeze.lifted"} <= actions


def test_a_freeze_created_after_the_claim_stops_the_send(post, lead, fake):
    claim.dispatch_due()
    target = _target(post)
    # The freeze lands between the claim and the task (its hold is undone here to get there)
    freeze = freezes.freeze_create(by=lead, scope="everything", reason="Incident")
    PostTarget.objects.filter(pk=target.pk).update(status=TargetStatus.QUEUED, held_reason="")
    assert _publish(target) == "held"
    assert fake.calls == []
    assert target.attempts.get().outcome == Outcome.SKIPPED
    freezes.freeze_lift(freeze=freeze, by=lead, reason="ok")
    assert _target(post).status == TargetStatus.WAITING


def test_a_frozen_target_is_held_at_claim_time(post, lead):
    PublishingFreeze.objects.create(scope="everything", reason="x", created_by=lead)
    assert claim.dispatch_due().held == {"freeze": [_target(post).pk]}
    assert Post.objects.get(pk=post.pk).status == PostStatus.SCHEDULED


def test_lifting_keeps_a_future_time_and_another_freeze_still_holds(
    author, org, hook, hook_b, lead, north_lead
):
    with time_machine.travel(T0, tick=False):
        post = approved_post(author=author, team=org["north"], accounts=[hook, hook_b])
        later = T0 + timedelta(days=1)
        PostTarget.objects.filter(post=post, social_account=hook).update(next_attempt_at=later)
        team_freeze = freezes.freeze_create(
            by=north_lead, scope="team", team_id=org["north"].pk, reason="Regional review"
        )
        account_freeze = freezes.freeze_create(
            by=lead, scope="account", social_account_id=hook_b.pk, reason="Account review"
        )
        assert PostTarget.objects.filter(post=post, status=TargetStatus.HELD).count() == 2

        freezes.freeze_lift(freeze=team_freeze, by=north_lead, reason="done")

    first = PostTarget.objects.get(post=post, social_account=hook)
    second = PostTarget.objects.get(post=post, social_account=hook_b)
    assert (first.status, first.next_attempt_at) == (TargetStatus.WAITING, later)
    assert second.status == TargetStatus.HELD  # the account freeze still covers it
    freezes.freeze_lift(freeze=account_freeze, by=lead, reason="done")
    assert PostTarget.objects.get(pk=second.pk).status == TargetStatus.WAITING


def test_a_team_freeze_covers_the_subtree_only(author, org, hook, hook_b, outsider, north_lead):
    with time_machine.travel(T0, tick=False):
        post = approved_post(author=author, team=org["north"], accounts=[hook, hook_b])
        freezes.freeze_create(
            by=north_lead, scope="team", team_id=org["north_centre"].pk, reason="Centre review"
        )
        # hook_b belongs to North Centre, hook to North
        result = claim.dispatch_due()
    assert result.queued == [PostTarget.objects.get(post=post, social_account=hook).pk]
    held = PostTarget.objects.get(post=post, social_account=hook_b)
    assert (held.status, held.held_reason) == (TargetStatus.HELD, "freeze")


def test_only_leads_of_the_scope_may_freeze_and_lift(org, hook, north_lead, lead, author):
    with pytest.raises(NotAllowed):
        freezes.freeze_create(by=north_lead, scope="everything", reason="x")
    with pytest.raises(ApplicationError) as refused:
        freezes.freeze_create(by=north_lead, scope="team", team_id=org["south"].pk, reason="x")
    assert refused.value.extra == {"fields": {"team": ["No team with this id that you lead."]}}
    with pytest.raises(ApplicationError):
        freezes.freeze_create(by=author, scope="account", social_account_id=hook.pk, reason="x")
    with pytest.raises(ApplicationError) as no_reason:
        freezes.freeze_create(by=lead, scope="everything", reason="  ")
    assert "reason" in no_reason.value.extra["fields"]

    freeze = freezes.freeze_create(by=lead, scope="everything", reason="HQ incident")
    with pytest.raises(NotAllowed):
        freezes.freeze_lift(freeze=freeze, by=north_lead, reason="not mine")
    freezes.freeze_lift(freeze=freeze, by=lead, reason="over")
    with pytest.raises(InvalidTransition):
        freezes.freeze_lift(freeze=freeze, by=lead, reason="again")


def test_freezes_for_lists_the_scope_of_each_lead_in_one_query(
    org, hook, lead, north_lead, outsider, django_assert_num_queries
):
    south_lead = UserFactory(username="sol")
    grant(south_lead, org["south"], Role.LEAD)
    everything = freezes.freeze_create(by=lead, scope="everything", reason="a")
    north = freezes.freeze_create(by=north_lead, scope="team", team_id=org["north"].pk, reason="b")
    account = freezes.freeze_create(
        by=north_lead, scope="account", social_account_id=hook.pk, reason="c"
    )
    south = freezes.freeze_create(by=south_lead, scope="team", team_id=org["south"].pk, reason="d")

    with django_assert_num_queries(1):
        seen = sorted(f.pk for f in freezes.freezes_for(user=lead))
    assert seen == sorted([everything.pk, north.pk, account.pk, south.pk])
    assert sorted(f.pk for f in freezes.freezes_for(user=north_lead)) == [north.pk, account.pk]
    assert [f.pk for f in freezes.freezes_for(user=south_lead)] == [south.pk]
    assert list(freezes.freezes_for(user=outsider)) == []


# Stopping a post part-way -------------------------------------------------------------------------
def _two_target_post(author, org, hook, hook_b):
    with time_machine.travel(T0, tick=False):
        post = approved_post(author=author, team=org["north"], accounts=[hook, hook_b])
    a, b = PostTarget.objects.filter(post=post).order_by("pk")
    return post, a, b


def test_cancelling_a_publishing_post_stops_what_has_not_gone_out(
    author, org, hook, hook_b, lead, fake
):
    post, sent, waiting = _two_target_post(author, org, hook, hook_b)
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        assert _publish(sent) == Outcome.PUBLISHED
        # The second one's task is on its way (queued) when the lead stops the post.
        services.post_cancel(post=Post.objects.get(pk=post.pk), by=lead, reason="Wrong photo")
    waiting.refresh_from_db()
    assert waiting.status == TargetStatus.CANCELLED
    # Its task, when it comes, sends nothing.
    assert send.publish_target(target_id=waiting.pk) == "noop"
    assert len(fake.sent()) == 1
    post.refresh_from_db()
    assert post.status == PostStatus.PARTIALLY_PUBLISHED
    stopped = AuditEvent.objects.get(action="post.publishing_stopped")
    assert stopped.actor == lead and stopped.data["targets_stopped"] == [waiting.pk]
    assert stopped.data["reason"] == "Wrong photo"


def test_cancelling_before_anything_went_out_cancels_the_post(author, org, hook, hook_b, lead):
    post, a, b = _two_target_post(author, org, hook, hook_b)
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHING
    services.post_cancel(post=Post.objects.get(pk=post.pk), by=lead, reason="Embargo")
    assert Post.objects.get(pk=post.pk).status == PostStatus.CANCELLED
    assert set(PostTarget.objects.filter(post=post).values_list("status", flat=True)) == {
        TargetStatus.CANCELLED
    }
    assert AuditEvent.objects.filter(action="post.cancelled").count() == 1


def test_a_send_in_flight_finishes_and_the_post_settles_after_it(
    author, org, hook, hook_b, lead, fake
):
    post, in_flight, waiting = _two_target_post(author, org, hook, hook_b)
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        started = start._start_attempt(target_id=in_flight.pk, worker="w:1")
        services.post_cancel(post=Post.objects.get(pk=post.pk), by=lead, reason="Stop")
        # The post waits for the one being sent …
        assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHING
        outcome._store_outcome(
            started, outcome._Result(Outcome.PUBLISHED, published=Published("9", ""))
        )
    # … whose publication is kept; the post is partially published.
    assert PostTarget.objects.get(pk=in_flight.pk).status == TargetStatus.PUBLISHED
    assert PostTarget.objects.get(pk=waiting.pk).status == TargetStatus.CANCELLED
    assert Post.objects.get(pk=post.pk).status == PostStatus.PARTIALLY_PUBLISHED
    # Nothing is left to stop now.
    with pytest.raises(InvalidTransition):
        services.post_cancel(post=Post.objects.get(pk=post.pk), by=lead, reason="Again")


def test_a_publication_the_network_confirms_after_the_target_failed_is_the_truth(
    post, fake, author
):
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        slow = start._start_attempt(target_id=_target(post).pk, worker="slow:1")
    # The slow send is given up for lost, and the next try fails for good …
    with time_machine.travel(T0 + timedelta(seconds=301), tick=False):
        sweep.sweep_stuck()
        claim.dispatch_due()
        fake.reconcile_script = [PermanentError("Refused")]
        fake.publish_script = [PermanentError("Refused")]
        again = start._start_attempt(target_id=_target(post).pk, worker="w:2")
        outcome._store_outcome(again, outcome._Result(Outcome.PERMANENT, error="Refused"))
    assert _target(post).status == TargetStatus.FAILED
    assert Post.objects.get(pk=post.pk).status == PostStatus.FAILED
    # … then the slow one reports that its post did go out: the post is published after all.
    with time_machine.travel(T0 + timedelta(seconds=400), tick=False):
        outcome._store_outcome(
            slow, outcome._Result(Outcome.PUBLISHED, published=Published("late-1", "https://x/1"))
        )
    target = _target(post)
    assert (target.status, target.external_id) == (TargetStatus.PUBLISHED, "late-1")
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHED
    assert AuditEvent.objects.filter(action="post.published").count() == 1
    assert Notification.objects.filter(user=author, kind="post.published").exists()


# A group's time -----------------------------------------------------------------------------------
def _group_of_three(author, org, hook):
    ids = bulk_due_posts(author=author, team=org["north"], accounts=[hook], posts=3, due=T0)
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
    return sorted(ids)


def test_a_group_that_runs_past_half_its_time_sends_the_rest_later_uncounted(
    author, org, hook, fake, settings, monkeypatch
):
    ids = _group_of_three(author, org, hook)
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 2  # a budget of 1 s for the group
    # The group starts at 0; every later reading is past its budget (and keeps going up)
    clock = itertools.chain([0.0], itertools.count(5.0, 0.1))
    monkeypatch.setattr(send.time, "monotonic", lambda: next(clock))

    outcomes = send.publish_targets(target_ids=ids, worker="w:1")

    # The first went out; the others were never sent: due again now, their try not counted.
    assert outcomes[ids[0]] == Outcome.PUBLISHED
    assert len(fake.sent()) == 1
    for target_id in ids[1:]:
        target = PostTarget.objects.get(pk=target_id)
        assert (target.status, target.attempt_count, target.needs_reconcile) == (
            TargetStatus.WAITING,
            0,
            False,
        )
        assert "Not sent" in target.attempts.get().error


def test_a_time_limit_striking_after_a_send_has_it_looked_for_before_any_retry(
    author, org, hook, fake, monkeypatch
):
    from celery.exceptions import SoftTimeLimitExceeded

    ids = _group_of_three(author, org, hook)
    real = send._talk_to_network
    calls = []

    def talk(started):
        calls.append(started.target_id)
        result = real(started)
        if len(calls) == 2:  # the second send went out, then the limit struck
            raise SoftTimeLimitExceeded()
        return result

    monkeypatch.setattr(send, "_talk_to_network", talk)
    send.publish_targets(target_ids=ids, worker="w:1")

    first, second, third = (PostTarget.objects.get(pk=i) for i in ids)
    assert first.status == TargetStatus.PUBLISHED
    # It may have gone out: never sent again without asking the network first.
    assert (second.status, second.needs_reconcile) == (TargetStatus.WAITING, True)
    assert (third.status, third.needs_reconcile, third.attempt_count) == (
        TargetStatus.WAITING,
        False,
        0,
    )
