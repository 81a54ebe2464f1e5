"""Benchmark: a 1200×900 Gatys result, coarse to fine, against one single-scale 400-iteration run.

    .venv/bin/python -m bench.highres [--only multiscale,single] [--size 1200] [--out bench/results/highres.json]
    .venv/bin/python -m bench.highres --quick   # a smoke run: 48 px, 1-3 iterations, JSON in a temporary folder

Both stylise tubingen with starry_night (long side ``--size``; 1200 gives 1200×900),
α=1, β=1e3, average pooling, seed 0. Each run is its own subprocess, so the peak RSS
(``ru_maxrss``) is per run:

* ``single``: one scale at full size for 400 iterations, the sign update (the reference; about 75 min
  on 2 cores).
* ``single_adam``: one scale, Adam, 50 iterations (about the same time as ``multiscale``).
* ``multiscale``: :data:`MULTISCALE` (coarse to fine, Adam, the same code path as ``bin/stylize
  --scale-iterations``), sized to about 10 minutes here; ``--scale-iterations`` / ``--optimizer`` change it.

Both final images are measured with the same loss at full size (content and style targets at
1200×900), so "equal or lower loss" compares like with like. ``--only`` runs some parts and keeps
the others' numbers already in the JSON. The single run also records its loss every 25 iterations,
so the iteration at which it first reaches the multi-scale loss can be read off.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import REPO, machine_info, out_path
from bench.gatys_vs_pastiche import CONTENT, STYLE  # the same pair
from jaxstyle import atomic

DEFAULT_OUT = REPO / "bench" / "results" / "highres.json"
SINGLE = {"scales": 1, "iterations": 400}
# Two scales (600, 1200 px long side), Adam: sized to about 10 minutes on the 2-core CPU.
MULTISCALE = {"scales": 2, "scale_iterations": [50, 38], "optimizer": "adam"}
# One scale with Adam, the same ~10 minutes: measured to end lower than MULTISCALE at 1200x900.
SINGLE_ADAM = {"scales": 1, "iterations": 50, "optimizer": "adam"}
RUNS = {"single": SINGLE, "multiscale": MULTISCALE, "single_adam": SINGLE_ADAM}
#: --quick: every run, tiny (the same code paths, no meaningful numbers).
QUICK_SIZE = 48
QUICK_RUNS = {"single": {"scales": 1, "iterations": 3}, "multiscale": {"scales": 2, "scale_iterations": [2, 1],
              "optimizer": "adam"}, "single_adam": {"scales": 1, "iterations": 2, "optimizer": "adam"}}
LOG_EVERY = 25


def worker(name: str, size: int, result_path: Path, options: dict[str, Any]) -> None:
    """Run one configuration in this process and write its numbers (and image) next to ``result_path``."""
    import numpy as np

    from jaxstyle.io import images
    from jaxstyle.methods.gatys import api
    from jaxstyle.vgg_weights import load_vgg_params

    content = images.load_image(CONTENT)
    style = images.load_image(STYLE)
    params = load_vgg_params()
    losses: dict[int, float] = {}

    def on_step(step: int, _image: Any, terms: dict[str, float]) -> None:
        if step % LOG_EVERY == 0:
            losses[step] = float(terms["total"])
            print(f"{name}: step {step} loss {losses[step]:.4g}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    result = api.gatys(content, style, vgg_params=params, size=size, callback=on_step, seed=0, **options)
    wall = time.perf_counter() - start
    final = result.history[-1]
    image_path = result_path.with_suffix(".jpg")
    images.save_image(image_path, np.asarray(result.image))
    report = {
        "run": name, "options": options, "scales": result.scales,
        "shape": list(result.image.shape[:2]), "wall_s": wall, "optimise_s": result.seconds,
        "compile_s": result.compile_seconds, "final": final, "loss_every_25": losses,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, "image": str(image_path),
    }
    result_path.write_text(json.dumps(report, indent=1))


def run(name: str, size: int, out_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    """One configuration in a fresh subprocess (so its peak RSS is its own)."""
    result_path = out_dir / f"highres_{name}.json"
    subprocess.run([sys.executable, "-m", "bench.highres", "--worker", name, "--size", str(size),
                    "--result", str(result_path), "--options", json.dumps(options)], check=True, cwd=REPO)
    return json.loads(result_path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="multiscale,single_adam,single",
                        help="comma-separated runs: multiscale, single_adam, single")
    parser.add_argument("--size", type=int, default=None, help="long side of the result (default 1200 → 1200×900; "
                        f"--quick: {QUICK_SIZE})")
    parser.add_argument("--out", type=Path, default=None, help=f"the JSON (default {DEFAULT_OUT}; --quick: a "
                        "temporary folder)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_SIZE} px, 1-3 iterations per run")
    parser.add_argument("--scale-iterations", help="the multi-scale run's plan, e.g. 50,38 (default "
                        f"{','.join(map(str, MULTISCALE['scale_iterations']))})")
    parser.add_argument("--optimizer", help=f"the multi-scale run's optimizer (default {MULTISCALE['optimizer']})")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size is None:
        args.size = QUICK_SIZE if args.quick else 1200
    if args.worker:
        worker(args.worker, args.size, args.result, json.loads(args.options))
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(RUNS)
    if unknown:
        parser.error(f"unknown run(s) {sorted(unknown)}; use {', '.join(RUNS)}")
    args.out = out_path(args.out, DEFAULT_OUT, args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    results = previous.get("runs", {}) if previous.get("size") == args.size else {}
    base = QUICK_RUNS if args.quick else RUNS
    runs = {**base, "multiscale": dict(base["multiscale"])}
    if args.scale_iterations:
        its = [int(i) for i in args.scale_iterations.split(",")]
        runs["multiscale"].update(scales=len(its), scale_iterations=its)
    if args.optimizer:
        runs["multiscale"]["optimizer"] = args.optimizer
    for name in names:
        results[name] = run(name, args.size, args.out.parent, runs[name])
    payload = {"size": args.size, "content": CONTENT.name, "style": STYLE.name, "runs": results,
               "machine": machine_info(),
               "date": time.strftime("%Y-%m-%d %H:%M")}
    print(f"{'run':<12} {'optimizer':<9} {'scales':<32} {'wall s':>8} {'peak RSS GB':>12} {'final loss':>11}")
    for name, r in results.items():
        scales = " + ".join(f"{its}@{max(h, w)}" for h, w, its in r["scales"])
        optimizer = r["options"].get("optimizer", "sign")
        print(f"{name:<12} {optimizer:<9} {scales:<32} {r['wall_s']:>8.0f} {r['peak_rss_gb']:>12.2f} "
              f"{r['final']['total']:>11.4g}")
    single = results.get("single")
    payload["against_single"] = {}
    for name, r in results.items():
        if single is None or name == "single":
            continue
        loss = r["final"]["total"]
        reached = [int(step) for step, v in single["loss_every_25"].items() if v <= loss]
        row = {"wall_ratio": r["wall_s"] / single["wall_s"], "loss_ratio": loss / single["final"]["total"],
               "single_reaches_this_loss_at": min(reached) if reached else None}
        payload["against_single"][name] = row
        print(f"{name} / single: wall {row['wall_ratio']:.3f}×, final loss {row['loss_ratio']:.3f}×; the single-scale "
              f"run reaches this loss at iteration {row['single_reaches_this_loss_at']}")
    atomic.write_atomic(args.out, json.dumps(payload, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
