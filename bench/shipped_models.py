"""Acceptance check of the shipped transform nets: do they carry their style and keep the photo?

For each shipped model and each photo (not in the training set), at --size px:
  * style loss L_style(g, s) of the photo itself and of the stylised output, against the model's
    own style (the paper's definition, our VGG19); the ratio photo/output says how much closer to
    the style the output is;
  * layout kept: the correlation of the photo's and the output's luminance after both are shrunk
    8x (broad light/dark layout; 1 = same layout, 0 = unrelated).

    .venv/bin/python -m bench.shipped_models [--photos a.jpg,b.jpg] [--size 256] [--fast] [--out FILE.json]
    .venv/bin/python -m bench.shipped_models --quick   # a smoke run: one photo at 48 px, with --fast

With --fast, each style's half-width ``--fast`` model (width 16, distilled from the full one) gets a row
too, measured the same way, plus the PSNR of its output against the full model's (dB; higher = closer).

Prints a markdown table and writes JSON (default bench/results/shipped_models.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from bench import _quality as quality
from bench._common import REPO, out_path

DATA = Path(os.environ.get("JAXSTYLE_DATA", REPO.parent / "shared" / "data"))
DEFAULT_PHOTOS = ("golden_gate.jpg", "hoovertowernight.jpg", "stata.jpg", "chelsea (skimage)")
DEFAULT_OUT = REPO / "bench" / "results" / "shipped_models.json"
QUICK_SIZE = 48


def _photo(name: str, size: int) -> np.ndarray:
    from jaxstyle.io import images

    if name == "chelsea (skimage)":
        from skimage import data

        img = images.to_float_image(np.asarray(data.chelsea()))
    else:
        path = Path(name) if Path(name).is_file() else DATA / "content" / name
        img = images.to_float_image(images.load_image(path))
    return images.fit_long_side(img, size)


def _fast_summary(rows: list[dict], model: str) -> str:
    """One style's mean style ratio and layout correlation, fast vs full, and the mean PSNR of fast vs full."""
    def mean(variant: str, key: str) -> float:
        return float(np.mean([r[key] for r in rows if r["model"] == model and r["variant"] == variant]))

    return (f"{model}: style ratio {mean('fast', 'style_ratio'):.1f}× vs {mean('full', 'style_ratio'):.1f}×, "
            f"layout {mean('fast', 'layout_correlation'):.2f} vs {mean('full', 'layout_correlation'):.2f}, "
            f"PSNR {mean('fast', 'psnr_vs_full_db'):.1f} dB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: the first photo at {QUICK_SIZE} px, "
                        "with --fast; the JSON in a temporary folder")
    parser.add_argument("--photos", default=None,
                        help="comma list: names in $JAXSTYLE_DATA/content, files, or 'chelsea (skimage)' (default "
                        f"{','.join(DEFAULT_PHOTOS)})")
    parser.add_argument("--size", type=int, default=None, help="long side of the photos (default 256)")
    parser.add_argument("--fast", action="store_true", help="also measure the --fast models, and their PSNR "
                        "against the full models' outputs")
    parser.add_argument("--out", type=Path, default=None, help=f"the JSON (default {DEFAULT_OUT})")
    args = parser.parse_args()
    args.photos = args.photos or (DEFAULT_PHOTOS[0] if args.quick else ",".join(DEFAULT_PHOTOS))
    args.size = args.size or (QUICK_SIZE if args.quick else 256)
    args.fast = args.fast or args.quick
    args.out = out_path(args.out, DEFAULT_OUT, args.quick)

    import jax.numpy as jnp

    from jaxstyle import objective
    from jaxstyle.io import images
    from jaxstyle.io.styles import load_style
    from jaxstyle.methods.gatys import loop
    from jaxstyle.methods.transform import net as transform
    from jaxstyle.nn import vgg
    from jaxstyle.vgg_weights import load_vgg_params

    params_vgg = vgg.to_device(load_vgg_params())
    spec = objective.LossSpec()
    photos = {name: _photo(name, args.size) for name in args.photos.split(",") if name}
    fast_models = transform.shipped_models(fast=True) if args.fast else {}
    rows = []
    for model, path in transform.shipped_models().items():
        variants = {"full": transform.read_transform(path)}
        if model in fast_models:
            variants["fast"] = transform.read_transform(fast_models[model])
        style = images.to_float_image(load_style(variants["full"][1].get("style", model)))
        for name, photo in photos.items():
            shape = photo.shape[:2]
            style_img = images.fit_pixels(style, shape[0] * shape[1])
            targets = loop.make_targets(params_vgg, spec, shape, photo, [style_img])
            before = loop.evaluate_loss(jnp.asarray(photo)[None], targets, params_vgg, spec)
            outputs = {}
            for variant, (params, meta) in variants.items():
                out = outputs[variant] = transform.stylize(photo, params)
                after = loop.evaluate_loss(jnp.asarray(out)[None], targets, params_vgg, spec)
                rows.append({"model": model, "variant": variant, "photo": name,
                             "style_loss_photo": float(before["style"]), "style_loss_output": float(after["style"]),
                             "style_ratio": float(before["style"]) / float(after["style"]),
                             "content_loss_output": float(after["content"]),
                             "layout_correlation": quality.layout_kept(out, photo),
                             "psnr_vs_full_db": quality.psnr(out, outputs["full"]) if variant != "full" else None,
                             "width": transform.architecture(params)["width"],
                             "model_steps": meta.get("steps"), "content_weight": meta.get("content_weight")})
    psnr_col = " PSNR vs full (dB) |" if args.fast else ""
    print(f"| model | photo ({args.size} px) | L_style photo | L_style output | photo/output | layout corr. |"
          + psnr_col)
    print("|---|---|---:|---:|---:|---:|" + ("---:|" if args.fast else ""))
    for r in rows:
        label = r["model"] + (" --fast" if r["variant"] == "fast" else "")
        psnr = f" {r['psnr_vs_full_db']:.1f} |" if r["psnr_vs_full_db"] is not None else " |" if args.fast else ""
        print(f"| {label} | {r['photo']} | {r['style_loss_photo']:.3g} | {r['style_loss_output']:.3g} | "
              f"{r['style_ratio']:.1f}× | {r['layout_correlation']:.2f} |{psnr}")
    if args.fast:
        print("\nMeans over the photos (fast vs full): "
              + "; ".join(_fast_summary(rows, model) for model in fast_models))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"size": args.size, "rows": rows}, indent=1) + "\n")
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
