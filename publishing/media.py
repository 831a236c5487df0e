"""The image pipeline: turn an upload into a safe image with no metadata, and make thumbnails and
per-network renditions from it. Pure functions over bytes: no models, no settings, no database.

Safety rests on four rules: the type comes from the content (never the name) and only JPEG, PNG,
WebP and GIF pass; the size is read from the header and checked before anything is decoded; a
file that ends early is refused (``ImageFile.LOAD_TRUNCATED_IMAGES`` must stay off); and every
output is encoded afresh from pixels alone, so EXIF (with GPS), XMP, ICC, comments and text chunks
cannot ride along.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import io
import math
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from PIL import (
    ExifTags,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    WebPImagePlugin,
)

try:
    from PIL import ImageCms
except ImportError:  # Pillow built without littlecms: profiles are dropped, not converted
    ImageCms = None  # type: ignore[assignment]

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
# The stable codes of MediaRejected, for programs (the message is for people).
REJECTION_CODES = frozenset(
    {
        "unsupported_format",
        "not_an_image",
        "truncated",
        "too_many_pixels",
        "too_large_dimensions",
        "too_many_bytes",
        "too_many_frames",
        "empty",
    }
)

_ACCEPTED = "Accepted images are JPEG, PNG, WebP and GIF"
_OPENERS: dict[str, type[ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
}
# Everything Pillow raises on a file it cannot parse. Only Pillow calls run under this net, so
# that a bug of ours is not reported as a broken upload.
_PILLOW_ERRORS = (
    OSError,
    SyntaxError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    struct.error,
)
_GRAY16_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_QUALITY = 90
# Tried from the top; make_rendition keeps the best quality that fits under the byte limit.
_QUALITY_LADDER = (90, 85, 80, 75, 70, 65, 60, 55, 50, 45, 40)
_THUMBNAIL_QUALITY = 85
_ANIMATION_QUALITY = 80
_MAX_JPEG_SCANS = 100
_MIN_SIDE = 16  # shrinking for bytes stops here: smaller is no longer the author's image
_MAX_SHRINKS = 12
_WHITE = (255, 255, 255)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class MediaRejected(Exception):
    """An image we will not take: `message` is a sentence for the person who uploaded it (what is
    wrong and what is accepted), `code` one of REJECTION_CODES for programs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"MediaRejected({self.code!r}, {self.message!r})"


@dataclass(frozen=True)
class ProcessedImage:
    """An image as cxhub stores and sends it. `bytes` and `sha256` describe `data`."""

    data: builtins.bytes = field(repr=False)
    format: str  # "JPEG" | "PNG" | "WEBP" | "GIF"
    mime: str
    width: int
    height: int
    bytes: int
    sha256: str
    animated: bool
    frames: int


@dataclass(frozen=True)
class _Limits:
    max_pixels: int
    max_side: int
    max_frames: int
    max_animation_pixels: int


@dataclass(frozen=True)
class _Target:
    formats: frozenset[str]
    max_bytes: int
    max_gif_bytes: int | None
    max_width: int | None
    max_height: int | None
    max_pixels: int | None
    min_aspect_ratio: float | None
    max_aspect_ratio: float | None
    allow_animation: bool

    def byte_limit(self, fmt: str) -> int:
        if fmt == "GIF" and self.max_gif_bytes is not None:
            return self.max_gif_bytes
        return self.max_bytes


@dataclass
class _Frames:
    images: list[Image.Image]  # complete frames, all one size, RGB or RGBA
    durations: list[int]  # milliseconds
    loop: int | None  # None: play once (a GIF without a NETSCAPE loop block)


# --- Public API ---------------------------------------------------------------------------------


def sniff(data: builtins.bytes) -> str | None:
    """The Pillow format name of an allowed image, judged from its first bytes; None otherwise."""
    head = bytes(data[:16])
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and WebPImagePlugin.SUPPORTED:
        return "WEBP"
    return None


def process_upload(
    data: builtins.bytes | BinaryIO,
    *,
    max_bytes: int = 25_000_000,
    max_pixels: int = 40_000_000,
    max_side: int = 12_000,
    max_frames: int = 300,
    max_animation_pixels: int = 100_000_000,
) -> ProcessedImage:
    """Check an upload and re-encode it in its own format, without any metadata.

    `max_animation_pixels` caps width × height × frames, which bounds the time and memory
    (about 4 bytes per pixel) that decoding an animation takes.
    Raises MediaRejected.
    """
    _require_truncated_images_refused()
    raw = _read_at_most(data, max_bytes)
    fmt = _allowed_format(raw)
    limits = _Limits(
        # Pillow warns (and, at twice the size, refuses) above Image.MAX_IMAGE_PIXELS. Staying
        # under it means the warning can never fire for an image we accept, without touching
        # the process-wide warning filters, which is not thread-safe.
        max_pixels=min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels),
        max_side=max_side,
        max_frames=max_frames,
        max_animation_pixels=max_animation_pixels,
    )
    img = _open_checked(raw, fmt, limits)
    lossless = fmt == "WEBP" and _webp_is_lossless(raw)
    if _frame_count(img, fmt, raw) > 1:
        # Animations keep their frames, timing and loop; EXIF orientation is not applied,
        # because browsers do not apply it to animations either.
        frames = _decode_frames(img, fmt, raw, limits)
        out = _encode_frames(frames, fmt, quality=_QUALITY, lossless=lossless)
    else:
        still, transparency = _decode_still(img, fmt, raw)
        out = _encode_still(still, fmt, transparency=transparency, lossless=lossless)
    return _describe(out, fmt)


def make_thumbnail(image: ProcessedImage, *, size: int = 320) -> ProcessedImage:
    """A still that fits in a `size` × `size` box (never enlarged): JPEG, or PNG when the image
    has transparent pixels. An animation gives its first frame."""
    _require_truncated_images_refused()
    img = _open_checked(image.data, image.format, _REOPEN_LIMITS)
    with _reading(image.format, image.data):
        if image.format == "JPEG":
            img.draft(None, (size, size))  # decode at 1/2, 1/4 or 1/8 scale where that suffices
        img.load()
    frame = _rgb_or_rgba(img)
    frame.thumbnail((size, size), Image.Resampling.LANCZOS)
    fmt = "PNG" if frame.mode == "RGBA" else "JPEG"
    return _describe(_encode_still(frame, fmt, quality=_THUMBNAIL_QUALITY), fmt)


def make_rendition(
    image: ProcessedImage,
    *,
    formats: frozenset[str],
    max_bytes: int,
    max_width: int | None = None,
    max_height: int | None = None,
    max_pixels: int | None = None,
    min_aspect_ratio: float | None = None,
    max_aspect_ratio: float | None = None,
    allow_animation: bool = True,
    max_gif_bytes: int | None = None,
) -> ProcessedImage:
    """The image as one network accepts it; the very same object when it already fits.

    Otherwise, in this order: pick a format (an animation stays animated in GIF or WebP when
    allowed; a still becomes JPEG when opaque, PNG when it has transparency, or else is
    flattened onto white for JPEG); pad to the aspect-ratio range; scale down to the size
    limits; then, for JPEG and WebP, lower the quality step by step from 90 to 40; and then
    scale down further until it fits under the byte limit.

    Aspect ratio is met by padding with white bars (transparent ones when the output keeps
    transparency), never by cropping: nothing the author framed is cut off.

    An animation that is still too heavy is scaled down, to no less than half its width; if
    even that is too heavy, the rendition is a still of its first frame, so that the post can
    go out.

    Raises MediaRejected("too_many_bytes") only when even a tiny image at quality 40 is too heavy.
    """
    allowed = frozenset(f.upper() for f in formats)
    if not allowed or not allowed <= ALLOWED_FORMATS:
        raise ValueError(f"formats must be a non-empty subset of {sorted(ALLOWED_FORMATS)}")
    if (
        min_aspect_ratio is not None
        and max_aspect_ratio is not None
        and min_aspect_ratio > max_aspect_ratio
    ):
        raise ValueError("min_aspect_ratio is above max_aspect_ratio")
    target = _Target(
        formats=allowed,
        max_bytes=max_bytes,
        max_gif_bytes=max_gif_bytes,
        max_width=max_width,
        max_height=max_height,
        max_pixels=max_pixels,
        min_aspect_ratio=min_aspect_ratio,
        max_aspect_ratio=max_aspect_ratio,
        allow_animation=allow_animation,
    )
    if _fits(image, target):
        return image
    _require_truncated_images_refused()
    if image.animated and allow_animation:
        fmt = _animated_format(image.format, allowed)
        if fmt is not None:
            rendition = _animated_rendition(image, fmt, target)
            if rendition is not None:
                return rendition
    return _still_rendition(image, target)


# --- Reading ------------------------------------------------------------------------------------

# Images we made ourselves are opened again for thumbnails and renditions. The caller's upload
# limits were applied then; these only stop a hand-made ProcessedImage from smuggling a bomb.
_REOPEN_LIMITS = _Limits(
    max_pixels=Image.MAX_IMAGE_PIXELS or 178_956_970,
    max_side=65_535,
    max_frames=10_000,
    max_animation_pixels=500_000_000,
)


def _require_truncated_images_refused() -> None:
    # A process-wide switch: if anything turned it on, broken uploads would be accepted with
    # grey bands. That is a deployment bug, so it fails loudly rather than per upload.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on; publishing.media needs it off so that "
            "truncated uploads are refused."
        )


def _read_at_most(data: builtins.bytes | BinaryIO, max_bytes: int) -> builtins.bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        # One byte more than allowed is enough to know that it is too much.
        raw = data.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise MediaRejected(
            "too_many_bytes",
            f"The file is larger than {_megabytes(max_bytes)}, the most we accept. "
            "Please upload a smaller or more compressed image.",
        )
    if not raw:
        raise MediaRejected(
            "empty", "The file is empty (0 bytes). Please choose the image again and re-upload it."
        )
    return raw


def _allowed_format(raw: builtins.bytes) -> str:
    fmt = sniff(raw)
    if fmt is not None:
        return fmt
    known = _identify_refused(raw)
    if known is not None:
        what, advice = known
        raise MediaRejected(
            "unsupported_format",
            f"This file is {what}, which is not accepted; {advice}. {_ACCEPTED}.",
        )
    raise MediaRejected(
        "not_an_image",
        f"This file is not an image we can read (we go by its content, not its name). {_ACCEPTED}.",
    )


_SAVE_AS = "please save it as PNG or JPEG and upload that"
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"heif"}
_VIDEO_BRANDS = {b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"M4V ", b"3gp4", b"3gp5", b"avc1"}


def _identify_refused(raw: builtins.bytes) -> tuple[str, str] | None:
    """Name formats people often try, so the refusal can say what to do instead."""
    head = raw[:4096]
    if head.startswith(b"%PDF-"):
        return "a PDF document", "please export the page as PNG or JPEG and upload that"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in text:
        return "an SVG drawing", "SVG can carry scripts, so please export it as PNG and upload that"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return (
                "a HEIC photo",
                "please export it as JPEG (on an iPhone, Settings > Camera > Formats > "
                "Most Compatible takes JPEG photos)",
            )
        if brand in (b"avif", b"avis"):
            return "an AVIF image", _SAVE_AS
        if brand in _VIDEO_BRANDS:
            return "a video", "videos cannot be attached here"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "a video", "videos cannot be attached here"
    if head[:2] == b"BM" and len(head) >= 18 and head[14] in (12, 40, 52, 56, 64, 108, 124):
        return "a BMP image", _SAVE_AS
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "a TIFF image", _SAVE_AS
    if head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and head[4:6] not in (b"", b"\0\0"):
        return "an icon (ICO) file", _SAVE_AS
    if head.startswith(b"8BPS"):
        return "a Photoshop (PSD) file", _SAVE_AS
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "a JPEG 2000 image", _SAVE_AS
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "a JPEG XL image", _SAVE_AS
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":  # Pillow built without WebP
        return "a WebP image, which this server cannot read", _SAVE_AS
    return None


@contextmanager
def _reading(fmt: str, raw: builtins.bytes) -> Iterator[None]:
    """Turn the ways Pillow fails on a hostile or broken file into MediaRejected."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard, behind ours: only reached by a size our header check missed.
        raise MediaRejected(
            "too_many_pixels",
            f"The image is too large to open safely. {_ACCEPTED} of up to "
            f"{_megapixels(Image.MAX_IMAGE_PIXELS or 0)}.",
        ) from exc
    except _PILLOW_ERRORS as exc:
        name = _FORMAT_NAMES[fmt]
        if "truncated" in str(exc) or _looks_truncated(fmt, raw):
            raise MediaRejected(
                "truncated",
                f"The {name} file is incomplete: it ends before the image does, probably "
                "because an upload or download was cut short. Please upload the complete file.",
            ) from exc
        raise MediaRejected(
            "not_an_image",
            f"The file starts like a {name} image but is damaged and cannot be read. Please "
            "save it again (as JPEG, PNG, WebP or GIF) and upload that.",
        ) from exc


_FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF"}


def _looks_truncated(fmt: str, raw: builtins.bytes) -> bool:
    """Whether a file Pillow could not read is missing its end marker (rather than corrupt)."""
    tail = raw.rstrip(b"\0")
    if fmt == "JPEG":
        return not tail.endswith(b"\xff\xd9")
    if fmt == "PNG":
        return b"IEND" not in tail[-64:]
    if fmt == "GIF":
        return not tail.endswith(b";")
    if fmt == "WEBP":
        return len(raw) < 8 + int.from_bytes(raw[4:8], "little")
    return False


def _open_checked(raw: builtins.bytes, fmt: str, limits: _Limits) -> ImageFile.ImageFile:
    """Open the file, which reads only its header, and refuse it if it is too big to decode."""
    with _reading(fmt, raw):
        # The plugin class, not Image.open: it can be nothing but this one format, and Pillow's
        # decompression-bomb warning is left to our own, stricter check below.
        img = _OPENERS[fmt](io.BytesIO(raw))
    _check_size(img.size, limits)
    if fmt == "JPEG":
        _check_scans(raw)
    frames = _frame_count(img, fmt, raw)
    if frames > limits.max_frames:
        raise MediaRejected(
            "too_many_frames",
            f"The animation has {frames:,} frames; animations of up to {limits.max_frames:,} "
            "frames are accepted. Please shorten it or lower its frame rate.",
        )
    _check_animation_size(img.size, frames, limits)
    return img


def _check_size(size: tuple[int, int], limits: _Limits) -> None:
    width, height = size
    dimensions = f"{width:,} × {height:,} pixels"
    if max(width, height) > limits.max_side:
        raise MediaRejected(
            "too_large_dimensions",
            f"The image is {dimensions}; images up to {limits.max_side:,} pixels wide and "
            f"high are accepted. Please resize it and upload it again.",
        )
    if width * height > limits.max_pixels:
        raise MediaRejected(
            "too_many_pixels",
            f"The image is {dimensions} ({_megapixels(width * height)}); images up to "
            f"{_megapixels(limits.max_pixels)} are accepted. Please resize it and upload it again.",
        )


def _check_scans(raw: builtins.bytes) -> None:
    # Each scan of a progressive JPEG passes over the whole image again, so thousands of tiny
    # scans make a small file take minutes to decode (libjpeg only warns about them). Encoders
    # write about ten; counting start-of-scan markers (which metadata may also contain by
    # chance) is a cheap upper bound.
    scans = raw.count(b"\xff\xda")
    if scans > _MAX_JPEG_SCANS:
        raise MediaRejected(
            "not_an_image",
            f"This JPEG is built in an unusual way ({scans:,} scans) that makes it too slow to "
            "read safely. Please save it again as an ordinary JPEG or as PNG and upload that.",
        )


def _check_animation_size(size: tuple[int, int], frames: int, limits: _Limits) -> None:
    total = size[0] * size[1] * frames
    if frames > 1 and total > limits.max_animation_pixels:
        raise MediaRejected(
            "too_many_pixels",
            f"The animation is {size[0]:,} × {size[1]:,} pixels over {frames:,} frames "
            f"({_megapixels(total)} in all); animations up to "
            f"{_megapixels(limits.max_animation_pixels)} in all are accepted. Please make it "
            "smaller or shorter.",
        )


def _frame_count(img: ImageFile.ImageFile, fmt: str, raw: builtins.bytes) -> int:
    # GIF counts by skipping over the frames' data, without decoding it; WebP and PNG read a
    # header field.
    with _reading(fmt, raw):
        count = int(getattr(img, "n_frames", 1))
    if fmt == "PNG" and count > 1 and img.info.get("default_image"):
        count -= 1  # an APNG whose first image is a still for viewers without animation
    return count


def _decode_still(
    img: ImageFile.ImageFile, fmt: str, raw: builtins.bytes
) -> tuple[Image.Image, Any]:
    """The pixels, upright and in sRGB, and the transparency a palette image needs to keep."""
    with _reading(fmt, raw):
        img.load()
    icc = img.info.get("icc_profile")
    out: Image.Image = img if fmt == "GIF" else _upright(img)
    transparency = out.info.get("transparency")
    if out.mode in _GRAY16_MODES:
        # Social networks show 8 bits; halving the file is worth more than the lost precision
        # (and than the rare transparent grey level such a file may name).
        out, transparency = _gray16_to_l(out), None
    elif transparency is not None and out.mode == "RGB":
        # An RGB colour key would no longer match once converted to sRGB: use an alpha channel.
        out, transparency = out.convert("RGBA"), None
    if out.mode in ("CMYK", "RGB", "RGBA"):
        out = _to_srgb(out, icc)
    elif out.mode not in ("1", "L", "LA", "P"):
        out = out.convert("RGBA" if out.has_transparency_data else "RGB")
    if fmt == "JPEG" and out.mode not in ("L", "RGB"):
        out = out.convert("RGB")
    return out, transparency


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, as ImageOps.exif_transpose does, but without copying an
    image that is already upright and without failing on a malformed EXIF block (its
    metadata is dropped anyway)."""
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except _PILLOW_ERRORS:
        return img
    method = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return img.transpose(method) if method is not None else img


def _to_srgb(img: Image.Image, icc: builtins.bytes | None) -> Image.Image:
    """Convert through the embedded ICC profile to sRGB, the space assumed for an image without
    one. A broken or mismatched profile is ignored rather than refusing the image."""
    if icc and ImageCms is not None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            mode = "RGBA" if img.mode == "RGBA" else "RGB"
            converted = ImageCms.profileToProfile(img, source, _srgb(), outputMode=mode)
        except (ImageCms.PyCMSError, *_PILLOW_ERRORS):
            converted = None
        if converted is not None:
            return converted
    return img.convert("RGB") if img.mode == "CMYK" else img


@functools.cache
def _srgb() -> Any:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _gray16_to_l(img: Image.Image) -> Image.Image:
    # convert("L") clips 16-bit values at 255 instead of scaling them.
    return img.convert("I").point(lambda value: value * (1 / 256)).convert("L")


def _decode_frames(
    img: ImageFile.ImageFile, fmt: str, raw: builtins.bytes, limits: _Limits
) -> _Frames:
    images: list[Image.Image] = []
    durations: list[int] = []
    first = 1 if fmt == "PNG" and img.info.get("default_image") else 0
    total = int(getattr(img, "n_frames", 1))
    for index in range(first, total):
        with _reading(fmt, raw):
            img.seek(index)
        # A GIF frame may reach beyond the canvas its header declared, and Pillow grows the
        # canvas to hold it when seeking: measure again before decoding.
        _check_size(img.size, limits)
        _check_animation_size(img.size, total - first, limits)
        with _reading(fmt, raw):
            img.load()
            frame = img.convert("RGBA")  # the complete frame, as a viewer shows it
        images.append(frame)
        durations.append(int(img.info.get("duration") or 0))
    loop = img.info.get("loop")
    width = max(frame.width for frame in images)
    height = max(frame.height for frame in images)
    for index, frame in enumerate(images):
        if frame.size != (width, height):  # frames decoded before the canvas grew
            canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
            canvas.paste(frame, (0, 0))
            images[index] = canvas
    if not any(_has_transparent_pixels(frame) for frame in images):
        for index, frame in enumerate(images):
            images[index] = frame.convert("RGB")  # one at a time, to keep one copy in memory
    return _Frames(images=images, durations=durations, loop=loop if loop is None else int(loop))


def _has_transparent_pixels(img: Image.Image) -> bool:
    return img.mode == "RGBA" and img.getchannel("A").getextrema()[0] < 255


def _rgb_or_rgba(img: Image.Image) -> Image.Image:
    """RGBA when some pixel is (partly) transparent, RGB otherwise."""
    if img.mode in _GRAY16_MODES:
        img = _gray16_to_l(img)
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        if _has_transparent_pixels(rgba):
            return rgba
        return rgba.convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img


def _webp_is_lossless(raw: builtins.bytes) -> bool:
    """Whether a WebP holds only lossless (VP8L) pictures, which are re-encoded losslessly so
    that logos and screenshots stay crisp."""
    kinds: set[builtins.bytes] = set()
    for fourcc, start, end in _riff_chunks(raw, 12, len(raw)):
        if fourcc == b"ANMF":  # an animation frame: 16 bytes of position and timing, then chunks
            kinds.update(sub for sub, _, _ in _riff_chunks(raw, start + 16, end))
        else:
            kinds.add(fourcc)
    return b"VP8L" in kinds and b"VP8 " not in kinds


def _riff_chunks(
    raw: builtins.bytes, start: int, end: int
) -> Iterator[tuple[builtins.bytes, int, int]]:
    position = start
    while position + 8 <= end:
        size = int.from_bytes(raw[position + 4 : position + 8], "little")
        yield raw[position : position + 4], position + 8, min(position + 8 + size, end)
        position += 8 + size + (size & 1)


# --- Writing ------------------------------------------------------------------------------------


def _encode_still(
    img: Image.Image,
    fmt: str,
    *,
    transparency: Any = None,
    quality: int = _QUALITY,
    lossless: bool = False,
    fast: bool = False,
) -> builtins.bytes:
    """Encode pixels only. Every option is explicit and `info` is emptied first, because some
    encoders copy entries of it (a JPEG comment, a PNG's ICC profile) into the file."""
    img.info = {}
    buffer = io.BytesIO()
    if fmt == "JPEG":
        if img.mode not in ("L", "RGB"):
            img = img.convert("RGB")
        # `fast` is for trial encodes while searching for a size; the kept one is optimised,
        # which only makes it smaller.
        img.save(buffer, "JPEG", quality=quality, optimize=not fast, progressive=not fast)
    elif fmt == "WEBP":
        method = 0 if fast else 4
        img.save(buffer, "WEBP", quality=quality, lossless=lossless, method=method)
    elif transparency is not None:
        img.save(buffer, fmt, transparency=transparency)
    else:
        img.save(buffer, fmt)
    return buffer.getvalue()


def _encode_frames(
    frames: _Frames, fmt: str, *, quality: int = _ANIMATION_QUALITY, lossless: bool = False
) -> builtins.bytes:
    first, *rest = frames.images
    for frame in frames.images:
        frame.info = {}
    params: dict[str, Any] = {"save_all": True, "append_images": rest, "duration": frames.durations}
    if fmt == "GIF":
        if frames.loop is not None:
            params["loop"] = frames.loop
        if first.mode == "RGBA":
            # Frames are complete pictures: clear each before the next, or pixels that turn
            # transparent would keep showing the previous frame.
            params["disposal"] = 2
    else:  # WebP or APNG: 0 loops forever, 1 plays once like a GIF without a loop block
        params["loop"] = 1 if frames.loop is None else frames.loop
        if fmt == "WEBP":
            params.update(quality=quality, lossless=lossless, method=4)
    buffer = io.BytesIO()
    first.save(buffer, fmt, **params)
    return buffer.getvalue()


def _describe(data: builtins.bytes, fmt: str) -> ProcessedImage:
    """Measure what was written, rather than trust what was asked for (the GIF encoder merges
    identical frames, for one)."""
    with _reading(fmt, data):
        img = _OPENERS[fmt](io.BytesIO(data))
        frames = int(getattr(img, "n_frames", 1))
    return ProcessedImage(
        data=data,
        format=fmt,
        mime=MIME_TYPES[fmt],
        width=img.width,
        height=img.height,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        animated=frames > 1,
        frames=frames,
    )


# --- Renditions ---------------------------------------------------------------------------------


def _fits(image: ProcessedImage, target: _Target) -> bool:
    if image.format not in target.formats:
        return False
    if image.animated and not target.allow_animation:
        return False
    if image.bytes > target.byte_limit(image.format):
        return False
    return _dimensions_fit(image.width, image.height, target)


def _dimensions_fit(width: int, height: int, target: _Target) -> bool:
    if target.max_width is not None and width > target.max_width:
        return False
    if target.max_height is not None and height > target.max_height:
        return False
    if target.max_pixels is not None and width * height > target.max_pixels:
        return False
    ratio = width / height
    # The same hair of tolerance as the channels' preflight, so that 1080 × 1350 is 4:5.
    if target.min_aspect_ratio is not None and ratio < target.min_aspect_ratio - 1e-9:
        return False
    return not (target.max_aspect_ratio is not None and ratio > target.max_aspect_ratio + 1e-9)


def _canvas(size: tuple[int, int], target: _Target, shrink: float = 1.0) -> tuple[int, int]:
    """The output size: padded out to the aspect-ratio range, then scaled down (never up) to the
    dimension limits, and further by `shrink`."""
    width, height = float(size[0]), float(size[1])
    low, high = target.min_aspect_ratio, target.max_aspect_ratio
    if low is not None and width / height < low:
        width = height * low  # too tall: bars left and right
    elif high is not None and width / height > high:
        height = width / high  # too wide: bars above and below
    scale = min(1.0, shrink)
    if target.max_width is not None:
        scale = min(scale, target.max_width / width)
    if target.max_height is not None:
        scale = min(scale, target.max_height / height)
    if target.max_pixels is not None:
        scale = min(scale, math.sqrt(target.max_pixels / (width * height)))
    # The epsilon keeps 4000 × (1080 / 4000) from flooring to 1079; the clamps below keep the
    # limits exact all the same.
    out_width = max(1, math.floor(width * scale + 1e-6))
    out_height = max(1, math.floor(height * scale + 1e-6))
    if target.max_width is not None:
        out_width = min(out_width, target.max_width)
    if target.max_height is not None:
        out_height = min(out_height, target.max_height)
    while target.max_pixels is not None and out_width * out_height > target.max_pixels:
        if out_width >= out_height:
            out_width -= 1
        else:
            out_height -= 1
    # Rounding can push the ratio a hair outside the range: widen the bars by a pixel if the
    # limits allow, or else trim the picture's side, which only makes the image smaller.
    if low is not None and out_width / out_height < low:
        wider = math.ceil(out_height * low - 1e-9)
        if _dimensions_fit(wider, out_height, replace(target, min_aspect_ratio=None)):
            out_width = wider
        else:
            out_height = max(1, math.floor(out_width / low))
    if high is not None and out_width / out_height > high:
        taller = math.ceil(out_width / high - 1e-9)
        if _dimensions_fit(out_width, taller, replace(target, max_aspect_ratio=None)):
            out_height = taller
        else:
            out_width = max(1, math.floor(out_height * high))
    return out_width, out_height


def _content_size(size: tuple[int, int], canvas: tuple[int, int]) -> tuple[int, int]:
    scale = min(canvas[0] / size[0], canvas[1] / size[1], 1.0)
    return (
        max(1, min(canvas[0], round(size[0] * scale))),
        max(1, min(canvas[1], round(size[1] * scale))),
    )


def _place(img: Image.Image, canvas: tuple[int, int]) -> Image.Image:
    """Scale `img` to fit inside `canvas` and centre it on bars: white, or clear for RGBA."""
    content = _content_size(img.size, canvas)
    if content != img.size:
        img = img.resize(content, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if content == canvas:
        return img
    background = (255, 255, 255, 0) if img.mode == "RGBA" else _WHITE
    out = Image.new(img.mode, canvas, background)
    out.paste(img, ((canvas[0] - content[0]) // 2, (canvas[1] - content[1]) // 2))
    return out


def _animated_format(source: str, allowed: frozenset[str]) -> str | None:
    if source in allowed:
        return source
    for fmt in ("GIF", "WEBP"):
        if fmt in allowed:
            return fmt
    return None


def _still_format(transparent: bool, allowed: frozenset[str]) -> str:
    preference = ("PNG", "WEBP", "JPEG", "GIF") if transparent else ("JPEG", "WEBP", "PNG", "GIF")
    return next(fmt for fmt in preference if fmt in allowed)


def _still_rendition(image: ProcessedImage, target: _Target) -> ProcessedImage:
    img = _open_checked(image.data, image.format, _REOPEN_LIMITS)
    with _reading(image.format, image.data):
        if image.format == "JPEG":
            # Decode at a reduced scale when the output is much smaller anyway, keeping twice
            # the needed pixels for a clean resize.
            content = _content_size(img.size, _canvas(img.size, target))
            img.draft(None, (content[0] * 2, content[1] * 2))
        img.load()
    frame = _rgb_or_rgba(img)
    fmt = _still_format(frame.mode == "RGBA", target.formats)
    if fmt == "JPEG" and frame.mode == "RGBA":
        white = Image.new("RGBA", frame.size, (*_WHITE, 255))
        frame = Image.alpha_composite(white, frame).convert("RGB")
    limit = target.byte_limit(fmt)
    smallest_side = min(_MIN_SIDE, *_canvas(frame.size, target))
    shrink = 1.0
    for _ in range(_MAX_SHRINKS):
        canvas = _canvas(frame.size, target, shrink)
        if min(canvas) < smallest_side:
            break
        placed = _place(frame, canvas)
        data, size = _encode_under(placed, fmt, limit)
        if data is not None:
            return _describe(data, fmt)
        # Shrink in proportion to the overshoot (bytes go roughly with pixels), and by at
        # least a tenth so that each round makes progress.
        shrink *= min(0.9, math.sqrt(limit / size) * 0.95)
    raise MediaRejected(
        "too_many_bytes",
        f"This image cannot be made smaller than {_megabytes(limit)} for this network, even at "
        "a lower quality and a smaller size. Please choose a simpler or smaller image.",
    )


def _encode_under(img: Image.Image, fmt: str, limit: int) -> tuple[builtins.bytes | None, int]:
    """The best encoding of `img` within `limit` bytes, or None and the smallest size tried."""
    if fmt not in ("JPEG", "WEBP"):
        data = _encode_still(img, fmt)
        return (data if len(data) <= limit else None), len(data)
    trials: dict[int, builtins.bytes] = {}

    def fits(quality: int) -> bool:
        trials[quality] = _encode_still(img, fmt, quality=quality, fast=True)
        return len(trials[quality]) <= limit

    ladder = _QUALITY_LADDER
    if fits(ladder[0]):
        best = ladder[0]
    elif not fits(ladder[-1]):
        return None, len(trials[ladder[-1]])
    else:
        # Size falls as quality falls: find the highest quality that fits by bisection.
        fail, ok = 0, len(ladder) - 1
        while ok - fail > 1:
            middle = (fail + ok) // 2
            if fits(ladder[middle]):
                ok = middle
            else:
                fail = middle
        best = ladder[ok]
    final = _encode_still(img, fmt, quality=best)
    return (final if len(final) <= limit else trials[best]), len(final)


def _animated_rendition(image: ProcessedImage, fmt: str, target: _Target) -> ProcessedImage | None:
    img = _open_checked(image.data, image.format, _REOPEN_LIMITS)
    frames = _decode_frames(img, image.format, image.data, _REOPEN_LIMITS)
    limit = target.byte_limit(fmt)
    size = frames.images[0].size
    smallest_width = _canvas(size, target)[0] / 2
    shrink = 1.0
    for _ in range(_MAX_SHRINKS):
        canvas = _canvas(size, target, shrink)
        if canvas[0] < smallest_width:
            return None
        placed = _Frames(
            images=[_place(frame, canvas) for frame in frames.images],
            durations=frames.durations,
            loop=frames.loop,
        )
        data = _encode_frames(placed, fmt)
        if len(data) <= limit:
            return _describe(data, fmt)
        shrink *= min(0.9, math.sqrt(limit / len(data)) * 0.95)
    return None


# --- Words --------------------------------------------------------------------------------------


def _megabytes(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}".removesuffix(".0") + " MB"
    if value >= 1_000:
        return f"{value / 1_000:.0f} KB"
    return f"{value:,} bytes"


def _megapixels(value: int) -> str:
    return f"{value / 1_000_000:.1f}".removesuffix(".0") + " megapixels"
