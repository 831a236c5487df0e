"""What comes back on X, against the X test server on 127.0.0.1: the account's mention timeline
read incrementally with our cursor (the newest page first, then only what is new, a long gap
walked page by page), replies to our posts told from mentions, and X's refusals."""

import json
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from networks.channels import get_channel
from networks.channels.errors import AuthExpired, PermanentError, RetryableError

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "6b1c3f0e-1d2a-4c5b-8e9f-0a1b2c3d4e5f"


@pytest.fixture
def channel():
    return get_channel("x")


def _mention(x_server, n: int, username: str = "river_user") -> dict:
    return x_server.add_post(username, f"@north_desk question {n}?")


def _ids(page) -> list[str]:
    return [item.network_id for item in page.items]


def _drain(channel, account, cursor: str, limit: int) -> tuple[list[str], str, int]:
    """Every id taken while `more` says another page waits, the cursor left, and the calls."""
    taken, calls, more = [], 0, True
    while more:
        page = channel.fetch_inbound(account, cursor, limit=limit)
        taken += _ids(page)
        cursor, more, calls = page.cursor, page.more, calls + 1
        assert calls < 20
    return taken, cursor, calls


# --- incremental ------------------------------------------------------------------------------


def test_the_first_call_takes_the_newest_page_only(channel, x_account, x_server):
    made = [_mention(x_server, n) for n in range(12)]

    page = channel.fetch_inbound(x_account, "", limit=5)

    assert _ids(page) == [t["id"] for t in reversed(made[-5:])]
    assert page.more is False  # the 7 older ones are the past: not back-filled
    assert json.loads(page.cursor) == {"since_id": made[-1]["id"]}
    assert len(x_server.mention_queries) == 1
    assert "since_id" not in x_server.mention_queries[0]


def test_nothing_at_all_keeps_the_empty_cursor(channel, x_account, x_server):
    page = channel.fetch_inbound(x_account, "")

    assert page.items == [] and page.cursor == "" and page.more is False


def test_a_quiet_second_call_returns_nothing_and_the_cursor_given(channel, x_account, x_server):
    _mention(x_server, 1)
    first = channel.fetch_inbound(x_account, "")

    second = channel.fetch_inbound(x_account, first.cursor)

    assert second.items == []
    assert second.cursor == first.cursor and second.more is False
    assert x_server.mention_queries[-1]["since_id"] == json.loads(first.cursor)["since_id"]


def test_the_next_call_takes_only_what_is_new(channel, x_account, x_server):
    old = [_mention(x_server, n) for n in range(3)]
    first = channel.fetch_inbound(x_account, "")
    new = [_mention(x_server, n) for n in range(3, 5)]

    second = channel.fetch_inbound(x_account, first.cursor)

    assert _ids(first) == [t["id"] for t in reversed(old)]
    assert _ids(second) == [t["id"] for t in reversed(new)]
    assert json.loads(second.cursor) == {"since_id": new[-1]["id"]}


def test_a_long_gap_is_walked_page_by_page_without_losing_any(channel, x_account, x_server):
    first = channel.fetch_inbound(x_account, "", limit=5)  # nothing yet: cursor ""
    _mention(x_server, 0)
    start = channel.fetch_inbound(x_account, first.cursor, limit=5).cursor
    gap = [_mention(x_server, n) for n in range(1, 13)]

    one = channel.fetch_inbound(x_account, start, limit=5)
    during = [_mention(x_server, n) for n in range(13, 16)]  # arrive while the gap is walked
    two = channel.fetch_inbound(x_account, one.cursor, limit=5)
    three = channel.fetch_inbound(x_account, two.cursor, limit=5)
    after, cursor, _ = _drain(channel, x_account, three.cursor, limit=5)

    assert (one.more, two.more, three.more) == (True, True, False)
    assert [len(p.items) for p in (one, two, three)] == [5, 5, 2]
    walked = _ids(one) + _ids(two) + _ids(three)
    assert walked == [t["id"] for t in reversed(gap)]  # newest first, each once
    walk_queries = x_server.mention_queries[-4:-1]
    assert {q["since_id"] for q in walk_queries} == {json.loads(start)["since_id"]}
    assert json.loads(three.cursor) == {"since_id": gap[-1]["id"]}
    assert after == [t["id"] for t in reversed(during)]
    assert json.loads(cursor) == {"since_id": during[-1]["id"]}
    assert channel.fetch_inbound(x_account, cursor, limit=5).items == []


def test_a_walk_whose_page_token_is_refused_starts_the_gap_again(channel, x_account, x_server):
    first = channel.fetch_inbound(x_account, "", limit=5)
    _mention(x_server, 0)
    start = channel.fetch_inbound(x_account, first.cursor, limit=5).cursor
    gap = [_mention(x_server, n) for n in range(1, 8)]
    one = channel.fetch_inbound(x_account, start, limit=5)
    x_server.page_tokens.clear()  # the token has expired

    refused = channel.fetch_inbound(x_account, one.cursor, limit=5)
    again, cursor, _ = _drain(channel, x_account, refused.cursor, limit=5)

    assert (refused.items, refused.more) == ([], True)
    assert json.loads(refused.cursor) == {"since_id": json.loads(start)["since_id"]}
    assert set(_ids(one)) | set(again) == {t["id"] for t in gap}
    assert json.loads(cursor) == {"since_id": gap[-1]["id"]}


def test_a_deleted_mention_is_simply_gone_and_the_walk_goes_on(channel, x_account, x_server):
    # X's timeline drops a deleted post and says nothing more of it: nothing to mark deleted.
    _mention(x_server, 0)
    start = channel.fetch_inbound(x_account, "").cursor
    gap = [_mention(x_server, n) for n in range(1, 11)]
    one = channel.fetch_inbound(x_account, start, limit=5)
    x_server.delete_tweet(gap[5]["id"])  # the oldest of the page just taken
    x_server.delete_tweet(gap[4]["id"])  # the newest of the next page
    deleted_before = _mention(x_server, 11)
    x_server.delete_tweet(deleted_before["id"])

    rest, cursor, _ = _drain(channel, x_account, one.cursor, limit=5)

    assert rest == [t["id"] for t in reversed(gap[:4])]
    assert all(not item.deleted for item in one.items)
    assert deleted_before["id"] not in rest
    assert json.loads(cursor) == {"since_id": gap[-1]["id"]}


def test_a_cursor_that_is_not_ours_is_refused(channel, x_account, x_server):
    with pytest.raises(PermanentError):
        channel.fetch_inbound(x_account, "not json")
    assert x_server.mention_queries == []


# --- what each item says ----------------------------------------------------------------------


def test_a_reply_to_our_post_is_a_reply_to_the_id_publish_stored(channel, x_account, x_server):
    ours = channel.publish(x_account, "Libraries open late on Thursdays.", [], idempotency_key=KEY)
    reply = x_server.add_post("river_user", "Which ones?", reply_to=ours.external_id)

    [item] = channel.fetch_inbound(x_account, "").items

    assert item.kind == "reply"
    assert item.network_id == reply["id"]
    assert item.in_reply_to_id == ours.external_id
    assert item.thread_id == ours.external_id
    assert item.text == "@north_desk Which ones?"


def test_a_reply_deeper_in_our_thread_keeps_the_thread_and_its_parent(channel, x_account, x_server):
    ours = channel.publish(x_account, "Road works on Main Street.", [], idempotency_key=KEY)
    first = x_server.add_post("river_user", "How long?", reply_to=ours.external_id)
    second = x_server.add_post("hill_user", "@north_desk same question", reply_to=first["id"])

    items = {i.network_id: i for i in channel.fetch_inbound(x_account, "").items}

    # It answers river_user, not us, and names us: a mention, in our thread.
    assert items[second["id"]].kind == "mention"
    assert items[second["id"]].in_reply_to_id == first["id"]
    assert items[second["id"]].thread_id == ours.external_id


def test_a_mention_and_a_quote_are_mentions(channel, x_account, x_server):
    ours = channel.publish(x_account, "New opening hours.", [], idempotency_key=KEY)
    mention = x_server.add_post("river_user", "Ask @north_desk about it")
    quote = x_server.add_post("hill_user", "Good news @north_desk", quote_of=ours.external_id)

    items = {i.network_id: i for i in channel.fetch_inbound(x_account, "").items}

    assert items[mention["id"]].kind == "mention"
    assert items[mention["id"]].in_reply_to_id == ""
    assert items[mention["id"]].thread_id == mention["id"]
    assert items[quote["id"]].kind == "mention"
    assert items[quote["id"]].in_reply_to_id == ""


def test_an_item_carries_its_author_link_time_language_and_raw_post(channel, x_account, x_server):
    post = x_server.add_post(
        "river_user", "@north_desk horaires & accès: https://example.org/acces", lang="fr"
    )

    [item] = channel.fetch_inbound(x_account, "").items

    user = x_server.users[post["author_id"]]
    assert item.author_handle == "@river_user"
    assert item.author_name == user["name"]
    assert item.author_id == post["author_id"]
    assert item.url == f"https://x.com/river_user/status/{post['id']}"
    assert item.created_at.tzinfo is not None
    assert item.created_at.utcoffset() == timedelta(0)
    assert abs(item.created_at - timezone.now()) < timedelta(minutes=1)
    assert item.created_at.astimezone(UTC) == post["created_at"].replace(
        microsecond=post["created_at"].microsecond // 1000 * 1000
    )
    assert item.language == "fr"
    # As a person reads it: X's t.co link back to where it leads, &amp; decoded.
    assert item.text == "@north_desk horaires & accès: https://example.org/acces"
    assert item.raw["id"] == post["id"]
    assert item.raw["text"].startswith("@north_desk horaires &amp; accès: https://t.co/")
    assert item.deleted is False


@pytest.mark.parametrize("lang", ["und", "qme", "zxx"])
def test_a_post_in_no_language_declares_none(channel, x_account, x_server, lang):
    x_server.add_post("river_user", "@north_desk 👍", lang=lang)

    [item] = channel.fetch_inbound(x_account, "").items

    assert item.language == ""


def test_the_accounts_own_posts_are_not_what_came_back(channel, x_account, x_server):
    ours = channel.publish(x_account, "Part one of a thread.", [], idempotency_key=KEY)
    own = x_server.add_post("north_desk", "Part two.", reply_to=ours.external_id)
    other = _mention(x_server, 1)

    page = channel.fetch_inbound(x_account, "")

    assert _ids(page) == [other["id"]]
    assert own["id"] in [t["id"] for t in x_server.mentions_of()]


# --- X's refusals -----------------------------------------------------------------------------


def test_a_rate_limit_is_retryable_after_x_rate_limit_reset(channel, x_account, x_server):
    x_server.fail_next("mentions", "429", reset_in=300)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_inbound(x_account, "")

    assert caught.value.http_status == 429
    assert 290 <= caught.value.retry_after <= 300


def test_an_expired_token_is_renewed_once_and_the_mentions_read(channel, x_account, x_server):
    mention = _mention(x_server, 1)
    x_server.expire(x_account.access_token)

    page = channel.fetch_inbound(x_account, "")

    assert _ids(page) == [mention["id"]]
    assert x_server.requests.count(("POST", "/2/oauth2/token")) == 1


def test_an_expired_token_without_a_refresh_token_is_auth_expired(channel, x_account, x_server):
    x_account.set_tokens(access_token=x_account.access_token)
    x_account.save()
    x_server.expire(x_account.access_token)

    with pytest.raises(AuthExpired) as caught:
        channel.fetch_inbound(x_account, "")

    assert caught.value.http_status == 401


def test_a_revoked_grant_is_auth_expired(channel, x_account, x_server):
    x_server.revoke_grant(x_server.user_id)

    with pytest.raises(AuthExpired):
        channel.fetch_inbound(x_account, "")


@pytest.mark.parametrize("status", ["500", "503"])
def test_a_server_error_is_retryable(channel, x_account, x_server, status):
    x_server.fail_next("mentions", status)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_inbound(x_account, "")

    assert caught.value.http_status == int(status)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Over capacity</body></html>",
        ["not", "an", "object"],
        {"data": "not a list", "meta": {"result_count": 1}},
        {"data": [{"id": "1880000000000000001"}], "meta": {}},
        {"data": [{"id": 42, "text": "@north_desk hi", "created_at": "2026-01-05T10:00:00Z"}]},
        {"data": [{"id": "18", "text": "@north_desk hi", "created_at": "yesterday"}]},
        {"data": ["a post"], "meta": {"result_count": 1}},
        {"data": [], "meta": {"next_token": 7}},
    ],
)
def test_a_malformed_answer_is_retryable(channel, x_account, x_server, body):
    x_server.fail_next("mentions", "garbled", body=body)

    with pytest.raises(RetryableError) as caught:
        channel.fetch_inbound(x_account, "")

    assert "X did not list the account's mentions" in str(caught.value)


def test_odd_but_readable_parts_do_not_break_an_item(channel, x_account, x_server):
    post = {
        "id": "1880000000000000099",
        "text": "@north_desk hi",
        "created_at": "Wed Jan 06 18:40:40 +0000 2021",  # the form of X's reference examples
        "author_id": "9",
        "entities": {"urls": 5},
        "referenced_tweets": "replied_to",
        "lang": 3,
        "conversation_id": {"id": "1"},
    }
    x_server.fail_next("mentions", "garbled", body={"data": [post], "includes": []})

    [item] = channel.fetch_inbound(x_account, "").items

    assert item.created_at.isoformat() == "2021-01-06T18:40:40+00:00"
    assert (item.kind, item.in_reply_to_id, item.language) == ("mention", "", "")
    assert (item.author_handle, item.thread_id) == ("", "")
    assert item.url == "https://x.com/i/web/status/1880000000000000099"


def test_an_answer_with_only_xs_errors_is_refused_in_its_words(channel, x_account, x_server):
    x_server.fail_next(
        "mentions",
        "garbled",
        body={"errors": [{"detail": "User has been suspended: [2244994945].", "status": 403}]},
    )

    with pytest.raises(PermanentError) as caught:
        channel.fetch_inbound(x_account, "")

    assert "User has been suspended" in str(caught.value)


# --- the server, as X documents it ------------------------------------------------------------


def test_the_server_pages_back_within_since_id_and_checks_its_parameters(x_server, x_account):
    import requests

    made = [_mention(x_server, n) for n in range(8)]
    url = f"{x_server.url}/2/users/{x_server.user_id}/mentions"
    auth = {"Authorization": f"Bearer {x_account.access_token}"}

    first = requests.get(url, params={"since_id": made[1]["id"], "max_results": 5}, headers=auth)
    token = first.json()["meta"]["next_token"]
    second = requests.get(
        url,
        params={"since_id": made[1]["id"], "max_results": 5, "pagination_token": token},
        headers=auth,
    )
    too_many = requests.get(url, params={"max_results": 101}, headers=auth)
    bad_token = requests.get(url, params={"pagination_token": "nope"}, headers=auth)
    anonymous = requests.get(url)

    assert [p["id"] for p in first.json()["data"]] == [t["id"] for t in made[7:2:-1]]
    assert [p["id"] for p in second.json()["data"]] == [made[2]["id"]]
    assert "next_token" not in second.json()["meta"]
    assert (too_many.status_code, bad_token.status_code, anonymous.status_code) == (400, 400, 401)
