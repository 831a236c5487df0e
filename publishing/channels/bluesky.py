"""Bluesky: a post's text may have at most 300 grapheme clusters AND 3,000 UTF-8 bytes; links
count as written (facets point into the text, they do not shorten it).

Sources (checked 2025/2026):
- bluesky-social/atproto lexicons/app/bsky/feed/post.json: "text": {"type": "string",
  "maxLength": 3000, "maxGraphemes": 300} (lexicon string maxLength is in UTF-8 bytes).
- lexicons/app/bsky/embed/images.json: "images" maxLength 4; each image blob accept "image/*",
  "maxSize": 1000000 (bytes); "alt" is required (may be empty, but cxhub asks for a description).
  The lexicon sets no length for "alt".
- Alt-text length: the official app's limit, bluesky-social/social-app src/lib/constants.ts
  MAX_ALT_TEXT = 2000 (graphemes; it was 1000 before), since the lexicon has none.
- Formats: the app uploads JPEG, PNG and WEBP as images; an animated GIF goes as a video, which
  cxhub does not send yet, so GIF is left out.
"""

from . import text as textutil
from .base import Channel, Limits


class BlueskyChannel(Channel):
    name = "bluesky"
    label = "Bluesky"
    limits = Limits(
        max_text=300,
        text_unit="graphemes",
        max_text_bytes=3_000,
        max_media=4,
        media_formats=frozenset({"JPEG", "PNG", "WEBP"}),
        max_image_bytes=1_000_000,
        max_alt_text=2_000,
    )
    counting = "graphemes"
    alt_text_unit = "graphemes"

    def count(self, text: str) -> int:
        return textutil.grapheme_count(text)

    def alt_text_length(self, alt_text: str) -> int:
        return textutil.grapheme_count(alt_text)
