"""``bin/stylize``: stylise photos and videos by a transform net or back-propagation (Gatys), or
synthesise a texture."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxstyle import atomic
from jaxstyle.cli import stylize_jobs as jobs
from jaxstyle.cli.common import ArgumentParser, check_output_folder, cli_entry, float_list, positive_int
from jaxstyle.cli.options import add_options, unset_for_preset
from jaxstyle.errors import OptionError
from jaxstyle.methods import registry
from jaxstyle.methods.transform.options import TransformOptions

DESCRIPTION = """\
Stylise photos with a painting's style.

  transform  one forward pass of a trained transform net (Johnson et al.): milliseconds per image.
             Shipped models: scream, starry_night, wave; train more with bin/train.
             --fast uses their half-width variants: about 2.6x faster on a CPU, a little softer.
  arbitrary  any painting in one pass. The default model is MicroAST (Wang et al. 2023, the
             authors' pretrained weights, MIT licence): a fraction of a second at 512 px on a CPU, any
             size up to 4K and beyond in tiles. --arbitrary-model wct|adain uses VGG19 features matched
             to the painting's statistics (Li et al. 2017) and the decoders trained here. The default
             method for any painting, a shipped style's name included (it beat the shipped nets
             in blind pairs: docs/results.md).
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
  bin/stylize photo.jpg --style my_painting.jpg --size 1024
  bin/stylize photo.jpg --style my_painting.jpg --arbitrary-model adain --strength 0.7
  bin/stylize photo.jpg --style scream --strength 0.6 --preserve-color
  bin/stylize photo.jpg --style scream,wave --style-weights 0.7,0.3
  bin/stylize photo.jpg --method gatys --style starry_night,udnie --style-weights 0.5,0.5
  bin/stylize clip.mp4 --style scream --smooth 0.6 --out clip_scream.mp4
"""


COMMON_GROUP = "common (every method; an option that works with some only names them)"
#: The section of each option-field group (``metadata["group"]``) of the generated options; a field group
#: named after a method goes to its section, any other to the common one.
FIELD_GROUPS = {"optimisation": "gatys", "size": "common", "look": "common", "output": "common",
                "common": "common", "arbitrary": "arbitrary"}


def help_groups() -> dict[str, str]:
    """The help's sections, by method, in this order: ``common``, then each registered method with a
    ``help_title`` (:mod:`jaxstyle.methods.registry`)."""
    return {"common": COMMON_GROUP,
            **{method.name: method.help_title for method in registry.methods() if method.help_title}}


def __getattr__(name: str) -> Any:
    # METHODS (the --method choices) and GROUPS (the help's sections) are read from the registry.
    if name == "METHODS":
        return registry.names()
    if name == "GROUPS":
        return help_groups()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_parser() -> argparse.ArgumentParser:
    """The options of the command, listed by method (:func:`help_groups`). ``--method`` offers every registered
    method (:mod:`jaxstyle.methods.registry`). The options of the methods' options dataclasses are generated
    from their fields (names, defaults and help): :class:`jaxstyle.methods.gatys.presets.GatysOptions`,
    :class:`jaxstyle.methods.transform.options.TransformOptions` and
    :class:`jaxstyle.methods.arbitrary.wct.ArbitraryOptions` (with
    :class:`jaxstyle.methods.arbitrary.method.ArbitraryModelOptions`) with this command's defaults, any other
    method's as declared (a field whose flag is already there is shared); the rest are the command's own
    (models, batches, videos, output)."""
    from jaxstyle.methods.arbitrary import stylizer
    from jaxstyle.methods.arbitrary.method import ArbitraryModelOptions
    from jaxstyle.methods.arbitrary.wct import ArbitraryOptions
    from jaxstyle.methods.gatys.presets import PAPER, GatysOptions

    p = ArgumentParser(
        prog="stylize", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="CONTENT",
                   help="content image(s) or folder(s) of images, or one video (not used by --method texture)")
    groups = {name: p.add_argument_group(title) for name, title in help_groups().items()}

    def group_of(field_group: str) -> Any:
        return groups[FIELD_GROUPS.get(field_group, field_group if field_group in groups else "common")]

    common = groups["common"]
    common.add_argument("--method", choices=registry.names(), default=None,
                        help="algorithm (default: arbitrary, MicroAST with the painting, for any painting: a "
                        "built-in name or an image; transform for a .msgpack model file and for --sheet or --fast. "
                        "MicroAST beat the shipped nets of the same painting in blind pairs: docs/results.md)")
    common.add_argument("--style", default=None,
                        help="transform: a shipped model name (scream, starry_night, wave) or a .msgpack model "
                        "file; gatys/texture: a style image path or built-in style name. Several, "
                        "comma-separated, are blended (see --style-weights)")
    common.add_argument("--out", help="output file (one input) or folder (several inputs); "
                        "default: <content>_<style>.png (a video: .mp4) in the current folder")
    common.add_argument("--batch-size", type=positive_int, default=8,
                        help="transform: images per batch, spread over all devices (default: %(default)s)")
    common.add_argument("--style-weights", type=float_list, default=None, metavar="W1,W2,...",
                        help="blend of the comma-separated --style list, one weight each, normalised to sum 1 "
                        "(default: equal). gatys/texture blend the styles' Gram targets; transform mixes the "
                        "models' outputs")
    common.add_argument(
        "--smooth", type=float, default=0.0, metavar="S",
        help="video: temporal smoothing in [0, 1) against flicker. Each output frame keeps S of the previous output "
        "where the input frame did not change and follows the new frame where it moved; 0.5-0.7 steadies the "
        "texture, near 1 leaves trails. The run prints the flicker (mean frame-to-frame change) of the input and "
        "the output (default: 0, off)")
    common.add_argument("--report", type=Path, default=None, metavar="FILE.json",
                        help="write a JSON report: losses, history, timing, options")

    add_options(group_of, TransformOptions)  # --fast
    transform = groups["transform"]
    transform.add_argument("--sheet", action="store_true",
                           help="transform: stylise each photo with every shipped model (or the comma-separated "
                           "--style list) and write <photo>_<style>.png plus a labelled side-by-side "
                           "<photo>_sheet.png into --out (or, for one photo, only the sheet to --out FILE.png)")

    # --arbitrary-model (its choices: the model registry's), --decoders
    add_options(group_of, ArbitraryModelOptions, overrides={"arbitrary_model": {"choices": stylizer.model_names()}})
    # --feature-transform, --strength, --levels: unset (None) unless given, so that the model decides.
    add_options(group_of, ArbitraryOptions, overrides={"feature_transform": {"default": None}})

    groups["gatys"].add_argument("--save-every", type=positive_int, default=None, metavar="N",
                                 help="also write the image every N iterations (<out>_iter00100.png, ...)")
    add_options(group_of, GatysOptions, overrides={
        **unset_for_preset(GatysOptions, "paper", PAPER),
        "size": {"default": None, "help": "long side of the output in pixels, aspect kept (default: transform "
                 f"keeps the input's size, gatys/texture use {GatysOptions.size})"},
        "tile": {"group": "optimisation"},
    })
    added = {ArbitraryModelOptions, ArbitraryOptions, GatysOptions, TransformOptions}
    for method in registry.methods():
        cls = method.options_class()
        if cls is None or cls in added:
            continue
        added.add(cls)
        taken = tuple(vars(p.parse_args([])))  # fields whose flag another method already has
        add_options(lambda field_group, name=method.name: groups[  # type: ignore[misc]
            FIELD_GROUPS.get(field_group) or (field_group if field_group in groups else name if name in groups
                                              else "common")], cls, skip=taken)
    return p


def _check_look(args: argparse.Namespace) -> None:
    """--style-weights / --strength / --preserve-color against the method and the style list."""
    from jaxstyle.methods.transform.net import check_blend

    count = len(jobs.style_list(args.style))
    if args.style_weights is not None and count == 1:
        raise OptionError("--style-weights needs several comma-separated --style values")
    check_blend(count, args.style_weights, args.strength)
    if args.strength != 1.0 and not registry.get(args.method).strength:
        raise OptionError(f"--strength works with --method {' or '.join(registry.names(strength=True))} (for "
                          "gatys, lower --style-weight)")
    if args.style_scale != 1.0 and args.method == "transform":
        raise OptionError("--style-scale works with --method arbitrary, gatys or texture (a transform net's "
                          "strokes are fixed by its training; use --size)")
    if args.preserve_color and not registry.get(args.method).content:
        raise OptionError(f"--preserve-color needs a content photo to take the colours from (not --method "
                          f"{args.method})")


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from jaxstyle import video
    from jaxstyle.io import images

    args.method = args.method or ("transform" if args.fast or args.sheet else jobs.default_method(args.style))
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
        return jobs.run_sheet(args)
    if args.style is None:
        raise OptionError("--style is required (a shipped model name, a model file, or a style image)")
    style_label = jobs.style_label(args.style) + ("_fast" if args.fast else "")
    _check_look(args)
    method = registry.get(args.method)
    if not method.content:
        if args.inputs:
            raise OptionError(f"--method {method.name} takes no content images")
        content_paths: list[Path] = []
        out_paths = [Path(args.out) if args.out else Path.cwd() / f"{method.name}_{style_label}.png"]
    else:
        if not args.inputs:
            without = " or ".join(f"--method {name}" for name in registry.names() if not registry.get(name).content)
            raise OptionError(f"no content image given (or use {without})" if without else "no content image given")
        content_paths = [Path(args.inputs[0])] if is_video else images.list_images(args.inputs)
        out_paths = jobs.output_paths(content_paths, args.out, style_label, ".mp4" if is_video else ".png")
    for path in out_paths:
        if is_video:
            video.check_output(path, content_paths[0])
        else:
            images.check_output_path(path)
    if args.report is not None:
        check_output_folder(args.report, "--report")
    if is_video:
        reports = [jobs.run_video(args, content_paths[0], out_paths[0])]
    elif method.one_pass:
        reports = jobs.run_transform(args, content_paths, out_paths)
    else:
        reports = jobs.run_gatys(args, content_paths, out_paths)
    if args.report is not None:
        from jaxstyle.machine import machine_info

        payload = dict(reports[0]) if len(reports) == 1 else {"runs": reports}
        payload["machine"] = machine_info()
        atomic.write_atomic(args.report, json.dumps(payload, indent=1))
    return 0


def _check_video_options(args: argparse.Namespace) -> None:
    """A video input: one video alone, a method that works per frame (registered ``per_frame``), a valid --smooth."""
    from jaxstyle import video

    if len(args.inputs) != 1:
        raise OptionError(f"a video is stylised on its own: give one video per run (got {len(args.inputs)} inputs)")
    if args.method not in video.frame_methods():
        raise OptionError(f"videos work with --method {' or '.join(video.frame_methods())}, not "
                          f"{args.method} (back-propagation takes minutes per frame)")
    if args.sheet:
        raise OptionError("--sheet works with photos, not videos")
    video.check_smooth(args.smooth)


if __name__ == "__main__":
    sys.exit(main())
