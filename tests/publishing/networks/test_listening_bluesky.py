"""Listening on Bluesky (issue 18): the channel's search_public against the PDS test server's
app.bsky.feed.searchPosts and app.bsky.feed.getAuthorFeed."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from networks.channels import get_channel
from networks.channels.base import PublicQuery
from networks.channels.bluesky import AUTHOR_FEED, LATE_MARGIN, SEARCH_POSTS
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

HARBOUR = PublicQuery("search", "harbour festival")
HARBOUR_OFFICE = "harbour.bsky.social"


@pytest.fixture
def channel():
    return get_channel("bluesky")


def walk(channel, account, query, cursor, *, limit, calls=50):
    """Call search_public until nothing more is waiting; every page and the last cursor."""
    pages = []
    for _ in range(calls):
        page = channel.search_public(account, query, cursor, limit=limit)
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor
    raise AssertionError(f"still more after {calls} calls")


def ids(pages):
    return [post.network_id for page in pages for post in page.posts]


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_bluesky_listens_to_searches_hashtags_and_accounts(channel):
    assert channel.listens == frozenset({"search", "hashtag", "account"})
    assert "search index" in channel.listening_blind_spots
    assert "backdated" in channel.listening_blind_spots


# --- reading incrementally -------------------------------------------------------------------


def test_the_first_call_takes_the_newest_page_only(channel, bluesky_account, bluesky_server):
    older = [bluesky_server.add_public(f"Harbour festival, day {n}")["uri"] for n in range(4)]
    newest = [bluesky_server.add_public(f"The harbour festival {n}")["uri"] for n in range(3)]

    page = channel.search_public(bluesky_account, HARBOUR, "", limit=3)
    again = channel.search_public(bluesky_account, HARBOUR, page.cursor, limit=3)

    assert sorted(post.network_id for post in page.posts) == sorted(newest)
    assert page.more is False
    # What was posted before cxhub listened is never back-filled, even within the late margin.
    assert again.posts == []
    assert again.cursor == page.cursor
    assert not set(older) & set(ids([page, again]))


def test_a_quiet_call_returns_nothing_and_the_cursor_it_was_given(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.add_public("Harbour festival tonight")
    first = channel.search_public(bluesky_account, HARBOUR, "")

    quiet = channel.search_public(bluesky_account, HARBOUR, first.cursor)
    still = channel.search_public(bluesky_account, HARBOUR, quiet.cursor)

    assert len(first.posts) == 1
    assert (quiet.posts, quiet.cursor, quiet.more) == ([], first.cursor, False)
    assert (still.posts, still.cursor) == ([], first.cursor)


def test_a_later_call_returns_only_what_is_new_and_matches(
    channel, bluesky_account, bluesky_server
):
    seen = bluesky_server.add_public("Harbour festival: the programme is out")["uri"]
    first = channel.search_public(bluesky_account, HARBOUR, "")
    new = [
        bluesky_server.add_public("HARBOUR FESTIVAL fireworks at ten")["uri"],
        bluesky_server.add_public("A festival by the harbour, finally.")["uri"],
    ]
    bluesky_server.add_public("The harbour is closed for the regatta.")

    later = channel.search_public(bluesky_account, HARBOUR, first.cursor)

    assert [post.network_id for post in first.posts] == [seen]
    assert sorted(post.network_id for post in later.posts) == sorted(new)
    assert later.cursor != first.cursor
    assert channel.search_public(bluesky_account, HARBOUR, later.cursor).posts == []


def test_a_first_call_that_finds_nothing_still_marks_where_reading_starts(
    channel, bluesky_account, bluesky_server
):
    empty = channel.search_public(bluesky_account, HARBOUR, "", limit=2)
    arrived = [bluesky_server.add_public(f"Harbour festival {n}")["uri"] for n in range(5)]

    pages, _ = walk(channel, bluesky_account, HARBOUR, empty.cursor, limit=2)

    # Everything came after cxhub started listening, so all of it is read, not the newest page.
    assert empty.posts == [] and empty.cursor != ""
    assert sorted(ids(pages)) == sorted(arrived)


def test_it_asks_for_the_latest_posts_and_later_only_down_to_the_floor(
    channel, bluesky_account, bluesky_server
):
    newest = bluesky_server.add_public("Harbour festival opens")
    first = channel.search_public(bluesky_account, HARBOUR, "", limit=40)
    bluesky_server.add_public("Harbour festival, second night")
    channel.search_public(bluesky_account, HARBOUR, first.cursor, limit=40)

    opening, later = bluesky_server.search_queries
    assert opening == {"q": ["harbour festival"], "sort": ["latest"], "limit": ["40"]}
    # The floor is the newest post taken (by its sortAt, here its createdAt) less the margin.
    floor = datetime.fromisoformat(newest["record"]["createdAt"]) - LATE_MARGIN
    assert later["since"] == [stamp(floor)]
    assert "cursor" not in later


def test_one_language_narrows_the_search_and_several_do_not(
    channel, bluesky_account, bluesky_server
):
    french = bluesky_server.add_public("Harbour festival ce soir", langs=("fr",))["uri"]
    english = bluesky_server.add_public("Harbour festival tonight", langs=("en",))["uri"]

    only_french = channel.search_public(
        bluesky_account, PublicQuery("search", "harbour festival", ("fr",)), ""
    )
    both = channel.search_public(
        bluesky_account, PublicQuery("search", "harbour festival", ("en", "fr")), ""
    )

    first, second = bluesky_server.search_queries
    assert first["lang"] == ["fr"]
    assert "lang" not in second
    assert [post.network_id for post in only_french.posts] == [french]
    assert sorted(post.network_id for post in both.posts) == sorted([french, english])


def test_a_gap_of_250_posts_is_walked_once_across_stopped_and_restarted_calls(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.add_public("Harbour festival: before")
    first = channel.search_public(bluesky_account, HARBOUR, "")
    # Three posts share each second, so that ties fall across page edges.
    start = bluesky_server.clock + timedelta(seconds=1)
    gap = [
        bluesky_server.add_public(
            f"Harbour festival, post {n}", at=start + timedelta(seconds=n // 3)
        )["uri"]
        for n in range(250)
    ]
    requests_before = len(bluesky_server.requests)

    stored, pages = first.cursor, []
    for call in range(1, 30):
        if call == 3:
            # A worker read a page and stopped before storing its cursor: that page is read
            # again from the cursor that was stored.
            channel.search_public(bluesky_account, HARBOUR, stored, limit=40)
        if call == 5:
            bluesky_server.fail_next(SEARCH_POSTS, "503")
            with pytest.raises(RetryableError):
                channel.search_public(bluesky_account, HARBOUR, stored, limit=40)
        page = channel.search_public(bluesky_account, HARBOUR, stored, limit=40)
        pages.append(page)
        stored = page.cursor
        if not page.more:
            break

    assert Counter(ids(pages)) == Counter(gap)  # each exactly once
    assert all(len(page.posts) <= 40 for page in pages)
    assert [page.more for page in pages] == [True] * (len(pages) - 1) + [False]
    assert channel.search_public(bluesky_account, HARBOUR, stored).posts == []
    # Reading changes nothing at the network.
    assert {call for call in bluesky_server.requests[requests_before:]} == {
        ("GET", f"/xrpc/{SEARCH_POSTS}")
    }


def test_what_arrives_during_a_walk_is_taken_after_it(channel, bluesky_account, bluesky_server):
    first = channel.search_public(bluesky_account, HARBOUR, "")
    gap = [bluesky_server.add_public(f"Harbour festival {n}")["uri"] for n in range(12)]
    part = channel.search_public(bluesky_account, HARBOUR, first.cursor, limit=5)
    during = [
        bluesky_server.add_public(f"Harbour festival, meanwhile {n}")["uri"] for n in range(3)
    ]

    rest, cursor = walk(channel, bluesky_account, HARBOUR, part.cursor, limit=5)
    after, _ = walk(channel, bluesky_account, HARBOUR, cursor, limit=5)

    assert part.more is True
    assert sorted(ids([part, *rest])) == sorted(gap)
    assert sorted(ids(after)) == sorted(during)


def test_a_post_indexed_late_within_the_margin_is_taken_once(
    channel, bluesky_account, bluesky_server
):
    on_time = bluesky_server.add_public("Harbour festival, on time")["uri"]
    first = channel.search_public(bluesky_account, HARBOUR, "")
    # Written two minutes ago, indexed now: it sorts below the post already read.
    late = bluesky_server.add_public(
        "Harbour festival, late", created_at=bluesky_server.clock - timedelta(minutes=2)
    )["uri"]

    later = channel.search_public(bluesky_account, HARBOUR, first.cursor)
    again = channel.search_public(bluesky_account, HARBOUR, later.cursor)

    assert [post.network_id for post in first.posts] == [on_time]
    assert [post.network_id for post in later.posts] == [late]
    assert again.posts == []


def test_a_post_backdated_beyond_the_margin_is_the_blind_spot_named(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.add_public("Harbour festival, today")
    first = channel.search_public(bluesky_account, HARBOUR, "")
    bluesky_server.add_public(
        "Harbour festival, imported from another network",
        created_at=bluesky_server.clock - LATE_MARGIN - timedelta(minutes=1),
    )

    later = channel.search_public(bluesky_account, HARBOUR, first.cursor)

    assert later.posts == []
    assert "backdated" in channel.listening_blind_spots


# --- hashtags and accounts -------------------------------------------------------------------


def test_a_hashtag_is_asked_for_as_the_documented_tag(channel, bluesky_account, bluesky_server):
    in_text = bluesky_server.add_public("Lights on the water #HarbourFest")["uri"]
    in_field = bluesky_server.add_public("Lights on the water", tags=("harbourfest",))["uri"]
    bluesky_server.add_public("Harbourfest without its hash")

    page = channel.search_public(bluesky_account, PublicQuery("hashtag", "HarbourFest"), "")

    [query] = bluesky_server.search_queries
    assert query["tag"] == ["HarbourFest"]
    assert query["q"] == ["#HarbourFest"]  # q is required (lexicon)
    assert query["sort"] == ["latest"]
    assert sorted(post.network_id for post in page.posts) == sorted([in_text, in_field])


def test_an_account_feed_is_read_without_its_replies_and_reposts(
    channel, bluesky_account, bluesky_server
):
    query = PublicQuery("account", f"@{HARBOUR_OFFICE}")
    own = bluesky_server.add_public("Ferry times change on Monday.", handle=HARBOUR_OFFICE)
    catch = bluesky_server.add_public("Our boat is in!", handle="fisher.bsky.social")
    bluesky_server.add_public_repost(catch["uri"], by=HARBOUR_OFFICE)
    first = channel.search_public(bluesky_account, query, "")
    bluesky_server.add_public("Yes, at 9.", handle=HARBOUR_OFFICE, reply_to=catch["uri"])
    new = bluesky_server.add_public("The ferry is cancelled today.", handle=HARBOUR_OFFICE)
    # A repost newer than the new post, of a post older than the floor: it is placed at the
    # repost's time, so reading goes on past it.
    old = bluesky_server.add_public(
        "Last year's regatta.",
        handle="fisher.bsky.social",
        at=bluesky_server.clock - timedelta(hours=1),
    )
    bluesky_server.add_public_repost(old["uri"], by=HARBOUR_OFFICE)

    later = channel.search_public(bluesky_account, query, first.cursor)

    assert [post.network_id for post in first.posts] == [own["uri"]]
    assert [post.network_id for post in later.posts] == [new["uri"]]
    opening = bluesky_server.author_feed_queries[0]
    assert opening == {"actor": [HARBOUR_OFFICE], "limit": ["40"], "filter": ["posts_no_replies"]}


def test_an_unknown_account_is_a_permanent_error(channel, bluesky_account, bluesky_server):
    with pytest.raises(PermanentError, match="Profile not found"):
        channel.search_public(bluesky_account, PublicQuery("account", "nobody.bsky.social"), "")


@pytest.mark.parametrize(
    "query",
    [PublicQuery("search", "   "), PublicQuery("hashtag", "#"), PublicQuery("account", "@")],
)
def test_a_query_without_its_text_is_refused(channel, bluesky_account, bluesky_server, query):
    with pytest.raises(PermanentError):
        channel.search_public(bluesky_account, query, "")

    assert bluesky_server.search_queries == bluesky_server.author_feed_queries == []


# --- what each post says ---------------------------------------------------------------------


def test_a_post_is_given_with_its_author_language_and_figures(
    channel, bluesky_account, bluesky_server
):
    view = bluesky_server.add_public(
        "Harbour festival: best night yet",
        handle="critic.test",
        name="Dr. Critic",
        langs=("fr", "en"),
        likes=7,
        reposts=3,
        replies=2,
        quotes=1,
    )

    [post] = channel.search_public(bluesky_account, HARBOUR, "").posts

    rkey = view["uri"].rsplit("/", 1)[1]
    assert post.network_id == view["uri"]
    assert post.text == "Harbour festival: best night yet"
    assert (post.author_handle, post.author_name, post.author_id) == (
        "critic.test",
        "Dr. Critic",
        "did:plc:critic7test",
    )
    assert post.url == f"https://bsky.app/profile/critic.test/post/{rkey}"
    assert post.language == "fr"
    assert (post.likes, post.reposts, post.replies, post.quotes) == (7, 3, 2, 1)
    assert post.created_at == datetime.fromisoformat(view["record"]["createdAt"])
    assert post.created_at.tzinfo is not None
    assert post.raw == view


def test_a_post_hidden_by_moderation_is_left_out(channel, bluesky_account, bluesky_server):
    first = channel.search_public(bluesky_account, HARBOUR, "")
    hidden = bluesky_server.add_public("Harbour festival spam")["uri"]
    kept = bluesky_server.add_public("Harbour festival photos")["uri"]
    bluesky_server.hide(hidden)

    later = channel.search_public(bluesky_account, HARBOUR, first.cursor)

    assert [post.network_id for post in later.posts] == [kept]


def test_odd_fields_of_a_post_are_read_leniently(channel, bluesky_account, bluesky_server):
    body = {
        "posts": [
            {
                "uri": "at://did:plc:odd/app.bsky.feed.post/3kodd",
                "indexedAt": "2026-03-02T09:00:00.123456789Z",
                "author": "nobody",
                "record": {"text": 12, "langs": [3], "createdAt": "yesterday"},
            }
        ]
    }
    bluesky_server.fail_next(SEARCH_POSTS, "json", body=body)

    [post] = channel.search_public(bluesky_account, HARBOUR, "").posts

    assert (post.text, post.language, post.author_handle, post.author_name) == ("", "", "", "")
    assert (post.likes, post.reposts, post.replies, post.quotes) == (None, None, None, None)
    assert post.created_at == datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
    assert post.url == "https://bsky.app/profile/did:plc:odd/post/3kodd"


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "nsid"),
    [(HARBOUR, SEARCH_POSTS), (PublicQuery("account", HARBOUR_OFFICE), AUTHOR_FEED)],
)
def test_a_rate_limit_answer_is_retryable_after_the_reset(
    channel, bluesky_account, bluesky_server, query, nsid
):
    bluesky_server.add_public("Ferry times", handle=HARBOUR_OFFICE)
    bluesky_server.fail_next(nsid, "429", reset_in=120)

    with pytest.raises(RetryableError) as caught:
        channel.search_public(bluesky_account, query, "")

    assert caught.value.http_status == 429
    assert 110 <= caught.value.retry_after <= 120


def test_an_expired_session_is_renewed_once_and_the_call_made_again(
    channel, bluesky_account, bluesky_server
):
    found = bluesky_server.add_public("Harbour festival tonight")["uri"]
    bluesky_server.expire_access_tokens()

    page = channel.search_public(bluesky_account, HARBOUR, "")

    assert [post.network_id for post in page.posts] == [found]
    assert bluesky_server.refresh_calls == 1


def test_an_expired_session_that_cannot_be_renewed_is_auth_expired(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.expire_access_tokens()
    bluesky_server.revoke_refresh_tokens()

    with pytest.raises(AuthExpired):
        channel.search_public(bluesky_account, HARBOUR, "")


def test_a_server_error_is_retryable(channel, bluesky_account, bluesky_server):
    bluesky_server.fail_next(SEARCH_POSTS, "502")

    with pytest.raises(RetryableError) as caught:
        channel.search_public(bluesky_account, HARBOUR, "")

    assert caught.value.http_status == 502


POST = {"uri": "at://did:plc:x/app.bsky.feed.post/3k", "indexedAt": "2026-03-02T09:00:00Z"}


@pytest.mark.parametrize(
    ("query", "nsid", "body"),
    [
        (HARBOUR, SEARCH_POSTS, {}),
        (HARBOUR, SEARCH_POSTS, [1, 2]),
        (HARBOUR, SEARCH_POSTS, {"posts": "none"}),
        (HARBOUR, SEARCH_POSTS, {"posts": [7]}),
        (HARBOUR, SEARCH_POSTS, {"posts": [{**POST, "uri": 5}]}),
        (HARBOUR, SEARCH_POSTS, {"posts": [{**POST, "indexedAt": "soon"}]}),
        # A time without its offset is not an atproto datetime.
        (HARBOUR, SEARCH_POSTS, {"posts": [{**POST, "indexedAt": "2026-03-02T09:00:00"}]}),
        (HARBOUR, SEARCH_POSTS, {"posts": [{**POST, "likeCount": -1}]}),
        (HARBOUR, SEARCH_POSTS, {"posts": [{**POST, "repostCount": "many"}]}),
        (PublicQuery("account", HARBOUR_OFFICE), AUTHOR_FEED, {"feed": "none"}),
        (PublicQuery("account", HARBOUR_OFFICE), AUTHOR_FEED, {"feed": [7]}),
        (PublicQuery("account", HARBOUR_OFFICE), AUTHOR_FEED, {"feed": [{"post": 7}]}),
    ],
)
def test_a_malformed_answer_is_retryable(
    channel, bluesky_account, bluesky_server, query, nsid, body
):
    bluesky_server.fail_next(nsid, "json", body=body)

    with pytest.raises(RetryableError):
        channel.search_public(bluesky_account, query, "")


@pytest.mark.parametrize("cursor", ["not json", '{"v": 2}', '{"v": 1, "mark": "soon"}', "[]"])
def test_a_cursor_that_is_not_ours_is_refused(channel, bluesky_account, cursor):
    with pytest.raises(PermanentError, match="Not a Bluesky listening cursor"):
        channel.search_public(bluesky_account, HARBOUR, cursor)
