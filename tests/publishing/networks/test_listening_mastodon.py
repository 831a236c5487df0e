"""Listening on Mastodon (issue 18): public posts found by a search, a hashtag or an account,
read from a Mastodon test server on 127.0.0.1 that pages as Mastodon does (a search answers
the newest page above min_id; a hashtag or an account the page immediately newer than it)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from networks.channels import get_channel
from networks.channels.base import PublicQuery
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

COUNCIL = "council@town.example"
QUERIES = {
    "search": PublicQuery("search", "roadworks"),
    "hashtag": PublicQuery("hashtag", "#Roadworks"),
    "account": PublicQuery("account", f"@{COUNCIL}"),
}
KINDS = sorted(QUERIES)
# The test server's route that lists each kind's posts.
ROUTES = {"search": "search", "hashtag": "tag_timeline", "account": "account_statuses"}


@pytest.fixture
def channel():
    return get_channel("mastodon")


def posts(server, count: int, **options) -> list[str]:
    """`count` posts by the council about roadworks, tagged #Roadworks, so that each kind of
    query finds them all; their ids, oldest first."""
    return [
        server.add_public(
            f"Roadworks update {n}: one lane of Main St is closed.",
            tags=("Roadworks",),
            acct=COUNCIL,
            **options,
        )["id"]
        for n in range(count)
    ]


def ids(found) -> list[str]:
    return sorted((post.network_id for post in found), key=int)


def walk(channel, account, query, cursor: str, *, limit: int = 40) -> tuple[list, str, int]:
    """Every page until none is waiting: the posts, the last cursor, and how many calls."""
    found, calls = [], 0
    while True:
        page = channel.search_public(account, query, cursor, limit=limit)
        calls += 1
        found += page.posts
        cursor = page.cursor
        if not page.more:
            return found, cursor, calls
        assert calls < 60, "paging never ended"


def listing_queries(server, kind: str) -> list[dict[str, list[str]]]:
    return [query for route, query in server.public_queries if route == ROUTES[kind]]


def test_mastodon_listens_to_searches_hashtags_and_accounts(channel):
    assert channel.listens == frozenset({"search", "hashtag", "account"})
    assert "full-text search" in channel.listening_blind_spots
    assert "let them be searched" in channel.listening_blind_spots


@pytest.mark.parametrize("kind", KINDS)
def test_the_first_call_reads_the_newest_page_only(
    kind, channel, mastodon_account, mastodon_server
):
    made = posts(mastodon_server, 50)

    page = channel.search_public(mastodon_account, QUERIES[kind], "")

    assert ids(page.posts) == made[-40:]
    assert page.cursor == made[-1]
    assert page.more is False
    [query] = listing_queries(mastodon_server, kind)
    assert "min_id" not in query and "max_id" not in query
    assert query["limit"] == ["40"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_first_call_that_finds_nothing_keeps_the_empty_cursor(
    kind, channel, mastodon_account, mastodon_server
):
    mastodon_server.person(COUNCIL)  # known to the server, with nothing posted

    page = channel.search_public(mastodon_account, QUERIES[kind], "")

    assert (list(page.posts), page.cursor, page.more) == ([], "", False)


@pytest.mark.parametrize("kind", KINDS)
def test_a_quiet_later_call_returns_nothing_and_the_same_cursor(
    kind, channel, mastodon_account, mastodon_server
):
    posts(mastodon_server, 3)
    first = channel.search_public(mastodon_account, QUERIES[kind], "")

    second = channel.search_public(mastodon_account, QUERIES[kind], first.cursor)

    assert (list(second.posts), second.cursor, second.more) == ([], first.cursor, False)
    assert listing_queries(mastodon_server, kind)[-1]["min_id"] == [first.cursor]


@pytest.mark.parametrize("kind", KINDS)
def test_later_calls_return_only_newer_posts(kind, channel, mastodon_account, mastodon_server):
    posts(mastodon_server, 3)
    first = channel.search_public(mastodon_account, QUERIES[kind], "")
    new = posts(mastodon_server, 2)

    found, cursor, calls = walk(channel, mastodon_account, QUERIES[kind], first.cursor)

    assert ids(found) == new
    assert cursor == new[-1]
    # A search closes what it found with one more call, which finds nothing.
    assert calls == (2 if kind == "search" else 1)


@pytest.mark.parametrize("kind", KINDS)
def test_a_gap_of_100_posts_is_walked_once_across_a_restart(
    kind, channel, mastodon_account, mastodon_server
):
    query = QUERIES[kind]
    posts(mastodon_server, 3)
    stored = channel.search_public(mastodon_account, query, "").cursor
    new = posts(mastodon_server, 100)
    given = []

    first = channel.search_public(mastodon_account, query, stored)
    given += first.posts
    stored = first.cursor
    # The worker stops after this call, before it stores the page's cursor …
    lost = channel.search_public(mastodon_account, query, stored)
    # … and starts again from the cursor it stored.
    again = channel.search_public(mastodon_account, query, stored)
    given += again.posts
    stored = again.cursor
    later = posts(mastodon_server, 5)  # written while the walk goes on
    rest, stored, _ = walk(channel, mastodon_account, query, stored)
    given += rest
    next_poll, stored, _ = walk(channel, mastodon_account, query, stored)
    given += next_poll

    assert (first.more, lost.more, again.more) == (True, True, True)
    assert (len(first.posts), len(again.posts)) == (40, 40)
    assert ids(again.posts) == ids(lost.posts) and again.cursor == lost.cursor
    assert ids(given) == new + later
    assert len({post.network_id for post in given}) == len(given)
    quiet = channel.search_public(mastodon_account, query, stored)
    assert (list(quiet.posts), quiet.cursor, quiet.more) == ([], stored, False)


def test_a_search_walks_a_gap_down_from_the_newest_page(channel, mastodon_account, mastodon_server):
    start = datetime.now(UTC) + timedelta(seconds=5)
    posts(mastodon_server, 1)
    stored = channel.search_public(mastodon_account, QUERIES["search"], "").cursor
    new = [
        mastodon_server.add_public(
            f"Roadworks near stop {n}.", acct=COUNCIL, created_at=start + timedelta(seconds=n)
        )["id"]
        for n in range(90)
    ]

    first = channel.search_public(mastodon_account, QUERIES["search"], stored)
    second = channel.search_public(mastodon_account, QUERIES["search"], first.cursor)
    rest, cursor, calls = walk(channel, mastodon_account, QUERIES["search"], second.cursor)

    # The server answers the newest page above min_id, so the walk goes down from there.
    assert ids(first.posts) == new[-40:]
    # The oldest post taken comes back with them (its whole second is asked for): 39 new.
    assert ids(second.posts) == new[-79:-40]
    assert ids(rest) == new[:11]
    assert cursor == new[-1]
    assert calls == 2  # the last 11, then one call that finds nothing more
    queries = listing_queries(mastodon_server, "search")
    assert queries[1]["min_id"] == [stored] and "max_id" not in queries[1]
    assert queries[2]["min_id"] == [stored]
    # max_id reaches to the end of the oldest post's second: the server cuts it to a second.
    oldest = min(map(int, ids(first.posts)))
    ceiling = int(queries[2]["max_id"][0])
    assert ceiling > oldest
    assert (ceiling >> 16) // 1000 == (oldest >> 16) // 1000 + 1
    assert all(q["type"] == ["statuses"] and q["q"] == ["roadworks"] for q in queries)


def test_a_search_walks_a_burst_of_posts_within_one_second(
    channel, mastodon_account, mastodon_server
):
    posts(mastodon_server, 2)
    stored = channel.search_public(mastodon_account, QUERIES["search"], "").cursor
    # 100 posts written in the same millisecond (a busy search term, or a bot).
    new = posts(mastodon_server, 100, created_at=datetime.now(UTC) + timedelta(seconds=5))

    found, cursor, _ = walk(channel, mastodon_account, QUERIES["search"], stored)

    assert ids(found) == new
    assert len(found) == 100
    assert cursor == new[-1]
    # Posts of the oldest's own second that are already taken are read past with offset.
    assert any("offset" in q for q in listing_queries(mastodon_server, "search"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_that_ignores_min_id_gives_nothing_twice(
    kind, channel, mastodon_account, mastodon_server
):
    mastodon_server.paging_supported = False  # a fork: the newest page whatever the cursor
    posts(mastodon_server, 3)
    first = channel.search_public(mastodon_account, QUERIES[kind], "")
    new = posts(mastodon_server, 2)

    found, cursor, _ = walk(channel, mastodon_account, QUERIES[kind], first.cursor)
    again, same, _ = walk(channel, mastodon_account, QUERIES[kind], cursor)

    assert ids(found) == new
    assert (again, same) == ([], cursor)


@pytest.mark.parametrize(("limit", "asked"), [(500, "40"), (5, "5"), (0, "1")])
def test_it_asks_for_at_most_40_a_page(limit, asked, channel, mastodon_account, mastodon_server):
    channel.search_public(mastodon_account, QUERIES["hashtag"], "", limit=limit)
    channel.search_public(mastodon_account, QUERIES["search"], "", limit=limit)

    assert [q["limit"] for _, q in mastodon_server.public_queries] == [[asked], [asked]]


def test_a_hashtag_is_read_from_its_timeline_without_its_hash(
    channel, mastodon_account, mastodon_server
):
    tagged = mastodon_server.add_public("Cats on the bridge.", tags=("Qualitätskatzen",))
    mastodon_server.add_public("Dogs on the bridge.", tags=("dogs",))

    page = channel.search_public(mastodon_account, PublicQuery("hashtag", "#Qualitätskatzen"), "")

    assert ids(page.posts) == [tagged["id"]]
    assert ("GET", "/api/v1/timelines/tag/Qualit%C3%A4tskatzen") in mastodon_server.requests
    [(route, query)] = mastodon_server.public_queries
    assert (route, query) == ("tag_timeline", {"limit": ["40"]})


def test_a_hashtag_nobody_used_yet_finds_nothing(channel, mastodon_account, mastodon_server):
    query = PublicQuery("hashtag", "neverused")

    first = channel.search_public(mastodon_account, query, "")
    later = channel.search_public(mastodon_account, query, "110000000000000001")

    assert (list(first.posts), first.cursor, first.more) == ([], "", False)
    assert (list(later.posts), later.cursor, later.more) == ([], "110000000000000001", False)


def test_an_account_is_looked_up_then_its_posts_are_read(
    channel, mastodon_account, mastodon_server
):
    made = posts(mastodon_server, 2)
    mastodon_server.add_public("Someone else on Main St roadworks.", acct="ann@other.example")

    page = channel.search_public(mastodon_account, QUERIES["account"], "")
    channel.search_public(mastodon_account, QUERIES["account"], page.cursor)

    assert ids(page.posts) == made
    council = mastodon_server.people[COUNCIL]
    lookup, statuses, _, later = mastodon_server.public_queries
    assert lookup == ("lookup", {"acct": [COUNCIL]})
    assert statuses == ("account_statuses", {"exclude_reblogs": ["true"], "limit": ["40"]})
    assert later[1] == {"exclude_reblogs": ["true"], "limit": ["40"], "min_id": [page.cursor]}
    assert ("GET", f"/api/v1/accounts/{council['id']}/statuses") in mastodon_server.requests


def test_an_unknown_account_is_permanent(channel, mastodon_account, mastodon_server):
    query = PublicQuery("account", "@nobody@nowhere.example")

    with pytest.raises(PermanentError, match="knows no account @nobody@nowhere.example"):
        channel.search_public(mastodon_account, query, "")

    assert [route for route, _ in mastodon_server.public_queries] == ["lookup"]


def test_an_accounts_boosts_are_left_out(channel, mastodon_account, mastodon_server):
    [own] = posts(mastodon_server, 1)
    theirs = mastodon_server.add_public("A lovely new park.", acct="ann@other.example")
    mastodon_server.boost(theirs["id"], by=COUNCIL)

    page = channel.search_public(mastodon_account, QUERIES["account"], "")

    assert ids(page.posts) == [own]


def test_a_boost_listed_anyway_is_left_out_and_passed(channel, mastodon_account, mastodon_server):
    original = mastodon_server.add_public("A lovely new park.", tags=("parks",))
    boost = mastodon_server.boost(original["id"], by="fan@other.example")
    body = json.dumps([boost, original]).encode()
    mastodon_server.fail_next("tag_timeline", "malformed", body=body)

    page = channel.search_public(mastodon_account, PublicQuery("hashtag", "parks"), "")

    assert ids(page.posts) == [original["id"]]
    assert page.cursor == boost["id"]


def test_only_posts_anyone_may_read_are_kept(channel, mastodon_account, mastodon_server):
    public = mastodon_server.add_public("Open to all.", tags=("parks",))
    unlisted = mastodon_server.add_public("Quietly public.", tags=("parks",), visibility="unlisted")
    private = mastodon_server.add_public("Followers only.", tags=("parks",), visibility="private")
    direct = mastodon_server.add_public("Just for you.", tags=("parks",), visibility="direct")
    body = json.dumps([direct, private, unlisted, public]).encode()
    mastodon_server.fail_next("tag_timeline", "malformed", body=body)

    page = channel.search_public(mastodon_account, PublicQuery("hashtag", "parks"), "")

    assert ids(page.posts) == [public["id"], unlisted["id"]]
    assert page.cursor == direct["id"]


def test_a_post_carries_its_text_author_figures_language_time_and_link(
    channel, mastodon_account, mastodon_server
):
    when = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    mastodon_server.person("ann@other.example", "Ann Other")
    status = mastodon_server.add_public(
        "Les poubelles sont en retard.\n\nVoir https://example.org/a-very-long-path/to-the-page",
        tags=("bins",),
        acct="ann@other.example",
        language="fr",
        favourites=5,
        reblogs=2,
        replies=3,
        quotes=1,
        created_at=when,
    )

    [post] = channel.search_public(mastodon_account, PublicQuery("hashtag", "bins"), "").posts

    assert post.network_id == status["id"]
    assert post.text == (
        "Les poubelles sont en retard.\n\n"
        "Voir https://example.org/a-very-long-path/to-the-page #bins"
    )
    assert (post.likes, post.reposts, post.replies, post.quotes) == (5, 2, 3, 1)
    assert post.created_at == when
    assert post.language == "fr"
    assert post.author_handle == "ann@other.example"
    assert post.author_name == "Ann Other"
    assert post.author_id == status["account"]["id"]
    assert post.url == status["url"]
    assert post.raw == status


def test_a_server_before_4_5_gives_no_quotes(channel, mastodon_account, mastodon_server):
    mastodon_server.version = "4.4.0"
    mastodon_server.add_public("Bins today.", tags=("bins",), favourites=1)

    [post] = channel.search_public(mastodon_account, PublicQuery("hashtag", "bins"), "").posts

    assert (post.likes, post.quotes) == (1, None)


def test_a_content_warning_is_part_of_the_text(channel, mastodon_account, mastodon_server):
    mastodon_server.add_public("The bridge is shut.", spoiler_text="Roadworks", acct=COUNCIL)

    [post] = channel.search_public(mastodon_account, QUERIES["search"], "").posts

    assert post.text == "Roadworks\n\nThe bridge is shut."


def test_a_search_matches_every_word_whatever_its_case(channel, mastodon_account, mastodon_server):
    [made] = posts(mastodon_server, 1)

    found = channel.search_public(mastodon_account, PublicQuery("search", "MAIN roadworks"), "")
    missed = channel.search_public(mastodon_account, PublicQuery("search", "roadworks bridge"), "")

    assert ids(found.posts) == [made]
    assert list(missed.posts) == []


def test_a_search_finds_nothing_the_server_does_not_index(
    channel, mastodon_account, mastodon_server
):
    mastodon_server.add_public("Roadworks again.", acct="private@other.example", indexable=False)
    indexed = mastodon_server.add_public("Roadworks once more.", acct=COUNCIL)

    found = channel.search_public(mastodon_account, QUERIES["search"], "")
    mastodon_server.full_text_search = False  # a server without Elasticsearch
    none = channel.search_public(mastodon_account, QUERIES["search"], "")

    assert ids(found.posts) == [indexed["id"]]
    assert (list(none.posts), none.cursor) == ([], "")


@pytest.mark.parametrize("kind", KINDS)
def test_a_rate_limit_answer_is_retryable_after_its_reset(
    kind, channel, mastodon_account, mastodon_server
):
    posts(mastodon_server, 1)
    mastodon_server.fail_next(ROUTES[kind], "429", reset_in=90)

    with pytest.raises(RetryableError) as caught:
        channel.search_public(mastodon_account, QUERIES[kind], "")

    assert caught.value.http_status == 429
    assert 80 <= caught.value.retry_after <= 90


def test_a_rate_limited_lookup_is_retryable(channel, mastodon_account, mastodon_server):
    posts(mastodon_server, 1)
    mastodon_server.fail_next("lookup", "429", reset_in=60)

    with pytest.raises(RetryableError) as caught:
        channel.search_public(mastodon_account, QUERIES["account"], "")

    assert 50 <= caught.value.retry_after <= 60


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_token_is_auth_expired(kind, channel, mastodon_account, mastodon_server):
    posts(mastodon_server, 1)
    mastodon_account.set_tokens(access_token="revoked-token")
    mastodon_account.save()

    with pytest.raises(AuthExpired) as caught:
        channel.search_public(mastodon_account, QUERIES[kind], "")

    assert caught.value.http_status == 401


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_error_is_retryable(kind, channel, mastodon_account, mastodon_server):
    posts(mastodon_server, 1)
    mastodon_server.fail_next(ROUTES[kind], "503")

    with pytest.raises(RetryableError):
        channel.search_public(mastodon_account, QUERIES[kind], "")


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("search", b"<!doctype html><p>Maintenance</p>"),
        ("search", b"[]"),
        ("search", b'{"statuses": {"id": "1"}}'),
        ("search", b'{"statuses": [{"content": "no id"}]}'),
        ("hashtag", b'{"error": "not a list"}'),
        ("hashtag", b"[1, 2]"),
        ("account", b'[{"id": true}]'),
    ],
)
def test_a_malformed_answer_is_retryable(kind, body, channel, mastodon_account, mastodon_server):
    posts(mastodon_server, 1)
    mastodon_server.fail_next(ROUTES[kind], "malformed", body=body)

    with pytest.raises(RetryableError):
        channel.search_public(mastodon_account, QUERIES[kind], "")


@pytest.mark.parametrize("cursor", ["a:b", "1:2", "5:9:7", "::"])
def test_a_search_cursor_cxhub_did_not_give_is_permanent(cursor, channel, mastodon_account):
    with pytest.raises(PermanentError, match="not a cursor"):
        channel.search_public(mastodon_account, QUERIES["search"], cursor)


@pytest.mark.parametrize("query", [PublicQuery("search", "  "), PublicQuery("hashtag", "#")])
def test_an_empty_query_is_permanent(query, channel, mastodon_account, mastodon_server):
    with pytest.raises(PermanentError):
        channel.search_public(mastodon_account, query, "")

    assert mastodon_server.public_queries == []
