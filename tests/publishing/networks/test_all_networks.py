"""One post to every network at once, through the real dispatch engine: Celery worker processes
(prefork, beat embedded) on the test's database and the pass's broker publish one approved post
with an image and its alt text to Mastodon, Bluesky, X, a Facebook Page, Instagram, LinkedIn and
a signed webhook, each played by its test server on 127.0.0.1 (Instagram fetches the image from
cxhub's signed public link, served by a live server). Each network ends with exactly one post,
and each target's external id and link are stored and shown on the post page."""

import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image

from publishing import media_services, services
from publishing.models import Post, PostStatus, PostTarget, TargetStatus

from ...integration.dispatch_harness import (
    WORKER_APPLICATION_NAME,
    Worker,
    database_url,
    purge,
    wait_until,
    worker_env,
)
from ...integration.dispatch_support import SECRET, webhook_account
from ...integration.webhook_receiver import WebhookReceiver

pytestmark = [
    pytest.mark.peer,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]

TEXT = "Launch window opens at dawn. Watch live with us."
ALT = "The rocket on the pad at dawn, lit from below."


def _square_jpeg() -> bytes:
    image = Image.new("RGB", (1080, 1080), (20, 40, 90))
    for x in range(0, 1080, 60):  # some detail, so it is a real photo-sized file
        image.paste((230, 120, 20), (x, 500, x + 30, 580))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def worker_media(settings, tmp_path):
    # The workers read the images the test uploads: one folder for both.
    settings.MEDIA_ROOT = tmp_path / "var" / "media"
    return settings.MEDIA_ROOT


def test_one_post_goes_out_once_to_every_network_and_the_page_shows_where(
    settings,
    tmp_path,
    worker_media,
    live_server,
    author,
    org,
    client,
    mastodon_server,
    mastodon_account,
    bluesky_server,
    bluesky_account,
    x_server,
    x_account,
    graph_server,
    facebook_account,
    instagram_account,
    linkedin_server,
    linkedin_account,
):
    settings.CXHUB_PUBLIC_URL = live_server.url
    with WebhookReceiver(SECRET) as receiver:
        hook = webhook_account(org["north"], receiver.url, handle="agency-site")
        accounts = [
            mastodon_account,
            bluesky_account,
            x_account,
            facebook_account,
            instagram_account,
            linkedin_account,
            hook,
        ]
        media = media_services.media_upload(
            by=author,
            file=SimpleUploadedFile("pad.jpg", _square_jpeg(), content_type="image/jpeg"),
            alt_text=ALT,
            team_id=org["north"].pk,
        )
        post = services.post_create(
            by=author,
            team_id=org["north"].pk,
            body=TEXT,
            media_ids=[media.pk],
            targets=[services.TargetInput(social_account_id=a.pk) for a in accounts],
        )
        Post.objects.filter(pk=post.pk).update(status=PostStatus.IN_REVIEW)
        post.refresh_from_db()
        services.post_approved(post=post, content_hash=post.content_hash, by=None)

        broker = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
        env = worker_env(
            database=database_url(
                connection.settings_dict,
                application_name=WORKER_APPLICATION_NAME
                if connection.vendor == "postgresql"
                else "",
            ),
            broker=broker,
            var_dir=tmp_path / "var",
            CXHUB_MEDIA_ROOT=str(worker_media),
            CXHUB_PUBLIC_URL=live_server.url,
            CXHUB_NETWORK_TIMEOUT_SECONDS="3",
        )
        purge(broker)
        worker = Worker(env, tmp_path, concurrency=2)
        try:
            worker.start()
            ids = list(PostTarget.objects.filter(post=post).values_list("pk", flat=True))
            wait_until(
                lambda: (
                    set(PostTarget.objects.filter(pk__in=ids).values_list("status", flat=True))
                    <= {TargetStatus.PUBLISHED, TargetStatus.FAILED}
                ),
                timeout=120,
                what="every target of the post to be final",
                logs=[worker.log],
            )
        finally:
            worker.stop()
            purge(broker)

        targets = {
            t.social_account.channel: t
            for t in PostTarget.objects.filter(post=post).select_related("social_account")
        }
        failed = {
            channel: t.last_error for channel, t in targets.items() if t.status != "published"
        }
        assert failed == {}, f"{failed}\n{worker.log_text()[-4000:]}"
        assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHED

        # Exactly one post on each network, with the image and its alt text where it has one.
        [status] = mastodon_server.statuses
        assert [m["description"] for m in status["media_attachments"]] == [ALT]
        assert targets["mastodon"].external_id == status["id"]
        [record] = bluesky_server.records.values()
        assert record["value"]["embed"]["images"][0]["alt"] == ALT
        assert targets["bluesky"].external_id == record["uri"]
        [tweet] = x_server.tweets
        assert targets["x"].external_id == tweet["id"]
        [page_post] = graph_server.posts
        assert len(graph_server.ig_media) == 1
        assert graph_server.fetched, "Instagram fetched no image from cxhub's public link"
        [linkedin_post] = linkedin_server.posts
        assert len(receiver.published) == 1

        # Every target's id and link are stored, and shown on the post page.
        client.force_login(author)
        page = client.get(f"/posts/{post.pk}/").content.decode()
        for channel, target in targets.items():
            assert target.external_id, channel
            assert target.external_url.startswith(("https://", "http://")), channel
            assert f"<code>{target.external_id}</code>" in page, channel
            assert f'href="{target.external_url}"' in page, channel
