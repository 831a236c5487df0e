"""validate(): the problems a person sees, with stable codes, fields and the numbers."""

from dataclasses import replace

import pytest

from networks.channels import MediaInfo, Problem, get_channel

FAMILY = "👩\u200d👩\u200d👧\u200d👦"


def jpeg(**overrides) -> MediaInfo:
    values = {
        "format": "JPEG",
        "width": 1080,
        "height": 1080,
        "bytes": 200_000,
        "alt_text": "A crowd at the town hall",
        "animated": False,
    }
    return MediaInfo(**(values | overrides))


def codes(problems: list[Problem]) -> list[str]:
    return [p.code for p in problems]


@pytest.mark.parametrize(
    "name", ["mastodon", "bluesky", "x", "facebook", "instagram", "linkedin", "webhook", "sandbox"]
)
def test_a_short_post_with_a_described_jpeg_has_no_problem(name):
    assert get_channel(name).validate("Hello from the town hall.", [jpeg()]) == []


def test_too_long_on_bluesky_says_how_many_graphemes_too_many():
    [problem] = get_channel("bluesky").validate("é" * 312, [])
    assert problem == Problem(
        "text_too_long",
        "error",
        "The text is 312 graphemes; Bluesky allows 300 (12 too many).",
        "body",
    )


def test_too_long_on_mastodon_counts_characters():
    [problem] = get_channel("mastodon").validate("a" * 501, [])
    assert problem.code == "text_too_long"
    assert problem.message == "The text is 501 characters; Mastodon allows 500 (1 too many)."


def test_bluesky_byte_limit_is_reached_before_300_graphemes_with_multibyte_text():
    bluesky = get_channel("bluesky")
    text = FAMILY * 121  # 121 graphemes, 121 × 25 = 3,025 bytes
    assert bluesky.count(text) == 121
    [problem] = bluesky.validate(text, [])
    assert problem.code == "text_too_many_bytes"
    assert problem.severity == "error"
    assert problem.field == "body"
    assert problem.message.startswith(
        "The text is 3,025 bytes in UTF-8; Bluesky allows 3,000 (25 too many)."
    )


def test_bluesky_accepts_exactly_3000_bytes():
    assert get_channel("bluesky").validate(FAMILY * 120, []) == []


def test_too_many_images():
    [problem] = get_channel("bluesky").validate("Five", [jpeg()] * 5)
    assert problem == Problem(
        "too_many_media", "error", "The post has 5 images; Bluesky allows 4 (1 too many).", "media"
    )


def test_webp_is_refused_on_instagram():
    [problem] = get_channel("instagram").validate("Caption", [jpeg(), jpeg(format="WEBP")])
    assert problem == Problem(
        "media_format_unsupported", "error", "Image 2 is WEBP; Instagram accepts JPEG.", "media[1]"
    )


def test_a_1000001_byte_image_is_too_large_for_bluesky():
    [problem] = get_channel("bluesky").validate("Big", [jpeg(bytes=1_000_001)])
    assert problem == Problem(
        "media_too_large",
        "error",
        "Image 1 is 1,000,001 bytes (1.0 MB); Bluesky allows 1,000,000 bytes (1.0 MB) per image "
        "(1 byte too many).",
        "media[0]",
    )


def test_a_1000000_byte_image_fits_bluesky():
    assert get_channel("bluesky").validate("Fits", [jpeg(bytes=1_000_000)]) == []


def test_x_applies_its_own_larger_limit_to_gifs():
    x = get_channel("x")
    ten_mb = 10 * 1024 * 1024
    assert x.validate("GIF", [jpeg(format="GIF", bytes=ten_mb, animated=True)]) == []
    [problem] = x.validate("JPEG", [jpeg(bytes=ten_mb)])
    assert problem.code == "media_too_large"
    assert "X allows 5,242,880 bytes (5.2 MB) per image" in problem.message


def test_an_animated_gif_must_be_alone_on_x():
    problems = get_channel("x").validate("Two", [jpeg(format="GIF", animated=True), jpeg()])
    assert codes(problems) == ["animated_gif_not_alone"]
    assert problems[0].field == "media"


def test_missing_alt_text_is_an_error_on_the_image_alt_text_field():
    [problem] = get_channel("mastodon").validate("Look", [jpeg(), jpeg(alt_text="  ")])
    assert problem.code == "alt_text_missing"
    assert problem.severity == "error"
    assert problem.field == "media[1].alt_text"
    assert problem.message.startswith("Image 2 has no alt text.")


def test_no_alt_text_is_asked_for_where_the_network_has_none():
    channel = get_channel("webhook")
    limits = replace(channel.limits, alt_text_supported=False)
    assert channel.validate("Look", [jpeg(alt_text="")], limits=limits) == []


@pytest.mark.parametrize(
    ("name", "limit", "unit"),
    [
        ("mastodon", 1_500, "characters"),
        ("x", 1_000, "characters"),
        ("bluesky", 2_000, "graphemes"),
    ],
)
def test_alt_text_too_long(name, limit, unit):
    channel = get_channel(name)
    assert channel.validate("Look", [jpeg(alt_text="a" * limit)]) == []
    [problem] = channel.validate("Look", [jpeg(alt_text="a" * (limit + 1))])
    assert problem == Problem(
        "alt_text_too_long",
        "error",
        f"The alt text of image 1 is {limit + 1:,} {unit}; {channel.label} allows {limit:,} "
        "(1 too many).",
        "media[0].alt_text",
    )


def test_bluesky_counts_alt_text_in_graphemes():
    assert get_channel("bluesky").validate("Look", [jpeg(alt_text=FAMILY * 2_000)]) == []


def test_instagram_needs_an_image():
    [problem] = get_channel("instagram").validate("Words only", [])
    assert problem == Problem(
        "media_required", "error", "Instagram needs at least one image.", "media"
    )


@pytest.mark.parametrize(("width", "height"), [(1080, 1350), (1080, 1080), (1080, 566)])
def test_instagram_accepts_aspect_ratios_from_4_5_to_1_91(width, height):
    assert get_channel("instagram").validate("Fits", [jpeg(width=width, height=height)]) == []


def test_instagram_refuses_a_portrait_taller_than_4_5():
    [problem] = get_channel("instagram").validate("Tall", [jpeg(width=1000, height=2000)])
    assert problem == Problem(
        "media_aspect_ratio",
        "error",
        "Image 1 is 1,000 × 2,000 pixels, an aspect ratio (width:height) of 0.50:1; Instagram "
        "accepts 0.80:1 to 1.91:1.",
        "media[0]",
    )


def test_instagram_refuses_a_landscape_wider_than_1_91():
    [problem] = get_channel("instagram").validate("Wide", [jpeg(width=1400, height=700)])
    assert problem.code == "media_aspect_ratio"
    assert "2.00:1" in problem.message


def test_instagram_warns_that_it_rescales_wide_images():
    [problem] = get_channel("instagram").validate("Wide", [jpeg(width=2000, height=2000)])
    assert problem.code == "media_will_be_rescaled"
    assert problem.severity == "warning"


def test_too_many_hashtags_on_instagram():
    caption = " ".join(f"#tag{i}" for i in range(31))
    [problem] = get_channel("instagram").validate(caption, [jpeg()])
    assert problem == Problem(
        "too_many_hashtags",
        "error",
        "The text has 31 hashtags; Instagram allows 30 (1 too many).",
        "body",
    )


def test_thirty_hashtags_are_fine_on_instagram():
    caption = " ".join(f"#tag{i}" for i in range(30))
    assert get_channel("instagram").validate(caption, [jpeg()]) == []


def test_too_many_mentions_on_instagram():
    caption = " ".join(f"@user{i}" for i in range(21))
    [problem] = get_channel("instagram").validate(caption, [jpeg()])
    assert problem.code == "too_many_mentions"
    assert problem.message == "The text mentions 21 accounts; Instagram allows 20 (1 too many)."


def test_too_many_pixels_for_a_mastodon_server():
    [problem] = get_channel("mastodon").validate("Huge", [jpeg(width=8000, height=6000)])
    assert problem.code == "media_too_many_pixels"
    assert problem.message == (
        "Image 1 is 8,000 × 6,000 pixels (48,000,000 pixels); Mastodon allows 33,177,600 pixels."
    )


def test_an_empty_post_is_refused():
    [problem] = get_channel("mastodon").validate("  ", [])
    assert problem.code == "empty"


def test_limits_can_be_overridden_per_account():
    mastodon = get_channel("mastodon")
    roomy = replace(mastodon.limits, max_text=5_000)
    assert codes(mastodon.validate("a" * 600, [])) == ["text_too_long"]
    assert mastodon.validate("a" * 600, [], limits=roomy) == []


def test_an_empty_instagram_post_is_told_only_that_it_needs_an_image():
    assert codes(get_channel("instagram").validate("", [])) == ["media_required"]
