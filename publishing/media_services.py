"""Uploading media: re-encode, strip metadata, make a thumbnail and a rendition per network; fitting
an image to a network's limits."""

import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from accounts.models import Role, User
from accounts.selectors import teams_for
from audit.services import record
from cxhub.errors import ApplicationError
from networks.channels import all_channels
from networks.channels.base import Limits, MediaInfo
from networks.channels.errors import PermanentError

from .media import MediaRejected, ProcessedImage, make_rendition, make_thumbnail, process_upload
from .models import Media, MediaRendition

logger = logging.getLogger(__name__)

MAX_ALT_TEXT = 5000
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}


def _name(image: ProcessedImage, suffix: str = "") -> str:
    return f"{image.sha256[:20]}{suffix}.{_EXTENSIONS[image.format]}"


def _upload_team(by: User, team_id: int | None):
    teams = teams_for(user=by, roles=[Role.DRAFTER])
    team = (
        teams.filter(pk=team_id).first() if team_id is not None else teams.order_by("path").first()
    )
    if team is None:
        field = "team" if team_id is not None else "file"
        raise ApplicationError(
            "You can upload images only for a team you draft for.",
            {"fields": {field: ["No team with this id that you can draft for."]}},
        )
    return team


def _renditions(image: ProcessedImage) -> list[tuple[str, ProcessedImage]]:
    """One rendition per network whose limits the upload does not meet already."""
    made = []
    for channel in all_channels():
        limits = channel.limits
        if limits.max_media == 0:
            continue
        try:
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
            # Preflight will say that this image cannot go to this network.
            logger.info("no %s rendition: %s", channel.name, exc.message)
            continue
        if rendition.sha256 != image.sha256:
            made.append((channel.name, rendition))
    return made


@transaction.atomic
def media_upload(
    *, by: User, file, alt_text: str, team_id: int | None = None, original_name: str = ""
) -> Media:
    alt_text = (alt_text or "").strip()
    if settings.CXHUB_REQUIRE_ALT_TEXT and not alt_text:
        raise ApplicationError(
            "Describe the image for people who cannot see it (alt text).",
            {"fields": {"alt_text": ["Alt text is required."]}},
        )
    if len(alt_text) > MAX_ALT_TEXT:
        raise ApplicationError(
            f"Alt text has at most {MAX_ALT_TEXT} characters.",
            {"fields": {"alt_text": [f"At most {MAX_ALT_TEXT} characters."]}},
        )
    team = _upload_team(by, team_id)
    size = getattr(file, "size", None)
    limit = settings.CXHUB_UPLOAD_MAX_BYTES
    if size is not None and size > limit:
        raise ApplicationError(
            f"The file is {size:,} bytes; the limit is {limit:,}.",
            {"fields": {"file": [f"At most {limit:,} bytes."]}},
        )
    try:
        data = file.read(limit + 1)
        image = process_upload(data, max_bytes=limit, max_pixels=settings.CXHUB_UPLOAD_MAX_PIXELS)
    except MediaRejected as exc:
        raise ApplicationError(
            exc.message, {"fields": {"file": [exc.message]}, "code": exc.code}
        ) from None
    thumbnail = make_thumbnail(image)
    media = Media(
        team=team,
        uploaded_by=by,
        original_name=(original_name or getattr(file, "name", "") or "")[:255],
        alt_text=alt_text,
        format=image.format,
        mime=image.mime,
        width=image.width,
        height=image.height,
        bytes=image.bytes,
        sha256=image.sha256,
        animated=image.animated,
    )
    media.file.save(_name(image), ContentFile(image.data), save=False)
    media.thumbnail.save(_name(thumbnail, "-thumb"), ContentFile(thumbnail.data), save=False)
    media.save()
    for channel, rendition in _renditions(image):
        item = MediaRendition(
            media=media,
            channel=channel,
            format=rendition.format,
            width=rendition.width,
            height=rendition.height,
            bytes=rendition.bytes,
            sha256=rendition.sha256,
        )
        item.file.save(_name(rendition, f"-{channel}"), ContentFile(rendition.data), save=False)
        item.save()
    record(
        actor=by,
        action="media.uploaded",
        obj=media,
        team=team,
        data={
            "sha256": media.sha256,
            "format": media.format,
            "width": media.width,
            "height": media.height,
            "bytes": media.bytes,
            "renditions": sorted(r.channel for r in media.renditions.all()),
        },
    )
    return media


def fit_to_limits(data: bytes, info: MediaInfo, limits: Limits) -> tuple[bytes, MediaInfo]:
    """`data` re-encoded, if need be, to meet `limits` (a channel's Limits): the prepared image a
    channel is given, the same bytes when they already do. Raises PermanentError when no
    rendition can fit."""
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
