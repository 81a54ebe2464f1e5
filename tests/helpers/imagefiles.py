"""Small image files for tests and the fuzzer: valid ones in odd modes, and broken ones.

Every builder writes (or returns) a real file's bytes; sizes stay tiny (at most 64 px a side).
Arrays are ``uint8[H, W, C]``; PIL sizes are ``(width, height)``.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

#: EXIF tag 0x0112; value 6 means "display rotated 90 degrees clockwise".
EXIF_ORIENTATION = 0x0112


def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """``uint8[height, width, channels]`` uniform noise (``channels=1`` gives ``[height, width]``)."""
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def noise_png(path: Path, size: int = 64) -> Path:
    """A ``size x size`` RGB noise PNG at ``path``."""
    Image.fromarray(noise(size, size)).save(path)
    return path


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    """``img`` saved in memory as ``fmt`` (a PIL format name: PNG, JPEG, GIF, TIFF, WEBP)."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 50_000) -> Path:
    """A ~70-byte PNG whose IHDR claims ``side x side`` 8-bit RGB (7.5 GB decoded for the default)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )
    return path


def truncated(path: Path, fmt: str, size: int = 64) -> Path:
    """The first half of a ``size x size`` noise image in ``fmt``, written to ``path``."""
    data = encode(Image.fromarray(noise(size, size, seed=1)), fmt)
    path.write_bytes(data[: len(data) // 2])
    return path


def exif_rotated_jpeg(width: int = 40, height: int = 24) -> bytes:
    """A ``width x height`` JPEG stored sideways: EXIF orientation 6, so upright it is ``height x width``."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    return encode(Image.fromarray(noise(height, width, seed=2)), "JPEG", exif=exif.tobytes(), quality=90)


def _cmyk_jpeg() -> tuple[str, bytes]:
    return ".jpg", encode(Image.new("CMYK", (40, 24), (0, 255, 255, 0)), "JPEG", quality=95)


def _png_16bit() -> tuple[str, bytes]:
    deep = Image.fromarray(noise(24, 40, 1, seed=5).astype(np.uint16) * 257)  # mode I;16
    return ".png", encode(deep, "PNG")


def _palette_png() -> tuple[str, bytes]:
    palette = Image.fromarray(noise(24, 40, seed=3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return ".png", encode(palette, "PNG")


def _grayscale_png() -> tuple[str, bytes]:
    return ".png", encode(Image.fromarray(noise(24, 40, 1, seed=6)), "PNG")


def _rgba_png() -> tuple[str, bytes]:
    rgba = noise(24, 40, channels=4, seed=4)
    rgba[:, :20, 3] = 0  # the left half fully transparent: composited, it must come out white
    return ".png", encode(Image.fromarray(rgba, "RGBA"), "PNG")


def _exif_rotated_jpeg() -> tuple[str, bytes]:
    return ".jpg", exif_rotated_jpeg()


#: Valid but unusual inputs, all 40x24 as stored: name -> a maker of (file suffix, file bytes).
UNUSUAL: dict[str, Callable[[], tuple[str, bytes]]] = {
    "cmyk_jpeg": _cmyk_jpeg,
    "png_16bit": _png_16bit,
    "palette_png": _palette_png,
    "grayscale_png": _grayscale_png,
    "rgba_png": _rgba_png,
    "exif_rotated_jpeg": _exif_rotated_jpeg,
}


def fuzz_seeds() -> dict[str, bytes]:
    """One small valid file per format (8x6 px), the starting points that the fuzzer mutates.

    The JPEG carries an EXIF orientation (so mutations reach the EXIF parser); the PNG has alpha;
    the GIF is a palette image; the TIFF is LZW-compressed; the WebP is lossy.
    """
    rgb = Image.fromarray(noise(6, 8, seed=7))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    return {
        "png": encode(Image.fromarray(noise(6, 8, channels=4, seed=8), "RGBA"), "PNG"),
        "jpeg": encode(rgb, "JPEG", exif=exif.tobytes(), quality=80),
        "gif": encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "GIF"),
        "tiff": encode(rgb, "TIFF", compression="tiff_lzw"),
        "webp": encode(rgb, "WEBP", quality=80),
    }
