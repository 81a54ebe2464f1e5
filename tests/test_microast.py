"""MicroAST: the port against the authors' own forward pass, the shipped file, any size, tiles, bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.errors import WeightsError
from jaxstyle.methods.arbitrary import microast
from tests.conftest import data_dir


def _authors_folder() -> Path:
    folder = data_dir().parent / "models" / "microast"
    if not (folder / "reference.npz").is_file():
        pytest.skip(f"MicroAST's released weights not found at {folder}")
    return folder


@pytest.fixture(scope="module")
def authors_params():
    """The released weights read from the authors' legacy torch files, float32."""
    return jax.device_put(microast.read_authors_files(_authors_folder()))


@pytest.fixture(scope="module")
def shipped():
    return jax.device_put(microast.load_params())


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(_authors_folder() / "reference.npz"))


def _close(got, want, atol=1e-4):
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=atol)


def test_every_stage_matches_the_authors_forward_pass(authors_params, reference):
    content = jnp.asarray(reference["content"])[None]
    style = jnp.asarray(reference["style"])[None]
    c1, c2 = microast.encode(authors_params["content_encoder"], content)
    _close(c1[0], reference["content_feat1"])
    _close(c2[0], reference["content_feat2"])
    s1, s2 = microast.encode(authors_params["style_encoder"], style)
    _close(s1[0], reference["style_feat1"])
    _close(s2[0], reference["style_feat2"])
    signals = microast.modulate(authors_params["modulator"], s1, s2)
    for name in microast.MODULATOR:
        _close(signals[name][0], reference[f"filter_{name}"])
    code = microast.style_code(authors_params, reference["style"])
    _close(microast.forward(authors_params, content, code, 1.0)[0], reference["output_alpha1"])
    _close(microast.forward(authors_params, content, code, 0.5)[0], reference["output_alpha05"])


def test_shipped_file_is_the_released_weights_in_float16(authors_params, shipped):
    flat_authors = jax.tree_util.tree_leaves_with_path(authors_params)
    flat_shipped = dict(jax.tree_util.tree_leaves_with_path(shipped))
    assert len(flat_authors) == len(flat_shipped) == 62  # 31 convs: 9 per encoder, 4 in the modulator, 9 in the decoder
    for path, value in flat_authors:
        want = np.asarray(value).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(np.asarray(flat_shipped[path]), want)


def test_shipped_model_is_within_two_levels_of_the_reference(shipped, reference):
    code = microast.style_code(shipped, reference["style"])
    out = microast.stylize_batch(shipped, reference["content"][None], code)[0]
    assert out.shape == reference["content"].shape
    assert np.abs(out - np.clip(reference["output_alpha1"], 0, 1)).max() < 2.5 / 255


def test_dense_kernel_equals_the_grouped_conv():
    key = jax.random.key(0)
    x = jax.random.normal(key, (1, 12, 10, 32))
    w = jax.random.normal(jax.random.fold_in(key, 1), (3, 3, 2, 16))
    grouped = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                           feature_group_count=16)
    dense = jax.lax.conv_general_dilated(x, microast.dense_kernel(w, 16), (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(dense, grouped, atol=1e-5)


@pytest.mark.parametrize("groups, cin, cout", [(16, 32, 16), (1, 4, 3)])
def test_upsample_conv_equals_upsampling_then_the_conv(groups, cin, cout):
    key = jax.random.key(2)
    x = jax.random.normal(key, (2, 6, 9, cin))
    layer = {"w": jax.random.normal(jax.random.fold_in(key, 1), (3, 3, cin // groups, cout)),
             "b": jax.random.normal(jax.random.fold_in(key, 2), (cout,))}
    want = microast.conv(microast.upsample_bilinear(x), layer, groups=groups)
    np.testing.assert_allclose(microast.upsample_conv(x, layer, groups), want, atol=2e-5)


def test_bilinear_upsampling_matches_jax_image_resize():
    x = jax.random.uniform(jax.random.key(1), (2, 5, 7, 3))
    want = jax.image.resize(x, (2, 10, 14, 3), "bilinear")
    np.testing.assert_allclose(microast.upsample_bilinear(x), want, atol=1e-6)


@pytest.mark.parametrize("shape", [(37, 50), (16, 16), (18, 23)])
def test_any_size_gives_the_input_size(shipped, reference, shape):
    photo = np.asarray(jax.image.resize(jnp.asarray(reference["content"]), (*shape, 3), "bilinear"))
    code = microast.style_code(shipped, reference["style"][:17, :21])  # the style's sides need no multiple
    out = microast.stylize_batch(shipped, photo[None], code)
    assert out.shape == (1, *shape, 3)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_odd_sizes_are_reflected_at_the_bottom_right_and_cropped(shipped, reference):
    """94x125 runs as the 96x128 image reflected at the bottom and right; the output is its top-left."""
    code = microast.style_code(shipped, reference["style"])
    photo = reference["content"][:94, :125]
    padded = np.pad(photo, ((0, 2), (0, 3), (0, 0)), mode="reflect")
    want = np.clip(np.asarray(microast.forward(shipped, jnp.asarray(padded)[None], code)), 0, 1)[0, :94, :125]
    got = microast.stylize_batch(shipped, photo[None], code)[0]
    assert got.shape == (94, 125, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_tiles_give_the_untiled_result(shipped, reference):
    code = microast.style_code(shipped, reference["style"])
    photo = np.asarray(jax.image.resize(jnp.asarray(reference["content"]), (180, 248, 3), "bilinear"))
    whole = microast.stylize_batch(shipped, photo[None], code, alpha=0.7)[0]
    tiled = microast.stylize_tiled(shipped, photo, code, alpha=0.7, tile=64)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_flat_images_are_finite(shipped):
    flat = np.full((32, 40, 3), 0.4, np.float32)
    code = microast.style_code(shipped, flat)
    out = microast.stylize_batch(shipped, flat[None], code)
    assert np.isfinite(out).all()
    assert all(bool(jnp.isfinite(v).all()) for v in code.values())


def test_blended_codes_are_weighted_means(shipped, reference):
    a = microast.style_code(shipped, reference["style"])
    b = microast.style_code(shipped, 1.0 - reference["style"])
    mix = microast.blend_codes([a, b], [3.0, 1.0])
    for k in a:
        np.testing.assert_allclose(mix[k], 0.75 * a[k] + 0.25 * b[k], rtol=1e-5, atol=1e-6)
    same = microast.blend_codes([a])
    for k in a:
        np.testing.assert_allclose(same[k], a[k], rtol=1e-6)


def test_model_file_round_trip_and_bad_files(tmp_path, shipped):
    path = microast.save_model(tmp_path / "m.msgpack", shipped, {"note": "test"})
    params, meta = microast.read_model(path)
    assert meta["note"] == "test" and meta["stored_dtype"] == "float16"
    truncated = tmp_path / "truncated.msgpack"
    truncated.write_bytes(Path(path).read_bytes()[:5000])
    with pytest.raises(WeightsError, match="truncated.msgpack"):
        microast.read_model(truncated)
    wrong = dict(params, decoder={k: v for k, v in params["decoder"].items() if k != "conv_out"})
    foreign = microast.save_model(tmp_path / "foreign.msgpack", wrong, {})
    with pytest.raises(WeightsError, match="not MicroAST's"):
        microast.read_model(foreign)


def test_corrupt_authors_file_names_the_file(tmp_path):
    folder = _authors_folder()
    for name in microast.SOURCE_FILES.values():
        shutil.copy(folder / name, tmp_path / name)
    bad = tmp_path / microast.SOURCE_FILES["decoder"]
    bad.chmod(0o644)
    bad.write_bytes(bad.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="decoder_iter_160000"):
        microast.read_authors_files(tmp_path)


# -- the arbitrary method with MicroAST: the one stylizer, the API and the CLI ------------------------------


def test_default_arbitrary_model_is_microast_and_prepares_the_painting_once(shipped, reference):
    import jaxstyle
    from jaxstyle.io import images as imagelib
    from jaxstyle.methods.arbitrary import stylizer

    photo, painting = reference["content"], reference["style"]
    out = jaxstyle.arbitrary(photo, painting, style_size=64, microast_params=shipped)
    code = microast.style_code(shipped, imagelib.fit_long_side(painting, 64))
    np.testing.assert_allclose(out, microast.stylize_batch(shipped, photo[None], code)[0], atol=1e-6)
    stylize = jaxstyle.make_stylizer([painting, 1.0 - painting], style_weights=[0.8, 0.2], strength=0.5,
                                     preserve_color=True, microast_params=shipped)
    batch = np.stack([photo, photo[::-1]])
    first, again = stylize(batch), stylize(batch)
    np.testing.assert_array_equal(first, again)  # deterministic, and the same prepared code every call
    assert first.shape == batch.shape and np.isfinite(first).all()
    assert stylizer.resolve_model() == "microast"
    assert stylizer.resolve_model(feature_transform="adain") == "adain"
    assert stylizer.resolve_model(decoder_options=True) == "wct"


def test_strength_moves_from_the_photo_own_code_to_the_painting(shipped, reference):
    """Strength 0 repaints the photo with its own code: closer to the photo than the full style, and in
    range everywhere (the authors' alpha at 0.5 leaves most pixels outside [0, 1])."""
    from jaxstyle.methods.arbitrary import stylizer

    photo, painting = reference["content"], reference["style"]
    outs = {s: stylizer.arbitrary(photo, painting, strength=s, microast_params=shipped) for s in (1.0, 0.5, 0.0)}
    gaps = [np.abs(outs[s] - photo).mean() for s in (1.0, 0.5, 0.0)]
    assert gaps[0] > gaps[1] > gaps[2], gaps
    code = microast.style_code(shipped, painting)
    raw = np.asarray(microast.forward(shipped, jnp.asarray(photo)[None], code, 0.5))
    assert ((raw < 0) | (raw > 1)).mean() > 0.5  # why the stylizer does not use alpha


@pytest.mark.parametrize("kwargs, words", [
    (dict(model="microast", levels=(4,)), "decoders and levels"),
    (dict(model="nope"), "unknown arbitrary model"),
    (dict(feature_transform="svd"), "feature_transform"),
    (dict(model="wct", feature_transform="adain"), "cannot be combined"),
    (dict(strength=1.5), "strength"),
    (dict(style_weights=[1.0, 2.0]), "weights"),
])
def test_bad_arbitrary_options_are_one_line_errors(reference, kwargs, words):
    from jaxstyle.errors import OptionError
    from jaxstyle.methods.arbitrary import stylizer

    with pytest.raises(OptionError, match=words):
        stylizer.make_stylizer(reference["style"], **kwargs)


def test_cli_uses_microast_for_a_painting_file(tmp_path, data_dir, capsys):
    from PIL import Image

    from jaxstyle.cli import stylize

    painting = data_dir / "styles" / "wave.jpg"
    photo = data_dir / "content" / "cat.jpg"
    default, adain = tmp_path / "default.png", tmp_path / "adain.png"
    assert stylize.main([str(photo), "--style", str(painting), "--size", "67", "--out", str(default)]) == 0
    assert Image.open(default).size == (67, 45)
    assert stylize.main([str(photo), "--style", str(painting), "--size", "67", "--arbitrary-model", "microast",
                         "--strength", "0.5", "--preserve-color", "--out", str(tmp_path / "mild.png")]) == 0
    assert Image.open(tmp_path / "mild.png").size == (67, 45)
    code = stylize.main([str(photo), "--style", str(painting), "--arbitrary-model", "microast", "--levels", "4",
                         "--out", str(adain)])
    assert code == 2 and not adain.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "decoders and levels" in err[0]
