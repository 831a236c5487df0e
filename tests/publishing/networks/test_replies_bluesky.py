"""Answering what came back on Bluesky (issue 17): publish and reconcile with `reply_to`, an item
read by fetch_inbound, against the PDS test server (which files replies as the AppView does)."""

import pytest

from networks.channels import get_channel
from networks.channels.base import ReplyTo
from networks.channels.bluesky import POST_COLLECTION, record_key
from networks.channels.errors import (
    AmbiguousMatch,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

POST_KEY = "3f2a9c4e-1b7d-4e0a-8c55-0d1e2f3a4b5c"
REPLY_KEY = "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a"
ANSWER = "Yes: the car park opens at 8."


@pytest.fixture
def channel():
    return get_channel("bluesky")


@pytest.fixture
def our_post(channel, bluesky_account):
    """A post North published through the channel: what publish() stored for it."""
    return channel.publish(bluesky_account, "Doors open at 9.", [], idempotency_key=POST_KEY)


def inbound(channel, account, server, make):
    """The item `make()` puts on the server, as fetch_inbound reads it after a first call."""
    first = channel.fetch_inbound(account, "")
    uri = make()
    items = channel.fetch_inbound(account, first.cursor).items
    [item] = [i for i in items if i.network_id == uri]
    return item


def reply_to(item):
    return ReplyTo(item.network_id, item.thread_id, item.raw)


def ref(server, uri):
    """The strongRef of a post on the server, as the AppView gives it."""
    entry, _ = server.find(uri)
    return {"uri": entry["uri"], "cid": entry["cid"]}


def stored(server, published):
    [record] = [r for r in server.records.values() if r["uri"] == published.external_id]
    return record["value"]


def test_bluesky_answers_items(channel):
    assert channel.replies is True


# --- where the reply lands ---------------------------------------------------------------------


def test_a_reply_to_our_post_is_answered_in_our_thread(
    channel, bluesky_account, bluesky_server, our_post
):
    item = inbound(
        channel,
        bluesky_account,
        bluesky_server,
        lambda: bluesky_server.add_reply(our_post.external_id, "Is there parking?"),
    )

    published = channel.publish(
        bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
    )

    rkey = record_key(REPLY_KEY)
    assert published.external_id == f"at://{bluesky_server.did}/{POST_COLLECTION}/{rkey}"
    assert published.external_url == f"https://bsky.app/profile/north.test/post/{rkey}"
    record = stored(bluesky_server, published)
    assert record["text"] == ANSWER
    assert record["reply"] == {
        "root": ref(bluesky_server, our_post.external_id),
        "parent": {"uri": item.network_id, "cid": item.raw["cid"]},
    }
    assert bluesky_server.replies_to(item.network_id) == [published.external_id]
    assert published.external_id in bluesky_server.thread(our_post.external_id)
    assert published.external_id not in bluesky_server.invalid_replies


def test_a_reply_deeper_in_a_thread_keeps_the_threads_root(
    channel, bluesky_account, bluesky_server, our_post
):
    answer = bluesky_server.add_reply(our_post.external_id, "Is it free?")
    item = inbound(
        channel,
        bluesky_account,
        bluesky_server,
        lambda: bluesky_server.add_reply(answer, "And is it open on Sunday?", author="fan.test"),
    )

    published = channel.publish(
        bluesky_account, "It is, every day.", [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
    )

    reply = stored(bluesky_server, published)["reply"]
    assert reply["root"] == ref(bluesky_server, our_post.external_id) != reply["parent"]
    assert reply["parent"] == ref(bluesky_server, item.network_id)
    assert bluesky_server.replies_to(item.network_id) == [published.external_id]
    assert published.external_id in bluesky_server.thread(our_post.external_id)
    assert published.external_id not in bluesky_server.invalid_replies


def test_a_mention_is_answered_as_the_top_of_a_new_thread(channel, bluesky_account, bluesky_server):
    item = inbound(
        channel,
        bluesky_account,
        bluesky_server,
        lambda: bluesky_server.add_mention("When does @north.test open?", author="critic.test"),
    )

    published = channel.publish(
        bluesky_account, "At 9.", [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
    )

    mention = ref(bluesky_server, item.network_id)
    assert stored(bluesky_server, published)["reply"] == {"root": mention, "parent": mention}
    assert bluesky_server.thread(item.network_id) == [published.external_id]
    assert published.external_id not in bluesky_server.invalid_replies


def test_a_reply_with_images_and_a_link_keeps_them(
    channel, bluesky_account, bluesky_server, our_post, two_images
):
    item = inbound(
        channel,
        bluesky_account,
        bluesky_server,
        lambda: bluesky_server.add_reply(our_post.external_id, "Where is it?"),
    )

    published = channel.publish(
        bluesky_account,
        "Here: https://example.org/map",
        two_images,
        idempotency_key=REPLY_KEY,
        reply_to=reply_to(item),
    )

    record = stored(bluesky_server, published)
    assert record["reply"]["parent"]["uri"] == item.network_id
    assert len(record["embed"]["images"]) == 2
    assert record["facets"][0]["features"][0]["uri"] == "https://example.org/map"


def test_a_post_without_reply_to_is_no_reply(channel, bluesky_account, bluesky_server, our_post):
    assert "reply" not in stored(bluesky_server, our_post)


# --- idempotent and reconcilable ---------------------------------------------------------------


@pytest.fixture
def item(channel, bluesky_account, bluesky_server, our_post):
    return inbound(
        channel,
        bluesky_account,
        bluesky_server,
        lambda: bluesky_server.add_reply(our_post.external_id, "Is there parking?"),
    )


def test_a_second_try_of_a_reply_makes_no_second_reply(
    channel, bluesky_account, bluesky_server, item
):
    first = channel.publish(
        bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
    )
    again = channel.publish(
        bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
    )

    assert again.external_id == first.external_id
    assert bluesky_server.replies_to(item.network_id) == [first.external_id]


def test_a_reply_whose_answer_was_lost_is_found_by_reconcile_and_not_sent_again(
    channel, bluesky_account, bluesky_server, item
):
    bluesky_server.fail_next("com.atproto.repo.createRecord", "drop")

    with pytest.raises(UnknownOutcome):
        channel.publish(
            bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
        )
    found = channel.reconcile(
        bluesky_account, ANSWER, idempotency_key=REPLY_KEY, reply_to=reply_to(item)
    )
    again = channel.publish(
        bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
    )

    [reply] = bluesky_server.replies_to(item.network_id)
    assert found.external_id == again.external_id == reply
    assert found.external_url.endswith(f"/post/{record_key(REPLY_KEY)}")


def test_a_502_after_the_reply_was_stored_is_the_reply(
    channel, bluesky_account, bluesky_server, item
):
    bluesky_server.fail_next("com.atproto.repo.createRecord", "502", after=True)

    published = channel.publish(
        bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
    )

    assert bluesky_server.replies_to(item.network_id) == [published.external_id]


def test_reconcile_does_not_take_a_top_level_post_of_the_same_text_for_the_reply(
    channel, bluesky_account, bluesky_server, item
):
    channel.publish(bluesky_account, ANSWER, [], idempotency_key="another-target")

    found = channel.reconcile(
        bluesky_account, ANSWER, idempotency_key=REPLY_KEY, reply_to=reply_to(item)
    )

    assert found is None


def test_a_top_level_post_under_the_replys_key_is_left_to_a_person(
    channel, bluesky_account, bluesky_server, item
):
    # Only a reused idempotency key can put another post under the reply's record key.
    top = channel.publish(bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY)

    with pytest.raises(AmbiguousMatch, match="not a reply") as caught:
        channel.reconcile(
            bluesky_account, ANSWER, idempotency_key=REPLY_KEY, reply_to=reply_to(item)
        )

    assert [c.external_id for c in caught.value.candidates] == [top.external_id]
    assert caught.value.candidates[0].text == ANSWER


def test_a_reply_to_another_item_under_the_replys_key_is_left_to_a_person(
    channel, bluesky_account, bluesky_server, our_post, item
):
    other = inbound(
        channel,
        bluesky_account,
        bluesky_server,
        lambda: bluesky_server.add_reply(our_post.external_id, "Me too.", author="fan.test"),
    )
    channel.publish(
        bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY, reply_to=reply_to(other)
    )

    with pytest.raises(AmbiguousMatch, match=f"a reply to {other.network_id}"):
        channel.reconcile(
            bluesky_account, ANSWER, idempotency_key=REPLY_KEY, reply_to=reply_to(item)
        )


def test_reconcile_of_a_reply_never_sent_finds_nothing(channel, bluesky_account, item):
    found = channel.reconcile(
        bluesky_account, ANSWER, idempotency_key=REPLY_KEY, reply_to=reply_to(item)
    )

    assert found is None


def test_a_reply_whose_check_fails_is_an_unknown_outcome(
    channel, bluesky_account, bluesky_server, item
):
    bluesky_server.fail_next("com.atproto.repo.createRecord", "500")
    bluesky_server.fail_next("com.atproto.repo.getRecord", "503")

    with pytest.raises(UnknownOutcome, match="could not be checked"):
        channel.publish(
            bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
        )


# --- what cannot be answered -------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        lambda raw: raw.pop("cid"),
        lambda raw: raw.update(cid=""),
        lambda raw: raw.update(uri="https://bsky.app/profile/x/post/3k"),
        # A reply whose root was lost: a root guessed wrong would get ours flagged.
        lambda raw: raw["record"]["reply"].pop("root"),
        lambda raw: raw["record"]["reply"]["root"].pop("cid"),
    ],
)
def test_an_item_kept_without_its_references_is_refused_before_sending(
    channel, bluesky_account, bluesky_server, item, change
):
    raw = {**item.raw, "record": {**item.raw["record"]}}
    raw["record"]["reply"] = {k: dict(v) for k, v in raw["record"]["reply"].items()}
    change(raw)
    before = len(bluesky_server.requests)

    with pytest.raises(PermanentError, match="Cannot answer"):
        channel.publish(
            bluesky_account,
            ANSWER,
            [],
            idempotency_key=REPLY_KEY,
            reply_to=ReplyTo(item.network_id, item.thread_id, raw),
        )

    assert len(bluesky_server.requests) == before
    assert bluesky_server.replies_to(item.network_id) == []


def test_a_payload_of_another_post_is_refused(channel, bluesky_account, bluesky_server, item):
    with pytest.raises(PermanentError, match="another post"):
        channel.publish(
            bluesky_account,
            ANSWER,
            [],
            idempotency_key=REPLY_KEY,
            reply_to=ReplyTo("at://did:plc:friend7test/app.bsky.feed.post/3kother", "", item.raw),
        )


def test_the_servers_refusal_of_a_reply_is_permanent_with_its_words(
    channel, bluesky_account, bluesky_server, item
):
    bluesky_server.fail_next(
        "com.atproto.repo.createRecord",
        "400",
        message="Invalid app.bsky.feed.post record: Record/reply/parent must have the property "
        '"cid"',
    )

    with pytest.raises(PermanentError, match="reply/parent"):
        channel.publish(
            bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
        )


def test_a_rate_limited_reply_is_retryable(channel, bluesky_account, bluesky_server, item):
    bluesky_server.fail_next("com.atproto.repo.createRecord", "429", reset_in=60)

    with pytest.raises(RetryableError) as caught:
        channel.publish(
            bluesky_account, ANSWER, [], idempotency_key=REPLY_KEY, reply_to=reply_to(item)
        )

    assert 50 <= caught.value.retry_after <= 60
    assert bluesky_server.replies_to(item.network_id) == []


def test_the_server_flags_a_reply_with_a_wrong_root(
    channel, bluesky_account, bluesky_server, our_post, item
):
    # The check the assertions above rely on: an item passed off as the top of its thread (its
    # reply refs dropped) gets root = parent, which the AppView flags (invalidReplyRoot).
    record = {k: v for k, v in item.raw["record"].items() if k != "reply"}
    raw = {**item.raw, "record": record}

    published = channel.publish(
        bluesky_account,
        ANSWER,
        [],
        idempotency_key=REPLY_KEY,
        reply_to=ReplyTo(item.network_id, item.thread_id, raw),
    )

    assert published.external_id in bluesky_server.invalid_replies
    assert published.external_id not in bluesky_server.thread(our_post.external_id)
    assert published.external_id not in bluesky_server.thread(item.network_id)
