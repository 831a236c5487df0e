"""The media store on an S3-compatible bucket (settings: CXHUB_MEDIA_S3_*): the storage the
environment configures, against a real S3 server on 127.0.0.1 (moto's server mode, standing in
for MinIO or AWS): an uploaded image lands in the bucket, nothing on the local disk, and the
media view, the post page and the posts API still work."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from publishing.models import Media

from .media.images import encode, noisy_rgb

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BUCKET = "cxhub-media-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(url, timeout=1)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the S3 server did not start:\n{log.read_text()}")
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _storage_from_environment(endpoint: str) -> dict:
    """STORAGES["default"] as cxhub.settings makes it from these variables (a fresh process:
    settings are read once)."""
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        CXHUB_MEDIA_S3_BUCKET=BUCKET,
        CXHUB_MEDIA_S3_ENDPOINT_URL=endpoint,
        CXHUB_MEDIA_S3_REGION="us-east-1",
        CXHUB_MEDIA_S3_ACCESS_KEY_ID="test-key",
        CXHUB_MEDIA_S3_SECRET_ACCESS_KEY="test-secret",
        CXHUB_MEDIA_S3_PREFIX="cxhub/",
        CXHUB_MEDIA_S3_ADDRESSING_STYLE="path",
    )
    code = "import json; from django.conf import settings; print(json.dumps(settings.STORAGES))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)["default"]


@pytest.fixture
def s3_storage(s3_server, settings, tmp_path):
    import boto3

    default = _storage_from_environment(s3_server)
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    options = default["OPTIONS"]
    assert (options["bucket_name"], options["endpoint_url"]) == (BUCKET, s3_server)
    assert (options["location"], options["addressing_style"]) == ("cxhub", "path")
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    )
    client.create_bucket(Bucket=BUCKET)
    settings.MEDIA_ROOT = tmp_path / "local-media"  # must stay empty
    settings.STORAGES = {**settings.STORAGES, "default": default}
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _keys(client) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_an_uploaded_image_lands_in_the_bucket_and_the_pages_still_serve_it(
    s3_storage, author, org, north_mastodon, client, tmp_path
):
    api = APIClient()
    api.force_authenticate(author)
    original = encode(noisy_rgb(320, 200), "JPEG")

    # When an image is uploaded through the API
    response = api.post(
        "/api/v1/media/",
        {"file": SimpleUploadedFile("dawn.jpg", original), "alt_text": "The pad at dawn"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    media = Media.objects.get(pk=response.json()["id"])

    # Then the image, its thumbnail and its renditions are objects in the bucket, under the
    # prefix, and nothing was written to the local media directory
    keys = _keys(s3_storage)
    assert f"cxhub/{media.file.name}" in keys
    assert f"cxhub/{media.thumbnail.name}" in keys
    for rendition in media.renditions.all():
        assert f"cxhub/{rendition.file.name}" in keys
    assert not (tmp_path / "local-media").exists()

    # And the media view serves the bytes from the bucket
    client.force_login(author)
    served = client.get(response.json()["url"])
    assert served.status_code == 200
    stored = s3_storage.get_object(Bucket=BUCKET, Key=f"cxhub/{media.file.name}")["Body"].read()
    assert b"".join(served.streaming_content) == stored

    # And a post with the image reads back through the API and its page
    created = api.post(
        "/api/v1/posts/",
        {
            "team": org["north"].pk,
            "body": "Launch window opens at dawn.",
            "targets": [{"social_account": north_mastodon.pk}],
            "media": [media.pk],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    post_id = created.json()["id"]
    again = api.get(f"/api/v1/posts/{post_id}/")
    assert again.status_code == 200
    assert again.json()["media"] == [media.pk]
    page = client.get(f"/posts/{post_id}/")
    assert page.status_code == 200
    assert "The pad at dawn" in page.content.decode()
