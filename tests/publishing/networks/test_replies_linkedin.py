"""Replies on LinkedIn: a comment heard by fetch_inbound, answered by the Page as a comment
under it (comments-api, Create a Comment), against the LinkedIn test server on 127.0.0.1; and
the reply found again by reconcile when LinkedIn's answer was lost."""

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from networks.channels import get_channel
from networks.channels import linkedin as linkedin_module
from networks.channels.base import ReconcileHints, ReplyTo
from networks.channels.errors import (
    AmbiguousMatch,
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

PAGE = "urn:li:organization:2414183"
ANA = "urn:li:person:ana111"
BEN = "urn:li:person:ben222"
KEY = "6f1c0e52-4b7d-4c55-9d0e-1a2b3c4d5e6f"


@pytest.fixture
def channel():
    return get_channel("linkedin")


def publish(channel, account, text: str) -> str:
    """One of our posts, as dispatch leaves it: its external_id."""
    return channel.publish(account, channel.render(text), [], idempotency_key=text).external_id


def heard(channel, account, server, post: str, text: str, *, actor: str = ANA, parent: str = ""):
    """The Inbound fetch_inbound gives for a comment someone makes now on `post`."""
    cursor = channel.fetch_inbound(account, "").cursor
    urn = server.add_comment(post, text, actor=actor, parent=parent)
    [item] = [i for i in channel.fetch_inbound(account, cursor).items if i.network_id == urn]
    return item


def reply_to(item) -> ReplyTo:
    return ReplyTo(item.network_id, item.thread_id, item.raw)


def since(seconds: float = 5) -> ReconcileHints:
    return ReconcileHints(since=datetime.now(UTC) - timedelta(seconds=seconds), media_count=0)


def test_linkedin_takes_replies(channel):
    assert channel.replies is True


# --- a reply is a comment under the item ------------------------------------------------------


def test_a_comment_heard_is_answered_by_the_page_under_that_comment(
    channel, linkedin_account, linkedin_server
):
    # Given a comment on our post, as fetch_inbound gave it
    post = publish(channel, linkedin_account, "Our clinic opens on Monday.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Which clinic?")

    # When the Page answers it (render()'s text, as dispatch sends it)
    text = "Ward 3 (east wing), from 9am #north"
    published = channel.publish(
        linkedin_account, channel.render(text), [], idempotency_key=KEY, reply_to=reply_to(item)
    )

    # Then LinkedIn holds a comment by the Page under that comment, in that post's thread
    [reply] = linkedin_server.replies_by(PAGE)
    assert reply["parent"] == item.network_id
    assert reply["post"] == post == item.thread_id
    assert reply["text"] == text  # plain text: a comment is not in the little format
    assert published.external_id == reply["urn"]
    assert published.external_id.startswith("urn:li:comment:(urn:li:activity:")
    activity = linkedin_server.activities[post]
    assert published.external_url == (
        f"https://www.linkedin.com/feed/update/{activity}/"
        f"?commentUrn={quote(item.network_id, safe='')}&replyUrn={quote(reply['urn'], safe='')}"
    )
    assert published.http_status == 201
    # Nothing else was made: no post, no second comment
    assert len(linkedin_server.comments) == 2
    assert [p["id"] for p in linkedin_server.posts] == [post]


def test_the_reply_is_sent_to_the_comment_with_the_post_as_its_object(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Flu jabs this week.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Where?")

    channel.publish(
        linkedin_account, "At the library.", [], idempotency_key=KEY, reply_to=reply_to(item)
    )

    [(method, path)] = [r for r in linkedin_server.requests if r[0] == "POST" and "social" in r[1]]
    assert path == f"/rest/socialActions/{quote(item.network_id, safe='')}/comments"
    [seen] = [h for h in linkedin_server.headers_seen if h["path"] == path]
    assert seen["version"] == linkedin_module.LINKEDIN_VERSION and seen["restli"] == "2.0.0"


def test_a_reply_to_a_reply_goes_under_the_same_first_level_comment(
    channel, linkedin_account, linkedin_server
):
    # LinkedIn's threads have two levels: an answer to a reply joins the first-level comment.
    post = publish(channel, linkedin_account, "Road closed on Friday.")
    first = linkedin_server.add_comment(post, "Which road?", actor=ANA, age_seconds=60)
    item = heard(
        channel, linkedin_account, linkedin_server, post, "Also: why?", actor=BEN, parent=first
    )
    assert item.in_reply_to_id == first

    published = channel.publish(
        linkedin_account, "Works on the bridge.", [], idempotency_key=KEY, reply_to=reply_to(item)
    )

    [reply] = linkedin_server.replies_by(PAGE)
    assert reply["parent"] == first
    assert published.external_id == reply["urn"]


def test_an_answer_to_the_post_itself_is_a_first_level_comment(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "New opening hours.")

    published = channel.publish(
        linkedin_account,
        "Correction: closed on Sundays.",
        [],
        idempotency_key=KEY,
        reply_to=ReplyTo(post, post),
    )

    [reply] = linkedin_server.replies_by(PAGE)
    assert reply["parent"] == "" and reply["post"] == post
    assert published.external_id == reply["urn"]


@pytest.mark.parametrize("answer", ["header", "body", "both"])
def test_the_new_comment_is_named_whichever_way_linkedin_answers(
    channel, linkedin_account, linkedin_server, answer
):
    post = publish(channel, linkedin_account, "Answer shapes.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Hello?")
    linkedin_server.comment_answer = answer

    published = channel.publish(
        linkedin_account, "Hello!", [], idempotency_key=KEY, reply_to=reply_to(item)
    )

    [reply] = linkedin_server.replies_by(PAGE)
    assert published.external_id == reply["urn"]


def test_our_reply_is_not_heard_back_as_a_comment_that_came(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Heard back?")
    cursor = channel.fetch_inbound(linkedin_account, "").cursor
    question = linkedin_server.add_comment(post, "Is it open?", actor=ANA)
    page = channel.fetch_inbound(linkedin_account, cursor)
    [item] = page.items

    channel.publish(linkedin_account, "Yes.", [], idempotency_key=KEY, reply_to=reply_to(item))
    after = channel.fetch_inbound(linkedin_account, page.cursor)

    assert item.network_id == question
    assert after.items == []


def test_a_post_without_reply_to_is_still_a_post(channel, linkedin_account, linkedin_server):
    channel.publish(linkedin_account, "A plain post.", [], idempotency_key=KEY, reply_to=None)

    assert [p["shown"] for p in linkedin_server.posts] == ["A plain post."]
    assert linkedin_server.comments == []


# --- lost answers and reconcile ---------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(("drop", {}), id="answer-dropped"),
        pytest.param(("500", {"after": True}), id="500-after-making-it"),
        pytest.param(("slow", {}), id="timeout"),
    ],
)
def test_a_reply_made_before_the_answer_was_lost_is_found_not_sent_twice(
    channel, linkedin_account, linkedin_server, failure, request
):
    # Given a post and a comment of our very text elsewhere (a top-level post, a first-level
    # comment on the post, a reply by someone else under the comment)
    text = "Ward 3 (east wing) opens at 9am."
    post = publish(channel, linkedin_account, "Clinic news.")
    item = heard(channel, linkedin_account, linkedin_server, post, "When does it open?")
    linkedin_server.add_post(PAGE, channel.render(text))
    linkedin_server.add_comment(post, text, actor=PAGE)
    linkedin_server.add_comment(post, text, actor=BEN, parent=item.network_id)
    mode, options = failure
    if mode == "slow":
        request.getfixturevalue("short_network_timeout")
    linkedin_server.fail_next("comment_create", mode, **options)

    # When the reply's answer is lost, and reconcile looks
    with pytest.raises(UnknownOutcome):
        channel.publish(
            linkedin_account,
            channel.render(text),
            [],
            idempotency_key=KEY,
            reply_to=reply_to(item),
        )
    # A "slow" answer comes after the server made the comment (server.py): nothing to wait for.
    found = channel.reconcile(
        linkedin_account,
        channel.render(text),
        idempotency_key=KEY,
        hints=since(),
        reply_to=reply_to(item),
    )

    # Then it finds the one reply LinkedIn made, and nothing else
    [ours] = [c for c in linkedin_server.replies_by(PAGE) if c["parent"] == item.network_id]
    assert found is not None
    assert found.external_id == ours["urn"]
    assert "replyUrn=" in found.external_url


def test_a_created_comment_linkedin_does_not_name_is_reconciled(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Unnamed answers.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Anyone?")
    linkedin_server.comment_answer = "none"

    with pytest.raises(UnknownOutcome, match="did not say its URN"):
        channel.publish(linkedin_account, "Here.", [], idempotency_key=KEY, reply_to=reply_to(item))
    found = channel.reconcile(
        linkedin_account, "Here.", idempotency_key=KEY, hints=since(), reply_to=reply_to(item)
    )

    [reply] = linkedin_server.replies_by(PAGE)
    assert found is not None and found.external_id == reply["urn"]


def test_reconcile_finds_no_reply_when_none_was_made(channel, linkedin_account, linkedin_server):
    text = "Thanks, we will look into it."
    post = publish(channel, linkedin_account, text)  # our post of the same text
    item = heard(channel, linkedin_account, linkedin_server, post, "Broken link.")
    linkedin_server.add_comment(post, text, actor=PAGE)  # a first-level comment of it
    linkedin_server.add_comment(post, text, actor=ANA, parent=item.network_id)  # not ours

    found = channel.reconcile(
        linkedin_account,
        channel.render(text),
        idempotency_key=KEY,
        hints=since(),
        reply_to=reply_to(item),
    )

    assert found is None


def test_a_reply_of_the_same_text_from_before_the_first_try_is_not_ours(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Earlier answers.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Again?")
    old = linkedin_server.add_comment(
        post, "Yes.", actor=PAGE, parent=item.network_id, age_seconds=3600
    )

    found = channel.reconcile(
        linkedin_account, "Yes.", idempotency_key=KEY, hints=since(), reply_to=reply_to(item)
    )
    held = channel.reconcile(
        linkedin_account,
        "Yes.",
        idempotency_key=KEY,
        reply_to=reply_to(item),
        hints=ReconcileHints(
            since=datetime.now(UTC) - timedelta(hours=2), known_ids=frozenset({old})
        ),
    )

    assert found is None
    assert held is None


def test_two_replies_of_the_same_text_since_the_first_try_are_ambiguous(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Twins.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Twice?")
    first = linkedin_server.add_comment(post, "Once.", actor=PAGE, parent=item.network_id)
    second = linkedin_server.add_comment(post, "Once.", actor=PAGE, parent=item.network_id)

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(
            linkedin_account, "Once.", idempotency_key=KEY, hints=since(), reply_to=reply_to(item)
        )

    assert {c.external_id for c in caught.value.candidates} == {first, second}


def test_reconcile_of_a_reply_to_a_deleted_comment_finds_none(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Moderated.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Spam.")
    linkedin_server.delete_comment(item.network_id)

    assert (
        channel.reconcile(
            linkedin_account, "No.", idempotency_key=KEY, hints=since(), reply_to=reply_to(item)
        )
        is None
    )


# --- refusals ---------------------------------------------------------------------------------


def test_a_rate_limited_reply_is_retryable_and_nothing_was_made(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Busy day.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Hello?")
    linkedin_server.fail_next("comment_create", "429", retry_after=30)

    with pytest.raises(RetryableError) as caught:
        channel.publish(linkedin_account, "Hi.", [], idempotency_key=KEY, reply_to=reply_to(item))

    assert not isinstance(caught.value, UnknownOutcome)
    assert caught.value.retry_after == 30
    assert linkedin_server.replies_by(PAGE) == []


def test_an_expired_token_without_a_refresh_token_is_auth_expired(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Expiring.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Hello?")
    linkedin_account.set_tokens(access_token=linkedin_account.access_token, refresh_token="")
    linkedin_account.save()
    linkedin_server.expire(linkedin_account.access_token)

    with pytest.raises(AuthExpired):
        channel.publish(linkedin_account, "Hi.", [], idempotency_key=KEY, reply_to=reply_to(item))


def test_a_reply_to_a_comment_deleted_since_is_permanent(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Deleted since.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Gone soon.")
    linkedin_server.delete_comment(item.network_id)

    with pytest.raises(PermanentError) as caught:
        channel.publish(linkedin_account, "Hi.", [], idempotency_key=KEY, reply_to=reply_to(item))

    assert caught.value.http_status == 404


def test_a_reply_longer_than_a_comment_is_refused_before_sending(
    channel, linkedin_account, linkedin_server
):
    post = publish(channel, linkedin_account, "Long answers.")
    item = heard(channel, linkedin_account, linkedin_server, post, "Tell me more.")
    calls = len(linkedin_server.requests)

    with pytest.raises(PermanentError, match="1,250"):
        channel.publish(
            linkedin_account, "a" * 1_251, [], idempotency_key=KEY, reply_to=reply_to(item)
        )

    assert len(linkedin_server.requests) == calls


def test_a_reply_with_images_is_refused(channel, linkedin_account, linkedin_server, two_images):
    post = publish(channel, linkedin_account, "Pictures?")
    item = heard(channel, linkedin_account, linkedin_server, post, "Photo please.")

    with pytest.raises(PermanentError, match="without images"):
        channel.publish(
            linkedin_account, "Here.", two_images, idempotency_key=KEY, reply_to=reply_to(item)
        )


def test_an_item_that_is_not_a_linkedin_comment_or_post_is_refused(channel, linkedin_account):
    with pytest.raises(PermanentError, match="no comment or post"):
        channel.publish(linkedin_account, "Hi.", [], idempotency_key=KEY, reply_to=ReplyTo("12345"))
