"""The X channel against an X test server on 127.0.0.1: publishing with images and alt text,
reconcile after a lost answer, token renewal, rate limits, refusals, and connecting (OAuth 2.0
with PKCE through requests-oauthlib, then identify) and revoking."""

import base64
import io
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.utils import timezone
from PIL import Image
from requests_oauthlib import OAuth2Session

from audit.models import AuditEvent
from networks.channels import get_channel
from networks.channels import x as x_module
from networks.channels.base import Identity, ReconcileHints, TokenSet
from networks.channels.errors import (
    AmbiguousMatch,
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.channels.http import network_base_url
from networks.models import SocialAccount
from publishing.models import PublishAttempt

from ...integration.dispatch_support import approved_post
from .conftest import upload
from .x_server import days_ago

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "3d6f0a8e-52a4-4a44-9d0e-0c1d2e3f4a5b"
CALLBACK = "https://cxhub.example.org/accounts/connect/x/callback/"


@pytest.fixture
def channel():
    return get_channel("x")


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(x_module, "MEDIA_POLL_MAX_SECONDS", 0.01)


def _gif(author, org):
    frames = [Image.new("P", (120, 80), colour) for colour in (1, 2, 3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    media = upload(author, org, buffer.getvalue(), "Three flashing frames.", "flash.gif")
    return {
        "position": 0,
        "sha256": media.sha256,
        "alt_text": media.alt_text,
        "mime": media.mime,
        "width": media.width,
        "height": media.height,
    }


# --- publishing -------------------------------------------------------------------------------


def test_it_publishes_text(channel, x_account, x_server):
    published = channel.publish(
        x_account,
        "Doors open at 9 & close at 5: https://example.org/visit",
        [],
        idempotency_key=KEY,
    )

    [tweet] = x_server.tweets_of()
    assert published.external_id == tweet["id"]
    assert published.external_url == f"https://x.com/north_desk/status/{tweet['id']}"
    assert published.http_status == 201
    assert tweet["raw_text"] == "Doors open at 9 & close at 5: https://example.org/visit"
    assert tweet["text"].startswith("Doors open at 9 &amp; close at 5: https://t.co/")


def test_it_publishes_two_images_with_alt_text(channel, x_account, x_server, two_images):
    channel.publish(x_account, "Two pictures.", two_images, idempotency_key=KEY)

    [tweet] = x_server.tweets_of()
    assert [m["alt_text"] for m in tweet["media"]] == ["A red square.", "Static on a screen."]
    assert tweet["media"][0]["width"] == 640
    uploads = [r for r in x_server.requests if r == ("POST", "/2/media/upload")]
    assert len(uploads) == 2
    assert all(len(item["data"]) <= 5 * 1024 * 1024 for item in x_server.media.values())


def test_a_gif_goes_up_in_chunks_and_waits_for_processing(
    channel, x_account, x_server, author, org
):
    x_server.processing_polls = 2

    channel.publish(x_account, "A flashing sign.", [_gif(author, org)], idempotency_key=KEY)

    [tweet] = x_server.tweets_of()
    [media] = tweet["media"]
    assert media["media_key"].startswith("16_")
    assert media["alt_text"] == "Three flashing frames."
    paths = [path for method, path in x_server.requests if "/media/upload" in path]
    assert paths[0] == "/2/media/upload/initialize"
    assert paths[1].endswith("/append") and paths[2].endswith("/finalize")
    assert paths.count("/2/media/upload") == 3  # in progress twice, then succeeded


@pytest.mark.usefixtures("short_network_timeout")
def test_a_timeout_after_x_stored_the_post_is_reconciled_and_posted_once(
    channel, x_account, x_server, two_images
):
    x_server.fail_next("tweets", "slow")
    text = "Tickets & times:\n\nhttps://example.org/a/rather/long/path/to/the/tickets  page"

    # As dispatch does: publish; an unknown outcome is reconciled before any new send.
    with pytest.raises(UnknownOutcome):
        channel.publish(x_account, text, two_images, idempotency_key=KEY)
    time.sleep(0.6)  # the slow answer finishes
    found = channel.reconcile(x_account, text, idempotency_key=KEY)
    # A send anyway (a reconcile that missed it): X refuses the duplicate, which is ours.
    again = channel.publish(x_account, text, two_images, idempotency_key=KEY)

    [tweet] = x_server.tweets_of()
    assert found is not None and found.external_id == tweet["id"]
    assert found.external_url == f"https://x.com/north_desk/status/{tweet['id']}"
    assert again.external_id == tweet["id"]
    assert tweet["text"].endswith(tweet["entities"]["urls"][-1]["url"])  # the media link


def test_reconcile_finds_nothing_when_nothing_was_posted(channel, x_account, x_server):
    x_server.add_tweet(x_server.user_id, "Something else entirely.")

    assert channel.reconcile(x_account, "Never sent.", idempotency_key=KEY) is None


def test_reconcile_reads_the_account_id_when_none_is_stored(channel, x_account, x_server):
    channel.publish(x_account, "Hello from the desk.", [], idempotency_key=KEY)
    x_account.external_id = ""

    found = channel.reconcile(x_account, "Hello from the desk.", idempotency_key=KEY)

    assert found is not None and found.external_id == x_server.tweets_of()[0]["id"]
    assert ("GET", "/2/users/me") in x_server.requests


def test_an_identical_post_from_before_the_first_try_is_not_ours(
    channel, x_account, x_server, author, org
):
    text = "Doors open at 9."
    x_server.add_tweet(x_server.user_id, text, created_at=days_ago(3))
    post = approved_post(author=author, team=org["north"], accounts=[x_account], body=text)
    target = post.targets.get()
    PublishAttempt.objects.create(target=target, number=1, started_at=timezone.now())
    key = str(target.idempotency_key)

    assert channel.reconcile(x_account, text, idempotency_key=key) is None
    with pytest.raises(PermanentError) as refused:
        channel.publish(x_account, text, [], idempotency_key=key)

    assert refused.value.http_status == 403
    assert "duplicate content" in str(refused.value)
    assert "change the text" in str(refused.value)
    assert len(x_server.tweets_of()) == 1


def test_a_duplicate_on_a_retry_not_listed_yet_is_looked_for_again(
    channel, x_account, x_server, author, org
):
    text = "Doors open at 9."
    post = approved_post(author=author, team=org["north"], accounts=[x_account], body=text)
    target = post.targets.get()
    for number in (1, 2):
        PublishAttempt.objects.create(target=target, number=number, started_at=timezone.now())
    key = str(target.idempotency_key)
    x_server.add_tweet(x_server.user_id, text)  # the first try landed; its answer was lost
    x_server.timeline_delay = 60

    with pytest.raises(RetryableError) as caught:
        channel.publish(x_account, text, [], idempotency_key=key)
    x_server.timeline_delay = 0
    found = channel.reconcile(x_account, text, idempotency_key=key)

    assert caught.value.http_status == 403 and caught.value.retry_after == 60
    assert "duplicate content" in str(caught.value)
    [tweet] = x_server.tweets_of()
    assert found is not None and found.external_id == tweet["id"]


# --- issue 11: answers lost or 5xx after X made the post, rewritten text ----------------------

REWRITTEN = (
    "Fish & chips <3 at the harbour tonight,\n\ntickets: "
    "https://example.org/events/2026/harbour-night?ref=cxhub #Harbour #Food"
)


def _hints(**overrides):
    values = {"since": datetime.now(UTC) - timedelta(seconds=5), "media_count": 0}
    return ReconcileHints(**(values | overrides))


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(("drop", {}), id="answer-dropped"),
        pytest.param(("502", {"after": True}), id="502"),
    ],
)
def test_a_post_made_before_the_answer_was_lost_is_found_and_posted_once(
    channel, x_account, x_server, two_images, failure
):
    # Given an X that makes the post, then loses the answer or answers 502
    mode, options = failure
    x_server.fail_next("tweets", mode, **options)
    hints = _hints(media_count=2)

    # When the publish fails, reconcile looks for it
    with pytest.raises(UnknownOutcome):
        channel.publish(x_account, REWRITTEN, two_images, idempotency_key=KEY)
    found = channel.reconcile(x_account, REWRITTEN, idempotency_key=KEY, hints=hints)

    # Then it finds the one post, whose text X rewrote (t.co links, a media link, entities)
    [tweet] = x_server.tweets_of()
    assert found is not None and found.external_id == tweet["id"]
    assert "Fish &amp; chips &lt;3" in tweet["text"] and "https://t.co/" in tweet["text"]
    assert "example.org" not in tweet["text"]


def test_a_post_with_another_number_of_images_is_only_a_near_match(channel, x_account, x_server):
    made = x_server.add_tweet(x_server.user_id, REWRITTEN, images=1)

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(x_account, REWRITTEN, idempotency_key=KEY, hints=_hints(media_count=2))

    [candidate] = caught.value.candidates
    assert candidate.external_id == made["id"]
    assert candidate.why == "same text, 1 image instead of 2"
    assert "Fish & chips <3" in candidate.text and "example.org/events" in candidate.text


def test_a_post_whose_link_leads_elsewhere_is_only_a_near_match(channel, x_account, x_server):
    x_server.add_tweet(x_server.user_id, REWRITTEN.replace("harbour-night", "harbour-day"))

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(x_account, REWRITTEN, idempotency_key=KEY, hints=_hints())

    assert [c.why for c in caught.value.candidates] == ["same text, a different link"]


def test_two_posts_with_the_text_are_ambiguous(channel, x_account, x_server):
    first = x_server.add_tweet(x_server.user_id, REWRITTEN)
    second = x_server.add_tweet(x_server.user_id, REWRITTEN.replace("\n\n", " "))

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(x_account, REWRITTEN, idempotency_key=KEY, hints=_hints())

    assert {c.external_id for c in caught.value.candidates} == {first["id"], second["id"]}


def test_posts_before_the_first_try_or_held_by_other_targets_are_never_ours(
    channel, x_account, x_server
):
    now = datetime.now(UTC)
    x_server.add_tweet(x_server.user_id, REWRITTEN, created_at=now - timedelta(hours=1))
    held = x_server.add_tweet(x_server.user_id, REWRITTEN)

    found = channel.reconcile(
        x_account,
        REWRITTEN,
        idempotency_key=KEY,
        hints=_hints(since=now - timedelta(minutes=1), known_ids=frozenset({held["id"]})),
    )

    assert found is None


# --- tokens -----------------------------------------------------------------------------------


def test_an_expired_token_is_renewed_once_and_the_post_goes_out(channel, x_account, x_server):
    old_access, old_refresh = x_account.access_token, x_account.refresh_token
    x_server.expire(old_access)

    published = channel.publish(x_account, "After the renewal.", [], idempotency_key=KEY)

    assert published.external_id == x_server.tweets_of()[0]["id"]
    stored = SocialAccount.objects.get(pk=x_account.pk)
    assert stored.access_token not in ("", old_access)
    assert stored.refresh_token not in ("", old_refresh)  # X rotated it
    assert stored.refresh_token not in stored.refresh_token_encrypted  # stored encrypted
    assert stored.expires_at > timezone.now() + timedelta(minutes=110)
    assert not x_server.refresh_tokens[old_refresh]["active"]
    assert x_server.refresh_tokens[stored.refresh_token]["active"]
    event = AuditEvent.objects.get(action="social_account.token_refreshed")
    assert event.object_id == str(x_account.pk) and event.data["channel"] == "x"
    assert x_server.requests.count(("POST", "/2/oauth2/token")) == 1
    assert x_server.requests.count(("POST", "/2/tweets")) == 2  # refused, then sent


def test_a_token_known_to_be_over_is_renewed_before_the_call(channel, x_account, x_server):
    x_server.expire(x_account.access_token)
    x_account.expires_at = timezone.now() - timedelta(minutes=1)
    x_account.save(update_fields=["expires_at"])

    channel.publish(x_account, "Renewed ahead.", [], idempotency_key=KEY)

    assert x_server.requests == [("POST", "/2/oauth2/token"), ("POST", "/2/tweets")]


def test_a_refused_renewal_is_auth_expired(channel, x_account, x_server):
    x_server.revoke_grant(x_server.user_id)  # the person removed the app on x.com
    before = SocialAccount.objects.get(pk=x_account.pk)

    with pytest.raises(AuthExpired) as caught:
        channel.publish(x_account, "Hello.", [], idempotency_key=KEY)

    assert "Value passed for the token was invalid" in str(caught.value)
    assert x_server.tweets_of() == []
    after = SocialAccount.objects.get(pk=x_account.pk)
    assert after.refresh_token_encrypted == before.refresh_token_encrypted
    assert not AuditEvent.objects.filter(action="social_account.token_refreshed").exists()


def test_an_expired_token_without_a_refresh_token_is_auth_expired(channel, x_account, x_server):
    x_account.set_tokens(access_token=x_account.access_token)
    x_account.save()
    x_server.expire(x_account.access_token)

    with pytest.raises(AuthExpired) as caught:
        channel.publish(x_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 401
    assert ("POST", "/2/oauth2/token") not in x_server.requests


# --- rate limits and refusals -----------------------------------------------------------------


def test_a_rate_limit_is_retryable_after_x_rate_limit_reset(channel, x_account, x_server):
    x_server.fail_next("tweets", "429", reset_in=600)

    with pytest.raises(RetryableError) as caught:
        channel.publish(x_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 429
    assert 590 <= caught.value.retry_after <= 600
    assert x_server.tweets_of() == []


def test_an_exhausted_24_hour_window_sets_the_wait(channel, x_account, x_server):
    x_server.fail_next("tweets", "429", reset_in=600, daily=50_000)

    with pytest.raises(RetryableError) as caught:
        channel.publish(x_account, "Hello.", [], idempotency_key=KEY)

    assert 49_990 <= caught.value.retry_after <= 50_000


@pytest.mark.parametrize("status", ["500", "503"])
def test_a_server_error_is_an_unknown_outcome(channel, x_account, x_server, status):
    # A 5xx does not prove X did not make the post (issue 11): look before retrying.
    x_server.fail_next("tweets", status)

    with pytest.raises(UnknownOutcome) as caught:
        channel.publish(x_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == int(status)
    assert caught.value.retry_after is None


def test_a_failed_upload_is_retryable_and_posts_nothing(channel, x_account, x_server, two_images):
    x_server.fail_next("media_upload", "503")

    with pytest.raises(RetryableError):
        channel.publish(x_account, "Two pictures.", two_images, idempotency_key=KEY)

    assert x_server.tweets_of() == []


def test_a_too_long_post_is_refused_with_xs_words(channel, x_account, x_server):
    with pytest.raises(PermanentError) as caught:
        channel.publish(x_account, "界" * 141, [], idempotency_key=KEY)  # 282 weighted

    assert caught.value.http_status == 403
    assert "Tweet needs to be a bit shorter." in str(caught.value)


def test_a_too_long_alt_text_is_refused_by_x(channel, x_account, x_server, two_images):
    two_images[1]["alt_text"] = "a" * 1_001

    with pytest.raises(PermanentError) as caught:
        channel.publish(x_account, "Two pictures.", two_images, idempotency_key=KEY)

    assert caught.value.http_status == 400
    assert "image 2" in str(caught.value)
    assert "alt_text.text must be <= 1000 chars" in str(caught.value)
    assert x_server.tweets_of() == []


def test_the_server_refuses_media_another_user_uploaded(x_server):
    other = x_server.add_user("someone_else", "Someone Else")
    theirs = x_server.issue_tokens(other)["access_token"]
    ours = x_server.issue_tokens(x_server.user_id)["access_token"]
    image = io.BytesIO()
    Image.new("RGB", (10, 10)).save(image, "PNG")
    uploaded = requests.post(
        f"{x_server.url}/2/media/upload",
        headers={"Authorization": f"Bearer {theirs}"},
        files={"media": ("a.png", image.getvalue(), "image/png")},
        data={"media_category": "tweet_image"},
        timeout=5,
    )

    posted = requests.post(
        f"{x_server.url}/2/tweets",
        headers={"Authorization": f"Bearer {ours}"},
        json={"text": "Borrowed.", "media": {"media_ids": [uploaded.json()["data"]["id"]]}},
        timeout=5,
    )

    assert uploaded.status_code == 200
    assert posted.status_code == 400
    assert posted.json()["errors"] == [{"message": "Your media IDs are invalid."}]


# --- connecting -------------------------------------------------------------------------------


def test_the_spec_points_at_x_for_real_accounts(channel):
    spec = channel.oauth_spec("https://api.x.com")

    assert spec.authorize_url == "https://x.com/i/oauth2/authorize"
    assert spec.token_url == "https://api.x.com/2/oauth2/token"
    assert spec.revoke_url == "https://api.x.com/2/oauth2/revoke"
    assert spec.pkce and spec.client_auth == "basic"
    assert {"tweet.write", "offline.access", "media.write"} <= set(spec.scopes)


def test_the_whole_oauth_dance_then_identify(channel, x_server, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test server speaks http
    base_url = network_base_url(channel)
    spec = channel.oauth_spec(base_url)
    client = channel.oauth_client(base_url, redirect_uri=CALLBACK)
    session = OAuth2Session(
        client.client_id, redirect_uri=CALLBACK, scope=list(spec.scopes), pkce="S256"
    )

    url, state = session.authorization_url(spec.authorize_url)
    consent = requests.get(url, allow_redirects=False, timeout=5)
    back = urlsplit(consent.headers["Location"])
    query = parse_qs(back.query)
    token = session.fetch_token(
        spec.token_url, code=query["code"][0], client_secret=client.client_secret
    )
    identities = channel.identify(base_url, TokenSet(access_token=token["access_token"]))

    assert base_url == x_server.url
    assert consent.status_code == 302
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    assert query["state"] == [state]
    assert "code_challenge=" in url and "code_challenge_method=S256" in url
    assert token["expires_in"] == 7200 and token["refresh_token"]
    assert identities == [
        Identity(handle="@north_desk", external_id=x_server.user_id, display_name="North Desk")
    ]


def _authorize(x_server, *, challenge: str = "c" * 43, redirect_uri: str = CALLBACK):
    consent = requests.get(
        f"{x_server.url}/i/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": x_server.client_id,
            "redirect_uri": redirect_uri,
            "scope": "tweet.read users.read",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "plain",
        },
        allow_redirects=False,
        timeout=5,
    )
    return consent, parse_qs(urlsplit(consent.headers.get("Location", "")).query)


def _basic(x_server) -> dict[str, str]:
    pair = f"{x_server.client_id}:{x_server.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def test_the_token_endpoint_checks_the_verifier_and_the_client(x_server):
    _, query = _authorize(x_server)
    form = {"grant_type": "authorization_code", "code": query["code"][0]}
    form |= {"redirect_uri": CALLBACK, "code_verifier": "d" * 43}

    no_client = requests.post(f"{x_server.url}/2/oauth2/token", data=form, timeout=5)
    wrong_verifier = requests.post(
        f"{x_server.url}/2/oauth2/token", data=form, headers=_basic(x_server), timeout=5
    )

    assert no_client.status_code == 401
    assert no_client.json()["error"] == "unauthorized_client"
    assert wrong_verifier.status_code == 400
    assert wrong_verifier.json()["error_description"] == (
        "Value passed for the authorization code was invalid."
    )


def test_the_consent_page_refuses_an_unregistered_callback_and_reports_a_cancel(x_server):
    unknown, _ = _authorize(x_server, redirect_uri="https://elsewhere.example/cb")
    x_server.approve = False
    cancelled, query = _authorize(x_server)

    assert unknown.status_code == 400 and "Location" not in unknown.headers
    assert cancelled.status_code == 302
    assert query == {"error": ["access_denied"], "state": ["s"]}


def test_identify_with_a_refused_token_is_auth_expired(channel, x_server):
    with pytest.raises(AuthExpired) as caught:
        channel.identify(x_server.url, TokenSet(access_token="not-a-token"))

    assert caught.value.http_status == 401


def test_revoke_ends_the_grant_at_x(channel, x_account, x_server):
    access, refresh = x_account.access_token, x_account.refresh_token

    assert channel.revoke(x_account) is True

    assert not x_server.access_tokens[access]["active"]
    assert not x_server.refresh_tokens[refresh]["active"]
    with pytest.raises(AuthExpired):
        channel.publish(x_account, "After the revocation.", [], idempotency_key=KEY)
