"""``bin/train``: train a feed-forward transform net for one style."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jaxstyle.cli.common import ArgumentParser, check_output_folder, cli_entry, positive_int, step_progress
from jaxstyle.cli.options import add_options, from_args
from jaxstyle.errors import OptionError
from jaxstyle.io import images
from jaxstyle.io.images import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from jaxstyle.train import TrainConfig

DESCRIPTION = """\
Train a transform net (Johnson et al., instance norm) that stylises a photo in one forward pass.

The loss is the paper's: content (conv4_2) + style (Grams of conv1_1..conv5_1) + total variation,
through the ported VGG19. Training is data-parallel over every local device, and over several
machines when JAXSTYLE_COORDINATOR, JAXSTYLE_NUM_PROCESSES and JAXSTYLE_PROCESS_ID are set
(jax.distributed). Re-running the same command resumes from the last checkpoint in --workdir.

Teacher (--teacher MODEL or --teacher microast): a model that stylises each training batch. The net
first learns to reproduce the teacher's output for --teacher-steps steps, then the paper's loss takes
over for the remaining steps: a warmup toward a good stylisation of the same painting, for runs too
short (on a CPU) to get there from the paper's loss alone. MicroAST (the arbitrary-style model) stylises with
the --style painting; a transform net with its own style. With --teacher-steps 0 the whole run is
distillation (mean squared error in [0,1] pixels, no VGG): with --width 16 this makes the half-width
models behind `bin/stylize --fast`; a step costs a fraction of a perceptual one, and --style
defaults to the teacher's.
"""

EPILOG = """\
outputs in --workdir: checkpoints/ (Orbax, last 3), metrics.jsonl, loss.png, samples/, config.json
examples:
  bin/train --style scream --data ~/coco/train2014 --workdir runs/scream --out weights/scream.msgpack
  bin/train --style my_painting.jpg --data photos/ --workdir runs/mine --steps 2000 --image-size 128
  bin/train --style wave --data tfds:coco/2014 --workdir runs/wave --warmup-steps 1000
  bin/train --teacher scream --width 16 --data photos/ --workdir runs/scream_fast --out weights/scream_fast.msgpack
  bin/train --style scream --teacher microast --teacher-steps 300 --steps 500 --data photos/ --workdir runs/scream_t
  bin/train --decoders --data photos/ --workdir runs/decoders --out weights/decoders.msgpack  (see --decoders --help)
"""

DECODERS_DESCRIPTION = """\
Train the decoders of the arbitrary-style method (bin/stylize --method arbitrary): each learns to
reconstruct photos from VGG19's relu K_1 features (pixel error + the error of its output's features).
No painting is needed; any painting is matched at inference. Same loop as transform nets: sharded
jitted step, Orbax checkpoints (re-running resumes), metrics.jsonl, loss.png, samples/.
Use the result with bin/stylize --decoders FILE, or copy it to jaxstyle/assets/decoders/photo.msgpack."""


def _add_run_options(p: ArgumentParser, every: int) -> None:
    """The options every training run has: data, workdir, output and the hooks' periods."""
    p.add_argument("--data", required=True,
                   help="folder of training photos (recursive; e.g. COCO train2014/) or tfds:coco/2014")
    p.add_argument("--workdir", required=True, type=Path, help="checkpoints, metrics and samples go here")
    p.add_argument("--out", type=Path, default=None, help="export the trained model to this .msgpack file")
    p.add_argument("--checkpoint-every", type=positive_int, default=every, help="(default: %(default)s)")
    p.add_argument("--log-every", type=positive_int, default=max(1, every // 20), help="metrics line every N steps")
    p.add_argument("--sample-every", type=positive_int, default=every, help="write a sample image every N steps")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop (checkpoint and export) after this much training time, e.g. on a rented GPU")


def build_decoders_parser() -> ArgumentParser:
    """``bin/train --decoders``: the run options, then :class:`jaxstyle.train_decoders.DecoderConfig`'s fields."""
    from jaxstyle.train_decoders import DecoderConfig

    p = ArgumentParser(prog="train --decoders", description=DECODERS_DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--decoders", action="store_true", required=True, help="train the arbitrary-style decoders")
    _add_run_options(p, 250)
    add_options(lambda _group: p, DecoderConfig)
    return p


def _main_decoders(argv: Sequence[str]) -> int:
    args = build_decoders_parser().parse_args(argv)
    from jaxstyle import train_decoders, train_setup

    train_setup.maybe_initialize_distributed()
    config = from_args(train_decoders.DecoderConfig, args)
    config.validate()
    if args.out is not None:
        check_output_folder(args.out, "--out")
    with step_progress(config.steps, desc="train decoders") as progress:
        result = train_decoders.run_decoders(config, args.workdir, checkpoint_every=args.checkpoint_every,
                                             log_every=args.log_every, sample_every=args.sample_every, out=args.out,
                                             max_seconds=args.max_seconds, progress=progress)
    print(f"trained {result.steps} steps in {result.seconds:.0f} s; last loss {result.last_metrics.get('loss')}")
    return 0


def build_parser() -> ArgumentParser:
    """The command's own options (inputs, outputs, hooks), then :class:`jaxstyle.train.TrainConfig`'s fields
    (names, defaults and help are the fields')."""
    from jaxstyle.train import TrainConfig

    p = ArgumentParser(prog="train", description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", default=None,
                   help="style image path or built-in name (scream, starry_night, ...); required unless --teacher is "
                   "a transform net (then its style is the default)")
    _add_run_options(p, 1000)
    p.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                   help="refuse a style image file, or a style image at --style-size or a crop at --image-size, "
                   f"with more pixels than this (default: {DEFAULT_MAX_PIXELS:,}); training photos above "
                   f"{DEFAULT_MAX_PIXELS:,} pixels are skipped and counted")
    add_options(lambda _group: p, TrainConfig)
    return p


def _check_sizes(config: TrainConfig, max_pixels: int) -> None:
    """Refuse crop sizes over the pixel limit before anything is loaded."""
    images.check_pixels(config.image_size, config.image_size, max_pixels, f"--image-size {config.image_size}: a crop",
                        "use a smaller --image-size, or pass a larger --max-pixels if the machine has the memory")


def _style_image(config: TrainConfig, max_pixels: int) -> np.ndarray:
    """The style image at --style-size, float32[h,w,3]: loaded within ``max_pixels``, and both sides
    at least ``MIN_SIDE`` before and after resizing (VGG pools four times)."""
    from jaxstyle.io import styles
    from jaxstyle.methods.gatys import pyramid
    from jaxstyle.nn import vgg

    style = styles.load_style(config.style, max_pixels=max_pixels, min_side=vgg.MIN_SIDE)
    style = images.fit_long_side(style, config.style_size, max_pixels=max_pixels)
    pyramid.check_shape(style.shape[:2], "style image at style_size", ("style_size",))
    return style


def _teacher_style(teacher: str) -> str:
    """The style a teacher model was trained for (its metadata), else its name."""
    from jaxstyle.methods.transform import net as transform

    path = transform.resolve_transform(teacher)
    return str(transform.read_transform(path)[1].get("style") or path.stem)


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--decoders" in argv:
        return _main_decoders(argv)
    args = build_parser().parse_args(argv)
    from jaxstyle import train

    train.maybe_initialize_distributed()
    from jaxstyle.methods.transform import net as transform

    if args.teacher and args.teacher != train.MICROAST_TEACHER and args.style is None:
        args.style = _teacher_style(args.teacher)
    elif args.style is None:
        raise OptionError("--style is required (a style image or built-in name), unless --teacher is a transform net")
    config = from_args(train.TrainConfig, args)
    config.validate()
    _check_sizes(config, args.max_pixels)
    # Every input is checked before train.run touches --workdir (a failed start must not leave a
    # config.json behind that a corrected rerun would then be refused by).
    if args.out is not None:
        check_output_folder(args.out, "--out")
    needs_style = config.teacher_kind() == "microast" or config.perceptual_steps() > 0
    style = _style_image(config, args.max_pixels) if needs_style else None
    for model in (config.init_from, config.teacher if config.teacher_kind() == "transform" else ""):
        if model:
            transform.load_transform(model)  # a missing, corrupt or foreign model fails here
    with step_progress(config.steps, desc=f"train {config.style}") as progress:
        result = train.run(config, args.workdir, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                           sample_every=args.sample_every, out=args.out, style_image=style,
                           max_seconds=args.max_seconds, progress=progress)
    print(f"trained {result.steps} steps in {result.seconds:.0f} s; last loss {result.last_metrics.get('loss')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
