"""What a user waits for and gets: ``jaxstyle.gatys`` at its defaults against pastiche 1.6.0 (L-BFGS).

    .venv/bin/python -m bench.gatys_defaults_vs_pastiche                 # 400 px, pastiche 300 steps
    #  --content PATH --style PATH (default tubingen x starry_night)  --size 400
    #  --pastiche-iterations 300   --ours '{"preset": "paper", "iterations": 500}' (options over the defaults)
    #  --out bench/results/gatys_defaults_vs_pastiche/   --threads N (torch threads; default: usable cores)
    .venv/bin/python -m bench.gatys_defaults_vs_pastiche --quick   # ours only, 48 px, 2 iterations: a smoke run

Side by side in one run, each side in its own subprocess (peak RSS per side): pastiche through
``bench/_pastiche_runner.py`` (its own loss weights, content init, ``pooling="avg"``, one L-BFGS
closure per step; the venv ``.bench-venv-pastiche`` is built by :mod:`gatys_vs_pastiche` if missing),
given our resized content and style as PNGs; ours ``api.gatys(content, style, size=..., **ours)``,
its own budget and convergence stop. Wall time: the optimisation (ours with its jit compile; model
and target loading excluded for both). Every image is measured the same way, from its saved PNG:

* ``style``: the paper's Gram style loss (equal layer weights, avg pooling; our VGG19) against the
  style at the content's pixel count; ``content``: L_content at conv4_2 (the paper preset's loss);
* ``layout``, ``hf`` (``hf_ratio``, relative to the photo's), ``clipped``: from ``bench/_quality.py``.

Writes ``results.json`` and the two images (``ours.png``, ``pastiche.png``) and the photo.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import _quality as quality
from bench import gatys_vs_pastiche as gvp
from bench._common import RESULTS, log, out_path

REPO = Path(__file__).resolve().parent.parent


def ours_worker(content: str, style: str, size: int, options: dict, out: Path) -> None:
    from jaxstyle import vgg_weights
    from jaxstyle.io import images
    from jaxstyle.methods.gatys import api

    params = vgg_weights.on_device()
    photo, painting = images.load_image(content), images.load_image(style)
    result = api.gatys(photo, painting, vgg_params=params, size=size, **options)
    images.save_image(out / "ours.png", result.image)
    (out / "ours.json").write_text(json.dumps({
        "seconds": result.seconds, "compile_seconds": result.compile_seconds, "steps": len(result.history) - 1,
        "stop": result.stop, "stops": result.stops, "scales": result.scales, "optimizer": result.optimizer,
        "options": options, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


def measure(photo_path: Path, style_path: Path, image_path: Path) -> dict:
    import jax.numpy as jnp

    from jaxstyle import vgg_weights
    from jaxstyle.io import images
    from jaxstyle.methods.gatys import loop, presets

    params = vgg_weights.on_device()
    photo = images.load_image(photo_path)
    style = images.load_image(style_path)
    img = images.load_image(image_path)
    spec = presets.make_options("paper").loss_spec()
    h, w = photo.shape[:2]
    targets = loop.make_targets(params, spec, (h, w), photo, [images.fit_pixels(style, h * w)])
    terms = loop.evaluate_loss(jnp.asarray(img)[None], targets, params, spec)
    return {"content": float(terms["content"]), "style": float(terms["style"]),
            "layout": quality.layout_kept(img, photo), "hf": quality.hf_ratio(img, photo),
            "clipped": quality.clipped_share(img)}


QUICK_SIZE = 48
QUICK_OURS = '{"iterations": 2}'


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"a smoke run without pastiche: ours at {QUICK_SIZE} px "
                    f"with {QUICK_OURS}, in a temporary folder")
    ap.add_argument("--content", default=str(gvp.CONTENT))
    ap.add_argument("--style", default=str(gvp.STYLE))
    ap.add_argument("--size", type=int, default=None, help=f"long side (default 400; --quick {QUICK_SIZE})")
    ap.add_argument("--pastiche-iterations", type=int, default=300)
    ap.add_argument("--ours", default=None, help=f"JSON options over the defaults (default {{}}; --quick {QUICK_OURS})")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", type=Path, default=None, help="folder (default bench/results/gatys_defaults_vs_pastiche)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.size = args.size or (QUICK_SIZE if args.quick else 400)
    args.ours = args.ours if args.ours is not None else QUICK_OURS if args.quick else "{}"
    args.out = out_path(args.out, RESULTS / "gatys_defaults_vs_pastiche", args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        ours_worker(args.content, args.style, args.size, json.loads(args.ours), args.out)
        return 0
    from jaxstyle.io import images

    python = None if args.quick else gvp.ensure_pastiche_venv(gvp.PASTICHE_VENV)
    gvp.CONTENT, gvp.STYLE = Path(args.content), Path(args.style)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = gvp.prepare_inputs(args.size, Path(tmp))
        photo_path = args.out / "photo.png"
        images.save_image(photo_path, images.load_image(inputs[0]))
        style_path = args.out / "style.png"
        images.save_image(style_path, images.load_image(inputs[1]))
        n = args.pastiche_iterations
        mode = gvp.Mode(size=args.size, iterations=n, checkpoints=(n,))
        load = {"before_pastiche": os.getloadavg()}
        past = None
        if python is not None:
            log(f"pastiche: {n} L-BFGS steps at long side {args.size}")
            past = gvp.run_pastiche(python, gvp.PasticheConfig("lbfgs", "default"), inputs, mode, args.out,
                                    args.threads, args.out / "pastiche.json")
    load["before_ours"] = os.getloadavg()
    log(f"ours: defaults + {args.ours}")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.gatys_defaults_vs_pastiche", "--worker",
                    "--content", args.content, "--style", args.style,
                    "--size", str(args.size), "--ours", args.ours, "--out", str(args.out)], check=True, cwd=REPO)
    load["after_ours"] = os.getloadavg()
    ours = json.loads((args.out / "ours.json").read_text())
    ours["process_seconds"] = time.perf_counter() - start
    m_ours = measure(photo_path, args.style, args.out / "ours.png")
    if past is None:  # --quick: ours only
        summary = {"ours_seconds": ours["seconds"], "style_ours": m_ours["style"], "layout_ours": m_ours["layout"],
                   "hf_ours": m_ours["hf"], "pastiche": "not run (--quick)"}
        (args.out / "results.json").write_text(json.dumps({"summary": summary, "ours": {**ours, **m_ours},
                                                           "loadavg": load, "content": args.content,
                                                           "style": args.style, "size": args.size}, indent=1))
        print(json.dumps(summary, indent=1))
        print(f"JSON: {args.out / 'results.json'}")
        return 0
    past_png = Path(past["images"][str(n)])
    m_past = measure(photo_path, args.style, past_png)
    past_seconds = past["times"][-1]
    summary = {
        "wall_ratio": ours["seconds"] / past_seconds,
        "style_ratio": m_ours["style"] / m_past["style"],
        "layout_ours": m_ours["layout"], "layout_pastiche": m_past["layout"],
        "hf_ours": m_ours["hf"], "hf_pastiche": m_past["hf"],
        "ours_seconds": ours["seconds"], "pastiche_seconds": past_seconds,
    }
    report = {"summary": summary, "ours": {**ours, **m_ours},
              "pastiche": {"seconds": past_seconds, "load_seconds": past["load_seconds"], "iterations": n,
                           "image": str(past_png), "threads": past["torch_threads"], **m_past},
              "loadavg": load, "content": args.content, "style": args.style, "size": args.size,
              "cpu": os.cpu_count()}
    (args.out / "results.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
