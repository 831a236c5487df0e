"""Which inbox items are gone on X (issue 17): the channel's items_gone against the X test
server's Post lookup, GET /2/tweets?ids=, 100 posts a call, with no non-public field asked."""

import socket

import pytest

from networks.channels import get_channel
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)


@pytest.fixture
def channel():
    return get_channel("x")


def _items(channel, account, x_server, count: int) -> list[str]:
    """`count` people's mentions of the account, read as the inbox reads them (newest first):
    their network ids."""
    for n in range(count):
        x_server.add_post("river_user", f"@north_desk question {n}?")
    page = channel.fetch_inbound(account, "", limit=100)
    ids = [item.network_id for item in page.items]
    assert len(ids) == count
    return ids


def _asked(query: dict[str, str]) -> list[str]:
    return query["ids"].split(",")


def _not_found(post_id: str) -> dict[str, str]:
    return {
        "value": post_id,
        "detail": f"Could not find tweet with ids: [{post_id}].",
        "title": "Not Found Error",
        "resource_type": "tweet",
        "parameter": "ids",
        "resource_id": post_id,
        "type": "https://api.x.com/2/problems/resource-not-found",
    }


# --- gone -------------------------------------------------------------------------------------


def test_deleted_items_are_named_and_the_others_not(channel, x_account, x_server):
    # Given four items the inbox took, two of them deleted since by their authors
    kept, deleted, also_deleted, quiet = _items(channel, x_account, x_server, 4)
    x_server.delete_tweet(deleted)
    x_server.delete_tweet(also_deleted)

    # When the inbox asks which are gone
    gone = channel.items_gone(x_account, [kept, deleted, also_deleted, quiet])

    # Then exactly those, in one call that asks for no field of the author's alone
    assert gone == {deleted, also_deleted}
    [query] = x_server.lookup_queries
    assert _asked(query) == [kept, deleted, also_deleted, quiet]
    assert "tweet.fields" not in query


def test_a_reply_to_our_post_deleted_is_gone(channel, x_account, x_server):
    ours = channel.publish(x_account, "Pool open today.", [], idempotency_key="gone-1")
    reply = x_server.add_post("river_user", "Until when?", reply_to=ours.external_id)["id"]
    [item] = channel.fetch_inbound(x_account, "").items
    x_server.delete_tweet(reply)

    assert channel.items_gone(x_account, [item.network_id]) == {reply}


def test_nothing_gone_names_nothing(channel, x_account, x_server):
    ids = _items(channel, x_account, x_server, 3)

    assert channel.items_gone(x_account, ids) == set()


def test_all_gone_is_an_answer_of_errors_only(channel, x_account, x_server):
    ids = _items(channel, x_account, x_server, 2)
    for post_id in ids:
        x_server.delete_tweet(post_id)

    assert channel.items_gone(x_account, ids) == set(ids)


def test_only_not_found_says_gone(channel, x_account, x_server):
    # Given an answer that gives one post, names one not found, refuses one for its protected
    # author, and says nothing of the last
    given, deleted, protected, unnamed = _items(channel, x_account, x_server, 4)
    body = {
        "data": [{"id": given, "text": "@north_desk question 3?", "edit_history_tweet_ids": []}],
        "errors": [
            _not_found(deleted),
            {
                "value": protected,
                "detail": f"Sorry, you are not authorized to see the Tweet with id: [{protected}].",
                "title": "Authorization Error",
                "resource_type": "tweet",
                "parameter": "ids",
                "resource_id": protected,
                "type": "https://api.x.com/2/problems/not-authorized-for-resource",
            },
        ],
    }
    x_server.fail_next("tweets_lookup", "garbled", body=body)

    gone = channel.items_gone(x_account, [given, deleted, protected, unnamed])

    # Then only the one X says is not found is gone
    assert gone == {deleted}


def test_a_post_both_given_and_named_not_found_is_not_gone(channel, x_account, x_server):
    [post_id] = _items(channel, x_account, x_server, 1)
    body = {"data": [{"id": post_id, "text": "x"}], "errors": [_not_found(post_id)]}
    x_server.fail_next("tweets_lookup", "garbled", body=body)

    assert channel.items_gone(x_account, [post_id]) == set()


def test_more_than_100_items_take_one_call_per_100(channel, x_account, x_server):
    # Given 150 items (read in two pages of the mention timeline)
    for n in range(150):
        x_server.add_post("river_user", f"@north_desk question {n}?")
    ids = [t["id"] for t in x_server.mentions_of()]
    x_server.delete_tweet(ids[7])
    x_server.delete_tweet(ids[120])

    gone = channel.items_gone(x_account, ids + ids[:3])

    assert gone == {ids[7], ids[120]}
    assert [_asked(q) for q in x_server.lookup_queries] == [ids[:100], ids[100:]]


def test_ids_not_of_xs_form_are_left_out_and_each_id_asked_once(channel, x_account, x_server):
    [post_id] = _items(channel, x_account, x_server, 1)
    x_server.delete_tweet(post_id)

    gone = channel.items_gone(x_account, ["at://did:plc:x/post/1", post_id, post_id, "", "12a"])

    assert gone == {post_id}
    [query] = x_server.lookup_queries
    assert _asked(query) == [post_id]


def test_nothing_to_ask_makes_no_call(channel, x_account, x_server):
    assert channel.items_gone(x_account, []) == set()
    assert channel.items_gone(x_account, ["", "at://did:plc:x/post/1"]) == set()
    assert x_server.requests == []


def test_it_changes_nothing_at_x(channel, x_account, x_server):
    ids = _items(channel, x_account, x_server, 3)
    x_server.delete_tweet(ids[0])
    before = [dict(t, counts=dict(t["counts"])) for t in x_server.tweets]

    channel.items_gone(x_account, ids)

    assert {method for method, _ in x_server.requests} == {"GET"}
    assert x_server.tweets == before


# --- errors: nothing named gone ----------------------------------------------------------------


def test_a_rate_limit_is_retryable_after_x_rate_limit_reset(channel, x_account, x_server):
    ids = _items(channel, x_account, x_server, 2)
    x_server.delete_tweet(ids[0])
    x_server.fail_next("tweets_lookup", "429", reset_in=300)

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(x_account, ids)

    assert caught.value.http_status == 429
    assert 290 <= caught.value.retry_after <= 300


def test_an_error_in_a_later_batch_raises_and_names_nothing(channel, x_account, x_server):
    # Given 150 items, one of the first 100 deleted, and an X that fails the second call
    for n in range(150):
        x_server.add_post("river_user", f"@north_desk question {n}?")
    ids = [t["id"] for t in x_server.mentions_of()]
    x_server.delete_tweet(ids[0])
    x_server.fail_next("tweets_lookup", "garbled", body={"errors": [_not_found(ids[0])]})
    x_server.fail_next("tweets_lookup", "503")

    # Then the whole re-check fails: nothing is named gone, not even the first batch's
    with pytest.raises(RetryableError) as caught:
        channel.items_gone(x_account, ids)

    assert caught.value.http_status == 503
    assert x_server.requests.count(("GET", "/2/tweets")) == 2


def test_an_expired_token_is_renewed_once_and_the_items_read(channel, x_account, x_server):
    ids = _items(channel, x_account, x_server, 2)
    x_server.delete_tweet(ids[1])
    x_server.expire(x_account.access_token)

    assert channel.items_gone(x_account, ids) == {ids[1]}
    assert x_server.requests.count(("POST", "/2/oauth2/token")) == 1


def test_a_revoked_grant_is_auth_expired(channel, x_account, x_server):
    ids = _items(channel, x_account, x_server, 2)
    x_server.revoke_grant(x_server.user_id)

    with pytest.raises(AuthExpired):
        channel.items_gone(x_account, ids)


@pytest.mark.parametrize("status", ["500", "503"])
def test_a_server_error_is_retryable(channel, x_account, x_server, status):
    ids = _items(channel, x_account, x_server, 2)
    x_server.fail_next("tweets_lookup", status)

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(x_account, ids)

    assert caught.value.http_status == int(status)


def test_x_unreachable_is_retryable(channel, x_account, x_server):
    ids = _items(channel, x_account, x_server, 2)
    # A port nothing listens on (the stopped server's kept-alive connections would still answer).
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    x_account.base_url = f"http://127.0.0.1:{port}"

    with pytest.raises(RetryableError):
        channel.items_gone(x_account, ids)


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
        {"data": [{"id": 42, "text": "a number"}]},
        {"data": [{"text": "no id"}]},
    ],
)
def test_a_malformed_answer_is_retryable(channel, x_account, x_server, body):
    ids = _items(channel, x_account, x_server, 1)
    x_server.fail_next("tweets_lookup", "garbled", body=body)

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(x_account, ids)

    assert "X did not say which posts are still there" in str(caught.value)


def test_an_answer_with_only_xs_errors_is_refused_in_its_words(channel, x_account, x_server):
    ids = _items(channel, x_account, x_server, 1)
    x_server.fail_next(
        "tweets_lookup",
        "garbled",
        body={"errors": [{"detail": "User has been suspended: [2244994945].", "status": 403}]},
    )

    with pytest.raises(PermanentError) as caught:
        channel.items_gone(x_account, ids)

    assert "User has been suspended" in str(caught.value)
