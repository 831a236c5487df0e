"""Answering on Instagram (issue 17): a comment heard by fetch_inbound is answered with the
account's reply under it, on the Graph API test server on 127.0.0.1; lost answers are
reconciled."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from networks.channels import get_channel
from networks.channels.base import ReconcileHints, ReplyTo
from networks.channels.errors import (
    AmbiguousMatch,
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.channels.facebook import GRAPH_VERSION

from .graph_server import PERMISSIONS

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "4f3e2d1c-0b9a-4877-a665-5443322110ff"
IG_ID = "17841400000000001"
ANSWER = "Thank you! It is Central Park, by the lake. #SpringInTheCity"
ACCOUNT = {"id": IG_ID, "username": "north.desk"}


@pytest.fixture
def channel():
    return get_channel("instagram")


@pytest.fixture
def media(graph_server):
    """A post of the account (published an hour ago): its IG media id, as publish stores it."""
    return graph_server.add_ig_media(IG_ID, "Spring at the park.", published=time.time() - 3600)


@pytest.fixture
def question(graph_server, media):
    """A person's comment on that post, a minute ago."""
    return graph_server.add_ig_comment(
        media["id"], "Where is this?", username="ann.reader", created=time.time() - 60
    )


def _heard(channel, account, comment_id):
    """The item fetch_inbound gives for `comment_id`, as the inbox keeps it."""
    page = channel.fetch_inbound(account, "")
    [item] = [one for one in page.items if one.network_id == comment_id]
    return item


def _reply_to(item) -> ReplyTo:
    return ReplyTo(item.network_id, item.thread_id, item.raw)


def _own_replies(graph_server):
    return [c for c in graph_server.comments if c["author"] == ACCOUNT]


def _hints(**overrides):
    values = {"since": datetime.now(UTC) - timedelta(seconds=5), "media_count": 0}
    return ReconcileHints(**(values | overrides))


def _answer(channel, account, item, text=ANSWER, media=()):
    return channel.publish(
        account, text, list(media), idempotency_key=KEY, reply_to=_reply_to(item)
    )


def test_the_channel_answers_with_the_permission_it_holds(channel):
    assert channel.replies is True
    assert "instagram_manage_comments" in channel.scopes


def test_a_comment_heard_is_answered_under_it_on_its_post(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])

    published = _answer(channel, instagram_account, item)

    [reply] = _own_replies(graph_server)
    assert reply["parent"] == question["id"]
    assert reply["on"] == media["id"] == item.thread_id
    assert reply["text"] == ANSWER
    assert published.external_id == reply["id"]
    # Instagram gives a comment no address: the post's stands in.
    assert published.external_url == media["permalink"]
    assert ("POST", f"/{GRAPH_VERSION}/{question['id']}/replies") in graph_server.requests
    assert len(graph_server.ig_media) == 1


def test_the_accounts_answer_is_not_heard_back_as_an_item(
    channel, instagram_account, graph_server, media, question
):
    first = channel.fetch_inbound(instagram_account, "")
    [item] = first.items
    _answer(channel, instagram_account, item)

    later = channel.fetch_inbound(instagram_account, first.cursor)

    assert later.items == []


def test_an_answer_to_a_reply_goes_under_its_top_level_comment(
    channel, instagram_account, graph_server, media, question
):
    follow_up = graph_server.add_ig_comment(
        media["id"], "Which lake?", parent=question["id"], username="bo.baker"
    )
    item = _heard(channel, instagram_account, follow_up["id"])

    _answer(channel, instagram_account, item)

    [reply] = _own_replies(graph_server)
    assert reply["parent"] == question["id"]
    assert ("POST", f"/{GRAPH_VERSION}/{question['id']}/replies") in graph_server.requests


def test_a_hidden_comment_cannot_be_answered_in_metas_words(
    channel, instagram_account, graph_server, media
):
    hidden = graph_server.add_ig_comment(media["id"], "Spam spam.", hidden=True)
    item = _heard(channel, instagram_account, hidden["id"])

    with pytest.raises(PermanentError, match="hidden comment"):
        _answer(channel, instagram_account, item)

    assert item.deleted is True
    assert _own_replies(graph_server) == []


def test_a_reply_with_images_is_refused_before_anything_is_sent(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    before = list(graph_server.requests)

    with pytest.raises(PermanentError, match="text only"):
        _answer(channel, instagram_account, item, media=[{"position": 0, "sha256": "0" * 64}])

    assert graph_server.requests == before


def test_without_the_permission_to_manage_comments_it_is_refused_naming_it(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    token = graph_server.tokens[instagram_account.access_token]
    token.scopes = frozenset(PERMISSIONS - {"instagram_manage_comments"})

    with pytest.raises(PermanentError, match="instagram_manage_comments"):
        _answer(channel, instagram_account, item)


def test_an_expired_token_is_auth_expired_without_asking_meta(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    instagram_account.expires_at = timezone.now() - timedelta(minutes=1)
    instagram_account.save(update_fields=["expires_at"])
    before = list(graph_server.requests)

    with pytest.raises(AuthExpired, match="expired"):
        _answer(channel, instagram_account, item)

    assert graph_server.requests == before


def test_a_rate_limit_on_the_reply_is_retryable_and_made_nothing(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    graph_server.fail_next("ig_reply", "429", minutes=2)

    with pytest.raises(RetryableError) as caught:
        _answer(channel, instagram_account, item)

    assert caught.value.retry_after == 120
    assert _own_replies(graph_server) == []


def test_the_accounts_profile_stands_in_when_the_posts_address_cannot_be_read(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    graph_server.fail_next("node", "500")

    published = _answer(channel, instagram_account, item)

    assert published.external_url == "https://www.instagram.com/north.desk/"


# --- lost answers: reconcile ------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(("drop", {}), id="answer-dropped"),
        pytest.param(("500", {"after": True}), id="500-after-the-reply"),
        pytest.param(("transient", {"after": True}), id="503-code-2"),
    ],
)
def test_a_reply_made_before_its_answer_was_lost_is_found_and_made_once(
    channel, instagram_account, graph_server, media, question, failure
):
    item = _heard(channel, instagram_account, question["id"])
    hints = _hints()
    mode, options = failure
    graph_server.fail_next("ig_reply", mode, **options)

    with pytest.raises(UnknownOutcome):
        _answer(channel, instagram_account, item)
    found = channel.reconcile(
        instagram_account, ANSWER, idempotency_key=KEY, hints=hints, reply_to=_reply_to(item)
    )

    [reply] = _own_replies(graph_server)
    assert found is not None
    assert found.external_id == reply["id"]
    assert found.external_url == media["permalink"]
    assert ("GET", f"/{GRAPH_VERSION}/{question['id']}/replies") in graph_server.requests


@pytest.mark.usefixtures("short_network_timeout")
def test_a_reply_that_timed_out_after_the_server_made_it_is_reconciled(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    graph_server.fail_next("ig_reply", "slow")

    with pytest.raises(UnknownOutcome):
        _answer(channel, instagram_account, item)
    found = channel.reconcile(
        instagram_account, ANSWER, idempotency_key=KEY, hints=_hints(), reply_to=_reply_to(item)
    )

    [reply] = _own_replies(graph_server)
    assert found is not None and found.external_id == reply["id"]


def test_an_answer_without_an_id_is_looked_for_rather_than_sent_again(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    graph_server.fail_next("ig_reply", "malformed", after=True)

    published = _answer(channel, instagram_account, item)

    [reply] = _own_replies(graph_server)
    assert published.external_id == reply["id"]


def test_reconcile_finds_nothing_when_nothing_was_answered(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])

    found = channel.reconcile(
        instagram_account, ANSWER, idempotency_key=KEY, hints=_hints(), reply_to=_reply_to(item)
    )

    assert found is None


def test_a_post_or_a_comment_elsewhere_of_the_same_text_is_never_taken_for_the_reply(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    hints = _hints()
    # The same words as a post of the account, as its comment on the post itself, and as its
    # reply under another comment: none of them answers this item.
    graph_server.add_ig_media(IG_ID, ANSWER)
    graph_server.add_ig_comment(media["id"], ANSWER, username="north.desk")
    other = graph_server.add_ig_comment(media["id"], "So pretty!")
    graph_server.add_ig_comment(media["id"], ANSWER, parent=other["id"], username="north.desk")

    found = channel.reconcile(
        instagram_account, ANSWER, idempotency_key=KEY, hints=hints, reply_to=_reply_to(item)
    )

    assert found is None


def test_someone_elses_reply_of_the_same_text_is_not_ours(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    graph_server.add_ig_comment(media["id"], ANSWER, parent=question["id"], username="cy.copy")

    found = channel.reconcile(
        instagram_account, ANSWER, idempotency_key=KEY, hints=_hints(), reply_to=_reply_to(item)
    )

    assert found is None


def test_the_accounts_reply_is_known_by_its_username_too(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    hints = _hints()
    # Made in the app: Meta names the account by its username.
    made = graph_server.add_ig_comment(
        media["id"], ANSWER, parent=question["id"], username="north.desk"
    )

    found = channel.reconcile(
        instagram_account, ANSWER, idempotency_key=KEY, hints=hints, reply_to=_reply_to(item)
    )

    assert found is not None and found.external_id == made["id"]


def test_the_accounts_same_answer_before_the_first_try_is_not_this_one(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    graph_server.add_ig_comment(
        media["id"],
        ANSWER,
        parent=question["id"],
        username="north.desk",
        created=time.time() - 3600,
    )

    found = channel.reconcile(
        instagram_account, ANSWER, idempotency_key=KEY, hints=_hints(), reply_to=_reply_to(item)
    )

    assert found is None


def test_two_answers_of_the_text_since_the_first_try_are_for_a_person_to_decide(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    hints = _hints()
    for _ in range(2):
        graph_server.add_ig_comment(
            media["id"], ANSWER, parent=question["id"], username="north.desk"
        )

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(
            instagram_account, ANSWER, idempotency_key=KEY, hints=hints, reply_to=_reply_to(item)
        )

    assert len(caught.value.candidates) == 2


def test_a_rate_limit_while_reconciling_is_retryable(
    channel, instagram_account, graph_server, media, question
):
    item = _heard(channel, instagram_account, question["id"])
    graph_server.fail_next("ig_replies", "429", minutes=1)

    with pytest.raises(RetryableError) as caught:
        channel.reconcile(
            instagram_account,
            ANSWER,
            idempotency_key=KEY,
            hints=_hints(),
            reply_to=_reply_to(item),
        )

    assert caught.value.retry_after == 60
