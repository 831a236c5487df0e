"""Mastodon: grapheme clusters, every URL counts 23, "@user@server" counts as "@user"; each
server announces its own limits, which `limits_from_mastodon_instance` reads.

Sources (checked 2025/2026):
- Counting: mastodon/mastodon app/validators/status_length_validator.rb — MAX_CHARS = 500,
  URL_PLACEHOLDER_CHARS = 23, length is `grapheme_length` of the text with each URL replaced by
  23 characters and each mention by "@#{screen_name.split('@').first}"; URLs are extracted with
  `extract_url_without_protocol: false` (only http:// and https:// links get the discount).
  Also docs.joinmastodon.org/user/posting/ ("All links are counted as 23 characters … Only the
  username part will count against your character limit -- the domain is not counted").
- Server limits: docs.joinmastodon.org/entities/Instance/ (GET /api/v2/instance):
  configuration.statuses.max_characters, .max_media_attachments, .characters_reserved_per_url;
  configuration.media_attachments.image_size_limit (bytes), .image_matrix_limit (width × height),
  .supported_mime_types; app/serializers/rest/instance_serializer.rb also sends
  media_attachments.description_limit (Mastodon 4.4+).
- Defaults: 4 attachments (Status::MEDIA_ATTACHMENTS_LIMIT); images 16 MB
  (MediaAttachment::IMAGE_LIMIT = 16.megabytes = 16,777,216 bytes) and 33,177,600 pixels
  (Attachmentable::MAX_MATRIX_LIMIT, 7680 × 4320), as mastodon.social announces them;
  description ≤ 1,500 characters (MediaAttachment::MAX_DESCRIPTION_LENGTH = 1_500).
- Formats: JPEG, PNG, GIF, WEBP are in every current server's supported_mime_types (HEIC and
  AVIF too, which cxhub does not produce).
"""

from dataclasses import replace
from typing import Any

import regex

from . import text as textutil
from .base import Channel, Limits

URL_PLACEHOLDER_CHARS = 23

# Account::MENTION_RE / USERNAME_RE: "@user" or "@user@server.example".
MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@\w+(?:[.-]+\w+)*)?", regex.IGNORECASE
)

DEFAULT_LIMITS = Limits(
    max_text=500,
    text_unit="characters",
    max_text_bytes=None,
    max_media=4,
    media_formats=frozenset({"JPEG", "PNG", "GIF", "WEBP"}),
    max_image_bytes=16 * 1024 * 1024,
    max_image_pixels=33_177_600,
    max_alt_text=1_500,
)

_MIME_TO_FORMAT = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}


def countable_text(text: str) -> str:
    """The text as StatusLengthValidator measures it: URLs become 23 characters, remote
    mentions lose their server."""
    entities = [
        (span.start, span.end, "x" * URL_PLACEHOLDER_CHARS)
        for span in textutil.find_urls(text, bare_domains=False)
    ]
    entities += [(m.start(), m.end(), "@" + m.group(1)) for m in MENTION.finditer(text)]
    entities.sort()
    out, last = [], 0
    for start, end, replacement in entities:
        if start < last:  # overlaps an earlier entity (remove_overlapping_entities)
            continue
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    return "".join(out)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def limits_from_mastodon_instance(
    instance_json: dict[str, Any], *, defaults: Limits = DEFAULT_LIMITS
) -> Limits:
    """The limits a server announces in its GET /api/v2/instance answer; whatever is missing
    or malformed keeps the default."""
    configuration = instance_json.get("configuration")
    configuration = configuration if isinstance(configuration, dict) else {}
    statuses = configuration.get("statuses")
    statuses = statuses if isinstance(statuses, dict) else {}
    media = configuration.get("media_attachments")
    media = media if isinstance(media, dict) else {}

    max_text = (
        _positive_int(statuses.get("max_characters"))
        # Some forks (Pleroma, glitch-soc's old API) announce it at the top level.
        or _positive_int(instance_json.get("max_toot_chars"))
        or defaults.max_text
    )
    formats = defaults.media_formats
    mime_types = media.get("supported_mime_types")
    if isinstance(mime_types, list) and mime_types:
        announced = {_MIME_TO_FORMAT[m] for m in mime_types if m in _MIME_TO_FORMAT}
        formats = frozenset(announced) or defaults.media_formats
    return replace(
        defaults,
        max_text=max_text,
        max_media=_positive_int(statuses.get("max_media_attachments")) or defaults.max_media,
        media_formats=formats,
        max_image_bytes=_positive_int(media.get("image_size_limit")) or defaults.max_image_bytes,
        max_image_pixels=(
            _positive_int(media.get("image_matrix_limit")) or defaults.max_image_pixels
        ),
        max_alt_text=_positive_int(media.get("description_limit")) or defaults.max_alt_text,
    )


class MastodonChannel(Channel):
    name = "mastodon"
    label = "Mastodon"
    limits = DEFAULT_LIMITS
    counting = "graphemes"
    url_weight = URL_PLACEHOLDER_CHARS
    mentions_count_local_part = True

    def count(self, text: str) -> int:
        return textutil.grapheme_count(countable_text(text))

    @staticmethod
    def limits_from_instance(instance_json: dict[str, Any]) -> Limits:
        return limits_from_mastodon_instance(instance_json)
