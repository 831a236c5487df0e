"""The Mastodon channel against a Mastodon test server on 127.0.0.1."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from networks.channels import get_channel
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

KEY = "6f1c2a3e-8f52-4a44-9d0e-0c1d2e3f4a5b"


@pytest.fixture
def channel():
    return get_channel("mastodon")


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(mastodon_module, "MEDIA_POLL_SECONDS", 0.01)


def test_it_publishes_text(channel, mastodon_account, mastodon_server):
    published = channel.publish(
        mastodon_account, "Launch window opens at dawn.", [], idempotency_key=KEY
    )

    [status] = mastodon_server.statuses
    assert published.external_id == status["id"]
    assert published.external_url == status["url"]
    assert published.http_status == 200
    assert status["content"] == "<p>Launch window opens at dawn.</p>"
    assert status["visibility"] == "public"


def test_it_publishes_two_images_with_alt_text(
    channel, mastodon_account, mastodon_server, two_images
):
    mastodon_server.processing_polls = 2  # 202, then 206 twice, then 200

    channel.publish(mastodon_account, "Two pictures.", two_images, idempotency_key=KEY)

    [status] = mastodon_server.statuses
    assert [m["description"] for m in status["media_attachments"]] == [
        "A red square.",
        "Static on a screen.",
    ]
    assert [m["meta"]["original"]["width"] for m in status["media_attachments"]] == [640, 2400]
    assert ("GET", f"/api/v1/media/{status['media_attachments'][0]['id']}") in (
        mastodon_server.requests
    )


def test_it_gives_up_on_media_that_never_finishes_processing(
    channel, mastodon_account, mastodon_server, two_images
):
    mastodon_server.processing_polls = 1_000

    with pytest.raises(RetryableError, match="still processing"):
        channel.publish(mastodon_account, "Two pictures.", two_images, idempotency_key=KEY)

    assert mastodon_server.statuses == []


@pytest.mark.usefixtures("short_network_timeout")
def test_a_timeout_after_the_server_stored_the_status_posts_once(
    channel, mastodon_account, mastodon_server
):
    mastodon_server.fail_next("statuses", "slow")
    text = "Doors open at 9.\n\nDetails: https://example.org/a/rather/long/path/to/the/page"

    with pytest.raises(UnknownOutcome):
        channel.publish(mastodon_account, text, [], idempotency_key=KEY)
    time.sleep(0.6)  # let the slow answer finish
    found = channel.reconcile(mastodon_account, text, idempotency_key=KEY)
    again = channel.publish(mastodon_account, text, [], idempotency_key=KEY)

    [status] = mastodon_server.statuses
    assert found is not None and found.external_id == status["id"]
    assert again.external_id == status["id"]


def test_reconcile_finds_nothing_when_nothing_was_posted(channel, mastodon_account):
    assert channel.reconcile(mastodon_account, "Never sent.", idempotency_key=KEY) is None


def test_reconcile_looks_up_the_account_id_when_none_is_stored(
    channel, mastodon_account, mastodon_server
):
    channel.publish(mastodon_account, "Hello @friend@other.example", [], idempotency_key=KEY)
    mastodon_account.external_id = ""

    found = channel.reconcile(mastodon_account, "Hello @friend@other.example", idempotency_key=KEY)

    assert found is not None
    assert found.external_id == mastodon_server.statuses[0]["id"]


def test_an_invalid_token_is_auth_expired(channel, mastodon_account, mastodon_server):
    mastodon_server.tokens.clear()

    with pytest.raises(AuthExpired) as caught:
        channel.publish(mastodon_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 401
    assert "The access token is invalid" in str(caught.value)
    with pytest.raises(AuthExpired):
        channel.refresh_token(mastodon_account)


def test_a_rate_limit_is_retryable_after_the_reset_time(channel, mastodon_account, mastodon_server):
    mastodon_server.fail_next("statuses", "429", reset_in=120)

    with pytest.raises(RetryableError) as caught:
        channel.publish(mastodon_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 429
    assert 110 <= caught.value.retry_after <= 120


def test_a_server_error_is_an_unknown_outcome(channel, mastodon_account, mastodon_server):
    # A 5xx does not prove the server did not make the status (issue 11): look before retrying.
    mastodon_server.fail_next("statuses", "503")

    with pytest.raises(UnknownOutcome) as caught:
        channel.publish(mastodon_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 503
    assert caught.value.retry_after is None


def test_a_validation_error_is_permanent_with_the_servers_message(
    channel, mastodon_account, mastodon_server
):
    with pytest.raises(PermanentError) as caught:
        channel.publish(mastodon_account, "x" * 501, [], idempotency_key=KEY)

    assert caught.value.http_status == 422
    assert "Text character limit of 500 exceeded" in str(caught.value)
    assert mastodon_server.statuses == []


def test_a_too_long_description_is_refused_by_the_server(
    channel, mastodon_account, mastodon_server, two_images
):
    two_images[0]["alt_text"] = "a" * 1_501

    with pytest.raises(PermanentError, match="Description is too long"):
        channel.publish(mastodon_account, "Pictures.", two_images, idempotency_key=KEY)


def test_a_private_address_is_refused_unless_allowed(
    channel, mastodon_account, mastodon_server, settings
):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = []

    with pytest.raises(PermanentError, match="not a public address"):
        channel.publish(mastodon_account, "Hello.", [], idempotency_key=KEY)

    assert mastodon_server.requests == []


def test_a_public_server_must_use_https(channel, mastodon_account):
    mastodon_account.base_url = "http://93.184.215.14"

    with pytest.raises(PermanentError, match="https"):
        channel.publish(mastodon_account, "Hello.", [], idempotency_key=KEY)


def test_a_refused_connection_is_retryable(channel, mastodon_account, mastodon_server):
    mastodon_server.stop()

    with pytest.raises(RetryableError, match="could not connect"):
        channel.publish(mastodon_account, "Hello.", [], idempotency_key=KEY)


# --- issue 11: a server without Idempotency-Key, answers lost or 5xx after creating ---------

MENTION_TEXT = "Launch confirmed, cc @mission_control@mastodon.example"
RICH_TEXT = (
    "Launch confirmed for Friday.\n\nThanks @friend@other.example and "
    "@mission_control@mastodon.example!\nDetails: "
    "https://example.org/launches/2026/friday-morning-window?lang=en\n\n#Space #LaunchDay"
)


def _hints(**overrides):
    values = {"since": datetime.now(UTC) - timedelta(seconds=5), "media_count": 0}
    return ReconcileHints(**(values | overrides))


def test_the_server_without_idempotency_really_posts_twice_when_sent_twice(
    channel, mastodon_account, mastodon_server
):
    mastodon_server.idempotency_supported = False

    channel.publish(mastodon_account, "Twice.", [], idempotency_key=KEY)
    channel.publish(mastodon_account, "Twice.", [], idempotency_key=KEY)

    assert len(mastodon_server.statuses) == 2


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(("drop", {}), id="answer-dropped"),
        pytest.param(("502", {"after": True}), id="502"),
    ],
)
@pytest.mark.parametrize("text", [MENTION_TEXT, RICH_TEXT], ids=["unresolved-mention", "rich"])
def test_a_status_made_before_the_answer_was_lost_is_found_and_posted_once(
    channel, mastodon_account, mastodon_server, failure, text
):
    # Given a server that ignores Idempotency-Key, and loses the answer (or answers 502) after
    # it made the status
    mastodon_server.idempotency_supported = False
    mode, options = failure
    mastodon_server.fail_next("statuses", mode, **options)
    hints = _hints()

    # When the publish fails, reconcile looks for it
    with pytest.raises(UnknownOutcome):
        channel.publish(mastodon_account, text, [], idempotency_key=KEY)
    found = channel.reconcile(mastodon_account, text, idempotency_key=KEY, hints=hints)

    # Then it finds the one status, whose content the server rewrote, and nothing is sent again
    [status] = mastodon_server.statuses
    assert found is not None and found.external_id == status["id"]
    assert "@mission_control@mastodon.example" in status["content"]  # unresolved: kept in full
    if text is RICH_TEXT:
        assert 'class="u-url mention">@<span>friend</span></a>' in status["content"]
        assert "#<span>LaunchDay</span></a>" in status["content"]
        assert '<span class="invisible">https://</span>' in status["content"]


def test_a_status_with_another_number_of_images_is_only_a_near_match(
    channel, mastodon_account, mastodon_server
):
    made = mastodon_server.add_status(MENTION_TEXT, images=1)

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(
            mastodon_account, MENTION_TEXT, idempotency_key=KEY, hints=_hints(media_count=2)
        )

    [candidate] = caught.value.candidates
    assert candidate.external_id == made["id"]
    assert candidate.why == "same text, 1 image instead of 2"
    assert candidate.external_url == made["url"]
    assert "@mission_control@mastodon.example" in candidate.text


def test_a_nearly_identical_status_is_a_near_match(channel, mastodon_account, mastodon_server):
    mastodon_server.add_status(MENTION_TEXT + " Go!")

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(mastodon_account, MENTION_TEXT, idempotency_key=KEY, hints=_hints())

    [candidate] = caught.value.candidates
    assert candidate.why.startswith("text differs: 9")


def test_two_statuses_with_the_text_are_ambiguous(channel, mastodon_account, mastodon_server):
    first = mastodon_server.add_status(MENTION_TEXT)
    second = mastodon_server.add_status(MENTION_TEXT.replace("@mastodon.example", ""))

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(mastodon_account, MENTION_TEXT, idempotency_key=KEY, hints=_hints())

    assert {c.external_id for c in caught.value.candidates} == {first["id"], second["id"]}
    assert {c.why for c in caught.value.candidates} == {"same text"}


def test_statuses_before_the_first_try_or_held_by_other_targets_are_never_ours(
    channel, mastodon_account, mastodon_server
):
    now = datetime.now(UTC)
    mastodon_server.add_status(MENTION_TEXT, created_at=now - timedelta(hours=2))
    held = mastodon_server.add_status(MENTION_TEXT)

    found = channel.reconcile(
        mastodon_account,
        MENTION_TEXT,
        idempotency_key=KEY,
        hints=_hints(since=now - timedelta(minutes=1), known_ids=frozenset({held["id"]})),
    )

    assert found is None
