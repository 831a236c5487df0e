"""Answering on Mastodon (issue 17): an item read by fetch_inbound answered with publish(...,
reply_to=…), as a reply in its thread on a Mastodon test server on 127.0.0.1, found again by
reconcile when the answer was lost."""

from datetime import UTC, datetime, timedelta

import pytest

from networks.channels import ReplyTo, get_channel
from networks.channels import mastodon as mastodon_module
from networks.channels.base import ReconcileHints
from networks.channels.errors import (
    AmbiguousMatch,
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "3d0b8a52-4c1e-4f7a-9b6d-5e2f1a0c9d87"
ANSWER = "@friend@other.example The library opens at 9 tomorrow."


@pytest.fixture
def channel():
    return get_channel("mastodon")


def inbound(channel, account, cursor: str = ""):
    """The one item fetch_inbound returns now."""
    [item] = channel.fetch_inbound(account, cursor).items
    return item


def reply_to(item) -> ReplyTo:
    """What the inbox keeps of an item and hands to dispatch."""
    return ReplyTo(item.network_id, item.thread_id, item.raw)


def hints(**overrides) -> ReconcileHints:
    values = {"since": datetime.now(UTC) - timedelta(seconds=5), "media_count": 0}
    return ReconcileHints(**(values | overrides))


def test_mastodon_takes_replies(channel):
    assert channel.replies is True


def test_an_item_answered_is_a_reply_to_it_on_the_server(
    channel, mastodon_account, mastodon_server
):
    # Given a question someone asked us, as the inbox read it
    question = mastodon_server.add_mention("@north When does the library open?")
    item = inbound(channel, mastodon_account)

    # When our answer is published as a reply to it
    published = channel.publish(
        mastodon_account, ANSWER, [], idempotency_key=KEY, reply_to=reply_to(item)
    )

    # Then the server holds it as a reply to that status, by us, that mentions its author
    [reply] = mastodon_server.replies_to(question["id"])
    assert published.external_id == reply["id"]
    assert published.external_url == reply["url"]
    assert reply["in_reply_to_account_id"] == question["account"]["id"]
    assert reply["visibility"] == "public"
    assert [m["acct"] for m in reply["mentions"]] == ["friend@other.example"]
    assert question["replies_count"] == 1


def test_a_reply_deep_in_a_thread_stays_in_that_thread(channel, mastodon_account, mastodon_server):
    # Given our post, a reply to it, and a reply to that reply
    ours = channel.publish(mastodon_account, "Roadworks on Main St.", [], idempotency_key=KEY)
    first = mastodon_server.add_reply(ours.external_id, "How long?", by="ann@other.example")
    start = channel.fetch_inbound(mastodon_account, "")
    second = mastodon_server.add_mention(
        "@north @ann@other.example And the buses?", by="bob@third.example", in_reply_to=first["id"]
    )
    item = inbound(channel, mastodon_account, start.cursor)
    assert (item.network_id, item.thread_id) == (second["id"], first["id"])

    # When we answer the last one
    published = channel.publish(
        mastodon_account,
        "@bob@third.example Buses go round by Mill Lane.",
        [],
        idempotency_key="other-key",
        reply_to=reply_to(item),
    )

    # Then the answer hangs under it, in the thread our post started
    [reply] = mastodon_server.replies_to(second["id"])
    assert reply["id"] == published.external_id
    assert mastodon_server.thread_root(published.external_id) == ours.external_id


def test_a_reply_to_a_direct_message_stays_direct(channel, mastodon_account, mastodon_server):
    question = mastodon_server.add_mention("@north My bin was not emptied.", visibility="direct")
    item = inbound(channel, mastodon_account)
    assert item.kind == "message"

    channel.publish(
        mastodon_account,
        "@friend@other.example Sorry, we will send the crew today.",
        [],
        idempotency_key=KEY,
        reply_to=reply_to(item),
    )

    [reply] = mastodon_server.replies_to(question["id"])
    assert reply["visibility"] == "direct"
    assert [m["acct"] for m in reply["mentions"]] == ["friend@other.example"]
    # A direct reply does not count in the parent's replies_count (not distributable).
    assert question["replies_count"] == 0


@pytest.mark.parametrize("visibility", ["unlisted", "private"])
def test_a_reply_is_never_more_public_than_what_it_answers(
    channel, mastodon_account, mastodon_server, visibility
):
    question = mastodon_server.add_mention("@north Question?", visibility=visibility)
    item = inbound(channel, mastodon_account)

    channel.publish(mastodon_account, ANSWER, [], idempotency_key=KEY, reply_to=reply_to(item))

    [reply] = mastodon_server.replies_to(question["id"])
    assert reply["visibility"] == visibility


def test_a_direct_reply_that_does_not_mention_the_author_is_refused_before_sending(
    channel, mastodon_account, mastodon_server
):
    mastodon_server.add_mention("@north My address is private.", visibility="direct")
    item = inbound(channel, mastodon_account)

    with pytest.raises(PermanentError, match="@friend@other.example"):
        channel.publish(
            mastodon_account, "Thanks, noted.", [], idempotency_key=KEY, reply_to=reply_to(item)
        )

    assert mastodon_server.statuses == []
    assert ("POST", "/api/v1/statuses") not in mastodon_server.requests


def test_the_channel_sends_the_text_as_approved_and_adds_no_mention(
    channel, mastodon_account, mastodon_server
):
    # Given a public question, answered without the mention
    question = mastodon_server.add_mention("@north Open on Sunday?")
    item = inbound(channel, mastodon_account)

    channel.publish(
        mastodon_account, "Yes, 10 to 4.", [], idempotency_key=KEY, reply_to=reply_to(item)
    )

    # Then it goes out as written: the drafting service is the place for the mention
    [reply] = mastodon_server.replies_to(question["id"])
    assert reply["content"] == "<p>Yes, 10 to 4.</p>"
    assert reply["mentions"] == []
    assert mastodon_module.reply_mention(reply_to(item)) == "@friend@other.example"


def test_the_mention_a_draft_starts_with_counts_as_mastodon_counts_it(channel):
    item = ReplyTo(
        "5", raw={"status": {"id": "5", "account": {"acct": "a_long_name@far.away.example"}}}
    )

    mention = mastodon_module.reply_mention(item)

    assert mention == "@a_long_name@far.away.example"
    assert channel.count(f"{mention} Hi") == len("@a_long_name Hi")


def test_a_mention_of_a_local_author_has_no_domain(channel, mastodon_account, mastodon_server):
    mastodon_server.add_mention("@north Hello from next door.", by="neighbour")
    item = inbound(channel, mastodon_account)

    assert mastodon_module.reply_mention(reply_to(item)) == "@neighbour"
    assert mastodon_module.mentions("@neighbour hi", "neighbour", "mastodon.test")
    assert mastodon_module.mentions("@Neighbour@Mastodon.test hi", "neighbour", "mastodon.test")
    assert not mastodon_module.mentions(
        "@neighbour@elsewhere.example", "neighbour", "mastodon.test"
    )
    # A bare "@user" names an account of our server, never one of another.
    assert not mastodon_module.mentions("@friend hi", "friend@other.example", "mastodon.test")


def test_without_the_payload_the_status_answered_is_read_for_its_visibility(
    channel, mastodon_account, mastodon_server
):
    question = mastodon_server.add_mention("@north Private question.", visibility="direct")

    channel.publish(
        mastodon_account,
        "@friend@other.example Answered privately.",
        [],
        idempotency_key=KEY,
        reply_to=ReplyTo(question["id"]),
    )

    [reply] = mastodon_server.replies_to(question["id"])
    assert reply["visibility"] == "direct"
    assert ("GET", f"/api/v1/statuses/{question['id']}") in mastodon_server.requests


def test_a_reply_to_a_status_deleted_since_is_permanent(channel, mastodon_account, mastodon_server):
    question = mastodon_server.add_mention("@north Oops.")
    item = inbound(channel, mastodon_account)
    mastodon_server.delete_status(question["id"])

    with pytest.raises(PermanentError, match="does not appear to exist"):
        channel.publish(mastodon_account, ANSWER, [], idempotency_key=KEY, reply_to=reply_to(item))

    assert mastodon_server.statuses == []


def test_a_reply_sent_twice_with_its_key_is_made_once(channel, mastodon_account, mastodon_server):
    question = mastodon_server.add_mention("@north Question?")
    item = inbound(channel, mastodon_account)

    first = channel.publish(
        mastodon_account, ANSWER, [], idempotency_key=KEY, reply_to=reply_to(item)
    )
    again = channel.publish(
        mastodon_account, ANSWER, [], idempotency_key=KEY, reply_to=reply_to(item)
    )

    assert first.external_id == again.external_id
    assert len(mastodon_server.replies_to(question["id"])) == 1


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(("drop", {}), id="answer-dropped"),
        pytest.param(("502", {"after": True}), id="502"),
    ],
)
def test_a_reply_made_before_the_answer_was_lost_is_found_not_the_post_of_the_same_text(
    channel, mastodon_account, mastodon_server, failure
):
    # Given a question, and a post of ours with the very text of the answer
    question = mastodon_server.add_mention("@north Question?")
    item = inbound(channel, mastodon_account)
    post = mastodon_server.add_status(ANSWER)
    # and a server that ignores Idempotency-Key and loses the answer after making the reply
    mastodon_server.idempotency_supported = False
    mode, options = failure
    mastodon_server.fail_next("statuses", mode, **options)

    # When the publish fails, reconcile looks for the reply
    with pytest.raises(UnknownOutcome):
        channel.publish(mastodon_account, ANSWER, [], idempotency_key=KEY, reply_to=reply_to(item))
    found = channel.reconcile(
        mastodon_account, ANSWER, idempotency_key=KEY, hints=hints(), reply_to=reply_to(item)
    )

    # Then it finds the reply, not the post, and asked for the account's replies
    [reply] = mastodon_server.replies_to(question["id"])
    assert found is not None
    assert (found.external_id, found.external_url) == (reply["id"], reply["url"])
    assert found.external_id != post["id"]
    assert mastodon_server.account_status_queries[-1]["exclude_replies"] == ["false"]


@pytest.mark.usefixtures("short_network_timeout")
def test_a_reply_that_timed_out_is_found_and_not_sent_again(
    channel, mastodon_account, mastodon_server
):
    question = mastodon_server.add_mention("@north Question?")
    item = inbound(channel, mastodon_account)
    mastodon_server.fail_next("statuses", "slow")

    with pytest.raises(UnknownOutcome):
        channel.publish(mastodon_account, ANSWER, [], idempotency_key=KEY, reply_to=reply_to(item))
    # The server made the reply before it held its answer (server.py): nothing to wait for.
    found = channel.reconcile(
        mastodon_account, ANSWER, idempotency_key=KEY, reply_to=reply_to(item)
    )

    [reply] = mastodon_server.replies_to(question["id"])
    assert found is not None and found.external_id == reply["id"]


def test_reconcile_of_a_reply_never_sent_finds_nothing_even_with_a_post_of_its_text(
    channel, mastodon_account, mastodon_server
):
    mastodon_server.add_mention("@north Question?")
    item = inbound(channel, mastodon_account)
    mastodon_server.add_status(ANSWER)

    found = channel.reconcile(
        mastodon_account, ANSWER, idempotency_key=KEY, hints=hints(), reply_to=reply_to(item)
    )

    assert found is None


def test_a_reply_to_another_item_is_not_this_reply(channel, mastodon_account, mastodon_server):
    first = mastodon_server.add_mention("@north One?")
    second = mastodon_server.add_mention("@north Two?")
    mastodon_server.add_status(ANSWER, in_reply_to=first["id"])

    found = channel.reconcile(
        mastodon_account,
        ANSWER,
        idempotency_key=KEY,
        hints=hints(),
        reply_to=ReplyTo(second["id"], second["id"]),
    )

    assert found is None


def test_reconcile_of_a_post_is_not_fooled_by_a_reply_of_the_same_text(
    channel, mastodon_account, mastodon_server
):
    question = mastodon_server.add_mention("@north Question?")
    mastodon_server.add_status(ANSWER, in_reply_to=question["id"])

    assert channel.reconcile(mastodon_account, ANSWER, idempotency_key=KEY, hints=hints()) is None


def test_two_replies_of_the_same_text_to_the_item_are_ambiguous(
    channel, mastodon_account, mastodon_server
):
    question = mastodon_server.add_mention("@north Question?")
    item = inbound(channel, mastodon_account)
    made = [mastodon_server.add_status(ANSWER, in_reply_to=question["id"]) for _ in range(2)]

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(
            mastodon_account, ANSWER, idempotency_key=KEY, hints=hints(), reply_to=reply_to(item)
        )

    assert {c.external_id for c in caught.value.candidates} == {s["id"] for s in made}


def test_a_refused_token_is_auth_expired_when_replying(channel, mastodon_account, mastodon_server):
    mastodon_server.add_mention("@north Question?")
    item = inbound(channel, mastodon_account)
    mastodon_account.set_tokens(access_token="revoked-token")
    mastodon_account.save()

    with pytest.raises(AuthExpired):
        channel.publish(mastodon_account, ANSWER, [], idempotency_key=KEY, reply_to=reply_to(item))


def test_a_rate_limited_reconcile_is_retryable(channel, mastodon_account, mastodon_server):
    mastodon_server.add_mention("@north Question?")
    item = inbound(channel, mastodon_account)
    mastodon_server.fail_next("account_statuses", "429", reset_in=60)

    with pytest.raises(RetryableError) as caught:
        channel.reconcile(mastodon_account, ANSWER, idempotency_key=KEY, reply_to=reply_to(item))

    assert 50 <= caught.value.retry_after <= 60
