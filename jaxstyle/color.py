"""Colour handling: keep the photo's colours (luminance-only transfer) and mix outputs.

All images are float32[..., H, W, 3] RGB in [0,1]. YCbCr is the full-range BT.601 transform
(JPEG's): Y in [0,1], Cb and Cr centred on 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114],
     [-0.168736, -0.331264, 0.5],
     [0.5, -0.418688, -0.081312]],
    dtype=np.float32,
)
#: BT.601 luma weights of R, G, B: Y's row of the matrix above.
LUMA_WEIGHTS = _RGB_TO_YCBCR[0]
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR).astype(np.float32)
_OFFSET = np.array([0.0, 0.5, 0.5], dtype=np.float32)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """float32[..., 3] RGB in [0,1] -> float32[..., 3] (Y, Cb, Cr), each about [0,1]."""
    return np.asarray(rgb, np.float32) @ _RGB_TO_YCBCR.T + _OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rgb_to_ycbcr`, clipped to [0,1]."""
    return np.clip((np.asarray(ycbcr, np.float32) - _OFFSET) @ _YCBCR_TO_RGB.T, 0.0, 1.0)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """float32[..., H, W, 3] -> the same shape, grey: Y copied to all three channels."""
    y = rgb_to_ycbcr(rgb)[..., :1]
    return np.repeat(y, 3, axis=-1)


def match_luminance(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style's luminance, shifted and scaled to the content's luminance mean and std
    (Gatys et al. 2016, "Preserving color in neural artistic style transfer"), as grey RGB."""
    ys = rgb_to_ycbcr(style)[..., 0]
    yc = rgb_to_ycbcr(content)[..., 0]
    scale = yc.std() / max(float(ys.std()), 1e-6)
    y = np.clip((ys - ys.mean()) * scale + yc.mean(), 0.0, 1.0)
    return np.repeat(y[..., None], 3, axis=-1).astype(np.float32)


def keep_colors(stylised: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The stylised image's luminance with the content's chroma (Cb, Cr): the photo's colours,
    the style's strokes. Shapes must match: float32[..., H, W, 3]."""
    if stylised.shape != content.shape:
        raise ValueError(f"shapes differ: {stylised.shape} vs {content.shape}")
    out = rgb_to_ycbcr(content)
    out[..., 0] = rgb_to_ycbcr(stylised)[..., 0]
    return ycbcr_to_rgb(out)


def check_weights(count: int, weights: Sequence[float] | None) -> None:
    """Raise OptionError unless ``weights`` is None or one finite weight >= 0 per style, not all 0."""
    from jaxstyle.errors import OptionError

    if weights is None:
        return
    if len(weights) != count:
        raise OptionError(f"{len(weights)} style weights for {count} styles; give one weight per style")
    if any(not (w >= 0 and math.isfinite(w)) for w in weights) or sum(weights) <= 0:
        raise OptionError(f"style weights must be finite, >= 0 and not all 0, got {list(weights)}")


def mix(images: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Weighted mean of same-shape images; weights are normalised to sum 1 (they must be >= 0)."""
    w = np.asarray(weights, dtype=np.float64)
    if len(images) != len(w) or not len(w) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"need one non-negative weight per image with a positive sum, got {weights}")
    w = w / w.sum()
    out = np.zeros_like(np.asarray(images[0], np.float32))
    for weight, img in zip(w, images, strict=True):
        out += np.float32(weight) * np.asarray(img, np.float32)
    return out
