"""GPU (or any device) timings: Gatys at 400x300, transform-net inference, MicroAST (the default
arbitrary model) at 512 px and 4K, a 1200x900 multi-scale Gatys result, as one JSON.

Usage: python -m bench.gpu_bench --out DIR [--gatys-iterations 400] [--quick]
Prints a table and writes DIR/gpu_bench.json (with --quick, tiny sizes for a CPU dry run, DIR defaults to a
temporary folder). Compile time is reported apart from steady state.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from bench._common import RESULTS, out_path


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first-call seconds incl. compile, steady-state seconds per call)."""
    t = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    jax.block_until_ready(out)
    return first, (time.perf_counter() - t) / repeats


def gatys_times(result, started: float) -> dict[str, float]:
    """Wall (since ``started``, a perf_counter), optimisation, compile and steady-state seconds of a Gatys run."""
    return {"wall_s": time.perf_counter() - started, "optimise_s": result.seconds,
            "compile_s": result.compile_seconds, "steady_s": result.seconds - result.compile_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_bench.json (required unless --quick)")
    parser.add_argument("--data", type=Path, default=None, help="folder with content/ and styles/ (else random)")
    parser.add_argument("--gatys-iterations", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a CPU dry run")
    args = parser.parse_args()
    if args.out is None and not args.quick:
        parser.error("--out DIR is required (unless --quick)")
    args.out = out_path(args.out, RESULTS / "gpu_bench", args.quick)
    from jaxstyle.io import images
    from jaxstyle.methods.gatys import api
    from jaxstyle.methods.transform import net as transform
    from jaxstyle.vgg_weights import load_vgg_params

    h, w = (30, 40) if args.quick else (300, 400)
    rows: dict[str, dict] = {"device": {"kind": jax.devices()[0].device_kind, "count": jax.device_count(),
                                        "jax": jax.__version__}}
    rng = np.random.default_rng(0)
    if args.data and (args.data / "content" / "tubingen.jpg").exists():
        content = images.resize(images.load_image(args.data / "content" / "tubingen.jpg"), h, w)
        style = images.load_image(args.data / "styles" / "starry_night.jpg")
    else:
        content, style = rng.random((h, w, 3), np.float32), rng.random((h, w, 3), np.float32)

    # Transform-net inference, fp32 and bf16, batch 1 and 16.
    params = transform.init_params(jax.random.key(0))
    for dtype in ("float32", "bfloat16"):
        for batch in (1, 16):
            x = jnp.asarray(np.broadcast_to(content, (batch, h, w, 3)).copy())
            first, per_call = timed(lambda x=x, dt=dtype: transform.apply(params, x, jnp.dtype(dt)), 3 if args.quick
                                    else 20)
            rows[f"transform_{dtype}_batch{batch}"] = {"compile_s": first, "ms_per_image": per_call / batch * 1e3}

    # Gatys at 400x300 (steady state and compile apart).
    vgg_params = load_vgg_params()
    iters = 5 if args.quick else args.gatys_iterations
    for optimizer in ("sign", "adam"):
        t = time.perf_counter()
        result = api.gatys(content, style, vgg_params=vgg_params, size=max(h, w), iterations=iters,
                                optimizer=optimizer)
        rows[f"gatys_{optimizer}_{iters}it"] = {**gatys_times(result, t), "final_total": result.history[-1]["total"]}

    # The Gatys defaults' GPU target (under 2 s): 400x300 at the defaults (L-BFGS coarse to fine, its budget and stop).
    t = time.perf_counter()
    result = api.gatys(content, style, vgg_params=vgg_params, size=max(h, w),
                            **({"iterations": 5} if args.quick else {}))
    rows["gatys_defaults_400"] = {**gatys_times(result, t), "steps": float(len(result.history) - 1)}

    # A 1200x900 result, coarse to fine (300, 600, 1200 px; the default optimizer, L-BFGS).
    big = (9, 12) if args.quick else (900, 1200)
    big_content = images.resize(content, *big) if not args.quick else rng.random((*big, 3), np.float32)
    plan = (2, 1) if args.quick else (args.gatys_iterations, args.gatys_iterations // 2, args.gatys_iterations // 4)
    t = time.perf_counter()
    result = api.gatys(big_content, style, vgg_params=vgg_params, size=max(big) * (4 if args.quick else 1),
                            scale_iterations=plan)
    rows["gatys_multiscale_1200x900"] = {"wall_s": time.perf_counter() - t, "compile_s": result.compile_seconds,
                                          "iterations": float(sum(plan)), "final_total": result.history[-1]["total"]}
    # The 1200x900 reference (docs/performance.md): one scale (auto: the sign update), as many iterations as at 400x300.
    t = time.perf_counter()
    single = api.gatys(big_content, style, vgg_params=vgg_params, size=max(big) * (4 if args.quick else 1),
                            scales=1, iterations=iters)
    rows["gatys_singlescale_1200x900"] = {"wall_s": time.perf_counter() - t, "compile_s": single.compile_seconds,
                                           "iterations": float(iters), "final_total": single.history[-1]["total"]}
    rows["multiscale_vs_single_1200x900"] = {
        "wall_ratio": rows["gatys_multiscale_1200x900"]["wall_s"] / rows["gatys_singlescale_1200x900"]["wall_s"],
        "loss_ratio": result.history[-1]["total"] / single.history[-1]["total"]}

    # MicroAST (arbitrary style, one pass): 512 px long side and 3840x2160 (tiled above 2.1 MP).
    from jaxstyle.methods.arbitrary import microast

    m_params = jax.device_put(microast.load_params())
    code = microast.style_code(m_params, images.fit_long_side(style, 64 if args.quick else 512))
    for label, (mh, mw) in {"512": (384, 512), "4k": (2160, 3840)}.items():
        shape = (mh // 8, mw // 8) if args.quick else (mh, mw)
        photo = images.resize(content, *shape)
        first, per_call = timed(lambda photo=photo: microast.stylize_batch(m_params, photo[None], code), 2)
        rows[f"microast_{label}"] = {"compile_s": first, "s_per_image": per_call}

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_bench.json").write_text(json.dumps(rows, indent=1))
    print(f"device: {rows['device']}")
    print("| measurement | value |\n|---|---|")
    for name, row in rows.items():
        if name != "device":
            print(f"| {name} | " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()) + " |")


if __name__ == "__main__":
    main()
