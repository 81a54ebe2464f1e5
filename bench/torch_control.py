"""Benchmark (a control for the transform nets' stripes): our transform-net training against the same in PyTorch.

    .venv/bin/python -m bench.torch_control [--steps 300] [--size 128] [--out bench/results/torch_control]
    .venv/bin/python -m bench.torch_control --quick   # ours only (no torch), 2 steps at 32 px: a smoke run

Our trained nets show fine 2-3 px diagonal stripes and colour fringes. Is that a bug in our JAX code or
the recipe? Both sides train the SAME net from ONE random init (``jaxstyle.methods.transform.net.init_params``, seed 0,
width 32, 5 residual blocks; converted for torch) on the SAME batches (random crops of the training photos,
made once here with numpy from a fixed seed and fed to both), with the same recipe (Adam 1e-3 with the
same frozen biases; the ``TrainConfig`` default loss: content conv4_2 α=1, style conv1_1..conv5_1 equal
weights β=1e3, TV 1e5, avg pooling, style ``starry_night`` at 512, range and layout weights 0, the loss
measured on ``clip(out, 0, 1)`` on both sides). Ours is ``jaxstyle.train.mode`` stepped by
``jaxstyle.train_loop.Trainer``; theirs is ``bench/_torch_transform.py`` (the server in the torch venv, see
``bench/transform_vs_torch.py``). The two run interleaved, ``--log-every`` steps at a time.

Then both nets stylise the test photos (long side ``--infer-size``), and each output is measured with the
``bench/_quality.py`` proxies plus the share of its high-frequency energy that sits at exactly period 2
(the Nyquist lines of the spectrum: 2 px stripes and checkerboards). Outputs, in ``--out``: the images,
one sheet per photo (top: photo | ours | torch; bottom: the same centre crop ×3, nearest), and
``summary.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import _quality
from bench._common import REPO, RESULTS, log, machine_info, out_path
from bench.transform_vs_torch import (
    TORCH_VENV,
    TorchServer,
    _flatten,
    ours_training,
    reference_config,
    setup_training,
    torch_python,
)

DATA = Path(os.environ.get("JAXSTYLE_DATA") or REPO.parent / "shared" / "data")
PHOTOS = ("golden_gate", "tubingen", "chicago")
DEFAULT_OUT = RESULTS / "torch_control"
LAYOUT = "contiguous"  # the torch side's memory layout (the maths is the same in both)
ZOOM = 3  # the sheets' bottom row: a centre crop magnified this much (nearest)


# -- data ------------------------------------------------------------------------------------------


def make_crops(files: Sequence[Path], steps: int, batch: int, size: int, seed: int) -> np.ndarray:
    """uint8[steps, batch, size, size, 3]: ``jaxstyle.data.random_crop`` (rescale, crop, flip) of the files
    in a seeded shuffled order (one permutation per pass), crop ``i`` drawn from ``default_rng([seed, i])``.
    Each file is decoded once."""
    from jaxstyle import data

    rng = np.random.default_rng(seed)
    needed = steps * batch
    order = np.concatenate([rng.permutation(len(files)) for _ in range(-(-needed // len(files)))])[:needed]
    crops = np.empty((needed, size, size, 3), np.uint8)
    for f in np.unique(order):
        image = data.decode_uint8(files[f], min_short_side=size)
        for i in np.flatnonzero(order == f):
            crops[i] = data.random_crop(image, np.random.default_rng([seed, int(i)]), size)
    return crops.reshape(steps, batch, size, size, 3)


# -- measures --------------------------------------------------------------------------------------


def nyquist_share(img: np.ndarray, period: float = _quality.HF_PERIOD) -> float:
    """Of the luminance's energy at periods under ``period`` px (``_quality.hf_energy``'s band), the share on
    the Nyquist lines: components at exactly period 2 along rows or columns (|f_y| or |f_x| = 1/2 cycle/px:
    2 px stripes, and the checkerboard at the corner). An odd side is first cropped by one pixel so that
    its spectrum has that line."""
    y = _quality.luminance(img)
    y = y[: y.shape[0] // 2 * 2, : y.shape[1] // 2 * 2]
    spectrum = np.abs(np.fft.fft2(y - y.mean())) ** 2
    fy = np.fft.fftfreq(y.shape[0])[:, None]
    fx = np.fft.fftfreq(y.shape[1])[None, :]
    band = np.hypot(fy, fx) > 1.0 / period
    nyquist = band & ((np.abs(fy) == 0.5) | (np.abs(fx) == 0.5))
    total = spectrum[band].sum()
    return float(spectrum[nyquist].sum() / total) if total > 0 else 0.0


def hf_peak(img: np.ndarray, period: float = _quality.HF_PERIOD) -> dict[str, float]:
    """The strongest single component of the luminance in the band above: its frequency (cycles/px, f_y
    downwards and f_x rightwards, f_x >= 0), its period in px, the angle of its wave vector from the x axis,
    and its share of the band's energy."""
    y = _quality.luminance(img)
    spectrum = np.abs(np.fft.fft2(y - y.mean())) ** 2
    fy = np.fft.fftfreq(y.shape[0])[:, None] * np.ones((1, y.shape[1]))
    fx = np.fft.fftfreq(y.shape[1])[None, :] * np.ones((y.shape[0], 1))
    band = np.hypot(fy, fx) > 1.0 / period
    masked = np.where(band, spectrum, 0.0)
    i, j = np.unravel_index(int(np.argmax(masked)), masked.shape)
    v, u = float(fy[i, j]), float(fx[i, j])
    if u < 0 or (u == 0 and v < 0):  # a real image's spectrum is symmetric: report the f_x >= 0 twin
        u, v = -u, -v
    total = masked.sum()
    ti, tj = -i % y.shape[0], -j % y.shape[1]  # its symmetric twin (itself on a Nyquist line's ends)
    energy = masked[i, j] + (masked[ti, tj] if (ti, tj) != (i, j) else 0.0)
    share = float(energy / total) if total else 0.0
    return {"fy": v, "fx": u, "period_px": float(1.0 / np.hypot(v, u)),
            "angle_deg": float(np.degrees(np.arctan2(v, u))), "share": share}


def measure(img: np.ndarray, photo: np.ndarray) -> dict[str, Any]:
    """The proxies of the saved picture ``img`` against ``photo`` (both float32[H,W,3], :func:`_quality.as_saved`)."""
    return {**_quality.measure(img, photo), "nyquist_share": nyquist_share(img), "hf_peak": hf_peak(img)}


# -- pictures --------------------------------------------------------------------------------------


def sheet(panels: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """uint8 sheet: the panels (float[H,W,3], one size) side by side; below, the centre crop of each magnified
    ``ZOOM``× (nearest), so that 2 px patterns are visible."""
    from jaxstyle.io import images as imagelib

    h, w = panels[0].shape[:2]
    ch, cw = h // ZOOM, w // ZOOM
    top, left = (h - ch) // 2, (w - cw) // 2
    rows = []
    for row in (panels, [np.repeat(np.repeat(p[top:top + ch, left:left + cw], ZOOM, 0), ZOOM, 1) for p in panels]):
        tiles = [imagelib.to_uint8(p) for p in row]
        height = max(t.shape[0] for t in tiles)
        line = np.full((height, sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1), 3), 255, np.uint8)
        x = 0
        for t in tiles:
            line[: t.shape[0], x: x + t.shape[1]] = t
            x += t.shape[1] + gap
        rows.append(line)
    width = max(r.shape[1] for r in rows)
    out = np.full((sum(r.shape[0] for r in rows) + gap, width, 3), 255, np.uint8)
    out[: rows[0].shape[0], : rows[0].shape[1]] = rows[0]
    out[rows[0].shape[0] + gap:, : rows[1].shape[1]] = rows[1]
    return out


# -- the run ---------------------------------------------------------------------------------------


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-30)


def run(args: argparse.Namespace, server: TorchServer | None, work: Path) -> dict[str, Any]:
    """The comparison; with no ``server`` (``--quick``), our side alone."""
    import jax
    import jax.numpy as jnp

    from jaxstyle.io import images as imagelib
    from jaxstyle.io.styles import load_style
    from jaxstyle.methods.transform import net as transform

    config = reference_config(steps=args.steps, image_size=args.size, batch_size=args.batch, seed=0, width=32,
                              residual_blocks=5)
    assert config.lr == 1e-3 and config.style == "starry_night" and config.pooling == "avg"

    files = sorted((DATA / "train").glob("*.jpg"))
    if not files:
        raise SystemExit(f"no training photos in {DATA / 'train'} (set JAXSTYLE_DATA)")
    log(f"making {args.steps} x {args.batch} crops of {args.size} px from {len(files)} photos (seed {args.seed})")
    batches = make_crops(files, args.steps, args.batch, args.size, args.seed)
    np.savez(work / "batches.npz", batches=batches)

    style = imagelib.fit_long_side(imagelib.to_float_image(load_style(config.style)), config.style_size)
    # init: train.init_params, one jitted jaxstyle.methods.transform.net.init_params(key(seed 0), width 32, 5 blocks)
    if server is None:
        trainer, init, _ = ours_training(config, style)
        state, info = trainer.replicate(init), None
    else:
        trainer, state, info = setup_training(server, config, style, work, layouts=[LAYOUT], clip=True,
                                              threads=args.threads)
    sides = ("ours", "torch") if server is not None else ("ours",)

    metrics: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    for start in range(0, args.steps, args.log_every):
        chunk = list(range(start, min(start + args.log_every, args.steps)))
        for i in chunk:
            t0 = time.perf_counter()
            state, m = trainer.step(state, trainer.shard_batch(batches[i]))
            metrics["ours"].append({k: float(v) for k, v in jax.device_get(m).items()})
            seconds["ours"].append(time.perf_counter() - t0)
        if server is None:
            log(f"step {chunk[-1] + 1}/{args.steps}: loss ours {metrics['ours'][-1]['loss']:.4g}")
            continue
        reply = server("train", layout=LAYOUT, batches=str(work / "batches.npz"), indices=chunk)
        metrics["torch"] += reply["metrics"]
        seconds["torch"] += reply["times"]
        a, b = metrics["ours"][-1], metrics["torch"][-1]
        log(f"step {chunk[-1] + 1}/{args.steps}: loss ours {a['loss']:.4g} torch {b['loss']:.4g} "
            f"(rel diff {_rel(a['loss'], b['loss']):.1e}); style {a['style']:.3g} / {b['style']:.3g}, "
            f"content {a['content']:.3g} / {b['content']:.3g}; s/step {np.mean(seconds['ours'][-len(chunk):]):.2f}"
            f" / {np.mean(reply['times']):.2f}")

    params = jax.device_get(state["params"])
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = {name: imagelib.fit_long_side(imagelib.load_image(DATA / "content" / f"{name}.jpg"), args.infer_size)
              for name in PHOTOS}
    np.savez(work / "photos.npz", **photos)
    theirs: dict[str, np.ndarray] = {}
    if server is not None:
        server("stylise", layout=LAYOUT, images=str(work / "photos.npz"), out=str(work / "torch_out.npz"))
        with np.load(work / "torch_out.npz") as data:
            theirs = {name: data[name] for name in PHOTOS}
    dev_params = jax.device_put(params)
    pictures: dict[str, Any] = {}
    for name, photo in photos.items():
        ours = np.asarray(transform.apply(dev_params, jnp.asarray(photo)[None]))[0]
        photo_s, ours_s = _quality.as_saved(photo), _quality.as_saved(ours)
        imagelib.save_image(out_dir / f"{name}_ours.png", ours_s)
        pictures[name] = {"size_hw": list(photo.shape[:2]), "photo": measure(photo_s, photo_s),
                          "ours": measure(ours_s, photo_s)}
        if name in theirs:
            theirs_s = _quality.as_saved(theirs[name])
            imagelib.save_image(out_dir / f"{name}_torch.png", theirs_s)
            pictures[name]["torch"] = measure(theirs_s, photo_s)
            pictures[name]["mean_abs_diff_ours_vs_torch"] = float(np.mean(np.abs(ours_s - theirs_s)))
        imagelib.save_image(out_dir / f"{name}_sheet.png", sheet([photo_s, ours_s, *([theirs_s] if theirs else [])]))
    # Our final net through the torch inference code too: isolates the inference path from the training.
    np.savez(work / "final_params.npz", **_flatten(params))
    cross = {}
    for name, photo in photos.items() if server is not None else ():
        np.savez(work / "one.npz", image=photo[None])
        server("setup_infer", params=str(work / "final_params.npz"), image=str(work / "one.npz"),
               out=str(work / "cross.npz"), threads=args.threads)
        with np.load(work / "cross.npz") as data:
            theirs_infer = data[LAYOUT][0]
        ours = np.asarray(transform.apply(dev_params, jnp.asarray(photo)[None]))[0]
        cross[name] = float(np.max(np.abs(ours - theirs_infer)))

    def at(side: str, step: int) -> dict[str, float]:
        return metrics[side][min(step, args.steps) - 1]

    checkpoints = sorted({s for s in (1, 25, 100, args.steps) if s <= args.steps})
    losses = {str(s): {side: {k: at(side, s)[k] for k in ("loss", "content", "style", "tv")}
                       for side in sides} for s in checkpoints}
    return {
        "config": dataclasses.asdict(config), "crops_seed": args.seed, "train_files": len(files),
        "torch": info, "losses_at": losses,
        "loss_rel_diff": None if server is None else {
            "step1": _rel(at("ours", 1)["loss"], at("torch", 1)["loss"]),
            "max_first_25": max(_rel(a["loss"], b["loss"]) for a, b in
                                zip(metrics["ours"][:25], metrics["torch"][:25], strict=True)),
            "last": _rel(at("ours", args.steps)["loss"], at("torch", args.steps)["loss"])},
        "seconds_per_step_median": {side: float(np.median(s)) for side, s in seconds.items()},
        "pictures": pictures, "ours_net_torch_inference_max_abs_diff": cross,
        "metrics": metrics,
    }


def markdown(report: Mapping[str, Any]) -> str:
    if report["torch"] is None:
        return markdown_ours(report)
    lines = ["| step | loss ours | loss torch | rel diff | style ours | style torch | content ours | content torch |",
             "|---|---|---|---|---|---|---|---|"]
    for step, sides in report["losses_at"].items():
        a, b = sides["ours"], sides["torch"]
        lines.append(f"| {step} | {a['loss']:.4g} | {b['loss']:.4g} | {_rel(a['loss'], b['loss']):.1e} | "
                     f"{a['style']:.3g} | {b['style']:.3g} | {a['content']:.3g} | {b['content']:.3g} |")
    lines += ["", "| photo | side | hf_ratio | layout_kept | clipped_share | nyquist_share "
              "| HF peak (period px, angle) |", "|---|---|---|---|---|---|---|"]
    for name, p in report["pictures"].items():
        for side in ("photo", "ours", "torch"):
            m = p[side]
            peak = m["hf_peak"]
            lines.append(f"| {name} {'×'.join(map(str, p['size_hw']))} | {side} | {m['hf_ratio']:.2f} | "
                         f"{m['layout']:.3f} | {m['clipped']:.3f} | {m['nyquist_share']:.3f} | "
                         f"{peak['period_px']:.2f}, {peak['angle_deg']:.0f}° |")
    diff = report["ours_net_torch_inference_max_abs_diff"]
    lines += ["", "Mean |ours - torch| per photo (0-1 scale): " + ", ".join(
        f"{n} {p['mean_abs_diff_ours_vs_torch']:.3f}" for n, p in report["pictures"].items())
        + "; our final net through torch's inference, max |diff| vs ours: "
        + ", ".join(f"{n} {v:.1e}" for n, v in diff.items())
        + "; s/step (median) ours {ours:.2f}, torch {torch:.2f}".format(**report["seconds_per_step_median"])]
    return "\n".join(lines)


def markdown_ours(report: Mapping[str, Any]) -> str:
    """The tables of a run without torch (``--quick``): our losses, and the proxies of our pictures."""
    lines = ["| step | loss ours | style ours | content ours |", "|---|---|---|---|"]
    for step, sides in report["losses_at"].items():
        a = sides["ours"]
        lines.append(f"| {step} | {a['loss']:.4g} | {a['style']:.3g} | {a['content']:.3g} |")
    lines += ["", "| photo | side | hf_ratio | layout_kept | clipped_share | nyquist_share |",
              "|---|---|---|---|---|---|"]
    for name, p in report["pictures"].items():
        for side in ("photo", "ours"):
            m = p[side]
            lines.append(f"| {name} {'×'.join(map(str, p['size_hw']))} | {side} | {m['hf_ratio']:.2f} | "
                         f"{m['layout']:.3f} | {m['clipped']:.3f} | {m['nyquist_share']:.3f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A control for the stripes: the same transform-net training in "
                                                 "JAX (ours) and PyTorch, same init and batches; then the "
                                                 "stylised test photos side by side.")
    parser.add_argument("--quick", action="store_true", help="ours only (no torch): 2 steps of batch 2 at 32 px, "
                        "photos at 48 px, in a temporary folder (a smoke run)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 300; --quick 2)")
    parser.add_argument("--size", type=int, default=None, help="training crop side (default 128; --quick 32)")
    parser.add_argument("--batch", type=int, default=None, help="default 4; --quick 2")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crops (the init is always seed 0)")
    parser.add_argument("--log-every", type=int, default=None, help="steps per interleaved chunk and log line "
                        "(default 25; --quick 1)")
    parser.add_argument("--infer-size", type=int, default=None, help="long side of the stylised test photos "
                        "(default 512; --quick 48)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out", type=Path, default=None, help=f"folder for the images and summary.json (default "
                        f"{DEFAULT_OUT})")
    parser.add_argument("--torch-venv", type=Path, default=TORCH_VENV)
    args = parser.parse_args(argv)
    for name, full, quick in (("steps", 300, 2), ("size", 128, 32), ("batch", 4, 2), ("log_every", 25, 1),
                              ("infer_size", 512, 48)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.out = out_path(args.out, DEFAULT_OUT, args.quick)
    if args.steps <= 0 or args.log_every <= 0:
        parser.error("--steps and --log-every must be positive")
    report: dict[str, Any] = {"benchmark": "torch_control", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "mode": "quick" if args.quick else "full",
                              "machine": machine_info(("flax", "optax"), torch_threads_requested=args.threads)}
    server = None if args.quick else TorchServer(torch_python(args.torch_venv))
    try:
        with tempfile.TemporaryDirectory(prefix="torch_control.") as tmp:
            report.update(run(args, server, Path(tmp)))
    finally:
        if server is not None:
            server.close()
    report["machine"]["loadavg_end"] = os.getloadavg()
    table = markdown(report)
    report["table_markdown"] = table
    (args.out / "summary.json").write_text(json.dumps(report, indent=1))
    print(f"\n## torch control: {args.steps} steps, {args.size}² crops, batch {args.batch}\n")
    print(table)
    print(f"\nimages and summary.json: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
