"""What the channels ask publishing for about a post they send (networks.hooks, connected in
PublishingConfig.ready()): the stored images, as files, and the tries dispatch has made."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Min

from networks.channels.errors import PermanentError
from networks.channels.media_files import MediaFile

from .models import Media, MediaRendition, PublishAttempt

_MIMES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def load_media(items: Iterable[Mapping[str, Any]], *, channel: str) -> list[MediaFile]:
    """The files to send, in position order (the handler of networks.hooks.media_files). A
    missing file refuses the post for good: no retry brings it back."""
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


def target_tries(*, idempotency_key: str) -> tuple[datetime | None, int]:
    """When dispatch first tried the target with this key, and how many tries it has started
    (this one among them), from its PublishAttempts; (None, 0) for a key that is no target's
    (the handler of networks.hooks.target_tries)."""
    try:
        tries = PublishAttempt.objects.filter(target__idempotency_key=idempotency_key).aggregate(
            first=Min("started_at"), count=Count("pk")
        )
    except (ValidationError, ValueError):  # not a UUID
        return None, 0
    return tries["first"], tries["count"]
