"""The LinkedIn channel against a LinkedIn test server on 127.0.0.1."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.utils import timezone
from requests_oauthlib import OAuth2Session

from audit.models import AuditEvent
from networks.channels import get_channel
from networks.channels import linkedin as linkedin_module
from networks.channels.base import ReconcileHints, TokenSet
from networks.channels.errors import (
    AmbiguousMatch,
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.models import SocialAccount

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "0b9d6c1e-2a44-4f1e-9a37-5c1d2e3f4a5b"
PAGE = "urn:li:organization:2414183"
REDIRECT = "https://cxhub.example/connect/linkedin/callback/"


@pytest.fixture
def channel():
    return get_channel("linkedin")


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(linkedin_module, "MEDIA_POLL_SECONDS", 0.01)


def stored(account):
    return SocialAccount.objects.get(pk=account.pk)


# --- publishing -------------------------------------------------------------------------------


def test_it_publishes_text_as_linkedin_will_show_it(channel, linkedin_account, linkedin_server):
    text = (
        "Opening hours (new): 9–5 #health @NHS [draft] {v2} <3 *bold* _under_ ~tilde~ a|b "
        "C:\\temp — see https://example.org/a_b"
    )

    # As dispatch does: render, then publish what render gave.
    published = channel.publish(linkedin_account, channel.render(text), [], idempotency_key=KEY)

    [post] = linkedin_server.posts
    assert post["shown"] == text
    assert post["commentary"] == channel.render(text)
    assert post["author"] == PAGE
    assert post["visibility"] == "PUBLIC"
    assert published.external_id == post["id"]
    assert published.external_url == f"https://www.linkedin.com/feed/update/{post['id']}/"
    assert published.http_status == 201
    assert linkedin_server.headers_seen == [
        {
            "path": "/rest/posts",
            "version": linkedin_module.LINKEDIN_VERSION,
            "restli": "2.0.0",
        }
    ]


def test_the_server_cuts_unescaped_text_as_linkedin_does(
    channel, linkedin_account, linkedin_server
):
    channel.publish(linkedin_account, "Opening hours (new) today", [], idempotency_key=KEY)

    assert linkedin_server.posts[0]["shown"] == "Opening hours "


def test_it_publishes_two_images_with_alt_text(
    channel, linkedin_account, linkedin_server, two_images
):
    linkedin_server.processing_polls = 2

    channel.publish(
        linkedin_account, channel.render("Two pictures."), two_images, idempotency_key=KEY
    )

    [post] = linkedin_server.posts
    images = post["content"]["multiImage"]["images"]
    assert [image["altText"] for image in images] == ["A red square.", "Static on a screen."]
    uploaded = [linkedin_server.images[image["id"]] for image in images]
    assert [image["owner"] for image in uploaded] == [PAGE, PAGE]
    assert [image["width"] for image in uploaded][0] == 640
    assert all(image["status"] == "AVAILABLE" and image["bytes"] > 0 for image in uploaded)
    polls = [r for r in linkedin_server.requests if r[1].startswith("/rest/images/urn")]
    assert len(polls) == 6  # PROCESSING twice, then AVAILABLE, for each image


def test_one_image_goes_as_media(channel, linkedin_account, linkedin_server, two_images):
    channel.publish(linkedin_account, "One picture.", two_images[:1], idempotency_key=KEY)

    [post] = linkedin_server.posts
    assert post["content"]["media"]["altText"] == "A red square."
    assert linkedin_server.images[post["content"]["media"]["id"]]["format"] == "JPEG"


def test_it_gives_up_on_an_image_that_never_finishes_processing(
    channel, linkedin_account, linkedin_server, two_images, monkeypatch
):
    monkeypatch.setattr(linkedin_module, "MEDIA_POLLS", 3)
    linkedin_server.processing_polls = 1_000

    with pytest.raises(RetryableError, match="still processing"):
        channel.publish(linkedin_account, "Pictures.", two_images, idempotency_key=KEY)

    assert linkedin_server.posts == []


# --- unknown outcomes and reconcile -----------------------------------------------------------


@pytest.mark.usefixtures("short_network_timeout")
def test_a_timeout_after_the_server_stored_the_post_is_reconciled_not_posted_twice(
    channel, linkedin_account, linkedin_server
):
    text = channel.render("Clinic (Ward 3) reopens Monday #north")
    linkedin_server.fail_next("posts", "slow")

    with pytest.raises(UnknownOutcome):
        channel.publish(linkedin_account, text, [], idempotency_key=KEY)
    time.sleep(0.6)  # let the slow answer finish
    found = channel.reconcile(linkedin_account, text, idempotency_key=KEY)

    [post] = linkedin_server.posts
    assert found is not None
    assert found.external_id == post["id"]
    assert found.external_url == f"https://www.linkedin.com/feed/update/{post['id']}/"


@pytest.mark.usefixtures("short_network_timeout")
def test_sending_again_after_a_lost_answer_takes_linkedins_duplicate_answer_as_the_post(
    channel, linkedin_account, linkedin_server
):
    text = channel.render("Flu clinic (walk-in) today")
    linkedin_server.fail_next("posts", "slow")
    with pytest.raises(UnknownOutcome):
        channel.publish(linkedin_account, text, [], idempotency_key=KEY)
    time.sleep(0.6)

    again = channel.publish(linkedin_account, text, [], idempotency_key=KEY)

    [post] = linkedin_server.posts
    assert again.external_id == post["id"]
    assert again.http_status == 422


# Reserved characters of the little format, a hashtag LinkedIn reads back as its template, a
# mention written as text, and a link.
WRITTEN = (
    "Clinic (Ward 3) reopens Monday [walk-in] <8am> for *all* ages_ ~ 50% off | "
    "ask @north_health\n\nhttps://example.org/clinics/ward-3 #north #health"
)


def _hints(**overrides):
    values = {"since": datetime.now(UTC) - timedelta(seconds=5), "media_count": 0}
    return ReconcileHints(**(values | overrides))


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(("drop", {}), id="answer-dropped"),
        pytest.param(("500", {"after": True}), id="500"),
    ],
)
def test_a_post_made_before_the_answer_was_lost_is_found_and_posted_once(
    channel, linkedin_account, linkedin_server, two_images, failure
):
    # Given a LinkedIn that stores the post (commentary escaped in the little format), then
    # loses the answer or answers 500
    text = channel.render(WRITTEN)
    mode, options = failure
    linkedin_server.fail_next("posts", mode, **options)

    # When the publish fails, reconcile looks for it
    with pytest.raises(UnknownOutcome):
        channel.publish(linkedin_account, text, two_images, idempotency_key=KEY)
    found = channel.reconcile(
        linkedin_account, text, idempotency_key=KEY, hints=_hints(media_count=2)
    )

    # Then it finds the one post, read back with its hashtags as templates
    [post] = linkedin_server.posts
    assert found is not None and found.external_id == post["id"]
    assert post["shown"] == WRITTEN  # escaped as it must be: not cut short


def test_a_post_with_another_number_of_images_is_only_a_near_match(
    channel, linkedin_account, linkedin_server
):
    text = channel.render(WRITTEN)
    urn = linkedin_server.add_post(PAGE, text, images=1)

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(linkedin_account, text, idempotency_key=KEY, hints=_hints(media_count=2))

    [candidate] = caught.value.candidates
    assert candidate.external_id == urn
    assert candidate.external_url == f"https://www.linkedin.com/feed/update/{urn}/"
    assert candidate.why == "same text, 1 image instead of 2"
    assert candidate.text.startswith("Clinic (Ward 3) reopens")


def test_two_posts_with_the_text_are_ambiguous(channel, linkedin_account, linkedin_server):
    text = channel.render(WRITTEN)
    first = linkedin_server.add_post(PAGE, text)
    second = linkedin_server.add_post(PAGE, text.replace("\\#north \\#health", "#health #north"))

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(linkedin_account, text, idempotency_key=KEY, hints=_hints())

    assert {c.external_id for c in caught.value.candidates} == {first, second}


def test_posts_before_the_first_try_or_held_by_other_targets_are_never_ours(
    channel, linkedin_account, linkedin_server
):
    text = channel.render(WRITTEN)
    linkedin_server.add_post(PAGE, text, age_seconds=3600)
    held = linkedin_server.add_post(PAGE, text)

    found = channel.reconcile(
        linkedin_account, text, idempotency_key=KEY, hints=_hints(known_ids=frozenset({held}))
    )

    assert found is None


def test_reconcile_finds_nothing_when_nothing_was_posted(
    channel, linkedin_account, linkedin_server
):
    linkedin_server.add_post(PAGE, "Something else entirely.")

    assert channel.reconcile(linkedin_account, "Never sent.", idempotency_key=KEY) is None


def test_reconcile_reads_hashtag_templates_back_as_hashtags(
    channel, linkedin_account, linkedin_server
):
    # Sent with a bare #tag, the API reads it back as {hashtag|\#|launch}.
    urn = linkedin_server.add_post(PAGE, "Day one #launch")

    found = channel.reconcile(
        linkedin_account, channel.render("Day one #launch"), idempotency_key=KEY
    )

    assert found is not None and found.external_id == urn


def test_reconcile_ignores_an_identical_post_from_days_ago(
    channel, linkedin_account, linkedin_server
):
    text = channel.render("Happy Friday!")
    linkedin_server.add_post(PAGE, text, age_seconds=4 * 24 * 3600)

    assert channel.reconcile(linkedin_account, text, idempotency_key=KEY) is None


def test_reconcile_says_when_linkedin_will_not_list_a_members_posts(
    channel, linkedin_account, linkedin_server
):
    linkedin_account.external_id = linkedin_server.person_urn

    with pytest.raises(PermanentError, match="does not let cxhub read the posts") as caught:
        channel.reconcile(linkedin_account, "Hello.", idempotency_key=KEY)

    assert caught.value.http_status == 403


# --- tokens -----------------------------------------------------------------------------------


def test_an_expired_access_token_is_refreshed_and_the_post_goes_out(
    channel, linkedin_account, linkedin_server
):
    old_access, old_refresh = linkedin_account.access_token, linkedin_account.refresh_token
    linkedin_server.expire(old_access)

    published = channel.publish(linkedin_account, "After renewal.", [], idempotency_key=KEY)

    account = stored(linkedin_account)
    [post] = linkedin_server.posts
    assert published.external_id == post["id"]
    assert account.access_token not in ("", old_access)
    assert account.refresh_token == old_refresh  # LinkedIn does not rotate it: kept
    assert account.expires_at > timezone.now() + timedelta(days=59)
    assert AuditEvent.objects.filter(action="social_account.token_refreshed").count() == 1
    assert [r for r in linkedin_server.requests if r[0] == "POST"] == [
        ("POST", "/rest/posts"),  # 401: expired
        ("POST", "/oauth/v2/accessToken"),
        ("POST", "/rest/posts"),
    ]


def test_a_token_known_to_have_expired_is_renewed_before_any_call(
    channel, linkedin_account, linkedin_server
):
    linkedin_server.expire(linkedin_account.access_token)
    linkedin_account.expires_at = timezone.now() - timedelta(minutes=1)
    linkedin_account.save(update_fields=["expires_at"])

    channel.publish(linkedin_account, "Renewed first.", [], idempotency_key=KEY)

    assert linkedin_server.requests[:2] == [
        ("POST", "/oauth/v2/accessToken"),
        ("POST", "/rest/posts"),
    ]


def test_a_refused_refresh_is_auth_expired(channel, linkedin_account, linkedin_server):
    linkedin_server.refresh_grants[linkedin_account.refresh_token]["revoked"] = True
    linkedin_server.expire(linkedin_account.access_token)

    with pytest.raises(AuthExpired, match="invalid, expired or revoked"):
        channel.publish(linkedin_account, "Hello.", [], idempotency_key=KEY)

    assert linkedin_server.posts == []
    assert not AuditEvent.objects.filter(action="social_account.token_refreshed").exists()


def test_without_a_refresh_token_an_expired_token_is_auth_expired(
    channel, linkedin_account, linkedin_server
):
    linkedin_account.set_tokens(access_token=linkedin_account.access_token, refresh_token="")
    linkedin_account.save()
    linkedin_server.expire(linkedin_account.access_token)

    with pytest.raises(AuthExpired, match="has expired") as caught:
        channel.publish(linkedin_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 401


def test_revoke_asks_linkedin_to_forget_the_token(channel, linkedin_account, linkedin_server):
    token = linkedin_account.access_token

    assert channel.revoke(linkedin_account) is True
    assert token not in linkedin_server.tokens


# --- refusals ---------------------------------------------------------------------------------


def test_a_rate_limit_is_retryable_without_a_wait_unless_one_is_given(
    channel, linkedin_account, linkedin_server
):
    linkedin_server.fail_next("posts", "429")
    linkedin_server.fail_next("posts", "429", retry_after=120)

    with pytest.raises(RetryableError) as first:
        channel.publish(linkedin_account, "Hello.", [], idempotency_key=KEY)
    with pytest.raises(RetryableError) as second:
        channel.publish(linkedin_account, "Hello.", [], idempotency_key=KEY)

    assert first.value.http_status == 429
    assert first.value.retry_after is None
    assert "throttle" in str(first.value)
    assert second.value.retry_after == 120
    assert linkedin_server.posts == []


def test_a_server_error_is_an_unknown_outcome(channel, linkedin_account, linkedin_server):
    # A 5xx does not prove LinkedIn did not make the post (issue 11): look before retrying.
    linkedin_server.fail_next("posts", "503")

    with pytest.raises(UnknownOutcome) as caught:
        channel.publish(linkedin_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 503


def test_too_long_a_commentary_is_permanent_with_linkedins_message(
    channel, linkedin_account, linkedin_server
):
    with pytest.raises(PermanentError, match="exceeds the maximum of 3000") as caught:
        channel.publish(linkedin_account, "x" * 3_001, [], idempotency_key=KEY)

    assert caught.value.http_status == 422
    assert linkedin_server.posts == []


def test_posting_to_a_page_without_a_posting_role_is_permanent(
    channel, linkedin_account, linkedin_server
):
    linkedin_account.external_id = "urn:li:organization:5515715"  # an ANALYST there

    with pytest.raises(PermanentError, match="Not enough permissions") as caught:
        channel.publish(linkedin_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 403


def test_a_sunset_api_version_is_permanent_and_says_which_was_sent(
    channel, linkedin_account, linkedin_server
):
    linkedin_server.active_versions = {"209912"}

    with pytest.raises(PermanentError, match=linkedin_module.LINKEDIN_VERSION) as caught:
        channel.publish(linkedin_account, "Hello.", [], idempotency_key=KEY)

    assert caught.value.http_status == 426


def test_an_account_that_does_not_say_whom_it_posts_as_must_reconnect(
    channel, linkedin_account, linkedin_server
):
    linkedin_account.external_id = ""

    with pytest.raises(AuthExpired, match="connect it again"):
        channel.publish(linkedin_account, "Hello.", [], idempotency_key=KEY)

    assert linkedin_server.requests == []


# --- connecting -------------------------------------------------------------------------------


def connect(channel, server, monkeypatch, **fetch_options):
    """The authorization-code dance as the connect views run it, with a standard
    requests-oauthlib OAuth2Session; the member clicks "Allow"."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the server is http on 127.0.0.1
    server.redirect_uris.add(REDIRECT)
    spec = channel.oauth_spec(server.url)
    client = channel.oauth_client(server.url, redirect_uri=REDIRECT)
    session = OAuth2Session(client.client_id, redirect_uri=REDIRECT, scope=list(spec.scopes))
    url, _state = session.authorization_url(spec.authorize_url)
    allowed = requests.get(url, allow_redirects=False, timeout=5)
    assert allowed.status_code == 302
    return session.fetch_token(
        spec.token_url,
        authorization_response=allowed.headers["Location"],
        client_secret=client.client_secret,
        **fetch_options,
    )


def test_connecting_then_identify_offers_the_member_and_the_page_they_administer(
    channel, linkedin_server, monkeypatch
):
    # LinkedIn answers the granted scopes comma-separated; oauthlib must not take that for a
    # changed scope.
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")

    token = connect(channel, linkedin_server, monkeypatch, include_client_id=True)
    identities = channel.identify(
        linkedin_server.url,
        TokenSet(access_token=token["access_token"], refresh_token=token["refresh_token"]),
    )

    assert token["expires_in"] == 60 * 24 * 3600
    assert token["refresh_token_expires_in"] == 365 * 24 * 3600
    assert [(i.external_id, i.handle, i.display_name) for i in identities] == [
        (linkedin_server.person_urn, "Nora North", "Nora North"),
        (PAGE, "north-health", "North Health Trust"),  # not South Clinic: an ANALYST there
    ]


def test_linkedin_wants_the_client_credentials_in_the_form_body(
    channel, linkedin_server, monkeypatch
):
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")

    # Without include_client_id, OAuth2Session sends HTTP Basic, which LinkedIn does not read.
    with pytest.raises(Exception, match='"client_id" is missing'):
        connect(channel, linkedin_server, monkeypatch)


def test_the_authorize_page_refuses_an_unregistered_redirect_uri(
    channel, linkedin_server, monkeypatch
):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    spec = channel.oauth_spec(linkedin_server.url)
    session = OAuth2Session(
        linkedin_server.client_id, redirect_uri="https://evil.example/cb", scope=list(spec.scopes)
    )
    url, _state = session.authorization_url(spec.authorize_url)

    answer = requests.get(url, allow_redirects=False, timeout=5)

    assert answer.status_code == 400
    assert "redirect_uri does not match" in answer.text


def test_identify_offers_only_the_member_without_page_scopes(channel, linkedin_server):
    access, _ = linkedin_server.issue({"openid", "profile", "w_member_social"})

    identities = channel.identify(linkedin_server.url, TokenSet(access_token=access))

    assert [i.external_id for i in identities] == [linkedin_server.person_urn]


def test_the_oauth_endpoints_are_linkedins_own_unless_a_test_server_stands_in(channel):
    real = channel.oauth_spec("https://api.linkedin.com")
    local = channel.oauth_spec("http://127.0.0.1:8123")

    assert real.authorize_url == "https://www.linkedin.com/oauth/v2/authorization"
    assert real.token_url == "https://www.linkedin.com/oauth/v2/accessToken"
    assert real.revoke_url == "https://www.linkedin.com/oauth/v2/revoke"
    assert local.token_url == "http://127.0.0.1:8123/oauth/v2/accessToken"
    assert real.client_auth == "body"
    assert {"w_organization_social", "r_organization_social", "openid"} <= set(real.scopes)
