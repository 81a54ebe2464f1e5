"""The pure-function VGG19: preprocessing, pooling, depth, shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.errors import OptionError
from jaxstyle.nn import vgg

CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


def random_params(upto: str = "conv5_4", seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    params, cin = {}, 3
    for name in vgg.VGG_LAYERS[: vgg.VGG_LAYERS.index(upto) + 1]:
        cout = CHANNELS[int(name[4])]
        w = rng.standard_normal((3, 3, cin, cout)).astype(np.float32) * np.sqrt(2.0 / (9 * cin)) / 50
        params[name] = {"w": w, "b": rng.standard_normal(cout).astype(np.float32) * 0.1}
        cin = cout
    return params


def test_preprocess_is_caffe_convention():
    rgb = jnp.array([[[[1.0, 0.5, 0.0]]]])
    out = np.asarray(vgg.preprocess(rgb))[0, 0, 0]
    np.testing.assert_allclose(out, [0.0 - 103.939, 127.5 - 116.779, 255.0 - 123.68], rtol=1e-6)


def test_shapes_halve_per_block():
    params = vgg.to_device(random_params())
    x = jnp.zeros((2, 64, 48, 3))
    out = vgg.features(params, x, ("conv1_1", "conv2_1", "conv3_1", "conv4_2", "conv5_1"))
    assert out["conv1_1"].shape == (2, 64, 48, 64)
    assert out["conv2_1"].shape == (2, 32, 24, 128)
    assert out["conv3_1"].shape == (2, 16, 12, 256)
    assert out["conv4_2"].shape == (2, 8, 6, 512)
    assert out["conv5_1"].shape == (2, 4, 3, 512)
    assert all(float(v.min()) >= 0 for v in out.values())  # ReLU responses


def test_computes_nothing_past_the_deepest_layer():
    # Params stop at conv2_1: asking for conv2_1 must not touch conv2_2 or beyond.
    params = vgg.to_device(random_params(upto="conv2_1"))
    out = jax.jit(lambda p, x: vgg.features(p, x, ("conv2_1",)))(params, jnp.ones((1, 8, 8, 3)))
    assert set(out) == {"conv2_1"}


def test_avg_and_max_pooling_differ_and_avg_is_the_mean():
    params = vgg.to_device(random_params(upto="conv2_1"))
    x = jax.random.uniform(jax.random.key(0), (1, 8, 8, 3))
    a = vgg.features(params, x, ("conv2_1",), "avg")["conv2_1"]
    m = vgg.features(params, x, ("conv2_1",), "max")["conv2_1"]
    assert not np.allclose(a, m)
    pooled = vgg.pool(jnp.arange(16.0).reshape(1, 4, 4, 1), "avg")
    np.testing.assert_allclose(np.asarray(pooled)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


@pytest.mark.parametrize("pooling", ["avg", "max"])
@pytest.mark.parametrize("size", [(6, 8), (7, 9)])
def test_pool_equals_reduce_window_and_drops_odd_edges(pooling, size):
    x = jax.random.normal(jax.random.key(0), (2, *size, 5))
    op, init = (jax.lax.max, -jnp.inf) if pooling == "max" else (jax.lax.add, 0.0)
    expected = jax.lax.reduce_window(x, init, op, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    expected = expected if pooling == "max" else expected / 4
    out = vgg.pool(x, pooling)
    assert out.shape == (2, size[0] // 2, size[1] // 2, 5)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), rtol=1e-6, atol=1e-6)


def test_bad_layer_and_pooling_names_raise():
    params = vgg.to_device(random_params(upto="conv1_1"))
    with pytest.raises(OptionError, match="conv9_9"):
        vgg.features(params, jnp.zeros((1, 4, 4, 3)), ("conv9_9",))
    with pytest.raises(OptionError, match="pooling"):
        vgg.features(params, jnp.zeros((1, 4, 4, 3)), ("conv1_1",), "median")
