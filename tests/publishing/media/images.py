"""Image files made on the spot for the media tests: with Pillow where Pillow can write them, by
hand where the point is that they are malformed or too big to make for real."""

import io
import struct
import zlib

from PIL import Image

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)
WHITE = (255, 255, 255)


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **params)
    return buffer.getvalue()


def reopen(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def noisy_rgb(width: int, height: int) -> Image.Image:
    """Noise that JPEG cannot squeeze much: a photo's worst case, made in a fraction of a second
    (coarse noise scaled up, one plane per channel)."""
    planes = [
        Image.effect_noise((width // 4, height // 4), 60).resize(
            (width, height), Image.Resampling.BILINEAR
        )
        for _ in range(3)
    ]
    return Image.merge("RGB", planes)


def quadrants(width: int, height: int) -> Image.Image:
    """Red, blue / green, yellow: any rotation or flip is visible in the corners."""
    img = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    img.paste(RED, (0, 0, half_w, half_h))
    img.paste(BLUE, (half_w, 0, width, half_h))
    img.paste(GREEN, (0, half_h, half_w, height))
    img.paste(YELLOW, (half_w, half_h, width, height))
    return img


def animated(fmt: str, colours, *, size=(60, 40), durations=None, **params) -> bytes:
    """One flat frame per colour, each with a white square that moves (no two frames alike)."""
    frames = []
    for index, colour in enumerate(colours):
        frame = Image.new("RGB", size, colour)
        frame.paste(WHITE, (index * 5, 5, index * 5 + 10, 15))
        frames.append(frame)
    durations = durations or [100 * (index + 1) for index in range(len(frames))]
    return encode(
        frames[0], fmt, save_all=True, append_images=frames[1:], duration=durations, **params
    )


def noisy_gif(frames: int, size=(400, 300)) -> bytes:
    images = [noisy_rgb(*size).convert("P", palette=Image.Palette.ADAPTIVE) for _ in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def blank_png(width: int, height: int) -> bytes:
    """A one-colour 1-bit PNG of any size, written row by row without ever holding the pixels:
    20,000 × 20,000 comes to a few dozen KB, and decoding it would take 400 MB."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the row's bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


def gif_frame(width: int, height: int) -> bytes:
    """A GIF image block of any size with next to no pixel data (a clear code and the end code)."""
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return descriptor + b"\x02" + b"\x01\x2c" + b"\x00"


def gif_with_oversized_frame(screen=(1, 1), frame=(5_000, 9_000)) -> bytes:
    """A GIF whose header declares a tiny screen and whose only frame is huge."""
    header = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    return header + gif_frame(*frame) + b";"


def heic_header() -> bytes:
    return struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0" + b"mif1heic" + b"\0" * 64
