"""Which kept Facebook comments are gone (issue 17): the comments on the Page's posts, as
fetch_inbound read them, checked fifty a call with Graph's multiple-id read against the Graph API
test server on 127.0.0.1; deleted and hidden ones are gone."""

import pytest

from networks.channels import facebook as facebook_module
from networks.channels import get_channel
from networks.channels.errors import AuthExpired, PermanentError, RetryableError
from networks.channels.facebook import GRAPH_VERSION

from .graph_server import PERMISSIONS

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"


@pytest.fixture
def channel():
    return get_channel("facebook")


@pytest.fixture
def post(channel, facebook_account):
    return channel.publish(
        facebook_account, "The pool closes early today.", [], idempotency_key=KEY
    ).external_id


def items(channel, account, server, post: str, count: int) -> list[str]:
    """`count` comments on `post`, read as the inbox reads them; their network ids, oldest
    first."""
    for n in range(count):
        server.add_comment(post, f"Question {n}?", created=1_800_000_000 + n)
    page = channel.fetch_inbound(account, "", limit=count)
    assert len(page.items) == count
    server.requests.clear()
    return [item.network_id for item in page.items]


def reads(server) -> int:
    return sum(1 for request in server.requests if request == ("GET", f"/{GRAPH_VERSION}/"))


@pytest.mark.parametrize("missing_ids", ["refuse", "error", "omit"])
def test_it_names_exactly_the_deleted_and_hidden_comments(
    channel, facebook_account, graph_server, post, missing_ids
):
    # Given five comments: one deleted by its author, one hidden by the Page
    ids = items(channel, facebook_account, graph_server, post, 5)
    graph_server.delete_comment(ids[1])
    graph_server.hide_comment(ids[3])
    graph_server.missing_ids = missing_ids

    # When the inbox asks which are gone
    gone = channel.items_gone(facebook_account, ids)

    # Then those two, whichever way Meta says a comment is no more
    assert gone == {ids[1], ids[3]}
    # Meta's refusal naming the deleted one costs a second read of the others.
    assert reads(graph_server) == (2 if missing_ids == "refuse" else 1)


def test_a_reply_is_checked_like_a_comment(channel, facebook_account, graph_server, post):
    question = graph_server.add_comment(post, "When?", created=1_800_000_000)
    graph_server.add_comment(post, "Thursday?", parent=question["id"], created=1_800_000_001)
    page = channel.fetch_inbound(facebook_account, "")
    first, reply = (item.network_id for item in page.items)
    graph_server.hide_comment(reply)

    assert channel.items_gone(facebook_account, [first, reply]) == {reply}


def test_nothing_gone_names_nothing(channel, facebook_account, graph_server, post):
    ids = items(channel, facebook_account, graph_server, post, 3)

    assert channel.items_gone(facebook_account, ids) == set()
    assert reads(graph_server) == 1


def test_when_every_comment_was_deleted_all_are_named(
    channel, facebook_account, graph_server, post
):
    ids = items(channel, facebook_account, graph_server, post, 3)
    for one in ids:
        graph_server.delete_comment(one)

    assert channel.items_gone(facebook_account, ids) == set(ids)
    assert reads(graph_server) == 1


def test_a_comment_whose_post_was_deleted_is_gone(channel, facebook_account, graph_server, post):
    ids = items(channel, facebook_account, graph_server, post, 2)
    graph_server.delete_post(post)

    assert channel.items_gone(facebook_account, ids) == set(ids)


def test_fifty_one_comments_take_two_reads(channel, facebook_account, graph_server, post):
    # Given 51 comments (Meta reads 50 ids a call), the first and the last deleted
    ids = items(channel, facebook_account, graph_server, post, 51)
    graph_server.delete_comment(ids[0])
    graph_server.delete_comment(ids[50])
    graph_server.missing_ids = "error"

    gone = channel.items_gone(facebook_account, ids)

    assert gone == {ids[0], ids[50]}
    assert reads(graph_server) == 2


def test_the_batch_size_is_the_channels_maximum(
    channel, facebook_account, graph_server, post, monkeypatch
):
    monkeypatch.setattr(facebook_module, "IDS_PER_CALL", 2)
    ids = items(channel, facebook_account, graph_server, post, 5)
    graph_server.hide_comment(ids[4])

    assert channel.items_gone(facebook_account, ids) == {ids[4]}
    assert reads(graph_server) == 3


def test_an_id_asked_twice_is_read_once(channel, facebook_account, graph_server, post):
    [only] = items(channel, facebook_account, graph_server, post, 1)
    graph_server.hide_comment(only)

    assert channel.items_gone(facebook_account, [only, only]) == {only}
    assert reads(graph_server) == 1


@pytest.mark.parametrize("ids", [[], [""]])
def test_nothing_to_check_calls_nothing(channel, facebook_account, graph_server, ids):
    assert channel.items_gone(facebook_account, ids) == set()
    assert graph_server.requests == []


def test_another_error_for_one_comment_leaves_it_not_gone(
    channel, facebook_account, graph_server, post, monkeypatch
):
    # Given Meta answering one id with an error that is no "does not exist"
    ids = items(channel, facebook_account, graph_server, post, 2)
    real = graph_server._row

    def refused(kind, obj, fields):
        if obj["id"] == ids[0]:
            return {"error": {"message": "(#10) Not allowed", "code": 10}}
        return real(kind, obj, fields)

    monkeypatch.setattr(graph_server, "_row", refused)

    assert channel.items_gone(facebook_account, ids) == set()


# --- errors ---------------------------------------------------------------------------------------


def test_a_rate_limit_is_retryable_and_names_nothing(channel, facebook_account, graph_server, post):
    ids = items(channel, facebook_account, graph_server, post, 2)
    graph_server.delete_comment(ids[0])
    graph_server.fail_next("ids", "429", minutes=3)

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(facebook_account, ids)

    assert caught.value.http_status == 429
    assert caught.value.retry_after == 180


@pytest.mark.parametrize("mode", ["500", "transient"])
def test_a_server_error_is_retryable(channel, facebook_account, graph_server, post, mode):
    ids = items(channel, facebook_account, graph_server, post, 2)
    graph_server.delete_comment(ids[0])
    graph_server.fail_next("ids", mode)

    with pytest.raises(RetryableError):
        channel.items_gone(facebook_account, ids)


@pytest.mark.parametrize(
    ("mode", "words"), [("malformed", "did not ask for"), ("not_json", "none of the 2")]
)
def test_an_answer_we_cannot_read_is_retryable_and_names_nothing(
    channel, facebook_account, graph_server, post, mode, words
):
    ids = items(channel, facebook_account, graph_server, post, 2)
    graph_server.fail_next("ids", mode)

    with pytest.raises(RetryableError, match=words):
        channel.items_gone(facebook_account, ids)


def test_an_unreachable_server_is_retryable(
    channel, facebook_account, graph_server, post, short_network_timeout
):
    ids = items(channel, facebook_account, graph_server, post, 1)
    graph_server.fail_next("ids", "drop")

    with pytest.raises(RetryableError):
        channel.items_gone(facebook_account, ids)


def test_an_expired_token_is_auth_expired(channel, facebook_account, graph_server, post):
    ids = items(channel, facebook_account, graph_server, post, 1)
    graph_server.expire(facebook_account.access_token)

    with pytest.raises(AuthExpired, match="190"):
        channel.items_gone(facebook_account, ids)


def test_without_pages_read_user_content_it_is_refused_in_metas_words(
    channel, facebook_account, graph_server, post
):
    ids = items(channel, facebook_account, graph_server, post, 1)
    token = graph_server.tokens[facebook_account.access_token]
    token.scopes = frozenset(PERMISSIONS - {"pages_read_user_content"})

    with pytest.raises(PermanentError, match="#283"):
        channel.items_gone(facebook_account, ids)


def test_checking_changes_nothing(channel, facebook_account, graph_server, post):
    ids = items(channel, facebook_account, graph_server, post, 3)
    graph_server.delete_comment(ids[0])
    before = [dict(c) for c in graph_server.comments]

    channel.items_gone(facebook_account, ids)

    assert [dict(c) for c in graph_server.comments] == before
    assert {method for method, _ in graph_server.requests} == {"GET"}
