"""The figures of our Mastodon statuses (issue 17): favourites, boosts, replies and quotes read
from a Mastodon test server on 127.0.0.1, twenty statuses a call, one by one on a server
before 4.3."""

import pytest

from networks.channels import Engagement, get_channel
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)


@pytest.fixture
def channel():
    return get_channel("mastodon")


def posts(channel, account, count: int) -> list[str]:
    """`count` statuses of ours, as publish stored them; their ids, oldest first."""
    return [
        channel.publish(account, f"Update {n}.", [], idempotency_key=f"key-{n}").external_id
        for n in range(count)
    ]


def batch_reads(server) -> int:
    return sum(1 for request in server.requests if request == ("GET", "/api/v1/statuses"))


def single_reads(server) -> int:
    return sum(
        1
        for method, path in server.requests
        if method == "GET" and path.startswith("/api/v1/statuses/")
    )


def test_it_reads_the_servers_figures_for_several_posts_in_one_call(
    channel, mastodon_account, mastodon_server
):
    # Given three posts that people liked, boosted, answered and quoted
    first, second, third = posts(channel, mastodon_account, 3)
    mastodon_server.favourite(first, 7)
    mastodon_server.reblog(first, 2)
    mastodon_server.add_reply(first, "Thanks!")
    mastodon_server.add_reply(first, "Private thanks.", visibility="direct")  # not counted
    mastodon_server.add_quote(first, "Worth reading.")
    mastodon_server.favourite(third, 1)

    # When their figures are read
    figures = channel.fetch_engagement(mastodon_account, [first, second, third])

    # Then each has the server's counts, in one call, and no figure Mastodon does not give
    assert figures == {
        first: Engagement(likes=7, reposts=2, replies=1, quotes=1),
        second: Engagement(likes=0, reposts=0, replies=0, quotes=0),
        third: Engagement(likes=1, reposts=0, replies=0, quotes=0),
    }
    assert figures[first].impressions is None and figures[first].clicks is None
    assert batch_reads(mastodon_server) == 1
    assert single_reads(mastodon_server) == 0


def test_a_deleted_post_is_marked_deleted(channel, mastodon_account, mastodon_server):
    kept, gone = posts(channel, mastodon_account, 2)
    mastodon_server.favourite(kept, 3)
    mastodon_server.delete_status(gone)

    figures = channel.fetch_engagement(mastodon_account, [kept, gone])

    assert figures[kept] == Engagement(likes=3, reposts=0, replies=0, quotes=0)
    assert figures[gone] == Engagement(deleted=True)


def test_it_asks_for_at_most_twenty_a_call(channel, mastodon_account, mastodon_server):
    ids = posts(channel, mastodon_account, 45)

    figures = channel.fetch_engagement(mastodon_account, ids)

    assert set(figures) == set(ids)
    assert not any(e.deleted for e in figures.values())
    assert batch_reads(mastodon_server) == 3  # 20 + 20 + 5


def test_an_id_asked_twice_is_read_once(channel, mastodon_account, mastodon_server):
    [only] = posts(channel, mastodon_account, 1)

    figures = channel.fetch_engagement(mastodon_account, [only, only])

    assert list(figures) == [only]
    assert batch_reads(mastodon_server) == 1


def test_nothing_to_read_calls_nothing(channel, mastodon_account, mastodon_server):
    assert channel.fetch_engagement(mastodon_account, []) == {}
    assert mastodon_server.requests == []


def test_a_server_before_4_3_is_read_one_status_at_a_time(
    channel, mastodon_account, mastodon_server
):
    # Given a Mastodon 4.2 (no GET /api/v1/statuses, no quotes_count)
    mastodon_server.version = "4.2.10"
    ids = posts(channel, mastodon_account, 22)
    mastodon_server.favourite(ids[0], 4)
    mastodon_server.delete_status(ids[1])

    figures = channel.fetch_engagement(mastodon_account, ids)

    assert figures[ids[0]] == Engagement(likes=4, reposts=0, replies=0, quotes=None)
    assert figures[ids[1]] == Engagement(deleted=True)
    assert len(figures) == 22
    # The batch was tried once, then each status was read on its own.
    assert batch_reads(mastodon_server) == 1
    assert single_reads(mastodon_server) == 22


def test_quotes_are_none_before_4_5(channel, mastodon_account, mastodon_server):
    mastodon_server.version = "4.4.0"
    [only] = posts(channel, mastodon_account, 1)

    figures = channel.fetch_engagement(mastodon_account, [only])

    assert figures[only] == Engagement(likes=0, reposts=0, replies=0, quotes=None)


def test_a_rate_limit_answer_is_retryable_after_its_reset(
    channel, mastodon_account, mastodon_server
):
    ids = posts(channel, mastodon_account, 2)
    mastodon_server.fail_next("statuses_index", "429", reset_in=90)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(mastodon_account, ids)

    assert caught.value.http_status == 429
    assert 80 <= caught.value.retry_after <= 90


def test_a_rate_limit_on_a_single_read_is_retryable(channel, mastodon_account, mastodon_server):
    mastodon_server.version = "4.2.0"
    ids = posts(channel, mastodon_account, 2)
    mastodon_server.fail_next("statuses_show", "429", reset_in=30)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(mastodon_account, ids)

    assert 20 <= caught.value.retry_after <= 30


def test_an_expired_token_is_auth_expired(channel, mastodon_account, mastodon_server):
    ids = posts(channel, mastodon_account, 1)
    mastodon_account.set_tokens(access_token="revoked-token")
    mastodon_account.save()

    with pytest.raises(AuthExpired) as caught:
        channel.fetch_engagement(mastodon_account, ids)

    assert caught.value.http_status == 401


def test_a_server_error_is_retryable(channel, mastodon_account, mastodon_server):
    ids = posts(channel, mastodon_account, 1)
    mastodon_server.fail_next("statuses_index", "503")

    with pytest.raises(RetryableError):
        channel.fetch_engagement(mastodon_account, ids)


def test_too_many_ids_refused_by_the_server_is_permanent(
    channel, mastodon_account, mastodon_server, monkeypatch
):
    from networks.channels import mastodon as mastodon_module

    monkeypatch.setattr(mastodon_module, "STATUSES_PER_CALL", 21)
    ids = posts(channel, mastodon_account, 21)

    with pytest.raises(PermanentError, match="ValidationError"):
        channel.fetch_engagement(mastodon_account, ids)


@pytest.mark.parametrize(
    "body",
    [
        b"<!doctype html><p>Maintenance</p>",
        b'{"error": "not a list"}',
        b"[1, 2]",
        b'[{"favourites_count": 3}]',
        b'[{"id": true}]',
        b"null",
    ],
)
def test_a_malformed_answer_is_retryable(channel, mastodon_account, mastodon_server, body):
    ids = posts(channel, mastodon_account, 1)
    mastodon_server.fail_next("statuses_index", "malformed", body=body)

    with pytest.raises(RetryableError, match="status"):
        channel.fetch_engagement(mastodon_account, ids)


@pytest.mark.parametrize("body", [b"[]", b'{"id": "other"}', b"not json"])
def test_a_malformed_single_status_is_retryable(channel, mastodon_account, mastodon_server, body):
    mastodon_server.version = "4.0.0"
    ids = posts(channel, mastodon_account, 1)
    mastodon_server.fail_next("statuses_show", "malformed", body=body)

    with pytest.raises(RetryableError, match="status"):
        channel.fetch_engagement(mastodon_account, ids)


def test_a_figure_that_is_no_count_is_none(channel, mastodon_account, mastodon_server):
    body = (
        b'[{"id": "1", "favourites_count": "12", "reblogs_count": -1, '
        b'"replies_count": true, "quotes_count": 2}]'
    )
    mastodon_server.fail_next("statuses_index", "malformed", body=body)

    figures = channel.fetch_engagement(mastodon_account, ["1"])

    assert figures == {"1": Engagement(likes=None, reposts=None, replies=None, quotes=2)}


def test_reading_figures_changes_nothing(channel, mastodon_account, mastodon_server):
    ids = posts(channel, mastodon_account, 2)
    before = [dict(s) for s in mastodon_server.statuses]
    mastodon_server.requests.clear()

    channel.fetch_engagement(mastodon_account, ids)

    assert [dict(s) for s in mastodon_server.statuses] == before
    assert {method for method, _ in mastodon_server.requests} == {"GET"}
