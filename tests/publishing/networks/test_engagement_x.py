"""The figures of our posts on X, against the X test server on 127.0.0.1: the Post lookup read
100 posts a call with public and non-public metrics, deleted posts marked, posts past X's 30 days
of non-public figures read without them, and X's refusals."""

import pytest
import requests

from networks.channels import get_channel
from networks.channels.base import Engagement, ReplyTo
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

from .x_server import days_ago

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "5e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"
PRIVATE = "public_metrics,non_public_metrics"
PUBLIC = "public_metrics"


@pytest.fixture
def channel():
    return get_channel("x")


def _ours(x_server, n: int, **options) -> list[str]:
    """`n` posts of the account, made on X (newest last), by id."""
    return [x_server.add_tweet(x_server.user_id, f"Post {i}.", **options)["id"] for i in range(n)]


def _asked(query: dict[str, str]) -> list[str]:
    return query["ids"].split(",")


# --- the figures ------------------------------------------------------------------------------


def test_it_reads_the_figures_of_several_posts_in_one_call(channel, x_account, x_server):
    # Given three posts of ours that people answered, quoted, liked, shared and clicked
    first = channel.publish(x_account, "Pool closed today.", [], idempotency_key=KEY)
    second = channel.publish(
        x_account, "Timetable: https://example.org/pool", [], idempotency_key=KEY
    )
    quiet = channel.publish(x_account, "Nothing to see.", [], idempotency_key=KEY)
    x_server.add_post("river_user", "Why?", reply_to=first.external_id)
    x_server.add_post("hill_user", "Again?", reply_to=first.external_id)
    x_server.add_post("hill_user", "Good to know @north_desk", quote_of=second.external_id)
    x_server.engage(first.external_id, likes=12, reposts=3, impressions=640, bookmarks=2)
    x_server.engage(second.external_id, likes=1, impressions=90, link_clicks=7, profile_clicks=2)
    ids = [first.external_id, second.external_id, quiet.external_id]

    # When the figures are read
    figures = channel.fetch_engagement(x_account, ids)

    # Then each post has X's counts, clicks among them, read in one call
    assert figures == {
        first.external_id: Engagement(
            likes=12, reposts=3, replies=2, quotes=0, impressions=640, clicks=0
        ),
        second.external_id: Engagement(
            likes=1, reposts=0, replies=0, quotes=1, impressions=90, clicks=7
        ),
        quiet.external_id: Engagement(
            likes=0, reposts=0, replies=0, quotes=0, impressions=0, clicks=0
        ),
    }
    [query] = x_server.lookup_queries
    assert _asked(query) == ids
    assert query["tweet.fields"] == PRIVATE


def test_a_deleted_post_is_marked_deleted_and_the_others_read(channel, x_account, x_server):
    kept, gone = _ours(x_server, 2)
    x_server.engage(kept, likes=4)
    x_server.delete_tweet(gone)

    figures = channel.fetch_engagement(x_account, [kept, gone])

    assert figures[gone] == Engagement(deleted=True)
    assert figures[kept].likes == 4 and figures[kept].deleted is False
    assert len(x_server.lookup_queries) == 1


def test_all_posts_deleted_is_an_answer_of_errors_only(channel, x_account, x_server):
    ids = _ours(x_server, 2)
    for post_id in ids:
        x_server.delete_tweet(post_id)

    figures = channel.fetch_engagement(x_account, ids)

    assert figures == dict.fromkeys(ids, Engagement(deleted=True))


def test_a_reply_we_published_has_its_figures_too(channel, x_account, x_server):
    asked = x_server.add_post("river_user", "@north_desk open today?")
    reply = channel.publish(
        x_account, "Yes, until 6.", [], idempotency_key=KEY, reply_to=ReplyTo(asked["id"])
    )
    x_server.add_post("river_user", "Thanks!", reply_to=reply.external_id)
    x_server.engage(reply.external_id, likes=2)

    figures = channel.fetch_engagement(x_account, [reply.external_id])

    assert figures[reply.external_id].likes == 2
    assert figures[reply.external_id].replies == 1


def test_more_than_100_posts_take_one_call_per_100(channel, x_account, x_server):
    ids = _ours(x_server, 150)

    figures = channel.fetch_engagement(x_account, ids)

    assert set(figures) == set(ids)
    assert [len(_asked(q)) for q in x_server.lookup_queries] == [100, 50]
    assert [_asked(q) for q in x_server.lookup_queries] == [ids[:100], ids[100:]]


def test_a_post_past_30_days_is_read_without_its_non_public_figures(channel, x_account, x_server):
    # Given a post of ours made 40 days ago (X keeps non-public figures 30 days) and a new one
    [old] = _ours(x_server, 1, created_at=days_ago(40))
    [new] = _ours(x_server, 1)
    x_server.engage(old, likes=30, impressions=5000, link_clicks=80)
    x_server.engage(new, likes=3, impressions=100, link_clicks=9)

    # When the figures are read
    figures = channel.fetch_engagement(x_account, [old, new])

    # Then the old one's public figures are read on their own; no clicks for it
    assert figures[old] == Engagement(
        likes=30, reposts=0, replies=0, quotes=0, impressions=5000, clicks=None
    )
    assert figures[new].clicks == 9
    first, again = x_server.lookup_queries
    assert (_asked(first), first["tweet.fields"]) == ([old, new], PRIVATE)
    assert (_asked(again), again["tweet.fields"]) == ([old], PUBLIC)


def test_an_app_refused_non_public_fields_reads_the_public_ones(channel, x_account, x_server):
    # Given an X that refuses the whole call when non-public fields are asked for
    x_server.refuse_private_fields = True
    ids = _ours(x_server, 150)
    x_server.engage(ids[0], likes=5, link_clicks=4)

    figures = channel.fetch_engagement(x_account, ids)

    # Then the public figures are read, and the second batch no longer asks for the others
    assert figures[ids[0]] == Engagement(
        likes=5, reposts=0, replies=0, quotes=0, impressions=0, clicks=None
    )
    assert len(figures) == 150
    fields = [q["tweet.fields"] for q in x_server.lookup_queries]
    assert fields == [PRIVATE, PUBLIC, PUBLIC]


def test_ids_not_of_xs_form_are_left_out_and_each_id_asked_once(channel, x_account, x_server):
    [post_id] = _ours(x_server, 1)

    figures = channel.fetch_engagement(x_account, ["at://did:plc:x/post/1", post_id, post_id, ""])

    assert list(figures) == [post_id]
    [query] = x_server.lookup_queries
    assert _asked(query) == [post_id]


def test_no_posts_means_no_call(channel, x_account, x_server):
    assert channel.fetch_engagement(x_account, []) == {}
    assert x_server.requests == []


def test_reading_figures_changes_nothing_at_x(channel, x_account, x_server):
    ids = _ours(x_server, 3)
    before = [dict(t, counts=dict(t["counts"])) for t in x_server.tweets]

    channel.fetch_engagement(x_account, ids)

    assert {method for method, _ in x_server.requests} == {"GET"}
    assert x_server.tweets == before


# --- X's refusals -----------------------------------------------------------------------------


def test_a_rate_limit_is_retryable_after_x_rate_limit_reset(channel, x_account, x_server):
    ids = _ours(x_server, 2)
    x_server.fail_next("tweets_lookup", "429", reset_in=300)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(x_account, ids)

    assert caught.value.http_status == 429
    assert 290 <= caught.value.retry_after <= 300


def test_an_expired_token_is_renewed_once_and_the_figures_read(channel, x_account, x_server):
    ids = _ours(x_server, 2)
    x_server.expire(x_account.access_token)

    figures = channel.fetch_engagement(x_account, ids)

    assert set(figures) == set(ids)
    assert x_server.requests.count(("POST", "/2/oauth2/token")) == 1


def test_an_expired_token_without_a_refresh_token_is_auth_expired(channel, x_account, x_server):
    ids = _ours(x_server, 2)
    x_account.set_tokens(access_token=x_account.access_token)
    x_account.save()
    x_server.expire(x_account.access_token)

    with pytest.raises(AuthExpired) as caught:
        channel.fetch_engagement(x_account, ids)

    assert caught.value.http_status == 401


def test_a_revoked_grant_is_auth_expired(channel, x_account, x_server):
    ids = _ours(x_server, 2)
    x_server.revoke_grant(x_server.user_id)

    with pytest.raises(AuthExpired):
        channel.fetch_engagement(x_account, ids)


@pytest.mark.parametrize("status", ["500", "503"])
def test_a_server_error_is_retryable(channel, x_account, x_server, status):
    ids = _ours(x_server, 2)
    x_server.fail_next("tweets_lookup", status)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(x_account, ids)

    assert caught.value.http_status == int(status)


def test_x_unreachable_is_retryable(channel, x_account, x_server):
    ids = _ours(x_server, 2)
    x_server.stop()

    with pytest.raises(RetryableError):
        channel.fetch_engagement(x_account, ids)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Over capacity</body></html>",
        ["not", "an", "object"],
        {},
        {"meta": {"result_count": 1}},
        {"data": "not a list"},
        {"data": [], "errors": "not a list"},
        {"data": ["a post"]},
        {"data": [{"id": 42, "public_metrics": {}}]},
        {"data": [{"id": "1880000000000000001", "text": "no figures"}]},
        {"data": [{"id": "1880000000000000001", "public_metrics": {"like_count": "many"}}]},
        {
            "data": [
                {
                    "id": "1880000000000000001",
                    "public_metrics": {
                        "like_count": 1,
                        "retweet_count": -1,
                        "reply_count": 0,
                        "quote_count": 0,
                    },
                }
            ]
        },
    ],
)
def test_a_malformed_answer_is_retryable(channel, x_account, x_server, body):
    ids = _ours(x_server, 1)
    x_server.fail_next("tweets_lookup", "garbled", body=body)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(x_account, ids)

    assert "X did not give the figures of the account's posts" in str(caught.value)


def test_odd_optional_figures_are_none_not_an_error(channel, x_account, x_server):
    [post_id] = _ours(x_server, 1)
    post = {
        "id": post_id,
        "public_metrics": {
            "like_count": 1,
            "retweet_count": 2,
            "reply_count": 3,
            "quote_count": 4,
            "impression_count": "lots",
        },
        "non_public_metrics": {"impression_count": 50, "url_link_clicks": None},
    }
    x_server.fail_next("tweets_lookup", "garbled", body={"data": [post]})

    figures = channel.fetch_engagement(x_account, [post_id])

    assert figures[post_id] == Engagement(
        likes=1, reposts=2, replies=3, quotes=4, impressions=50, clicks=None
    )


def test_an_answer_with_only_xs_errors_is_refused_in_its_words(channel, x_account, x_server):
    ids = _ours(x_server, 1)
    x_server.fail_next(
        "tweets_lookup",
        "garbled",
        body={"errors": [{"detail": "User has been suspended: [2244994945].", "status": 403}]},
    )

    with pytest.raises(PermanentError) as caught:
        channel.fetch_engagement(x_account, ids)

    assert "User has been suspended" in str(caught.value)


# --- the server, as X documents it ------------------------------------------------------------


def test_the_server_checks_the_lookup_and_guards_non_public_figures(x_server, x_account):
    [ours] = _ours(x_server, 1)
    theirs = x_server.add_post("river_user", "Our own news.")["id"]
    url = f"{x_server.url}/2/tweets"
    auth = {"Authorization": f"Bearer {x_account.access_token}"}

    mixed = requests.get(
        url, params={"ids": f"{ours},{theirs}", "tweet.fields": PRIVATE}, headers=auth
    )
    public = requests.get(url, params={"ids": theirs, "tweet.fields": PUBLIC}, headers=auth)
    too_many = requests.get(url, params={"ids": ",".join([ours] * 101)}, headers=auth)
    bad_id = requests.get(url, params={"ids": "abc"}, headers=auth)
    bad_field = requests.get(url, params={"ids": ours, "tweet.fields": "likes"}, headers=auth)
    anonymous = requests.get(url, params={"ids": ours})

    [given] = mixed.json()["data"]
    [error] = mixed.json()["errors"]
    assert given["id"] == ours and "url_link_clicks" in given["non_public_metrics"]
    assert error["resource_id"] == theirs and error["title"] == "Field Authorization Error"
    assert public.json()["data"][0]["public_metrics"]["like_count"] == 0
    assert "non_public_metrics" not in public.json()["data"][0]
    statuses = (too_many, bad_id, bad_field, anonymous)
    assert [r.status_code for r in statuses] == [400, 400, 400, 401]
