"""Test servers on 127.0.0.1 for the networks, the settings that let channels reach them, and
two uploaded images (Media rows with their renditions) to send."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from networks.channels import get_channel
from networks.models import Channel
from publishing import media_services

from ...factories import SocialAccountFactory
from .bluesky_server import BlueskyServer
from .mastodon_server import MastodonServer

# The client's timeout in these tests: generous, so that a loaded machine never makes an
# ordinary answer late. A test of a timeout (a "slow" failure, which holds its answer until the
# client hangs up) uses `short_network_timeout` instead.
NETWORK_TIMEOUT_SECONDS = 30.0
SHORT_NETWORK_TIMEOUT_SECONDS = 3.0


@pytest.fixture(autouse=True)
def loopback_allowed(settings, tmp_path):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    settings.CXHUB_NETWORK_TIMEOUT_SECONDS = NETWORK_TIMEOUT_SECONDS
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def short_network_timeout(settings):
    """For a test whose server holds an answer: the client gives up after a few seconds (long
    enough for the test's other calls to be answered on a loaded machine)."""
    settings.CXHUB_NETWORK_TIMEOUT_SECONDS = SHORT_NETWORK_TIMEOUT_SECONDS


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
        external_id=bluesky_server.did,
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


@pytest.fixture
def linkedin_server(settings):
    """A LinkedIn on 127.0.0.1, with cxhub registered as its client and new accounts pointed
    at it (CXHUB_NETWORK_BASE_URLS)."""
    from .linkedin_server import LinkedInServer

    server = LinkedInServer().start()
    settings.CXHUB_OAUTH_CLIENTS = {
        **settings.CXHUB_OAUTH_CLIENTS,
        "linkedin": {"client_id": server.client_id, "client_secret": server.client_secret},
    }
    settings.CXHUB_NETWORK_BASE_URLS = {**settings.CXHUB_NETWORK_BASE_URLS, "linkedin": server.url}
    yield server
    server.stop()


@pytest.fixture
def linkedin_account(org, linkedin_server):
    """North's Company Page (urn:li:organization:2414183), connected by its administrator with
    a refresh token, as connecting leaves it."""
    from datetime import timedelta

    from django.utils import timezone

    access, refresh = linkedin_server.issue(
        {"openid", "profile", "w_member_social", "w_organization_social", "r_organization_social"}
    )
    account = SocialAccountFactory(
        team=org["north"],
        channel=Channel.LINKEDIN,
        handle="north-health",
        display_name="North Health Trust",
        base_url=linkedin_server.url,
        external_id="urn:li:organization:2414183",
        expires_at=timezone.now() + timedelta(days=60),
    )
    account.set_tokens(access_token=access, refresh_token=refresh)
    account.save()
    return account


@pytest.fixture
def x_server(settings):
    """An X server; cxhub registered with it as a confidential client, and new X accounts
    pointed at it (as the connect views find it through network_base_url)."""
    from .x_server import XServer

    server = XServer().start()
    settings.CXHUB_OAUTH_CLIENTS = {
        **settings.CXHUB_OAUTH_CLIENTS,
        "x": {"client_id": server.client_id, "client_secret": server.client_secret},
    }
    settings.CXHUB_NETWORK_BASE_URLS = {**settings.CXHUB_NETWORK_BASE_URLS, "x": server.url}
    yield server
    server.stop()


@pytest.fixture
def x_account(org, x_server):
    """@north_desk, connected: tokens of a real grant from the server (with a refresh token)."""
    from datetime import timedelta

    from django.utils import timezone

    tokens = x_server.issue_tokens(x_server.user_id)
    user = x_server.users[x_server.user_id]
    account = SocialAccountFactory(
        team=org["north"],
        channel=Channel.X,
        handle=f"@{user['username']}",
        display_name=user["name"],
        base_url=x_server.url,
        external_id=x_server.user_id,
        expires_at=timezone.now() + timedelta(seconds=tokens["expires_in"]),
    )
    account.set_tokens(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"])
    account.save()
    return account


@pytest.fixture
def graph_server(settings):
    """Meta's Graph API (graph.facebook.com and the www.facebook.com login dialog) for the
    Facebook and Instagram channels, with cxhub's Meta app registered for both."""
    from .graph_server import GraphServer

    server = GraphServer().start()
    meta_app = {"client_id": server.app_id, "client_secret": server.app_secret}
    settings.CXHUB_OAUTH_CLIENTS = {
        **settings.CXHUB_OAUTH_CLIENTS,
        "facebook": meta_app,
        "instagram": meta_app,
    }
    settings.CXHUB_NETWORK_BASE_URLS = {
        **settings.CXHUB_NETWORK_BASE_URLS,
        "facebook": server.url,
        "instagram": server.url,
    }
    yield server
    server.stop()


@pytest.fixture
def facebook_account(org, graph_server):
    """The North Desk Page, connected with its Page token (which does not expire)."""
    account = SocialAccountFactory(
        team=org["north"],
        channel=Channel.FACEBOOK,
        handle="northdesk",
        display_name="North Desk",
        base_url=graph_server.url,
        external_id="201",
    )
    account.set_tokens(access_token=graph_server.issue_page_token("201"))
    account.save()
    return account


@pytest.fixture
def instagram_account(org, graph_server):
    """@north.desk, reached through the North Desk Page with a long-lived User token (about
    60 days left)."""
    from datetime import timedelta

    from django.utils import timezone

    from .graph_server import LONG_LIVED_SECONDS

    account = SocialAccountFactory(
        team=org["north"],
        channel=Channel.INSTAGRAM,
        handle="@north.desk",
        display_name="North Desk",
        base_url=graph_server.url,
        external_id="17841400000000001",
        expires_at=timezone.now() + timedelta(seconds=LONG_LIVED_SECONDS),
    )
    account.set_tokens(access_token=graph_server.issue_user_token(long_lived=True))
    account.save()
    return account
