"""Gatys et al. back-propagation (the module behind ``jaxstyle.gatys``) and texture synthesis.

The image itself is the parameter: float32[1,H,W,3] RGB in [0,1]. One jitted step
(:func:`make_step`) computes the paper's loss (:mod:`jaxstyle.objective`) with
``jax.value_and_grad`` through the VGG19 and applies an optax update, then clips the image
back into [0,1].
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxstyle import color, objective, vgg_weights
from jaxstyle.errors import NonFiniteLossError, OptionError
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
# Defaults: √2 steps from about 128 px, so 400x300 runs at 141, 200, 283 and 400 px (docs/results.md,
# "Default recipe"). The paper preset halves down to 256 px: up to 511 px is one scale.
DEFAULT_MIN_SIZE = 128
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
    "min_size": 256, "scale_step": 2.0, "tol": 0.0, "ema": 0.0,
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

    preset: str = option("default", "default: the measured recipe (L-BFGS from the photo, coarse to fine from ~128 px "
                         "in sqrt(2) steps, stops when converged); paper: Gatys et al.'s setting as in Tables 1-2 "
                         f"(sign update, content+noise init, beta 1e3, {PAPER['iterations']} iterations, no early "
                         "stop)", choices=PRESETS, group="optimisation")
    iterations: int = option(70, "budget (steps at the coarsest scale; finer scales get 1/--scale-step as many), at "
                             f"most {MAX_ITERATIONS:,}", kind="positive_int", group="optimisation")
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
    min_size: int = option(DEFAULT_MIN_SIZE, "long side of the coarsest scale when --scales is not given",
                           kind="positive_int", group="optimisation")
    scale_iterations: Sequence[int] | None = option(
        None, "budget per scale, coarsest first (default: --iterations at the coarsest scale and 1/--scale-step as "
        "many at each finer one)", kind="ints", metavar="N1,N2,...", group="optimisation")
    scale_step: float = option(DEFAULT_SCALE_STEP, "size ratio between scales", kind="float", group="optimisation")
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
        if not 0 < self.iterations <= MAX_ITERATIONS:
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
        if self.min_size < MIN_SIDE:
            raise OptionError(f"min_size must be at least {MIN_SIDE}, got {self.min_size}", fields=("min_size",))
        if self.scale_iterations is not None:
            its = list(self.scale_iterations)
            if not its or any(not 0 < i <= MAX_ITERATIONS for i in its):
                raise OptionError(f"scale_iterations must be 1 to {MAX_ITERATIONS:,} each, got {its}",
                                  fields=("scale_iterations",))
        tiling.check_tile(self.tile)
        for name in ("content_weight", "style_weight", "tv_weight", "noise"):
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


@dataclasses.dataclass
class GatysResult:
    """image: float32[H,W,3] in [0,1]; history: one dict per iteration (loss terms, unweighted)."""

    image: np.ndarray
    history: list[dict[str, float]]
    seconds: float
    compile_seconds: float
    scales: list[list[int]] | None = None  # [[H, W, iterations], ...] coarsest first
    optimizer: str | None = None  # the one used ("auto" resolved)
    # Why each scale stopped, coarsest first: "budget" or "converged at step N" (N within that scale).
    stops: list[str] = dataclasses.field(default_factory=list)

    @property
    def stop(self) -> str:
        """Why the run stopped: ``"converged at step N"`` (N counted over all scales) or ``"budget"``;
        from the last scale, the one that gives the result."""
        if not self.stops or self.stops[-1] == "budget":
            return "budget"
        return f"converged at step {len(self.history) - 1}"

    @property
    def content_loss(self) -> float:
        return self.history[-1]["content"] if self.history else float("nan")

    @property
    def style_loss(self) -> float:
        return self.history[-1]["style"] if self.history else float("nan")


def sign_gradient(learning_rate: float | optax.Schedule) -> optax.GradientTransformation:
    """The paper's update g' = g − ε·sgn(∇L), as an optax chain."""
    return optax.chain(optax.scale_by_sign(), optax.scale_by_learning_rate(learning_rate))


def make_optimizer(name: str, lr: float | None = None, iterations: int | None = None) -> optax.GradientTransformation:
    """``sign`` (the paper's), ``adam`` or ``lbfgs``.

    With ``iterations`` given, the sign step ε follows a cosine decay to 10% of ``lr``: a
    constant ε leaves every pixel oscillating by ±ε at the end (measured in docs/performance.md).
    ``lbfgs`` is L-BFGS as PyTorch's ``optim.LBFGS`` runs it in pastiche: memory 10, step ``lr``
    (1) along the quasi-Newton direction, the first step capped at 1/‖∇L‖, no line search, so one
    forward + backward pass per step, as for the others (docs/performance.md: the zoom line search
    cost ~4 sign steps per step here and looked no better).
    """
    lr = DEFAULT_LR[name] if lr is None else lr
    if name == "sign":
        if iterations is not None:
            return sign_gradient(optax.cosine_decay_schedule(lr, iterations, alpha=0.1))
        return sign_gradient(lr)
    if name == "adam":
        return optax.adam(lr)
    if name == "lbfgs":
        return optax.lbfgs(learning_rate=lr, memory_size=10, linesearch=None)
    raise OptionError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")


@functools.lru_cache(maxsize=32)
def make_step(spec: LossSpec, optimizer_name: str, lr: float | None = None, iterations: int | None = None,
              grid: tiling.TileGrid | None = None) -> tuple[Callable, optax.GradientTransformation]:
    """The Gatys step ``step(image, opt_state, targets, vgg_params) -> (image, opt_state, terms)`` and its
    optimizer (built once per argument set and cached).

    image: float32[1,H,W,3] in [0,1] (donated, as is ``opt_state``); targets: :func:`make_targets`'s;
    terms: :func:`jaxstyle.objective.total`'s, of the image before the update, float32[] on the device.
    ``iterations`` sets the sign step's decay (:func:`make_optimizer`). With a ``grid`` the gradient
    comes from :func:`jaxstyle.methods.gatys.tiling.value_and_grad` (tile by tile, outside jit) and only the update
    is jitted.
    """
    optimizer = make_optimizer(optimizer_name, lr, iterations)
    if grid is not None:
        def update(image, opt_state, grad):
            updates, opt_state = optimizer.update(grad, opt_state, image)
            return jnp.clip(optax.apply_updates(image, updates), 0.0, 1.0), opt_state

        update = jax.jit(update, donate_argnums=(0, 1))

        def tiled_step(image, opt_state, targets, vgg_params):
            terms, grad = tiling.value_and_grad(image, targets, vgg_params, spec, grid)
            image, opt_state = update(image, opt_state, grad)
            return image, opt_state, terms

        return tiled_step, optimizer

    def step(image, opt_state, targets, vgg_params):
        (_, aux), grad = jax.value_and_grad(
            lambda x: objective.loss_terms(x, targets, vgg_params, spec), has_aux=True
        )(image)
        updates, opt_state = optimizer.update(grad, opt_state, image)
        image = jnp.clip(optax.apply_updates(image, updates), 0.0, 1.0)
        return image, opt_state, aux

    return jax.jit(step, donate_argnums=(0, 1)), optimizer


@functools.partial(jax.jit, static_argnames=("spec",))
def _evaluate_whole(image, targets, vgg_params, spec):
    return objective.loss_terms(image, targets, vgg_params, spec)[1]


def evaluate_loss(image: jax.Array, targets: Mapping[str, Any], vgg_params: vgg.Params, spec: LossSpec
                  ) -> dict[str, jax.Array]:
    """The loss terms of float32[1,H,W,3] ``image`` (no gradient; tiled as ``spec.tile`` says): for reports."""
    grid = tiling.tile_grid((image.shape[1], image.shape[2]), spec.tile)
    if grid is not None:
        return tiling.loss_terms(image, targets, vgg_params, spec, grid)
    return _evaluate_whole(image, targets, vgg_params, spec)


def make_targets(
    vgg_params: vgg.Params,
    spec: LossSpec,
    output_shape: tuple[int, int],
    content: np.ndarray | None,
    styles: Sequence[np.ndarray],
    style_blend: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Content responses and style Grams, computed once per run.

    content: float32[H,W,3] in [0,1] at the output size, or None (texture).
    styles: float32[h,w,3] in [0,1], already at their working size. Several styles are
    blended by ``style_blend`` (weights, normalised to sum 1). Images that ``spec.tile`` tiles
    are run tile by tile (:mod:`jaxstyle.methods.gatys.tiling`), with the same results.
    """
    style_layers = spec.style_layers
    positions = objective.generated_positions(spec, output_shape)
    blend = np.ones(len(styles)) if style_blend is None else np.asarray(style_blend, dtype=np.float64)
    blend = blend / blend.sum()
    grams: dict[str, jax.Array] = {}
    for weight, style in zip(blend, styles, strict=True):
        grid = tiling.tile_grid(style.shape[:2], spec.tile)
        if grid is None:
            style_grams = objective.style_grams(vgg_params, style, spec, output_shape)
        else:  # as objective.style_targets: rescaled by M_gen / M_style
            own = objective.generated_positions(spec, style.shape[:2])
            raw = tiling.grams(vgg_params, jnp.asarray(style)[None], grid, style_layers, spec.pooling)
            style_grams = {layer: g * (positions[layer] / float(own[layer])) for layer, g in raw.items()}
        for layer, g in style_grams.items():
            grams[layer] = grams.get(layer, 0.0) + float(weight) * g
    content_target = None
    if content is not None and spec.content_weight:
        image = jnp.asarray(content)[None]
        grid = tiling.tile_grid(content.shape[:2], spec.tile)
        if grid is None:
            layer = spec.content_layer
            content_target = vgg.jit_features(vgg_params, image, (layer,), spec.pooling)[layer]
        else:
            content_target = tiling.responses(vgg_params, image, grid, spec.content_layer, spec.pooling)
    return {"content": content_target, "grams": grams}


def initial_image(init: str, content: np.ndarray | None, shape: tuple[int, int], noise: float,
                  key: jax.Array) -> jax.Array:
    """float32[1,H,W,3] in [0,1]: content + Gaussian noise (the paper's), content, or random."""
    h, w = shape
    if init == "random" or content is None:
        image = jax.random.uniform(key, (1, h, w, 3), jnp.float32, 0.25, 0.75)
        image = image + noise * jax.random.normal(jax.random.fold_in(key, 1), image.shape)
    elif init == "content":
        image = jnp.asarray(content)[None]
    else:
        image = jnp.asarray(content)[None] + noise * jax.random.normal(key, (1, h, w, 3))
    return jnp.clip(image, 0.0, 1.0).astype(jnp.float32)


#: ``callback(step, image, terms)``: see :func:`optimise`.
Callback = Callable[[int, jax.Array, Mapping[str, float]], None]
#: Steps between reads of the loss terms back to the host (each read waits for the device).
READ_EVERY = 10


def optimise(
    image: jax.Array,
    targets: Mapping[str, Any],
    vgg_params: vgg.Params,
    spec: LossSpec,
    iterations: int,
    optimizer: str = "sign",
    lr: float | None = None,
    callback: Callback | None = None,
    tol: float = 0.0,
    window: int = DEFAULT_WINDOW,
    ema: float = 0.0,
    read_every: int = READ_EVERY,
) -> GatysResult:
    """Run up to ``iterations`` jitted steps from ``image`` (float32[1,H,W,3]).

    The run stops early when :func:`converged` says so for ``tol`` and ``window`` (``tol=0``:
    never); ``result.stops`` says which. The test runs on the device inside each step
    (:func:`watch_loss`), and a step after the stop leaves everything as it is, so the host reads
    the terms back only every ``read_every`` steps (and after the first and the last), for the
    history, the callback and to raise :class:`NonFiniteLossError` on a non-finite loss, and the
    result is still the image of the exact step the test fired on. ``ema`` > 0: the result is the
    exponential moving average of the iterates with that decay (started at ``image``), not the
    last iterate. ``callback(step, image, terms)`` is called for each step run (1-based, in order)
    at those reads, with that step's image (a device array, float32[1,H,W,3]) and terms (host
    floats). Images that ``spec.tile`` tiles (:func:`jaxstyle.methods.gatys.tiling.tile_grid`) take tiled steps:
    the same gradient in bounded memory, read back every step when ``tol`` > 0 (a tiled step
    already waits for each tile).
    """
    grid = tiling.tile_grid((image.shape[1], image.shape[2]), spec.tile)
    step = _watched_step(spec, optimizer, lr, iterations, grid, float(tol), int(window), float(ema))
    _, opt = make_step(spec, optimizer, lr, iterations, grid)
    image = jnp.array(image, copy=True)
    # Fresh buffers: optax may alias leaves of its state, and the step donates them.
    state = jax.tree.map(jnp.copy, {"opt_state": opt.init(image), "average": image if ema else None,
                                    "watch": _watch_start(window)})
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    compile_seconds = 0.0
    stop = "budget"
    every = 1 if tol and grid is not None else read_every
    pending: list[tuple[Any, Any, Any]] = []  # (terms, stopped, image) since the last read
    for i in range(1, iterations + 1):
        image, state, terms, stopped = step(image, state, targets, vgg_params)
        pending.append((terms, stopped, image if callback is not None else None))
        if not (i == 1 or i % every == 0 or i == iterations):
            continue
        values = jax.device_get([(t, s) for t, s, _ in pending])
        for j, ((terms_j, stopped), (_, _, image_j)) in enumerate(zip(values, pending, strict=True),
                                                                 start=i - len(pending) + 1):
            terms_j = {k: float(v) for k, v in terms_j.items()}
            if not all(math.isfinite(v) for v in terms_j.values()):
                raise NonFiniteLossError(f"the loss became non-finite at iteration {j} ({terms_j}); "
                                         "try a lower lr", fields=("lr",))
            history.append(terms_j)
            if callback is not None:
                callback(j, image_j, terms_j)
            if stopped:
                stop = f"converged at step {j}"
                break
        pending = []
        if i == 1:
            compile_seconds = time.perf_counter() - start
        if stop != "budget":
            break
    if ema:
        image = state["average"]
    # The terms above were measured before each update; measure the final image too.
    final = {k: float(v) for k, v in evaluate_loss(image, targets, vgg_params, spec).items()}
    history.append(final)
    seconds = time.perf_counter() - start
    return GatysResult(np.asarray(image[0]), history, seconds, compile_seconds, optimizer=optimizer, stops=[stop])


@functools.lru_cache(maxsize=32)
def _watched_step(spec: LossSpec, optimizer: str, lr: float | None, iterations: int,
                  grid: tiling.TileGrid | None, tol: float, window: int, ema: float) -> Callable:
    """:func:`make_step`'s step with the convergence watch and the EMA carried alongside:
    ``(image, state, targets, vgg_params) -> (image, state, terms, stopped)``, state = {"opt_state",
    "average" (float32[1,H,W,3] or None), "watch" (:func:`watch_loss`'s)} (donated). Whole-image
    steps are one jitted function in which a step after the stop changes neither the image nor the
    average (its result is discarded, its terms zeros); tiled steps run on the host and are not gated (:func:`optimise`
    reads them at once)."""
    raw, _ = make_step(spec, optimizer, lr, iterations, grid)

    def advance(image, state, targets, vgg_params):
        image, opt_state, terms = raw(image, state["opt_state"], targets, vgg_params)
        average = None if state["average"] is None else _ema_update(state["average"], image, jnp.float32(ema))
        watch = _watch_jit(state["watch"], terms["total"], tol, window, iterations)
        # ``stopped`` apart from the state too: the next step donates the state's buffers.
        return image, {"opt_state": opt_state, "average": average, "watch": watch}, terms, watch["stopped"]

    if grid is not None:
        return advance

    def gated(image, state, targets, vgg_params):
        # A select, not lax.cond: XLA:CPU ran the VGG step inside a conditional 3.6x slower (600 px:
        # 7.5 s against 2.1 s a step). So a step after the stop is computed and then discarded.
        # Only what the result is made of is held: the optimiser state after the stop is never used
        # (selecting L-BFGS's memory as well raised the peak RSS at 1200x900).
        new_image, new_state, terms, stopped = advance(image, state, targets, vgg_params)
        held = state["watch"]["stopped"]
        if state["average"] is not None:
            new_state = {**new_state, "average": jnp.where(held, state["average"], new_state["average"])}
        terms = jax.tree.map(lambda t: jnp.where(held, jnp.zeros_like(t), t), terms)
        return jnp.where(held, image, new_image), new_state, terms, stopped | held

    return jax.jit(gated, donate_argnums=(1,))


@jax.jit
def _ema_update(average: jax.Array, image: jax.Array, decay: jax.Array) -> jax.Array:
    return decay * average + (1.0 - decay) * image


def _watch_start(window: int) -> dict[str, jax.Array]:
    """The state of :func:`watch_loss` before the first step."""
    return {"totals": jnp.zeros((window + 1,), jnp.float32), "count": jnp.int32(0), "stopped": jnp.bool_(False)}


def watch_loss(watch: Mapping[str, jax.Array], total: jax.Array, tol: float, window: int,
               budget: int) -> dict[str, jax.Array]:
    """The convergence stop, as one pure update per step (traceable; :func:`optimise` runs it on the
    device): record ``total`` (float32[], step ``count`` + 1's loss) in a ring of the last
    ``window`` + 1 totals; ``stopped`` once the loss fell by less than ``tol`` of its present value
    over the last ``window`` steps, (L[i−window] − L[i]) < tol·|L[i]|, before step ``budget`` (the
    last, which ends the run anyway). A loss that rises over the window counts as converged (the
    step size dominates the progress). ``tol`` 0: never."""
    ring = window + 1
    totals = watch["totals"].at[watch["count"] % ring].set(total)
    count = watch["count"] + 1
    before = totals[count % ring]  # L[count - window]: the slot written ``window`` steps ago
    flat = (before - total) < tol * jnp.abs(total)
    stopped = (tol > 0) & (count > window) & (count < budget) & flat
    return {"totals": totals, "count": count, "stopped": watch["stopped"] | stopped}


_watch_jit = jax.jit(watch_loss, static_argnames=("tol", "window", "budget"))


def converged(totals: Sequence[float], tol: float, window: int) -> bool:
    """True once the loss fell by less than ``tol`` of its present value over the last ``window``
    steps, judged at the last of ``totals`` (the losses of steps 1, 2, ...): :func:`watch_loss`,
    the rule :func:`optimise` runs, over the sequence. False with fewer than window+1 values."""
    watch = _watch_start(window)
    for total in totals:
        watch = _watch_jit({**watch, "stopped": jnp.bool_(False)}, jnp.float32(total), float(tol), int(window),
                           len(totals) + 1)
    return bool(watch["stopped"])


def check_shape(shape: tuple[int, int], what: str = "output", fields: tuple[str, ...] = ("size",),
                fix: str | None = None) -> None:
    """Refuse an (H, W) working size with a side below :data:`MIN_SIDE`; the message says what to change:
    ``fix``, by default "raise" and the first of ``fields`` (the option fields it names)."""
    if min(shape) < MIN_SIDE:
        raise OptionError(f"the {what} would be {shape[1]}x{shape[0]} px; both sides must be at least {MIN_SIDE} "
                          f"({fix or 'raise ' + fields[0]})", fields=fields)


def _working_images(content: np.ndarray, style_images: Sequence[np.ndarray], opts: GatysOptions
                    ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Content at ``opts.size`` and styles at ``opts.style_size`` (default: the content's pixel count),
    all float32[H,W,3]; sizes are checked (``MIN_SIDE``, ``opts.max_pixels``) before resizing."""
    limit = opts.max_pixels
    if opts.size is not None:
        content = imagelib.fit_long_side(content, opts.size, max_pixels=limit)
    h, w = content.shape[:2]
    check_shape((h, w))
    return content, _working_styles(style_images, (h, w), opts)


def _working_styles(style_images: Sequence[np.ndarray], shape: tuple[int, int], opts: GatysOptions
                    ) -> list[np.ndarray]:
    """Styles at ``opts.style_size`` (long side), else at the output's pixel count, times
    ``opts.style_scale`` (larger: bigger brush strokes, as the VGG filters see them smaller)."""
    limit = opts.max_pixels
    if opts.style_size is not None:
        size = max(1, round(opts.style_size * opts.style_scale))
        return [imagelib.fit_long_side(s, size, max_pixels=limit) for s in style_images]
    pixels = max(1, round(shape[0] * shape[1] * opts.style_scale**2))
    return [imagelib.fit_pixels(s, pixels, max_pixels=limit) for s in style_images]


def scale_plan(shape: tuple[int, int], opts: GatysOptions) -> list[tuple[tuple[int, int], int]]:
    """[((H, W), iterations)] per scale, coarsest first, ending at ``shape``.

    Each coarser scale divides both sides by ``opts.scale_step`` (√2 by default, 2 in the paper
    preset). ``opts.scales`` fixes their number; by default the long side is divided while it stays
    >= ``opts.min_size``. Iterations (budgets): ``opts.scale_iterations`` if given, else
    ``opts.iterations`` at the coarsest scale and 1/``scale_step`` as many at each finer one (the
    coarse scales set the style, the finer ones add detail at scale_step² the cost per iteration).
    """
    h, w = shape
    step = opts.scale_step
    count = opts.scales or (len(opts.scale_iterations) if opts.scale_iterations is not None else None)
    if count is None:
        count = 1
        while max(h, w) / step**count >= opts.min_size * (1 - 1e-9) and count < MAX_SCALES:
            count += 1
    shapes = [(max(1, round(h / step**k)), max(1, round(w / step**k))) for k in reversed(range(count))]
    for s in shapes:
        check_shape(s, "coarsest scale", ("size", "scales"), "raise size or lower scales")
    if opts.scale_iterations is not None:
        if len(opts.scale_iterations) != count:
            raise OptionError(f"scale_iterations has {len(opts.scale_iterations)} values for {count} scales",
                              fields=("scale_iterations",))
        its = [int(i) for i in opts.scale_iterations]
    else:
        its = [max(1, int(opts.iterations / step**k + 1e-9)) for k in range(count)]
    return list(zip(shapes, its, strict=True))


def scale_spec(spec: LossSpec, shape: tuple[int, int], full: tuple[int, int]) -> LossSpec:
    """The loss at a coarser ``shape`` made to weigh its terms as the loss at ``full`` size does.

    The content loss sums over feature positions, so at a scale with r times the full size's
    pixels it is about r times smaller, while the style loss (normalised by 1/M²) is not; left
    alone, a coarse scale would optimise a 1/r times stronger style than the requested size and
    hand the finer scales an image they must pull back. Scaling the content weight by 1/r keeps one
    objective at every scale.
    """
    ratio = (shape[0] * shape[1]) / (full[0] * full[1])
    if ratio >= 1.0:
        return spec
    return dataclasses.replace(spec, content_weight=spec.content_weight / ratio)


def resolve_optimizer(name: str, scales: int) -> str:
    """``auto`` -> ``sign`` for a one-scale plan, ``adam`` for coarse to fine; other names as given."""
    if name != AUTO:
        return name
    return "sign" if scales == 1 else "adam"


def upsample_result(image: np.ndarray, content: np.ndarray, coarse_content: np.ndarray,
                    add_detail: bool = True) -> np.ndarray:
    """The next scale's start: float32[h,w,3] ``image`` resized to ``content``'s float32[H,W,3] size.

    With ``add_detail`` it also gets the content's detail that the coarser scale could not hold
    (``content`` minus ``coarse_content`` resized up), so the finer scale starts sharp instead of
    blurred. Measured at 256 px (tubingen + starry_night, sign): 10 + 50 iterations end 1% below
    60 single-scale iterations with it, 3-8% above without it. Values stay in [0, 1].
    """
    h, w = content.shape[:2]
    up = imagelib.resize(image, h, w)
    if add_detail:
        up = up + (content - imagelib.resize(coarse_content, h, w))
    return np.clip(up, 0.0, 1.0).astype(np.float32)


def gatys(
    content: Any,
    style: Any,
    *,
    vgg_params: vgg.Params | None = None,
    style_blend: Sequence[float] | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> GatysResult:
    """Stylise ``content`` with ``style`` by back-propagation (Gatys et al.).

    content, style: PIL images or arrays (uint8[H,W,3] or float32[H,W,3] in [0,1]); ``style``
    may be a list to blend several (``style_blend`` weights). Options: see :class:`GatysOptions`.
    Large outputs run coarse to fine (:func:`scale_plan`): each scale starts from the previous
    result, upsampled, with the content and style images resized by the same factor.
    Returns a :class:`GatysResult`; ``result.image`` is float32[H,W,3] in [0,1] with the long
    side ``size`` (None keeps the content's size). ``callback(step, image, terms)`` counts steps
    over all scales.
    """
    opts = make_options(**options)
    opts.validate()
    styles = style if isinstance(style, (list, tuple)) else [style]
    content_img, style_imgs = _working_images(
        imagelib.to_float_image(content), [imagelib.to_float_image(s) for s in styles], opts
    )
    for style_img in style_imgs:
        check_shape(style_img.shape[:2], "style image")
    color.check_weights(len(style_imgs), style_blend)
    photo = content_img
    if opts.preserve_color:
        # Luminance-only transfer (Gatys et al. 2016): optimise a grey image against the style's
        # luminance matched to the photo's, then put the photo's chroma back.
        content_img = color.luminance(photo)
        style_imgs = [color.match_luminance(s, photo) for s in style_imgs]
    result = _coarse_to_fine(content_img, content_img.shape[:2], style_imgs, opts, vgg_params, style_blend,
                             callback)
    if opts.preserve_color:
        result.image = color.keep_colors(result.image, photo)
    return result


def _coarse_to_fine(content: np.ndarray | None, full: tuple[int, int], style_imgs: Sequence[np.ndarray],
                    opts: GatysOptions, vgg_params: vgg.Params | None, style_blend: Sequence[float] | None,
                    callback: Callback | None) -> GatysResult:
    """Run :func:`scale_plan` for an output of (H, W) ``full``: float32[H,W,3] ``content`` (None: a
    texture, no content term, random start), styles at their full-scale working size."""
    params = vgg_weights.on_device(vgg_params)
    spec = opts.loss_spec(with_content=content is not None)
    plan = scale_plan(full, opts)
    optimizer = resolve_optimizer(opts.optimizer, len(plan))
    key = jax.random.key(opts.seed)
    image, done, runs, previous_content = None, 0, [], None
    for shape, iterations in plan:
        factor = shape[0] / full[0]
        content_s = None if content is None else content if shape == full else imagelib.resize(content, *shape)
        styles_s = style_imgs if shape == full else [
            imagelib.resize(s, max(1, round(s.shape[0] * factor)), max(1, round(s.shape[1] * factor)))
            for s in style_imgs]
        for s in styles_s:
            check_shape(s.shape[:2], "style image at the coarsest scale", ("style_size", "scales"),
                        "raise style_size or lower scales")
        spec_s = scale_spec(spec, shape, full)
        targets = make_targets(params, spec_s, shape, content_s, styles_s, style_blend)
        if image is None:
            image = initial_image(opts.init, content_s, shape, opts.noise, key)
        elif content_s is None:
            image = jnp.asarray(np.clip(imagelib.resize(np.asarray(image[0]), *shape), 0.0, 1.0))[None]
        else:
            assert previous_content is not None  # set with the first scale's image
            image = jnp.asarray(upsample_result(np.asarray(image[0]), content_s, previous_content,
                                                opts.init != "random"))[None]
        previous_content = content_s

        def on_step(step, img, terms, offset=done):
            if callback is not None:
                callback(offset + step, img, terms)

        run = optimise(image, targets, params, spec_s, iterations, optimizer, opts.lr, on_step,
                       tol=opts.tol, window=opts.window, ema=opts.ema)
        runs.append(run)
        image = jnp.asarray(run.image)[None]
        done += len(run.history) - 1
    return GatysResult(runs[-1].image, [h for run in runs for h in run.history[:-1]] + runs[-1].history[-1:],
                       sum(run.seconds for run in runs), sum(run.compile_seconds for run in runs),
                       [[*shape, its] for shape, its in plan], optimizer, [run.stops[0] for run in runs])


def texture(
    style: Any,
    size: int | tuple[int, int] = 256,
    *,
    vgg_params: vgg.Params | None = None,
    style_blend: Sequence[float] | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> GatysResult:
    """Texture synthesis: the same optimisation (coarse to fine, as :func:`gatys`) from noise with
    no content term; each finer scale starts from the last result resized up.

    style: one image or a list blended by ``style_blend``; size: the output's long side (aspect
    of the first style kept) or (height, width).
    """
    options.setdefault("init", "random")
    options.setdefault("size", None)
    opts = make_options(**options)
    opts.validate()
    if opts.preserve_color:
        raise OptionError("preserve_color needs a content photo to take the colours from (not a texture)",
                          fields=("preserve_color",))
    style_list = [imagelib.to_float_image(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    color.check_weights(len(style_list), style_blend)
    limit = opts.max_pixels
    if isinstance(size, int):
        if size <= 0:
            raise OptionError(f"texture size must be positive, got {size}")
        shape = imagelib.fit_long_side(style_list[0], size, max_pixels=limit).shape[:2]
    else:
        shape = (int(size[0]), int(size[1]))
        if min(shape) <= 0:
            raise OptionError(f"texture size must be positive, got {size}")
        imagelib.check_pixels(shape[1], shape[0], limit, "the texture")
    check_shape(shape)
    style_imgs = _working_styles(style_list, shape, opts)
    for style_img in style_imgs:
        check_shape(style_img.shape[:2], "style image")
    return _coarse_to_fine(None, shape, style_imgs, opts, vgg_params, style_blend, callback)
