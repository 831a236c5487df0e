"""make_rendition fits an image to one network's limits; make_thumbnail makes the small still."""

import pytest
from PIL import Image

from publishing.media import MediaRejected, make_rendition, make_thumbnail, process_upload

from .images import BLUE, GREEN, RED, WHITE, animated, encode, noisy_gif, noisy_rgb, reopen

ALL_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
BLUESKY = {"formats": ALL_FORMATS, "max_bytes": 1_000_000}
INSTAGRAM = {
    "formats": frozenset({"JPEG"}),
    "max_bytes": 8_000_000,
    "min_aspect_ratio": 0.8,
    "max_aspect_ratio": 1.91,
}


def close(actual, expected, tolerance=12):
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


@pytest.fixture(scope="module")
def big_noisy_photo():
    """6000 × 4000, about 8 MB as a JPEG at quality 90."""
    return process_upload(encode(noisy_rgb(6000, 4000), "JPEG", quality=90))


def transparent_png(size=(400, 300)):
    img = Image.new("RGBA", size, (0, 128, 0, 255))
    img.paste((0, 0, 0, 0), (0, 0, size[0] // 4, size[1]))
    return process_upload(encode(img, "PNG"))


# --- Unchanged when it fits ---------------------------------------------------------------------


def test_it_returns_an_image_that_already_fits_unchanged():
    image = process_upload(encode(noisy_rgb(800, 800), "JPEG"))

    rendition = make_rendition(image, **INSTAGRAM, max_width=1080)

    assert rendition is image
    assert rendition.sha256 == image.sha256


def test_it_counts_exactly_four_to_five_as_within_the_range():
    image = process_upload(encode(noisy_rgb(1080, 1350), "JPEG"))

    assert make_rendition(image, **INSTAGRAM) is image


# --- Bytes --------------------------------------------------------------------------------------


def test_it_brings_an_8_mb_photo_under_bluesky_s_1_mb_as_a_jpeg_of_the_same_shape(
    big_noisy_photo,
):
    assert big_noisy_photo.bytes > 6_000_000

    rendition = make_rendition(big_noisy_photo, **BLUESKY)

    assert rendition.format == "JPEG"
    assert rendition.bytes <= 1_000_000
    assert rendition.width / rendition.height == pytest.approx(6000 / 4000, abs=0.005)
    assert reopen(rendition.data).size == (rendition.width, rendition.height)


def test_it_lowers_the_quality_before_it_scales_down():
    image = process_upload(encode(noisy_rgb(1200, 800), "JPEG", quality=95))
    at_90 = len(encode(reopen(image.data), "JPEG", quality=90))
    at_40 = len(encode(reopen(image.data), "JPEG", quality=40))

    rendition = make_rendition(image, formats=frozenset({"JPEG"}), max_bytes=(at_90 + at_40) // 2)

    assert (rendition.width, rendition.height) == (1200, 800)  # full size, lower quality
    assert rendition.bytes <= (at_90 + at_40) // 2


def test_it_refuses_only_when_even_a_tiny_image_is_too_heavy():
    image = process_upload(encode(noisy_rgb(600, 400), "JPEG"))

    with pytest.raises(MediaRejected) as caught:
        make_rendition(image, formats=frozenset({"JPEG"}), max_bytes=300)

    assert caught.value.code == "too_many_bytes"
    assert "300 bytes" in caught.value.message


def test_it_uses_the_gif_limit_for_gifs_and_the_image_limit_for_the_rest():
    gif = process_upload(animated("GIF", [RED, GREEN, BLUE], loop=0))

    rendition = make_rendition(gif, formats=ALL_FORMATS, max_bytes=100, max_gif_bytes=1_000_000)

    assert rendition is gif


# --- Format -------------------------------------------------------------------------------------


def test_it_makes_a_tall_png_an_instagram_jpeg_padded_with_white_bars():
    source = Image.new("RGB", (1000, 3000), (30, 90, 200))
    image = process_upload(encode(source, "PNG"))

    rendition = make_rendition(image, **INSTAGRAM)

    assert rendition.format == "JPEG"
    assert 0.8 <= rendition.width / rendition.height <= 1.91
    assert (rendition.width, rendition.height) == (2400, 3000)  # nothing scaled, nothing cut
    result = reopen(rendition.data)
    assert close(result.getpixel((10, 1500)), WHITE)  # bar on the left
    assert close(result.getpixel((2390, 1500)), WHITE)  # bar on the right
    assert close(result.getpixel((705, 5)), (30, 90, 200))  # the whole picture, edge to edge
    assert close(result.getpixel((1695, 2995)), (30, 90, 200))


def test_it_pads_a_panorama_above_and_below_for_instagram():
    image = process_upload(encode(Image.new("RGB", (4000, 1000), (200, 30, 30)), "JPEG"))

    rendition = make_rendition(image, **INSTAGRAM, max_width=1080)

    assert rendition.width == 1080
    assert 0.8 <= rendition.width / rendition.height <= 1.91
    result = reopen(rendition.data)
    assert close(result.getpixel((540, 2)), WHITE)
    assert close(result.getpixel((540, rendition.height // 2)), (200, 30, 30))


def test_it_flattens_transparency_onto_white_when_only_jpeg_is_allowed():
    rendition = make_rendition(transparent_png(), formats=frozenset({"JPEG"}), max_bytes=10**6)

    result = reopen(rendition.data)
    assert (rendition.format, result.mode) == ("JPEG", "RGB")
    assert close(result.getpixel((20, 150)), WHITE)
    assert close(result.getpixel((300, 150)), (0, 128, 0))


def test_it_keeps_transparency_as_png_when_png_is_allowed():
    image = transparent_png()

    rendition = make_rendition(
        image, formats=frozenset({"JPEG", "PNG"}), max_bytes=10**6, max_pixels=30_000
    )

    result = reopen(rendition.data)
    assert (rendition.format, result.mode) == ("PNG", "RGBA")
    assert rendition.width * rendition.height <= 30_000
    assert result.getpixel((5, 5))[3] == 0


def test_it_makes_an_opaque_png_a_jpeg_when_png_is_not_allowed():
    image = process_upload(encode(noisy_rgb(300, 200), "PNG"))

    rendition = make_rendition(image, formats=frozenset({"JPEG", "GIF"}), max_bytes=10**6)

    assert rendition.format == "JPEG"
    assert (rendition.width, rendition.height) == (300, 200)


def test_it_scales_down_to_the_size_limits_keeping_the_shape():
    image = process_upload(encode(noisy_rgb(3000, 2000), "JPEG"))

    rendition = make_rendition(image, formats=ALL_FORMATS, max_bytes=10**7, max_width=1000)

    assert (rendition.width, rendition.height) == (1000, 666)


def test_it_converts_a_tiny_image_without_refusing_it():
    image = process_upload(encode(noisy_rgb(8, 8), "PNG"))

    rendition = make_rendition(image, formats=frozenset({"JPEG"}), max_bytes=10**6)

    assert (rendition.format, rendition.width, rendition.height) == ("JPEG", 8, 8)


def test_it_refuses_formats_it_does_not_know():
    image = process_upload(encode(noisy_rgb(30, 20), "JPEG"))

    with pytest.raises(ValueError):
        make_rendition(image, formats=frozenset({"HEIC"}), max_bytes=10**6)


# --- Animations ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def heavy_gif():
    """400 × 300, four frames of noise: several hundred KB."""
    return process_upload(noisy_gif(4))


def test_a_gif_over_the_gif_limit_becomes_a_smaller_gif_that_still_moves(heavy_gif):
    limit = heavy_gif.bytes * 6 // 10

    rendition = make_rendition(heavy_gif, formats=ALL_FORMATS, max_bytes=10**7, max_gif_bytes=limit)

    assert (rendition.format, rendition.animated, rendition.frames) == ("GIF", True, 4)
    assert rendition.bytes <= limit
    assert 200 <= rendition.width < 400
    assert rendition.width / rendition.height == pytest.approx(400 / 300, abs=0.01)


def test_a_gif_that_cannot_fit_at_half_its_width_becomes_a_still_of_its_first_frame(heavy_gif):
    limit = heavy_gif.bytes // 20

    rendition = make_rendition(heavy_gif, formats=ALL_FORMATS, max_bytes=10**7, max_gif_bytes=limit)

    assert (rendition.format, rendition.animated, rendition.frames) == ("JPEG", False, 1)
    assert (rendition.width, rendition.height) == (400, 300)


def test_an_animation_becomes_a_still_where_animation_is_not_allowed():
    gif = process_upload(animated("GIF", [RED, GREEN, BLUE], loop=0))

    rendition = make_rendition(gif, formats=ALL_FORMATS, max_bytes=10**6, allow_animation=False)

    assert (rendition.animated, rendition.format) == (False, "JPEG")
    assert close(reopen(rendition.data).getpixel((50, 30)), RED)


def test_a_gif_becomes_an_animated_webp_where_gif_is_not_allowed():
    gif = process_upload(animated("GIF", [RED, GREEN, BLUE], loop=0))

    rendition = make_rendition(gif, formats=frozenset({"JPEG", "WEBP"}), max_bytes=10**6)

    assert (rendition.format, rendition.animated, rendition.frames) == ("WEBP", True, 3)


# --- Thumbnails ---------------------------------------------------------------------------------


def test_a_thumbnail_of_a_photo_is_a_jpeg_that_fits_in_the_box(big_noisy_photo):
    thumbnail = make_thumbnail(big_noisy_photo)

    assert thumbnail.format == "JPEG"
    assert (thumbnail.width, thumbnail.height) == (320, 213)
    assert thumbnail.bytes < 100_000


def test_a_thumbnail_of_a_transparent_image_is_a_png_with_its_transparency():
    thumbnail = make_thumbnail(transparent_png(), size=100)

    result = reopen(thumbnail.data)
    assert (thumbnail.format, result.mode, result.size) == ("PNG", "RGBA", (100, 75))
    assert result.getpixel((2, 2))[3] == 0


def test_a_thumbnail_of_an_animation_is_its_first_frame():
    gif = process_upload(animated("GIF", [RED, GREEN, BLUE], loop=0))

    thumbnail = make_thumbnail(gif)

    assert (thumbnail.format, thumbnail.animated, thumbnail.frames) == ("JPEG", False, 1)
    assert close(reopen(thumbnail.data).getpixel((50, 30)), RED)


def test_a_thumbnail_never_enlarges_a_small_image():
    image = process_upload(encode(noisy_rgb(100, 50), "PNG"))

    thumbnail = make_thumbnail(image)

    assert (thumbnail.width, thumbnail.height) == (100, 50)
