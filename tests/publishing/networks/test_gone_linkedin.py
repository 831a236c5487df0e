"""Which kept LinkedIn comments are gone (issue 17): the comments on the Page's posts, as
fetch_inbound read them, checked against a LinkedIn test server on 127.0.0.1 with comments-api's
"Get a Comment" (404: gone), after one read of a post's comments where several share it."""

import pytest

from networks.channels import get_channel
from networks.channels import linkedin as linkedin_module
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

ANA = "urn:li:person:ana111"


@pytest.fixture
def channel():
    return get_channel("linkedin")


@pytest.fixture
def post(channel, linkedin_account):
    """One of our posts, as dispatch leaves it: its external_id."""
    return channel.publish(
        linkedin_account, "Clinic hours change.", [], idempotency_key="k"
    ).external_id


def items(channel, account, server, post: str, count: int, *, parent: str = "") -> list[str]:
    """`count` comments on `post` (replies under `parent`), read as the inbox reads them;
    their network ids, oldest first."""
    made = [
        server.add_comment(
            post, f"Question {n}?", actor=ANA, millis=1_800_000_000_000 + n, parent=parent
        )
        for n in range(count)
    ]
    page = channel.fetch_inbound(account, "", limit=100)
    assert set(made) <= {item.network_id for item in page.items}
    server.requests.clear()
    return made


def list_reads(server) -> int:
    return sum(1 for method, path in server.requests if path.endswith("/comments"))


def single_reads(server) -> int:
    return sum(1 for method, path in server.requests if "/comments/" in path)


def test_it_names_exactly_the_deleted_comments(channel, linkedin_account, linkedin_server, post):
    # Given three comments on our post, one deleted since
    ids = items(channel, linkedin_account, linkedin_server, post, 3)
    linkedin_server.delete_comment(ids[1])

    # When the inbox asks which are gone
    gone = channel.items_gone(linkedin_account, ids)

    # Then that one: the post's list shows the others, LinkedIn's 404 settles it
    assert gone == {ids[1]}
    assert list_reads(linkedin_server) == 1
    assert single_reads(linkedin_server) == 1


def test_a_lone_comment_is_asked_for_on_its_own(channel, linkedin_account, linkedin_server, post):
    [only] = items(channel, linkedin_account, linkedin_server, post, 1)
    linkedin_server.delete_comment(only)

    assert channel.items_gone(linkedin_account, [only]) == {only}
    # The post's list answers first (LinkedIn knows the post), then the comment itself.
    assert list_reads(linkedin_server) == 1
    assert single_reads(linkedin_server) == 1


def test_nothing_gone_names_nothing_in_one_read(channel, linkedin_account, linkedin_server, post):
    ids = items(channel, linkedin_account, linkedin_server, post, 4)

    assert channel.items_gone(linkedin_account, ids) == set()
    assert list_reads(linkedin_server) == 1
    assert single_reads(linkedin_server) == 0


def test_replies_are_asked_for_on_their_own(channel, linkedin_account, linkedin_server, post):
    # Given a comment with two replies, one deleted (a post's list holds no replies)
    [question] = items(channel, linkedin_account, linkedin_server, post, 1)
    kept, deleted = items(channel, linkedin_account, linkedin_server, post, 2, parent=question)
    linkedin_server.delete_comment(deleted)

    gone = channel.items_gone(linkedin_account, [question, kept, deleted])

    assert gone == {deleted}
    assert single_reads(linkedin_server) == 2


def test_comments_on_several_posts_are_checked_post_by_post(
    channel, linkedin_account, linkedin_server, post
):
    other = channel.publish(linkedin_account, "Flu jabs.", [], idempotency_key="o").external_id
    first = items(channel, linkedin_account, linkedin_server, post, 2)
    second = items(channel, linkedin_account, linkedin_server, other, 2)
    linkedin_server.delete_comment(first[0])
    linkedin_server.delete_comment(second[1])

    gone = channel.items_gone(linkedin_account, first + second)

    assert gone == {first[0], second[1]}
    assert list_reads(linkedin_server) == 2


def test_the_comments_of_a_post_linkedin_does_not_know_are_left_unjudged(
    channel, linkedin_account, linkedin_server, post
):
    # A 404 on the post's list may be a deleted post or a form of URN LinkedIn does not take
    # there: marking every comment gone on that would be wrong for good, so none is.
    ids = items(channel, linkedin_account, linkedin_server, post, 2)
    linkedin_server.delete_post(post)

    assert channel.items_gone(linkedin_account, ids) == set()
    assert single_reads(linkedin_server) == 0


def test_a_long_list_is_read_only_while_it_saves_calls(
    channel, linkedin_account, linkedin_server, post, monkeypatch
):
    # Given five kept comments, the oldest deleted, and pages of two (newest first)
    ids = items(channel, linkedin_account, linkedin_server, post, 5)
    linkedin_server.delete_comment(ids[0])
    monkeypatch.setattr(linkedin_module, "COMMENTS_PAGE", 2)

    gone = channel.items_gone(linkedin_account, ids)

    # Then two pages show four; the last one unfound is asked for on its own
    assert gone == {ids[0]}
    assert list_reads(linkedin_server) == 2
    assert single_reads(linkedin_server) == 1


def test_a_list_that_does_not_show_them_costs_no_more_pages_than_comments(
    channel, linkedin_account, linkedin_server, post, monkeypatch
):
    # Given two kept comments behind eight newer ones, with pages of two
    ids = items(channel, linkedin_account, linkedin_server, post, 2)
    for n in range(8):
        linkedin_server.add_comment(post, f"Later {n}.", actor=ANA, millis=1_800_000_001_000 + n)
    monkeypatch.setattr(linkedin_module, "COMMENTS_PAGE", 2)

    assert channel.items_gone(linkedin_account, ids) == set()
    assert list_reads(linkedin_server) == 2
    assert single_reads(linkedin_server) == 2


@pytest.mark.parametrize(
    "ids", [[], [""], ["urn:li:share:123"], ["urn:li:comment:(urn:li:activity:1,2"]]
)
def test_nothing_to_check_calls_nothing(channel, linkedin_account, linkedin_server, ids):
    assert channel.items_gone(linkedin_account, ids) == set()
    assert linkedin_server.requests == []


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "route"), [(1, "comment"), (2, "comments")])
def test_a_rate_limit_is_retryable_with_linkedins_wait(
    channel, linkedin_account, linkedin_server, post, count, route
):
    ids = items(channel, linkedin_account, linkedin_server, post, count)
    linkedin_server.delete_comment(ids[0])
    linkedin_server.fail_next(route, "429", retry_after=90)

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(linkedin_account, ids)

    assert caught.value.http_status == 429
    assert caught.value.retry_after == 90


@pytest.mark.parametrize(("count", "route"), [(1, "comment"), (2, "comments")])
def test_a_server_error_is_retryable(
    channel, linkedin_account, linkedin_server, post, count, route
):
    ids = items(channel, linkedin_account, linkedin_server, post, count)
    linkedin_server.delete_comment(ids[0])
    linkedin_server.fail_next(route, "503")

    with pytest.raises(RetryableError) as caught:
        channel.items_gone(linkedin_account, ids)

    assert caught.value.http_status == 503


@pytest.mark.parametrize(
    ("count", "route", "mode", "words"),
    [
        (1, "comment", "html", "without the comment"),
        (1, "comment", "no_elements", "without the comment"),
        (2, "comments", "html", "no list of elements"),
        (2, "comments", "no_elements", "no list of elements"),
    ],
)
def test_an_answer_of_the_wrong_shape_is_retryable_and_names_nothing(
    channel, linkedin_account, linkedin_server, post, count, route, mode, words
):
    ids = items(channel, linkedin_account, linkedin_server, post, count)
    linkedin_server.delete_comment(ids[0])
    linkedin_server.fail_next(route, mode)

    with pytest.raises(RetryableError, match=words):
        channel.items_gone(linkedin_account, ids)


def test_an_unreachable_server_is_retryable(
    channel, linkedin_account, linkedin_server, post, short_network_timeout
):
    ids = items(channel, linkedin_account, linkedin_server, post, 1)
    linkedin_server.fail_next("comments", "drop")

    with pytest.raises(RetryableError):
        channel.items_gone(linkedin_account, ids)


def test_an_expired_token_without_a_refresh_token_is_auth_expired(
    channel, linkedin_account, linkedin_server, post
):
    ids = items(channel, linkedin_account, linkedin_server, post, 1)
    linkedin_account.set_tokens(access_token=linkedin_account.access_token, refresh_token="")
    linkedin_account.save()
    linkedin_server.expire(linkedin_account.access_token)

    with pytest.raises(AuthExpired) as caught:
        channel.items_gone(linkedin_account, ids)

    assert caught.value.http_status == 401


def test_an_expired_token_is_renewed_and_the_comments_checked(
    channel, linkedin_account, linkedin_server, post
):
    ids = items(channel, linkedin_account, linkedin_server, post, 1)
    linkedin_server.delete_comment(ids[0])
    linkedin_server.expire(linkedin_account.access_token)

    assert channel.items_gone(linkedin_account, ids) == set(ids)
    assert ("POST", "/oauth/v2/accessToken") in linkedin_server.requests


@pytest.mark.parametrize("count", [1, 2])
def test_a_token_that_may_not_read_the_comments_is_permanent(
    channel, linkedin_account, linkedin_server, post, count
):
    ids = items(channel, linkedin_account, linkedin_server, post, count)
    access, _refresh = linkedin_server.issue({"w_organization_social"})
    linkedin_account.set_tokens(access_token=access, refresh_token="")
    linkedin_account.save()

    with pytest.raises(PermanentError) as caught:
        channel.items_gone(linkedin_account, ids)

    assert caught.value.http_status == 403


def test_checking_changes_nothing(channel, linkedin_account, linkedin_server, post):
    ids = items(channel, linkedin_account, linkedin_server, post, 3)
    linkedin_server.delete_comment(ids[2])
    before = [dict(c) for c in linkedin_server.comments]

    channel.items_gone(linkedin_account, ids)

    assert [dict(c) for c in linkedin_server.comments] == before
    assert {method for method, _ in linkedin_server.requests} == {"GET"}
