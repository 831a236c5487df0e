"""The ingestion engine (inbox/ingestion.py, services.items_store): cursor, deduplication,
links to our posts, deleted items, adaptive intervals, the budget shared with publishing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from inbox import ingestion
from inbox.models import InboundItem, IngestState, ItemKind
from inbox.services import items_store
from networks import ratelimits
from networks.channels.errors import AuthExpired, RetryableError
from networks.models import AccountStatus, Channel
from publishing.models import Post, PostTarget, TargetStatus

from ..factories import SocialAccountFactory
from .conftest import inbound

pytestmark = pytest.mark.django_db


@pytest.fixture
def state(account):
    [claimed] = ingestion.claim_due()
    assert claimed == account.pk
    return IngestState.objects.get(account=account)


def _run(account):
    return ingestion.account_ingest(account_id=account.pk)


def test_a_run_keeps_each_item_once_and_moves_the_cursor_with_each_page(feed, account, state):
    feed.pages = [[inbound(1), inbound(2)], [inbound(2), inbound(3)]]  # 2 repeats at the edge

    run = _run(account)

    assert (run.added, run.pages) == (3, 2)
    assert sorted(InboundItem.objects.values_list("network_id", flat=True)) == ["1", "2", "3"]
    assert IngestState.objects.get(pk=state.pk).cursor == "2"
    events = AuditEvent.objects.filter(action="inbox.items_received").order_by("seq")
    assert [len(e.data["items"]) for e in events] == [2, 1]


def test_a_second_run_reads_from_where_the_first_ended_and_adds_nothing_twice(feed, account, state):
    feed.pages = [[inbound(1)]]
    _run(account)
    feed.pages.append([inbound(1), inbound(2)])

    run = _run(account)

    assert feed.calls == ["", "1"]
    assert run.added == 1
    assert InboundItem.objects.count() == 2


def test_a_run_stopped_by_a_failure_keeps_the_pages_before_it_and_resumes_after_them(
    feed, account, state
):
    feed.pages = [[inbound(1)], RetryableError("the server is busy", retry_after=30), [inbound(2)]]

    first = _run(account)
    assert (first.added, first.error) == (1, "the server is busy")
    assert IngestState.objects.get(pk=state.pk).cursor == "1"
    feed.pages[1] = [inbound(3)]
    IngestState.objects.filter(pk=state.pk).update(next_at=timezone.now())

    second = _run(account)

    assert feed.calls == ["", "1", "1", "2"]
    assert second.added == 2
    assert InboundItem.objects.count() == 3


def test_an_item_that_answers_our_post_is_linked_to_it_and_is_a_reply(feed, account, state, author):
    post = Post.objects.create(team=account.team, author=author, body="Launch at dawn.")
    ours = PostTarget.objects.create(
        post=post, social_account=account, status=TargetStatus.PUBLISHED, external_id="555"
    )
    feed.pages = [
        [
            inbound(1, in_reply_to_id="555", thread_id="555"),
            inbound(2, in_reply_to_id="999", thread_id="555"),  # deeper in our thread
            inbound(3, in_reply_to_id="999", thread_id="999"),  # someone else's thread
        ]
    ]

    _run(account)

    items = {i.network_id: i for i in InboundItem.objects.all()}
    assert (items["1"].target_id, items["1"].kind) == (ours.pk, ItemKind.REPLY)
    assert (items["2"].target_id, items["2"].kind) == (ours.pk, ItemKind.MENTION)
    assert items["3"].target_id is None


def test_an_item_deleted_upstream_is_marked_never_removed(feed, account, state):
    items_store(account=account, items=[inbound(1), inbound(2)])

    stored = items_store(
        account=account, items=[inbound(1, deleted=True), inbound(3, deleted=True)]
    )

    rows = {i.network_id: i for i in InboundItem.objects.all()}
    assert set(rows) == {"1", "2", "3"}
    assert (rows["1"].deleted_upstream, rows["2"].deleted_upstream) == (True, False)
    assert rows["3"].deleted_upstream is True  # first seen already deleted: kept, marked
    assert stored.marked_deleted == [rows["1"].pk]
    event = AuditEvent.objects.filter(action="inbox.items_received").order_by("-seq").first()
    assert event.data == {"items": [rows["3"].pk], "marked_deleted": [rows["1"].pk]}


def test_items_carry_their_signals(feed, account, state):
    feed.pages = [
        [
            inbound(1, text="This is a terrible, awful service and I am furious about it."),
            inbound(2, text="Merci beaucoup pour cette magnifique journée de lancement !"),
        ]
    ]

    _run(account)

    english = InboundItem.objects.get(network_id="1")
    french = InboundItem.objects.get(network_id="2")
    assert (english.language, english.sentiment) == ("en", "negative")
    assert english.sentiment_score < 0
    assert (french.language, french.sentiment, french.sentiment_score) == ("fr", "not_scored", None)


@pytest.mark.parametrize(
    ("current", "found", "failed", "expected"),
    [
        (240, 3, False, 120),
        (90, 3, False, 60),  # never below the least
        (60, 0, False, 90),
        (800, 0, False, 900),  # never above the most
        (100, 0, True, 200),
    ],
)
def test_the_interval_shrinks_with_activity_and_grows_with_quiet(
    settings, current, found, failed, expected
):
    settings.CXHUB_INBOX_MIN_INTERVAL_SECONDS = 60
    settings.CXHUB_INBOX_MAX_INTERVAL_SECONDS = 900

    assert ingestion.next_interval(current, found=found, failed=failed) == expected


def test_the_next_turn_follows_the_interval(feed, account, state):
    IngestState.objects.filter(pk=state.pk).update(interval_seconds=240)
    feed.pages = [[inbound(1)]]
    before = timezone.now()

    _run(account)

    state.refresh_from_db()
    assert state.interval_seconds == 120
    assert (
        before + timedelta(seconds=119) <= state.next_at <= timezone.now() + timedelta(seconds=121)
    )
    assert (state.items_total, state.failures, state.last_error) == (1, 0, "")


def test_a_network_asking_to_wait_is_waited_for(feed, account, state):
    feed.pages = [RetryableError("429 Too Many Requests", retry_after=1800)]

    _run(account)

    state.refresh_from_db()
    assert state.next_at >= timezone.now() + timedelta(seconds=1790)
    assert state.failures == 1


def test_a_turn_held_by_the_rate_limit_keeps_the_failed_runs_record(feed, account, state):
    feed.pages = [RetryableError("429 Too Many Requests", retry_after=600)]
    _run(account)
    failed = IngestState.objects.get(pk=state.pk)
    whose = ratelimits.caller(account_id=account.pk, channel="mastodon", host="social.example")
    ratelimits.block(whose.account, 600)  # as the network's 429 left it

    run = _run(account)

    assert run.skipped == "rate limit"
    assert feed.calls == [""]
    held = IngestState.objects.get(pk=state.pk)
    assert held.next_at >= timezone.now() + timedelta(seconds=590)
    assert (held.failures, held.last_error, held.last_run_at, held.interval_seconds) == (
        1,
        "429 Too Many Requests",
        failed.last_run_at,
        failed.interval_seconds,
    )


def test_reading_gives_way_while_only_publishings_reserve_is_left(feed, account, state, settings):
    settings.CXHUB_READ_RESERVE_FRACTION = 0.25
    whose = ratelimits.caller(account_id=account.pk, channel="mastodon", host="social.example")
    waits = ratelimits.waits_in(
        200, {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "70", "X-RateLimit-Reset": "600"}
    )
    assert set(waits) == {"reading"}  # publishing may still call
    ratelimits.block(whose.reading, 600)
    feed.pages = [[inbound(1)]]

    run = _run(account)

    assert run.skipped == "rate limit"
    assert feed.calls == []
    assert ratelimits.wait_for(whose) == 0  # publishing is not held by it
    state.refresh_from_db()
    assert state.next_at >= timezone.now() + timedelta(seconds=590)


def test_a_refused_token_asks_for_a_reconnect(feed, account, state):
    feed.pages = [AuthExpired("The access token is invalid")]

    _run(account)

    account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_RECONNECT
    assert AuditEvent.objects.filter(action="social_account.needs_reconnect").count() == 1


def test_the_dispatcher_claims_each_hearing_account_once_per_turn(feed, org, account):
    SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, sandbox=True)
    SocialAccountFactory(
        team=org["north"], channel=Channel.MASTODON, status=AccountStatus.DISCONNECTED
    )
    SocialAccountFactory(team=org["north"], channel=Channel.WEBHOOK)

    assert ingestion.claim_due() == [account.pk]
    assert ingestion.claim_due() == []  # leased until its run ends or the lease runs out
    assert ingestion.claim_due(now=timezone.now() + timedelta(minutes=11)) == [account.pk]


def test_the_dispatcher_queues_one_run_per_claimed_account(feed, account, monkeypatch):
    from inbox import tasks

    queued = []
    monkeypatch.setattr(tasks.ingest_account, "delay", queued.append)

    assert tasks.ingest_due() == 1
    assert queued == [account.pk]
    assert tasks.ingest_due() == 0


def test_a_page_kept_meanwhile_by_another_writer_is_read_again_next_run(
    feed, account, state, monkeypatch
):
    from django.db import IntegrityError

    from inbox import ingestion as engine

    feed.pages = [[inbound(1)]]
    real_store = engine.items_store

    def racing_store(**kwargs):
        monkeypatch.setattr(engine, "items_store", real_store)
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(engine, "items_store", racing_store)

    first = _run(account)
    assert first.error.startswith("duplicate key")
    assert IngestState.objects.get(pk=state.pk).cursor == ""
    IngestState.objects.filter(pk=state.pk).update(next_at=timezone.now())

    second = _run(account)

    assert second.added == 1
    assert feed.calls == ["", ""]
