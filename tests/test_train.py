"""Training: loss falls, warmup approaches the identity, resume, sharding, multi-process, export."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxstyle import train
from jaxstyle.cli import train as train_cli
from jaxstyle.errors import NonFiniteLossError
from jaxstyle.methods.transform import net as transform

REPO = Path(__file__).resolve().parents[1]


def small_config(**overrides) -> train.TrainConfig:
    base = dict(style="starry_night", steps=4, batch_size=2, image_size=32, style_size=64, width=8,
                residual_blocks=1)
    return train.TrainConfig(**{**base, **overrides})


def _run(config, workdir, **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("log", lambda _: None)
    return train.run(config, workdir, **kwargs)


@pytest.mark.slow  # 96 s
def test_loss_falls_on_real_photos(tmp_path, data_dir, vgg_params):
    config = small_config(data=str(data_dir / "train"), steps=40, batch_size=4, image_size=64, width=16)
    result = _run(config, tmp_path / "w", vgg_params=vgg_params, log_every=5, checkpoint_every=20,
                  sample_every=20, out=tmp_path / "m.msgpack")
    rows = [json.loads(line) for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[0]["loss"], np.mean([r["loss"] for r in rows[-3:]])
    assert last < 0.5 * first, (first, last)
    assert (tmp_path / "w" / "loss.png").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "w" / "samples").iterdir()) == ["step0000020.png", "step0000040.png"]
    params, meta = transform.read_transform(tmp_path / "m.msgpack")  # the exported file round-trips
    assert meta["steps"] == 40 and meta["style"] == "starry_night" and meta["warmup_steps"] == 0
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(result.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3)


def test_loss_sees_the_image_inference_returns(vgg_params):
    """The perceptual loss is that of the clipped output (what transform.apply returns), its gradient passed
    straight through the clip; range counts only the part outside [0,1], and layout is 0 for the photo itself
    and grows for its negative."""
    from jaxstyle import objective

    config = small_config(range_weight=2.0, layout_weight=3.0)
    batch = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3))
    out = batch * 1.6 - 0.3  # about a third of the values outside [0,1]
    grams = train.style_grams(train.vgg.to_device(vgg_params), np.asarray(batch[0]), config)
    frozen = {"vgg": train.vgg.to_device(vgg_params), "grams": grams}
    total, terms = train.output_loss(out, batch, frozen, config)
    shown = np.clip(np.asarray(out), 0.0, 1.0)
    target = train.vgg.features(frozen["vgg"], batch, (config.content_layer,), "avg")[config.content_layer]
    expected, _ = objective.loss_terms(shown, {"content": target, "grams": grams}, frozen["vgg"], config.loss_spec())
    outside = np.mean(np.sum(np.square(np.asarray(out) - shown), axis=(1, 2, 3)))
    assert float(terms["range"]) == pytest.approx(outside, rel=1e-5) and outside > 10
    layout = float(train.layout_error(shown, batch))
    assert float(terms["layout"]) == pytest.approx(layout, rel=1e-5)
    assert float(total) == pytest.approx(float(expected) + 2.0 * outside + 3.0 * layout, rel=1e-5)
    assert float(train.layout_error(batch, batch)) == 0.0
    # The clip passes the gradient straight through: clipped values still learn (a plain clip's is 0 there).
    grad = np.asarray(jax.grad(lambda o: train.output_loss(o, batch, frozen, small_config(range_weight=0.0))[0])(out))
    outside_mask = (np.asarray(out) < 0) | (np.asarray(out) > 1)
    assert np.abs(grad[outside_mask]).mean() > 0.1 * np.abs(grad[~outside_mask]).mean() > 0
    ramp = np.broadcast_to(np.linspace(0.0, 1.0, 32, dtype=np.float32)[None, None, :, None], (1, 32, 32, 3))
    # a ramp's negative: (1 - 2y)^2 averages 1/3 over the 8x8 cells, about 21 in all
    assert float(train.layout_error(1.0 - ramp, ramp)) == pytest.approx(64 / 3, rel=0.1)
    params = transform.init_params(jax.random.key(1), width=8, residual_blocks=1)
    shown_net = transform.apply(params, batch)  # inference clips the net's output the same way
    raw = transform.TransformNet(width=8, residual_blocks=1).apply(params, batch)
    np.testing.assert_array_equal(np.asarray(shown_net), np.clip(np.asarray(raw), 0.0, 1.0))


@pytest.mark.slow  # 50 s
def test_warmup_brings_output_close_to_input(tmp_path, data_dir, vgg_params):
    from jaxstyle import data

    config = small_config(data=str(data_dir / "train"), steps=40, warmup_steps=40, batch_size=4, image_size=32)
    before = train.init_state(config, jax.random.key(config.seed))["params"]
    result = _run(config, tmp_path / "w", vgg_params=vgg_params, checkpoint_every=40)
    batch = next(iter(data.make_pipeline(str(data_dir / "train"), batch_size=4, image_size=32, seed=9)))
    x = batch.astype(np.float32) / 255.0

    def psnr(params):
        mse = float(np.mean((np.asarray(transform.apply(params, x)) - x) ** 2))
        return 10 * np.log10(1.0 / mse)

    assert psnr(result.params) > psnr(before) + 3.0
    rows = [json.loads(line) for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
    assert all("pixel" in r for r in rows)  # warmup steps use the identity loss only


def _batches(n=2, size=32, seed=0):
    rng = np.random.default_rng(seed)
    while True:
        yield (rng.random((n, size, size, 3)) * 255).astype(np.uint8)


@pytest.mark.slow  # 41 s
def test_resume_restores_state_and_matches_uninterrupted_run(tmp_path, vgg_params):
    import orbax.checkpoint as ocp

    style = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    common = dict(vgg_params=vgg_params, style_image=style, checkpoint_every=2)
    full = _run(small_config(steps=4), tmp_path / "full", batches=_batches(), **common)

    half = _run(small_config(steps=2), tmp_path / "split", batches=_batches(), **common)
    assert half.steps == 2
    gen = _batches()
    for _ in range(2):  # the data stream resumes where it stopped (the pipeline does this via its state)
        next(gen)
    messages = []
    resumed = _run(small_config(steps=4), tmp_path / "split", batches=gen, log=messages.append, **common)
    assert resumed.resumed_from == 2 and resumed.steps == 4
    assert any("resuming from step 2" in m for m in messages)
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    # The optimizer state in the step-2 checkpoint equals the state the first run ended with.
    with ocp.CheckpointManager(tmp_path / "split" / "checkpoints", item_names=("state", "data")) as manager:
        assert manager.all_steps() == [2, 4]
        restored = manager.restore(2, args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                                              data=ocp.args.JsonRestore()))
    assert int(restored["state"]["step"]) == 2
    mu_saved = jax.tree.leaves(restored["state"]["opt_state"])
    assert any(np.abs(np.asarray(x)).sum() > 0 for x in mu_saved)


@pytest.mark.slow  # 28 s
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, vgg_params):
    style = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    common = dict(vgg_params=vgg_params, style_image=style, checkpoint_every=2)
    _run(small_config(steps=2), tmp_path / "w", batches=_batches(), **common)
    # Resumed with a VGG19 whose last style layer is NaN: every loss from step 3 on is NaN.
    poisoned = {name: dict(layer) for name, layer in vgg_params.items()}
    poisoned["conv5_1"]["w"] = np.full_like(np.asarray(poisoned["conv5_1"]["w"]), np.nan)
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        _run(small_config(steps=6), tmp_path / "w", batches=_batches(), **{**common, "vgg_params": poisoned})
    assert sorted(int(p.name) for p in (tmp_path / "w" / "checkpoints").iterdir() if p.name.isdigit()) == [2]


@pytest.mark.slow  # 16 s
def test_cli_bad_inputs_exit_2(tmp_path, capsys, data_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train_cli.main(["--style", "wave", "--data", str(empty), "--workdir", str(tmp_path / "w")]) == 2
    assert "no images" in capsys.readouterr().err
    assert train_cli.main(["--style", "nope", "--data", str(data_dir / "train"), "--workdir", str(tmp_path / "w")]) == 2
    assert "unknown style" in capsys.readouterr().err
    (tmp_path / "w2").mkdir()
    (tmp_path / "w2" / "config.json").write_text(json.dumps({**train.TrainConfig(style="scream").__dict__}))
    assert train_cli.main(["--style", "wave", "--data", str(data_dir / "train"), "--workdir",
                           str(tmp_path / "w2")]) == 2
    assert "different model" in capsys.readouterr().err


def _worker(args, env_extra, cwd=REPO):
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", **env_extra}
    return subprocess.Popen([sys.executable, "-m", "tests.helpers.train_worker", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, timeout=600):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]


def _load(path):
    data = np.load(path)
    return int(data["devices"]), [data[k] for k in sorted((k for k in data.files if k != "devices"), key=int)]


@pytest.mark.slow  # 99 s
def test_two_device_sharded_step_equals_one_device(tmp_path):
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    one = _worker([str(tmp_path / "one.npz"), str(tmp_path / "w1"), "4", "2", "--mesh-devices", "1"], flags)
    _finish(one)
    two = _worker([str(tmp_path / "two.npz"), str(tmp_path / "w2"), "4", "2"], flags)
    _finish(two)
    n1, p1 = _load(tmp_path / "one.npz")
    n2, p2 = _load(tmp_path / "two.npz")
    assert n1 == n2 == 2
    for a, b in zip(p1, p2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # 165 s
def test_two_processes_with_jax_distributed_equal_single_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [
        _worker([str(tmp_path / "multi.npz"), str(tmp_path / "wm"), "4", "2"],
                {"JAXSTYLE_COORDINATOR": f"127.0.0.1:{port}", "JAXSTYLE_NUM_PROCESSES": "2",
                 "JAXSTYLE_PROCESS_ID": str(i)})
        for i in range(2)
    ]
    for proc in procs:
        _finish(proc)
    single = _worker([str(tmp_path / "single.npz"), str(tmp_path / "ws"), "4", "2"], {})
    _finish(single)
    n_multi, p_multi = _load(tmp_path / "multi.npz")
    n_single, p_single = _load(tmp_path / "single.npz")
    assert n_multi == 2 and n_single == 1
    for a, b in zip(p_multi, p_single, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
