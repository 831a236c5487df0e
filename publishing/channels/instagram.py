"""Instagram (professional accounts, Content Publishing API): every post needs an image; JPEG
only; caption ≤ 2,200 characters with ≤ 30 hashtags and ≤ 20 @mentions.

Sources (checked 2025/2026):
- developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media
  (POST /{ig-user-id}/media): `caption` "Maximum 2200 characters, 30 hashtags, and 20 @ tags";
  Image specifications: "Format: JPEG", "File size: 8 MB maximum", "Aspect ratio: Must be within
  a 4:5 to 1.91:1 range", "Minimum width: 320 (will be scaled up …)", "Maximum width: 1440 (will
  be scaled down …)". 8 MB is taken as 8,000,000 bytes, the stricter reading.
- developers.facebook.com/docs/instagram-platform/content-publishing/: image, video, reel or
  carousel (up to 10 items) — there is no text-only post; `alt_text` for image posts since
  24 March 2025 (no maximum length is documented).
"""

from collections.abc import Sequence

from .base import Channel, Limits, MediaInfo, Problem

MIN_WIDTH = 320
MAX_WIDTH = 1440


class InstagramChannel(Channel):
    name = "instagram"
    label = "Instagram"
    limits = Limits(
        max_text=2_200,
        text_unit="characters",
        max_text_bytes=None,
        max_media=10,
        media_formats=frozenset({"JPEG"}),
        max_image_bytes=8_000_000,
        min_aspect_ratio=4 / 5,
        max_aspect_ratio=1.91,
        max_alt_text=None,
        requires_media=True,
        max_hashtags=30,
        max_mentions=20,
    )

    def validate(
        self, text: str, media: Sequence[MediaInfo], *, limits: Limits | None = None
    ) -> list[Problem]:
        problems = super().validate(text, media, limits=limits)
        # Instagram rescales these itself: worth knowing, not worth blocking.
        for index, item in enumerate(media):
            if item.width < MIN_WIDTH or item.width > MAX_WIDTH:
                problems.append(
                    Problem(
                        "media_will_be_rescaled",
                        "warning",
                        f"Image {index + 1} is {item.width:,} pixels wide; Instagram scales "
                        f"images to between {MIN_WIDTH:,} and {MAX_WIDTH:,} pixels wide.",
                        f"media[{index}]",
                    )
                )
        return problems
