"""Answering on Facebook (issue 17): a comment heard by fetch_inbound is answered with the Page's
own comment under it, on the Graph API test server on 127.0.0.1; lost answers are reconciled."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from networks.channels import get_channel
from networks.channels.base import ReconcileHints, ReplyTo
from networks.channels.errors import (
    AmbiguousMatch,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.channels.facebook import GRAPH_VERSION

from .graph_server import PERMISSIONS

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "9c8b7a6f-5e4d-4c3b-a2f1-0e9d8c7b6a5f"
ANSWER = "Thank you. The library opens at 10 on Thursday: https://example.org/library"
PAGE = {"id": "201", "name": "North Desk"}


@pytest.fixture
def channel():
    return get_channel("facebook")


@pytest.fixture
def post(channel, facebook_account, graph_server):
    """One of our posts, published through the channel: its id as publish stored it."""
    published = channel.publish(
        facebook_account, "The library opens late on Thursday.", [], idempotency_key=KEY
    )
    return published.external_id


@pytest.fixture
def question(graph_server, post):
    """A person's comment on our post, a minute ago."""
    return graph_server.add_comment(post, "What time on Thursday?", created=time.time() - 60)


def _heard(channel, account, comment_id):
    """The item fetch_inbound gives for `comment_id`, as the inbox keeps it."""
    page = channel.fetch_inbound(account, "")
    [item] = [one for one in page.items if one.network_id == comment_id]
    return item


def _reply_to(item) -> ReplyTo:
    return ReplyTo(item.network_id, item.thread_id, item.raw)


def _page_comments(graph_server):
    return [c for c in graph_server.comments if c["author"].get("id") == "201"]


def _hints(**overrides):
    values = {"since": datetime.now(UTC) - timedelta(seconds=5), "media_count": 0}
    return ReconcileHints(**(values | overrides))


def test_the_channel_answers_and_asks_for_the_permission_to(channel):
    assert channel.replies is True
    assert "pages_manage_engagement" in channel.scopes


def test_a_comment_heard_is_answered_under_it_in_its_thread(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])

    published = channel.publish(
        facebook_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item)
    )

    [reply] = _page_comments(graph_server)
    assert reply["parent"] == question["id"]
    assert reply["on"] == post == item.thread_id
    assert reply["author"] == PAGE
    assert reply["text"] == ANSWER
    assert published.external_id == reply["id"]
    assert published.external_url.startswith(f"https://www.facebook.com/201/posts/{post[4:]}")
    assert published.external_url.endswith(f"comment_id={reply['id'].split('_')[-1]}")
    assert ("POST", f"/{GRAPH_VERSION}/{question['id']}/comments") in graph_server.requests
    # No new post on the Page: the answer is a comment.
    assert len(graph_server.posts) == 1


def test_the_pages_answer_is_not_heard_back_as_an_item(
    channel, facebook_account, graph_server, post, question
):
    first = channel.fetch_inbound(facebook_account, "")
    [item] = first.items
    channel.publish(facebook_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item))

    later = channel.fetch_inbound(facebook_account, first.cursor)

    assert later.items == []
    assert later.cursor != first.cursor


def test_an_answer_to_a_reply_goes_under_the_comment_it_replies_to(
    channel, facebook_account, graph_server, post, question
):
    follow_up = graph_server.add_comment(
        post,
        "And on Friday?",
        parent=question["id"],
        author={"id": "6100000000000077", "name": "Bo Baker"},
    )
    item = _heard(channel, facebook_account, follow_up["id"])

    channel.publish(facebook_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item))

    [reply] = _page_comments(graph_server)
    assert item.in_reply_to_id == question["id"]
    assert reply["parent"] == question["id"]
    assert reply["on"] == post


def test_a_post_itself_can_be_answered_with_a_comment_on_it(
    channel, facebook_account, graph_server, post
):
    channel.publish(facebook_account, ANSWER, [], idempotency_key=KEY, reply_to=ReplyTo(post, post))

    [reply] = _page_comments(graph_server)
    assert (reply["on"], reply["parent"]) == (post, None)


def test_a_reply_with_images_is_refused_before_anything_is_sent(
    channel, facebook_account, graph_server, post, question, two_images
):
    item = _heard(channel, facebook_account, question["id"])
    before = list(graph_server.requests)

    with pytest.raises(PermanentError, match="text only"):
        channel.publish(
            facebook_account, ANSWER, two_images, idempotency_key=KEY, reply_to=_reply_to(item)
        )

    assert graph_server.requests == before


def test_without_the_permission_to_comment_it_is_refused_naming_it(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])
    token = graph_server.tokens[facebook_account.access_token]
    token.scopes = frozenset(PERMISSIONS - {"pages_manage_engagement"})

    with pytest.raises(PermanentError, match="pages_manage_engagement"):
        channel.publish(facebook_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item))

    assert _page_comments(graph_server) == []


def test_a_rate_limit_on_the_reply_is_retryable_and_made_nothing(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])
    graph_server.fail_next("comment", "429", minutes=4)

    with pytest.raises(RetryableError) as caught:
        channel.publish(facebook_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item))

    assert caught.value.retry_after == 240
    assert _page_comments(graph_server) == []


# --- lost answers: reconcile ------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(("drop", {}), id="answer-dropped"),
        pytest.param(("500", {"after": True}), id="500-after-the-comment"),
        pytest.param(("transient", {"after": True}), id="503-code-2"),
    ],
)
def test_a_reply_made_before_its_answer_was_lost_is_found_and_made_once(
    channel, facebook_account, graph_server, post, question, failure
):
    item = _heard(channel, facebook_account, question["id"])
    hints = _hints()
    mode, options = failure
    graph_server.fail_next("comment", mode, **options)

    with pytest.raises(UnknownOutcome):
        channel.publish(facebook_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item))
    found = channel.reconcile(
        facebook_account, ANSWER, idempotency_key=KEY, hints=hints, reply_to=_reply_to(item)
    )

    [reply] = _page_comments(graph_server)
    assert found is not None
    assert found.external_id == reply["id"]
    assert found.external_url.endswith(f"comment_id={reply['id'].split('_')[-1]}")
    assert (
        "GET",
        f"/{GRAPH_VERSION}/{question['id']}/comments",
    ) in graph_server.requests


@pytest.mark.usefixtures("short_network_timeout")
def test_a_reply_that_timed_out_after_the_server_made_it_is_reconciled(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])
    graph_server.fail_next("comment", "slow")

    with pytest.raises(UnknownOutcome):
        channel.publish(facebook_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item))
    found = channel.reconcile(
        facebook_account, ANSWER, idempotency_key=KEY, hints=_hints(), reply_to=_reply_to(item)
    )

    [reply] = _page_comments(graph_server)
    assert found is not None and found.external_id == reply["id"]


def test_an_answer_without_an_id_is_looked_for_rather_than_sent_again(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])
    graph_server.fail_next("comment", "malformed", after=True)

    published = channel.publish(
        facebook_account, ANSWER, [], idempotency_key=KEY, reply_to=_reply_to(item)
    )

    [reply] = _page_comments(graph_server)
    assert published.external_id == reply["id"]


def test_reconcile_finds_nothing_when_nothing_was_answered(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])

    found = channel.reconcile(
        facebook_account, ANSWER, idempotency_key=KEY, hints=_hints(), reply_to=_reply_to(item)
    )

    assert found is None


def test_a_post_or_a_comment_elsewhere_of_the_same_text_is_never_taken_for_the_reply(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])
    hints = _hints()
    # The same words as a post of the Page, as the Page's comment on the post itself, and as
    # its reply under another comment: none of them answers this item.
    graph_server.add_post("201", ANSWER)
    graph_server.add_comment(post, ANSWER, author=PAGE)
    other = graph_server.add_comment(post, "Is it free?")
    graph_server.add_comment(post, ANSWER, author=PAGE, parent=other["id"])

    found = channel.reconcile(
        facebook_account, ANSWER, idempotency_key=KEY, hints=hints, reply_to=_reply_to(item)
    )

    assert found is None


def test_someone_elses_reply_of_the_same_text_is_not_ours(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])
    graph_server.add_comment(post, ANSWER, parent=question["id"])

    found = channel.reconcile(
        facebook_account, ANSWER, idempotency_key=KEY, hints=_hints(), reply_to=_reply_to(item)
    )

    assert found is None


def test_the_pages_same_answer_before_the_first_try_is_not_this_one(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])
    graph_server.add_comment(
        post, ANSWER, author=PAGE, parent=question["id"], created=time.time() - 3600
    )

    found = channel.reconcile(
        facebook_account, ANSWER, idempotency_key=KEY, hints=_hints(), reply_to=_reply_to(item)
    )

    assert found is None


def test_two_answers_of_the_text_since_the_first_try_are_for_a_person_to_decide(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])
    hints = _hints()
    for _ in range(2):
        graph_server.add_comment(post, ANSWER, author=PAGE, parent=question["id"])

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(
            facebook_account, ANSWER, idempotency_key=KEY, hints=hints, reply_to=_reply_to(item)
        )

    assert len(caught.value.candidates) == 2


def test_an_answer_other_targets_hold_is_never_ours(
    channel, facebook_account, graph_server, post, question
):
    item = _heard(channel, facebook_account, question["id"])
    hints = _hints()
    held = graph_server.add_comment(post, ANSWER, author=PAGE, parent=question["id"])

    found = channel.reconcile(
        facebook_account,
        ANSWER,
        idempotency_key=KEY,
        hints=_hints(since=hints.since, known_ids=frozenset({held["id"]})),
        reply_to=_reply_to(item),
    )

    assert found is None


def test_reconcile_without_reply_to_still_reads_the_pages_posts(
    channel, facebook_account, graph_server, post
):
    found = channel.reconcile(
        facebook_account, "The library opens late on Thursday.", idempotency_key=KEY
    )

    assert found is not None and found.external_id == post
    assert ("GET", f"/{GRAPH_VERSION}/201/posts") in graph_server.requests
