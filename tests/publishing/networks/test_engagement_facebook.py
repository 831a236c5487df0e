"""The figures of our Facebook posts (issue 17), read from the Graph API test server on
127.0.0.1: reactions, comments and shares of several posts in one read, impressions and clicks
from their insights in one more, deleted posts marked."""

import pytest

from networks.channels import facebook as facebook_module
from networks.channels import get_channel
from networks.channels.base import Engagement
from networks.channels.errors import AuthExpired, PermanentError, RetryableError
from networks.channels.facebook import GRAPH_VERSION

from .graph_server import PERMISSIONS

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "1e2d3c4b-5a69-4788-9a0b-c1d2e3f4a5b6"


@pytest.fixture
def channel():
    return get_channel("facebook")


@pytest.fixture
def posts(channel, facebook_account):
    """Three of our posts, published through the channel: their ids as publish stored them."""
    return [
        channel.publish(facebook_account, f"Notice {n}.", [], idempotency_key=KEY).external_id
        for n in range(3)
    ]


def _reads(graph_server) -> list[str]:
    """The paths of the engagement reads made (after publishing)."""
    return [
        path
        for method, path in graph_server.requests
        if method == "GET" and path in (f"/{GRAPH_VERSION}/", f"/{GRAPH_VERSION}/insights")
    ]


def test_it_reads_the_figures_of_several_posts_in_two_calls(
    channel, facebook_account, graph_server, posts
):
    first, second, third = posts
    graph_server.add_figures(first, reactions=12, shares=3, views=480, clicks=25)
    question = graph_server.add_comment(first, "When?")
    graph_server.add_comment(first, "Thursday.", parent=question["id"])
    graph_server.add_comment(first, "Thanks!")
    graph_server.add_figures(second, reactions=1, views=7)
    published_before = len([r for r in graph_server.requests if r[0] == "POST"])

    figures = channel.fetch_engagement(facebook_account, posts)

    assert figures[first] == Engagement(
        likes=12, reposts=3, replies=3, quotes=None, impressions=480, clicks=25
    )
    # Nobody shared it: Meta leaves `shares` out, which is 0, not unknown.
    assert figures[second] == Engagement(likes=1, reposts=0, replies=0, impressions=7, clicks=0)
    assert figures[third] == Engagement(likes=0, reposts=0, replies=0, impressions=0, clicks=0)
    assert _reads(graph_server) == [f"/{GRAPH_VERSION}/", f"/{GRAPH_VERSION}/insights"]
    # It changes nothing at the network.
    assert len([r for r in graph_server.requests if r[0] == "POST"]) == published_before


def test_no_posts_ask_nothing(channel, facebook_account, graph_server):
    assert channel.fetch_engagement(facebook_account, []) == {}
    assert graph_server.requests == []


@pytest.mark.parametrize("missing_ids", ["refuse", "error", "omit"])
def test_a_post_deleted_on_facebook_is_marked_and_the_others_still_read(
    channel, facebook_account, graph_server, posts, missing_ids
):
    first, second, third = posts
    graph_server.add_figures(first, reactions=5)
    graph_server.add_figures(third, reactions=9, views=40)
    graph_server.delete_post(second)
    graph_server.missing_ids = missing_ids

    figures = channel.fetch_engagement(facebook_account, posts)

    assert figures[second] == Engagement(deleted=True)
    assert figures[first].likes == 5 and figures[first].deleted is False
    assert figures[third].likes == 9 and figures[third].impressions == 40


def test_when_every_post_was_deleted_all_are_marked(channel, facebook_account, graph_server, posts):
    for post in posts:
        graph_server.delete_post(post)

    figures = channel.fetch_engagement(facebook_account, posts)

    assert figures == dict.fromkeys(posts, Engagement(deleted=True))
    assert "/insights" not in " ".join(_reads(graph_server))


def test_more_posts_than_one_read_takes_are_read_in_batches(
    channel, facebook_account, graph_server, monkeypatch
):
    monkeypatch.setattr(facebook_module, "IDS_PER_CALL", 2)
    posts = [graph_server.add_post("201", f"Old notice {n}.")["id"] for n in range(5)]
    graph_server.add_figures(posts[4], reactions=2)

    figures = channel.fetch_engagement(facebook_account, posts)

    assert list(figures) == posts
    assert figures[posts[4]].likes == 2
    assert _reads(graph_server).count(f"/{GRAPH_VERSION}/") == 3
    assert _reads(graph_server).count(f"/{GRAPH_VERSION}/insights") == 3


def test_fifty_one_posts_take_two_reads(channel, facebook_account, graph_server):
    posts = [graph_server.add_post("201", f"Notice {n}.")["id"] for n in range(51)]

    figures = channel.fetch_engagement(facebook_account, posts)

    assert len(figures) == 51
    assert _reads(graph_server).count(f"/{GRAPH_VERSION}/") == 2


# --- impressions and clicks ---------------------------------------------------------------------


def test_without_read_insights_impressions_and_clicks_are_unknown_not_a_failure(
    channel, facebook_account, graph_server, posts, monkeypatch
):
    monkeypatch.setattr(facebook_module, "IDS_PER_CALL", 2)
    token = graph_server.tokens[facebook_account.access_token]
    token.scopes = frozenset(PERMISSIONS - {"read_insights"})
    graph_server.add_figures(posts[0], reactions=4, views=100, clicks=9)

    figures = channel.fetch_engagement(facebook_account, posts)

    assert figures[posts[0]] == Engagement(
        likes=4, reposts=0, replies=0, impressions=None, clicks=None
    )
    # Refused once, the insights are not asked again for the second batch.
    assert _reads(graph_server).count(f"/{GRAPH_VERSION}/insights") == 1


def test_a_metric_meta_no_longer_gives_leaves_the_figures_unknown(
    channel, facebook_account, graph_server, posts, monkeypatch
):
    monkeypatch.setattr(facebook_module, "FB_INSIGHTS", ("post_impressions", "post_clicks"))
    graph_server.add_figures(posts[0], reactions=4, views=100)

    figures = channel.fetch_engagement(facebook_account, posts)

    assert figures[posts[0]].likes == 4
    assert figures[posts[0]].impressions is None and figures[posts[0]].clicks is None


def test_a_rate_limit_on_the_insights_is_still_retryable(
    channel, facebook_account, graph_server, posts
):
    graph_server.fail_next("insights", "429", minutes=2)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(facebook_account, posts)

    assert caught.value.retry_after == 120


# --- errors ---------------------------------------------------------------------------------------


def test_a_rate_limit_is_retryable_after_the_time_meta_estimates(
    channel, facebook_account, graph_server, posts
):
    graph_server.fail_next("ids", "429", minutes=6)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(facebook_account, posts)

    assert caught.value.retry_after == 6 * 60
    assert caught.value.http_status == 429


def test_a_page_rate_limit_in_a_400_is_retryable_too(
    channel, facebook_account, graph_server, posts
):
    graph_server.fail_next("ids", "rate", code=32, minutes=1)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(facebook_account, posts)

    assert caught.value.retry_after == 60


def test_an_expired_token_is_auth_expired(channel, facebook_account, graph_server, posts):
    graph_server.expire(facebook_account.access_token)

    with pytest.raises(AuthExpired, match="190"):
        channel.fetch_engagement(facebook_account, posts)


@pytest.mark.parametrize("route", ["ids", "insights"])
def test_a_server_error_is_retryable(channel, facebook_account, graph_server, posts, route):
    graph_server.fail_next(route, "500")

    with pytest.raises(RetryableError):
        channel.fetch_engagement(facebook_account, posts)


@pytest.mark.parametrize(
    ("route", "mode", "words"),
    [
        ("ids", "malformed", "did not ask for"),
        ("ids", "not_json", "none of the 3"),
        ("insights", "malformed", "did not ask for"),
        ("insights", "not_json", "none of the 3"),
    ],
)
def test_an_answer_we_cannot_read_is_retryable_and_marks_nothing_deleted(
    channel, facebook_account, graph_server, posts, route, mode, words
):
    graph_server.fail_next(route, mode)

    with pytest.raises(RetryableError, match=words):
        channel.fetch_engagement(facebook_account, posts)


def test_a_count_that_is_no_number_is_retryable(
    channel, facebook_account, graph_server, posts, monkeypatch
):
    real = graph_server._post_row

    def odd(post, fields):
        row = real(post, fields)
        row["reactions"]["summary"]["total_count"] = "many"
        return row

    monkeypatch.setattr(graph_server, "_post_row", odd)

    with pytest.raises(RetryableError, match="'many' where a count belongs"):
        channel.fetch_engagement(facebook_account, posts)


def test_a_post_of_another_page_is_refused_in_metas_words(
    channel, facebook_account, graph_server, posts
):
    theirs = graph_server.add_post("202", "South news.")["id"]

    with pytest.raises(PermanentError, match="#200"):
        channel.fetch_engagement(facebook_account, [*posts, theirs])
