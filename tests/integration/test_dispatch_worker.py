"""The dispatch engine against real processes: Celery workers (prefork, beat embedded) started
as subprocesses on the test's own database and the pass's broker (Redis in CI's PostgreSQL
pass, the filesystem broker in the embedded pass; RabbitMQ where CXHUB_TEST_RABBITMQ_URL is
set), and a real HTTP server on 127.0.0.1 playing the network.

Each test is bounded in time and stops its workers and servers, whatever happens.
"""

import os
import random
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from cxhub.errors import InvalidTransition
from publishing import freezes, services
from publishing.models import Post, PostStatus, PostTarget, PublishAttempt, TargetStatus

from ..dbroles import as_owner
from .dispatch_harness import (
    WORKER_APPLICATION_NAME,
    PrivateRedis,
    Worker,
    database_url,
    purge,
    wait_until,
    worker_env,
)
from .dispatch_support import SECRET, approved_post, bulk_due_posts, webhook_account
from .webhook_receiver import WebhookReceiver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

Outcome = PublishAttempt.Outcome
FINAL = {TargetStatus.PUBLISHED, TargetStatus.FAILED}
RABBITMQ_URL = os.environ.get("CXHUB_TEST_RABBITMQ_URL", "")


def _postgres() -> bool:
    return connection.vendor == "postgresql"


class Stack:
    """Workers on the test's database and one broker, and the receiver they publish to."""

    def __init__(self, workdir: Path, broker: str, **env):
        self.workdir = workdir
        self.broker = broker
        self.env = worker_env(
            database=database_url(
                connection.settings_dict,
                application_name=WORKER_APPLICATION_NAME if _postgres() else "",
            ),
            broker=broker,
            var_dir=workdir / "var",
            **env,
        )
        self.workers: list[Worker] = []
        purge(broker)

    def worker(self, **options) -> Worker:
        worker = Worker(self.env, self.workdir, **options)
        self.workers.append(worker)
        return worker.start()

    @property
    def logs(self) -> list[Path]:
        return [worker.log for worker in self.workers]

    def wait(self, predicate, *, timeout: float, what: str):
        return wait_until(predicate, timeout=timeout, what=what, logs=self.logs)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        purge(self.broker)


@pytest.fixture
def stacks(tmp_path):
    made: list[Stack] = []

    def make(broker: str | None = None, **env) -> Stack:
        stack = Stack(tmp_path, broker or _pass_broker(), **env)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.close()


def _pass_broker() -> str:
    return os.environ.get("CELERY_BROKER_URL") or "filesystem://"


@pytest.fixture
def receiver():
    with WebhookReceiver(SECRET, hang_seconds=30) as server:
        yield server


def _statuses(ids) -> Counter:
    return Counter(PostTarget.objects.filter(pk__in=ids).values_list("status", flat=True))


def _all_final(ids) -> bool:
    return set(_statuses(ids)) <= FINAL


BROKERS = [
    pytest.param("pass", id="pass-broker"),
    pytest.param("rabbitmq", id="rabbitmq", marks=[pytest.mark.rabbitmq, pytest.mark.postgres]),
]


def _broker(kind: str) -> str | None:
    return RABBITMQ_URL if kind == "rabbitmq" else None


# (a) 500 (unknown), 429 + Retry-After, timeout, success ----------------------------------------
@pytest.mark.parametrize("broker", BROKERS)
def test_errors_then_success_publish_once_with_the_timings_honoured(
    stacks, receiver, author, org, broker
):
    # Given a site that answers 500, then 429 asking for 2 s, then holds past the timeout
    receiver.hang_seconds = 2
    receiver.then("500", ("429", 2), "hang")
    account = webhook_account(org["north"], receiver.url, handle="site")
    post = approved_post(author=author, team=org["north"], accounts=[account])
    target = PostTarget.objects.get(post=post)
    key = str(target.idempotency_key)

    # When a worker with beat runs
    stack = stacks(_broker(broker))
    stack.worker()
    stack.wait(
        lambda: PostTarget.objects.get(pk=target.pk).status in FINAL,
        timeout=60,
        what="the target to be published",
    )

    # Then one post is on the site, after four sends; the 500 and the timeout prove nothing
    # (the site may have taken the post), so each is followed by a look before the next send
    target.refresh_from_db()
    assert target.status == TargetStatus.PUBLISHED
    assert target.external_id == "post-1"
    assert receiver.stored_posts == {key: 1}
    posts = receiver.posts(key)
    assert [p.status for p in posts] == [500, 429, 504, 201]
    assert all(p.signature_ok for p in receiver.received)
    gets = receiver.gets(key)
    assert [g.status for g in gets] == [404, 404]
    assert posts[0].at < gets[0].at < posts[1].at
    assert posts[2].at < gets[1].at < posts[3].at

    # The attempts, as recorded
    attempts = list(target.attempts.order_by("number"))
    assert [(a.outcome, a.http_status) for a in attempts] == [
        (Outcome.UNKNOWN, 500),
        (Outcome.RETRYABLE, 429),
        (Outcome.UNKNOWN, None),
        (Outcome.PUBLISHED, 201),
    ]
    assert attempts[1].retry_after_seconds == 2
    assert target.attempt_count == 4 and not target.needs_reconcile

    # And the timings: backoff base 1 s (jittered to at least 0.5 s), Retry-After 2 s honoured,
    # the 1 s timeout, then backoff 4 s (at least 2 s) before the reconcile and resend.
    gaps = [later.at - earlier.at for earlier, later in zip(posts, posts[1:], strict=False)]
    assert 0.5 <= gaps[0] < 5, gaps
    assert 2.0 <= gaps[1] < 6, gaps
    assert 3.0 <= gaps[2] < 9, gaps
    assert (attempts[2].finished_at - attempts[2].started_at).total_seconds() >= 0.9
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHED
    assert AuditEvent.objects.filter(action="target.retry_scheduled").count() == 3
    assert "event=publish.attempt" in stack.workers[0].log_text()


# (b) SIGKILL while sending ---------------------------------------------------------------------
@pytest.mark.parametrize("broker", BROKERS)
def test_a_worker_killed_while_sending_is_reconciled_and_published_once(
    stacks, receiver, author, org, broker
):
    # Given a site that takes the post and holds the response (the worker is mid-request)
    receiver.then("store_and_hang")
    account = webhook_account(org["north"], receiver.url, handle="site")
    post = approved_post(author=author, team=org["north"], accounts=[account])
    target = PostTarget.objects.get(post=post)
    key = str(target.idempotency_key)
    # A 3 s timeout, so the worker is surely still waiting when it is killed
    stack = stacks(_broker(broker), CXHUB_WEBHOOK_TIMEOUT_SECONDS="3")
    first = stack.worker(name="first")
    stack.wait(receiver.hanging.is_set, timeout=30, what="the request to reach the site")
    assert PostTarget.objects.get(pk=target.pk).status == TargetStatus.SENDING

    # When the worker is killed with SIGKILL, and a new one starts
    first.kill()
    receiver.release()
    stack.worker(name="second")

    # Then the sweeper hands the target back, the new worker asks the site, finds the post,
    # and never sends it again
    stack.wait(
        lambda: PostTarget.objects.get(pk=target.pk).status in FINAL,
        timeout=60,
        what="the target to be reconciled",
    )
    target.refresh_from_db()
    assert target.status == TargetStatus.PUBLISHED
    assert target.external_id == "post-1"
    assert len(receiver.posts(key)) == 1
    assert receiver.stored_posts == {key: 1}
    assert [r.status for r in receiver.gets(key)] == [200]
    attempts = list(target.attempts.order_by("number"))
    assert [a.outcome for a in attempts] == [Outcome.UNKNOWN, Outcome.RECONCILED]
    assert attempts[0].error == "The worker was lost while sending."
    # Noticed from the worker's own silent heartbeat (or, slower, the sending-stuck limit)
    assert AuditEvent.objects.filter(
        action__in=["dispatch.workers_lost", "dispatch.swept"]
    ).exists()
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHED


# (c) a batch of 200 while the broker restarts and database connections drop --------------------
def _terminate_worker_connections() -> int:
    # As a database administrator would (the suite's app role may not end other sessions).
    with as_owner(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s "
            "AND pid <> pg_backend_pid()",
            [WORKER_APPLICATION_NAME],
        )
        return cursor.fetchone()[0]


def test_a_batch_of_200_survives_broker_restarts_and_dropped_connections(
    stacks, receiver, author, org, tmp_path
):
    # Given 200 due targets over 20 accounts (100 posts with two accounts each); a site that
    # answers one POST in ten with 500
    receiver.default = "ok"
    receiver.then(*(["ok"] * 9 + ["500"]) * 10)
    accounts = [webhook_account(org["north"], receiver.url, handle=f"site-{n}") for n in range(20)]
    ids = bulk_due_posts(author=author, team=org["north"], accounts=accounts, posts=100, per_post=2)
    assert len(ids) == 200
    disturbances = []

    if _postgres():
        # On the PostgreSQL pass: a Redis of our own, restarted empty mid-batch, and every
        # database connection of the worker terminated mid-batch
        redis = PrivateRedis(tmp_path).start()
        try:
            stack = stacks(redis.url)
            stack.worker()
            stack.wait(
                lambda: _statuses(ids)[TargetStatus.PUBLISHED] >= 40,
                timeout=60,
                what="40 published",
            )
            redis.restart()
            disturbances.append("redis restarted")
            stack.wait(
                lambda: _statuses(ids)[TargetStatus.PUBLISHED] >= 90,
                timeout=60,
                what="90 published",
            )
            dropped = _terminate_worker_connections()
            disturbances.append(f"{dropped} database connections dropped")
            stack.wait(
                lambda: _all_final(ids),
                timeout=90,
                what=lambda: f"every target final ({dict(_statuses(ids))}, {disturbances})",
            )
        finally:
            stack.close()
            redis.stop()
    else:
        # On the embedded pass (no server to restart): the worker is killed mid-batch, with
        # whatever it had taken, and another one starts
        stack = stacks()
        first = stack.worker(name="first")
        stack.wait(
            lambda: _statuses(ids)[TargetStatus.PUBLISHED] >= 40, timeout=60, what="40 published"
        )
        first.kill()
        disturbances.append("worker killed")
        stack.worker(name="second")
        stack.wait(lambda: _all_final(ids), timeout=90, what="every target final")

    # Then every target ended published or failed, none lost, none sent twice
    statuses = _statuses(ids)
    assert set(statuses) <= FINAL, (statuses, disturbances)
    keys = dict(PostTarget.objects.filter(pk__in=ids).values_list("idempotency_key", "status"))
    published = {str(k) for k, status in keys.items() if status == TargetStatus.PUBLISHED}
    assert set(receiver.published) == published  # every post on the site is a published target
    assert max(receiver.stored_posts.values()) == 1  # and none reached it twice
    assert statuses[TargetStatus.PUBLISHED] == 200, (statuses, disturbances)
    assert (
        not Post.objects.filter(pk__in=PostTarget.objects.filter(pk__in=ids).values("post_id"))
        .exclude(status=PostStatus.PUBLISHED)
        .exists()
    )


# (d) a freeze set during a batch ---------------------------------------------------------------
def test_a_freeze_during_a_batch_holds_the_rest_and_lifting_sends_them(
    stacks, receiver, author, org, lead
):
    # Given 60 due targets and a site that takes 50 ms a post
    receiver_delay(receiver, 0.05)
    accounts = [webhook_account(org["north"], receiver.url, handle=f"site-{n}") for n in range(6)]
    ids = bulk_due_posts(author=author, team=org["north"], accounts=accounts, posts=60)
    stack = stacks()
    stack.worker()
    stack.wait(lambda: len(receiver.published) >= 10, timeout=60, what="10 published")

    # When a lead freezes everything mid-batch
    freezes.freeze_create(by=lead, scope="everything", reason="Incident")
    freeze_at = time.time()

    # Then what had not gone out is held and stays held: nothing reaches the site any more
    stack.wait(
        lambda: (
            not {TargetStatus.QUEUED, TargetStatus.SENDING, TargetStatus.WAITING}
            & set(_statuses(ids))
        ),
        timeout=30,
        what="the batch to settle into published and held",
    )
    time.sleep(2.5)  # two more dispatcher runs
    statuses = _statuses(ids)
    assert statuses[TargetStatus.HELD] > 0, statuses
    assert statuses[TargetStatus.HELD] + statuses[TargetStatus.PUBLISHED] == 60
    assert len(receiver.published) == statuses[TargetStatus.PUBLISHED]
    late = [p for p in receiver.posts() if p.at > freeze_at + 6]  # past any send in flight
    assert late == []

    # When it is lifted, the rest goes out, once each
    freeze = freezes.freezes_for(user=lead).get(active=True)
    freezes.freeze_lift(freeze=freeze, by=lead, reason="Over")
    stack.wait(
        lambda: _statuses(ids)[TargetStatus.PUBLISHED] == 60, timeout=60, what="all 60 published"
    )
    assert len(receiver.published) == 60
    assert max(receiver.stored_posts.values()) == 1


def receiver_delay(receiver: WebhookReceiver, seconds: float) -> None:
    """Make the site take `seconds` per POST."""
    original = receiver._store

    def slow_store(key, text):
        time.sleep(seconds)
        return original(key, text)

    receiver._store = slow_store


# (e) an edit after approval racing the dispatcher ----------------------------------------------
def test_an_edit_racing_the_dispatcher_never_lets_old_or_unapproved_text_out(
    stacks, receiver, author, org
):
    # Given 30 approved posts falling due one every 100 ms from 2 s from now
    account = webhook_account(org["north"], receiver.url, handle="site")
    start = timezone.now() + timedelta(seconds=2)
    posts = []
    for number in range(30):
        post = approved_post(
            author=author, team=org["north"], accounts=[account], body=f"Approved text {number}."
        )
        due = start + timedelta(milliseconds=100 * number)
        PostTarget.objects.filter(post=post).update(next_attempt_at=due)
        posts.append((post, due))
    stack = stacks()
    stack.worker()

    # When their author edits each one around the time it falls due (before or after the
    # dispatcher takes it)
    edited, refused, errors = set(), set(), []
    rng = random.Random(5)

    def editor():
        try:
            for post, due in sorted(posts, key=lambda item: item[1]):
                delay = (due - timezone.now()).total_seconds() + rng.uniform(-0.8, 1.2)
                if delay > 0:
                    time.sleep(delay)
                try:
                    services.post_update(post=post, by=author, body=f"EDITED, unapproved {post.pk}")
                    edited.add(post.pk)
                except InvalidTransition:
                    refused.add(post.pk)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=editor)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []

    # Then an edited post goes back to draft and nothing of it is sent; a post whose edit was
    # refused (it was publishing already) went out with its approved text; nothing else did
    stack.wait(
        lambda: (
            not Post.objects.filter(
                pk__in=refused, status__in=[PostStatus.SCHEDULED, PostStatus.PUBLISHING]
            ).exists()
        ),
        timeout=60,
        what="the posts that were not edited to be published",
    )
    time.sleep(2)  # the dispatcher runs again: still nothing for the edited ones
    texts = receiver.texts()
    assert not [text for text in texts if "EDITED" in text]
    keys = {post.pk: str(PostTarget.objects.get(post=post).idempotency_key) for post, _due in posts}
    for post_id in edited:
        assert receiver.posts(keys[post_id]) == []
        assert Post.objects.get(pk=post_id).status == PostStatus.DRAFT
    for post_id in refused:
        [sent] = [p for p in receiver.posts(keys[post_id]) if p.status == 201]
        number = next(n for n, (post, _due) in enumerate(posts) if post.pk == post_id)
        assert sent.text == f"Approved text {number}."
    assert len(edited) + len(refused) == 30
    print(f"edited before the claim: {len(edited)}, refused (already publishing): {len(refused)}")
