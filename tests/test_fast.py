"""The --fast transform nets: distillation (bin/train --teacher), shipped fast models, bin/stylize --fast."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from jaxstyle import train
from jaxstyle.cli import stylize
from jaxstyle.cli import train as train_cli
from jaxstyle.errors import JaxstyleError, OptionError, WeightsError
from jaxstyle.methods.transform import net as transform
from jaxstyle.nn import layers

STYLES = ("scream", "starry_night", "wave")


def _batches(n: int = 2, size: int = 32, seed: int = 0) -> Iterator[np.ndarray]:
    """Mock data: uint8[n,size,size,3] of smooth random colour fields (photos are smooth, noise is not)."""
    rng = np.random.default_rng(seed)
    while True:
        coarse = rng.random((n, size // 8, size // 8, 3))
        yield (np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2) * 255).astype(np.uint8)


def _teacher(tmp_path: Path) -> Path:
    """A small random teacher (width 8, one residual block) as a model file."""
    params = transform.init_params(jax.random.key(7), width=8, residual_blocks=1)
    return transform.save_transform(tmp_path / "teacher.msgpack", params, {"style": "mock_style"})


@pytest.mark.slow  # 120 s
def test_distillation_lowers_loss_and_exports_a_width_16_model(tmp_path):
    teacher = _teacher(tmp_path)
    config = train.TrainConfig(style="mock_style", teacher=str(teacher), steps=30, batch_size=2, image_size=32,
                               width=16, residual_blocks=1)
    result = train.run(config, tmp_path / "w", batches=_batches(), log_every=5, checkpoint_every=15,
                       out=tmp_path / "student.msgpack", progress=False, log=lambda _: None)
    rows = [json.loads(line) for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "pixel", "psnr"} <= set(rows[0])
    first, last = rows[0]["loss"], np.mean([r["loss"] for r in rows[-2:]])
    assert last < 0.5 * first, (first, last)
    assert rows[-1]["psnr"] > rows[0]["psnr"] + 3.0

    params, meta = transform.read_transform(tmp_path / "student.msgpack")
    assert transform.architecture(params) == {"width": 16, "residual_blocks": 1}
    # the teacher by its file's name, never a machine path; every step was distillation
    assert meta["teacher"] == teacher.name and meta["stored_dtype"] == "float16" and meta["steps"] == 30
    assert meta["phases"] == [{"phase": "teacher", "steps": 30}] and meta["teacher_loss"] == "mse"
    assert len(meta["teacher_sha256"]) == 64 and meta["student_init"] is None  # a narrower teacher: random init
    # The exported student reproduces the teacher on a new batch about as well as training said.
    x = next(_batches(seed=1)).astype(np.float32) / 255.0
    theirs = np.asarray(transform.apply(transform.load_transform(teacher), x))
    ours = np.asarray(transform.apply(transform.load_transform(tmp_path / "student.msgpack"), x))
    assert -10 * np.log10(np.mean((ours - theirs) ** 2)) > rows[0]["psnr"] + 3.0
    assert result.steps == 30

    # Resuming the workdir with another teacher is refused; with the same one it resumes (and is done).
    other = train.TrainConfig(**{**config.__dict__, "teacher": "scream"})
    with pytest.raises(JaxstyleError, match="teacher"):
        train.run(other, tmp_path / "w", batches=_batches(), progress=False, log=lambda _: None)
    again = train.run(config, tmp_path / "w", batches=_batches(), progress=False, log=lambda _: None)
    assert again.resumed_from == 30


def test_workdir_from_before_teacher_still_resumes(tmp_path):
    """config.json written before the ``teacher`` field existed lacks it; that means no teacher."""
    config = train.TrainConfig(style="wave")
    saved = {k: v for k, v in config.__dict__.items() if k != "teacher"}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    train.check_workdir_config(tmp_path, config, primary=False)
    with pytest.raises(JaxstyleError, match="teacher"):
        train.check_workdir_config(tmp_path, train.TrainConfig(style="wave", teacher="wave"), primary=False)


@pytest.mark.slow  # 67 s
def test_train_cli_teacher_takes_the_teachers_style_and_needs_no_vgg(tmp_path, data_dir, monkeypatch):
    from jaxstyle import vgg_weights

    teacher = _teacher(tmp_path)
    # Distillation must not load the VGG19: point the weights at a file that is not there (a load would fail).
    monkeypatch.setenv(vgg_weights.ENV_VAR, str(tmp_path / "no-vgg19.npz"))
    with pytest.raises(WeightsError, match="not found"):
        vgg_weights.load_vgg_params()
    out = tmp_path / "s.msgpack"
    rc = train_cli.main(["--teacher", str(teacher), "--width", "16", "--data", str(data_dir / "train"),
                         "--workdir", str(tmp_path / "w"), "--steps", "2", "--batch-size", "2",
                         "--image-size", "32", "--out", str(out)])
    assert rc == 0
    params, meta = transform.read_transform(out)
    assert transform.architecture(params)["width"] == 16 and meta["style"] == "mock_style"
    assert train_cli.main(["--data", str(data_dir / "train"), "--workdir", str(tmp_path / "x")]) == 2
    assert train_cli.main(["--teacher", str(teacher), "--warmup-steps", "5", "--data", str(data_dir / "train"),
                           "--workdir", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_shipped_models_lists_full_styles_and_fast_variants_separately():
    full, fast = transform.shipped_models(), transform.shipped_models(fast=True)
    assert set(STYLES) <= set(full) and not any(name.endswith("_fast") for name in full)
    for name in STYLES:
        if name not in fast:
            pytest.fail(f"fast model {name} missing from jaxstyle/assets/ ({name}_fast.msgpack)")
        assert fast[name].name == f"{name}_fast.msgpack"
        assert fast[name].stat().st_size < 0.4 * full[name].stat().st_size
        params = transform.load_transform(name, fast=True)
        assert transform.architecture(params) == {"width": 16, "residual_blocks": 5}
        assert transform.read_transform(fast[name])[1]["teacher"] == name


def test_fast_load_errors():
    with pytest.raises(OptionError, match="no fast model for 'udnie'"):
        transform.load_transform("udnie", fast=True)
    with pytest.raises(OptionError, match="is a file"):
        transform.load_transform(transform.shipped_models()["wave"], fast=True)


@pytest.mark.slow  # 20 s
def test_stylize_fast_cli(tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.fromarray((np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)).save(photo)
    out = tmp_path / "out"
    out.mkdir()
    assert stylize.main([str(photo), "--style", "wave", "--fast", "--out", str(out)]) == 0
    fast = np.asarray(Image.open(out / "p_wave_fast.png"), np.float32) / 255.0
    assert stylize.main([str(photo), "--style", "wave", "--method", "transform", "--out", str(out)]) == 0
    full = np.asarray(Image.open(out / "p_wave.png"), np.float32) / 255.0
    original = np.asarray(Image.open(photo), np.float32) / 255.0
    assert fast.shape == full.shape == (30, 40, 3)
    assert np.abs(fast - full).mean() < 0.5 * np.abs(full - original).mean()  # close to the full model
    assert stylize.main([str(photo), "--sheet", "--fast", "--out", str(out)]) == 0
    assert {f"p_{name}_fast.png" for name in STYLES} <= {p.name for p in out.iterdir()}
    capsys.readouterr()
    for argv, message in (
        (["--style", "udnie", "--fast"], "no --fast model for 'udnie'"),
        (["--style", str(transform.shipped_models()["wave"]), "--fast"], "is a file"),
        (["--style", "wave", "--fast", "--method", "gatys"], "--fast works with --method transform"),
    ):
        assert stylize.main([str(photo), "--out", str(tmp_path / "x.png"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow  # 33 s
@pytest.mark.parametrize(("cin", "features", "kernel", "stride"),
                         [(3, 16, 9, 1), (16, 3, 9, 1), (16, 16, 9, 1), (8, 12, 3, 2), (16, 32, 3, 2)])
def test_channel_padding_of_9x9_convs_is_exact(cin: int, features: int, kernel: int, stride: int) -> None:
    """The half-width net's 9x9 convs run with 20 channels (a faster XLA:CPU path), 3 channels as 4; the
    net's conv (reflection padding, channels padded inside) equals the plain VALID conv of the
    reflection-padded input with the layer's own params."""
    assert layers.padded_channels(16, 9) == 20 and layers.padded_channels(3, 3) == 4
    assert layers.padded_channels(16, 3) == 16 and layers.padded_channels(32, 9) == 32
    conv = layers.ReflectConv(features, kernel, stride)
    x = jax.random.uniform(jax.random.key(4), (2, 36, 28, cin))
    w = conv.init(jax.random.key(3), x)["params"]["conv"]["kernel"]
    b = jax.random.normal(jax.random.key(5), (features,))
    padded = np.asarray(conv.apply({"params": {"conv": {"kernel": w, "bias": b}}}, x))
    plain = jax.lax.conv_general_dilated(layers.reflect_pad(x, kernel // 2), w, (stride, stride), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(padded, np.asarray(plain + b), rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # 34 s
def test_narrow_cuts_a_net_to_a_smaller_width_and_starts_the_student(tmp_path):
    params = transform.init_params(jax.random.key(5), width=8, residual_blocks=2)
    same = transform.narrow(params, 8)
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)
    half = transform.narrow(params, 4)
    expected = jax.eval_shape(lambda: transform.init_params(jax.random.key(0), 4, 2))
    assert jax.tree.map(np.shape, half) == jax.tree.map(lambda a: a.shape, expected)
    assert np.isfinite(np.asarray(transform.apply(half, np.full((1, 16, 16, 3), 0.5, np.float32)))).all()
    with pytest.raises(ValueError, match="narrow"):
        transform.narrow(params, 16)
    # With --teacher the student starts as the narrowed teacher (same blocks, not wider); else at random.
    path = transform.save_transform(tmp_path / "t.msgpack", params, {"style": "x"}, dtype=np.float32)
    state = train.init_state(train.TrainConfig(teacher=str(path), width=4, residual_blocks=2), jax.random.key(0))
    for a, b in zip(jax.tree.leaves(state["params"]), jax.tree.leaves(half), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    other = train.init_state(train.TrainConfig(teacher=str(path), width=4, residual_blocks=1), jax.random.key(0))
    assert transform.architecture(other["params"]) == {"width": 4, "residual_blocks": 1}
