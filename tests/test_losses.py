"""The paper's losses against hand computations on tiny tensors."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxstyle import objective
from jaxstyle.methods.gatys import optimizers


def test_gram_is_feature_outer_product():
    # One image, 2x2 positions, 3 channels: F is C x M, G = F F^T.
    fmap = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)
    f = fmap.reshape(4, 3).T  # C x M
    np.testing.assert_allclose(np.asarray(objective.gram(jnp.asarray(fmap)))[0], f @ f.T, rtol=1e-6)


def test_content_loss_is_half_sum_of_squares():
    x = np.zeros((1, 2, 2, 2), np.float32)
    y = np.zeros_like(x)
    y[0, 0, 0, 0] = 3.0
    y[0, 1, 1, 1] = -1.0
    # 1/2 * (9 + 1) = 5
    assert float(objective.content_loss(jnp.asarray(x), jnp.asarray(y))) == pytest.approx(5.0)


def test_style_layer_loss_normalisation():
    # N = 2 channels, M = 3 positions: E = sum (G - A)^2 / (4 * 4 * 9)
    g = np.array([[[1.0, 2.0], [2.0, 5.0]]], np.float32)
    a = np.array([[0.0, 2.0], [2.0, 1.0]], np.float32)
    expected = (1.0 + 16.0) / (4 * 2**2 * 3**2)
    value = objective.style_layer_loss(jnp.asarray(g), jnp.asarray(a), height=1, width=3)
    assert float(value) == pytest.approx(expected)


def test_style_loss_sums_weighted_layers():
    rng = np.random.default_rng(0)
    feats = {"conv1_1": rng.random((1, 2, 3, 2), np.float32), "conv2_1": rng.random((1, 1, 2, 3), np.float32)}
    targets = {"conv1_1": np.eye(2, dtype=np.float32), "conv2_1": np.ones((3, 3), np.float32)}
    weights = {"conv1_1": 0.3, "conv2_1": 2.0}
    expected = 0.0
    for layer, w in weights.items():
        f = feats[layer].reshape(-1, feats[layer].shape[-1]).T
        n, m = f.shape
        expected += w * np.sum((f @ f.T - targets[layer]) ** 2) / (4 * n**2 * m**2)
    got = objective.style_loss({k: jnp.asarray(v) for k, v in feats.items()}, targets, weights)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_total_variation_counts_neighbour_differences():
    img = np.zeros((1, 2, 2, 3), np.float32)
    img[0, 0, 0, :] = 1.0  # differs from its right and lower neighbour: 2 pairs x 3 channels
    assert float(objective.total_variation(jnp.asarray(img))) == pytest.approx(6.0)


def test_style_targets_rescale_to_generated_positions():
    fmap = jnp.ones((1, 2, 2, 1))
    plain = objective.style_targets({"conv1_1": fmap})["conv1_1"]
    scaled = objective.style_targets({"conv1_1": fmap}, {"conv1_1": 8})["conv1_1"]
    assert float(plain[0, 0]) == pytest.approx(4.0)
    assert float(scaled[0, 0]) == pytest.approx(8.0)


def test_sign_optimizer_makes_the_papers_update():
    eps = 0.01
    opt = optimizers.sign_gradient(eps)
    params = jnp.array([0.5, 0.5, 0.5, 0.5])
    grad = jnp.array([3.0, -0.2, 0.0, 1e-9])
    updates, _ = opt.update(grad, opt.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(np.asarray(new), [0.49, 0.51, 0.5, 0.49], rtol=0, atol=1e-7)
