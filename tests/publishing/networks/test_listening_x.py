"""Listening on X, against the X test server on 127.0.0.1: recent search read incrementally with
our cursor (the newest page first, then only what is new, a long gap walked page by page, also
across a refused page token and a cursor older than the search's 7 days), the query sent for
each kind of source, what each post carries, and X's refusals."""

import json
import logging
from datetime import UTC, timedelta

import pytest
import requests
from django.utils import timezone

from networks.channels import get_channel
from networks.channels.base import PublicQuery
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

from .x_server import days_ago

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

HARBOUR = PublicQuery(kind="search", text="harbour")


@pytest.fixture
def channel():
    return get_channel("x")


def _public(x_server, n: int, **options) -> dict:
    return x_server.add_public(f"News from the harbour, {n}", **options)


def _ids(page) -> list[str]:
    return [post.network_id for post in page.posts]


def _newest_first(tweets) -> list[str]:
    return [t["id"] for t in sorted(tweets, key=lambda t: int(t["id"]), reverse=True)]


def _drain(channel, account, cursor: str, limit: int) -> tuple[list[str], str, int]:
    """Every id taken while `more` says another page waits, the cursor left, and the calls."""
    taken, calls, more = [], 0, True
    while more:
        page = channel.search_public(account, HARBOUR, cursor, limit=limit)
        taken += _ids(page)
        cursor, more, calls = page.cursor, page.more, calls + 1
        assert calls < 40
    return taken, cursor, calls


def _polling_from(channel, account, x_server) -> str:
    """The cursor of a source that has already been read once (one post found)."""
    _public(x_server, 0)
    return channel.search_public(account, HARBOUR, "").cursor


# --- incremental ------------------------------------------------------------------------------


def test_x_listens_for_searches_hashtags_and_accounts(channel):
    assert channel.listens == {"search", "hashtag", "account"}
    assert "7 days" in channel.listening_blind_spots
    assert "protected" in channel.listening_blind_spots


def test_the_first_call_takes_the_newest_page_only(channel, x_account, x_server):
    made = [_public(x_server, n) for n in range(25)]

    page = channel.search_public(x_account, HARBOUR, "", limit=10)

    assert _ids(page) == _newest_first(made)[:10]
    assert page.more is False  # the 15 older ones are the past: not back-filled
    assert json.loads(page.cursor) == {"since_id": made[-1]["id"]}
    [asked] = x_server.search_queries
    assert "since_id" not in asked and "next_token" not in asked
    assert (asked["max_results"], asked["sort_order"]) == ("10", "recency")


def test_a_first_call_below_xs_smallest_page_takes_the_newest_only(channel, x_account, x_server):
    made = [_public(x_server, n) for n in range(12)]

    page = channel.search_public(x_account, HARBOUR, "", limit=5)

    assert _ids(page) == _newest_first(made)[:5]
    assert page.more is False
    assert json.loads(page.cursor) == {"since_id": made[-1]["id"]}
    assert x_server.search_queries[0]["max_results"] == "10"  # X's smallest page


def test_nothing_at_all_keeps_the_empty_cursor(channel, x_account, x_server):
    page = channel.search_public(x_account, HARBOUR, "")

    assert page.posts == [] and page.cursor == "" and page.more is False


def test_a_quiet_second_call_returns_nothing_and_the_cursor_given(channel, x_account, x_server):
    first = _polling_from(channel, x_account, x_server)
    x_server.add_public("Nothing about the sea", username="hill_user")

    second = channel.search_public(x_account, HARBOUR, first)

    assert second.posts == []
    assert second.cursor == first and second.more is False
    assert x_server.search_queries[-1]["since_id"] == json.loads(first)["since_id"]


def test_the_next_call_takes_only_what_is_new(channel, x_account, x_server):
    old = [_public(x_server, n) for n in range(3)]
    first = channel.search_public(x_account, HARBOUR, "")
    new = [_public(x_server, n) for n in range(3, 5)]
    x_server.add_public("Nothing about the sea", username="hill_user")

    second = channel.search_public(x_account, HARBOUR, first.cursor)

    assert _ids(first) == _newest_first(old)
    assert _ids(second) == _newest_first(new)
    assert second.more is False
    assert json.loads(second.cursor) == {"since_id": new[-1]["id"]}


def test_a_gap_of_250_posts_is_walked_across_calls_each_post_once(channel, x_account, x_server):
    start = _polling_from(channel, x_account, x_server)
    gap = [_public(x_server, n) for n in range(1, 251)]

    one = channel.search_public(x_account, HARBOUR, start, limit=100)
    during = [_public(x_server, n) for n in range(251, 256)]  # arrive while the gap is walked
    # A worker reads the next page and stops before storing its cursor: the next run, in
    # another process, starts again from the cursor stored last.
    lost = channel.search_public(x_account, HARBOUR, one.cursor, limit=100)
    restarted = get_channel("x")
    two = restarted.search_public(x_account, HARBOUR, one.cursor, limit=100)
    three = restarted.search_public(x_account, HARBOUR, two.cursor, limit=100)
    after, cursor, _ = _drain(restarted, x_account, three.cursor, limit=100)

    assert (one.more, two.more, three.more) == (True, True, False)
    assert [len(p.posts) for p in (one, two, three)] == [100, 100, 50]
    assert _ids(lost) == _ids(two)  # the page not stored comes again, the same
    walked = _ids(one) + _ids(two) + _ids(three)
    assert walked == _newest_first(gap)  # newest first, each once, none skipped
    walk_queries = x_server.search_queries[1:5]
    assert {q["since_id"] for q in walk_queries} == {json.loads(start)["since_id"]}
    assert all("next_token" in q for q in walk_queries[1:])
    assert json.loads(three.cursor) == {"since_id": gap[-1]["id"]}
    assert after == _newest_first(during)
    assert json.loads(cursor) == {"since_id": during[-1]["id"]}
    assert channel.search_public(x_account, HARBOUR, cursor, limit=100).posts == []


def test_a_refused_page_token_walks_on_below_what_was_taken(channel, x_account, x_server):
    start = _polling_from(channel, x_account, x_server)
    gap = [_public(x_server, n) for n in range(1, 251)]
    one = channel.search_public(x_account, HARBOUR, start, limit=100)
    x_server.search_tokens.clear()  # X says its tokens do not expire; this one is refused

    refused = channel.search_public(x_account, HARBOUR, one.cursor, limit=100)
    rest, cursor, calls = _drain(channel, x_account, refused.cursor, limit=100)

    assert (refused.posts, refused.more) == ([], True)
    assert "next_token" not in json.loads(refused.cursor)
    assert json.loads(refused.cursor)["until_id"] == _ids(one)[-1]
    assert _ids(one) + rest == _newest_first(gap)  # nothing lost, nothing twice
    assert calls == 2  # 100, then the last 50, below the oldest post taken
    restarted = x_server.search_queries[-2]
    assert restarted["until_id"] == _ids(one)[-1]
    assert restarted["since_id"] == json.loads(start)["since_id"]
    assert "next_token" not in restarted
    assert json.loads(cursor) == {"since_id": gap[-1]["id"]}


def test_a_limit_below_xs_smallest_page_reads_the_rest_on_the_next_calls(
    channel, x_account, x_server
):
    start = _polling_from(channel, x_account, x_server)
    gap = [_public(x_server, n) for n in range(1, 13)]

    pages = []
    cursor, more = start, True
    while more:
        page = channel.search_public(x_account, HARBOUR, cursor, limit=5)
        pages.append(_ids(page))
        cursor, more = page.cursor, page.more
        assert len(pages) < 10

    assert [len(ids) for ids in pages] == [5, 5, 2]
    assert [i for ids in pages for i in ids] == _newest_first(gap)
    assert json.loads(cursor) == {"since_id": gap[-1]["id"]}
    assert {q["max_results"] for q in x_server.search_queries[1:]} == {"10"}  # X's smallest
    assert all("until_id" in q for q in x_server.search_queries[2:])


def test_a_cursor_older_than_the_7_days_starts_again_from_the_newest_page(
    channel, x_account, x_server, caplog
):
    old = _public(x_server, 0, created_at=days_ago(8))
    stale = json.dumps({"since_id": old["id"]})
    made = [_public(x_server, n) for n in range(1, 16)]

    with caplog.at_level(logging.WARNING, logger="cxhub.networks"):
        page = channel.search_public(x_account, HARBOUR, stale, limit=10)

    assert _ids(page) == _newest_first(made)[:10]
    assert page.more is False
    assert json.loads(page.cursor) == {"since_id": made[-1]["id"]}
    refused, again = x_server.search_queries
    assert refused["since_id"] == old["id"]
    assert "since_id" not in again
    assert f"refused since_id {old['id']}" in caplog.text
    assert "starting again from the newest posts" in caplog.text


def test_a_cursor_older_than_the_7_days_with_nothing_since_starts_empty(
    channel, x_account, x_server
):
    old = _public(x_server, 0, created_at=days_ago(8))

    page = channel.search_public(x_account, HARBOUR, json.dumps({"since_id": old["id"]}))

    assert (page.posts, page.cursor, page.more) == ([], "", False)


def test_a_cursor_that_is_not_ours_is_refused(channel, x_account, x_server):
    for cursor in ("not json", '{"since_id": "abc"}', '{"max_id": "1"}', '["1"]'):
        with pytest.raises(PermanentError):
            channel.search_public(x_account, HARBOUR, cursor)
    assert x_server.search_queries == []


# --- the query --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, sent",
    [
        (PublicQuery("search", "harbour"), "harbour -is:retweet"),
        (PublicQuery("search", "  harbour   lights "), '"harbour lights" -is:retweet'),
        (PublicQuery("search", "coca-cola"), '"coca-cola" -is:retweet'),
        (PublicQuery("search", 'the "harbour" lights'), '"the harbour lights" -is:retweet'),
        (PublicQuery("search", "OR"), '"OR" -is:retweet'),
        (PublicQuery("search", "harbour", ("en",)), "harbour -is:retweet lang:en"),
        (
            PublicQuery("search", "harbour", ("en", "fr")),
            "harbour -is:retweet (lang:en OR lang:fr)",
        ),
        (
            PublicQuery("search", "harbour", ("he", "en", "en")),
            "harbour -is:retweet (lang:iw OR lang:en)",
        ),
        (PublicQuery("hashtag", "HarbourLights"), "#HarbourLights -is:retweet"),
        (PublicQuery("hashtag", "#HarbourLights", ("fr",)), "#HarbourLights -is:retweet lang:fr"),
        (PublicQuery("account", "@river_user"), "from:river_user -is:retweet"),
        (PublicQuery("account", "river_user", ("de",)), "from:river_user -is:retweet lang:de"),
    ],
)
def test_each_kind_of_source_is_sent_as_xs_query(channel, x_account, x_server, query, sent):
    channel.search_public(x_account, query, "")

    [asked] = x_server.search_queries
    assert asked["query"] == sent
    assert asked["tweet.fields"] == "created_at,lang,public_metrics,author_id,conversation_id"
    assert (asked["expansions"], asked["user.fields"]) == ("author_id", "username,name")


def test_each_kind_finds_what_x_would(channel, x_account, x_server):
    phrase = x_server.add_public("The harbour lights are on", username="river_user")
    apart = x_server.add_public("Lights out at the harbour", username="hill_user")
    tagged = x_server.add_public("Tonight #HarbourLights", username="hill_user")
    french = x_server.add_public("Au port: harbour lights", username="quai_user", lang="fr")

    def found(query: PublicQuery) -> set[str]:
        return set(_ids(channel.search_public(x_account, query, "")))

    assert found(PublicQuery("search", "harbour lights")) == {phrase["id"], french["id"]}
    assert found(PublicQuery("search", "harbour lights", ("en",))) == {phrase["id"]}
    assert found(PublicQuery("search", "Harbour Lights", ("en", "fr"))) == {
        phrase["id"],
        french["id"],
    }
    assert found(PublicQuery("search", "harbour")) == {phrase["id"], apart["id"], french["id"]}
    assert found(PublicQuery("hashtag", "harbourlights")) == {tagged["id"]}
    assert found(PublicQuery("account", "@hill_user")) == {apart["id"], tagged["id"]}


def test_retweets_are_left_out(channel, x_account, x_server):
    post = _public(x_server, 1)
    retweet = _public(x_server, 2, username="echo_user", is_retweet=True)

    ids = _ids(channel.search_public(x_account, HARBOUR, ""))

    original = retweet["referenced_tweets"][0]["id"]
    assert retweet["id"] not in ids
    assert set(ids) == {post["id"], original}  # the post retweeted is found on its own


def test_a_query_of_xs_512_characters_is_sent_and_a_longer_one_refused_before_any_call(
    channel, x_account, x_server
):
    # "#" + tag + " -is:retweet" is 512 characters with a tag of 499.
    channel.search_public(x_account, PublicQuery("hashtag", "x" * 499), "")

    with pytest.raises(PermanentError) as caught:
        channel.search_public(x_account, PublicQuery("hashtag", "x" * 500), "")

    assert "512" in str(caught.value)
    [sent] = x_server.search_queries
    assert len(sent["query"]) == 512


@pytest.mark.parametrize(
    "query",
    [
        PublicQuery("search", '  "" '),
        PublicQuery("hashtag", "two words"),
        PublicQuery("hashtag", "#"),
        PublicQuery("account", "not a handle!"),
        PublicQuery("account", "@a_name_far_too_long_for_x"),
        PublicQuery("search", "harbour", ("english please",)),
    ],
)
def test_a_source_x_cannot_search_is_refused_before_any_call(channel, x_account, x_server, query):
    with pytest.raises(PermanentError):
        channel.search_public(x_account, query, "")

    assert x_server.search_queries == []


# --- what each post carries -------------------------------------------------------------------


def test_a_post_carries_its_author_link_time_language_figures_and_raw_post(
    channel, x_account, x_server
):
    post = x_server.add_public(
        "Harbour & quay: https://example.org/quai",
        username="quai_user",
        lang="fr",
        likes=7,
        retweets=3,
    )
    x_server.add_post("river_user", "Which quay?", reply_to=post["id"])
    x_server.add_post("hill_user", "Look at this", quote_of=post["id"])

    [found] = channel.search_public(x_account, HARBOUR, "").posts

    user = x_server.users[post["author_id"]]
    assert found.network_id == post["id"]
    assert (found.author_handle, found.author_name) == ("@quai_user", user["name"])
    assert found.author_id == post["author_id"]
    assert found.url == f"https://x.com/quai_user/status/{post['id']}"
    assert found.language == "fr"
    assert (found.likes, found.reposts, found.replies, found.quotes) == (7, 3, 1, 1)
    assert found.created_at.utcoffset() == timedelta(0)
    assert found.created_at.astimezone(UTC) == post["created_at"].replace(
        microsecond=post["created_at"].microsecond // 1000 * 1000
    )
    assert abs(found.created_at - timezone.now()) < timedelta(minutes=1)
    # X's text with its entities decoded; the link stays X's t.co link (no entities asked).
    assert found.text.startswith("Harbour & quay: https://t.co/")
    assert found.raw["text"].startswith("Harbour &amp; quay")
    assert found.raw["public_metrics"]["like_count"] == 7
    assert found.raw["conversation_id"] == post["id"]


@pytest.mark.parametrize("lang", ["und", "zxx", "qht"])
def test_a_post_in_no_language_declares_none(channel, x_account, x_server, lang):
    _public(x_server, 1, lang=lang)

    [found] = channel.search_public(x_account, HARBOUR, "").posts

    assert found.language == ""


def test_a_post_without_figures_or_author_is_still_kept(channel, x_account, x_server):
    post = {
        "id": "1880000000000000099",
        "text": "harbour",
        "created_at": "2026-01-05T10:00:00.000Z",
        "author_id": "9",
        "public_metrics": {"like_count": -1},
    }
    x_server.fail_next("search", "garbled", body={"data": [post], "meta": {"result_count": 1}})

    [found] = channel.search_public(x_account, HARBOUR, "").posts

    assert (found.likes, found.reposts, found.replies, found.quotes) == (None, None, None, None)
    assert (found.author_handle, found.author_name) == ("", "")
    assert found.url == "https://x.com/i/web/status/1880000000000000099"


# --- X's refusals -----------------------------------------------------------------------------


def test_a_rate_limit_is_retryable_after_x_rate_limit_reset(channel, x_account, x_server):
    x_server.fail_next("search", "429", reset_in=300)

    with pytest.raises(RetryableError) as caught:
        channel.search_public(x_account, HARBOUR, "")

    assert caught.value.http_status == 429
    assert 290 <= caught.value.retry_after <= 300


def test_an_expired_token_is_renewed_once_and_the_search_made(channel, x_account, x_server):
    post = _public(x_server, 1)
    x_server.expire(x_account.access_token)

    page = channel.search_public(x_account, HARBOUR, "")

    assert _ids(page) == [post["id"]]
    assert x_server.requests.count(("POST", "/2/oauth2/token")) == 1


def test_an_expired_token_without_a_refresh_token_is_auth_expired(channel, x_account, x_server):
    x_account.set_tokens(access_token=x_account.access_token)
    x_account.save()
    x_server.expire(x_account.access_token)

    with pytest.raises(AuthExpired) as caught:
        channel.search_public(x_account, HARBOUR, "")

    assert caught.value.http_status == 401


def test_a_revoked_grant_is_auth_expired(channel, x_account, x_server):
    x_server.revoke_grant(x_server.user_id)

    with pytest.raises(AuthExpired):
        channel.search_public(x_account, HARBOUR, "")


@pytest.mark.parametrize("status", ["500", "503"])
def test_a_server_error_is_retryable(channel, x_account, x_server, status):
    x_server.fail_next("search", status)

    with pytest.raises(RetryableError) as caught:
        channel.search_public(x_account, HARBOUR, "")

    assert caught.value.http_status == int(status)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Over capacity</body></html>",
        ["not", "an", "object"],
        {"data": "not a list", "meta": {"result_count": 1}},
        {"data": [{"id": "1880000000000000001"}], "meta": {}},
        {"data": [], "meta": {"next_token": 7}},
    ],
)
def test_a_malformed_answer_is_retryable(channel, x_account, x_server, body):
    x_server.fail_next("search", "garbled", body=body)

    with pytest.raises(RetryableError) as caught:
        channel.search_public(x_account, HARBOUR, "")

    assert "X did not answer the search" in str(caught.value)


def test_a_refusal_other_than_since_id_is_permanent_in_xs_words(channel, x_account, x_server):
    start = _polling_from(channel, x_account, x_server)
    x_server.fail_next(
        "search",
        "garbled",
        body={"errors": [{"detail": "User has been suspended: [2244994945].", "status": 403}]},
    )

    with pytest.raises(PermanentError) as caught:
        channel.search_public(x_account, HARBOUR, start)

    assert "User has been suspended" in str(caught.value)


# --- the server, as X documents it ------------------------------------------------------------


def test_the_server_pages_back_within_since_id_and_checks_its_parameters(x_server, x_account):
    made = [_public(x_server, n) for n in range(14)]
    url = f"{x_server.url}/2/tweets/search/recent"
    auth = {"Authorization": f"Bearer {x_account.access_token}"}
    query = {"query": "harbour -is:retweet", "since_id": made[1]["id"], "max_results": 10}

    first = requests.get(url, params=query, headers=auth)
    token = first.json()["meta"]["next_token"]
    second = requests.get(url, params={**query, "next_token": token}, headers=auth)
    other_query = requests.get(url, params={"query": "quay", "next_token": token}, headers=auth)
    too_few = requests.get(url, params={"query": "harbour", "max_results": 9}, headers=auth)
    too_many = requests.get(url, params={"query": "harbour", "max_results": 101}, headers=auth)
    too_long = requests.get(url, params={"query": "harbour " * 70}, headers=auth)
    alone = requests.get(url, params={"query": "-is:retweet lang:en"}, headers=auth)
    anonymous = requests.get(url, params={"query": "harbour"})

    assert [p["id"] for p in first.json()["data"]] == _newest_first(made[2:])[:10]
    assert first.json()["meta"]["newest_id"] == made[-1]["id"]
    assert [p["id"] for p in second.json()["data"]] == _newest_first(made[2:4])
    assert "next_token" not in second.json()["meta"]
    statuses = [r.status_code for r in (other_query, too_few, too_many, too_long, alone)]
    assert statuses == [400, 400, 400, 400, 400]
    assert anonymous.status_code == 401
