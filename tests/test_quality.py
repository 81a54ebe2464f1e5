"""The benchmarks' quality proxies (bench/_quality.py) on constructed images with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from bench import _quality as q


def _photo(h: int = 64, w: int = 96) -> np.ndarray:
    """A smooth float32[H,W,3] in (0,1): gradients and a blob, nothing at periods under 3 px."""
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    blob = np.exp(-((x - 0.6) ** 2 + (y - 0.4) ** 2) / 0.05)
    img = np.stack([0.2 + 0.6 * x, 0.2 + 0.5 * blob, 0.8 - 0.6 * y], axis=-1)
    return q.as_saved(img)


def test_photo_against_itself_keeps_layout_and_grain():
    photo = _photo()
    assert q.layout_kept(photo, photo) == pytest.approx(1.0)
    assert q.hf_ratio(photo, photo) == pytest.approx(1.0)


def test_inverted_and_flat_layouts():
    photo = _photo()
    assert q.layout_kept(1.0 - photo, photo) == pytest.approx(-1.0)
    flat = np.full_like(photo, 0.5)
    assert q.layout_kept(flat, photo) == 0.0
    assert q.layout_kept(flat, flat) == 1.0


def test_two_pixel_stripes_raise_hf_but_not_layout():
    photo = _photo()
    stripes = np.where(np.arange(photo.shape[1]) % 2 == 0, 0.1, -0.1)[None, :, None]  # period 2 px
    striped = np.clip(photo + stripes, 0.0, 1.0)
    assert q.hf_ratio(striped, photo) > 10.0
    # A box of 8 averages the stripes away: the layout is (nearly) untouched.
    assert q.layout_kept(striped, photo) > 0.99
    # A sine of period 8 px, as strong, sits below the band: no more HF energy than the photo's.
    slow = 0.1 * np.sin(2 * np.pi * np.arange(photo.shape[1]) / 8)[None, :, None]
    assert q.hf_ratio(np.clip(photo + slow, 0, 1), photo) < 1.5


def test_hf_energy_is_the_band_mean_square():
    """A pure period-2 pattern of amplitude a has all its energy in the band: mean square a^2."""
    a = 0.25
    grey = 0.5 + a * np.where(np.arange(32) % 2 == 0, 1.0, -1.0)[None, :, None] * np.ones((16, 32, 3))
    assert q.hf_energy(grey) == pytest.approx(a**2, rel=1e-6)
    assert q.hf_energy(np.full((16, 32, 3), 0.3)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("value", "share"), [(0.0, 1.0), (1.0, 1.0), (0.5, 0.0), (0.001, 1.0), (0.003, 0.0)])
def test_clipped_share_of_constant_images(value, share):
    assert q.clipped_share(np.full((8, 8, 3), value, np.float32)) == share


def test_clipped_share_counts_pixels_with_any_clipped_channel():
    img = np.full((10, 10, 3), 0.5, np.float32)
    img[:3, :, 0] = 1.0  # 30 pixels with red at 255
    img[9, :, 2] = 0.0  # 10 more with blue at 0
    assert q.clipped_share(img) == pytest.approx(0.4)


def test_style_loss_is_zero_for_the_painting_and_lower_than_the_photos(vgg_params, small_pair):
    from jaxstyle.io import images
    from jaxstyle.nn import vgg

    photo, style = small_pair
    params = vgg.to_device(vgg_params)
    shape = photo.shape[:2]
    grams = q.style_grams(params, style, shape)
    painting = q.as_saved(images.resize(style, *shape))  # the painting itself at the output's size
    ref = q.style_loss(params, photo, grams)
    assert ref > 0
    assert q.style_loss(params, painting, grams) < 0.2 * ref
    m = q.measure(painting, photo, params, grams, photo_style_loss=ref)
    assert m["style_ratio"] < 0.2
    periodic = {"periodic"} if min(shape) >= q.PERIODIC_PATCH else set()  # the 96 px pair: 64 px high or not
    assert set(m) == {"layout", "hf_ratio", "clipped", "style_loss", "style_ratio"} | periodic


def _textured(h: int = 128, w: int = 192, seed: int = 0) -> np.ndarray:
    """A painterly stand-in: the smooth photo plus band-limited random texture (no period)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(h, w, 3))
    kernel = np.ones(3) / 3.0  # a 3 px box blur each way: texture at every period, no peak
    for axis in (0, 1):
        noise = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, noise)
    return q.as_saved(np.clip(_photo(h, w) + 0.15 * noise, 0.0, 1.0))


@pytest.mark.parametrize("period", [4, 8, 16])
def test_periodic_energy_is_high_for_stripes_and_grids_low_for_texture(period):
    photo = _photo(128, 192)
    textured = _textured()
    yy, xx = np.mgrid[0:128, 0:192]
    stripes = 0.08 * np.sin(2 * np.pi * (xx + yy) / period)[..., None]
    grid = 0.08 * (((xx % period) == 0) | ((yy % period) == 0))[..., None]
    clean = q.periodic_energy(textured, photo)
    assert clean < 0.05
    assert q.periodic_energy(np.clip(textured + stripes, 0, 1), photo) > 0.3 > clean
    assert q.periodic_energy(np.clip(textured + grid, 0, 1), photo) > 0.15


def test_periodic_energy_ignores_what_the_photo_already_has():
    yy, xx = np.mgrid[0:128, 0:192]
    photo = q.as_saved(np.clip(_photo(128, 192) + 0.1 * np.sin(2 * np.pi * xx / 8)[..., None], 0, 1))
    assert q.periodic_energy(photo) > 0.3  # alone, the photo's own stripes count
    assert q.periodic_energy(photo, photo) == 0.0  # kept in the result, they are not added
    with pytest.raises(ValueError):
        q.periodic_energy(photo[:64], photo)


def test_periodic_energy_does_not_count_detail_the_result_smooths_away():
    yy, xx = np.mgrid[0:128, 0:192]
    photo = q.as_saved(np.clip(_photo(128, 192) + 0.1 * np.sin(2 * np.pi * xx / 6)[..., None], 0, 1))
    smoothed = _textured()  # the photo's layout, its stripes gone, texture of every period added
    assert q.periodic_energy(smoothed, photo) < 0.05
    # the same stripes at another angle and period are a pattern the result added
    added = q.as_saved(np.clip(smoothed + 0.08 * np.sin(2 * np.pi * yy / 8)[..., None], 0, 1))
    assert q.periodic_energy(added, photo) > 0.3


def test_psnr_of_a_known_error():
    a = np.zeros((4, 4, 3), np.float32)
    assert q.psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01: 20 dB
    assert q.psnr(a, a) == pytest.approx(120.0)  # the MSE floor, 1e-12
