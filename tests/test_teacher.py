"""Teacher warmup: the net first fits a teacher's stylisation (MicroAST with the painting, or a transform
net), then trains on the paper's perceptual loss; resume, metadata, bad combinations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import train
from jaxstyle.cli import train as train_cli
from jaxstyle.errors import OptionError
from jaxstyle.methods.transform import net as transform


def _config(**overrides) -> train.TrainConfig:
    base = dict(style="starry_night", steps=24, teacher="microast", teacher_steps=20, batch_size=2, image_size=32,
                style_size=64, width=8, residual_blocks=1, lr=1e-2)
    return train.TrainConfig(**{**base, **overrides})


def _batches(n: int = 2, size: int = 32, seed: int = 0) -> Iterator[np.ndarray]:
    """uint8[n,size,size,3] smooth random colour fields (photos are smooth, noise is not)."""
    rng = np.random.default_rng(seed)
    while True:
        coarse = rng.random((n, size // 8, size // 8, 3))
        yield (np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2) * 255).astype(np.uint8)


def _run(config: train.TrainConfig, workdir: Path, **kwargs) -> train.RunResult:
    kwargs.setdefault("progress", False)
    kwargs.setdefault("log", lambda _: None)
    return train.run(config, workdir, **kwargs)


def _rows(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _strings(tree) -> list[str]:
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in _strings(v)]
    if isinstance(tree, list):
        return [s for v in tree for s in _strings(v)]
    return [tree] if isinstance(tree, str) else []


@pytest.mark.slow
@pytest.mark.usefixtures("builtin_styles")
def test_microast_warmup_approaches_the_teacher_then_the_perceptual_loss_trains(tmp_path, vgg_params):
    config = _config()
    teacher = train.make_teacher(config, _painting(config))
    assert teacher is not None and teacher.description == "microast with starry_night.jpg"
    held = jnp.asarray(next(_batches(n=4, seed=1)), jnp.float32) / 255.0
    target = np.asarray(teacher(held))
    assert target.shape == held.shape and 0.0 <= target.min() and target.max() <= 1.0

    def distance(params) -> float:
        return float(np.mean(np.abs(np.asarray(transform.apply(params, held)) - target)))

    before = distance(train.init_state(config, jax.random.key(config.seed))["params"])
    common = dict(vgg_params=vgg_params, checkpoint_every=10, log_every=2, sample_every=100)
    # The teacher phase alone (steps = teacher_steps: no perceptual step, no Grams needed) ...
    warm = _run(train.TrainConfig(**{**config.__dict__, "steps": 20}), tmp_path / "w", batches=_batches(), **common)
    assert distance(warm.params) < 0.75 * before, (before, distance(warm.params))
    # ... then the same workdir resumed to all 24 steps: the paper's loss takes over after step 20.
    gen = _batches()
    for _ in range(20):
        next(gen)
    full = _run(config, tmp_path / "w", batches=gen, out=tmp_path / "m.msgpack", **common)
    assert full.resumed_from == 20 and full.steps == 24
    rows = _rows(tmp_path / "w")
    teacher_rows = [r for r in rows if r["step"] <= 20]
    perceptual_rows = [r for r in rows if r["step"] > 20]
    assert teacher_rows and all({"pixel", "psnr", "features"} <= set(r) and "style" not in r for r in teacher_rows)
    assert perceptual_rows and all({"content", "style", "tv"} <= set(r) and "psnr" not in r for r in perceptual_rows)

    _, meta = transform.read_transform(tmp_path / "m.msgpack")
    assert meta["teacher"] == "microast with starry_night.jpg" and meta["teacher_loss"] == "l1+vgg"
    assert meta["teacher_steps"] == 20 and meta["perceptual_steps"] == 4 and meta["warmup_steps"] == 0
    assert meta["phases"] == [{"phase": "teacher", "steps": 20}, {"phase": "perceptual", "steps": 4}]
    assert meta["steps"] == 24 and meta["teacher_sha256"] is None and meta["student_init"] is None
    assert meta["data"] == "batches given in code"
    assert not [s for s in _strings(meta) if s.startswith("/") or str(tmp_path) in s]


def _painting(config: train.TrainConfig) -> np.ndarray:
    from jaxstyle.io import images
    from jaxstyle.io.styles import load_style

    return images.fit_long_side(load_style(config.style), config.style_size)


def _teacher_file(tmp_path: Path) -> Path:
    params = transform.init_params(jax.random.key(7), width=8, residual_blocks=1)
    return transform.save_transform(tmp_path / "teacher.msgpack", params, {"style": "mock_style"})


class _Interrupt:
    """A progress callback that interrupts the run (as Ctrl-C does) once step ``at`` is done."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, step: int, _metrics) -> None:
        if step == self.at:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_interrupted_teacher_warmup_resumes_to_the_uninterrupted_result(tmp_path, vgg_params):
    """Killed in the teacher phase and again at its last step, resumed each time, the run ends with the
    params of the uninterrupted one, bit for bit (the optimiser restarts at the phase change either way)."""
    teacher = _teacher_file(tmp_path)
    config = _config(teacher=str(teacher), steps=6, teacher_steps=3, lr=1e-3)
    style = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    common = dict(vgg_params=vgg_params, style_image=style, checkpoint_every=100, out=None)
    full = _run(config, tmp_path / "full", batches=_batches(), **common)

    done = 0
    for stop in (2, 3):
        gen = _batches()
        for _ in range(done):
            next(gen)
        messages: list[str] = []
        with pytest.raises(KeyboardInterrupt):
            _run(config, tmp_path / "split", batches=gen, progress=_Interrupt(stop), log=messages.append, **common)
        assert any(f"saved a checkpoint at step {stop}" in m for m in messages), messages
        done = stop
    gen = _batches()
    for _ in range(done):
        next(gen)
    resumed = _run(config, tmp_path / "split", batches=gen, **common)
    assert resumed.resumed_from == 3 and resumed.steps == 6
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rows = _rows(tmp_path / "split")
    assert [r["step"] for r in rows if "psnr" in r][-1] == 3 and "style" in rows[-1]


def test_bad_teacher_combinations_are_one_line_errors(tmp_path, capsys, data_dir):
    for overrides, message in (
        (dict(teacher="", teacher_steps=5), "teacher_steps needs a teacher"),
        (dict(teacher="", teacher_steps=0, teacher_loss="l1"), "teacher_loss needs a teacher"),
        (dict(teacher_steps=-1), "teacher_steps must be >= 0"),
        (dict(teacher_loss="ssim"), "teacher_loss must be one of"),
        (dict(warmup_steps=5), "warmup_steps (toward the identity) does not apply with teacher"),
    ):
        with pytest.raises(OptionError) as err:
            _config(**overrides).validate()
        assert message in str(err.value)
    with pytest.raises(OptionError, match="needs the style painting"):
        train.make_teacher(_config())
    train_dir = str(data_dir / "train")
    for argv, message in (
        (["--teacher", "microast"], "--style is required"),
        (["--style", "wave", "--teacher-steps", "5"], "--teacher-steps needs a --teacher"),
        (["--style", "wave", "--teacher", "microast", "--warmup-steps", "5", "--teacher-steps", "5"],
         "does not apply with --teacher"),
        (["--style", "wave", "--teacher", "nope.msgpack", "--teacher-steps", "5"], "nope.msgpack"),
    ):
        assert train_cli.main([*argv, "--data", train_dir, "--workdir", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x").exists()


def test_teacher_options_resolve_phases_and_losses():
    """teacher_steps 0 is distillation (every step, MSE, today's --fast); a warmup then the perceptual loss."""
    distil = _config(teacher="scream", teacher_steps=0, steps=10)
    assert train.phase_plan(distil) == (("teacher", 10),) and distil.resolved_teacher_loss() == "mse"
    warm = _config(steps=10, teacher_steps=4)
    assert train.phase_plan(warm) == (("teacher", 4), ("perceptual", 6)) and warm.resolved_teacher_loss() == "l1+vgg"
    covering = _config(steps=10, teacher_steps=50, teacher_loss="mse")
    assert train.phase_plan(covering) == (("teacher", 10),) and covering.perceptual_steps() == 0
    assert [p.steps for p in train.mode(warm).phases] == [4, None]
    assert train.phase_plan(train.TrainConfig(steps=10, warmup_steps=3)) == (("identity warmup", 3),
                                                                            ("perceptual", 7))
    assert train.describe_data("/some/where/train2014") == "photo folder train2014"
    assert train.describe_data("tfds:coco/2014") == "tfds:coco/2014"


_SHARDED = """
import sys
import jax
import numpy as np
from jaxstyle import train

def run(workdir, devices):
    train.data_mesh = lambda: jax.sharding.Mesh(np.asarray(jax.devices()[:devices]), ("data",))
    config = train.TrainConfig(style="synthetic", teacher="microast", teacher_steps=2, steps=3, batch_size=2,
                               image_size=32, style_size=32, width=8, residual_blocks=1)
    style = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    rng = np.random.default_rng(0)
    batches = ((rng.random((2, 32, 32, 3)) * 255).astype(np.uint8) for _ in iter(int, 1))
    result = train.run(config, workdir, batches=batches, style_image=style, checkpoint_every=3, progress=False,
                       log=lambda _: None)
    return [np.asarray(x) for x in jax.tree.leaves(result.params)]

assert jax.device_count() == 2
one, two = run(sys.argv[1] + "/one", 1), run(sys.argv[1] + "/two", 2)
print(max(float(np.max(np.abs(a - b))) for a, b in zip(one, two, strict=True)))
"""


@pytest.mark.slow
def test_teacher_phase_sharded_over_two_devices_equals_one(tmp_path):
    """The teacher runs inside the sharded step: two devices (each half the batch) give one device's params."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = subprocess.run([sys.executable, "-c", _SHARDED, str(tmp_path)], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert float(proc.stdout.strip().splitlines()[-1]) < 1e-4


@pytest.mark.slow
def test_train_cli_microast_warmup_exports_a_model_that_names_teacher_phases_and_data(tmp_path, data_dir):
    out = tmp_path / "m.msgpack"
    rc = train_cli.main(["--style", "starry_night", "--teacher", "microast", "--teacher-steps", "2", "--steps", "3",
                         "--data", str(data_dir / "train"), "--workdir", str(tmp_path / "w"), "--batch-size", "2",
                         "--image-size", "32", "--style-size", "64", "--width", "8", "--out", str(out)])
    assert rc == 0
    _, meta = transform.read_transform(out)
    assert meta["teacher"] == "microast with starry_night.jpg" and meta["style"] == "starry_night"
    assert meta["phases"] == [{"phase": "teacher", "steps": 2}, {"phase": "perceptual", "steps": 1}]
    assert meta["data"] == "photo folder train" and meta["data_files"] == 500
    assert not [s for s in _strings(meta) if s.startswith("/") or str(data_dir) in s]
    assert "--teacher-steps" in train_cli.build_parser().format_help()
