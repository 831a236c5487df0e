"""What comes back on LinkedIn: the comments on the Page's posts, read post by post from a
LinkedIn test server on 127.0.0.1 (Posts API and the socialActions comments of comments-api)."""

import json
import time
from datetime import UTC, datetime

import pytest

from networks.channels import get_channel
from networks.channels import linkedin as linkedin_module
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

from . import linkedin_server as server_module

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

PAGE = "urn:li:organization:2414183"
ANA = "urn:li:person:ana111"
BEN = "urn:li:person:ben222"


@pytest.fixture
def channel():
    return get_channel("linkedin")


def publish(channel, account, text: str) -> str:
    """One of our posts, as dispatch leaves it: its external_id."""
    return channel.publish(account, text, [], idempotency_key=text).external_id


def comment_reads(server) -> list[str]:
    return [path for method, path in server.requests if path.startswith("/rest/socialActions/")]


def reply_reads(server) -> list[str]:
    return [path for path in comment_reads(server) if "urn%3Ali%3Acomment" in path]


def walk(channel, account, cursor: str, *, limit: int) -> tuple[list, str, int]:
    """Every page until `more` is False: the items, the last cursor, the calls made."""
    items, calls = [], 0
    while True:
        page = channel.fetch_inbound(account, cursor, limit=limit)
        calls += 1
        assert len(page.items) <= limit
        items += page.items
        cursor = page.cursor
        if not page.more:
            return items, cursor, calls


def test_linkedin_hears_back(channel):
    assert channel.hears_back is True


# --- first call and increments ----------------------------------------------------------------


def test_the_first_call_takes_only_the_newest_comments(channel, linkedin_account, linkedin_server):
    older = publish(channel, linkedin_account, "Older post.")
    newer = publish(channel, linkedin_account, "Newer post.")
    linkedin_server.add_comment(older, "Days ago.", actor=ANA, age_seconds=5 * 86400)
    linkedin_server.add_comment(older, "Yesterday.", actor=BEN, age_seconds=86400)
    latest = linkedin_server.add_comment(newer, "Just now.", actor=ANA, age_seconds=60)
    second = linkedin_server.add_comment(older, "An hour ago.", actor=BEN, age_seconds=3600)

    page = channel.fetch_inbound(linkedin_account, "", limit=2)

    assert {item.network_id for item in page.items} == {latest, second}
    assert page.more is False  # the older ones are never back-filled
    assert json.loads(page.cursor)["v"] == linkedin_module.CURSOR_VERSION


def test_a_quiet_second_call_returns_nothing_and_the_same_cursor(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Quiet post.")
    linkedin_server.add_comment(post, "Hello.", actor=ANA, age_seconds=30)
    first = channel.fetch_inbound(linkedin_account, "")

    second = channel.fetch_inbound(linkedin_account, first.cursor)

    assert second.items == []
    assert second.cursor == first.cursor
    assert second.more is False


def test_a_comment_on_our_post_answers_the_post_as_publish_stored_it(
    channel, linkedin_account, linkedin_server
):
    ours = publish(channel, linkedin_account, "Our clinic opens on Monday.")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    urn = linkedin_server.add_comment(ours, "Which clinic? 🙂", actor=ANA)

    page = channel.fetch_inbound(linkedin_account, cursor)

    [item] = page.items
    stored = next(c for c in linkedin_server.comments if c["urn"] == urn)
    assert ours.startswith("urn:li:share:")
    assert item.network_id == urn
    assert urn.startswith("urn:li:comment:(urn:li:activity:")  # not the share URN
    assert item.kind == "comment"
    assert item.in_reply_to_id == ours
    assert item.thread_id == ours
    assert item.text == "Which clinic? 🙂"
    assert item.author_id == ANA
    assert item.author_handle == ANA
    assert item.url == f"https://www.linkedin.com/feed/update/{ours}/"
    assert item.created_at == datetime.fromtimestamp(stored["created"] / 1000, tz=UTC)
    assert item.language == ""
    assert item.deleted is False
    assert item.raw["$URN"] == urn
    assert item.raw["object"] == linkedin_server.activities[ours]


def test_only_the_comments_made_since_come_on_the_next_call(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "A post with talk.")
    linkedin_server.add_comment(post, "First.", actor=ANA, age_seconds=120)
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    new = {
        linkedin_server.add_comment(post, "Second.", actor=BEN),
        linkedin_server.add_comment(post, "Third.", actor=ANA),
    }

    page = channel.fetch_inbound(linkedin_account, cursor)
    again = channel.fetch_inbound(linkedin_account, page.cursor)

    assert {item.network_id for item in page.items} == new
    assert again.items == []


def test_every_comment_on_a_post_published_since_is_taken(
    channel, linkedin_account, linkedin_server
):
    publish(channel, linkedin_account, "Before.")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    later = publish(channel, linkedin_account, "After.")
    made = {linkedin_server.add_comment(later, f"Reply {n}.", actor=ANA) for n in range(3)}

    page = channel.fetch_inbound(linkedin_account, cursor)

    assert {item.network_id for item in page.items} == made
    assert {item.in_reply_to_id for item in page.items} == {later}


def test_comments_by_the_page_itself_are_not_inbound(channel, linkedin_account, linkedin_server):
    post = publish(channel, linkedin_account, "We answer here.")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    question = linkedin_server.add_comment(post, "When?", actor=ANA)
    linkedin_server.add_comment(post, "Thanks all!", actor=PAGE)
    linkedin_server.add_comment(post, "Monday.", actor=PAGE, parent=question)

    page = channel.fetch_inbound(linkedin_account, cursor)

    assert [item.network_id for item in page.items] == [question]


# --- replies to comments ----------------------------------------------------------------------


def test_a_reply_to_a_comment_answers_that_comment_in_the_posts_thread(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Flu jabs are open.")
    question = linkedin_server.add_comment(post, "Where?", actor=ANA, age_seconds=3600)
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    reply = linkedin_server.add_comment(post, "Same question.", actor=BEN, parent=question)

    page = channel.fetch_inbound(linkedin_account, cursor)

    [item] = page.items
    assert item.network_id == reply
    assert item.in_reply_to_id == question
    assert item.thread_id == post
    assert item.url == f"https://www.linkedin.com/feed/update/{post}/"


def test_replies_are_read_only_where_linkedin_counts_a_change(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Budget post.")
    question = linkedin_server.add_comment(post, "Why?", actor=ANA, age_seconds=600)
    linkedin_server.add_comment(post, "Because.", actor=BEN, parent=question, age_seconds=500)
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    linkedin_server.requests.clear()

    quiet = channel.fetch_inbound(linkedin_account, cursor)
    assert reply_reads(linkedin_server) == []
    reply = linkedin_server.add_comment(post, "I disagree.", actor=ANA, parent=question)
    page = channel.fetch_inbound(linkedin_account, quiet.cursor)

    assert [item.network_id for item in page.items] == [reply]
    assert len(reply_reads(linkedin_server)) == 1


def test_the_first_call_counts_replies_among_the_newest_and_back_fills_none(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Threads from the start.")
    question = linkedin_server.add_comment(post, "Q?", actor=ANA, age_seconds=600)
    linkedin_server.add_comment(post, "Old answer.", actor=BEN, parent=question, age_seconds=500)
    newest = linkedin_server.add_comment(post, "New answer.", actor=ANA, parent=question)

    first = channel.fetch_inbound(linkedin_account, "", limit=1)
    later = linkedin_server.add_comment(post, "Later answer.", actor=BEN, parent=question)
    second = channel.fetch_inbound(linkedin_account, first.cursor)

    assert [item.network_id for item in first.items] == [newest]
    assert [item.network_id for item in second.items] == [later]


def test_replies_cut_by_the_limit_are_all_taken_on_the_next_calls(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "A long thread.")
    question = linkedin_server.add_comment(post, "Q?", actor=ANA, age_seconds=600)
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    start = int(time.time() * 1000) - 60_000
    made = [
        linkedin_server.add_comment(
            post, f"Answer {n}.", actor=BEN, parent=question, millis=start + n // 2
        )
        for n in range(5)
    ]

    items, cursor, calls = walk(channel, linkedin_account, cursor, limit=2)
    quiet = channel.fetch_inbound(linkedin_account, cursor)

    # Oldest first, URNs breaking ties: the order they were made in.
    assert [item.network_id for item in items] == made
    assert calls == 3
    assert quiet.items == []


def test_without_reply_counts_every_thread_is_read_and_each_reply_taken_once(
    channel, linkedin_account, linkedin_server
):
    linkedin_server.comment_summaries = False
    post = publish(channel, linkedin_account, "No counts.")
    question = linkedin_server.add_comment(post, "Open late?", actor=ANA, age_seconds=600)
    linkedin_server.add_comment(post, "Old reply.", actor=BEN, parent=question, age_seconds=500)
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    reply = linkedin_server.add_comment(post, "New reply.", actor=BEN, parent=question)

    page = channel.fetch_inbound(linkedin_account, cursor)
    again = channel.fetch_inbound(linkedin_account, page.cursor)

    assert [item.network_id for item in page.items] == [reply]
    assert again.items == []


# --- pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["newest_first", "oldest_first"])
def test_paging_walks_to_the_end_without_losing_comments_at_the_edges(
    channel, linkedin_account, linkedin_server, monkeypatch, order
):
    monkeypatch.setattr(linkedin_module, "COMMENTS_PAGE", 3)
    monkeypatch.setattr(linkedin_module, "PAGE_OVERLAP", 1)
    linkedin_server.comment_order = order
    post = publish(channel, linkedin_account, "A busy post.")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    start = int(time.time() * 1000) - 60_000
    # Eleven comments, three to a millisecond: a limit of 4 cuts inside each group.
    made = [
        linkedin_server.add_comment(post, f"Comment {n}.", actor=ANA, millis=start + n // 3)
        for n in range(11)
    ]

    items, cursor, calls = walk(channel, linkedin_account, cursor, limit=4)
    quiet = channel.fetch_inbound(linkedin_account, cursor)

    assert sorted(item.network_id for item in items) == sorted(made)
    assert len(items) == len(made)  # none twice
    assert calls == 3
    times = [item.created_at for item in items]
    assert times == sorted(times)  # oldest first, so a cut never passes over one
    assert quiet.items == []


def test_a_comment_deleted_between_two_pages_does_not_hide_the_next_one(
    channel, linkedin_account, linkedin_server, monkeypatch
):
    monkeypatch.setattr(linkedin_module, "COMMENTS_PAGE", 3)
    monkeypatch.setattr(linkedin_module, "PAGE_OVERLAP", 1)
    post = publish(channel, linkedin_account, "Contested post.")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    made = [
        linkedin_server.add_comment(post, f"Comment {n}.", actor=BEN, age_seconds=60 - n)
        for n in range(7)
    ]
    deleted = []

    def delete_the_newest_once(target: str, start: int) -> None:
        if start > 0 and not deleted:
            deleted.append(made[-1])
            linkedin_server.delete_comment(made[-1])  # every later one moves up one place

    linkedin_server.comment_page_hook = delete_the_newest_once

    page = channel.fetch_inbound(linkedin_account, cursor)

    assert deleted
    assert set(made[:-1]) <= {item.network_id for item in page.items}


def test_pages_go_on_while_linkedin_gives_fewer_than_asked(
    channel, linkedin_account, linkedin_server, monkeypatch
):
    monkeypatch.setattr(server_module, "MAX_COMMENTS_COUNT", 2)
    post = publish(channel, linkedin_account, "Capped pages.")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    made = {linkedin_server.add_comment(post, f"Note {n}.", actor=ANA) for n in range(7)}

    page = channel.fetch_inbound(linkedin_account, cursor)

    assert {item.network_id for item in page.items} == made


def test_only_the_pages_newest_posts_are_read(
    channel, linkedin_account, linkedin_server, monkeypatch
):
    monkeypatch.setattr(linkedin_module, "INBOUND_POSTS", 2)
    oldest = linkedin_server.add_post(PAGE, "Last month.", age_seconds=30 * 86400)
    middle = publish(channel, linkedin_account, "Last week.")
    newest = publish(channel, linkedin_account, "Today.")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    linkedin_server.add_comment(oldest, "Late to the party.", actor=ANA)
    heard = {
        linkedin_server.add_comment(middle, "Still here.", actor=ANA),
        linkedin_server.add_comment(newest, "Great news.", actor=BEN),
    }
    linkedin_server.requests.clear()

    page = channel.fetch_inbound(linkedin_account, cursor)

    assert {item.network_id for item in page.items} == heard
    assert len(comment_reads(linkedin_server)) == 2  # one page for each of the two posts


def test_a_post_deleted_while_it_is_read_is_skipped(channel, linkedin_account, linkedin_server):
    gone = publish(channel, linkedin_account, "To be deleted.")
    kept = publish(channel, linkedin_account, "To be kept.")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    linkedin_server.add_comment(gone, "Hm.", actor=ANA)
    heard = linkedin_server.add_comment(kept, "Nice.", actor=BEN)

    def delete_the_post(target: str, start: int) -> None:
        linkedin_server.posts[:] = [p for p in linkedin_server.posts if p["id"] != gone]

    linkedin_server.comment_page_hook = delete_the_post

    page = channel.fetch_inbound(linkedin_account, cursor)

    assert [item.network_id for item in page.items] == [heard]


# --- deleted comments -------------------------------------------------------------------------


def test_a_deleted_comment_is_simply_gone_as_linkedin_drops_it(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Moderated post.")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    taken = linkedin_server.add_comment(post, "Rude words.", actor=ANA)
    cursor = channel.fetch_inbound(linkedin_account, cursor).cursor
    never_seen = linkedin_server.add_comment(post, "Spam.", actor=BEN)
    linkedin_server.delete_comment(taken)
    linkedin_server.delete_comment(never_seen)

    page = channel.fetch_inbound(linkedin_account, cursor)

    # LinkedIn lists no tombstone: nothing says "deleted", and nothing fails.
    assert page.items == []
    assert page.cursor == cursor


# --- refusals and odd answers -----------------------------------------------------------------


def test_a_rate_limit_is_retryable_with_the_wait_linkedin_gives_if_any(
    channel, linkedin_account, linkedin_server
):
    publish(channel, linkedin_account, "Popular post.")

    linkedin_server.fail_next("comments", "429")
    with pytest.raises(RetryableError) as first:
        channel.fetch_inbound(linkedin_account, "")
    linkedin_server.fail_next("posts_by_author", "429", retry_after=120)
    with pytest.raises(RetryableError) as second:
        channel.fetch_inbound(linkedin_account, "")

    assert first.value.http_status == 429
    assert first.value.retry_after is None  # LinkedIn's 429 carries no reset header
    assert "throttle" in str(first.value)
    assert second.value.http_status == 429
    assert second.value.retry_after == 120


def test_an_expired_token_without_a_refresh_token_is_auth_expired(
    channel, linkedin_account, linkedin_server
):
    linkedin_account.set_tokens(access_token=linkedin_account.access_token, refresh_token="")
    linkedin_account.save()
    linkedin_server.expire(linkedin_account.access_token)

    with pytest.raises(AuthExpired) as caught:
        channel.fetch_inbound(linkedin_account, "")

    assert caught.value.http_status == 401


def test_an_expired_token_is_renewed_and_the_comments_read(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Renewal post.")
    heard = linkedin_server.add_comment(post, "Hi.", actor=ANA)
    linkedin_server.expire(linkedin_account.access_token)

    page = channel.fetch_inbound(linkedin_account, "")

    assert [item.network_id for item in page.items] == [heard]
    assert ("POST", "/oauth/v2/accessToken") in linkedin_server.requests


def test_a_page_whose_posts_cannot_be_read_is_permanent(channel, linkedin_account, linkedin_server):
    del linkedin_server.roles["2414183"]  # no role on the Page: its posts are not readable

    with pytest.raises(PermanentError, match="r_organization_social") as caught:
        channel.fetch_inbound(linkedin_account, "")

    assert caught.value.http_status == 403


@pytest.mark.parametrize("route", ["posts_by_author", "comments"])
def test_a_server_error_is_retryable(channel, linkedin_account, linkedin_server, route):
    publish(channel, linkedin_account, "Some post.")
    linkedin_server.fail_next(route, "503")

    with pytest.raises(RetryableError) as caught:
        channel.fetch_inbound(linkedin_account, "")

    assert caught.value.http_status == 503


@pytest.mark.parametrize("route", ["posts_by_author", "comments"])
@pytest.mark.parametrize("mode", ["html", "no_elements"])
def test_an_answer_that_is_not_a_list_is_retryable(
    channel, linkedin_account, linkedin_server, route, mode
):
    publish(channel, linkedin_account, "Some post.")
    linkedin_server.fail_next(route, mode)

    with pytest.raises(RetryableError, match="no list of elements"):
        channel.fetch_inbound(linkedin_account, "")


def test_a_comment_that_cannot_be_read_is_left_out_and_the_others_taken(
    channel, linkedin_account, linkedin_server, monkeypatch
):
    post = publish(channel, linkedin_account, "Odd answers.")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    heard = linkedin_server.add_comment(post, "Fine.", actor=ANA)
    broken = {
        linkedin_server.add_comment(post, f"Broken {n}.", actor=BEN): odd
        for n, odd in enumerate(
            [
                {"$URN": 5, "created": {"time": 1}},
                {"$URN": "urn:li:comment:(x,1)", "created": {"time": "yesterday"}},
                {"$URN": "urn:li:comment:(x,2)", "created": {"time": 10**20}},
                {"$URN": "urn:li:comment:(x,3)", "created": None, "message": "text"},
            ]
        )
    }
    element = linkedin_server._comment_element

    def odd_element(comment):
        return broken.get(comment["urn"]) or element(comment)

    monkeypatch.setattr(linkedin_server, "_comment_element", odd_element)

    page = channel.fetch_inbound(linkedin_account, cursor)

    assert [item.network_id for item in page.items] == [heard]


def test_an_unreadable_cursor_starts_again_from_the_newest(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Cursor post.")
    linkedin_server.add_comment(post, "Old.", actor=ANA, age_seconds=600)
    newest = linkedin_server.add_comment(post, "New.", actor=BEN, age_seconds=60)

    page = channel.fetch_inbound(linkedin_account, "not json", limit=1)

    assert [item.network_id for item in page.items] == [newest]
    assert json.loads(page.cursor)["v"] == linkedin_module.CURSOR_VERSION


def test_every_read_sends_linkedins_version_headers(channel, linkedin_account, linkedin_server):
    post = publish(channel, linkedin_account, "Headers post.")
    question = linkedin_server.add_comment(post, "Q?", actor=ANA, age_seconds=60)
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    linkedin_server.add_comment(post, "A.", actor=BEN, parent=question)
    linkedin_server.headers_seen.clear()

    channel.fetch_inbound(linkedin_account, cursor)

    paths = [seen["path"] for seen in linkedin_server.headers_seen]
    assert paths[0] == "/rest/posts"
    assert any("urn%3Ali%3Acomment" in path for path in paths)
    assert {(seen["version"], seen["restli"]) for seen in linkedin_server.headers_seen} == {
        (linkedin_module.LINKEDIN_VERSION, "2.0.0")
    }
