"""The figures of our Bluesky posts (issue 17): the channel's fetch_engagement against the PDS
test server's app.bsky.feed.getPosts (the AppView's counts)."""

import pytest

from networks.channels import get_channel
from networks.channels.base import Engagement, ReplyTo
from networks.channels.bluesky import GET_POSTS
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)


@pytest.fixture
def channel():
    return get_channel("bluesky")


def publish(channel, account, count, prefix="Post"):
    """`count` posts of North, as publish() stored them: their external ids."""
    return [
        channel.publish(account, f"{prefix} {n}.", [], idempotency_key=f"{prefix}-{n}").external_id
        for n in range(count)
    ]


def test_it_returns_the_servers_counts_for_several_posts_in_one_call(
    channel, bluesky_account, bluesky_server
):
    quiet, busy, quoted = publish(channel, bluesky_account, 3)
    for author in ("fan.test", "friend.test", "critic.test"):
        bluesky_server.add_like(busy, author=author)
    bluesky_server.add_repost(busy)
    bluesky_server.add_repost(busy, author="critic.test")
    answer = bluesky_server.add_reply(busy, "Great news.")
    bluesky_server.add_reply(answer, "Agreed.", author="fan.test")  # deeper: not a direct reply
    bluesky_server.add_quote(quoted, "Read this.")
    bluesky_server.add_like(quoted)

    figures = channel.fetch_engagement(bluesky_account, [quiet, busy, quoted])

    assert figures == {
        quiet: Engagement(likes=0, reposts=0, replies=0, quotes=0),
        busy: Engagement(likes=3, reposts=2, replies=1, quotes=0),
        quoted: Engagement(likes=1, reposts=0, replies=0, quotes=1),
    }
    assert all(f.impressions is None and f.clicks is None for f in figures.values())
    assert bluesky_server.get_posts_queries == [[quiet, busy, quoted]]


def test_our_own_reply_counts_among_the_replies(channel, bluesky_account, bluesky_server):
    [post] = publish(channel, bluesky_account, 1)
    bluesky_server.add_reply(post, "When?")
    first = channel.fetch_inbound(bluesky_account, "")
    [item] = first.items
    reply = channel.publish(
        bluesky_account,
        "At 9.",
        [],
        idempotency_key="reply-1",
        reply_to=ReplyTo(item.network_id, item.thread_id, item.raw),
    )

    figures = channel.fetch_engagement(bluesky_account, [post, reply.external_id])

    assert figures[post].replies == 1
    assert figures[reply.external_id] == Engagement(likes=0, reposts=0, replies=0, quotes=0)


def test_posts_are_asked_for_25_at_a_time(channel, bluesky_account, bluesky_server):
    posts = publish(channel, bluesky_account, 30)
    bluesky_server.add_like(posts[27])

    figures = channel.fetch_engagement(bluesky_account, posts + posts[:3])

    assert [len(q) for q in bluesky_server.get_posts_queries] == [25, 5]
    assert sum(bluesky_server.get_posts_queries, []) == posts  # each once
    assert set(figures) == set(posts)
    assert figures[posts[27]].likes == 1


def test_nothing_to_ask_makes_no_call(channel, bluesky_account, bluesky_server):
    assert channel.fetch_engagement(bluesky_account, []) == {}
    assert channel.fetch_engagement(bluesky_account, ["", "12345", "https://bsky.app/x"]) == {}
    assert bluesky_server.get_posts_queries == []


def test_it_changes_nothing_at_the_network(channel, bluesky_account, bluesky_server):
    posts = publish(channel, bluesky_account, 2)
    bluesky_server.delete_post(posts[1])
    records = dict(bluesky_server.records)
    before = len(bluesky_server.requests)

    channel.fetch_engagement(bluesky_account, posts)

    assert {method for method, _ in bluesky_server.requests[before:]} == {"GET"}
    assert bluesky_server.records == records


# --- deleted posts -----------------------------------------------------------------------------


def test_a_deleted_post_is_marked_deleted(channel, bluesky_account, bluesky_server):
    kept, deleted = publish(channel, bluesky_account, 2)
    bluesky_server.add_like(kept)
    bluesky_server.delete_post(deleted)

    figures = channel.fetch_engagement(bluesky_account, [kept, deleted])

    assert figures[kept].likes == 1 and figures[kept].deleted is False
    assert figures[deleted] == Engagement(deleted=True)


def test_a_post_the_appview_leaves_out_while_our_repo_holds_it_is_not_deleted(
    channel, bluesky_account, bluesky_server
):
    # An AppView that has not indexed the post yet (or has a passing gap) leaves it out: no
    # figures this time, and never "deleted", which would stop its figures for good.
    shown, missing = publish(channel, bluesky_account, 2)
    view = bluesky_server.post_view(shown)
    bluesky_server.fail_next(GET_POSTS, "json", body={"posts": [view]})

    figures = channel.fetch_engagement(bluesky_account, [shown, missing])

    assert set(figures) == {shown}


def test_a_post_left_out_whose_record_cannot_be_checked_is_retryable(
    channel, bluesky_account, bluesky_server
):
    [post] = publish(channel, bluesky_account, 1)
    bluesky_server.fail_next(GET_POSTS, "json", body={"posts": []})
    bluesky_server.fail_next("com.atproto.repo.getRecord", "503")

    with pytest.raises(RetryableError):
        channel.fetch_engagement(bluesky_account, [post])


# --- errors ------------------------------------------------------------------------------------


def test_a_rate_limit_answer_is_retryable_after_the_reset(channel, bluesky_account, bluesky_server):
    posts = publish(channel, bluesky_account, 2)
    bluesky_server.fail_next(GET_POSTS, "429", reset_in=120)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(bluesky_account, posts)

    assert caught.value.http_status == 429
    assert 110 <= caught.value.retry_after <= 120


def test_an_expired_session_is_renewed_once_and_the_call_made_again(
    channel, bluesky_account, bluesky_server
):
    [post] = publish(channel, bluesky_account, 1)
    bluesky_server.expire_access_tokens()

    figures = channel.fetch_engagement(bluesky_account, [post])

    assert figures[post].likes == 0
    assert bluesky_server.refresh_calls == 1


def test_an_expired_session_that_cannot_be_renewed_is_auth_expired(
    channel, bluesky_account, bluesky_server
):
    [post] = publish(channel, bluesky_account, 1)
    bluesky_server.expire_access_tokens()
    bluesky_server.revoke_refresh_tokens()

    with pytest.raises(AuthExpired):
        channel.fetch_engagement(bluesky_account, [post])


def test_a_token_refused_even_after_renewal_is_auth_expired(
    channel, bluesky_account, bluesky_server
):
    [post] = publish(channel, bluesky_account, 1)
    bluesky_server.fail_next(GET_POSTS, "401", times=2)

    with pytest.raises(AuthExpired) as caught:
        channel.fetch_engagement(bluesky_account, [post])

    assert caught.value.http_status == 401
    assert bluesky_server.refresh_calls == 1


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_a_server_error_is_retryable(channel, bluesky_account, bluesky_server, status):
    [post] = publish(channel, bluesky_account, 1)
    bluesky_server.fail_next(GET_POSTS, status)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(bluesky_account, [post])

    assert caught.value.http_status == int(status)


def test_a_proxys_page_is_retryable(channel, bluesky_account, bluesky_server):
    [post] = publish(channel, bluesky_account, 1)
    bluesky_server.fail_next(GET_POSTS, "page", status=502)

    with pytest.raises(RetryableError):
        channel.fetch_engagement(bluesky_account, [post])


def test_a_refused_request_is_permanent_with_the_servers_words(
    channel, bluesky_account, bluesky_server
):
    [post] = publish(channel, bluesky_account, 1)
    bluesky_server.fail_next(GET_POSTS, "400", message="uris/0 must be a valid at-uri")

    with pytest.raises(PermanentError, match="uris/0 must be a valid at-uri"):
        channel.fetch_engagement(bluesky_account, [post])


@pytest.mark.parametrize(
    "body",
    [
        {},
        [1, 2],
        {"posts": "none"},
        {"posts": [7]},
        {"posts": [{"likeCount": 3}]},
        {"posts": [{"uri": 5, "likeCount": 3}]},
        {"posts": [{"uri": "POST", "likeCount": "3"}]},
        {"posts": [{"uri": "POST", "likeCount": -1}]},
        {"posts": [{"uri": "POST", "repostCount": 2.5}]},
        {"posts": [{"uri": "POST", "quoteCount": True}]},
    ],
)
def test_a_malformed_answer_is_retryable(channel, bluesky_account, bluesky_server, body):
    [post] = publish(channel, bluesky_account, 1)
    if isinstance(body, dict) and isinstance(body.get("posts"), list):
        body["posts"] = [
            {**view, "uri": post} if isinstance(view, dict) and view.get("uri") == "POST" else view
            for view in body["posts"]
        ]
    bluesky_server.fail_next(GET_POSTS, "json", body=body)

    with pytest.raises(RetryableError):
        channel.fetch_engagement(bluesky_account, [post])


def test_a_figure_the_answer_leaves_out_is_none(channel, bluesky_account, bluesky_server):
    [post] = publish(channel, bluesky_account, 1)
    bluesky_server.fail_next(GET_POSTS, "json", body={"posts": [{"uri": post, "likeCount": 4}]})

    figures = channel.fetch_engagement(bluesky_account, [post])

    assert figures[post] == Engagement(likes=4)


def test_our_repo_named_by_handle_in_the_answer_still_matches(
    channel, bluesky_account, bluesky_server
):
    [post] = publish(channel, bluesky_account, 1)
    by_handle = post.replace(bluesky_server.did, "north.test")
    body = {"posts": [{"uri": by_handle, "likeCount": 2, "repostCount": 1}]}
    bluesky_server.fail_next(GET_POSTS, "json", body=body)

    figures = channel.fetch_engagement(bluesky_account, [post])

    assert figures == {post: Engagement(likes=2, reposts=1)}
