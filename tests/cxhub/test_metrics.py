"""/metrics (cxhub/monitoring.py): behind its bearer token, parsed as Prometheus parses it, each
figure right for a small organisation, in a fixed number of queries whatever the rows."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from audit.services import record
from cxhub.celery import app
from networks.models import AccountStatus, Channel
from publishing.models import Post, PostStatus, PostTarget, PublishAttempt, TargetStatus

from ..factories import SocialAccountFactory

TOKEN = "metrics-token-" + "m" * 40
Outcome = PublishAttempt.Outcome


@pytest.fixture
def token(settings):
    settings.CXHUB_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, token=TOKEN) -> dict:
    """/metrics read and parsed: {family name: family}."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def value(families: dict, name: str, **labels) -> float:
    """The one sample of `name` whose labels include `labels` (0 when there is none)."""
    for family in families.values():
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return sample.value
    return 0


def _targets(*, author, account, count: int, status, due, post_status=PostStatus.SCHEDULED):
    posts = Post.objects.bulk_create(
        [
            Post(
                team=account.team,
                author=author,
                body=f"Post {n}",
                status=post_status,
                scheduled_at=due,
                content_hash="",
            )
            for n in range(count)
        ]
    )
    return PostTarget.objects.bulk_create(
        [
            PostTarget(post=post, social_account=account, status=status, next_attempt_at=due)
            for post in posts
        ]
    )


def _published(target, *, late: timedelta, outcome=Outcome.PUBLISHED):
    at = target.post.scheduled_at + late
    PostTarget.objects.filter(pk=target.pk).update(status=TargetStatus.PUBLISHED, published_at=at)
    PublishAttempt.objects.create(
        target=target,
        number=1,
        started_at=at - timedelta(seconds=1),
        finished_at=at,
        outcome=outcome,
    )


@pytest.fixture
def accounts(org):
    return {
        "mastodon": SocialAccountFactory(team=org["north"], channel=Channel.MASTODON),
        "webhook": SocialAccountFactory(
            team=org["north"], channel=Channel.WEBHOOK, base_url="https://hooks.example/in"
        ),
        "x": SocialAccountFactory(
            team=org["north"], channel=Channel.X, status=AccountStatus.NEEDS_RECONNECT
        ),
    }


# The door ---------------------------------------------------------------------------------------


def test_without_a_token_configured_there_is_no_metrics_page(client, db, settings):
    settings.CXHUB_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
    ],
)
def test_a_missing_or_wrong_token_is_refused_with_401(client, db, token, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"cxhub_" not in response.content


def test_the_right_token_reads_the_metrics(client, db, token):
    families = scrape(client)
    assert "cxhub_due_targets_unclaimed" in families


# The figures ------------------------------------------------------------------------------------


def test_each_figure_is_read_from_the_database(client, token, author, accounts):
    now = timezone.now()
    mastodon, webhook = accounts["mastodon"], accounts["webhook"]
    # Given 3 due targets no dispatcher claimed (one due for 10 minutes), 1 waiting for later,
    # 1 waiting whose post is still in review (not the dispatcher's), 2 queued, 1 held
    due = _targets(author=author, account=mastodon, count=2, status=TargetStatus.WAITING, due=now)
    due += _targets(
        author=author,
        account=webhook,
        count=1,
        status=TargetStatus.WAITING,
        due=now - timedelta(minutes=10),
    )
    _targets(
        author=author,
        account=mastodon,
        count=1,
        status=TargetStatus.WAITING,
        due=now + timedelta(hours=1),
    )
    _targets(
        author=author,
        account=mastodon,
        count=1,
        status=TargetStatus.WAITING,
        due=now - timedelta(hours=1),
        post_status=PostStatus.IN_REVIEW,
    )
    _targets(author=author, account=webhook, count=2, status=TargetStatus.QUEUED, due=now)
    _targets(author=author, account=accounts["x"], count=1, status=TargetStatus.HELD, due=now)
    # and, within the window, 2 published (3 s and 90 s late), 1 try that will be retried;
    # one published two hours ago, outside the window
    sent = _targets(author=author, account=webhook, count=4, status=TargetStatus.SENDING, due=now)
    _published(sent[0], late=timedelta(seconds=3))
    _published(sent[1], late=timedelta(seconds=90), outcome=Outcome.RECONCILED)
    PublishAttempt.objects.create(
        target=sent[2], number=1, started_at=now, finished_at=now, outcome=Outcome.RETRYABLE
    )
    old = _targets(
        author=author,
        account=webhook,
        count=1,
        status=TargetStatus.SENDING,
        due=now - timedelta(hours=2),
    )
    _published(old[0], late=timedelta(seconds=5))

    # When Prometheus scrapes
    families = scrape(client)

    # Then
    assert value(families, "cxhub_due_targets_unclaimed") == 3
    assert 600 <= value(families, "cxhub_due_targets_oldest_age_seconds") < 700
    assert value(families, "cxhub_targets", channel="mastodon", status="waiting") == 4
    assert value(families, "cxhub_targets", channel="webhook", status="waiting") == 1
    assert value(families, "cxhub_targets", channel="webhook", status="queued") == 2
    assert value(families, "cxhub_targets", channel="x", status="held") == 1
    assert value(families, "cxhub_targets", channel="webhook", status="sending") == 2
    assert value(families, "cxhub_targets", status="published") == 0  # finished: not a gauge
    assert value(families, "cxhub_publish_outcomes", channel="webhook", outcome="published") == 1
    assert value(families, "cxhub_publish_outcomes", channel="webhook", outcome="reconciled") == 1
    assert value(families, "cxhub_publish_outcomes", channel="webhook", outcome="retryable") == 1
    lateness = "cxhub_publish_lateness_seconds_bucket"
    assert value(families, lateness, le="1.0") == 0
    assert value(families, lateness, le="5.0") == 1
    assert value(families, lateness, le="60.0") == 1
    assert value(families, lateness, le="120.0") == 2
    assert value(families, lateness, le="+Inf") == 2
    assert value(families, "cxhub_publish_lateness_seconds_gsum") == pytest.approx(93)
    assert value(families, "cxhub_social_accounts", channel="x", status="needs_reconnect") == 1
    assert value(families, "cxhub_social_accounts", channel="mastodon", status="connected") == 1


def test_the_oldest_unsealed_audit_event_and_the_window(client, db, token, settings):
    settings.CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS = 60
    assert value(scrape(client), "cxhub_audit_oldest_unsealed_event_age_seconds") == 0
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        with transaction.atomic():
            record(actor=None, action="test.happened", object_type="test.thing", object_id="1")
        clock.move_to(start + timedelta(seconds=100))
        families = scrape(client)
    assert value(families, "cxhub_audit_oldest_unsealed_event_age_seconds") == pytest.approx(100)
    assert value(families, "cxhub_audit_checkpoint_window_seconds") == 60


def test_queue_depth_is_read_from_the_broker(client, db, token):
    # Given two messages waiting in the default queue (an unrouted task no worker knows: nothing
    # runs them)
    queue = app.conf.task_default_queue
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)
        for _ in range(2):
            app.send_task("tests.metrics.nobody", connection=conn)
    try:
        families = scrape(client)
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    assert value(families, "cxhub_broker_up") == 1
    assert value(families, "cxhub_queue_depth", queue=queue) == 2


def test_an_unreachable_broker_leaves_the_database_figures(client, db, token, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(app, "connection_for_read", refuse)
    families = scrape(client)
    assert value(families, "cxhub_broker_up") == 0
    assert "cxhub_queue_depth" not in families
    assert "cxhub_due_targets_unclaimed" in families


@pytest.mark.parametrize("rows", [10, 1000])
def test_a_scrape_takes_the_same_queries_for_10_or_1000_rows(
    client, token, author, accounts, rows, django_assert_num_queries
):
    now = timezone.now()
    per = rows // 2
    _targets(author=author, account=accounts["mastodon"], count=per, status="waiting", due=now)
    sent = _targets(
        author=author, account=accounts["webhook"], count=rows - per, status="sending", due=now
    )
    for target in sent[:5]:
        _published(target, late=timedelta(seconds=2))
    SocialAccountFactory.create_batch(rows // 10, team=accounts["x"].team)
    with transaction.atomic():
        for n in range(rows // 10):
            record(actor=None, action="test.happened", object_type="test.thing", object_id=str(n))
    # due, open targets, outcomes, lateness, accounts; the audit lag's four
    with django_assert_num_queries(9):
        families = scrape(client)
    assert value(families, "cxhub_due_targets_unclaimed") == per


def test_request_metrics_count_each_answer_by_route(client, db, token):
    before = value(scrape(client), "cxhub_http_requests_total", route="healthz", status="200")
    for _ in range(3):
        client.get("/healthz")
    client.get("/no/such/page/")
    families = scrape(client)
    assert value(families, "cxhub_http_requests_total", route="healthz", status="200") == before + 3
    assert value(families, "cxhub_http_requests_total", route="unmatched", status="404") >= 1
    assert (
        value(families, "cxhub_http_request_duration_seconds_count", route="healthz", method="GET")
        >= 3
    )


# The settings ---------------------------------------------------------------------------------


_OURS = {"CXHUB_METRICS_TOKEN", "CXHUB_LOG_FORMAT", "DEBUG"}


def _settings_in_a_new_process(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import tests.settings as s; print(s.CXHUB_METRICS_TOKEN, s.CXHUB_LOG_FORMAT)",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env={
            **{k: v for k, v in os.environ.items() if k.split("_FILE")[0] not in _OURS},
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_short_token_or_an_unknown_log_format_stops_the_start():
    short = _settings_in_a_new_process(CXHUB_METRICS_TOKEN="too-short")
    assert short.returncode != 0 and "CXHUB_METRICS_TOKEN is too short" in short.stderr
    xml = _settings_in_a_new_process(CXHUB_LOG_FORMAT="xml")
    assert xml.returncode != 0 and "CXHUB_LOG_FORMAT='xml'" in xml.stderr


def test_the_token_may_come_from_a_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    read = _settings_in_a_new_process(CXHUB_METRICS_TOKEN_FILE=str(secret))
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == [TOKEN, "json"]
