"""What comes back from Bluesky (issue 17): the channel's fetch_inbound against the PDS test
server's app.bsky.notification.listNotifications."""

from datetime import UTC, datetime, timedelta

import pytest

from networks.channels import get_channel
from networks.channels.bluesky import LATE_MARGIN, NOTIFICATIONS
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "0b7f6c1e-2d4a-4c8e-9a11-5e6f7a8b9c0d"


@pytest.fixture
def channel():
    return get_channel("bluesky")


@pytest.fixture
def our_post(channel, bluesky_account):
    """A post North published through the channel: what publish() stored for it."""
    return channel.publish(bluesky_account, "Doors open at 9.", [], idempotency_key=KEY)


def walk(channel, account, cursor, *, limit, calls=50):
    """Call fetch_inbound until nothing more is waiting; every page and the last cursor."""
    pages = []
    for _ in range(calls):
        page = channel.fetch_inbound(account, cursor, limit=limit)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor
    raise AssertionError(f"still more after {calls} calls")


def ids(pages):
    return [item.network_id for page in pages for item in page.items]


def test_bluesky_hears_back(channel):
    assert channel.hears_back is True


# --- reading incrementally -------------------------------------------------------------------


def test_the_first_call_takes_the_newest_page_only(channel, bluesky_account, bluesky_server):
    older = [bluesky_server.add_mention(f"Old news {n} @north.test") for n in range(4)]
    newest = [bluesky_server.add_mention(f"Fresh {n} @north.test") for n in range(3)]

    page = channel.fetch_inbound(bluesky_account, "", limit=3)
    again = channel.fetch_inbound(bluesky_account, page.cursor, limit=3)

    assert sorted(item.network_id for item in page.items) == sorted(newest)
    assert page.more is False
    # What came before cxhub listened is never back-filled, even within the late margin.
    assert again.items == []
    assert again.cursor == page.cursor
    assert not set(older) & set(ids([page, again]))


def test_a_quiet_call_returns_nothing_and_the_cursor_it_was_given(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.add_mention()
    first = channel.fetch_inbound(bluesky_account, "")

    quiet = channel.fetch_inbound(bluesky_account, first.cursor)
    still = channel.fetch_inbound(bluesky_account, quiet.cursor)

    assert len(first.items) == 1
    assert (quiet.items, quiet.cursor, quiet.more) == ([], first.cursor, False)
    assert (still.items, still.cursor) == ([], first.cursor)


def test_a_later_call_returns_only_what_is_new(channel, bluesky_account, bluesky_server):
    seen = bluesky_server.add_mention("First @north.test")
    first = channel.fetch_inbound(bluesky_account, "")
    new = [bluesky_server.add_mention(f"Next {n} @north.test") for n in range(2)]

    later = channel.fetch_inbound(bluesky_account, first.cursor)

    assert [item.network_id for item in first.items] == [seen]
    assert sorted(item.network_id for item in later.items) == sorted(new)
    assert later.cursor != first.cursor
    assert channel.fetch_inbound(bluesky_account, later.cursor).items == []


def test_a_first_call_on_an_empty_list_still_marks_where_reading_starts(
    channel, bluesky_account, bluesky_server
):
    empty = channel.fetch_inbound(bluesky_account, "", limit=2)
    arrived = [bluesky_server.add_mention(f"Hello {n} @north.test") for n in range(5)]

    pages, _ = walk(channel, bluesky_account, empty.cursor, limit=2)

    # Everything came after cxhub started listening, so all of it is read, not the newest page.
    assert empty.items == [] and empty.cursor != ""
    assert sorted(ids(pages)) == sorted(arrived)


def test_it_asks_for_mentions_replies_and_quotes_only(channel, bluesky_account, bluesky_server):
    channel.fetch_inbound(bluesky_account, "", limit=40)

    [query] = bluesky_server.notification_queries
    assert query["reasons"] == ["reply", "mention", "quote"]
    assert query["limit"] == ["40"]
    assert "cursor" not in query


def test_likes_are_left_out_even_when_the_server_ignores_reasons(
    channel, bluesky_account, bluesky_server, our_post
):
    bluesky_server.ignore_reasons = True
    bluesky_server.add_like(our_post.external_id)
    mention = bluesky_server.add_mention()
    first = channel.fetch_inbound(bluesky_account, "")
    bluesky_server.add_like(our_post.external_id, author="critic.test")
    reply = bluesky_server.add_reply(our_post.external_id, "Thanks!")
    bluesky_server.add_like(our_post.external_id, author="friend.test")

    later = channel.fetch_inbound(bluesky_account, first.cursor)

    assert [item.network_id for item in first.items] == [mention]
    assert [item.network_id for item in later.items] == [reply]


def test_a_long_gap_is_walked_in_bounded_calls_losing_nothing_at_page_edges(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.add_mention("Before @north.test")
    first = channel.fetch_inbound(bluesky_account, "")
    # 23 new notifications, many sharing one indexedAt so that ties fall across page edges.
    start = bluesky_server.clock + timedelta(seconds=1)
    gap = [
        bluesky_server.add_mention(f"Gap {n} @north.test", at=start + timedelta(seconds=n // 4))
        for n in range(23)
    ]

    pages, cursor = walk(channel, bluesky_account, first.cursor, limit=5)

    assert all(len(page.items) <= 5 for page in pages)
    assert [page.more for page in pages] == [True] * (len(pages) - 1) + [False]
    assert sorted(ids(pages)) == sorted(gap)  # each exactly once
    assert channel.fetch_inbound(bluesky_account, cursor).items == []


def test_what_arrives_during_a_walk_is_taken_after_it(channel, bluesky_account, bluesky_server):
    first = channel.fetch_inbound(bluesky_account, "")
    gap = [bluesky_server.add_mention(f"Gap {n} @north.test") for n in range(12)]
    part = channel.fetch_inbound(bluesky_account, first.cursor, limit=5)
    during = [bluesky_server.add_reply(gap[0], f"Meanwhile {n}") for n in range(3)]

    rest, cursor = walk(channel, bluesky_account, part.cursor, limit=5)
    after, _ = walk(channel, bluesky_account, cursor, limit=5)

    assert part.more is True
    assert sorted(ids([part, *rest])) == sorted(gap)
    assert sorted(ids(after)) == sorted(during)


def test_a_tiny_limit_reads_past_many_taken_items_without_repeating_them(
    channel, bluesky_account, bluesky_server
):
    for n in range(30):
        bluesky_server.add_mention(f"Busy morning {n} @north.test")
    first = channel.fetch_inbound(bluesky_account, "", limit=40)
    new = [bluesky_server.add_mention(f"Later {n} @north.test") for n in range(2)]

    pages, cursor = walk(channel, bluesky_account, first.cursor, limit=1)

    # Each call reads a bounded number of one-item pages down through what it already took.
    assert len(first.items) == 30
    assert sorted(ids(pages)) == sorted(new)
    assert channel.fetch_inbound(bluesky_account, cursor, limit=1).items == []


def test_a_notification_indexed_late_within_the_margin_is_still_taken(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.add_mention("On time @north.test")
    first = channel.fetch_inbound(bluesky_account, "")
    # The AppView places a post by its creation time: one indexed late sorts below the newest.
    late_at = bluesky_server.clock - LATE_MARGIN + timedelta(seconds=30)
    late = bluesky_server.add_mention("Late @north.test", at=late_at)

    later = channel.fetch_inbound(bluesky_account, first.cursor)

    assert [item.network_id for item in later.items] == [late]
    assert channel.fetch_inbound(bluesky_account, later.cursor).items == []


def test_a_failed_page_inside_a_walk_loses_nothing(channel, bluesky_account, bluesky_server):
    first = channel.fetch_inbound(bluesky_account, "")
    gap = [bluesky_server.add_mention(f"Gap {n} @north.test") for n in range(8)]
    part = channel.fetch_inbound(bluesky_account, first.cursor, limit=3)
    bluesky_server.fail_next(NOTIFICATIONS, "503")

    with pytest.raises(RetryableError):
        channel.fetch_inbound(bluesky_account, part.cursor, limit=3)
    rest, _ = walk(channel, bluesky_account, part.cursor, limit=3)

    assert sorted(ids([part, *rest])) == sorted(gap)


# --- what each item says ---------------------------------------------------------------------


def test_a_reply_to_our_post_points_at_the_id_publish_stored(
    channel, bluesky_account, bluesky_server, our_post
):
    first = channel.fetch_inbound(bluesky_account, "")
    uri = bluesky_server.add_reply(
        our_post.external_id, "Will there be parking?", author="critic.test", langs=("en", "fr")
    )

    [item] = channel.fetch_inbound(bluesky_account, first.cursor).items

    rkey = uri.rsplit("/", 1)[1]
    [notification] = [n for n in bluesky_server.notifications if n["uri"] == uri]
    assert our_post.external_id.startswith(f"at://{bluesky_server.did}/app.bsky.feed.post/")
    assert item.kind == "reply"
    assert item.network_id == uri
    assert item.in_reply_to_id == our_post.external_id
    assert item.thread_id == our_post.external_id
    assert item.text == "Will there be parking?"
    assert item.language == "en"
    assert (item.author_handle, item.author_name, item.author_id) == (
        "critic.test",
        "Dr. Critic",
        "did:plc:critic7test",
    )
    assert item.url == f"https://bsky.app/profile/critic.test/post/{rkey}"
    created = datetime.fromisoformat(notification["record"]["createdAt"])
    assert item.created_at == created and item.created_at.tzinfo is not None
    assert item.deleted is False
    assert item.raw == notification


def test_a_reply_deeper_in_our_thread_keeps_our_post_as_its_thread(
    channel, bluesky_account, bluesky_server, our_post
):
    first = channel.fetch_inbound(bluesky_account, "")
    answer = bluesky_server.add_reply(our_post.external_id, "Is it free?")
    deeper = bluesky_server.add_reply(answer, "It is, I went last year.", author="fan.test")

    items = channel.fetch_inbound(bluesky_account, first.cursor).items

    [item] = [i for i in items if i.network_id == deeper]
    assert (item.in_reply_to_id, item.thread_id) == (answer, our_post.external_id)


def test_a_reply_naming_our_repo_by_handle_matches_our_post_by_did(
    channel, bluesky_account, bluesky_server, our_post
):
    first = channel.fetch_inbound(bluesky_account, "")
    by_handle = our_post.external_id.replace(bluesky_server.did, "north.test")
    bluesky_server.add_reply(by_handle, "Written by a client that kept the handle.")

    [item] = channel.fetch_inbound(bluesky_account, first.cursor).items

    assert item.in_reply_to_id == item.thread_id == our_post.external_id


def test_mentions_and_quotes_are_mentions(channel, bluesky_account, bluesky_server, our_post):
    first = channel.fetch_inbound(bluesky_account, "")
    mention = bluesky_server.add_mention("Ask @north.test about it", author="fan.test", langs=())
    quote = bluesky_server.add_quote(our_post.external_id, "This is wrong.")

    items = {i.network_id: i for i in channel.fetch_inbound(bluesky_account, first.cursor).items}

    assert (items[mention].kind, items[quote].kind) == ("mention", "mention")
    assert items[mention].in_reply_to_id == items[mention].thread_id == ""
    assert items[mention].language == ""
    assert items[mention].author_name == ""  # fan.test has no display name
    assert items[quote].raw["reasonSubject"] == our_post.external_id


def test_the_creation_time_falls_back_to_the_indexing_time(
    channel, bluesky_account, bluesky_server
):
    uri = bluesky_server.add_mention()
    [notification] = bluesky_server.notifications
    notification["record"]["createdAt"] = "not a time"

    [item] = channel.fetch_inbound(bluesky_account, "").items

    assert item.network_id == uri
    assert item.created_at == datetime.fromisoformat(notification["indexedAt"])
    assert item.created_at.tzinfo == UTC


def test_a_deleted_post_is_no_longer_listed_and_a_hidden_one_is_marked_deleted(
    channel, bluesky_account, bluesky_server, our_post
):
    first = channel.fetch_inbound(bluesky_account, "")
    deleted = bluesky_server.add_reply(our_post.external_id, "I take that back.")
    hidden = bluesky_server.add_reply(our_post.external_id, "Something vile.")
    kept = bluesky_server.add_reply(our_post.external_id, "Lovely.")
    bluesky_server.delete_post(deleted)
    bluesky_server.hide(hidden)

    items = {i.network_id: i for i in channel.fetch_inbound(bluesky_account, first.cursor).items}

    assert set(items) == {hidden, kept}
    assert (items[hidden].deleted, items[kept].deleted) == (True, False)


# --- errors ----------------------------------------------------------------------------------


def test_a_rate_limit_answer_is_retryable_after_the_reset(channel, bluesky_account, bluesky_server):
    bluesky_server.fail_next(NOTIFICATIONS, "429", reset_in=120)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_inbound(bluesky_account, "")

    assert caught.value.http_status == 429
    assert 110 <= caught.value.retry_after <= 120


def test_an_expired_session_is_renewed_once_and_the_call_made_again(
    channel, bluesky_account, bluesky_server
):
    mention = bluesky_server.add_mention()
    bluesky_server.expire_access_tokens()

    page = channel.fetch_inbound(bluesky_account, "")

    assert [item.network_id for item in page.items] == [mention]
    assert bluesky_server.refresh_calls == 1


def test_an_expired_session_that_cannot_be_renewed_is_auth_expired(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.expire_access_tokens()
    bluesky_server.revoke_refresh_tokens()

    with pytest.raises(AuthExpired):
        channel.fetch_inbound(bluesky_account, "")


@pytest.mark.parametrize(
    "body",
    [
        {},
        [1, 2],
        {"notifications": "none"},
        {"notifications": [7]},
        {"notifications": [{"uri": 5, "indexedAt": "2026-03-02T09:00:00Z"}]},
        {"notifications": [{"uri": "at://did:plc:x/app.bsky.feed.post/3k", "indexedAt": "soon"}]},
        {"notifications": [{"uri": "at://did:plc:x/app.bsky.feed.post/3k"}]},
        # A time without its offset is not an atproto datetime.
        {"notifications": [{"uri": "at://x/app.bsky.feed.post/3k", "indexedAt": "2026-03-02"}]},
    ],
)
def test_a_malformed_answer_is_retryable(channel, bluesky_account, bluesky_server, body):
    bluesky_server.fail_next(NOTIFICATIONS, "json", body=body)

    with pytest.raises(RetryableError):
        channel.fetch_inbound(bluesky_account, "")


def test_odd_fields_of_a_notification_are_read_leniently(channel, bluesky_account, bluesky_server):
    body = {
        "notifications": [
            {
                "uri": "at://did:plc:odd/app.bsky.feed.post/3kodd",
                "indexedAt": "2026-03-02T09:00:00.123456789Z",
                "reason": "reply",
                "author": "nobody",
                "record": {"text": 12, "langs": [3], "reply": {"parent": "x", "root": None}},
                "labels": ["!hide", {"val": "!hide", "neg": True}],
            }
        ]
    }
    bluesky_server.fail_next(NOTIFICATIONS, "json", body=body)

    [item] = channel.fetch_inbound(bluesky_account, "").items

    assert (item.kind, item.text, item.language, item.author_handle) == ("reply", "", "", "")
    assert (item.in_reply_to_id, item.thread_id, item.deleted) == ("", "", False)
    assert item.url == "https://bsky.app/profile/did:plc:odd/post/3kodd"


def test_a_server_error_is_retryable(channel, bluesky_account, bluesky_server):
    bluesky_server.fail_next(NOTIFICATIONS, "502")

    with pytest.raises(RetryableError) as caught:
        channel.fetch_inbound(bluesky_account, "")

    assert caught.value.http_status == 502


@pytest.mark.parametrize("cursor", ["not json", '{"v": 2}', '{"v": 1, "mark": "soon"}', "[]"])
def test_a_cursor_that_is_not_ours_is_refused(channel, bluesky_account, cursor):
    with pytest.raises(PermanentError, match="Not a Bluesky inbound cursor"):
        channel.fetch_inbound(bluesky_account, cursor)
