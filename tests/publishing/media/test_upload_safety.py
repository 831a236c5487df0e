"""process_upload refuses what it must not decode or keep: wrong types, bombs, broken files."""

import io
import time

import pytest
from PIL import Image, ImageFile

from publishing import media
from publishing.media import MediaRejected, process_upload, sniff

from .images import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    YELLOW,
    animated,
    blank_png,
    encode,
    gif_frame,
    gif_with_oversized_frame,
    heic_header,
    noisy_rgb,
)

FIVE_COLOURS = [RED, GREEN, BLUE, YELLOW, WHITE]


@pytest.fixture
def watch_decoding(monkeypatch):
    """From the call on, records the size of every image decoded, whichever plugin decodes it."""

    def watch() -> list[tuple[int, int]]:
        decoded = []
        originals = {cls: cls.load for cls in (ImageFile.ImageFile, Image.Image)}

        def spy(cls):
            def load(self, *args, **kwargs):
                decoded.append(self.size)
                return originals[cls](self, *args, **kwargs)

            return load

        for cls in originals:
            monkeypatch.setattr(cls, "load", spy(cls))
        return decoded

    return watch


def refused(data, **limits) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        process_upload(data, **limits)
    assert caught.value.message == str(caught.value)
    return caught.value


# --- The type comes from the content ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
        (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
            b'<rect width="10" height="10"/></svg>',
            "SVG",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (encode(Image.new("RGB", (8, 8), "red"), "BMP"), "BMP"),
        (encode(Image.new("RGB", (8, 8), "red"), "TIFF"), "TIFF"),
        (encode(Image.new("RGB", (16, 16), "red"), "ICO"), "ICO"),
        (heic_header(), "HEIC"),
    ],
    ids=["pdf", "svg-with-xml-prolog", "bare-svg", "bmp", "tiff", "ico", "heic"],
)
def test_it_refuses_other_formats_by_name_and_says_what_is_accepted(data, words):
    rejection = refused(data)

    assert rejection.code == "unsupported_format"
    assert words in rejection.message
    assert "JPEG, PNG, WebP and GIF" in rejection.message


def test_it_refuses_a_pdf_renamed_to_png(tmp_path):
    path = tmp_path / "poster.png"
    path.write_bytes(b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\ntrailer\n%%EOF\n")

    with path.open("rb") as upload:
        rejection = refused(upload)

    assert rejection.code == "unsupported_format"
    assert "PDF" in rejection.message


@pytest.mark.parametrize(
    "data",
    [b"Dear team, please post this.\n", b"\x00\x01\x02\x03" * 100, b"RIFF\x10\0\0\0AVI LIST"],
    ids=["text", "binary", "riff-but-not-webp"],
)
def test_it_refuses_what_is_not_an_image(data):
    rejection = refused(data)

    assert rejection.code == "not_an_image"
    assert "JPEG, PNG, WebP and GIF" in rejection.message


def test_it_refuses_an_empty_file():
    assert refused(b"").code == "empty"
    assert refused(io.BytesIO(b"")).code == "empty"


def test_sniff_names_only_the_allowed_formats():
    small = Image.new("RGB", (4, 4))

    assert sniff(encode(small, "JPEG")) == "JPEG"
    assert sniff(encode(small, "PNG")) == "PNG"
    assert sniff(encode(small, "GIF")) == "GIF"
    assert sniff(encode(small, "WEBP")) == "WEBP"
    assert sniff(encode(small, "BMP")) is None
    assert sniff(b"%PDF-1.7") is None
    assert sniff(b"") is None


# --- Size, checked before anything is decoded ---------------------------------------------------


def test_it_checks_the_byte_size_first_and_reads_no_more_than_one_byte_over():
    upload = io.BytesIO(b"%PDF-" + b"x" * 10_000)

    rejection = refused(upload, max_bytes=1_000)

    assert rejection.code == "too_many_bytes"  # not "unsupported_format": size comes first
    assert "1 KB" in rejection.message
    assert upload.tell() == 1_001


def test_it_refuses_a_decompression_bomb_without_decoding_it(watch_decoding):
    bomb = blank_png(20_000, 20_000)
    assert len(bomb) < 100_000  # 400 million pixels in a few dozen KB
    decoded = watch_decoding()

    started = time.perf_counter()
    rejection = refused(bomb)
    elapsed = time.perf_counter() - started

    assert rejection.code in {"too_many_pixels", "too_large_dimensions"}
    assert "20,000 × 20,000" in rejection.message
    assert decoded == []
    assert elapsed < 1.0


def test_it_refuses_too_many_pixels_within_the_side_limit_without_decoding(watch_decoding):
    data = blank_png(8_000, 8_000)  # 64 MP, each side under 12,000
    decoded = watch_decoding()

    rejection = refused(data)

    assert rejection.code == "too_many_pixels"
    assert "64 megapixels" in rejection.message
    assert "40 megapixels" in rejection.message
    assert decoded == []


def test_it_refuses_a_side_longer_than_the_limit(watch_decoding):
    data = blank_png(20_000, 10)  # only 200,000 pixels, but 20,000 wide
    decoded = watch_decoding()

    rejection = refused(data)

    assert rejection.code == "too_large_dimensions"
    assert "12,000" in rejection.message
    assert decoded == []


def test_it_measures_a_gif_by_its_frame_not_by_the_screen_it_declares(watch_decoding):
    data = gif_with_oversized_frame(screen=(1, 1), frame=(5_000, 9_000))
    decoded = watch_decoding()

    rejection = refused(data)

    assert rejection.code == "too_many_pixels"
    assert decoded == []


def test_it_refuses_a_later_gif_frame_that_grows_the_canvas_before_decoding_it(watch_decoding):
    small = encode(Image.new("P", (10, 10)), "GIF")
    data = small[:-1] + gif_frame(5_000, 9_000) + b";"
    decoded = watch_decoding()

    rejection = refused(data)

    assert rejection.code == "too_many_pixels"
    assert decoded  # the first, small frame was decoded...
    assert all(size == (10, 10) for size in decoded)  # ...and nothing bigger


def test_it_refuses_too_many_frames_before_decoding_them(watch_decoding):
    data = animated("GIF", FIVE_COLOURS)
    decoded = watch_decoding()

    rejection = refused(data, max_frames=4)

    assert rejection.code == "too_many_frames"
    assert "5 frames" in rejection.message
    assert decoded == []


def test_it_refuses_a_jpeg_with_thousands_of_scans_before_decoding_it(watch_decoding):
    progressive = encode(noisy_rgb(256, 256), "JPEG", progressive=True)
    last_scan = progressive.rindex(b"\xff\xda")
    # The last refinement scan over and over: libjpeg only warns, and decodes each one.
    data = progressive[:last_scan] + progressive[last_scan:-2] * 2_000 + b"\xff\xd9"
    decoded = watch_decoding()

    rejection = refused(data)

    assert rejection.code == "not_an_image"
    assert "2,0" in rejection.message
    assert decoded == []


def test_it_refuses_an_animation_too_big_in_all_its_frames():
    data = animated("GIF", FIVE_COLOURS, size=(60, 40))  # 12,000 pixels in all

    rejection = refused(data, max_animation_pixels=10_000)

    assert rejection.code == "too_many_pixels"
    assert "5 frames" in rejection.message


def test_it_never_warns_about_bombs_for_an_image_it_accepts(recwarn):
    process_upload(encode(Image.new("L", (64, 64)), "PNG"), max_pixels=10**12, max_side=10**6)

    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


# --- Broken files -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_it_refuses_a_truncated_file(fmt):
    image = noisy_rgb(200, 160)
    if fmt == "GIF":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE)
    data = encode(image, fmt)

    rejection = refused(data[: len(data) * 6 // 10])

    assert rejection.code == "truncated"
    assert "incomplete" in rejection.message


def test_it_refuses_a_file_cut_inside_its_header_as_truncated():
    data = encode(noisy_rgb(64, 64), "JPEG")

    assert refused(data[:12]).code == "truncated"


def test_it_refuses_a_corrupt_png_as_damaged():
    data = bytearray(encode(Image.new("RGB", (32, 32), "red"), "PNG"))
    data[20] ^= 0xFF  # inside IHDR: its checksum no longer matches

    rejection = refused(bytes(data))

    assert rejection.code == "not_an_image"
    assert "damaged" in rejection.message


def test_it_will_not_run_with_truncated_images_allowed(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)

    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        process_upload(encode(Image.new("RGB", (8, 8)), "PNG"))


def test_every_rejection_code_is_one_of_the_stable_codes():
    stable = {
        "unsupported_format",
        "not_an_image",
        "truncated",
        "too_many_pixels",
        "too_large_dimensions",
        "too_many_bytes",
        "too_many_frames",
        "empty",
    }

    assert stable == media.REJECTION_CODES
