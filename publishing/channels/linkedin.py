"""LinkedIn (Posts API): up to 3,000 characters of commentary in the "little" text format, in
which reserved characters must be escaped with a backslash or the text is cut short silently.

Sources (checked 2025/2026):
- learn.microsoft.com/linkedin/marketing/community-management/shares/little-text-format:
  "Characters reserved for little elements must be escaped to be treated as plaintext" and "All
  reserved characters need to be escaped with a backslash, even if those characters are not
  used in one of the supported elements or templates"; reserved: | { } @ [ ] ( ) < > # \\ * _ ~.
  (Unescaped, the post is published cut at the first reserved character.)
- Commentary length: 3,000 characters, LinkedIn's post limit as publishing tools document it
  (Ayrshare, Blotato); the Posts API pages I could read do not state it. Counted on the text as
  written, before escaping.
- Images: LinkedIn's Images API (learn.microsoft.com/linkedin/marketing/community-management/
  shares/images-api, as mirrored by CData's LinkedIn driver docs): JPG, GIF (≤ 250 frames) and
  PNG; "total pixel count (width X height) less than 36,152,320". MultiImage API: 2 to 20
  images per post. `altText` up to 4,086 characters (LinkedIn's figure as quoted by an
  integration; not re-read on LinkedIn's page). LinkedIn states no byte limit for images;
  5 MB (5 × 2^20) is the figure publishing tools use.
"""

from .base import Channel, Limits

RESERVED = frozenset("|{}@[]()<>#\\*_~")


def escape_little(text: str) -> str:
    """`text` as plain text in the little format: each reserved character escaped."""
    return "".join("\\" + char if char in RESERVED else char for char in text)


class LinkedInChannel(Channel):
    name = "linkedin"
    label = "LinkedIn"
    limits = Limits(
        max_text=3_000,
        text_unit="characters",
        max_text_bytes=None,
        max_media=20,
        media_formats=frozenset({"JPEG", "PNG", "GIF"}),
        max_image_bytes=5 * 1024 * 1024,
        max_image_pixels=36_152_320 - 1,  # "less than 36,152,320"
        max_alt_text=4_086,
    )

    def render(self, text: str) -> str:
        return escape_little(text)
