"""Engagement of our LinkedIn posts: likes and comments from socialActions (in batches), and
impressions, clicks and reshares from the Page's share statistics where the token may read
them, against the LinkedIn test server on 127.0.0.1."""

from datetime import timedelta

import pytest
from django.utils import timezone

from networks.channels import get_channel
from networks.channels import linkedin as linkedin_module
from networks.channels.base import Engagement, ReplyTo
from networks.channels.errors import AuthExpired, PermanentError, RetryableError
from networks.models import Channel

from ...factories import SocialAccountFactory

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

PAGE = "urn:li:organization:2414183"
ANA = "urn:li:person:ana111"
BEN = "urn:li:person:ben222"
# What connecting asks for (SCOPES), and an administrator's grant that may read statistics.
SCOPES = {"openid", "profile", "w_member_social", "w_organization_social", "r_organization_social"}
ADMIN_SCOPES = SCOPES | {"rw_organization_admin"}


@pytest.fixture
def channel():
    return get_channel("linkedin")


@pytest.fixture
def admin_account(linkedin_account, linkedin_server):
    """The Page, connected with rw_organization_admin by its ADMINISTRATOR."""
    access, refresh = linkedin_server.issue(ADMIN_SCOPES)
    linkedin_account.set_tokens(access_token=access, refresh_token=refresh)
    linkedin_account.save()
    return linkedin_account


def publish(channel, account, text: str) -> str:
    return channel.publish(account, channel.render(text), [], idempotency_key=text).external_id


def calls(server, path: str) -> int:
    return sum(1 for _method, seen in server.requests if seen == path)


SOCIAL = "/rest/socialActions"
STATISTICS = "/rest/organizationalEntityShareStatistics"


# --- figures ----------------------------------------------------------------------------------


def test_likes_and_comments_of_several_posts_come_in_one_call(
    channel, linkedin_account, linkedin_server
):
    # Given three posts with likes, comments and a reply under a comment
    first = publish(channel, linkedin_account, "First.")
    second = publish(channel, linkedin_account, "Second.")
    quiet = publish(channel, linkedin_account, "Quiet.")
    linkedin_server.add_likes(first, 7)
    linkedin_server.add_likes(second, 2)
    question = linkedin_server.add_comment(first, "Why?", actor=ANA)
    linkedin_server.add_comment(first, "Because.", actor=BEN, parent=question)
    linkedin_server.add_comment(second, "Nice.", actor=BEN)
    linkedin_server.add_views(first, 500, clicks=12)
    before = len(linkedin_server.requests)

    # When their figures are read with the scopes connecting asks for
    figures = channel.fetch_engagement(linkedin_account, [first, second, quiet])

    # Then likes and comments (replies included) come from one batch call; the statistics
    # need rw_organization_admin, so impressions, clicks and reshares are not known
    assert figures == {
        first: Engagement(likes=7, replies=2),
        second: Engagement(likes=2, replies=1),
        quiet: Engagement(likes=0, replies=0),
    }
    assert calls(linkedin_server, SOCIAL) == 1
    assert calls(linkedin_server, STATISTICS) == 1  # asked, refused with 403: not a failure
    assert all(method == "GET" for method, _path in linkedin_server.requests[before:])


def test_an_administrators_token_adds_impressions_clicks_and_reshares(
    channel, admin_account, linkedin_server
):
    share = publish(channel, admin_account, "Shared widely.")
    ugc = linkedin_server.add_post(PAGE, "Made on LinkedIn itself.", kind="ugcPost")
    linkedin_server.add_likes(share, 3)
    linkedin_server.add_views(share, 1_200, clicks=40)
    linkedin_server.add_reshares(share, 5)
    linkedin_server.add_views(ugc, 80, clicks=1)
    linkedin_server.add_comment(ugc, "First!", actor=ANA)

    figures = channel.fetch_engagement(admin_account, [share, ugc])

    assert figures[share] == Engagement(
        likes=3, reposts=5, replies=0, quotes=None, impressions=1_200, clicks=40
    )
    assert figures[ugc] == Engagement(
        likes=0, reposts=0, replies=1, quotes=None, impressions=80, clicks=1
    )
    # Shares and ugcPosts each in their own list, in one call
    assert calls(linkedin_server, STATISTICS) == 1


def test_a_deleted_post_is_marked_deleted_and_the_others_read(
    channel, admin_account, linkedin_server
):
    kept = publish(channel, admin_account, "Kept.")
    gone = publish(channel, admin_account, "Deleted on LinkedIn.")
    linkedin_server.add_likes(kept, 1)
    linkedin_server.add_views(kept, 10)
    linkedin_server.delete_post(gone)

    figures = channel.fetch_engagement(admin_account, [kept, gone])

    assert figures[gone] == Engagement(deleted=True)
    assert figures[kept].likes == 1 and figures[kept].impressions == 10


def test_our_reply_has_likes_and_replies_but_no_statistics(channel, admin_account, linkedin_server):
    post = publish(channel, admin_account, "Replies have figures too.")
    question = linkedin_server.add_comment(post, "Open today?", actor=ANA)
    reply = channel.publish(
        admin_account,
        "Yes, until 5.",
        [],
        idempotency_key="r",
        reply_to=ReplyTo(question, post, {"object": linkedin_server.activities[post]}),
    ).external_id
    linkedin_server.add_likes(reply, 4)
    gone = linkedin_server.add_comment(post, "Spam", actor=BEN)
    linkedin_server.delete_comment(gone)

    figures = channel.fetch_engagement(admin_account, [reply, gone])

    assert figures[reply] == Engagement(likes=4, replies=0)
    assert figures[gone] == Engagement(deleted=True)
    assert calls(linkedin_server, STATISTICS) == 0  # comments have no share statistics


def test_many_posts_are_read_in_batches(channel, admin_account, linkedin_server, monkeypatch):
    monkeypatch.setattr(linkedin_module, "ENGAGEMENT_BATCH", 2)
    posts = [publish(channel, admin_account, f"Post {n}.") for n in range(5)]
    for number, post in enumerate(posts):
        linkedin_server.add_likes(post, number)

    figures = channel.fetch_engagement(admin_account, posts + posts[:1])

    assert [figures[post].likes for post in posts] == [0, 1, 2, 3, 4]
    assert calls(linkedin_server, SOCIAL) == 3
    assert calls(linkedin_server, STATISTICS) == 3


def test_no_ids_no_calls(channel, linkedin_account, linkedin_server):
    before = len(linkedin_server.requests)

    assert channel.fetch_engagement(linkedin_account, []) == {}
    assert channel.fetch_engagement(linkedin_account, ["", "not-a-urn"]) == {}
    assert len(linkedin_server.requests) == before


def test_a_members_posts_have_no_page_statistics(channel, org, linkedin_server):
    access, refresh = linkedin_server.issue(SCOPES | {"r_member_social"})
    member = SocialAccountFactory(
        team=org["north"],
        channel=Channel.LINKEDIN,
        handle="Nora North",
        base_url=linkedin_server.url,
        external_id=linkedin_server.person_urn,
        expires_at=timezone.now() + timedelta(days=60),
    )
    member.set_tokens(access_token=access, refresh_token=refresh)
    member.save()
    post = publish(channel, member, "My own post.")
    linkedin_server.add_likes(post, 2)

    figures = channel.fetch_engagement(member, [post])

    assert figures == {post: Engagement(likes=2, replies=0)}
    assert calls(linkedin_server, STATISTICS) == 0


# --- refusals and odd answers -----------------------------------------------------------------


@pytest.mark.parametrize("route", ["social_actions", "share_statistics"])
def test_a_rate_limit_is_retryable_with_linkedins_wait(
    channel, admin_account, linkedin_server, route
):
    post = publish(channel, admin_account, "Throttled.")
    linkedin_server.fail_next(route, "429", retry_after=90)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(admin_account, [post])

    assert caught.value.http_status == 429
    assert caught.value.retry_after == 90


def test_an_expired_token_without_a_refresh_token_is_auth_expired(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Expired.")
    linkedin_account.set_tokens(access_token=linkedin_account.access_token, refresh_token="")
    linkedin_account.save()
    linkedin_server.expire(linkedin_account.access_token)

    with pytest.raises(AuthExpired) as caught:
        channel.fetch_engagement(linkedin_account, [post])

    assert caught.value.http_status == 401


def test_an_expired_token_is_renewed_and_the_figures_read(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Renewed.")
    linkedin_server.add_likes(post, 1)
    linkedin_server.expire(linkedin_account.access_token)

    figures = channel.fetch_engagement(linkedin_account, [post])

    assert figures[post].likes == 1
    assert ("POST", "/oauth/v2/accessToken") in linkedin_server.requests


@pytest.mark.parametrize(
    ("route", "mode", "words"),
    [
        ("social_actions", "html", "no results"),
        ("social_actions", "no_elements", "no results"),
        ("share_statistics", "html", "no list of elements"),
        ("share_statistics", "no_elements", "no list of elements"),
    ],
)
def test_an_answer_of_the_wrong_shape_is_retryable(
    channel, admin_account, linkedin_server, route, mode, words
):
    post = publish(channel, admin_account, "Odd answers.")
    linkedin_server.fail_next(route, mode)

    with pytest.raises(RetryableError, match=words):
        channel.fetch_engagement(admin_account, [post])


@pytest.mark.parametrize("route", ["social_actions", "share_statistics"])
def test_a_server_error_is_retryable(channel, admin_account, linkedin_server, route):
    post = publish(channel, admin_account, "Server error.")
    linkedin_server.fail_next(route, "503")

    with pytest.raises(RetryableError) as caught:
        channel.fetch_engagement(admin_account, [post])

    assert caught.value.http_status == 503


def test_a_token_that_may_not_read_the_pages_posts_is_permanent(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Unreadable.")
    access, _refresh = linkedin_server.issue({"w_organization_social"})
    linkedin_account.set_tokens(access_token=access, refresh_token="")
    linkedin_account.save()

    with pytest.raises(PermanentError, match="r_organization_social") as caught:
        channel.fetch_engagement(linkedin_account, [post])

    assert caught.value.http_status == 403
