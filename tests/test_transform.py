"""The transform net: shapes and dtypes through stylize, instance norm, model files."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import jaxstyle
from jaxstyle.errors import WeightsError
from jaxstyle.methods.transform import net as transform
from jaxstyle.nn import layers


@pytest.fixture(scope="module")
def small_params():
    return transform.init_params(jax.random.key(0), width=8, residual_blocks=2)


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 64, 3), (2, 21, 30, 3)])
def test_stylize_keeps_shape_and_float_dtype(small_params, shape):
    img = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = jaxstyle.stylize(img, small_params)
    assert out.shape == shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_stylize_uint8_and_pil(small_params):
    img = (np.random.default_rng(1).random((19, 23, 3)) * 255).astype(np.uint8)
    out = jaxstyle.stylize(img, small_params)
    assert out.shape == img.shape and out.dtype == np.uint8
    pil = jaxstyle.stylize(Image.fromarray(img), small_params)
    assert isinstance(pil, Image.Image) and pil.size == (23, 19) and pil.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(pil), out)


def test_instance_norm_normalises_each_image_and_channel():
    norm = layers.InstanceNorm()
    x = jax.random.normal(jax.random.key(0), (3, 8, 9, 4)) * jnp.arange(1.0, 5.0) + jnp.arange(3.0)[:, None, None, None]
    y = norm.apply(norm.init(jax.random.key(1), x), x)
    np.testing.assert_allclose(np.asarray(y.mean(axis=(1, 2))), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(y.std(axis=(1, 2))), 1.0, atol=1e-3)


@pytest.mark.parametrize(("kernel", "stride", "cin", "cout", "size"),
                         [(9, 1, 3, 5, (20, 17)), (3, 1, 8, 5, (7, 9)), (3, 2, 3, 5, (20, 18)), (3, 2, 16, 5, (6, 10)),
                          (9, 1, 6, 3, (11, 12))])
def test_reflect_conv_equals_valid_conv_on_reflect_padded_input(kernel, stride, cin, cout, size):
    conv = layers.ReflectConv(cout, kernel, stride)
    x = jax.random.uniform(jax.random.key(0), (2, *size, cin))
    params = conv.init(jax.random.key(1), x)
    assert params["params"]["conv"]["kernel"].shape == (kernel, kernel, cin, cout)
    pad = kernel // 2
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    expected = jax.lax.conv_general_dilated(padded, params["params"]["conv"]["kernel"], (stride, stride), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    expected = expected + params["params"]["conv"]["bias"]
    out = conv.apply(params, x)
    assert out.shape == (2, size[0] // stride, size[1] // stride, cout)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), rtol=1e-5, atol=1e-5)


def test_model_file_round_trip(tmp_path, small_params):
    path = transform.save_transform(tmp_path / "m.msgpack", small_params, {"style": "test", "steps": 3})
    params, meta = transform.read_transform(path)
    assert meta["style"] == "test" and meta["width"] == 8 and meta["residual_blocks"] == 2
    assert jax.tree.structure(params) == jax.tree.structure(small_params)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(small_params), strict=True):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-3, atol=1e-4)  # stored as fp16
    x = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    # fp16 storage moves outputs by less than one 8-bit level
    np.testing.assert_allclose(jaxstyle.stylize(x, params), jaxstyle.stylize(x, small_params), atol=1 / 255)
    assert (tmp_path / "m.msgpack.json").exists()


def test_bad_model_files_are_refused(tmp_path, small_params):
    path = transform.save_transform(tmp_path / "m.msgpack", small_params, {})
    truncated = tmp_path / "t.msgpack"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="t.msgpack"):
        transform.load_transform(truncated)
    text = tmp_path / "x.msgpack"
    text.write_text("hello")
    with pytest.raises(WeightsError):
        transform.load_transform(text)
    from flax import serialization

    other = dict(jax.tree.map(np.asarray, small_params)["params"])
    del other["up2"]  # another architecture: a stage missing
    foreign = tmp_path / "f.msgpack"
    foreign.write_bytes(serialization.msgpack_serialize(
        {"format": transform.FORMAT, "version": transform.FORMAT_VERSION, "metadata": "{}",
         "params": {"params": other}}))
    with pytest.raises(WeightsError, match="another architecture"):
        transform.load_transform(foreign)
    with pytest.raises(WeightsError, match="gatys"):
        transform.load_transform("no_such_style")


@pytest.mark.parametrize("name", ["scream", "starry_night", "wave"])
def test_shipped_models_load_and_stylise(name):
    if name not in transform.shipped_models():
        pytest.fail(f"shipped model {name} missing from jaxstyle/assets/")
    params = jaxstyle.load_transform(name)
    img = np.random.default_rng(0).random((48, 64, 3), dtype=np.float32)
    out = jaxstyle.stylize(img, params)
    assert out.shape == img.shape
    assert np.abs(out - img).mean() > 0.05


@pytest.mark.parametrize("size", [(5, 7), (1, 1), (6, 4)])
def test_upsample_conv_equals_conv_of_upsampled_image(size):
    x = jax.random.normal(jax.random.key(0), (2, *size, 6))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 6, 4))
    padded = jnp.pad(layers.upsample_nearest(x), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    expected = jax.lax.conv_general_dilated(padded, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    out = layers.upsample_conv(x, kernel)
    assert out.shape == (2, 2 * size[0], 2 * size[1], 4)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), rtol=1e-5, atol=1e-4)


def test_upsample_conv_gradients_equal_the_direct_form():
    """Training sees the folded form's gradients: they must be the direct form's, for the input and the kernel
    (a suspect for the transform nets' stripes; they do not come from here)."""
    x = jax.random.normal(jax.random.key(0), (2, 6, 5, 6))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 6, 4))
    weights = jax.random.normal(jax.random.key(2), (2, 12, 10, 4))  # a loss that weighs every output differently

    def direct(x, kernel):
        padded = jnp.pad(layers.upsample_nearest(x), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        out = jax.lax.conv_general_dilated(padded, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(jnp.square(out) * weights)

    def folded(x, kernel):
        return jnp.sum(jnp.square(layers.upsample_conv(x, kernel)) * weights)

    for expected, got in zip(jax.grad(direct, (0, 1))(x, kernel), jax.grad(folded, (0, 1))(x, kernel), strict=True):
        scale = float(jnp.abs(expected).max())
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-4, atol=1e-5 * scale)


def test_strength_blend_and_preserve_color(small_params):
    from jaxstyle import color
    from jaxstyle.errors import OptionError

    other = transform.init_params(jax.random.key(5), width=8, residual_blocks=2)
    img = (np.random.default_rng(2).random((20, 28, 3)) * 255).astype(np.uint8)
    x = img.astype(np.float32) / 255.0
    # Strength 0 gives the photo back (uint8 in, uint8 out, within rounding); 1 the full style.
    np.testing.assert_array_equal(jaxstyle.stylize(img, small_params, strength=0.0), img)
    full = jaxstyle.stylize(x, small_params)
    half = jaxstyle.stylize(x, small_params, strength=0.5)
    np.testing.assert_allclose(half, (x + full) / 2, atol=1e-6)
    # A blend with weights (1, 0) is the first style alone; (1, 1) the mean of the two.
    np.testing.assert_array_equal(jaxstyle.stylize(x, [small_params, other], weights=[1, 0]), full)
    np.testing.assert_allclose(jaxstyle.stylize(x, [small_params, other], weights=[1, 1]),
                               (full + jaxstyle.stylize(x, other)) / 2, atol=1e-6)
    # Preserve colour: the output's chroma is the photo's.
    kept = jaxstyle.stylize(x, small_params, preserve_color=True)
    for channel in (1, 2):
        a, b = color.rgb_to_ycbcr(kept)[..., channel], color.rgb_to_ycbcr(x)[..., channel]
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9
    for bad in (dict(strength=1.5), dict(strength=-0.1)):
        with pytest.raises(OptionError, match="strength"):
            jaxstyle.stylize(x, small_params, **bad)
    with pytest.raises(OptionError, match="one weight per style"):
        jaxstyle.stylize(x, [small_params, other], weights=[1])
    with pytest.raises(OptionError, match="not all 0"):
        jaxstyle.stylize(x, [small_params, other], weights=[0, 0])
