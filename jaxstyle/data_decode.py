"""Training images decoded and augmented (the first stage of :mod:`jaxstyle.data`'s pipeline): a file ->
``uint8[H, W, 3]`` RGB (:func:`decode_uint8`), then a random ``uint8[S, S, 3]`` square (:func:`random_crop`)."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import grain
import numpy as np
from PIL import Image, ImageOps

from jaxstyle.errors import ImageError, OptionError
from jaxstyle.io import images

log = logging.getLogger("jaxstyle.data")

#: Random short side is drawn from ``[image_size, round(image_size * MAX_UPSCALE)]``.
MAX_UPSCALE = 1.15
#: Files whose header claims more pixels than this are skipped (decompression bombs).
MAX_PIXELS = images.DEFAULT_MAX_PIXELS

_TFDS_PREFIX = "tfds:"


def _max_short_side(image_size: int) -> int:
    return max(image_size, round(image_size * MAX_UPSCALE))


# --------------------------------------------------------------------------------------------
# Decoding and augmentation
# --------------------------------------------------------------------------------------------


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode as an 8-bit RGB PIL image (alpha and 16-bit modes via :mod:`jaxstyle.io.images`)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("L", "CMYK", "YCbCr") or (img.mode == "P" and "transparency" not in img.info):
        return img.convert("RGB")
    # Alpha (composited over white), 16/32-bit integer, float, bilevel, palette with transparency.
    return Image.fromarray(images.to_uint8(images.to_float_image(img)))


def decode_uint8(path: str | os.PathLike[str], min_short_side: int | None = None) -> np.ndarray:
    """Decode an image file as ``uint8[H, W, 3]`` RGB (``0..255``), upright (EXIF applied).

    ``min_short_side``: the caller only needs an image whose short side is at least this many
    pixels; JPEGs much bigger than that are decoded at 1/2, 1/4 or 1/8 scale (``Image.draft``,
    DCT scaling: several times faster), never below ``min_short_side``. ``None``: full size.

    Raises whatever PIL raises for an unreadable file (``OSError``, ``ValueError``, ...), or
    :class:`~jaxstyle.errors.ImageError` for an empty file or one above :data:`MAX_PIXELS`.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: file is empty (0 bytes)")
    with Image.open(path) as img:
        width, height = img.size
        images.check_pixels(width, height, MAX_PIXELS, f"{path}: image", "too large to train on")
        if min_short_side is not None and min(width, height) >= 2 * min_short_side:
            ratio = min_short_side / min(width, height)
            img.draft("RGB", (math.ceil(width * ratio), math.ceil(height * ratio)))
        img.load()
        upright = ImageOps.exif_transpose(img, in_place=False) if _has_orientation(img) else img
        return np.asarray(_to_rgb(upright), dtype=np.uint8)


def _has_orientation(img: Image.Image) -> bool:
    try:
        return img.getexif().get(0x0112, 1) != 1  # ExifTags.Base.Orientation
    except Exception:  # a broken EXIF block is not a broken image
        return False


def _as_rgb_array(image: Any) -> np.ndarray:
    """``uint8[H, W]``, ``[H, W, 1]``, ``[H, W, 3]`` or ``[H, W, 4]`` as ``uint8[H, W, 3]``."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ImageError(f"expected a uint8 image, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0 or array.shape[-1] not in (1, 3, 4):
        raise ImageError(f"expected an image of shape [H, W, 1|3|4], got {list(array.shape)}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.shape[-1] == 4:
        array = images.to_uint8(images.to_float_image(Image.fromarray(array, "RGBA")))
    return array


def random_crop(image: np.ndarray, rng: np.random.Generator, image_size: int) -> np.ndarray:
    """The training augmentation: random rescale, random square crop, random left-right flip.

    Args:
        image: ``uint8[H, W, 3]`` RGB, any size.
        rng: the only source of randomness (grain's per-element generator).
        image_size: side of the output square.

    Returns:
        ``uint8[image_size, image_size, 3]``: a crop of ``image`` after resizing it (bilinear) so
        its short side is a random integer in ``[image_size, round(image_size * 1.15)]``,
        mirrored left-right with probability 1/2.
    """
    h, w = image.shape[:2]
    short = int(rng.integers(image_size, _max_short_side(image_size) + 1))
    scale = short / min(h, w)
    new_h, new_w = max(image_size, round(h * scale)), max(image_size, round(w * scale))
    top = int(rng.integers(0, new_h - image_size + 1))
    left = int(rng.integers(0, new_w - image_size + 1))
    flip = bool(rng.random() < 0.5)
    # Resample only the crop window: same pixels as resizing to (new_w, new_h) then cropping.
    sx, sy = w / new_w, h / new_h
    box = (left * sx, top * sy, (left + image_size) * sx, (top + image_size) * sy)
    crop = Image.fromarray(image).resize((image_size, image_size), Image.Resampling.BILINEAR, box=box)
    if flip:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.uint8)


class _RandomCrop(grain.transforms.RandomMap):
    """grain transform wrapping :func:`random_crop` (``None``, a skipped file, never reaches it)."""

    def __init__(self, image_size: int):
        self.image_size = image_size

    def random_map(self, element: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_crop(element, rng, self.image_size)


def _check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``minimum``, else OptionError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OptionError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
