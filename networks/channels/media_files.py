"""The bytes of the images a channel sends: dispatch passes each image as a small dict
{position, sha256, alt_text, mime, width, height}; this finds the stored file, preferring the
rendition made for the channel (one that fits its limits) over the original upload."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import PermanentError

_MIMES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}


@dataclass(frozen=True)
class MediaFile:
    data: bytes
    mime: str
    width: int
    height: int
    alt_text: str
    position: int

    @property
    def filename(self) -> str:
        return f"image-{self.position}.{_EXTENSIONS.get(self.mime, 'bin')}"


def load_media(items: Iterable[Mapping[str, Any]], *, channel: str) -> list[MediaFile]:
    """The files to send, in position order. A missing file refuses the post for good: no retry
    brings it back."""
    from publishing.models import Media, MediaRendition

    files = []
    for item in sorted(items, key=lambda i: i.get("position", 0)):
        sha256 = item.get("sha256") or ""
        media = Media.objects.filter(sha256=sha256).order_by("pk").first()
        if media is None:
            raise PermanentError(f"Image {sha256[:12]} is no longer stored; nothing was sent.")
        rendition = MediaRendition.objects.filter(media=media, channel=channel).first()
        source = rendition if rendition is not None else media
        try:
            with source.file.open("rb") as handle:
                data = handle.read()
        except (OSError, ValueError) as exc:
            raise PermanentError(f"Image {sha256[:12]} cannot be read: {exc}") from exc
        files.append(
            MediaFile(
                data=data,
                mime=_MIMES.get(source.format, media.mime),
                width=source.width,
                height=source.height,
                alt_text=item.get("alt_text") or media.alt_text or "",
                position=item.get("position", 0),
            )
        )
    return files


def fit_to_limits(data: bytes, info: Any, limits: Any) -> tuple[bytes, Any]:
    """`data` re-encoded, if need be, to meet `limits` (a channel's prepare_media); the same
    bytes when they already do. Raises PermanentError when no rendition can fit."""
    from publishing.media import MediaRejected, make_rendition, process_upload

    from .base import MediaInfo

    try:
        image = process_upload(data)
        rendition = make_rendition(
            image,
            formats=limits.media_formats,
            max_bytes=limits.max_image_bytes,
            max_width=limits.max_image_width,
            max_height=limits.max_image_height,
            max_pixels=limits.max_image_pixels,
            min_aspect_ratio=limits.min_aspect_ratio,
            max_aspect_ratio=limits.max_aspect_ratio,
            max_gif_bytes=limits.max_gif_bytes,
        )
    except MediaRejected as exc:
        raise PermanentError(exc.message) from exc
    if rendition.sha256 == image.sha256 and image.data == data:
        return data, info
    return rendition.data, MediaInfo(
        format=rendition.format,
        width=rendition.width,
        height=rendition.height,
        bytes=rendition.bytes,
        alt_text=getattr(info, "alt_text", ""),
        animated=rendition.animated,
    )
