"""Which kept Mastodon items are gone (issue 17): the statuses that came in as mentions, replies
and quotes, checked twenty a call against a Mastodon test server on 127.0.0.1, one by one on a
server before 4.3."""

import pytest

from networks.channels import get_channel
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)


@pytest.fixture
def channel():
    return get_channel("mastodon")


def items(channel, account, server, count: int) -> list[str]:
    """`count` mentions of us, read as the inbox reads them (the first call reads the newest
    page, later ones walk forward); their network ids, oldest first."""
    server.add_mention("@north Question 0?")
    page = channel.fetch_inbound(account, "")
    read = list(page.items)
    for n in range(1, count):
        server.add_mention(f"@north Question {n}?")
    while count > 1:
        page = channel.fetch_inbound(account, page.cursor)
        read += page.items
        if not page.more:
            break
    assert len(read) == count
    server.requests.clear()
    return sorted((item.network_id for item in read), key=int)


def batch_reads(server) -> int:
    return sum(1 for request in server.requests if request == ("GET", "/api/v1/statuses"))


def single_reads(server) -> int:
    return sum(
        1
        for method, path in server.requests
        if method == "GET" and path.startswith("/api/v1/statuses/")
    )


def test_it_names_exactly_the_deleted_items_in_one_call(channel, mastodon_account, mastodon_server):
    # Given five items, two of which their authors deleted since
    ids = items(channel, mastodon_account, mastodon_server, 5)
    mastodon_server.delete_status(ids[1])
    mastodon_server.delete_status(ids[3])

    # When the inbox asks which are gone
    gone = channel.items_gone(mastodon_account, ids)

    # Then those two, read in one call
    assert gone == {ids[1], ids[3]}
    assert batch_reads(mastodon_server) == 1
    assert single_reads(mastodon_server) == 0


def test_a_reply_and_a_quote_are_checked_like_a_mention(channel, mastodon_account, mastodon_server):
    ours = channel.publish(mastodon_account, "Our news.", [], idempotency_key="k").external_id
    mastodon_server.add_reply(ours, "Thanks!")
    mastodon_server.add_quote(ours, "Worth reading.")
    page = channel.fetch_inbound(mastodon_account, "")
    reply, quote = sorted((item.network_id for item in page.items), key=int)
    mastodon_server.delete_status(quote)

    assert channel.items_gone(mastodon_account, [reply, quote]) == {quote}


def test_nothing_gone_names_nothing(channel, mastodon_account, mastodon_server):
    ids = items(channel, mastodon_account, mastodon_server, 3)

    assert channel.items_gone(mastodon_account, ids) == set()


def test_it_asks_for_at_most_twenty_a_call(channel, mastodon_account, mastodon_server):
    # Given 45 items, one deleted in each batch
    ids = items(channel, mastodon_account, mastodon_server, 45)
    deleted = {ids[0], ids[25], ids[44]}
    for id_ in deleted:
        mastodon_server.delete_status(id_)

    gone = channel.items_gone(mastodon_account, ids)

    assert gone == deleted
    assert batch_reads(mastodon_server) == 3  # 20 + 20 + 5
    assert single_reads(mastodon_server) == 0


def test_an_id_asked_twice_is_read_once(channel, mastodon_account, mastodon_server):
    [only] = items(channel, mastodon_account, mastodon_server, 1)
    mastodon_server.delete_status(only)

    assert channel.items_gone(mastodon_account, [only, only]) == {only}
    assert batch_reads(mastodon_server) == 1


@pytest.mark.parametrize("ids", [[], [""], ["x" * 300]])
def test_nothing_to_check_calls_nothing(channel, mastodon_account, mastodon_server, ids):
    assert channel.items_gone(mastodon_account, ids) == set()
    assert mastodon_server.requests == []


def test_a_server_before_4_3_is_asked_one_status_at_a_time(
    channel, mastodon_account, mastodon_server
):
    # Given a Mastodon 4.2 (no GET /api/v1/statuses) and 22 items, two deleted
    mastodon_server.version = "4.2.10"
    ids = items(channel, mastodon_account, mastodon_server, 22)
    mastodon_server.delete_status(ids[1])
    mastodon_server.delete_status(ids[21])

    gone = channel.items_gone(mastodon_account, ids)

    # Then the 404s are gone; the batch was tried once, then each status read on its own
    assert gone == {ids[1], ids[21]}
    assert batch_reads(mastodon_server) == 1
    assert single_reads(mastodon_server) == 22


def test_an_answer_naming_none_of_them_is_checked_one_by_one(
    channel, mastodon_account, mastodon_server
):
    # Given a server that answers the batch with an empty list (one that does not read id[])
    ids = items(channel, mastodon_account, mastodon_server, 3)
    mastodon_server.delete_status(ids[2])
    mastodon_server.fail_next("statuses_index", "malformed", body=b"[]")

    gone = channel.items_gone(mastodon_account, ids)

    # Then only the status it says is not there (404) on its own is gone
    assert gone == {ids[2]}
    assert single_reads(mastodon_server) == 3


def test_a_batch_of_deleted_items_is_confirmed_one_by_one(
    channel, mastodon_account, mastodon_server
):
    ids = items(channel, mastodon_account, mastodon_server, 2)
    for id_ in ids:
        mastodon_server.delete_status(id_)

    assert channel.items_gone(mastodon_account, ids) == set(ids)
    assert batch_reads(mastodon_server) == 1
    assert single_reads(mastodon_server) == 2


def test_a_rate_limit_answer_is_retryable_after_its_reset(
    channel, mastodon_account, mastodon_server
):
    ids = items(channel, mastodon_account, mastodon_server, 2)
    mastodon_server.delete_status(ids[0])
    mastodon_server.fail_next("statuses_index", "429", reset_in=90)

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(mastodon_account, ids)

    assert caught.value.http_status == 429
    assert 80 <= caught.value.retry_after <= 90


def test_a_rate_limit_on_a_single_read_is_retryable(channel, mastodon_account, mastodon_server):
    mastodon_server.version = "4.2.0"
    ids = items(channel, mastodon_account, mastodon_server, 2)
    mastodon_server.fail_next("statuses_show", "429", reset_in=30)

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(mastodon_account, ids)

    assert 20 <= caught.value.retry_after <= 30


@pytest.mark.parametrize("code", ["500", "502", "503"])
def test_a_server_error_is_retryable(channel, mastodon_account, mastodon_server, code):
    ids = items(channel, mastodon_account, mastodon_server, 2)
    mastodon_server.delete_status(ids[0])
    mastodon_server.fail_next("statuses_index", code)

    with pytest.raises(RetryableError):
        channel.items_gone(mastodon_account, ids)


def test_a_server_error_on_a_single_read_is_retryable(channel, mastodon_account, mastodon_server):
    mastodon_server.version = "4.0.0"
    ids = items(channel, mastodon_account, mastodon_server, 2)
    mastodon_server.fail_next("statuses_show", "503")

    with pytest.raises(RetryableError):
        channel.items_gone(mastodon_account, ids)


def test_an_unreachable_server_is_retryable(
    channel, mastodon_account, mastodon_server, short_network_timeout
):
    ids = items(channel, mastodon_account, mastodon_server, 1)
    mastodon_server.fail_next("statuses_index", "drop")

    with pytest.raises(RetryableError, match="Checking the items"):
        channel.items_gone(mastodon_account, ids)


def test_an_expired_token_is_auth_expired(channel, mastodon_account, mastodon_server):
    ids = items(channel, mastodon_account, mastodon_server, 1)
    mastodon_account.set_tokens(access_token="revoked-token")
    mastodon_account.save()

    with pytest.raises(AuthExpired) as caught:
        channel.items_gone(mastodon_account, ids)

    assert caught.value.http_status == 401


def test_too_many_ids_refused_by_the_server_is_permanent(
    channel, mastodon_account, mastodon_server, monkeypatch
):
    from networks.channels import mastodon as mastodon_module

    monkeypatch.setattr(mastodon_module, "STATUSES_PER_CALL", 21)
    ids = items(channel, mastodon_account, mastodon_server, 21)

    with pytest.raises(PermanentError, match="ValidationError"):
        channel.items_gone(mastodon_account, ids)


@pytest.mark.parametrize(
    "body",
    [
        b"<!doctype html><p>Maintenance</p>",
        b'{"error": "not a list"}',
        b"[1, 2]",
        b'[{"content": "no id"}]',
        b'[{"id": true}]',
        b"null",
    ],
)
def test_a_malformed_answer_is_retryable(channel, mastodon_account, mastodon_server, body):
    ids = items(channel, mastodon_account, mastodon_server, 2)
    mastodon_server.delete_status(ids[0])
    mastodon_server.fail_next("statuses_index", "malformed", body=body)

    with pytest.raises(RetryableError, match="status"):
        channel.items_gone(mastodon_account, ids)


@pytest.mark.parametrize("body", [b"[]", b'{"id": "other"}', b"not json"])
def test_a_malformed_single_status_is_retryable(channel, mastodon_account, mastodon_server, body):
    mastodon_server.version = "4.0.0"
    ids = items(channel, mastodon_account, mastodon_server, 1)
    mastodon_server.fail_next("statuses_show", "malformed", body=body)

    with pytest.raises(RetryableError, match="status"):
        channel.items_gone(mastodon_account, ids)


def test_checking_changes_nothing(channel, mastodon_account, mastodon_server):
    ids = items(channel, mastodon_account, mastodon_server, 3)
    mastodon_server.delete_status(ids[0])
    before = (dict(mastodon_server.others), list(mastodon_server.notifications))

    channel.items_gone(mastodon_account, ids)

    assert (dict(mastodon_server.others), list(mastodon_server.notifications)) == before
    assert {method for method, _ in mastodon_server.requests} == {"GET"}
