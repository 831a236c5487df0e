"""Test servers on 127.0.0.1 for the networks, the settings that let channels reach them, and
two uploaded images (Media rows with their renditions) to send."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import Channel
from publishing import media_services
from publishing.channels import get_channel

from ...factories import SocialAccountFactory
from .bluesky_server import BlueskyServer
from .mastodon_server import MastodonServer


@pytest.fixture(autouse=True)
def loopback_allowed(settings, tmp_path):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    settings.CXHUB_NETWORK_TIMEOUT_SECONDS = 1.0
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def mastodon_server():
    server = MastodonServer().start()
    yield server
    server.stop()


@pytest.fixture
def mastodon_account(org, mastodon_server):
    account = SocialAccountFactory(
        team=org["north"],
        channel=Channel.MASTODON,
        handle="@north",
        base_url=mastodon_server.url,
        external_id=mastodon_server.account_id,
    )
    account.set_tokens(access_token="good-token")
    account.save()
    return account


@pytest.fixture
def bluesky_server():
    server = BlueskyServer().start()
    yield server
    server.stop()


@pytest.fixture
def bluesky_account(org, bluesky_server):
    account = SocialAccountFactory(
        team=org["north"],
        channel=Channel.BLUESKY,
        handle="north.test",
        base_url=bluesky_server.url,
    )
    get_channel("bluesky").create_session(account, password=bluesky_server.password)
    return account


def _jpeg(width: int, height: int, colour: tuple[int, int, int], noise: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), colour)
    if noise:
        planes = [
            Image.effect_noise((width // 2, height // 2), 90).resize((width, height))
            for _ in range(3)
        ]
        image = Image.merge("RGB", planes)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=98)
    return buffer.getvalue()


def upload(author, org, data: bytes, alt_text: str, name: str):
    return media_services.media_upload(
        by=author,
        file=SimpleUploadedFile(name, data, content_type="image/jpeg"),
        alt_text=alt_text,
        team_id=org["north"].pk,
    )


@pytest.fixture
def two_images(author, org):
    """Two uploads as dispatch passes them: a small one, and a large noisy one that needs a
    smaller rendition for Bluesky (over 1,000,000 bytes as uploaded)."""
    small = upload(author, org, _jpeg(640, 480, (200, 30, 30)), "A red square.", "red.jpg")
    large = upload(
        author, org, _jpeg(2400, 1800, (0, 0, 0), noise=True), "Static on a screen.", "tv.jpg"
    )
    return [
        {
            "position": position,
            "sha256": media.sha256,
            "alt_text": media.alt_text,
            "mime": media.mime,
            "width": media.width,
            "height": media.height,
        }
        for position, media in enumerate([small, large])
    ]
