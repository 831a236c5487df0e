"""The Bluesky channel against a PDS test server on 127.0.0.1."""

import time

import pytest

from networks.channels import get_channel
from networks.channels.bluesky import record_key
from networks.channels.errors import (
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.models import SocialAccount
from publishing.models import MediaRendition

from .bluesky_server import TID

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "6f1c2a3e-8f52-4a44-9d0e-0c1d2e3f4a5b"


@pytest.fixture
def channel():
    return get_channel("bluesky")


def test_the_record_key_is_a_tid_derived_from_the_idempotency_key_alone():
    keys = {record_key(f"key-{n}") for n in range(1_000)}

    assert record_key(KEY) == record_key(KEY)
    assert len(keys) == 1_000
    assert all(TID.match(key) for key in keys)


def test_signing_in_keeps_the_session_not_the_password(bluesky_account, bluesky_server):
    account = SocialAccount.objects.get(pk=bluesky_account.pk)

    assert account.access_token == "access-1"
    assert account.refresh_token == "refresh-1"
    assert account.external_id == bluesky_server.did


def test_a_new_session_is_audited_and_one_of_another_account_refused(
    channel, bluesky_account, bluesky_server
):
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(
        action="social_account.token_refreshed", object_id=str(bluesky_account.pk)
    ).exists()
    # The same app password, but the account on file is another DID: nothing is kept.
    before = bluesky_account.access_token
    bluesky_account.external_id = "did:plc:someone-else"
    with pytest.raises(PermanentError, match="not the connected account"):
        channel.create_session(bluesky_account, password=bluesky_server.password)
    assert bluesky_account.access_token == before


def test_a_wrong_app_password_is_auth_expired(channel, bluesky_account):
    with pytest.raises(AuthExpired, match="Invalid identifier or password"):
        channel.create_session(bluesky_account, password="wrong")


def test_it_publishes_text_with_links_mentions_and_tags(channel, bluesky_account, bluesky_server):
    text = "Café 🎉 with @friend.test and @nobody.test: https://example.org/a?b=1 #Launch"

    published = channel.publish(bluesky_account, text, [], idempotency_key=KEY)

    rkey = record_key(KEY)
    [post] = bluesky_server.posts
    assert published.external_id == f"at://{bluesky_server.did}/app.bsky.feed.post/{rkey}"
    assert published.external_url == f"https://bsky.app/profile/north.test/post/{rkey}"
    assert post["text"] == text
    data = text.encode()

    def facet_text(facet):
        return data[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode()

    assert [(facet_text(f), f["features"][0]) for f in post["facets"]] == [
        (
            "@friend.test",
            {"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:friend7test"},
        ),
        (
            "https://example.org/a?b=1",
            {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/a?b=1"},
        ),
        ("#Launch", {"$type": "app.bsky.richtext.facet#tag", "tag": "Launch"}),
    ]


def test_it_publishes_two_images_with_alt_text_using_the_rendition(
    channel, bluesky_account, bluesky_server, two_images
):
    large = MediaRendition.objects.get(media__sha256=two_images[1]["sha256"], channel="bluesky")

    channel.publish(bluesky_account, "Two pictures.", two_images, idempotency_key=KEY)

    [post] = bluesky_server.posts
    images = post["embed"]["images"]
    assert [image["alt"] for image in images] == ["A red square.", "Static on a screen."]
    assert images[1]["image"]["size"] == large.bytes <= 1_000_000
    assert images[1]["aspectRatio"] == {"width": large.width, "height": large.height}
    assert images[0]["image"]["mimeType"] == "image/jpeg"


@pytest.mark.usefixtures("short_network_timeout")
def test_a_timeout_after_the_server_stored_the_post_posts_once(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.fail_next("com.atproto.repo.createRecord", "slow")

    with pytest.raises(UnknownOutcome):
        channel.publish(bluesky_account, "Doors open at 9.", [], idempotency_key=KEY)
    time.sleep(0.6)
    found = channel.reconcile(bluesky_account, "Doors open at 9.", idempotency_key=KEY)
    again = channel.publish(bluesky_account, "Doors open at 9.", [], idempotency_key=KEY)

    assert len(bluesky_server.posts) == 1
    assert found is not None
    assert again.external_id == found.external_id


def test_reconcile_finds_nothing_when_nothing_was_posted(channel, bluesky_account):
    assert channel.reconcile(bluesky_account, "Never sent.", idempotency_key=KEY) is None


def test_an_expired_session_is_refreshed_and_the_publish_completes(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.expire_access_tokens()

    channel.publish(bluesky_account, "Still here.", [], idempotency_key=KEY)

    assert len(bluesky_server.posts) == 1
    assert bluesky_server.refresh_calls == 1
    account = SocialAccount.objects.get(pk=bluesky_account.pk)
    assert (account.access_token, account.refresh_token) == ("access-2", "refresh-2")


def test_a_refused_refresh_is_auth_expired(channel, bluesky_account, bluesky_server):
    bluesky_server.expire_access_tokens()
    bluesky_server.revoke_refresh_tokens()

    with pytest.raises(AuthExpired, match="sign in again"):
        channel.publish(bluesky_account, "Still here.", [], idempotency_key=KEY)

    assert bluesky_server.posts == []


def test_a_rate_limit_is_retryable_after_the_reset_time(channel, bluesky_account, bluesky_server):
    bluesky_server.fail_next("com.atproto.repo.createRecord", "429", reset_in=300)

    with pytest.raises(RetryableError) as caught:
        channel.publish(bluesky_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 429
    assert 290 <= caught.value.retry_after <= 300


def test_a_server_error_with_no_record_behind_it_is_an_unknown_outcome(
    channel, bluesky_account, bluesky_server
):
    # A 5xx does not prove the post was not made (issue 11): dispatch looks before retrying.
    bluesky_server.fail_next("com.atproto.repo.createRecord", "502")

    with pytest.raises(UnknownOutcome) as caught:
        channel.publish(bluesky_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 502
    assert bluesky_server.posts == []


def test_a_502_after_the_record_was_stored_is_the_post(channel, bluesky_account, bluesky_server):
    bluesky_server.fail_next("com.atproto.repo.createRecord", "502", after=True)

    published = channel.publish(bluesky_account, "Hello.", [], idempotency_key=KEY)

    [record] = bluesky_server.records.values()
    assert published.external_id == record["uri"]


def test_a_dropped_answer_after_the_record_was_stored_is_found_and_posted_once(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.fail_next("com.atproto.repo.createRecord", "drop")

    with pytest.raises(UnknownOutcome):
        channel.publish(bluesky_account, "Hello.", [], idempotency_key=KEY)
    found = channel.reconcile(bluesky_account, "Hello.", idempotency_key=KEY)
    again = channel.publish(bluesky_account, "Hello.", [], idempotency_key=KEY)

    [record] = bluesky_server.records.values()
    assert found.external_id == again.external_id == record["uri"]


def test_a_5xx_whose_record_cannot_be_checked_is_an_unknown_outcome(
    channel, bluesky_account, bluesky_server
):
    bluesky_server.fail_next("com.atproto.repo.createRecord", "500")
    bluesky_server.fail_next("com.atproto.repo.getRecord", "503")

    with pytest.raises(UnknownOutcome, match="could not be checked"):
        channel.publish(bluesky_account, "Hello.", [], idempotency_key=KEY)


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("503", {}),
        ("page", {"status": 404}),
        ("page", {"status": 502}),
        ("200", {}),
        ("400", {"error": "RepoNotFound", "message": "Could not find repo: did:plc:x"}),
    ],
)
def test_an_answer_that_is_neither_the_record_nor_record_not_found_says_nothing(
    channel, bluesky_account, bluesky_server, mode, options
):
    bluesky_server.fail_next("com.atproto.repo.getRecord", mode, **options)

    with pytest.raises(RetryableError):
        channel.reconcile(bluesky_account, "Hello.", idempotency_key=KEY)


def test_an_invalid_record_is_permanent_with_the_servers_message(
    channel, bluesky_account, bluesky_server
):
    with pytest.raises(PermanentError) as caught:
        channel.publish(bluesky_account, "x" * 301, [], idempotency_key=KEY)

    assert caught.value.http_status == 400
    assert "must not be longer than 300 graphemes" in str(caught.value)
    assert bluesky_server.posts == []


def test_an_image_over_the_blob_limit_is_refused_before_sending(
    channel, bluesky_account, bluesky_server, two_images
):
    MediaRendition.objects.filter(channel="bluesky").delete()  # only the 2 MB+ original is left

    with pytest.raises(PermanentError, match="1,000,000"):
        channel.publish(bluesky_account, "Pictures.", two_images, idempotency_key=KEY)

    assert bluesky_server.posts == []


def test_a_private_address_is_refused_unless_allowed(
    channel, bluesky_account, bluesky_server, settings
):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = []
    before = len(bluesky_server.requests)

    with pytest.raises(PermanentError, match="not a public address"):
        channel.publish(bluesky_account, "Hello.", [], idempotency_key=KEY)
    with pytest.raises(PermanentError, match="not a public address"):
        channel.reconcile(bluesky_account, "Hello.", idempotency_key=KEY)

    assert len(bluesky_server.requests) == before


def test_the_access_tokens_expiry_is_read_from_its_jwt_so_renewal_can_come_ahead():
    import base64
    import json
    from datetime import UTC, datetime

    from networks.channels.bluesky import access_token_expiry

    def jwt(claims) -> str:
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"eyJhbGciOiJFUzI1NksifQ.{body}.c2lnbmF0dXJl"

    assert access_token_expiry(jwt({"exp": 1_900_000_000, "sub": "did:plc:x"})) == (
        datetime.fromtimestamp(1_900_000_000, tz=UTC)
    )
    for token in ("not-a-jwt", jwt({"sub": "no expiry"}), jwt(["a", "list"]), "a.b%%.c"):
        assert access_token_expiry(token) is None
