"""Arbitrary-style transfer: feature transforms, decoders, their files, and the method end to end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxstyle.errors import OptionError, WeightsError
from jaxstyle.methods.arbitrary import stylizer, vgg_decoders, wct
from jaxstyle.nn import vgg


def _features(key, h=12, w=10, c=16, scale=1.0, shift=0.0):
    mix = jax.random.normal(jax.random.fold_in(key, 1), (c, c))
    return (jax.random.normal(key, (h, w, c)) @ mix) * scale + shift


def test_wct_gives_content_the_style_covariance_and_mean():
    content = _features(jax.random.key(0))
    style_feats = _features(jax.random.key(1), 20, 20, scale=3.0, shift=2.0)
    target = wct.feature_stats(style_feats)
    out = wct.wct(content, wct.style_transform(target))
    got = wct.feature_stats(out)
    np.testing.assert_allclose(got["mean"], target["mean"], atol=1e-3)
    np.testing.assert_allclose(got["cov"], target["cov"], atol=2e-3 * float(jnp.abs(target["cov"]).max()))
    # The layout is the content's: positions keep their order (correlated with the whitened content).
    assert out.shape == content.shape


def test_adain_matches_mean_and_std_per_channel():
    content = _features(jax.random.key(2))
    style = wct.style_transform(wct.feature_stats(_features(jax.random.key(3), scale=5.0, shift=-1.0)))
    out = wct.adain(content, style)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), style["mean"], atol=1e-3)
    np.testing.assert_allclose(out.std(axis=(0, 1), ddof=1), style["std"], rtol=1e-3)  # both unbiased


@pytest.mark.parametrize("flat", ["content", "style", "both"])
def test_flat_images_give_finite_features(flat):
    varied = _features(jax.random.key(4))
    constant = jnp.full((12, 10, 16), 0.7)
    content = constant if flat in ("content", "both") else varied
    style_feats = constant if flat in ("style", "both") else varied
    style = wct.style_transform(wct.feature_stats(style_feats))
    for transform in (wct.wct, wct.adain):
        out = transform(content, style)
        assert bool(jnp.isfinite(out).all())
    if flat == "content":  # nothing to whiten: the style's mean everywhere
        np.testing.assert_allclose(wct.wct(content, style), jnp.broadcast_to(style["mean"], content.shape),
                                   atol=1e-3)


def test_one_position_is_finite():
    f = _features(jax.random.key(5), 1, 1)
    style = wct.style_transform(wct.feature_stats(_features(jax.random.key(6))))
    assert bool(jnp.isfinite(wct.wct(f, style)).all())


def test_blend_of_one_style_is_that_style():
    stats = wct.feature_stats(_features(jax.random.key(7)))
    other = wct.feature_stats(_features(jax.random.key(8), shift=3.0))
    alone = wct.blend_stats([stats, other], [1.0, 0.0])
    np.testing.assert_allclose(alone["cov"], stats["cov"], atol=1e-4)
    half = wct.blend_stats([stats, other], [1.0, 1.0])
    np.testing.assert_allclose(half["mean"], (stats["mean"] + other["mean"]) / 2, atol=1e-5)


@pytest.mark.parametrize("level", vgg_decoders.LEVELS)
def test_decoder_shapes_mirror_vgg(level):
    params = vgg_decoders.init_decoder(jax.random.key(0), level, width=0.5)
    c = vgg_decoders.decoder_layers(level)[0][1]
    feats = jnp.ones((2, 3, 5, c))
    out = vgg_decoders.decode(params, feats)
    scale = 2 ** (level - 1)
    assert out.shape == (2, 3 * scale, 5 * scale, 3)


@pytest.mark.slow  # 60 s
@pytest.mark.parametrize("level", vgg_decoders.LEVELS)
def test_brief_training_lowers_reconstruction_loss(level, vgg_params):
    params = {f"dec{level}": vgg_decoders.init_decoder(jax.random.key(level), level, width=0.25)}
    vp = vgg.to_device(vgg_params, upto=[vgg_decoders.level_layer(level)])
    images = jax.random.uniform(jax.random.key(9), (2, 32, 32, 3))
    images = jax.image.resize(images[:, ::4, ::4], (2, 32, 32, 3), "linear")  # smooth, photo-like
    opt = optax.adam(1e-3)

    @jax.jit
    def step(params, state):
        (loss, _), grads = jax.value_and_grad(vgg_decoders.decoders_loss, has_aux=True)(params, vp, images)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    state = opt.init(params)
    losses = []
    for _ in range(25):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0], losses


def _tiny_decoders():
    return vgg_decoders.init_decoders(jax.random.key(0), (1, 2), width=0.25)


def test_strength_zero_is_the_decoders_reconstruction(vgg_params):
    photo = np.asarray(jax.random.uniform(jax.random.key(1), (20, 28, 3)))
    style = np.asarray(jax.random.uniform(jax.random.key(2), (24, 24, 3)))
    decoders = _tiny_decoders()
    out = stylizer.arbitrary(photo, style, decoders=decoders, vgg_params=vgg_params, strength=0.0, levels=(2,))
    vp = vgg.to_device(vgg_params, upto=["conv2_1"])
    features = vgg_decoders.encode(vp, jnp.asarray(photo)[None], 2)
    expected = np.clip(vgg_decoders.decode(decoders["dec2"], features), 0, 1)[0]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    styled = stylizer.arbitrary(photo, style, decoders=decoders, vgg_params=vgg_params, strength=1.0, levels=(2,))
    assert np.abs(styled - out).mean() > 1e-3


def test_arbitrary_keeps_size_and_range_for_odd_sizes_and_is_deterministic(vgg_params):
    photo = np.asarray(jax.random.uniform(jax.random.key(3), (37, 23, 3)))
    style = np.asarray(jax.random.uniform(jax.random.key(4), (30, 41, 3)))
    kwargs = dict(decoders=_tiny_decoders(), vgg_params=vgg_params, levels=(2, 1))
    out = stylizer.arbitrary(photo, style, **kwargs)
    assert out.shape == photo.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(out, stylizer.arbitrary(photo, style, **kwargs))
    flat = stylizer.arbitrary(np.full((16, 16, 3), 0.5, np.float32), np.zeros((16, 16, 3), np.float32), **kwargs)
    assert np.isfinite(flat).all()


def test_options_are_checked(vgg_params):
    assert wct.ArbitraryOptions().levels_for((1, 2, 4)) == (4,)  # default: the deepest level
    assert wct.ArbitraryOptions(levels=(4, 2)).levels_for((1, 2, 4)) == (4, 2)
    photo = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(OptionError, match="feature_transform"):
        stylizer.arbitrary(photo, photo, decoders=_tiny_decoders(), vgg_params=vgg_params, feature_transform="x")
    with pytest.raises(OptionError, match="strength"):
        stylizer.arbitrary(photo, photo, decoders=_tiny_decoders(), vgg_params=vgg_params, strength=1.5)
    with pytest.raises(OptionError, match="no decoder for level"):
        stylizer.arbitrary(photo, photo, decoders=_tiny_decoders(), vgg_params=vgg_params, levels=(3,))


def test_decoder_file_round_trip_and_bad_files(tmp_path):
    decoders = _tiny_decoders()
    path = vgg_decoders.save_decoders(tmp_path / "d.msgpack", decoders, {"steps": 3})
    loaded, meta = vgg_decoders.read_decoders(path)
    assert meta["levels"] == [1, 2] and meta["steps"] == 3
    for name in decoders:
        for layer in decoders[name]:
            np.testing.assert_allclose(loaded[name][layer]["w"], decoders[name][layer]["w"], atol=2e-3)
    with pytest.raises(WeightsError, match="cannot read"):
        vgg_decoders.read_decoders(tmp_path / "missing.msgpack")
    (tmp_path / "junk.msgpack").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(WeightsError, match="bin/train --decoders"):
        vgg_decoders.read_decoders(tmp_path / "junk.msgpack")
    truncated = tmp_path / "cut.msgpack"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError):
        vgg_decoders.read_decoders(truncated)


@pytest.mark.slow  # 20 s
def test_cli_writes_an_arbitrary_image_of_the_right_size(tmp_path, data_dir):
    from PIL import Image

    from jaxstyle.cli import stylize

    decoders = vgg_decoders.save_decoders(tmp_path / "tiny.msgpack", _tiny_decoders(), {})
    photo = tmp_path / "photo.png"
    Image.fromarray((np.asarray(jax.random.uniform(jax.random.key(0), (30, 44, 3))) * 255).astype(np.uint8)).save(photo)
    out = tmp_path / "out.png"
    # A style image file and no --method: the arbitrary method.
    code = stylize.main([str(photo), "--style", str(data_dir / "styles" / "udnie.jpg"), "--decoders", str(decoders),
                         "--out", str(out), "--style-size", "64", "--feature-transform", "adain"])
    assert code == 0
    with Image.open(out) as img:
        assert img.size == (44, 30) and img.mode == "RGB"


def test_cli_bad_decoder_file_is_one_line_exit_2(tmp_path, data_dir, capsys):
    from jaxstyle.cli import stylize

    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"not msgpack at all")
    photo = data_dir / "content" / "cat.jpg"
    out = tmp_path / "out.png"
    code = stylize.main([str(photo), "--method", "arbitrary", "--style", "udnie", "--decoders", str(bad),
                         "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "bin/train --decoders" in err
    assert not out.exists()


@pytest.mark.slow  # 100 s
def test_tiled_matches_untiled(vgg_params, data_dir):
    from jaxstyle.io import images

    photo = images.fit_long_side(images.load_image(data_dir / "content" / "tubingen.jpg"), 256)
    style = images.fit_long_side(images.load_image(data_dir / "styles" / "starry_night.jpg"), 256)
    vp = vgg.to_device(vgg_params, upto=["conv4_1"])
    decoders = vgg_decoders.load_decoders()
    styles = wct.prepare_style(vp, [jnp.asarray(style)], (4,))
    for ft in wct.FEATURE_TRANSFORMS:
        options = wct.ArbitraryOptions(feature_transform=ft)
        small = wct.stylize_tiled(decoders, vp, photo, styles, options, tile=64)
        large = wct.stylize_tiled(decoders, vp, photo, styles, options, tile=128)
        # Cores join exactly and the statistics are the whole image's: the tile size does not matter.
        assert small.shape == photo.shape
        np.testing.assert_allclose(small, large, atol=2e-3)
        # Against the untiled run only the image border differs (zero padding there, reflected context
        # in a tile), far less than another painting changes the picture.
        whole = wct.stylize_batch(decoders, vp, photo[None], styles, options)[0]
        other = wct.stylize_batch(decoders, vp, photo[None], wct.prepare_style(
            vp, [jnp.asarray(1.0 - style[::-1])], (4,)), options)[0]
        assert np.abs(small - whole).mean() < 0.3 * np.abs(other - whole).mean()


@pytest.mark.slow  # 40 s
def test_train_decoders_cli_lowers_loss_resumes_and_exports(tmp_path, data_dir):
    import json

    from jaxstyle.cli import train as train_cli

    out = tmp_path / "dec.msgpack"
    args = ["--decoders", "--data", str(data_dir / "train"), "--workdir", str(tmp_path / "run"), "--out", str(out),
            "--levels", "1,2", "--width", "0.25", "--image-size", "32", "--batch-size", "2", "--lr", "2e-3",
            "--checkpoint-every", "10", "--log-every", "2"]
    assert train_cli.main([*args, "--steps", "10"]) == 0
    assert train_cli.main([*args, "--steps", "20"]) == 0  # resumes from step 10
    decoders, meta = vgg_decoders.read_decoders(out)
    assert meta["steps"] == 20 and vgg_decoders.decoder_levels(decoders) == (1, 2)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 20 and lines[-1]["loss"] < lines[0]["loss"]
    assert (tmp_path / "run" / "loss.png").is_file()


def test_train_decoders_bad_options_exit_2(tmp_path, data_dir, capsys):
    from jaxstyle.cli import train as train_cli

    base = ["--decoders", "--data", str(data_dir / "train"), "--workdir", str(tmp_path / "run")]
    for bad in (["--levels", "5"], ["--image-size", "36"], ["--width", "0"]):
        assert train_cli.main([*base, *bad]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
