"""The work behind ``jaxstyle stylize``: each method's run over files, its progress bar and summary line.

Building the stylizers, batching and step planning are :mod:`jaxstyle.run`'s (shared with the web page
and video); this module reads and writes the files and prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxstyle.cli.common import check_output_folder, progress_bar, step_progress
from jaxstyle.errors import OptionError


def output_paths(inputs: Sequence[Path], out: str | None, style_label: str, suffix: str = ".png") -> list[Path]:
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


def load_image(path: Path, args: argparse.Namespace) -> np.ndarray:
    """An input image as float32[H,W,3], within ``--max-pixels`` and at least ``MIN_SIDE`` a side."""
    from jaxstyle.io import images
    from jaxstyle.nn import vgg

    return images.load_image(path, max_pixels=args.max_pixels, min_side=vgg.MIN_SIDE)


def load_content(path: Path, args: argparse.Namespace) -> np.ndarray:
    """A content photo for the transform net: :func:`_load_image`, then at ``--size`` (long side) if given,
    float32[h,w,3]; the resized shape is checked (pixels, ``MIN_SIDE``) before resizing."""
    from jaxstyle.io import images
    from jaxstyle.methods.gatys import pyramid

    img = load_image(path, args)
    if args.size is not None:
        img = images.fit_long_side(img, args.size, max_pixels=args.max_pixels)
        pyramid.check_shape(img.shape[:2])
    return img


def style_label(style: str) -> str:
    return "+".join(Path(s).stem if Path(s).is_file() else s for s in style_list(style))


def style_list(style: str) -> list[str]:
    """The comma-separated --style value as a list (a path that exists is taken whole)."""
    if Path(style).exists():
        return [style]
    names = [name.strip() for name in style.split(",") if name.strip()]
    if not names:
        raise OptionError("--style is empty")
    return names


def run_video(args: argparse.Namespace, src: Path, dst: Path) -> dict:
    """Stylise one video with a method that works per frame (the transform net(s), a painting by arbitrary),
    the stylizer built as for photos (:func:`build_stylizer`); a progress bar in frames, one summary line."""
    from jaxstyle import video
    from jaxstyle.nn import vgg

    info = video.probe(src, max_pixels=args.max_pixels, min_side=vgg.MIN_SIDE)  # fails fast, before the models
    video.working_shape((info.height, info.width), args.size, args.max_pixels)
    stylize = build_stylizer(args)
    bar = progress_bar(info.frames, desc=src.name, unit="frame")  # None: length unknown

    def progress(done: int, metrics: Mapping[str, float]) -> None:
        bar.update(done - bar.n)
        bar.set_postfix(frames_per_s=f"{metrics['frames_per_s']:.1f}", refresh=False)

    try:
        report = video.stylize_video(src, dst, stylize, smooth=args.smooth, batch_size=args.batch_size,
                                     size=args.size, max_pixels=args.max_pixels, progress=progress)
    finally:
        bar.close()
    h, w = report["size"]
    audio = f"audio {report['audio']}" if report["audio_kept"] else "no audio"
    print(f"wrote {dst} ({w}x{h}, {report['frames']} frames at {report['fps']:g} fps) with {args.style} in "
          f"{report['seconds']:.1f} s ({report['frames_per_second']:.1f} frames/s, first batch includes "
          f"compilation); flicker {report['flicker_in']:.4f} -> {report['flicker_out']:.4f}; {audio}")
    return {**report, "style": args.style}


def run_sheet(args: argparse.Namespace) -> int:
    """Every style for each photo, plus one labelled contact sheet per photo."""
    from jaxstyle.io import images
    from jaxstyle.methods.transform import net as transform

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
        photo = load_content(path, args)
        tiles, labels = [photo], ["photo"]
        for name, params in models.items():
            output = transform.stylize(photo, params)
            label = style_label(name) + ("_fast" if args.fast else "")
            if not sheet_file:
                images.save_image(out / f"{path.stem}_{label}.png", output)
            tiles.append(output)
            labels.append(label)
        sheet_path = out if sheet_file else out / f"{path.stem}_sheet.png"
        sheet = images.save_image(sheet_path, images.make_grid(tiles, labels))
        print(f"wrote {sheet}" if sheet_file else f"wrote {sheet} and {len(models)} stylised image(s)")
    return 0


def run_transform(args: argparse.Namespace, content_paths: list[Path], out_paths: list[Path]) -> list[dict]:
    """Stylisation by a one-pass method (:func:`build_stylizer`): same-size images are batched and spread over
    all local devices."""
    import time

    from jaxstyle import run
    from jaxstyle.io import images

    stylizer = build_stylizer(args)
    photos = [load_content(path, args) for path in content_paths]
    reports, start = [], time.perf_counter()
    with step_progress(len(photos), desc="stylize", unit="img") as progress:
        for index, output, seconds in run.stylize_images(photos, stylizer, batch_size=args.batch_size,
                                                         progress=progress):
            images.save_image(out_paths[index], output)
            h, w = output.shape[:2]
            reports.append({"method": args.method, "output": str(out_paths[index]), "style": args.style,
                            "size": [h, w], "seconds": seconds})
    total = time.perf_counter() - start
    print(f"wrote {len(reports)} image(s) with {args.style} in {total:.1f} s "
          f"({len(reports) / max(total, 1e-9):.1f} images/s, first batch includes compilation)")
    return reports


def default_method(style: str | None) -> str:
    """The method for --style when --method is not given: :func:`jaxstyle.run.default_method` of the
    comma-separated list (transform for shipped nets and model files, or no style: --sheet)."""
    from jaxstyle import run

    return run.default_method([] if style is None else style_list(style))


def build_stylizer(args: argparse.Namespace, method: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The one-pass method ``method`` (default: --method) with --style prepared once, through
    :func:`jaxstyle.run.build_stylizer`: ``batch float32[N,H,W,3] -> stylised``. The method gets every parsed
    option as its settings; style names become images by :func:`load_image` (within --max-pixels)."""
    from jaxstyle import run
    from jaxstyle.io import styles
    from jaxstyle.methods.registry import StyleJob

    job = StyleJob(style_list(args.style), style_weights=args.style_weights, strength=args.strength,
                   preserve_color=args.preserve_color, settings=vars(args),
                   load_style=lambda name: load_image(styles.resolve_style(name), args))
    return run.build_stylizer(method or args.method, job)


def run_gatys(args: argparse.Namespace, content_paths: list[Path], out_paths: list[Path]) -> list[dict]:
    """Back-propagation (or a texture) per content photo, a progress bar in steps, one summary line each."""
    from jaxstyle import run
    from jaxstyle.cli.options import given
    from jaxstyle.io import images, styles
    from jaxstyle.methods.gatys.presets import GatysOptions, make_options
    from jaxstyle.vgg_weights import load_vgg_params

    options = make_options(**given(GatysOptions, args))  # unset options from the preset
    options.validate()
    style_images = [load_image(styles.resolve_style(name), args) for name in style_list(args.style)]
    contents = [load_image(path, args) for path in content_paths]
    vgg_params = load_vgg_params()
    reports = []
    for content, out_path in list(zip(contents, out_paths, strict=True)) if contents else [(None, out_paths[0])]:
        total = run.gatys_steps(None if content is None else content.shape[:2], options, style_images[0].shape[:2])

        def snapshot(step: int, image: np.ndarray, out_path: Path = out_path) -> None:
            images.save_image(out_path.with_name(f"{out_path.stem}_iter{step:05d}{out_path.suffix}"), image)

        with step_progress(total, desc=out_path.name, unit="it") as progress:
            result = run.run_gatys(content, style_images, options, vgg_params=vgg_params,
                                   style_blend=args.style_weights, progress=progress,
                                   snapshot_every=args.save_every, on_snapshot=snapshot)
        images.save_image(out_path, result.image)
        h, w = result.image.shape[:2]
        print(f"wrote {out_path} ({w}x{h}, {result.seconds:.1f} s, {len(result.history) - 1} iterations, "
              f"{result.stop}, content {result.content_loss:.4g}, style {result.style_loss:.4g})")
        reports.append({
            "method": args.method, "output": str(out_path), "iterations": len(result.history) - 1,
            "stop": result.stop, "stops": result.stops, "preset": options.preset,
            "seconds": result.seconds, "compile_seconds": result.compile_seconds,
            "content_loss": result.content_loss, "style_loss": result.style_loss,
            "total_loss": result.history[-1]["total"], "size": [h, w],
            "style": args.style, "options": dataclasses.asdict(options), "optimizer": result.optimizer,
            "scales": result.scales, "history": result.history,
        })
    return reports
