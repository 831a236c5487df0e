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
