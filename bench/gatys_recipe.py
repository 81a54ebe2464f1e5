"""Candidate Gatys recipes side by side at a small size: wall time, style loss, layout, grain.

    nice -n 5 .venv/bin/python -m bench.gatys_recipe --recipes base,content,adam_ema --size 192
    #  --pairs tubingen:starry_night,amber:wave   (content:style stems from $JAXSTYLE_DATA)
    #  --out bench/results/gatys_recipe/          (one PNG per run + results.jsonl, appended)
    nice -n 5 .venv/bin/python -m bench.gatys_recipe --quick   # a smoke run: 48 px, 2 steps, a temporary folder

Each recipe is one line in ``RECIPES``: keyword arguments of the prototype loop :func:`run_recipe`
(its own small jitted loop over ``jaxstyle.nn.vgg`` and ``jaxstyle.objective`` so that options not yet in
``jaxstyle.methods.gatys`` can be tried before they are built). Metrics, all on the saved uint8 result
against the working-size photo:

* ``style_ratio``, ``layout``, ``hf`` (``hf_ratio``), ``clipped``: the proxies of ``bench/_quality.py``
  (one definition for every benchmark): the paper's Gram style loss of the result over the photo's own
  (lower: more style); the correlation of the 8x box-downsampled luminance with the photo's; luminance
  energy at periods under 3 px over the photo's; the share of pixels with a channel at 0 or 255.
* ``seconds``: wall time of the optimisation (compile included), ``steps`` taken, ``stop``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bench import _quality as quality
from bench._common import RESULTS, out_path
from jaxstyle import objective as losses
from jaxstyle import vgg_weights
from jaxstyle.io import images as imagelib
from jaxstyle.methods.gatys import api
from jaxstyle.nn import vgg

DATA = Path(os.environ.get("JAXSTYLE_DATA", Path(__file__).resolve().parents[1] / "../shared/data"))
SQRT2 = math.sqrt(2.0)

# name -> options of run_recipe (defaults there). "base" is jaxstyle's defaults at the time of writing.
RECIPES: dict[str, dict] = {
    "base": dict(init="content+noise", optimizer="sign", steps=500),
    "base200": dict(init="content+noise", optimizer="sign", steps=200),
    "sign_content": dict(init="content", optimizer="sign", steps=200),
    "sign_content_b1e4": dict(init="content", optimizer="sign", steps=200, beta=1e4),
    "adam_content": dict(init="content", optimizer="adam", steps=200),
    "adam_b1e4": dict(init="content", optimizer="adam", steps=200, beta=1e4),
    "adam_b1e5": dict(init="content", optimizer="adam", steps=200, beta=1e5),
    "adam_b1e4_ema": dict(init="content", optimizer="adam", steps=200, beta=1e4, ema=0.9),
    "adam_b1e4_tv": dict(init="content", optimizer="adam", steps=200, beta=1e4, tv=1e2),
    "adam_b1e4_tv3": dict(init="content", optimizer="adam", steps=200, beta=1e4, tv=1e3),
    "adam_b1e4_rep": dict(init="content", optimizer="adam", steps=200, beta=1e4, replicate=True),
    "adam_b1e4_ms": dict(init="content", optimizer="adam", steps=100, beta=1e4, multiscale=128),
    "adam_b1e4_ms_ema": dict(init="content", optimizer="adam", steps=100, beta=1e4, multiscale=128, ema=0.9),
    "adam_b1e4_deep": dict(init="content", optimizer="adam", steps=200, beta=1e4,
                           layer_weights=(0.1, 0.15, 0.25, 0.25, 0.25)),
    "adam_b1e4_tv5": dict(init="content", optimizer="adam", steps=200, beta=1e4, tv=1e5),
    "adam_b1e4_tv6": dict(init="content", optimizer="adam", steps=200, beta=1e4, tv=1e6),
    "ms60_tv5": dict(init="content", optimizer="adam", steps=60, beta=1e4, multiscale=128, tv=1e5),
    "ms60_ema_tv5": dict(init="content", optimizer="adam", steps=60, beta=1e4, multiscale=128, ema=0.9, tv=1e5),
    # Through the API (jaxstyle.methods.gatys.api.gatys at the photo's size): the built defaults and variations.
    "api_default": dict(api={}),
    "api_paper": dict(api={"preset": "paper"}),
    "api_tv6": dict(api={"tv_weight": 1e6}),
    "api_tv7": dict(api={"tv_weight": 1e7}),
    "api_ema": dict(api={"ema": 0.9}),
    "api_b1e5": dict(api={"style_weight": 1e5}),
    "adam_mc_b1e4": dict(init="content", optimizer="adam", steps=200, beta=1e4, style_loss="meancov"),
    "adam_noise_b1e4": dict(init="content+noise", optimizer="adam", steps=200, beta=1e4),
}


# ----------------------------------------------------------------------------------- prototype loss/loop
def _features(params, image, layers, replicate: bool):
    """vgg.features with avg pooling; ``replicate``: the first conv pads by edge replication."""
    if not replicate:
        return vgg.features(params, image, layers, "avg")
    wanted, deepest = set(layers), max(vgg.VGG_LAYERS.index(n) for n in layers)
    x = vgg.preprocess(image)
    out = {}
    for name in vgg.VGG_LAYERS[: deepest + 1]:
        if name == "conv1_1":
            xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
            y = jax.lax.conv_general_dilated(xp, params[name]["w"], (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = jax.nn.relu(y + params[name]["b"])
        else:
            x = vgg.conv_relu(x, params[name])
        if name in wanted:
            out[name] = x
        if vgg.closes_block(name) and name != vgg.VGG_LAYERS[deepest]:
            x = vgg.pool(x, "avg")
    return out


def _stats(fmap):
    """Mean float32[C] and covariance float32[C,C] of float[1,h,w,C] responses."""
    flat = fmap.reshape(-1, fmap.shape[-1])
    mu = flat.mean(axis=0)
    centred = flat - mu
    return mu, centred.T @ centred / flat.shape[0]


def make_targets(params, content, style, replicate, content_weight):
    layers = (*losses.STYLE_LAYERS, losses.CONTENT_LAYER)
    sf = _features(params, jnp.asarray(style)[None], layers, replicate)
    h, w = content.shape[:2]
    positions = {ly: (h // 2 ** (int(ly[4]) - 1)) * (w // 2 ** (int(ly[4]) - 1)) for ly in losses.STYLE_LAYERS}
    grams = losses.style_targets({ly: sf[ly] for ly in losses.STYLE_LAYERS}, positions)
    stats = {ly: _stats(sf[ly]) for ly in losses.STYLE_LAYERS}
    cf = _features(params, jnp.asarray(content)[None], (losses.CONTENT_LAYER,), replicate)
    return {"grams": grams, "stats": stats, "content": cf[losses.CONTENT_LAYER] if content_weight else None}


def total_loss(image, targets, params, *, alpha, beta, tv, weights, style_loss, replicate):
    layers = (*losses.STYLE_LAYERS, losses.CONTENT_LAYER)
    f = _features(params, image, layers, replicate)
    content = losses.content_loss(f[losses.CONTENT_LAYER], targets["content"]) if alpha else 0.0
    wmap = dict(zip(losses.STYLE_LAYERS, weights, strict=True))
    if style_loss == "gram":
        style = losses.style_loss(f, targets["grams"], wmap)
    else:  # mean + covariance, scaled so that a Gram-loss-sized number comes out (E_l ~ ||ΔG||²/(4N²M²))
        style = 0.0
        for ly, wl in wmap.items():
            mu, cov = _stats(f[ly])
            tmu, tcov = targets["stats"][ly]
            c = mu.shape[0]
            style = style + wl * (jnp.sum((mu - tmu) ** 2) / c + jnp.sum((cov - tcov) ** 2) / (4.0 * c * c))
    tvl = losses.total_variation(image) if tv else 0.0
    return alpha * content + beta * style + tv * tvl


@functools.lru_cache(maxsize=64)
def _step(shape, optimizer, lr, steps, alpha, beta, tv, weights, style_loss, replicate):
    if optimizer == "sign":
        opt = optax.chain(optax.scale_by_sign(),
                          optax.scale_by_learning_rate(optax.cosine_decay_schedule(lr, steps, alpha=0.1)))
    else:
        opt = optax.adam(lr)
    kw = dict(alpha=alpha, beta=beta, tv=tv, weights=weights, style_loss=style_loss, replicate=replicate)

    def step(image, state, ema, decay, targets, params):
        value, grad = jax.value_and_grad(lambda x: total_loss(x, targets, params, **kw))(image)
        updates, state = opt.update(grad, state, image)
        image = jnp.clip(optax.apply_updates(image, updates), 0.0, 1.0)
        ema = decay * ema + (1.0 - decay) * image
        return image, state, ema, value

    return jax.jit(step), opt


def scale_shapes(shape, start):
    """Coarse to fine in √2 steps from about ``start`` px (long side) up to ``shape``."""
    h, w = shape
    n = max(0, int(math.floor(math.log(max(h, w) / start, SQRT2) + 1e-6))) if start else 0
    return [(round(h / SQRT2**k), round(w / SQRT2**k)) for k in reversed(range(n + 1))]


def run_recipe(params, photo, style_full, *, init="content", optimizer="adam", steps=200, lr=None,
               beta=1e3, alpha=1.0, tv=0.0, layer_weights=(0.2,) * 5, style_loss="gram", replicate=False,
               multiscale=0, ema=0.0, noise=0.1, seed=0, ref_pixels=400 * 300):
    """Returns (image float32[H,W,3], info). ``steps`` per scale; losses recorded every step.

    ``ref_pixels``: the content weight is scaled by ref_pixels / (H·W) of the output, so that a small
    test image gets the style/content balance that the same weights give at 400x300 (the content
    loss sums over positions, the style loss does not); None: the weights as given."""
    lr = lr if lr is not None else {"sign": 4.0 / 255.0, "adam": 0.02}[optimizer]
    key = jax.random.key(seed)
    shapes = scale_shapes(photo.shape[:2], multiscale)
    full = photo.shape[:2]
    t0 = time.perf_counter()
    image, hist, prev_c = None, [], None
    for shape in shapes:
        content = photo if shape == full else imagelib.resize(photo, *shape)
        style = imagelib.fit_pixels(style_full, shape[0] * shape[1])
        ratio = shape[0] * shape[1] / (full[0] * full[1])
        a = alpha / ratio * (ref_pixels / (full[0] * full[1]) if ref_pixels else 1.0)
        targets = make_targets(params, content, style, replicate, a)
        if image is None:
            image = jnp.asarray(content)[None]
            if init == "content+noise":
                image = jnp.clip(image + noise * jax.random.normal(key, image.shape), 0, 1)
        else:
            up = imagelib.resize(np.asarray(image[0]), *shape)
            up = up + (content - imagelib.resize(prev_c, *shape))
            image = jnp.asarray(np.clip(up, 0, 1), dtype=jnp.float32)[None]
        prev_c = content
        step, opt = _step(shape, optimizer, lr, steps, a, beta, tv, tuple(layer_weights), style_loss, replicate)
        state = opt.init(image)
        avg = image
        scale_hist = []
        for _ in range(steps):
            image, state, avg, value = step(image, state, avg, jnp.float32(ema), targets, params)
            scale_hist.append(float(value))
        hist.append(scale_hist)
        if ema:
            image = avg
    seconds = time.perf_counter() - t0
    return np.asarray(image[0]), {"seconds": seconds, "shapes": shapes, "loss_history": hist}


def measure(params, img, photo, style_full) -> dict:
    """The :mod:`bench._quality` proxies of the saved result against the photo (``hf``: its ``hf_ratio``)."""
    img8 = quality.as_saved(img)
    m = quality.measure(img8, photo, params, quality.style_grams(params, style_full, photo.shape[:2]))
    return {"style_ratio": m["style_ratio"], "layout": m["layout"], "hf": m["hf_ratio"], "clipped": m["clipped"]}


#: --quick: one prototype recipe, one coarse-to-fine, one through the API; every one 2 steps (per scale) at 48 px.
QUICK_RECIPES = "base200,adam_b1e4_ms,api_default"
QUICK_STEPS = 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_RECIPES} with {QUICK_STEPS} steps at "
                    "48 px, in a temporary folder")
    ap.add_argument("--recipes", default=None, help="comma list of RECIPES (default "
                    "base200,sign_content,adam_b1e4,adam_b1e4_ema)")
    ap.add_argument("--pairs", default="tubingen:starry_night")
    ap.add_argument("--size", type=int, default=None, help="long side (default 192; --quick 48)")
    ap.add_argument("--out", type=Path, default=None, help="folder (default bench/results/gatys_recipe)")
    args = ap.parse_args()
    args.recipes = args.recipes or (QUICK_RECIPES if args.quick else "base200,sign_content,adam_b1e4,adam_b1e4_ema")
    args.size = args.size or (48 if args.quick else 192)
    out = out_path(args.out, RESULTS / "gatys_recipe", args.quick)
    out.mkdir(parents=True, exist_ok=True)
    params = vgg_weights.on_device()
    log = out / "results.jsonl"
    for pair in args.pairs.split(","):
        c, s = pair.split(":")
        photo = imagelib.fit_long_side(imagelib.load_image(DATA / "content" / f"{c}.jpg"), args.size)
        style = imagelib.load_image(DATA / "styles" / f"{s}.jpg")
        imagelib.save_image(out / f"{c}_{args.size}.png", photo)
        for name in args.recipes.split(","):
            recipe = dict(RECIPES[name])
            if args.quick:
                recipe = {"api": {**recipe["api"], "iterations": QUICK_STEPS}} if "api" in recipe else {
                    **recipe, "steps": QUICK_STEPS}
            if "api" in recipe:
                r = api.gatys(photo, style, vgg_params=params, size=None, **recipe["api"])
                img = r.image
                info = {"seconds": r.seconds, "shapes": r.scales, "stop": r.stop,
                        "loss_history": [[h["total"] for h in r.history]]}
            else:
                img, info = run_recipe(params, photo, style, **recipe)
            imagelib.save_image(out / f"{c}__{s}__{name}_{args.size}.png", img)
            row = {"pair": pair, "recipe": name, "size": args.size, **measure(params, img, photo, style),
                   "seconds": info["seconds"], "shapes": info["shapes"], "stop": info.get("stop"),
                   "loss_history": info["loss_history"]}
            with log.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{pair:28s} {name:20s} t={row['seconds']:6.1f}s style={row['style_ratio']:.3f} "
                  f"layout={row['layout']:.3f} hf={row['hf']:.2f} clip={row['clipped']:.3f} {row['stop'] or ''}",
                  flush=True)
    print(f"JSON lines: {log}")


if __name__ == "__main__":
    main()
