"""Hearing back from Facebook (issue 17): the comments on the Page's posts, read incrementally
from the Graph API test server on 127.0.0.1."""

import json
import time
from datetime import timedelta

import pytest

from networks.channels import facebook as facebook_module
from networks.channels import get_channel
from networks.channels.errors import AuthExpired, PermanentError, RetryableError
from networks.channels.facebook import GRAPH_VERSION

from .graph_server import PERMISSIONS

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "7a1f0c2e-4b3d-4e5f-9a8b-1c2d3e4f5a6b"


@pytest.fixture
def channel():
    return get_channel("facebook")


@pytest.fixture
def post(channel, facebook_account, graph_server):
    """One of our posts, published through the channel: its id as publish stored it."""
    published = channel.publish(
        facebook_account, "The library opens late on Thursday.", [], idempotency_key=KEY
    )
    return published.external_id


def _ids(page) -> list[str]:
    return [item.network_id for item in page.items]


def _comment_reads(graph_server) -> int:
    return sum(1 for method, path in graph_server.requests if path.endswith("/comments"))


def test_the_channel_hears_back(channel):
    assert channel.hears_back is True


def test_the_first_call_takes_the_newest_page_only(channel, facebook_account, graph_server, post):
    start = time.time() - 600
    made = [graph_server.add_comment(post, f"Comment {n}", created=start + n) for n in range(5)]

    page = channel.fetch_inbound(facebook_account, "", limit=3)

    assert _ids(page) == [c["id"] for c in made[2:]]
    assert page.more is False
    assert page.cursor


def test_a_quiet_second_call_returns_nothing_and_the_same_cursor(
    channel, facebook_account, graph_server, post
):
    graph_server.add_comment(post, "First!")
    first = channel.fetch_inbound(facebook_account, "")

    again = channel.fetch_inbound(facebook_account, first.cursor)

    assert again.items == []
    assert again.cursor == first.cursor
    assert again.more is False


def test_a_later_call_returns_only_the_new_comments(channel, facebook_account, graph_server, post):
    old = graph_server.add_comment(post, "Seen already.")
    first = channel.fetch_inbound(facebook_account, "")
    new = [graph_server.add_comment(post, f"New {n}") for n in range(2)]

    later = channel.fetch_inbound(facebook_account, first.cursor)

    assert _ids(first) == [old["id"]]
    assert sorted(_ids(later)) == sorted(c["id"] for c in new)
    assert later.cursor != first.cursor
    assert channel.fetch_inbound(facebook_account, later.cursor).items == []


def test_a_first_call_without_comments_makes_every_later_one_new(
    channel, facebook_account, graph_server, post
):
    first = channel.fetch_inbound(facebook_account, "")
    made = [graph_server.add_comment(post, f"Hello {n}") for n in range(3)]

    later = channel.fetch_inbound(facebook_account, first.cursor)

    assert first.items == []
    assert sorted(_ids(later)) == sorted(c["id"] for c in made)


def test_paging_walks_to_the_end_without_losing_comments_at_page_edges(
    channel, facebook_account, graph_server, post, monkeypatch
):
    # Graph pages of 2 and calls of 3: every call crosses a page edge and leaves some behind.
    monkeypatch.setattr(facebook_module, "COMMENTS_PAGE", 2)
    other = graph_server.add_post("201", "Road works on Main Street.")["id"]
    graph_server.add_comment(post, "Before we listened.", created=time.time() - 60)
    cursor = channel.fetch_inbound(facebook_account, "").cursor
    now = time.time()
    made = []
    for n in range(9):
        # Three comments in each second, across two posts: the mark often falls mid-second.
        target = post if n % 2 else other
        made.append(graph_server.add_comment(target, f"Comment {n}", created=now + n // 3))
    reply = graph_server.add_comment(post, "A reply.", parent=made[1]["id"], created=now + 3)
    made.append(reply)
    reads_before = _comment_reads(graph_server)

    heard, pages = [], []
    for _ in range(10):
        page = channel.fetch_inbound(facebook_account, cursor, limit=3)
        heard += _ids(page)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            break

    assert sorted(heard) == sorted(c["id"] for c in made)  # each exactly once
    assert len(heard) == len(set(heard))
    assert [len(p.items) for p in pages] == [3, 3, 3, 1]
    assert [p.more for p in pages] == [True, True, True, False]
    # The server's own pages were walked (after= cursors), not just their first.
    assert _comment_reads(graph_server) - reads_before > 2 * len(pages)
    assert channel.fetch_inbound(facebook_account, cursor).items == []


def test_comments_and_replies_answer_our_post_and_the_comment(
    channel, facebook_account, graph_server, post
):
    comment = graph_server.add_comment(
        post, "Is it open on Sunday?", author={"id": "6100000000000042", "name": "Ann Reader"}
    )
    reply = graph_server.add_comment(
        post,
        "Same question here.",
        parent=comment["id"],
        author={"id": "6100000000000077", "name": "Bo Baker"},
    )

    page = channel.fetch_inbound(facebook_account, "")

    by_id = {item.network_id: item for item in page.items}
    first, second = by_id[comment["id"]], by_id[reply["id"]]
    assert first.kind == second.kind == "comment"
    assert first.in_reply_to_id == post  # the external_id publish stored: "201_…"
    assert post.startswith("201_")
    assert second.in_reply_to_id == comment["id"]
    assert first.thread_id == second.thread_id == post
    assert first.text == "Is it open on Sunday?"
    assert (first.author_name, first.author_id) == ("Ann Reader", "6100000000000042")
    assert first.author_handle == "Ann Reader"
    assert first.url.startswith("https://www.facebook.com/201/posts/")
    assert "comment_id=" in first.url
    assert first.created_at.utcoffset() == timedelta(0)
    assert abs(first.created_at.timestamp() - comment["created"]) < 1
    assert first.raw["id"] == comment["id"] and first.raw["message"] == "Is it open on Sunday?"
    assert second.raw["parent"] == {"id": comment["id"]}
    assert first.language == ""
    assert first.deleted is False


def test_a_comment_whose_author_meta_withholds_has_no_author(
    channel, facebook_account, graph_server, post
):
    graph_server.add_comment(post, "Who am I?", author={})

    [item] = channel.fetch_inbound(facebook_account, "").items

    assert (item.author_handle, item.author_name, item.author_id) == ("", "", "")


def test_the_pages_own_replies_are_not_items_but_are_passed(
    channel, facebook_account, graph_server, post
):
    cursor = channel.fetch_inbound(facebook_account, "").cursor
    question = graph_server.add_comment(post, "When does it open?")
    graph_server.add_comment(
        post, "At 9.", parent=question["id"], author={"id": "201", "name": "North Desk"}
    )

    page = channel.fetch_inbound(facebook_account, cursor)

    assert _ids(page) == [question["id"]]
    assert channel.fetch_inbound(facebook_account, page.cursor).items == []


def test_a_comment_hidden_by_the_page_is_marked_deleted(
    channel, facebook_account, graph_server, post
):
    cursor = channel.fetch_inbound(facebook_account, "").cursor
    spam = graph_server.add_comment(post, "Cheap watches!!!")
    graph_server.hide_comment(spam["id"])
    kept = graph_server.add_comment(post, "Thanks for the update.")

    page = channel.fetch_inbound(facebook_account, cursor)

    deleted = {item.network_id: item.deleted for item in page.items}
    assert deleted == {spam["id"]: True, kept["id"]: False}


def test_a_deleted_comment_is_not_heard(channel, facebook_account, graph_server, post):
    cursor = channel.fetch_inbound(facebook_account, "").cursor
    gone = graph_server.add_comment(post, "Oops, wrong page.")
    graph_server.delete_comment(gone["id"])

    assert channel.fetch_inbound(facebook_account, cursor).items == []


def test_only_the_newest_posts_are_read(channel, facebook_account, graph_server):
    oldest = graph_server.add_post("201", "An old post.", created=time.time() - 86400 * 90)
    for n in range(facebook_module.INBOUND_POSTS):
        graph_server.add_post("201", f"Post {n}", created=time.time() - 3600 + n)
    graph_server.add_comment(oldest["id"], "Late comment on an old post.")

    page = channel.fetch_inbound(facebook_account, "")

    assert page.items == []
    assert not any(oldest["id"] in path for _, path in graph_server.requests)
    listed = [path for _, path in graph_server.requests if path.endswith("/published_posts")]
    assert listed == [f"/{GRAPH_VERSION}/201/published_posts"]


def test_the_cursor_is_small_json(channel, facebook_account, graph_server, post):
    graph_server.add_comment(post, "Hi.")

    cursor = channel.fetch_inbound(facebook_account, "").cursor

    data = json.loads(cursor)
    assert set(data) == {"v", "t", "ids"}
    assert len(cursor) < 200


def test_a_cursor_that_is_not_ours_is_read_as_a_first_call(
    channel, facebook_account, graph_server, post
):
    start = time.time() - 60
    made = [graph_server.add_comment(post, f"C{n}", created=start + n) for n in range(3)]

    page = channel.fetch_inbound(facebook_account, "not-json", limit=2)

    assert _ids(page) == [c["id"] for c in made[1:]]


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["published_posts", "comments"])
def test_a_rate_limit_is_retryable_after_the_time_meta_estimates(
    channel, facebook_account, graph_server, post, route
):
    graph_server.add_comment(post, "Hi.")
    graph_server.fail_next(route, "429", minutes=7)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_inbound(facebook_account, "")

    assert caught.value.retry_after == 7 * 60
    assert caught.value.http_status == 429


def test_a_page_rate_limit_in_a_400_is_retryable_too(channel, facebook_account, graph_server):
    graph_server.fail_next("published_posts", "rate", code=32, minutes=2)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_inbound(facebook_account, "")

    assert caught.value.retry_after == 120


def test_an_expired_token_is_auth_expired(channel, facebook_account, graph_server):
    graph_server.expire(facebook_account.access_token)

    with pytest.raises(AuthExpired, match="190"):
        channel.fetch_inbound(facebook_account, "")


def test_a_server_error_is_retryable(channel, facebook_account, graph_server, post):
    graph_server.add_comment(post, "Hi.")
    graph_server.fail_next("comments", "500")

    with pytest.raises(RetryableError):
        channel.fetch_inbound(facebook_account, "")


@pytest.mark.parametrize(
    ("route", "mode"),
    [
        ("published_posts", "malformed"),
        ("published_posts", "not_json"),
        ("comments", "malformed"),
        ("comments", "not_json"),
    ],
)
def test_an_answer_we_cannot_read_is_retryable(
    channel, facebook_account, graph_server, post, route, mode
):
    graph_server.add_comment(post, "Hi.")
    graph_server.fail_next(route, mode)

    with pytest.raises(RetryableError, match="without a list of items"):
        channel.fetch_inbound(facebook_account, "")


def test_a_comment_without_a_time_is_retryable_not_a_crash(
    channel, facebook_account, graph_server, post, monkeypatch
):
    graph_server.add_comment(post, "Hi.")
    real = graph_server._fb_comment

    def without_time(comment, fields):
        answer = real(comment, fields)
        answer.pop("created_time", None)
        return answer

    monkeypatch.setattr(graph_server, "_fb_comment", without_time)

    with pytest.raises(RetryableError, match="without an id or the time"):
        channel.fetch_inbound(facebook_account, "")


def test_without_the_permission_to_read_comments_it_is_refused_naming_it(
    channel, facebook_account, graph_server, post
):
    token = graph_server.tokens[facebook_account.access_token]
    token.scopes = frozenset(PERMISSIONS - {"pages_read_user_content"})

    with pytest.raises(PermanentError, match="pages_read_user_content"):
        channel.fetch_inbound(facebook_account, "")


def test_connecting_asks_for_the_permission_to_read_comments(channel):
    assert "pages_read_user_content" in channel.scopes
