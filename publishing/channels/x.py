"""X: 280 "weighted" characters after NFC normalisation, per twitter-text's v3 configuration.

Sources (checked 2025/2026):
- docs.x.com/fundamentals/counting-characters (formerly developer.x.com/en/docs/counting-
  characters): posts hold up to 280 characters; weighted counting; every URL is wrapped by t.co
  and counts 23 whatever its length; every emoji counts 2 "regardless of complexity" (ZWJ
  sequences such as 👨‍👩‍👧‍👦 and skin tones count 2 once); length is measured on the NFC form
  (café composed or decomposed counts 4).
- twitter/twitter-text config/v3.json: maxWeightedTweetLength 280, scale 100, defaultWeight 200,
  transformedURLLength 23, emojiParsingEnabled true, ranges of weight 100 (i.e. 1): 0–4351,
  8192–8205, 8208–8223, 8242–8247. Everything else (CJK among it) weighs 2.
- Media: docs.x.com/x-api/media (upload size limits: image 5 MB, GIF 15 MB) and the media best
  practices ("up to 4 photos, 1 animated GIF or 1 video in a Post"; JPG, PNG, GIF, WEBP).
  5 MB and 15 MB are taken as 5 × 2^20 and 15 × 2^20 bytes, as X's upload errors state them.
- Alt text: POST /2/media/metadata (and v1.1 media/metadata/create) "alt_text.text":
  "Must be <= 1000 chars".
"""

from collections.abc import Sequence

from . import text as textutil
from .base import Channel, Limits, MediaInfo, Problem

MAX_WEIGHTED_LENGTH = 280
TRANSFORMED_URL_LENGTH = 23
DEFAULT_WEIGHT = 2
# (first, last) code points, inclusive, that weigh 1.
LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def code_point_weight(char: str) -> int:
    point = ord(char)
    for first, last in LIGHT_RANGES:
        if first <= point <= last:
            return 1
    return DEFAULT_WEIGHT


def weighted_length(text: str) -> int:
    """twitter-text v3's weightedLength: URLs 23, emoji sequences 2, other code points by range,
    all on the NFC form."""
    text = textutil.nfc(text)
    units = {span.start: (span.end, TRANSFORMED_URL_LENGTH) for span in textutil.find_urls(text)}
    for span in textutil.find_emoji_sequences(text):
        units.setdefault(span.start, (span.end, DEFAULT_WEIGHT))
    total, index = 0, 0
    while index < len(text):
        unit = units.get(index)
        if unit is not None:
            index, weight = unit
            total += weight
        else:
            total += code_point_weight(text[index])
            index += 1
    return total


class XChannel(Channel):
    name = "x"
    label = "X"
    limits = Limits(
        max_text=MAX_WEIGHTED_LENGTH,
        text_unit="weighted characters",
        max_text_bytes=None,
        max_media=4,
        media_formats=frozenset({"JPEG", "PNG", "GIF", "WEBP"}),
        max_image_bytes=5 * 1024 * 1024,
        max_gif_bytes=15 * 1024 * 1024,
        max_alt_text=1_000,
    )
    counting = "x-weighted"
    url_weight = TRANSFORMED_URL_LENGTH
    bare_domain_urls = True

    def count(self, text: str) -> int:
        return weighted_length(text)

    def validate(
        self, text: str, media: Sequence[MediaInfo], *, limits: Limits | None = None
    ) -> list[Problem]:
        problems = super().validate(text, media, limits=limits)
        if len(media) > 1 and any(item.format == "GIF" and item.animated for item in media):
            problems.append(
                Problem(
                    "animated_gif_not_alone",
                    "error",
                    f"An animated GIF must be the only image in a post on X; this post has "
                    f"{len(media)} images.",
                    "media",
                )
            )
        return problems
