"""Replies on X, against the X test server on 127.0.0.1: an item read by fetch_inbound answered
with publish(reply_to=…) is X's reply to it, in its thread, with the handles X adds; a reply
whose answer was lost is found by reconcile among the account's replies to that item only, and
never sent twice; X's refusals."""

import pytest
import requests
from django.utils import timezone

from networks.channels import get_channel
from networks.channels.base import ReplyTo
from networks.channels.errors import PermanentError, UnknownOutcome
from publishing.models import PublishAttempt

from ...integration.dispatch_support import approved_post
from .x_server import days_ago

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "0b6e5a4c-7d21-4f3e-9a8b-1c2d3e4f5a6b"
ANSWER = "The library opens at 9 on Saturdays: https://example.org/libraries/hours"


@pytest.fixture
def channel():
    return get_channel("x")


def _reply_to(item) -> ReplyTo:
    """As the inbox keeps an item and hands it to dispatch."""
    return ReplyTo(item.network_id, item.thread_id, item.raw)


def _item(channel, account, network_id: str):
    items = {i.network_id: i for i in channel.fetch_inbound(account, "").items}
    return items[network_id]


@pytest.fixture
def question(channel, x_account, x_server):
    """Our post, a question in reply to it, and the inbox item fetch_inbound made of it."""
    ours = channel.publish(x_account, "Libraries open late on Thursdays.", [], idempotency_key=KEY)
    asked = x_server.add_post("river_user", "And on Saturdays?", reply_to=ours.external_id)
    return ours, asked, _item(channel, x_account, asked["id"])


def _ours(x_server, tweet_id: str) -> list[dict]:
    """The account's replies to `tweet_id` on the server."""
    return [t for t in x_server.replies_to(tweet_id) if t["author_id"] == x_server.user_id]


# --- publishing a reply -----------------------------------------------------------------------


def test_an_item_answered_is_a_reply_to_it_in_its_thread(channel, x_account, x_server, question):
    # Given a reply to our post, read from the mention timeline
    ours, asked, item = question

    # When we answer it
    published = channel.publish(
        x_account, ANSWER, [], idempotency_key=KEY + "-r", reply_to=_reply_to(item)
    )

    # Then X holds our reply to that item, in our post's thread, answering its author
    [reply] = _ours(x_server, item.network_id)
    assert published.external_id == reply["id"]
    assert published.external_url == f"https://x.com/north_desk/status/{reply['id']}"
    assert published.http_status == 201
    assert reply["referenced_tweets"] == [{"type": "replied_to", "id": asked["id"]}]
    assert reply["conversation_id"] == item.thread_id == ours.external_id
    assert reply["in_reply_to_user_id"] == asked["author_id"]
    # X puts the handle of the person answered before our text; we sent only our words.
    assert reply["raw_text"] == ANSWER
    assert reply["text"].startswith(
        "@river_user The library opens at 9 on Saturdays: https://t.co/"
    )
    assert reply["id"] in [t["id"] for t in x_server.mentions_of(asked["author_id"])]


def test_a_reply_deeper_in_a_thread_answers_everyone_x_names(channel, x_account, x_server):
    ours = channel.publish(x_account, "Road works on Main Street.", [], idempotency_key=KEY)
    first = x_server.add_post("river_user", "How long?", reply_to=ours.external_id)
    second = x_server.add_post("hill_user", "@north_desk same question", reply_to=first["id"])
    item = _item(channel, x_account, second["id"])

    published = channel.publish(
        x_account, "Until Friday.", [], idempotency_key=KEY + "-r", reply_to=_reply_to(item)
    )

    [reply] = _ours(x_server, second["id"])
    assert reply["id"] == published.external_id
    assert reply["conversation_id"] == ours.external_id
    assert reply["text"] == "@hill_user @river_user Until Friday."


def test_a_mention_is_answered_in_its_own_thread(channel, x_account, x_server):
    mention = x_server.add_post("river_user", "Is @north_desk open on Sunday?")
    item = _item(channel, x_account, mention["id"])

    channel.publish(x_account, "Not on Sundays.", [], idempotency_key=KEY, reply_to=_reply_to(item))

    [reply] = _ours(x_server, mention["id"])
    assert item.thread_id == mention["id"]
    assert reply["conversation_id"] == mention["id"]
    assert reply["text"] == "@river_user Not on Sundays."


def test_a_reply_carries_its_images(channel, x_account, x_server, question, two_images):
    _, _, item = question

    channel.publish(
        x_account,
        "Our opening hours.",
        two_images,
        idempotency_key=KEY + "-r",
        reply_to=_reply_to(item),
    )

    [reply] = _ours(x_server, item.network_id)
    assert [m["alt_text"] for m in reply["media"]] == ["A red square.", "Static on a screen."]


def test_a_post_without_reply_to_is_no_reply(channel, x_account, x_server, question):
    published = channel.publish(x_account, ANSWER, [], idempotency_key=KEY + "-p")

    [tweet] = [t for t in x_server.tweets_of() if t["id"] == published.external_id]
    assert tweet["referenced_tweets"] == []
    assert tweet["conversation_id"] == tweet["id"]


# --- reconcile: the answer lost after X made the reply ----------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(("drop", {}), id="answer-dropped"),
        pytest.param(("502", {"after": True}), id="502"),
    ],
)
def test_a_reply_made_before_the_answer_was_lost_is_found_and_made_once(
    channel, x_account, x_server, question, failure
):
    # Given an X that makes the reply, then loses the answer or answers 502
    _, _, item = question
    mode, options = failure
    x_server.fail_next("tweets", mode, **options)
    with pytest.raises(UnknownOutcome):
        channel.publish(x_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item))

    # When reconcile looks for it, and a blind send is made anyway
    found = channel.reconcile(x_account, ANSWER, idempotency_key=KEY, reply_to=_reply_to(item))
    again = channel.publish(x_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item))

    # Then both are the one reply X holds (X refused the second as a duplicate)
    [reply] = _ours(x_server, item.network_id)
    assert found is not None and found.external_id == reply["id"]
    assert found.external_url == f"https://x.com/north_desk/status/{reply['id']}"
    assert again.external_id == reply["id"]
    assert ("GET", f"/2/users/{x_server.user_id}/tweets") in x_server.requests


def test_a_reply_whose_text_names_the_person_is_found_too(channel, x_account, x_server, question):
    _, _, item = question
    text = "@river_user from 9 to 5."
    x_server.fail_next("tweets", "drop")
    with pytest.raises(UnknownOutcome):
        channel.publish(x_account, text, [], idempotency_key=KEY, reply_to=_reply_to(item))

    found = channel.reconcile(x_account, text, idempotency_key=KEY, reply_to=_reply_to(item))

    [reply] = _ours(x_server, item.network_id)
    assert reply["text"] == "@river_user from 9 to 5."  # X does not name them twice
    assert found is not None and found.external_id == reply["id"]


def test_a_post_of_the_same_text_elsewhere_is_not_the_reply(channel, x_account, x_server, question):
    # Given the same words posted on their own, and as a reply to someone else, since the try
    _, _, item = question
    elsewhere = x_server.add_post("hill_user", "@north_desk Saturdays?")
    top_level = x_server.add_tweet(x_server.user_id, ANSWER)
    x_server.add_post("north_desk", ANSWER, reply_to=elsewhere["id"])

    # When reconcile looks for our reply to the item: nothing (not an ambiguous match either)
    assert (
        channel.reconcile(x_account, ANSWER, idempotency_key=KEY, reply_to=_reply_to(item)) is None
    )

    # And once the reply is there, it is the one found; a post's reconcile finds the post
    x_server.add_post("north_desk", ANSWER, reply_to=item.network_id)
    [reply] = _ours(x_server, item.network_id)
    found = channel.reconcile(x_account, ANSWER, idempotency_key=KEY, reply_to=_reply_to(item))
    post = channel.reconcile(x_account, ANSWER, idempotency_key=KEY)
    assert found is not None and found.external_id == reply["id"]
    assert post is not None and post.external_id == top_level["id"]


def test_reconcile_of_a_reply_reads_the_replies_a_posts_reconcile_leaves_out(
    channel, x_account, x_server, question
):
    _, _, item = question

    channel.reconcile(x_account, ANSWER, idempotency_key=KEY, reply_to=_reply_to(item))
    channel.reconcile(x_account, ANSWER, idempotency_key=KEY)

    for_reply, for_post = x_server.timeline_queries
    assert for_reply["exclude"] == "retweets"
    assert "referenced_tweets" in for_reply["tweet.fields"].split(",")
    assert for_post["exclude"] == "retweets,replies"
    assert "referenced_tweets" not in for_post["tweet.fields"].split(",")


# --- X's refusals -----------------------------------------------------------------------------


def test_a_reply_to_a_deleted_item_is_refused_in_xs_words(channel, x_account, x_server, question):
    _, asked, item = question
    x_server.delete_tweet(asked["id"])

    with pytest.raises(PermanentError) as refused:
        channel.publish(x_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item))

    assert refused.value.http_status == 403
    assert "deleted or not visible to you" in str(refused.value)
    assert "X refused the reply" in str(refused.value)
    assert _ours(x_server, asked["id"]) == []


def test_an_item_that_is_not_an_x_post_is_refused_before_sending(channel, x_account, x_server):
    with pytest.raises(PermanentError) as refused:
        channel.publish(
            x_account,
            ANSWER,
            [],
            idempotency_key=KEY,
            reply_to=ReplyTo("at://did:plc:abc/app.bsky.feed.post/3k"),
        )

    assert "not an X post id" in str(refused.value)
    assert ("POST", "/2/tweets") not in x_server.requests


def test_the_same_words_posted_before_the_first_try_are_refused(
    channel, x_account, x_server, question, author, org
):
    # Given the account said the same days ago (X refuses duplicate text, replies included)
    _, _, item = question
    x_server.add_tweet(x_server.user_id, ANSWER, created_at=days_ago(2))
    post = approved_post(author=author, team=org["north"], accounts=[x_account], body=ANSWER)
    target = post.targets.get()
    PublishAttempt.objects.create(target=target, number=1, started_at=timezone.now())

    # When the reply is sent, X refuses it, and no reply of ours to the item explains it
    with pytest.raises(PermanentError) as refused:
        channel.publish(
            x_account,
            ANSWER,
            [],
            idempotency_key=str(target.idempotency_key),
            reply_to=_reply_to(item),
        )

    # Then the author is told to change the words
    assert refused.value.http_status == 403
    assert "duplicate content" in str(refused.value)
    assert "change the text" in str(refused.value) and "this reply" in str(refused.value)
    assert _ours(x_server, item.network_id) == []


# --- the server, as X documents it ------------------------------------------------------------


def test_the_server_checks_the_reply_object_and_its_exclusions(x_server, x_account, question):
    _, asked, _ = question
    url = f"{x_server.url}/2/tweets"
    auth = {"Authorization": f"Bearer {x_account.access_token}"}

    bad_id = requests.post(
        url, json={"text": "a", "reply": {"in_reply_to_tweet_id": 5}}, headers=auth
    )
    no_id = requests.post(url, json={"text": "b", "reply": {}}, headers=auth)
    excluded = requests.post(
        url,
        json={
            "text": "Only to the thread.",
            "reply": {
                "in_reply_to_tweet_id": asked["id"],
                "exclude_reply_user_ids": [asked["author_id"]],
            },
        },
        headers=auth,
    )

    assert (bad_id.status_code, no_id.status_code, excluded.status_code) == (400, 400, 201)
    [reply] = _ours(x_server, asked["id"])
    assert reply["text"] == "Only to the thread."
