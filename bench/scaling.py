"""Benchmark: how one Gatys iteration and one transform-net inference scale with the image size.

    .venv/bin/python -m bench.scaling [--sides 256,512,1024,1448,2048] [--gatys-max 2048]
                                      [--out bench/results/scaling.json] [--plot docs/figures/scaling.png]
    .venv/bin/python -m bench.scaling --quick   # a smoke run: 32 and 64 px, 1 repeat; JSON and plot in a temp folder

For each square size it times, in one process, after a warm-up (compile) call:

* one Gatys step (VGG19 forward + backward to conv5_1, sign update; the same jitted step as
  ``bin/stylize --method gatys``, tiled where ``bin/stylize`` would tile), median of ``--repeats``;
* one transform-net forward pass (the shipped scream model, batch 1), median of ``--repeats``.

It prints a table (seconds, and seconds per megapixel relative to the smallest size: 1.0 means
linear in pixels) and draws both curves on log-log axes with PIL.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import REPO, machine_info, out_path, timed

DEFAULT_OUT = REPO / "bench" / "results" / "scaling.json"
DEFAULT_PLOT = REPO / "docs" / "figures" / "scaling.png"


def median_seconds(fn, repeats: int) -> tuple[float, float]:
    """(first call incl. compile, median of ``repeats`` further calls) in seconds; ``fn`` blocks."""
    first, *times = timed(fn, 1 + repeats)
    return first, statistics.median(times)


def gatys_step_timer(side: int, vgg_params: Any):
    """A closure running one Gatys step on a side×side image (the CLI's code path, incl. auto tiling)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxstyle.methods.gatys import loop, optimizers, presets

    rng = np.random.default_rng(0)
    content = rng.random((side, side, 3), dtype=np.float32)
    style = rng.random((256, 256, 3), dtype=np.float32)
    opts = presets.GatysOptions(size=None, iterations=1)
    spec = opts.loss_spec()
    targets = loop.make_targets(vgg_params, spec, (side, side), content, [style])
    from jaxstyle.methods.gatys import loop, presets, tiling

    grid = tiling.tile_grid((side, side), spec.tile)  # what optimise() picks: tiled above the auto threshold
    step, optimizer = optimizers.make_step(spec, opts.optimizer, opts.lr, 1000, grid)
    state = {"image": jnp.asarray(content)[None]}
    state["opt"] = jax.tree.map(jnp.copy, optimizer.init(state["image"]))

    def once() -> None:
        state["image"], state["opt"], aux = step(state["image"], state["opt"], targets, vgg_params)
        jax.block_until_ready(aux)

    return once


def inference_timer(side: int, params: Any):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxstyle.methods.transform import net as transform

    image = jnp.asarray(np.random.default_rng(0).random((1, side, side, 3), dtype=np.float32))

    def once() -> None:
        jax.block_until_ready(transform.apply(params, image))

    return once


def loglog_plot(series: dict[str, list[tuple[float, float]]], path: Path, title: str) -> None:
    """Draw ``{label: [(megapixels, seconds)]}`` on log-log axes (PNG, PIL), with a slope-1 guide."""
    from PIL import Image, ImageDraw

    width, height, margin = 720, 440, 60
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    pts = [p for s in series.values() for p in s]
    xs = [math.log10(x) for x, _ in pts]
    ys = [math.log10(y) for _, y in pts]
    x_lo, x_hi = min(xs) - 0.1, max(xs) + 0.1
    y_lo, y_hi = min(ys) - 0.3, max(ys) + 0.3

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (margin + (math.log10(x) - x_lo) / (x_hi - x_lo) * (width - margin - 20),
                height - margin - (math.log10(y) - y_lo) / (y_hi - y_lo) * (height - margin - 30))

    draw.rectangle([margin, 30, width - 20, height - margin], outline="black")
    for decade in range(math.floor(y_lo), math.ceil(y_hi) + 1):
        if y_lo <= decade <= y_hi:
            _, py = to_px(10 ** x_lo, 10.0**decade)
            draw.line([(margin - 4, py), (margin, py)], fill="black")
            draw.text((4, py - 6), f"{10.0**decade:g} s", fill="black")
    colours = ["#c0392b", "#2874a6", "#1e8449", "#7d3c98"]
    for i, (label, points) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        xy = [to_px(x, y) for x, y in points]
        draw.line(xy, fill=colour, width=2)
        for px, py in xy:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        # The linear-in-pixels guide through the smallest size.
        x0, y0 = points[0]
        guide = [to_px(x, y0 * x / x0) for x, _ in points]
        draw.line(guide, fill="#aaaaaa", width=1)
        draw.text((margin + 10, 36 + 14 * i), label, fill=colour)
        for (x, _), (px, _) in zip(points, xy, strict=True):
            draw.text((px - 14, height - margin + 6), f"{x:.2g}", fill="black")
    draw.text((margin + 10, 36 + 14 * len(series)), "grey: linear in pixels", fill="#888888")
    draw.text((width // 2 - 60, height - 22), "megapixels (log)", fill="black")
    draw.text((margin, 8), title, fill="black")
    tmp = path.with_name(f".{path.name}.tmp.png")
    img.save(tmp)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: sides 32,64, 1 repeat; the JSON and the plot in a temporary folder")
    parser.add_argument("--sides", default=None, help="square sizes in px, comma-separated (default "
                        "256,512,1024,1448,2048)")
    parser.add_argument("--gatys-max", type=int, default=2048, help="largest side to time Gatys at")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per size (default 3)")
    parser.add_argument("--out", type=Path, default=None, help=f"the JSON (default {DEFAULT_OUT})")
    parser.add_argument("--plot", type=Path, default=None, help=f"the plot (default {DEFAULT_PLOT}; --quick: next "
                        "to the JSON)")
    args = parser.parse_args()
    args.sides = args.sides or ("32,64" if args.quick else "256,512,1024,1448,2048")
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.out = out_path(args.out, DEFAULT_OUT, args.quick)
    args.plot = args.plot or (args.out.with_suffix(".png") if args.quick else DEFAULT_PLOT)
    import jax

    from jaxstyle.methods.transform import net as transform
    from jaxstyle.vgg_weights import load_vgg_params

    sides = [int(s) for s in args.sides.split(",")]
    vgg_params = jax.device_put(load_vgg_params())
    net = jax.device_put(transform.load_transform("scream"))
    rows = []
    for side in sides:
        row: dict[str, Any] = {"side": side, "megapixels": side * side / 1e6}
        first, steady = median_seconds(inference_timer(side, net), args.repeats)
        row["inference_s"], row["inference_first_s"] = steady, first
        if side <= args.gatys_max:
            from jaxstyle.methods.gatys import tiling

            first, steady = median_seconds(gatys_step_timer(side, vgg_params), args.repeats)
            row["gatys_step_s"], row["gatys_first_s"] = steady, first
            row["gatys_tiled"] = tiling.tile_grid((side, side), None) is not None
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    base = rows[0]
    print(f"{'side':>6} {'MP':>6} {'inference s':>12} {'per-MP ×':>9} {'gatys step s':>13} {'per-MP ×':>9}")
    for r in rows:
        scale = base["megapixels"] / r["megapixels"]
        r["inference_per_mp_vs_smallest"] = r["inference_s"] * scale / base["inference_s"]
        line = (f"{r['side']:>6} {r['megapixels']:>6.2f} {r['inference_s']:>12.4f} "
                f"{r['inference_per_mp_vs_smallest']:>9.2f}")
        if "gatys_step_s" in r:
            r["gatys_per_mp_vs_smallest"] = r["gatys_step_s"] * scale / base["gatys_step_s"]
            line += f" {r['gatys_step_s']:>13.3f} {r['gatys_per_mp_vs_smallest']:>9.2f}"
        print(line)
    payload = {"rows": rows, "machine": machine_info(),
               "date": time.strftime("%Y-%m-%d %H:%M")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, args.out)
    series = {"transform-net inference": [(r["megapixels"], r["inference_s"]) for r in rows],
              "Gatys step (fwd+bwd)": [(r["megapixels"], r["gatys_step_s"]) for r in rows if "gatys_step_s" in r]}
    loglog_plot(series, args.plot, f"seconds vs image size ({jax.devices()[0].device_kind}, {os.cpu_count()} cores)")
    print(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
