"""The Instagram channel against the Graph API test server, which fetches each image from the
Django live server through cxhub's signed public links, as Meta does; and those links."""

import io
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from requests_oauthlib import OAuth2Session

from audit.models import AuditEvent
from networks.channels import get_channel
from networks.channels import instagram as instagram_module
from networks.channels.base import ReconcileHints, TokenSet
from networks.channels.errors import (
    AmbiguousMatch,
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.channels.facebook import GRAPH_VERSION
from publishing import media_services
from publishing.models import MediaRendition
from publishing.public_media import public_image_url, stored_image

pytestmark = pytest.mark.peer  # runs once in CI (tests/conftest.py)

KEY = "5d2c1b0a-9e8f-4a7b-8c6d-5e4f3a2b1c0d"
CALLBACK = "https://cxhub.example/accounts/connect/callback/"


@pytest.fixture
def channel():
    return get_channel("instagram")


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(instagram_module, "CONTAINER_POLL_SECONDS", 0.01)


@pytest.fixture
def public_url(settings, live_server):
    """cxhub's public address is the live server, which the Graph server fetches images from."""
    settings.CXHUB_PUBLIC_URL = live_server.url
    return live_server.url


def _image(media_item: dict) -> bytes:
    with stored_image(media_item["sha256"], "instagram").file.open("rb") as handle:
        return handle.read()


def _upload(author, org, image: Image.Image, fmt: str, alt_text: str = "A picture."):
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return media_services.media_upload(
        by=author,
        file=SimpleUploadedFile(f"upload.{fmt.lower()}", buffer.getvalue()),
        alt_text=alt_text,
        team_id=org["north"].pk,
    )


def _item(media, position: int = 0) -> dict:
    return {"position": position, "sha256": media.sha256, "alt_text": media.alt_text}


@pytest.fixture
def one_image(author, org):
    """One small upload as dispatch passes it (two_images makes a large one: slower)."""
    media = _upload(
        author, org, Image.new("RGB", (640, 480), (200, 30, 30)), "JPEG", "A red square."
    )
    return [_item(media)]


# --- publishing -----------------------------------------------------------------------------


def test_a_post_without_an_image_is_refused_before_anything_is_sent(
    channel, instagram_account, graph_server
):
    with pytest.raises(PermanentError, match="at least one image"):
        channel.publish(instagram_account, "Only words.", [], idempotency_key=KEY)

    assert graph_server.requests == []


def test_it_publishes_one_image_with_its_caption_and_alt_text(
    channel, instagram_account, graph_server, public_url, one_image
):
    graph_server.container_polls = 2  # IN_PROGRESS twice, then FINISHED

    published = channel.publish(
        instagram_account, "A red square. #colour", one_image, idempotency_key=KEY
    )

    [media] = graph_server.ig_media
    [item] = media["items"]
    assert media["caption"] == "A red square. #colour"
    assert media["media_type"] == "IMAGE"
    assert item["alt_text"] == "A red square."
    assert item["bytes"] == len(_image(one_image[0]))
    assert graph_server.fetched[0].startswith(f"{public_url}/public-media/")
    assert published.external_id == media["id"]
    assert published.external_url == media["permalink"]
    [container] = graph_server.containers.values()
    assert container["published"] is True
    assert ("POST", f"/{GRAPH_VERSION}/17841400000000001/media_publish") in graph_server.requests


def test_two_images_go_out_as_one_carousel_with_their_alt_texts(
    channel, instagram_account, graph_server, public_url, two_images
):
    graph_server.container_polls = 1

    published = channel.publish(instagram_account, "Two pictures.", two_images, idempotency_key=KEY)

    [media] = graph_server.ig_media
    assert media["media_type"] == "CAROUSEL_ALBUM"
    assert media["caption"] == "Two pictures."
    assert [i["alt_text"] for i in media["items"]] == ["A red square.", "Static on a screen."]
    assert [i["bytes"] for i in media["items"]] == [len(_image(m)) for m in two_images]
    assert len(graph_server.containers) == 3  # two items and the carousel
    assert published.external_id == media["id"]


def test_an_image_instagram_cannot_take_is_refused_with_metas_message(
    channel, instagram_account, graph_server, public_url, author, org
):
    panorama = _upload(author, org, Image.new("RGB", (2000, 500), (0, 90, 200)), "JPEG")
    # Without the rendition cxhub made for Instagram, the 4:1 original is what Meta fetches.
    MediaRendition.objects.filter(media=panorama, channel="instagram").delete()

    with pytest.raises(PermanentError, match="aspect ratio") as caught:
        channel.publish(instagram_account, "Wide.", [_item(panorama)], idempotency_key=KEY)

    assert "2207009" in str(caught.value)
    assert graph_server.ig_media == []


def test_cxhubs_rendition_fits_instagrams_aspect_ratio(
    channel, instagram_account, graph_server, public_url, author, org
):
    panorama = _upload(author, org, Image.new("RGB", (2000, 500), (0, 90, 200)), "JPEG")

    channel.publish(instagram_account, "Wide.", [_item(panorama)], idempotency_key=KEY)

    [media] = graph_server.ig_media
    ratio = media["items"][0]["width"] / media["items"][0]["height"]
    assert 0.8 <= ratio <= 1.91


def test_media_that_fails_processing_is_permanent(
    channel, instagram_account, graph_server, public_url, one_image
):
    graph_server.container_outcome = "ERROR"

    with pytest.raises(PermanentError, match="2207026"):
        channel.publish(instagram_account, "Broken.", one_image, idempotency_key=KEY)

    assert graph_server.ig_media == []


def test_media_still_processing_after_the_last_poll_is_retryable(
    channel, instagram_account, graph_server, public_url, one_image, monkeypatch
):
    monkeypatch.setattr(instagram_module, "CONTAINER_POLLS", 3)
    graph_server.container_polls = 1_000

    with pytest.raises(RetryableError, match="still processing"):
        channel.publish(instagram_account, "Slow.", one_image, idempotency_key=KEY)

    assert graph_server.ig_media == []


@pytest.mark.usefixtures("short_network_timeout")
def test_a_timeout_after_instagram_published_is_reconciled_not_posted_twice(
    channel, instagram_account, graph_server, public_url, one_image
):
    graph_server.fail_next("ig_publish", "slow")
    text = "Results at 10.\n\n#elections"

    with pytest.raises(UnknownOutcome):
        channel.publish(instagram_account, text, one_image, idempotency_key=KEY)
    time.sleep(0.6)  # let the slow answer finish
    found = channel.reconcile(instagram_account, text, idempotency_key=KEY)

    [media] = graph_server.ig_media
    assert found is not None
    assert (found.external_id, found.external_url) == (media["id"], media["permalink"])


# --- issue 11: answers lost or 5xx after the media was published -----------------------------

IG_ID = "17841400000000001"
CAPTION = "Results at 10.\n\nCount with us @north.desk\n\n#elections #results"


def _hints(**overrides):
    values = {"since": datetime.now(UTC) - timedelta(seconds=5), "media_count": 1}
    return ReconcileHints(**(values | overrides))


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(("drop", {}), id="answer-dropped"),
        pytest.param(("500", {"after": True}), id="500"),
        pytest.param(("transient", {"after": True}), id="503"),
    ],
)
def test_a_post_published_before_the_answer_was_lost_is_found_and_posted_once(
    channel, instagram_account, graph_server, public_url, one_image, failure
):
    # Given a Graph API that publishes the container, then loses the answer or answers 5xx
    mode, options = failure
    graph_server.fail_next("ig_publish", mode, **options)

    # When the publish fails, reconcile looks for it
    with pytest.raises(UnknownOutcome):
        channel.publish(instagram_account, CAPTION, one_image, idempotency_key=KEY)
    found = channel.reconcile(instagram_account, CAPTION, idempotency_key=KEY, hints=_hints())

    # Then it finds the one post
    [media] = graph_server.ig_media
    assert found is not None
    assert (found.external_id, found.external_url) == (media["id"], media["permalink"])


def test_a_post_with_another_number_of_images_is_only_a_near_match(
    channel, instagram_account, graph_server
):
    made = graph_server.add_ig_media(IG_ID, CAPTION, images=3)

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(
            instagram_account, CAPTION, idempotency_key=KEY, hints=_hints(media_count=2)
        )

    [candidate] = caught.value.candidates
    assert (candidate.external_id, candidate.external_url) == (made["id"], made["permalink"])
    assert candidate.why == "same text, 3 images instead of 2"


def test_two_posts_with_the_caption_are_ambiguous(channel, instagram_account, graph_server):
    first = graph_server.add_ig_media(IG_ID, CAPTION)
    second = graph_server.add_ig_media(
        IG_ID, CAPTION.replace("#elections #results", "#Results #Elections")
    )

    with pytest.raises(AmbiguousMatch) as caught:
        channel.reconcile(instagram_account, CAPTION, idempotency_key=KEY, hints=_hints())

    assert {c.external_id for c in caught.value.candidates} == {first["id"], second["id"]}


def test_posts_before_the_first_try_or_held_by_other_targets_are_never_ours(
    channel, instagram_account, graph_server
):
    graph_server.add_ig_media(IG_ID, CAPTION, published=time.time() - 3600)
    held = graph_server.add_ig_media(IG_ID, CAPTION)

    found = channel.reconcile(
        instagram_account,
        CAPTION,
        idempotency_key=KEY,
        hints=_hints(known_ids=frozenset({held["id"]})),
    )

    assert found is None


def test_reconcile_finds_nothing_when_nothing_was_published(
    channel, instagram_account, graph_server
):
    assert channel.reconcile(instagram_account, "Never sent.", idempotency_key=KEY) is None


def test_a_full_publishing_quota_waits_without_making_containers(
    channel, instagram_account, graph_server, public_url, one_image
):
    graph_server.publish_quota = 0

    with pytest.raises(RetryableError, match="limit of 0") as caught:
        channel.publish(instagram_account, "Later.", one_image, idempotency_key=KEY)

    assert caught.value.retry_after == instagram_module.QUOTA_RETRY_SECONDS
    assert graph_server.containers == {}


def test_a_rate_limit_waits_for_the_time_meta_estimates(
    channel, instagram_account, graph_server, public_url, one_image
):
    graph_server.fail_next("ig_media", "429", minutes=3)

    with pytest.raises(RetryableError) as caught:
        channel.publish(instagram_account, "Busy.", one_image, idempotency_key=KEY)

    assert caught.value.http_status == 429
    assert caught.value.retry_after == 180


def test_a_token_near_its_expiry_is_renewed_before_publishing(
    channel, instagram_account, graph_server, public_url, one_image
):
    instagram_account.expires_at = timezone.now() + timedelta(days=2)
    instagram_account.save()
    old = instagram_account.access_token

    channel.publish(instagram_account, "Renewed.", one_image, idempotency_key=KEY)

    instagram_account.refresh_from_db()
    new = instagram_account.access_token
    assert new != old
    assert graph_server.tokens[new].long_lived
    assert instagram_account.expires_at > timezone.now() + timedelta(days=59)
    assert ("POST", f"/{GRAPH_VERSION}/oauth/access_token") in graph_server.requests
    assert AuditEvent.objects.filter(action="social_account.token_refreshed").count() == 1
    assert len(graph_server.ig_media) == 1


def test_an_expired_token_is_auth_expired_without_asking_meta(
    channel, instagram_account, graph_server, public_url, one_image
):
    instagram_account.expires_at = timezone.now() - timedelta(minutes=1)
    instagram_account.save()

    with pytest.raises(AuthExpired, match="connect the account again"):
        channel.publish(instagram_account, "Too late.", one_image, idempotency_key=KEY)
    with pytest.raises(AuthExpired, match="does not renew expired tokens"):
        channel.refresh_token(instagram_account)

    assert graph_server.requests == []


def test_a_token_meta_refuses_is_auth_expired(
    channel, instagram_account, graph_server, public_url, one_image
):
    graph_server.invalidate(instagram_account.access_token)

    with pytest.raises(AuthExpired, match="invalidated"):
        channel.publish(instagram_account, "Hello.", one_image, idempotency_key=KEY)
    with pytest.raises(AuthExpired, match="Cannot parse access token|invalid"):
        # Meta will not exchange a token it refuses either: the account must be connected again.
        channel.refresh_token(instagram_account)

    assert graph_server.containers == {}


# --- connecting -----------------------------------------------------------------------------


def _sign_in(channel, graph_server, monkeypatch) -> dict:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test server speaks http
    spec = channel.oauth_spec(graph_server.url)
    client = channel.oauth_client(graph_server.url, redirect_uri=CALLBACK)
    oauth = OAuth2Session(
        client.client_id, redirect_uri=CALLBACK, scope=spec.scope_separator.join(spec.scopes)
    )
    url, _ = oauth.authorization_url(spec.authorize_url)
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return oauth.fetch_token(
        spec.token_url,
        authorization_response=answer.headers["Location"],
        include_client_id=True,
        client_secret=client.client_secret,
    )


def test_connecting_offers_each_linked_instagram_account(channel, graph_server, monkeypatch):
    token = _sign_in(channel, graph_server, monkeypatch)

    [identity] = channel.identify(graph_server.url, TokenSet(access_token=token["access_token"]))

    assert (identity.handle, identity.external_id) == ("@north.desk", "17841400000000001")
    assert identity.settings["page_id"] == "201"
    held = graph_server.tokens[identity.tokens.access_token]
    assert held.kind == "user" and held.long_lived
    assert {"instagram_basic", "instagram_content_publish"} <= held.scopes
    assert identity.tokens.expires_at > timezone.now() + timedelta(days=59)


def test_connecting_without_a_linked_instagram_account_is_refused(
    channel, graph_server, monkeypatch
):
    graph_server.pages[0]["instagram"] = None
    token = _sign_in(channel, graph_server, monkeypatch)

    with pytest.raises(PermanentError, match="Instagram professional account"):
        channel.identify(graph_server.url, TokenSet(access_token=token["access_token"]))


def test_a_declined_publishing_permission_shows_at_publish(
    channel, graph_server, monkeypatch, instagram_account, public_url, one_image
):
    graph_server.declined = {"instagram_content_publish"}
    token = _sign_in(channel, graph_server, monkeypatch)
    [identity] = channel.identify(graph_server.url, TokenSet(access_token=token["access_token"]))
    instagram_account.set_tokens(access_token=identity.tokens.access_token)

    with pytest.raises(PermanentError, match="instagram_content_publish"):
        channel.publish(instagram_account, "Hello.", one_image, idempotency_key=KEY)


# --- the signed public links ----------------------------------------------------------------


@pytest.fixture
def public_address(settings):
    settings.CXHUB_PUBLIC_URL = "https://cxhub.example"


def _path(url: str) -> str:
    return urlsplit(url).path


def test_a_signed_link_serves_the_stored_image(client, public_address, one_image):
    url = public_image_url(one_image[0]["sha256"], "instagram")

    response = client.get(_path(url))

    assert url.startswith("https://cxhub.example/public-media/") and url.endswith(".jpg")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "no-store"
    assert b"".join(response.streaming_content) == _image(one_image[0])


def test_a_link_expires_after_an_hour(client, public_address, one_image):
    url = public_image_url(one_image[0]["sha256"], "instagram")

    with time_machine.travel(timezone.now() + timedelta(minutes=59), tick=False):
        fresh = client.get(_path(url))
    with time_machine.travel(timezone.now() + timedelta(minutes=61), tick=False):
        stale = client.get(_path(url))

    assert fresh.status_code == 200
    assert stale.status_code == 404


def test_a_tampered_link_is_404(client, public_address, one_image, author, org):
    path = _path(public_image_url(one_image[0]["sha256"], "instagram"))
    token, extension = path.removeprefix("/public-media/").rsplit(".", 1)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    blue = _upload(author, org, Image.new("RGB", (640, 480), (0, 0, 200)), "JPEG")
    other = public_image_url(blue.sha256, "instagram")
    spliced = token.split(":")[0] + ":" + _path(other).split(":", 1)[1].rsplit(".", 1)[0]

    assert client.get(f"/public-media/{flipped}.{extension}").status_code == 404
    assert client.get(f"/public-media/{spliced}.{extension}").status_code == 404
    assert client.get(f"/public-media/{token}.png").status_code == 404
    assert client.get("/public-media/").status_code == 404
    assert client.get(path).status_code == 200


def test_a_link_needs_cxhubs_public_address(settings, one_image):
    settings.CXHUB_PUBLIC_URL = ""

    with pytest.raises(PermanentError, match="CXHUB_PUBLIC_URL"):
        public_image_url(one_image[0]["sha256"], "instagram")


def test_instagram_links_serve_its_jpeg_rendition_only(client, public_address, author, org):
    png = _upload(author, org, Image.new("RGB", (800, 800), (10, 200, 10)), "PNG")

    url = public_image_url(png.sha256, "instagram")
    response = client.get(_path(url))
    MediaRendition.objects.filter(media=png, channel="instagram").delete()

    assert url.endswith(".jpg")
    assert response["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).format == "JPEG"
    with pytest.raises(PermanentError, match="not stored as JPEG for instagram"):
        public_image_url(png.sha256, "instagram")
    assert client.get(_path(url)).status_code == 404
    assert public_image_url(png.sha256, "mastodon").endswith(".png")
