"""The bytes of the images a channel sends: dispatch passes each image as a small dict
{position, sha256, alt_text, mime, width, height}; publishing, which stores them, answers with
the files (networks.hooks.media_files; publishing.channel_media), preferring the rendition made
for the channel (one that fits its limits) over the original upload."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import hooks

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
    """The files to send, in position order, from publishing, which stores them
    (networks.hooks.media_files). A missing file refuses the post for good: no retry brings it
    back."""
    [files] = hooks.media_files.send(items=list(items), channel=channel)
    return files
