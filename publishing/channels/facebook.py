"""Facebook Pages: long text, several photos, no counting tricks.

Sources (checked 2025/2026; Meta documents less here than the other networks):
- Text: Meta's Graph API reference for POST /{page-id}/feed gives no length for `message`;
  63,206 characters is the limit Facebook's composer enforces, as publishing tools document it
  (not a Meta page). Counted here as code points.
- Photos: developers.facebook.com/docs/graph-api/reference/page/photos/ (publishing section:
  photos under 4 MB, in JPEG, PNG, GIF, TIFF and newer formats such as WebP). The stored copy I
  could read lacked that section, so format list and size were not re-checked word for word;
  cxhub sends JPEG, PNG, GIF and WEBP renditions, and 4 MB is taken as 4,000,000 bytes.
- Several photos: published as unpublished photos joined with `attached_media` on /feed; Meta
  states no maximum, so cxhub keeps 10 (its own choice, the size of an Instagram carousel).
- Alt text: the photos edge takes `alt_text_custom`; Meta states no maximum length.
"""

from .base import Channel, Limits


class FacebookChannel(Channel):
    name = "facebook"
    label = "Facebook"
    limits = Limits(
        max_text=63_206,
        text_unit="characters",
        max_text_bytes=None,
        max_media=10,
        media_formats=frozenset({"JPEG", "PNG", "GIF", "WEBP"}),
        max_image_bytes=4_000_000,
        max_alt_text=None,
    )
