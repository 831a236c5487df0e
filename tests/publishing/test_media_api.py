"""Uploading images through the API: attacks are refused with a 400 naming `file` and store
nothing; good images come back re-encoded without metadata, with renditions per network."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from audit.models import AuditEvent
from publishing.models import Media, MediaRendition

from .media.images import animated, blank_png, encode, noisy_rgb


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def upload(user, data: bytes, name: str, alt_text="A rocket on the pad at dawn"):
    return api(user).post(
        "/api/v1/media/",
        {"file": SimpleUploadedFile(name, data), "alt_text": alt_text},
        format="multipart",
    )


def _gps_jpeg() -> bytes:
    img = noisy_rgb(120, 80)
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 0.0)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 0.0)
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


ATTACKS = {
    "bomb.png": blank_png(20_000, 20_000),
    "truncated.jpg": encode(noisy_rgb(200, 200), "JPEG")[:-400],
    "report.png": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n",
    "logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "empty.png": b"",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_unsafe_upload_is_a_400_naming_the_file_and_stores_nothing(author, name, media_root):
    response = upload(author, ATTACKS[name], name)
    assert response.status_code == 400, response.content
    body = response.json()
    assert "file" in body["extra"]["fields"]
    assert body["message"]
    assert Media.objects.count() == 0
    assert not AuditEvent.objects.filter(action="media.uploaded").exists()
    stored = list(media_root.rglob("*")) if media_root.exists() else []
    assert [p for p in stored if p.is_file()] == []


def test_a_jpeg_with_gps_comes_back_without_any_metadata(author, client):
    response = upload(author, _gps_jpeg(), "holiday.jpg")
    assert response.status_code == 201, response.content
    body = response.json()
    assert {"id", "url", "width", "height", "sha256", "alt_text"} <= set(body)
    assert (body["width"], body["height"]) == (120, 80)
    client.force_login(author)
    served = client.get(body["url"])
    assert served.status_code == 200
    data = b"".join(served.streaming_content)
    img = Image.open(io.BytesIO(data))
    assert "exif" not in img.info
    assert len(img.getexif()) == 0
    assert b"SpyCam" not in data


def test_cmyk_and_animated_gif_uploads_are_handled(author):
    cmyk = io.BytesIO()
    Image.new("CMYK", (64, 64), (0, 128, 255, 0)).save(cmyk, "JPEG")
    assert upload(author, cmyk.getvalue(), "print.jpg").status_code == 201

    gif = animated("GIF", [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    response = upload(author, gif, "spin.gif")
    assert response.status_code == 201
    assert response.json()["animated"] is True


def test_a_big_photo_gets_a_bluesky_rendition_under_a_megabyte(author):
    data = encode(noisy_rgb(2400, 1600), "JPEG", quality=95)
    assert len(data) > 1_000_000
    response = upload(author, data, "big.jpg")
    assert response.status_code == 201
    rendition = MediaRendition.objects.get(media_id=response.json()["id"], channel="bluesky")
    assert rendition.bytes <= 1_000_000


def test_alt_text_is_required(author):
    response = upload(author, encode(noisy_rgb(20, 20), "PNG"), "a.png", alt_text="  ")
    assert response.status_code == 400
    assert "alt_text" in response.json()["extra"]["fields"]


def test_alt_text_rule_can_be_turned_off(author, settings):
    settings.CXHUB_REQUIRE_ALT_TEXT = False
    assert upload(author, encode(noisy_rgb(20, 20), "PNG"), "a.png", alt_text="").status_code == 201


def test_media_of_another_region_is_404(author, outsider, client):
    media_id = upload(author, encode(noisy_rgb(20, 20), "PNG"), "a.png").json()["id"]
    assert api(outsider).get(f"/api/v1/media/{media_id}/").status_code == 404
    client.force_login(outsider)
    assert client.get(f"/media-files/{media_id}/original").status_code == 404


def test_someone_who_drafts_nowhere_cannot_upload(approver):
    response = upload(approver, encode(noisy_rgb(20, 20), "PNG"), "a.png")
    assert response.status_code == 400
    assert "file" in response.json()["extra"]["fields"]


def test_an_approver_sees_the_images_of_a_post_they_review(author, approver, org, client):
    from publishing import services
    from tests.factories import SocialAccountFactory

    media_id = upload(author, encode(noisy_rgb(20, 20), "PNG"), "a.png").json()["id"]
    account = SocialAccountFactory(team=org["north"], handle="@img")
    services.post_create(
        by=author,
        team_id=org["north"].pk,
        body="With an image",
        targets=[services.TargetInput(social_account_id=account.pk)],
        media_ids=[media_id],
    )
    client.force_login(approver)
    assert client.get(f"/media-files/{media_id}/thumbnail").status_code == 200
    assert api(approver).get(f"/api/v1/media/{media_id}/").status_code == 200
    # but cannot attach it to a post of their own: media_for stays the drafting scope
