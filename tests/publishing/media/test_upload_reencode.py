"""process_upload re-encodes what it accepts: upright, sRGB, same format, and no metadata."""

import hashlib
import io

import pytest
from PIL import ExifTags, Image, ImageChops, ImageCms, PngImagePlugin

from publishing.media import process_upload

from .images import BLUE, GREEN, RED, WHITE, YELLOW, animated, encode, quadrants, reopen


def close(actual, expected, tolerance=12):
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 41.0)
    return exif


def assert_no_metadata(data: bytes) -> None:
    img = reopen(data)
    assert len(img.getexif()) == 0
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment"} & set(img.info)
    for secret in (b"SecretCam", b"Exif\x00\x00", b"secret"):
        assert secret not in data


# --- Metadata -----------------------------------------------------------------------------------


def test_it_removes_exif_with_gps_xmp_comments_and_the_icc_profile_from_a_jpeg():
    data = encode(
        Image.new("RGB", (64, 48), (200, 120, 40)),
        "JPEG",
        exif=exif_with_gps(),
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret place</x:xmpmeta>',
        comment=b"secret comment",
        icc_profile=srgb_icc(),
    )
    original = reopen(data)
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test file really has GPS

    image = process_upload(data)

    assert image.format == "JPEG"
    assert_no_metadata(image.data)
    assert close(reopen(image.data).getpixel((32, 24)), (200, 120, 40))


def test_it_removes_png_text_chunks_and_exif():
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "secret author")
    info.add_text("Comment", "secret compressed", zip=True)
    info.add_itxt("Description", "secret international", lang="en")
    data = encode(Image.new("RGB", (32, 32), "teal"), "PNG", pnginfo=info, exif=exif_with_gps())
    assert reopen(data).text  # the test file really has text

    image = process_upload(data)

    assert reopen(image.data).text == {}
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
        assert chunk not in image.data
    assert_no_metadata(image.data)


def test_it_removes_exif_from_a_webp():
    data = encode(Image.new("RGB", (32, 32), "navy"), "WEBP", exif=exif_with_gps())

    image = process_upload(data)

    assert image.format == "WEBP"
    assert_no_metadata(image.data)


def test_it_removes_the_comment_and_extensions_from_an_animated_gif():
    data = animated("GIF", [RED, GREEN, BLUE], loop=0, comment=b"secret comment")
    assert reopen(data).info.get("comment") == b"secret comment"

    image = process_upload(data)

    assert "comment" not in reopen(image.data).info
    assert b"secret" not in image.data


# --- Pixels -------------------------------------------------------------------------------------


def test_it_turns_an_image_upright_by_its_exif_orientation():
    # Orientation 6: the camera was turned a quarter clockwise, so the stored picture must be
    # turned a quarter clockwise to be seen as taken.
    data = encode(quadrants(80, 60), "JPEG", quality=95, exif=exif_with_gps(orientation=6))

    image = process_upload(data)

    assert (image.width, image.height) == (60, 80)
    upright = reopen(image.data)
    assert close(upright.getpixel((10, 10)), GREEN)  # was bottom left
    assert close(upright.getpixel((50, 10)), RED)  # was top left
    assert close(upright.getpixel((10, 70)), YELLOW)  # was bottom right
    assert close(upright.getpixel((50, 70)), BLUE)  # was top right


def test_it_turns_a_cmyk_jpeg_into_an_rgb_jpeg():
    data = encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG")
    assert reopen(data).mode == "CMYK"

    image = process_upload(data)

    result = reopen(image.data)
    assert (image.format, result.mode) == ("JPEG", "RGB")
    assert close(result.getpixel((32, 24)), RED, tolerance=16)


def test_it_converts_through_the_embedded_profile_and_drops_it():
    data = encode(Image.new("RGB", (32, 32), (10, 200, 90)), "PNG", icc_profile=srgb_icc())

    image = process_upload(data)

    result = reopen(image.data)
    assert "icc_profile" not in result.info
    assert close(result.getpixel((16, 16)), (10, 200, 90), tolerance=3)


def test_it_re_encodes_a_jpeg_at_high_quality_progressively():
    image = process_upload(encode(quadrants(256, 256), "JPEG", quality=100))

    result = reopen(image.data)
    assert result.info.get("progressive") or result.info.get("progression")
    assert close(result.getpixel((200, 200)), YELLOW)


def test_it_keeps_the_transparent_colour_of_an_rgb_png():
    source = Image.new("RGB", (20, 20), (10, 20, 30))
    source.paste((1, 2, 3), (0, 0, 10, 20))

    image = process_upload(encode(source, "PNG", transparency=(1, 2, 3)))

    rgba = reopen(image.data).convert("RGBA")
    assert rgba.getpixel((5, 5))[3] == 0
    assert rgba.getpixel((15, 5)) == (10, 20, 30, 255)


def test_it_keeps_the_alpha_of_a_png():
    source = Image.new("RGBA", (40, 40), (255, 0, 0, 255))
    source.paste((0, 0, 0, 0), (0, 0, 20, 40))
    source.paste((0, 0, 255, 128), (20, 0, 30, 40))

    image = process_upload(encode(source, "PNG"))

    result = reopen(image.data)
    assert image.format == "PNG"
    assert result.mode == "RGBA"
    assert result.getpixel((5, 5))[3] == 0
    assert result.getpixel((25, 5)) == (0, 0, 255, 128)
    assert result.getpixel((35, 5)) == (255, 0, 0, 255)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_it_keeps_a_palette_image_in_its_format_with_its_transparency(fmt):
    source = Image.new("P", (40, 40), 1)
    source.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    source.paste(2, (0, 0, 20, 40))

    image = process_upload(encode(source, fmt, transparency=2))

    result = reopen(image.data)
    assert (image.format, result.mode) == (fmt, "P")
    rgba = result.convert("RGBA")
    assert rgba.getpixel((5, 5))[3] == 0
    assert rgba.getpixel((30, 5)) == (255, 0, 0, 255)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_it_keeps_the_transparency_of_a_grey_image_with_a_transparent_level(fmt):
    source = Image.new("L", (20, 20), 200)
    source.paste(7, (0, 0, 10, 20))

    image = process_upload(encode(source, fmt, transparency=7))

    rgba = reopen(image.data).convert("RGBA")
    assert rgba.getpixel((5, 5))[3] == 0
    assert rgba.getpixel((15, 5)) == (200, 200, 200, 255)


def test_it_scales_a_16_bit_grey_png_to_8_bits_rather_than_clipping_it():
    image = process_upload(encode(Image.new("I;16", (16, 16), 40_000), "PNG"))

    result = reopen(image.data)
    assert result.mode == "L"
    assert result.getpixel((8, 8)) == 40_000 // 256


def test_it_keeps_a_lossless_webp_lossless():
    source = quadrants(64, 64)

    image = process_upload(encode(source, "WEBP", lossless=True))

    assert b"VP8L" in image.data
    assert ImageChops.difference(reopen(image.data).convert("RGB"), source).getbbox() is None


# --- Animations ---------------------------------------------------------------------------------


def frames_of(data: bytes) -> list[tuple[Image.Image, int]]:
    img = Image.open(io.BytesIO(data))
    out = []
    for index in range(img.n_frames):
        img.seek(index)
        out.append((img.convert("RGBA"), img.info.get("duration")))
    return out


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_it_keeps_an_animation_animated_with_its_frames_timing_and_loop(fmt):
    data = animated(fmt, [RED, GREEN, BLUE], durations=[100, 200, 300], loop=0)

    image = process_upload(data)

    assert (image.format, image.animated, image.frames) == (fmt, True, 3)
    before, after = frames_of(data), frames_of(image.data)
    assert [duration for _, duration in after] == [100, 200, 300]
    assert reopen(image.data).info.get("loop") == 0
    for (old, _), (new, _) in zip(before, after, strict=True):
        assert close(new.getpixel((50, 30)), old.getpixel((50, 30)))
    assert close(after[0][0].getpixel((7, 7))[:3], WHITE)  # the square that moves
    assert close(after[2][0].getpixel((17, 7))[:3], WHITE)
    assert not close(after[2][0].getpixel((7, 7))[:3], WHITE)


def test_it_keeps_a_gif_that_plays_once_playing_once():
    data = animated("GIF", [RED, GREEN, BLUE])  # no NETSCAPE loop block
    assert "loop" not in reopen(data).info

    image = process_upload(data)

    assert "loop" not in reopen(image.data).info


def test_it_keeps_the_transparency_of_every_frame_of_a_gif():
    frames = []
    for index in range(3):
        frame = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
        frame.paste((255, 0, 0, 255), (index * 10, 5, index * 10 + 12, 20))
        frames.append(frame)
    data = encode(
        frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, disposal=2
    )

    image = process_upload(data)

    assert image.frames == 3
    for (frame, _), expected in zip(frames_of(image.data), frames, strict=True):
        assert ImageChops.difference(frame, expected).getbbox() is None


# --- The description ----------------------------------------------------------------------------


def test_it_describes_the_bytes_it_returns():
    image = process_upload(encode(quadrants(120, 90), "PNG"))

    assert image.sha256 == hashlib.sha256(image.data).hexdigest()
    assert image.bytes == len(image.data)
    assert (image.width, image.height) == reopen(image.data).size == (120, 90)
    assert (image.mime, image.animated, image.frames) == ("image/png", False, 1)
    assert "data=" not in repr(image)  # megabytes of data do not flood logs


def test_it_accepts_a_file_object_as_well_as_bytes():
    data = encode(quadrants(40, 40), "GIF")

    from_file = process_upload(io.BytesIO(data))

    assert from_file == process_upload(data)
    assert from_file.format == "GIF"
