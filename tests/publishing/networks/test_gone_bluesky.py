"""Which inbox items are gone on Bluesky (issue 17): the channel's items_gone against the PDS
test server's app.bsky.feed.getPosts (labels of the AppView's postViews) and, for a post it
leaves out, com.atproto.repo.getRecord on the author's repo."""

import socket

import pytest
import requests

from networks.channels import get_channel
from networks.channels.bluesky import GET_POSTS
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

GET_RECORD = "com.atproto.repo.getRecord"


@pytest.fixture
def channel():
    return get_channel("bluesky")


def _items(channel, account, server, count: int) -> list[str]:
    """`count` people's mentions of North, read as the inbox reads them: their network ids."""
    for n in range(count):
        server.add_mention(f"Question {n} for @north.test", author="friend.test")
    page = channel.fetch_inbound(account, "", limit=100)
    ids = [item.network_id for item in page.items]
    assert len(ids) == count
    return ids


def _record_checks(server) -> list[tuple[str, str]]:
    return [r for r in server.requests if r[1] == f"/xrpc/{GET_RECORD}"]


# --- gone -------------------------------------------------------------------------------------


def test_deleted_and_hidden_items_are_named_and_the_others_not(
    channel, bluesky_account, bluesky_server
):
    # Given five items, one deleted by its author, one hidden and one taken down by moderators
    kept, deleted, hidden, taken_down, quiet = _items(channel, bluesky_account, bluesky_server, 5)
    bluesky_server.delete_post(deleted)
    bluesky_server.hide(hidden)
    bluesky_server.hide(taken_down, "!takedown")

    # When the inbox asks which are gone
    gone = channel.items_gone(bluesky_account, [kept, deleted, hidden, taken_down, quiet])

    # Then exactly those three, in one getPosts call and one check of the deleted record
    assert gone == {deleted, hidden, taken_down}
    assert bluesky_server.get_posts_queries == [[kept, deleted, hidden, taken_down, quiet]]
    assert len(_record_checks(bluesky_server)) == 1


def test_a_reply_to_our_post_deleted_is_gone(channel, bluesky_account, bluesky_server):
    ours = channel.publish(bluesky_account, "Pool open.", [], idempotency_key="gone-1")
    reply = bluesky_server.add_reply(ours.external_id, "Until when?")
    [item] = channel.fetch_inbound(bluesky_account, "").items
    bluesky_server.delete_post(reply)

    assert channel.items_gone(bluesky_account, [item.network_id]) == {reply}


def test_nothing_gone_names_nothing_and_checks_no_record(channel, bluesky_account, bluesky_server):
    ids = _items(channel, bluesky_account, bluesky_server, 3)

    assert channel.items_gone(bluesky_account, ids) == set()
    assert _record_checks(bluesky_server) == []


def test_a_post_the_appview_leaves_out_while_its_repo_holds_it_is_not_gone(
    channel, bluesky_account, bluesky_server
):
    # An AppView that has not indexed a post (or has a passing gap) leaves it out of getPosts:
    # its record is still there, so it is not gone.
    shown, missing = _items(channel, bluesky_account, bluesky_server, 2)
    view = bluesky_server.post_view(shown)
    bluesky_server.fail_next(GET_POSTS, "json", body={"posts": [view]})

    assert channel.items_gone(bluesky_account, [shown, missing]) == set()
    [(_, path)] = _record_checks(bluesky_server)
    assert path.endswith(GET_RECORD)


def test_a_label_undone_by_its_negation_is_not_gone(channel, bluesky_account, bluesky_server):
    [uri] = _items(channel, bluesky_account, bluesky_server, 1)
    view = bluesky_server.post_view(uri)
    label = {"src": "did:plc:moderation7test", "uri": uri, "val": "!hide"}
    view["labels"] = [label, {**label, "neg": True}, {**label, "val": "porn"}]
    bluesky_server.fail_next(GET_POSTS, "json", body={"posts": [view]})

    assert channel.items_gone(bluesky_account, [uri]) == set()


def test_more_than_25_items_take_one_call_per_25(channel, bluesky_account, bluesky_server):
    ids = _items(channel, bluesky_account, bluesky_server, 30)
    bluesky_server.delete_post(ids[3])
    bluesky_server.delete_post(ids[28])
    bluesky_server.hide(ids[26])

    gone = channel.items_gone(bluesky_account, ids + ids[:2])

    assert gone == {ids[3], ids[26], ids[28]}
    assert [len(q) for q in bluesky_server.get_posts_queries] == [25, 5]
    assert sum(bluesky_server.get_posts_queries, []) == ids  # each once


def test_nothing_to_ask_makes_no_call(channel, bluesky_account, bluesky_server):
    before = len(bluesky_server.requests)

    assert channel.items_gone(bluesky_account, []) == set()
    assert channel.items_gone(bluesky_account, ["", "12345", "https://bsky.app/x"]) == set()
    assert bluesky_server.requests[before:] == []


def test_it_changes_nothing_at_the_network(channel, bluesky_account, bluesky_server):
    ids = _items(channel, bluesky_account, bluesky_server, 2)
    bluesky_server.delete_post(ids[1])
    before = len(bluesky_server.requests)

    channel.items_gone(bluesky_account, ids)

    assert {method for method, _ in bluesky_server.requests[before:]} == {"GET"}


# --- errors: nothing named gone ----------------------------------------------------------------


def test_a_left_out_post_whose_record_cannot_be_checked_is_retryable(
    channel, bluesky_account, bluesky_server
):
    [uri] = _items(channel, bluesky_account, bluesky_server, 1)
    bluesky_server.delete_post(uri)
    bluesky_server.fail_next(GET_RECORD, "503")

    with pytest.raises(RetryableError):
        channel.items_gone(bluesky_account, [uri])


@pytest.mark.parametrize(
    ("mode", "options"),
    [("page", {"status": 404}), ("200", {}), ("400", {"message": "Bad repo"})],
)
def test_a_record_check_that_says_neither_is_retryable(
    channel, bluesky_account, bluesky_server, mode, options
):
    [uri] = _items(channel, bluesky_account, bluesky_server, 1)
    bluesky_server.delete_post(uri)
    bluesky_server.fail_next(GET_RECORD, mode, **options)

    with pytest.raises(RetryableError):
        channel.items_gone(bluesky_account, [uri])


def test_a_rate_limit_answer_is_retryable_after_the_reset(channel, bluesky_account, bluesky_server):
    ids = _items(channel, bluesky_account, bluesky_server, 2)
    bluesky_server.delete_post(ids[0])
    bluesky_server.fail_next(GET_POSTS, "429", reset_in=120)

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(bluesky_account, ids)

    assert caught.value.http_status == 429
    assert 110 <= caught.value.retry_after <= 120


def test_an_error_in_a_later_batch_raises_and_names_nothing(
    channel, bluesky_account, bluesky_server
):
    # Given 30 items, one of the first 25 deleted, and an AppView that fails the second call
    ids = _items(channel, bluesky_account, bluesky_server, 30)
    bluesky_server.delete_post(ids[0])
    first = [bluesky_server.post_view(uri) for uri in ids[1:25]]
    bluesky_server.fail_next(GET_POSTS, "json", body={"posts": first})
    bluesky_server.fail_next(GET_POSTS, "500")

    # Then the whole re-check fails: nothing is named gone, not even the first batch's
    with pytest.raises(RetryableError) as caught:
        channel.items_gone(bluesky_account, ids)

    assert caught.value.http_status == 500
    assert bluesky_server.requests.count(("GET", f"/xrpc/{GET_POSTS}")) == 2


def test_an_expired_session_is_renewed_once_and_the_call_made_again(
    channel, bluesky_account, bluesky_server
):
    ids = _items(channel, bluesky_account, bluesky_server, 2)
    bluesky_server.delete_post(ids[1])
    bluesky_server.expire_access_tokens()

    assert channel.items_gone(bluesky_account, ids) == {ids[1]}
    assert bluesky_server.refresh_calls == 1


def test_an_expired_session_that_cannot_be_renewed_is_auth_expired(
    channel, bluesky_account, bluesky_server
):
    ids = _items(channel, bluesky_account, bluesky_server, 1)
    bluesky_server.expire_access_tokens()
    bluesky_server.revoke_refresh_tokens()

    with pytest.raises(AuthExpired):
        channel.items_gone(bluesky_account, ids)


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_a_server_error_is_retryable(channel, bluesky_account, bluesky_server, status):
    ids = _items(channel, bluesky_account, bluesky_server, 1)
    bluesky_server.fail_next(GET_POSTS, status)

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(bluesky_account, ids)

    assert caught.value.http_status == int(status)


def test_a_proxys_page_is_retryable(channel, bluesky_account, bluesky_server):
    ids = _items(channel, bluesky_account, bluesky_server, 1)
    bluesky_server.fail_next(GET_POSTS, "page", status=502)

    with pytest.raises(RetryableError):
        channel.items_gone(bluesky_account, ids)


def test_a_refused_request_is_permanent_with_the_servers_words(
    channel, bluesky_account, bluesky_server
):
    ids = _items(channel, bluesky_account, bluesky_server, 1)
    bluesky_server.fail_next(GET_POSTS, "400", message="uris/0 must be a valid at-uri")

    with pytest.raises(PermanentError, match="uris/0 must be a valid at-uri"):
        channel.items_gone(bluesky_account, ids)


@pytest.mark.parametrize(
    "body",
    [{}, [1, 2], {"posts": "none"}, {"posts": [7]}, {"posts": [{"labels": []}]}],
)
def test_a_malformed_answer_is_retryable(channel, bluesky_account, bluesky_server, body):
    ids = _items(channel, bluesky_account, bluesky_server, 1)
    bluesky_server.fail_next(GET_POSTS, "json", body=body)

    with pytest.raises(RetryableError):
        channel.items_gone(bluesky_account, ids)


def test_bluesky_unreachable_is_retryable(channel, bluesky_account, bluesky_server):
    ids = _items(channel, bluesky_account, bluesky_server, 1)
    # A port nothing listens on (the stopped server's kept-alive connections would still answer).
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    bluesky_account.base_url = f"http://127.0.0.1:{port}"

    with pytest.raises(RetryableError):
        channel.items_gone(bluesky_account, ids)


# --- the server, as the PDS answers --------------------------------------------------------------


def test_the_server_answers_another_persons_record_until_it_is_deleted(bluesky_server):
    uri = bluesky_server.add_mention("Hi @north.test")
    did, collection, rkey = uri.removeprefix("at://").split("/")
    params = {"repo": did, "collection": collection, "rkey": rkey}
    url = f"{bluesky_server.url}/xrpc/{GET_RECORD}"

    there = requests.get(url, params=params)
    bluesky_server.delete_post(uri)
    deleted = requests.get(url, params=params)

    assert there.status_code == 200 and there.json()["uri"] == uri
    assert there.json()["value"]["text"] == "Hi @north.test"
    assert (deleted.status_code, deleted.json()["error"]) == (400, "RecordNotFound")
