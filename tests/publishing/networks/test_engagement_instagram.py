"""The figures of our Instagram posts (issue 17), read from the Graph API test server on
127.0.0.1: likes and comments of several media in one read, their views from the insights in
one more, deleted media marked."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from networks.channels import facebook as facebook_module
from networks.channels import get_channel
from networks.channels import instagram as instagram_module
from networks.channels.base import Engagement
from networks.channels.errors import AuthExpired, RetryableError
from networks.channels.facebook import GRAPH_VERSION

from .graph_server import PERMISSIONS

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

IG_ID = "17841400000000001"


@pytest.fixture
def channel():
    return get_channel("instagram")


@pytest.fixture
def media(graph_server):
    """Three posts of the account: their IG media ids, as publish stores them."""
    return [
        graph_server.add_ig_media(IG_ID, f"Park {n}.", published=time.time() - 3600 * n)["id"]
        for n in range(3)
    ]


def _reads(graph_server) -> list[str]:
    return [
        path
        for method, path in graph_server.requests
        if method == "GET" and path in (f"/{GRAPH_VERSION}/", f"/{GRAPH_VERSION}/insights")
    ]


def test_it_reads_the_figures_of_several_media_in_two_calls(
    channel, instagram_account, graph_server, media
):
    first, second, third = media
    graph_server.add_figures(first, likes=31, views=900)
    question = graph_server.add_ig_comment(first, "Where?")
    graph_server.add_ig_comment(first, "By the lake.", parent=question["id"])
    graph_server.add_figures(second, likes=2, views=15)

    figures = channel.fetch_engagement(instagram_account, media)

    # Instagram has no reposts, quotes or clicks: unknown, never 0.
    assert figures[first] == Engagement(
        likes=31, reposts=None, replies=2, quotes=None, impressions=900, clicks=None
    )
    assert figures[second] == Engagement(likes=2, replies=0, impressions=15)
    assert figures[third] == Engagement(likes=0, replies=0, impressions=0)
    assert _reads(graph_server) == [f"/{GRAPH_VERSION}/", f"/{GRAPH_VERSION}/insights"]
    assert not any(method == "POST" for method, _ in graph_server.requests)


def test_it_asks_for_views_not_the_deprecated_impressions(channel):
    assert instagram_module.IG_INSIGHTS == ("views",)
    assert "instagram_manage_insights" in channel.scopes


@pytest.mark.parametrize("missing_ids", ["refuse", "error", "omit"])
def test_a_post_deleted_on_instagram_is_marked_and_the_others_still_read(
    channel, instagram_account, graph_server, media, missing_ids
):
    first, second, third = media
    graph_server.add_figures(first, likes=4)
    graph_server.add_figures(third, likes=8, views=70)
    graph_server.delete_ig_media(second)
    graph_server.missing_ids = missing_ids

    figures = channel.fetch_engagement(instagram_account, media)

    assert figures[second] == Engagement(deleted=True)
    assert figures[first].likes == 4
    assert figures[third] == Engagement(likes=8, replies=0, impressions=70)


def test_more_media_than_one_read_takes_are_read_in_batches(
    channel, instagram_account, graph_server, media, monkeypatch
):
    monkeypatch.setattr(facebook_module, "IDS_PER_CALL", 2)

    figures = channel.fetch_engagement(instagram_account, media)

    assert list(figures) == media
    assert _reads(graph_server).count(f"/{GRAPH_VERSION}/") == 2
    assert _reads(graph_server).count(f"/{GRAPH_VERSION}/insights") == 2


# --- impressions ----------------------------------------------------------------------------------


def test_without_the_insights_permission_views_are_unknown_not_a_failure(
    channel, instagram_account, graph_server, media, monkeypatch
):
    monkeypatch.setattr(facebook_module, "IDS_PER_CALL", 2)
    token = graph_server.tokens[instagram_account.access_token]
    token.scopes = frozenset(PERMISSIONS - {"instagram_manage_insights"})
    graph_server.add_figures(media[0], likes=3, views=50)

    figures = channel.fetch_engagement(instagram_account, media)

    assert figures[media[0]] == Engagement(likes=3, replies=0, impressions=None)
    assert _reads(graph_server).count(f"/{GRAPH_VERSION}/insights") == 1


def test_too_few_viewers_for_insights_leaves_views_unknown(
    channel, instagram_account, graph_server, media
):
    graph_server.fail_next(
        "insights", "10", message="(#10) Not enough viewers for the media to show insights"
    )
    graph_server.add_figures(media[0], likes=3)

    figures = channel.fetch_engagement(instagram_account, media)

    assert figures[media[0]] == Engagement(likes=3, replies=0, impressions=None)


def test_the_deprecated_impressions_metric_would_only_leave_views_unknown(
    channel, instagram_account, graph_server, media, monkeypatch
):
    monkeypatch.setattr(instagram_module, "IG_INSIGHTS", ("impressions",))

    figures = channel.fetch_engagement(instagram_account, media)

    assert all(one.impressions is None and one.likes == 0 for one in figures.values())


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["ids", "insights"])
def test_a_rate_limit_is_retryable_after_the_time_meta_estimates(
    channel, instagram_account, graph_server, media, route
):
    graph_server.fail_next(route, "429", minutes=3)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(instagram_account, media)

    assert caught.value.retry_after == 180
    assert caught.value.http_status == 429


def test_an_expired_token_is_auth_expired_without_asking_meta(
    channel, instagram_account, graph_server, media
):
    instagram_account.expires_at = timezone.now() - timedelta(minutes=1)
    instagram_account.save(update_fields=["expires_at"])

    with pytest.raises(AuthExpired, match="expired"):
        channel.fetch_engagement(instagram_account, media)

    assert graph_server.requests == []


def test_a_token_meta_refuses_is_auth_expired(channel, instagram_account, graph_server, media):
    graph_server.invalidate(instagram_account.access_token)

    with pytest.raises(AuthExpired, match="190"):
        channel.fetch_engagement(instagram_account, media)


@pytest.mark.parametrize("route", ["ids", "insights"])
def test_a_server_error_is_retryable(channel, instagram_account, graph_server, media, route):
    graph_server.fail_next(route, "500")

    with pytest.raises(RetryableError):
        channel.fetch_engagement(instagram_account, media)


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
    channel, instagram_account, graph_server, media, route, mode, words
):
    graph_server.fail_next(route, mode)

    with pytest.raises(RetryableError, match=words):
        channel.fetch_engagement(instagram_account, media)


def test_a_count_that_is_no_number_is_retryable(
    channel, instagram_account, graph_server, media, monkeypatch
):
    real = graph_server._media_row

    def odd(item, fields):
        row = real(item, fields)
        row["like_count"] = -1
        return row

    monkeypatch.setattr(graph_server, "_media_row", odd)

    with pytest.raises(RetryableError, match="-1 where a count belongs"):
        channel.fetch_engagement(instagram_account, media)
