"""Colour preservation and mixing."""

import numpy as np
import pytest

from jaxstyle import color


def _images(seed=0, shape=(24, 32, 3)):
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, shape[1], dtype=np.float32)[None, :, None]
    content = np.clip(ramp * np.array([1.0, 0.4, 0.1], np.float32) + 0.1 * rng.random(shape, dtype=np.float32), 0, 1)
    stylised = rng.random(shape, dtype=np.float32)
    return content, stylised


def test_ycbcr_round_trip_and_grey_has_neutral_chroma():
    content, _ = _images()
    np.testing.assert_allclose(color.ycbcr_to_rgb(color.rgb_to_ycbcr(content)), content, atol=1e-5)
    grey = color.rgb_to_ycbcr(np.full((2, 2, 3), 0.3, np.float32))
    np.testing.assert_allclose(grey, np.broadcast_to([0.3, 0.5, 0.5], grey.shape), atol=1e-6)


def test_keep_colors_takes_content_chroma_and_stylised_luminance():
    content, stylised = _images()
    out = color.keep_colors(stylised, content)
    yo, yc, ys = (color.rgb_to_ycbcr(x) for x in (out, content, stylised))
    for channel in (1, 2):
        assert np.corrcoef(yo[..., channel].ravel(), yc[..., channel].ravel())[0, 1] > 0.9
    assert np.corrcoef(yo[..., 0].ravel(), ys[..., 0].ravel())[0, 1] > 0.9
    with pytest.raises(ValueError):
        color.keep_colors(stylised[:-1], content)


def test_match_luminance_moves_style_to_content_statistics():
    content, stylised = _images(1)
    grey = color.match_luminance(stylised, content)
    assert grey.shape == stylised.shape
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    yc = color.rgb_to_ycbcr(content)[..., 0]
    assert abs(grey[..., 0].mean() - yc.mean()) < 0.02 and abs(grey[..., 0].std() - yc.std()) < 0.02


def test_mix_weights():
    a, b = _images(2)
    np.testing.assert_array_equal(color.mix([a, b], [1, 0]), a)
    np.testing.assert_allclose(color.mix([a, b], [1, 1]), (a + b) / 2, atol=1e-6)
    for bad in ([1], [-1, 2], [0, 0]):
        with pytest.raises(ValueError):
            color.mix([a, b], bad)
