"""The Facebook Pages channel against a Graph API test server on 127.0.0.1."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
import time_machine
from django.utils import timezone
from requests_oauthlib import OAuth2Session

from networks.channels import get_channel
from networks.channels.base import ReconcileHints, TokenSet
from networks.channels.errors import (
    AmbiguousMatch,
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.channels.facebook import GRAPH_VERSION

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "0b6f7c1e-2d3a-4e5f-8a9b-0c1d2e3f4a5b"
CALLBACK = "https://cxhub.example/accounts/connect/callback/"


@pytest.fixture
def channel():
    return get_channel("facebook")


def test_it_publishes_text_to_the_page_feed(channel, facebook_account, graph_server):
    published = channel.publish(
        facebook_account, "Doors open at 9.\n\nSee you there.", [], idempotency_key=KEY
    )

    [post] = graph_server.posts
    assert post["message"] == "Doors open at 9.\n\nSee you there."
    assert post["page_id"] == "201"
    assert published.external_id == post["id"]
    assert published.external_url == post["permalink_url"]
    assert published.http_status == 200
    assert ("POST", f"/{GRAPH_VERSION}/201/feed") in graph_server.requests


def test_one_image_goes_to_the_photos_edge_with_its_caption_and_alt_text(
    channel, facebook_account, graph_server, two_images
):
    published = channel.publish(
        facebook_account, "One picture.", two_images[:1], idempotency_key=KEY
    )

    [post] = graph_server.posts
    [photo] = post["photos"]
    assert photo["caption"] == "One picture."
    assert photo["alt_text_custom"] == "A red square."
    assert (photo["format"], photo["width"], photo["height"]) == ("JPEG", 640, 480)
    assert published.external_id == post["id"]
    assert ("POST", f"/{GRAPH_VERSION}/201/feed") not in graph_server.requests


def test_two_images_are_uploaded_unpublished_then_attached_to_one_post(
    channel, facebook_account, graph_server, two_images
):
    published = channel.publish(facebook_account, "Two pictures.", two_images, idempotency_key=KEY)

    [post] = graph_server.posts
    assert post["message"] == "Two pictures."
    assert [p["alt_text_custom"] for p in post["photos"]] == [
        "A red square.",
        "Static on a screen.",
    ]
    assert all(not p["published"] and p["attached"] for p in post["photos"])
    assert post["photos"][0]["width"] == 640
    # Facebook's rendition of the large upload is under its 4 MB limit.
    assert post["photos"][1]["bytes"] <= 4_000_000
    assert len(graph_server.photos) == 2
    assert published.external_id == post["id"]


@pytest.mark.usefixtures("short_network_timeout")
def test_a_timeout_after_the_server_stored_the_post_is_reconciled_not_posted_twice(
    channel, facebook_account, graph_server
):
    graph_server.fail_next("feed", "slow")
    text = "Polls close at 8 pm."

    with pytest.raises(UnknownOutcome):
        channel.publish(facebook_account, text, [], idempotency_key=KEY)
    time.sleep(0.6)  # let the slow answer finish
    found = channel.reconcile(facebook_account, text, idempotency_key=KEY)
    # A blind retry: Facebook refuses the copy (#506) and the channel finds the first post.
    again = channel.publish(facebook_account, text, [], idempotency_key=KEY)

    [post] = graph_server.posts
    assert found is not None and found.external_id == post["id"]
    assert found.external_url == post["permalink_url"]
    assert again.external_id == post["id"]


def test_reconcile_finds_nothing_when_nothing_was_posted(channel, facebook_account):
    assert channel.reconcile(facebook_account, "Never sent.", idempotency_key=KEY) is None


def test_reconcile_ignores_an_old_post_with_the_same_text(channel, facebook_account, graph_server):
    channel.publish(facebook_account, "Happy new year!", [], idempotency_key=KEY)

    with time_machine.travel(timezone.now() + timedelta(days=4), tick=False):
        found = channel.reconcile(facebook_account, "Happy new year!", idempotency_key=KEY)

    assert found is None


# --- issue 11: answers lost or 5xx after the post was made ----------------------------------

MESSAGE = (
    "Polling stations open at 7 am.\n\nFind yours: https://example.org/polling-stations "
    "#Vote #Elections2026"
)


def _hints(**overrides):
    values = {"since": datetime.now(UTC) - timedelta(seconds=5), "media_count": 0}
    return ReconcileHints(**(values | overrides))


@pytest.mark.parametrize(
    ("route", "failure", "images"),
    [
        pytest.param("feed", ("drop", {}), 0, id="text-answer-dropped"),
        pytest.param("feed", ("500", {"after": True}), 0, id="text-500"),
        pytest.param("feed", ("transient", {"after": True}), 2, id="album-503"),
        pytest.param("photos", ("500", {"after": True}), 1, id="photo-500"),
    ],
)
def test_a_post_made_before_the_answer_was_lost_is_found_and_posted_once(
    channel, facebook_account, graph_server, two_images, route, failure, images
):
    # Given a Graph API that makes the post (with its link preview), then loses the answer or
    # answers 5xx
    mode, options = failure
    graph_server.fail_next(route, mode, **options)
    media = two_images[:images]

    # When the publish fails, reconcile looks for it
    with pytest.raises(UnknownOutcome):
        channel.publish(facebook_account, MESSAGE, media, idempotency_key=KEY)
    found = channel.reconcile(
        facebook_account, MESSAGE, idempotency_key=KEY, hints=_hints(media_count=images)
    )

    # Then it finds the one post
    [post] = graph_server.posts
    assert found is not None and found.external_id == post["id"]
    assert found.external_url == post["permalink_url"]
    assert len(post["photos"]) == images
    assert ("link" in post) == (images == 0)  # a preview of the link, not an image


def test_a_post_with_another_number_of_photos_is_only_a_near_match(
    channel, facebook_account, graph_server
):
    made = graph_server.add_post("201", MESSAGE, photos=3)

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(
            facebook_account, MESSAGE, idempotency_key=KEY, hints=_hints(media_count=2)
        )

    [candidate] = caught.value.candidates
    assert candidate.external_id == made["id"]
    assert candidate.why == "same text, 3 images instead of 2"


def test_a_nearly_identical_post_is_a_near_match(channel, facebook_account, graph_server):
    graph_server.add_post("201", MESSAGE.replace("7 am", "7 a.m."))

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(facebook_account, MESSAGE, idempotency_key=KEY, hints=_hints())

    assert caught.value.candidates[0].why.startswith("text differs")


def test_two_posts_with_the_message_are_ambiguous(channel, facebook_account, graph_server):
    first = graph_server.add_post("201", MESSAGE)
    second = graph_server.add_post("201", MESSAGE.replace("\n\n", "\n"))

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(facebook_account, MESSAGE, idempotency_key=KEY, hints=_hints())

    assert {c.external_id for c in caught.value.candidates} == {first["id"], second["id"]}


def test_posts_before_the_first_try_or_held_by_other_targets_are_never_ours(
    channel, facebook_account, graph_server
):
    graph_server.add_post("201", MESSAGE, created=time.time() - 3600)
    held = graph_server.add_post("201", MESSAGE)

    found = channel.reconcile(
        facebook_account,
        MESSAGE,
        idempotency_key=KEY,
        hints=_hints(known_ids=frozenset({held["id"]})),
    )

    assert found is None


@pytest.mark.usefixtures("short_network_timeout")
def test_an_image_upload_that_times_out_is_retryable_and_posts_nothing(
    channel, facebook_account, graph_server, two_images
):
    graph_server.fail_next("photos", "slow")

    with pytest.raises(RetryableError, match="no answer in time"):
        channel.publish(facebook_account, "Two pictures.", two_images, idempotency_key=KEY)

    assert graph_server.posts == []


def test_a_page_token_meta_refuses_is_auth_expired_and_cannot_be_renewed(
    channel, facebook_account, graph_server
):
    graph_server.invalidate(facebook_account.access_token)

    with pytest.raises(AuthExpired) as caught:
        channel.publish(facebook_account, "Hello.", [], idempotency_key=KEY)

    assert "code 190/460" in str(caught.value)
    assert "invalidated" in str(caught.value)
    with pytest.raises(AuthExpired, match="connect the Page again"):
        channel.refresh_token(facebook_account)
    assert graph_server.posts == []


def test_an_expired_token_answer_is_auth_expired(channel, facebook_account, graph_server):
    graph_server.fail_next("posts", "190")

    with pytest.raises(AuthExpired, match="Session has expired"):
        channel.reconcile(facebook_account, "Hello.", idempotency_key=KEY)


def test_a_rate_limit_waits_for_the_time_meta_estimates(channel, facebook_account, graph_server):
    graph_server.fail_next("feed", "429", minutes=7)

    with pytest.raises(RetryableError) as caught:
        channel.publish(facebook_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 429
    assert caught.value.retry_after == 7 * 60


@pytest.mark.parametrize("code", [4, 32, 80001])
def test_the_graph_rate_limit_codes_are_retryable(channel, facebook_account, graph_server, code):
    graph_server.fail_next("feed", "rate", code=code, minutes=2)

    with pytest.raises(RetryableError) as caught:
        channel.publish(facebook_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 400
    assert caught.value.retry_after == 120


@pytest.mark.parametrize("mode", ["500", "transient"])
def test_a_temporary_failure_to_post_is_an_unknown_outcome(
    channel, facebook_account, graph_server, mode
):
    # A 5xx, or Meta's "unknown error" / "temporary issue", does not prove the post was not
    # made (issue 11): look before retrying.
    graph_server.fail_next("feed", mode)

    with pytest.raises(UnknownOutcome) as caught:
        channel.publish(facebook_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.retry_after is None
    assert graph_server.posts == []


def test_a_temporary_failure_to_upload_an_unpublished_photo_is_retryable(
    channel, facebook_account, graph_server, two_images
):
    graph_server.fail_next("photos", "transient")

    with pytest.raises(RetryableError):
        channel.publish(facebook_account, "Two pictures.", two_images, idempotency_key=KEY)

    assert graph_server.posts == []


def test_a_refusal_is_permanent_with_metas_message(channel, facebook_account, graph_server):
    with pytest.raises(PermanentError, match="Missing message or attachment") as caught:
        channel.publish(facebook_account, "", [], idempotency_key=KEY)

    assert caught.value.http_status == 400
    assert "code 100" in str(caught.value)


def test_calls_carry_the_appsecret_proof_an_app_may_require(
    channel, facebook_account, graph_server, settings
):
    graph_server.require_appsecret_proof = True

    channel.publish(facebook_account, "With proof.", [], idempotency_key=KEY)
    settings.CXHUB_OAUTH_CLIENTS = {"facebook": {"client_id": graph_server.app_id}}
    with pytest.raises(PermanentError, match="appsecret_proof"):
        channel.publish(facebook_account, "Without proof.", [], idempotency_key=KEY)

    assert [p["message"] for p in graph_server.posts] == ["With proof."]


# --- connecting -----------------------------------------------------------------------------


def _sign_in(channel, graph_server, monkeypatch) -> dict:
    """The authorization-code dance as the connect views run it, with requests-oauthlib."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test server speaks http
    graph_server.redirect_uris.add(CALLBACK)
    spec = channel.oauth_spec(graph_server.url)
    client = channel.oauth_client(graph_server.url, redirect_uri=CALLBACK)
    oauth = OAuth2Session(
        client.client_id, redirect_uri=CALLBACK, scope=spec.scope_separator.join(spec.scopes)
    )
    url, _ = oauth.authorization_url(spec.authorize_url)
    assert url.startswith(f"{graph_server.url}/{GRAPH_VERSION}/dialog/oauth?")
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    assert answer.headers["Location"].startswith(CALLBACK + "?code=")
    return oauth.fetch_token(
        spec.token_url,
        authorization_response=answer.headers["Location"],
        include_client_id=True,
        client_secret=client.client_secret,
    )


def test_connecting_offers_each_page_with_a_page_token_that_does_not_expire(
    channel, graph_server, monkeypatch
):
    token = _sign_in(channel, graph_server, monkeypatch)

    identities = channel.identify(graph_server.url, TokenSet(access_token=token["access_token"]))

    assert token["expires_in"] == 3600  # the short-lived User token of the code exchange
    # The read-only Page (no CREATE_CONTENT task) is left out.
    assert [(i.handle, i.external_id, i.display_name) for i in identities] == [
        ("northdesk", "201", "North Desk"),
        ("South Desk", "202", "South Desk"),
    ]
    page_token = graph_server.tokens[identities[0].tokens.access_token]
    assert (page_token.kind, page_token.page_id, page_token.expires_at) == ("page", "201", None)
    assert {"pages_show_list", "pages_manage_posts", "pages_read_engagement"} <= page_token.scopes
    assert ("POST", f"/{GRAPH_VERSION}/oauth/access_token") in graph_server.requests


def test_a_connected_page_token_publishes(channel, graph_server, monkeypatch, facebook_account):
    token = _sign_in(channel, graph_server, monkeypatch)
    [north, _] = channel.identify(graph_server.url, TokenSet(access_token=token["access_token"]))
    facebook_account.set_tokens(access_token=north.tokens.access_token)

    channel.publish(facebook_account, "Connected.", [], idempotency_key=KEY)

    assert graph_server.posts[0]["message"] == "Connected."


def test_the_dialog_refuses_a_redirect_uri_the_app_did_not_register(channel, graph_server):
    graph_server.redirect_uris.add(CALLBACK)
    spec = channel.oauth_spec(graph_server.url)

    answer = requests.get(
        spec.authorize_url,
        params={"client_id": graph_server.app_id, "redirect_uri": "https://evil.example/cb"},
        allow_redirects=False,
        timeout=5,
    )

    assert answer.status_code == 400
    assert "URL blocked" in answer.text


def test_a_code_is_good_once(channel, graph_server, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    spec = channel.oauth_spec(graph_server.url)
    answer = requests.get(
        spec.authorize_url,
        params={"client_id": graph_server.app_id, "redirect_uri": CALLBACK, "state": "s"},
        allow_redirects=False,
        timeout=5,
    )
    code = answer.headers["Location"].split("code=")[1].split("&")[0].split("#")[0]
    form = {
        "client_id": graph_server.app_id,
        "client_secret": graph_server.app_secret,
        "redirect_uri": CALLBACK,
        "code": code,
    }

    first = requests.post(spec.token_url, data=form, timeout=5)
    second = requests.post(spec.token_url, data=form, timeout=5)

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json()["error"]["code"] == 100


def test_identify_with_an_expired_user_token_is_auth_expired(channel, graph_server):
    token = graph_server.issue_user_token(long_lived=False)
    graph_server.expire(token)

    with pytest.raises(AuthExpired, match="Session has expired"):
        channel.identify(graph_server.url, TokenSet(access_token=token))


def test_identify_without_a_page_to_publish_to_is_refused(channel, graph_server):
    graph_server.pages = [p for p in graph_server.pages if p["id"] == "203"]
    token = graph_server.issue_user_token(long_lived=False)

    with pytest.raises(PermanentError, match="no Page to publish to"):
        channel.identify(graph_server.url, TokenSet(access_token=token))
