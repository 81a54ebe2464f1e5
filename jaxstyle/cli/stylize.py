"""``bin/stylize``: stylise photos and videos by a transform net or back-propagation (Gatys), or
synthesise a texture."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxstyle import atomic
from jaxstyle.cli.common import (
    ArgumentParser,
    check_output_folder,
    cli_entry,
    float_list,
    int_list,
    positive_int,
    progress_bar,
)
from jaxstyle.errors import OptionError

METHODS = ("transform", "arbitrary", "gatys", "texture")
DEFAULT_GATYS_SIZE = 400  # the paper's 400x300; about 1.1 s per iteration on 2 CPU cores
# Measured by bench/shipped_models.py --fast and bench/inference_vs_peers.py (docs/performance.md, "--fast").
FAST_NOTE = ("about 2.6x faster on a CPU (400x300: 99 vs 263 ms on 2 cores), 0.85 MB instead of 3.4; the output "
             "is 24-28 dB PSNR from the full model's, with the same layout and a little softer strokes (74-90%% of "
             "its style-loss reduction)")

DESCRIPTION = """\
Stylise photos with a painting's style.

  transform  one forward pass of a trained transform net (Johnson et al.): milliseconds per image.
             Shipped models: scream, starry_night, wave; train more with bin/train.
             --fast uses their half-width variants: about 2.6x faster on a CPU, a little softer.
  arbitrary  any painting in one pass (universal style transfer, Li et al. 2017): the photo's VGG19
             features are matched to the painting's statistics and decoded, coarse to fine. About a
             second at 512 px on a CPU. The default when --style is an image that no shipped model
             covers (a file, or udnie / composition_vii).
  gatys    back-propagation through VGG19 (Gatys et al.): optimises the image itself.
           Slow (about 1 s per iteration at 400x300 on a laptop CPU) but works with any style.
  texture  synthesise a texture of the style from noise (no content image).

Styles: a path to any image, or a built-in name (scream, starry_night, wave, udnie,
composition_vii), downloaded once into ~/.cache/jaxstyle (or read from $JAXSTYLE_STYLES_DIR).

Images: JPEG, PNG, WebP, BMP, TIFF, GIF, in any common mode. The EXIF orientation is applied
(the output is upright); CMYK, 16-bit, palette and grayscale become RGB; transparency (RGBA,
palette with a transparent colour) is composited over white. Sides must be at least 16 px.

Videos (.mp4 .mov .m4v .mkv .avi .webm; one per run, --method transform): stylised frame by frame
into an H.264 .mp4/.mov/.m4v/.mkv at the same frame rate, the audio track kept. --smooth steadies
the painted texture; the run prints the flicker (mean frame-to-frame change) before and after.
"""

EPILOG = """\
examples:
  bin/stylize photo.jpg --style scream --out photo_scream.jpg
  bin/stylize photo.jpg --style scream --fast
  bin/stylize photos/ --style wave --out stylised/
  bin/stylize photo.jpg --method gatys --style my_painting.png --size 384 --iterations 300
  bin/stylize --method texture --style wave --size 256 --out wave_texture.png
  bin/stylize photo.jpg --style scream --strength 0.6 --preserve-color
  bin/stylize photo.jpg --style scream,wave --style-weights 0.7,0.3
  bin/stylize photo.jpg --method gatys --style starry_night,udnie --style-weights 0.5,0.5
  bin/stylize clip.mp4 --style scream --smooth 0.6 --out clip_scream.mp4
"""


def build_parser() -> argparse.ArgumentParser:
    from jaxstyle.backprop import MAX_ITERATIONS, PAPER, PRESETS, GatysOptions
    from jaxstyle.images import DEFAULT_MAX_PIXELS
    from jaxstyle.tiling import AUTO_TILE, AUTO_TILE_PIXELS, DEFAULT_HALO

    p = ArgumentParser(
        prog="stylize", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="CONTENT",
                   help="content image(s) or folder(s) of images, or one video (not used by --method texture)")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="algorithm (default: transform for a shipped model name or model file, arbitrary for "
                   "any other style image)")
    p.add_argument("--style", default=None,
                   help="transform: a shipped model name (scream, starry_night, wave) or a .msgpack model file; "
                   "gatys/texture: a style image path or built-in style name. Several, comma-separated, "
                   "are blended (see --style-weights)")
    p.add_argument("--fast", action="store_true",
                   help=f"transform: use the shipped style's half-width model (width 16, distilled from the full "
                   f"one with bin/train --teacher): {FAST_NOTE}")
    p.add_argument("--out", help="output file (one input) or folder (several inputs); "
                   "default: <content>_<style>.png (a video: .mp4) in the current folder")
    g = p.add_argument_group("size")
    g.add_argument("--size", type=positive_int, default=None,
                   help=f"long side of the output in pixels, aspect kept (default: transform keeps the input's "
                   f"size, gatys/texture use {DEFAULT_GATYS_SIZE})")
    g.add_argument("--batch-size", type=positive_int, default=8,
                   help="transform: images per batch, spread over all devices (default: %(default)s)")
    g.add_argument("--style-size", type=positive_int, default=None,
                   help="long side of the style image; default: scaled to the output's pixel count")
    g.add_argument("--tile", type=int, default=None, metavar="N",
                   help="gatys/texture: compute the loss and gradient in tiles of at most N x N px (a multiple "
                   f"of 16, each with {DEFAULT_HALO} px of context: the same result in the memory of one tile); "
                   f"0: never. Default: tiles of {AUTO_TILE} for images above {AUTO_TILE_PIXELS / 1e6:g} million "
                   "pixels")
    o = p.add_argument_group("optimisation (gatys/texture; unset options come from --preset)")
    d = GatysOptions()
    o.add_argument("--preset", choices=PRESETS, default="default",
                   help="default: the measured recipe (Adam from the photo, coarse to fine from ~128 px in "
                   "sqrt(2) steps, stops when converged); paper: Gatys et al.'s setting as in Tables 1-2 "
                   f"(sign update, content+noise init, beta 1e3, {PAPER['iterations']} iterations, no early stop)")
    o.add_argument("--iterations", type=positive_int, default=None,
                   help=f"budget (steps at the coarsest scale; finer scales get 1/--scale-step as many), at most "
                   f"{MAX_ITERATIONS:,} (default: {d.iterations}; paper: {PAPER['iterations']})")
    o.add_argument("--optimizer", choices=("auto", "sign", "adam", "lbfgs"), default=None,
                   help="sign: the paper's g' = g - lr*sgn(grad); adam; lbfgs (optax, line search); auto: sign "
                   f"at one scale, adam coarse to fine (default: {d.optimizer}; paper: {PAPER['optimizer']})")
    o.add_argument("--lr", type=float, default=None,
                   help="step size on the [0,1] image scale (default: sign 4/255 with cosine decay to 10%%, "
                   "adam 0.02, lbfgs 1)")
    o.add_argument("--tol", type=float, default=None,
                   help="stop a scale once its loss fell by less than this fraction over --window steps; 0: run "
                   f"the whole budget (default: {d.tol:g}; paper: 0)")
    o.add_argument("--window", type=positive_int, default=None,
                   help=f"steps over which --tol is measured (default: {d.window})")
    o.add_argument("--ema", type=float, default=None,
                   help="output the moving average of the iterates with this decay, e.g. 0.9; 0: the last "
                   f"iterate (default: {d.ema:g})")
    o.add_argument("--scales", type=positive_int, default=None,
                   help="optimise coarse to fine over this many scales, each --scale-step times the size of the "
                   "one before, starting from the previous result (default: as many as keep the coarsest "
                   "long side >= --min-size)")
    o.add_argument("--scale-step", type=float, default=None,
                   help=f"size ratio between scales (default: {d.scale_step:.4g}; paper: {PAPER['scale_step']:g})")
    o.add_argument("--min-size", type=positive_int, default=None,
                   help=f"long side of the coarsest scale when --scales is not given (default: {d.min_size}; "
                   f"paper: {PAPER['min_size']}, so up to {2 * PAPER['min_size'] - 1} px is one scale)")
    o.add_argument("--scale-iterations", type=int_list, default=None, metavar="N1,N2,...",
                   help="budget per scale, coarsest first (default: --iterations at the coarsest scale and "
                   "1/--scale-step as many at each finer one)")
    o.add_argument("--content-weight", type=float, default=None, help=f"alpha (default: {d.content_weight:g})")
    o.add_argument("--style-weight", type=float, default=None,
                   help=f"beta (default: {d.style_weight:g}; paper: {PAPER['style_weight']:g})")
    o.add_argument("--tv-weight", type=float, default=None,
                   help=f"total-variation weight, smooths noise (default: {d.tv_weight:g}; paper: 0)")
    o.add_argument("--style-layer-weights", type=float_list, default=None, metavar="W1,...,W5",
                   help="weights of conv1_1,conv2_1,conv3_1,conv4_1,conv5_1 (default: 0.2 each)")
    o.add_argument("--pooling", choices=("avg", "max"), default=None,
                   help="VGG pooling; the paper replaces max by avg (default: avg)")
    o.add_argument("--init", choices=("content+noise", "content", "random"), default=None,
                   help=f"starting image (default: {d.init}; paper: {PAPER['init']})")
    o.add_argument("--noise", type=float, default=None, help=f"std of the init noise (default: {d.noise:g})")
    o.add_argument("--seed", type=int, default=0, help="random seed; same seed, same image (default: 0)")
    c = p.add_argument_group("look")
    c.add_argument("--style-weights", type=float_list, default=None, metavar="W1,W2,...",
                   help="blend of the comma-separated --style list, one weight each, normalised to sum 1 "
                   "(default: equal). gatys/texture blend the styles' Gram targets; transform mixes the "
                   "models' outputs")
    c.add_argument("--style-scale", type=float, default=1.0, metavar="F",
                   help="gatys/texture: size of the style's brush strokes: the style image is scaled by F "
                   "before its Grams are taken (2: strokes twice as large; default: 1)")
    c.add_argument("--strength", type=float, default=1.0, metavar="S",
                   help="transform: 0 returns the photo, 1 the full style, between them a mix; arbitrary: the "
                   "same mix in feature space (default: 1)")
    c.add_argument("--decoders", default=None, metavar="NAME|FILE",
                   help="arbitrary: the decoder set, a shipped name or a file from bin/train --decoders "
                   "(default: the shipped 'photo' set)")
    c.add_argument("--levels", type=int_list, default=None, metavar="K1,K2,...",
                   help="arbitrary: the VGG19 levels (relu K_1) to match, deepest first, each decoded before the "
                   "next is encoded, e.g. 4,3,2,1 as in Li et al. (default: the deepest, 4)")
    c.add_argument("--feature-transform", choices=("wct", "adain"), default="wct",
                   help="arbitrary: wct matches the painting's feature covariance (whitening and colouring), "
                   "adain only each channel's mean and spread: faster, milder (default: %(default)s)")
    c.add_argument("--preserve-color", action="store_true",
                   help="keep the photo's colours: the output's luminance (Y of YCbCr) with the photo's "
                   "chroma (Cb, Cr). gatys also transfers luminance only: it optimises a grey image "
                   "against the style's luminance, matched to the photo's mean and spread")
    v = p.add_argument_group("video")
    v.add_argument("--smooth", type=float, default=0.0, metavar="S",
                   help="video: temporal smoothing in [0, 1) against flicker. Each output frame keeps S of "
                   "the previous output where the input frame did not change and follows the new frame where "
                   "it moved; 0.5-0.7 steadies the texture, near 1 leaves trails. The run prints the flicker "
                   "(mean frame-to-frame change) of the input and the output (default: 0, off)")
    r = p.add_argument_group("output")
    r.add_argument("--sheet", action="store_true",
                   help="transform: stylise each photo with every shipped model (or the comma-separated --style "
                   "list) and write <photo>_<style>.png plus a labelled side-by-side <photo>_sheet.png into the "
                   "--out folder; with --out FILE.png (one photo), only the sheet, to that file")
    r.add_argument("--save-every", type=positive_int, default=None, metavar="N",
                   help="also write the image every N iterations (<out>_iter00100.png, ...)")
    r.add_argument("--report", type=Path, default=None, metavar="FILE.json",
                   help="write a JSON report: losses, history, timing, options")
    r.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                   help="refuse images with more pixels than this: input files (from their header, before "
                   "decoding: decompression bombs cost nothing) and the image at --size (before resizing) "
                   f"(default: {DEFAULT_MAX_PIXELS:,}, about 8660x5770)")
    return p


def _output_paths(inputs: Sequence[Path], out: str | None, style_label: str, suffix: str = ".png") -> list[Path]:
    if out is None:
        return [Path.cwd() / f"{path.stem}_{style_label}{suffix}" for path in inputs]
    out_path = Path(out)
    if len(inputs) == 1 and not out_path.is_dir() and not out.endswith(os.sep):
        return [out_path]
    if out_path.exists() and not out_path.is_dir():
        raise OptionError(f"--out {out} must be a folder when several inputs are given")
    if not out_path.is_dir():
        raise OptionError(f"output folder {out} does not exist")
    return [out_path / f"{path.stem}_{style_label}{suffix}" for path in inputs]


# Options whose unset (None) flags are left out, so that the preset (or the dataclass) decides them.
_PRESET_FLAGS = ("iterations", "optimizer", "lr", "content_weight", "style_weight", "tv_weight",
                 "style_layer_weights", "pooling", "init", "noise", "min_size", "scale_step", "tol", "window",
                 "ema", "scales", "scale_iterations")


def _gatys_options(args: argparse.Namespace) -> dict:
    options = dict(
        preset=args.preset, seed=args.seed, size=args.size or DEFAULT_GATYS_SIZE, style_size=args.style_size,
        max_pixels=args.max_pixels, preserve_color=args.preserve_color, style_scale=args.style_scale,
        tile=args.tile,
    )
    options.update({k: getattr(args, k) for k in _PRESET_FLAGS if getattr(args, k) is not None})
    return options


def _load_image(path: Path, args: argparse.Namespace) -> np.ndarray:
    """An input image as float32[H,W,3], within ``--max-pixels`` and at least ``MIN_SIDE`` a side."""
    from jaxstyle import images, vgg

    return images.load_image(path, max_pixels=args.max_pixels, min_side=vgg.MIN_SIDE)


def _load_content(path: Path, args: argparse.Namespace) -> np.ndarray:
    """A content photo for the transform net: :func:`_load_image`, then at ``--size`` (long side) if given,
    float32[h,w,3]; the resized shape is checked (pixels, ``MIN_SIDE``) before resizing."""
    from jaxstyle import backprop, images

    img = _load_image(path, args)
    if args.size is not None:
        img = images.fit_long_side(img, args.size, max_pixels=args.max_pixels)
        backprop.check_shape(img.shape[:2])
    return img


def _style_label(style: str) -> str:
    return "+".join(Path(s).stem if Path(s).is_file() else s for s in _style_list(style))


def _style_list(style: str) -> list[str]:
    """The comma-separated --style value as a list (a path that exists is taken whole)."""
    if Path(style).exists():
        return [style]
    names = [name.strip() for name in style.split(",") if name.strip()]
    if not names:
        raise OptionError("--style is empty")
    return names


def _check_look(args: argparse.Namespace) -> None:
    """--style-weights / --strength / --preserve-color against the method and the style list."""
    from jaxstyle.transform import check_blend

    count = len(_style_list(args.style))
    if args.style_weights is not None and count == 1:
        raise OptionError("--style-weights needs several comma-separated --style values")
    check_blend(count, args.style_weights, args.strength)
    if args.strength != 1.0 and args.method not in ("transform", "arbitrary"):
        raise OptionError("--strength works with --method transform or arbitrary (for gatys, lower --style-weight)")
    if args.style_scale != 1.0 and args.method == "transform":
        raise OptionError("--style-scale works with --method arbitrary, gatys or texture (a transform net's "
                          "strokes are fixed by its training; use --size)")
    if args.preserve_color and args.method == "texture":
        raise OptionError("--preserve-color needs a content photo to take the colours from (not --method texture)")


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from jaxstyle import images, video

    args.method = args.method or ("transform" if args.fast else _default_method(args.style))
    is_video = any(video.is_video_path(path) for path in args.inputs)
    if is_video:
        _check_video_options(args)
    elif args.smooth != 0.0:
        raise OptionError("--smooth works with a video input")

    if args.fast and args.method != "transform":
        raise OptionError("--fast works with --method transform (it picks the half-width transform nets)")
    if args.sheet:
        if args.method != "transform":
            raise OptionError("--sheet works with --method transform")
        return _run_sheet(args)
    if args.style is None:
        raise OptionError("--style is required (a shipped model name, a model file, or a style image)")
    style_label = _style_label(args.style) + ("_fast" if args.fast else "")
    _check_look(args)
    if args.method == "texture":
        if args.inputs:
            raise OptionError("--method texture takes no content images")
        content_paths: list[Path] = []
        out_paths = [Path(args.out) if args.out else Path.cwd() / f"texture_{style_label}.png"]
    else:
        if not args.inputs:
            raise OptionError("no content image given (or use --method texture)")
        content_paths = [Path(args.inputs[0])] if is_video else images.list_images(args.inputs)
        out_paths = _output_paths(content_paths, args.out, style_label, ".mp4" if is_video else ".png")
    for path in out_paths:
        if is_video:
            video.check_output(path, content_paths[0])
        else:
            images.check_output_path(path)
    if args.report is not None:
        check_output_folder(args.report, "--report")
    if is_video:
        reports = [_run_video(args, content_paths[0], out_paths[0])]
    elif args.method in ("transform", "arbitrary"):
        reports = _run_transform(args, content_paths, out_paths)
    else:
        reports = _run_gatys(args, content_paths, out_paths)
    if args.report is not None:
        from jaxstyle.machine import machine_info

        payload = dict(reports[0]) if len(reports) == 1 else {"runs": reports}
        payload["machine"] = machine_info()
        atomic.write_atomic(args.report, json.dumps(payload, indent=1))
    return 0


def _default_method(style: str | None) -> str:
    """transform when every --style is a shipped model or a model file (or none is given: --sheet),
    arbitrary for any other style (an image file, a built-in painting without a shipped net)."""
    from jaxstyle import models

    if style is None:
        return "transform"
    shipped = models.shipped("transform")
    names = _style_list(style)
    if all(name in shipped or name.endswith(models.MODEL_SUFFIX) for name in names):
        return "transform"
    return "arbitrary"


def _check_video_options(args: argparse.Namespace) -> None:
    """A video input: one video alone, a one-pass method, a valid --smooth."""
    from jaxstyle import video

    if len(args.inputs) != 1:
        raise OptionError(f"a video is stylised on its own: give one video per run (got {len(args.inputs)} inputs)")
    if args.method not in ("transform", "arbitrary"):
        raise OptionError(f"videos work with --method transform or arbitrary, not {args.method} (back-propagation "
                          "takes minutes per frame)")
    if args.sheet:
        raise OptionError("--sheet works with photos, not videos")
    video.check_smooth(args.smooth)


def _run_video(args: argparse.Namespace, src: Path, dst: Path) -> dict:
    """Stylise one video with the transform net(s); a progress bar in frames, one summary line."""
    import time

    from jaxstyle import transform, vgg, video

    info = video.probe(src, max_pixels=args.max_pixels, min_side=vgg.MIN_SIDE)  # fails fast, before the models
    video.working_shape((info.height, info.width), args.size, args.max_pixels)
    if args.method == "arbitrary":
        models = _arbitrary_stylizer(args)
    else:
        models = [transform.load_transform(name, fast=args.fast) for name in _style_list(args.style)]
    bar = progress_bar(info.frames, desc=src.name, unit="frame")  # None: length unknown
    start = time.perf_counter()

    def on_frames(count: int) -> None:
        bar.update(count)
        bar.set_postfix(frames_per_s=f"{bar.n / (time.perf_counter() - start):.1f}", refresh=False)

    try:
        report = video.stylize_video(src, dst, models, weights=args.style_weights, strength=args.strength,
                                     preserve_color=args.preserve_color, smooth=args.smooth,
                                     batch_size=args.batch_size, size=args.size, max_pixels=args.max_pixels,
                                     on_frames=on_frames)
    finally:
        bar.close()
    h, w = report["size"]
    audio = f"audio {report['audio']}" if report["audio_kept"] else "no audio"
    print(f"wrote {dst} ({w}x{h}, {report['frames']} frames at {report['fps']:g} fps) with {args.style} in "
          f"{report['seconds']:.1f} s ({report['frames_per_second']:.1f} frames/s, first batch includes "
          f"compilation); flicker {report['flicker_in']:.4f} -> {report['flicker_out']:.4f}; {audio}")
    return {**report, "style": args.style}


def _run_sheet(args: argparse.Namespace) -> int:
    """Every style for each photo, plus one labelled contact sheet per photo."""
    from jaxstyle import images, transform

    if not args.inputs:
        raise OptionError("no content image given")
    content_paths = images.list_images(args.inputs)
    names = [name.strip() for name in args.style.split(",") if name.strip()] if args.style else []
    names = names or list(transform.shipped_models(fast=args.fast))
    out = Path(args.out) if args.out else Path.cwd()
    sheet_file = not out.is_dir() and out.suffix.lower() in images.IMAGE_EXTENSIONS  # --out sheet.png: that file
    if sheet_file:
        check_output_folder(out, "--out")
        if len(content_paths) != 1:
            raise OptionError(f"--out {out} is one sheet file, for one photo; give a folder for {len(content_paths)}")
    elif not out.is_dir():
        raise OptionError(f"--out {out} must be an existing folder or an image file name for --sheet")
    models = {name: transform.load_transform(name, fast=args.fast) for name in names}
    for path in content_paths:
        photo = _load_content(path, args)
        tiles, labels = [photo], ["photo"]
        for name, params in models.items():
            output = transform.stylize(photo, params)
            label = _style_label(name) + ("_fast" if args.fast else "")
            if not sheet_file:
                images.save_image(out / f"{path.stem}_{label}.png", output)
            tiles.append(output)
            labels.append(label)
        sheet_path = out if sheet_file else out / f"{path.stem}_sheet.png"
        sheet = images.save_image(sheet_path, images.make_grid(tiles, labels))
        print(f"wrote {sheet}" if sheet_file else f"wrote {sheet} and {len(models)} stylised image(s)")
    return 0


def _run_transform(args: argparse.Namespace, content_paths: list[Path], out_paths: list[Path]) -> list[dict]:
    """Feed-forward stylisation: same-size images are batched and spread over all local devices."""
    import time

    from jaxstyle import images, transform

    if args.method == "arbitrary":
        stylizer = _arbitrary_stylizer(args)
    else:
        models = [transform.load_transform(name, fast=args.fast) for name in _style_list(args.style)]

        def stylizer(batch: np.ndarray) -> np.ndarray:
            return transform.stylize_batch(models, batch, weights=args.style_weights, strength=args.strength,
                                           preserve_color=args.preserve_color)
    groups: dict[tuple[int, int], list[tuple[np.ndarray, Path]]] = {}
    for path, out_path in zip(content_paths, out_paths, strict=True):
        img = _load_content(path, args)
        groups.setdefault(img.shape[:2], []).append((img, out_path))
    bar = progress_bar(len(content_paths), desc="stylize", unit="img")
    reports, start = [], time.perf_counter()
    try:
        for items in groups.values():
            for i in range(0, len(items), args.batch_size):
                chunk = items[i : i + args.batch_size]
                t = time.perf_counter()
                outputs = stylizer(np.stack([img for img, _ in chunk]))
                seconds = time.perf_counter() - t
                for output, (_, out_path) in zip(outputs, chunk, strict=True):
                    images.save_image(out_path, output)
                    h, w = output.shape[:2]
                    reports.append({"method": args.method, "output": str(out_path), "style": args.style,
                                    "size": [h, w], "seconds": seconds / len(chunk)})
                bar.update(len(chunk))
                bar.set_postfix(img_per_s=f"{bar.n / (time.perf_counter() - start):.1f}", refresh=False)
    finally:
        bar.close()
    total = time.perf_counter() - start
    print(f"wrote {len(reports)} image(s) with {args.style} in {total:.1f} s "
          f"({len(reports) / max(total, 1e-9):.1f} images/s, first batch includes compilation)")
    return reports


def _arbitrary_stylizer(args: argparse.Namespace):
    """The style images of --style, prepared once: ``batch float32[N,H,W,3] -> stylised``."""
    from jaxstyle import styles, universal

    style_images = [_load_image(styles.resolve_style(name), args) for name in _style_list(args.style)]
    decoders = universal.load_decoders(args.decoders or universal.DEFAULT_DECODERS)
    return universal.make_stylizer(style_images, decoders=decoders, style_weights=args.style_weights,
                                   style_size=round((args.style_size or universal.DEFAULT_STYLE_SIZE) *
                                                    args.style_scale),
                                   preserve_color=args.preserve_color, strength=args.strength,
                                   feature_transform=args.feature_transform,
                                   levels=tuple(args.levels) if args.levels else None)


def _run_gatys(args: argparse.Namespace, content_paths: list[Path], out_paths: list[Path]) -> list[dict]:
    from jaxstyle import backprop, images, styles
    from jaxstyle.weights import load_vgg_params

    options = _gatys_options(args)
    backprop.make_options(**options).validate()
    style_images = [_load_image(styles.resolve_style(name), args) for name in _style_list(args.style)]
    contents = [_load_image(path, args) for path in content_paths]
    vgg_params = load_vgg_params()
    reports = []
    jobs = list(zip(contents, out_paths, strict=True)) if contents else [(None, out_paths[0])]
    for content, out_path in jobs:
        opts = backprop.make_options(**options)
        total = opts.iterations
        if content is not None:
            shape = images.long_side_shape(content.shape[:2], options["size"])
            total = sum(its for _, its in backprop.scale_plan(shape, opts))
        bar = progress_bar(total, desc=out_path.name, unit="it")

        def on_step(step, image, terms, out_path=out_path, bar=bar, total=total):
            bar.update(1)
            bar.set_postfix(loss=f"{terms['total']:.4g}", refresh=False)
            if args.save_every and step % args.save_every == 0 and step < total:
                snapshot = out_path.with_name(f"{out_path.stem}_iter{step:05d}{out_path.suffix}")
                images.save_image(snapshot, np.asarray(image[0]))

        try:
            if content is None:
                result = backprop.texture(style_images, options["size"], vgg_params=vgg_params,
                                          style_blend=args.style_weights, callback=on_step,
                                          **{k: v for k, v in options.items() if k not in ("size", "init")})
            else:
                result = backprop.gatys(content, style_images, vgg_params=vgg_params, style_blend=args.style_weights,
                                        callback=on_step, **options)
        finally:
            bar.close()
        images.save_image(out_path, result.image)
        h, w = result.image.shape[:2]
        print(f"wrote {out_path} ({w}x{h}, {result.seconds:.1f} s, {len(result.history) - 1} iterations, "
              f"{result.stop}, content {result.content_loss:.4g}, style {result.style_loss:.4g})")
        reports.append({
            "method": args.method, "output": str(out_path), "iterations": len(result.history) - 1,
            "stop": result.stop, "stops": result.stops, "preset": opts.preset,
            "seconds": result.seconds, "compile_seconds": result.compile_seconds,
            "content_loss": result.content_loss, "style_loss": result.style_loss,
            "total_loss": result.history[-1]["total"], "size": [h, w],
            "style": args.style, "options": options, "optimizer": result.optimizer, "scales": result.scales,
            "history": result.history,
        })
    return reports


if __name__ == "__main__":
    sys.exit(main())
