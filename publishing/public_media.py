"""Signed, short-lived public links to one stored image, for networks that fetch the image
themselves instead of taking an upload: Instagram's content publishing API "cURLs" the
`image_url` of a media container, "so the media must be hosted on a publicly accessible server
at the time of the attempt" (developers.facebook.com/docs/instagram-platform/content-publishing).

A link names no database row: its path carries a django.core.signing TimestampSigner token of
(sha256, channel), valid for `MAX_AGE`. The view (publishing.views.public_media) serves the image
stored for that channel (its rendition, else the original, as media_files.load_media picks them)
to whoever holds a valid link, and answers 404 to anything else, never listing anything.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

from networks.channels.errors import PermanentError

from .models import Media, MediaRendition

SALT = "cxhub.publishing.public_media"
# Meta fetches the image when the container is made, seconds after the link; an hour leaves
# room for a slow queue and keeps a leaked link short-lived.
MAX_AGE = timedelta(hours=1)
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
_MIMES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
# Networks that accept only some formats through a link; others take what is stored.
CHANNEL_FORMATS = {"instagram": frozenset({"JPEG"})}


@dataclass(frozen=True)
class StoredImage:
    file: Any  # a FieldFile
    format: str
    width: int
    height: int

    @property
    def mime(self) -> str:
        return _MIMES.get(self.format, "application/octet-stream")

    @property
    def extension(self) -> str:
        return _EXTENSIONS.get(self.format, "bin")


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def stored_image(sha256: str, channel: str) -> StoredImage | None:
    """The file a network gets for image `sha256`: the rendition made for `channel`, else the
    original upload; None when it is not stored (or not in a format the channel takes)."""
    media = Media.objects.filter(sha256=sha256).order_by("pk").first()
    if media is None:
        return None
    rendition = MediaRendition.objects.filter(media=media, channel=channel).first()
    source = rendition if rendition is not None else media
    if not source.file:
        return None
    allowed = CHANNEL_FORMATS.get(channel)
    if allowed is not None and source.format not in allowed:
        return None
    return StoredImage(
        file=source.file, format=source.format, width=source.width, height=source.height
    )


def public_image_url(sha256: str, channel: str) -> str:
    """An absolute, signed link to image `sha256` as stored for `channel`, valid for MAX_AGE.

    PermanentError when cxhub has no public address (CXHUB_PUBLIC_URL) or the image is not
    stored in a form the channel takes: no retry changes either."""
    base = (settings.CXHUB_PUBLIC_URL or "").rstrip("/")
    if not base:
        raise PermanentError(
            "This network fetches images from a public link, and cxhub has no public address: "
            "set CXHUB_PUBLIC_URL to the https:// address where the network can reach cxhub. "
            "Nothing was sent."
        )
    image = stored_image(sha256, channel)
    if image is None:
        formats = CHANNEL_FORMATS.get(channel)
        wanted = f" as {', '.join(sorted(formats))}" if formats else ""
        raise PermanentError(
            f"Image {sha256[:12]} is not stored{wanted} for {channel}; nothing was sent."
        )
    token = _signer().sign_object({"sha256": sha256, "channel": channel})
    path = reverse("public-media", kwargs={"token": token, "extension": image.extension})
    return base + path


def image_for_token(token: str) -> StoredImage | None:
    """The image a link's token names, when the token is genuine and younger than MAX_AGE."""
    try:
        data = _signer().unsign_object(token, max_age=MAX_AGE)
    except (signing.BadSignature, ValueError):  # SignatureExpired is a BadSignature
        return None
    if not isinstance(data, dict):
        return None
    sha256, channel = data.get("sha256"), data.get("channel")
    if not isinstance(sha256, str) or not isinstance(channel, str):
        return None
    return stored_image(sha256, channel)
