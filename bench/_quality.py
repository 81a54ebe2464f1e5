"""Picture-quality proxies shared by the benchmarks: how much style, how much layout, how much grain.

Every proxy takes float[H,W,3] RGB in [0,1]; measure what a user gets by passing the saved picture
(:func:`as_saved`: rounded to uint8 and back). The photo is the reference, at the output's size.

* :func:`style_loss`: the paper's Gram style loss (equal weights over conv1_1..conv5_1 of our VGG19,
  avg pooling, :mod:`jaxstyle.objective`), against a painting's Grams from :func:`style_grams`; the
  benchmarks report it over the photo's own (``style_ratio``: lower = more of the painting's style).
* :func:`layout_kept`: Pearson correlation of the 8x box-downsampled luminance with the photo's
  (1 = the photo's layout of light and dark, 0 = none of it).
* :func:`hf_energy`: mean square of the luminance's component at periods under 3 px (FFT band
  ``|f| > 1/3`` cycles/px), per pixel; reported over the photo's (``hf_ratio``: grain, ringing, noise).
* :func:`periodic_energy`: the share of the luminance's energy at 2-32 px periods that sits in
  isolated spectral peaks the photo has not (a regular stripe or grid pattern; painted texture spreads
  its energy).
* :func:`clipped_share`: the share of pixels with a channel at 0 or 255 in uint8 (absolute, in [0, 1];
  the photo's own share is reported beside it, since a ratio to a photo with none is undefined).
* :func:`psnr`: of one picture against another (a ``--fast`` net's output against the full net's).

Only numpy here, except :func:`style_grams` and :func:`style_loss` (the objective's loss, on VGG).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxstyle.io import images as imagelib

LUMA = np.array([0.299, 0.587, 0.114])  # BT.601
LAYOUT_FACTOR = 8  # the box downsampling of layout_kept
HF_PERIOD = 3.0  # hf_energy counts periods shorter than this, in px


def as_saved(img: np.ndarray) -> np.ndarray:
    """The picture as saved: float[H,W,3] in [0,1] -> rounded to uint8 -> float32[H,W,3] in [0,1]."""
    return imagelib.to_uint8(img).astype(np.float32) / 255.0


def luminance(img: np.ndarray) -> np.ndarray:
    """float[H,W,3] in [0,1] -> float64[H,W] BT.601 luma in [0,1]."""
    return np.asarray(img)[..., :3].astype(np.float64) @ LUMA


def lowpass(y: np.ndarray, factor: int = LAYOUT_FACTOR) -> np.ndarray:
    """Box-downsample float[H,W] by ``factor`` (the ragged bottom and right edges are dropped)."""
    h, w = (y.shape[0] // factor) * factor, (y.shape[1] // factor) * factor
    if h == 0 or w == 0:
        raise ValueError(f"image {y.shape} is smaller than the {factor}x downsampling")
    return y[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def layout_kept(img: np.ndarray, photo: np.ndarray, factor: int = LAYOUT_FACTOR) -> float:
    """Correlation of the low-pass luminance of ``img`` with the photo's (same shape), in [-1, 1].

    A flat image (no variance) keeps no layout: 0, or 1 if both are flat and equal.
    """
    if np.shape(img) != np.shape(photo):
        raise ValueError(f"layout_kept: shapes differ, {np.shape(img)} vs {np.shape(photo)}")
    a, b = lowpass(luminance(img), factor).ravel(), lowpass(luminance(photo), factor).ravel()
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 1.0 if np.allclose(a, b, atol=1e-9) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def hf_energy(img: np.ndarray, period: float = HF_PERIOD) -> float:
    """Mean square, per pixel, of the luminance's Fourier components at periods under ``period`` px."""
    y = luminance(img)
    spectrum = np.abs(np.fft.fft2(y - y.mean())) ** 2
    fy = np.fft.fftfreq(y.shape[0])[:, None]
    fx = np.fft.fftfreq(y.shape[1])[None, :]
    # Parseval: sum |F|^2 = N sum y^2, so dividing by N^2 gives the band's mean square per pixel.
    return float(spectrum[np.hypot(fy, fx) > 1.0 / period].sum() / y.size**2)


def hf_ratio(img: np.ndarray, photo: np.ndarray) -> float:
    """:func:`hf_energy` of ``img`` over the photo's (inf if the photo has none and ``img`` has some)."""
    ours, ref = hf_energy(img), hf_energy(photo)
    if ref <= 0.0:
        return 1.0 if ours <= 0.0 else float("inf")
    return ours / ref


def clipped_share(img: np.ndarray) -> float:
    """Share of pixels (in [0, 1]) with at least one channel at 0 or 255 after rounding to uint8."""
    u8 = imagelib.to_uint8(img)
    return float(np.mean(np.any((u8 == 0) | (u8 == 255), axis=-1)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two float images in [0,1] of one shape (the mean square error floored at 1e-12)."""
    return float(-10.0 * np.log10(max(float(np.mean(np.square(a - b))), 1e-12)))


# -- the style loss (VGG) ------------------------------------------------------------------------


def style_grams(vgg_params: Any, style: np.ndarray, shape: tuple[int, int]) -> dict[str, Any]:
    """The painting's target Grams for outputs of (H, W) ``shape``: the style resized to the output's
    pixel count (Gatys's default in :func:`jaxstyle.gatys`), then :func:`jaxstyle.objective.style_grams`.

    vgg_params: from :func:`jaxstyle.nn.vgg.to_device`; style: float32[h,w,3] in [0,1].
    """
    from jaxstyle import objective

    sized = imagelib.fit_pixels(style, shape[0] * shape[1])
    return objective.style_grams(vgg_params, sized, objective.LossSpec(), shape)


def style_loss(vgg_params: Any, img: np.ndarray, grams: Mapping[str, Any]) -> float:
    """The paper's style loss (equal layer weights, avg pooling) of float32[H,W,3] in [0,1] against
    :func:`style_grams` of the same (H, W)."""
    import jax.numpy as jnp

    from jaxstyle import objective
    from jaxstyle.nn import vgg

    spec = objective.LossSpec()
    feats = vgg.jit_features(vgg_params, jnp.asarray(img, jnp.float32)[None], spec.style_layers, spec.pooling)
    return float(objective.style_loss(feats, grams, dict(spec.style_layer_weights)))


def measure(img: np.ndarray, photo: np.ndarray, vgg_params: Any = None, grams: Mapping[str, Any] | None = None,
            photo_style_loss: float | None = None) -> dict[str, float]:
    """All proxies of ``img`` against ``photo`` (same shape; pass both :func:`as_saved`):
    ``{"layout", "hf_ratio", "clipped", "periodic", "style_loss", "style_ratio"}`` (the last two when ``grams``
    is given; ``photo_style_loss`` saves recomputing the photo's; ``periodic`` needs both sides >= 64 px)."""
    out = {"layout": layout_kept(img, photo), "hf_ratio": hf_ratio(img, photo), "clipped": clipped_share(img)}
    if min(np.shape(img)[:2]) >= PERIODIC_PATCH:
        out["periodic"] = periodic_energy(img, photo)
    if grams is not None:
        loss = style_loss(vgg_params, img, grams)
        ref = style_loss(vgg_params, photo, grams) if photo_style_loss is None else photo_style_loss
        out.update(style_loss=loss, style_ratio=loss / ref if ref > 0 else float("inf"))
    return out


# -- regular patterns (stripes, grids) --------------------------------------------------------------

PERIODIC_BAND = (2.0, 32.0)  # periodic_energy looks at periods from 2 to 32 px
PERIODIC_PATCH = 64  # ... in the spectrum averaged over 64 x 64 px patches (half overlapping)
PERIODIC_PEAK = 4.0  # a spectral bin counts as a peak above this many times its ring's median


def patch_spectrum(y: np.ndarray, n: int = PERIODIC_PATCH) -> np.ndarray:
    """Welch's estimate of the power spectrum of float[H,W] (H, W >= ``n``): the mean of the
    periodograms of the ``n`` x ``n`` patches at steps of n/2, each with its mean removed and a Hann
    window (so patch borders make no lines). Returns float64[n,n] in ``np.fft.fftfreq(n)`` order.
    Averaging over patches keeps the peaks of a pattern that repeats over the image and smooths
    the rest (one photo's periodogram is as noisy as its mean)."""
    h, w = y.shape
    if h < n or w < n:
        raise ValueError(f"image {y.shape} is smaller than the {n} px patches of the spectrum")
    window = np.outer(np.hanning(n), np.hanning(n))
    total, count = np.zeros((n, n)), 0
    for i in range(0, h - n + 1, n // 2):
        for j in range(0, w - n + 1, n // 2):
            patch = y[i:i + n, j:j + n]
            total += np.abs(np.fft.fft2((patch - patch.mean()) * window)) ** 2
            count += 1
    return total / count


def _peak_excess(y: np.ndarray, band: tuple[float, float], peak: float, patch: int) -> tuple[np.ndarray, float]:
    """The patch-averaged spectrum of float[H,W] ``y`` judged ring by ring: float64[patch,patch] holding,
    at each in-band bin above ``peak`` times its ring's median, the power above that median (else 0);
    and the total power within the band."""
    power = patch_spectrum(y, patch)
    freq = np.fft.fftfreq(patch)
    radius = np.hypot(freq[:, None], freq[None, :])
    in_band = (radius >= 1.0 / band[1]) & (radius <= 1.0 / band[0])
    ring = np.round(radius * patch).astype(int)
    excess = np.zeros_like(power)
    for r in np.unique(ring[in_band]):
        where = in_band & (ring == r)
        values = power[where]
        baseline = float(np.median(values))
        excess[where] = np.where(values > peak * baseline, values - baseline, 0.0)
    return excess, float(power[in_band].sum())


def periodic_energy(img: np.ndarray, photo: np.ndarray | None = None, band: tuple[float, float] = PERIODIC_BAND,
                    peak: float = PERIODIC_PEAK, patch: int = PERIODIC_PATCH) -> float:
    """Share, in [0, 1], of the luminance's spectral energy at periods of ``band`` px that sits in
    isolated peaks the photo does not have: a regular stripe or grid pattern (e.g. the 8 px block grid
    of VGG19's three 2x pools) puts its energy in a few bins, while painted texture and photo detail
    spread theirs smoothly over each ring of equal frequency.

    img: float[H,W,3] in [0,1], both sides >= ``patch``. The luminance (BT.601) goes through
    :func:`patch_spectrum`; in each ring one bin wide, power above ``peak`` times the ring's median
    counts, less the median, as periodic. With ``photo`` (the same shape; the usual use) the bins where
    the photo's own spectrum peaks are left out, so that a photo's facades, cables or lattice kept in
    the result do not count (golden_gate alone scores 0.61, rocket 0.71). Returns periodic / total power
    within the band (0 for a flat image). Noise scores about 0, pure stripes about 1.

    Measured on the result itself, not on result minus photo: the difference also holds the photo's
    fine detail that a stylisation smooths away, which has peaks of its own (a result that kept the
    layout scored higher than one that dissolved it, on pictures where the eye saw no pattern in either).
    """
    if photo is not None and np.shape(photo) != np.shape(img):
        raise ValueError(f"periodic_energy: shapes differ, {np.shape(img)} vs {np.shape(photo)}")
    excess, total = _peak_excess(luminance(img), band, peak, patch)
    if total <= 1e-20:
        return 0.0
    if photo is not None:
        excess = np.where(_peak_excess(luminance(photo), band, peak, patch)[0] > 0, 0.0, excess)
    return float(excess.sum()) / total
