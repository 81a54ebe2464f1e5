"""One scale of the Gatys optimisation: the loss targets, the start image, and the loop that runs
the steps with the convergence watch and the EMA on the device (read back every few steps)."""

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

from jaxstyle import objective
from jaxstyle.errors import NonFiniteLossError
from jaxstyle.methods.gatys import tiling
from jaxstyle.methods.gatys.optimizers import make_step
from jaxstyle.methods.gatys.presets import DEFAULT_WINDOW
from jaxstyle.nn import vgg
from jaxstyle.objective import LossSpec


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
    best = {"image": image, "total": jnp.float32(jnp.inf)} if optimizer == "lbfgs" else None
    state = jax.tree.map(jnp.copy, {"opt_state": opt.init(image), "average": image if ema else None,
                                    "watch": _watch_start(window), "best": best})
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
    """:func:`make_step`'s step with the convergence watch, the EMA and the L-BFGS guard carried alongside:
    ``(image, state, targets, vgg_params) -> (image, state, terms, stopped)``, state = {"opt_state",
    "average" (float32[1,H,W,3] or None), "watch" (:func:`watch_loss`'s), "best" (L-BFGS only, else None:
    :func:`restart_if_diverged`'s)} (donated). Whole-image
    steps are one jitted function in which a step after the stop changes neither the image nor the
    average (its result is discarded, its terms zeros); tiled steps run on the host and are not gated (:func:`optimise`
    reads them at once)."""
    raw, opt = make_step(spec, optimizer, lr, iterations, grid)
    restart = jax.jit(functools.partial(restart_if_diverged, opt.init))

    def advance(image, state, targets, vgg_params):
        best = state["best"]
        # A tiled step donates its image; only the L-BFGS guard needs it after the step.
        before = jnp.copy(image) if best is not None and grid is not None else image
        image, opt_state, terms = raw(image, state["opt_state"], targets, vgg_params)
        if best is not None:
            image, opt_state, best = restart(before, image, opt_state, best, terms["total"])
        average = None if state["average"] is None else _ema_update(state["average"], image, jnp.float32(ema))
        watch = _watch_jit(state["watch"], terms["total"], tol, window, iterations)
        # ``stopped`` apart from the state too: the next step donates the state's buffers.
        return image, {"opt_state": opt_state, "average": average, "watch": watch, "best": best}, terms, \
            watch["stopped"]

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


#: L-BFGS restarts from its best image when a step's loss exceeds this many times the best so far.
DIVERGED = 4.0


def restart_if_diverged(init: Callable, image: jax.Array, new_image: jax.Array, opt_state: Any,
                        best: Mapping[str, jax.Array], total: jax.Array) -> tuple[jax.Array, Any, dict]:
    """The guard of an L-BFGS step without a line search (traceable): ``total`` (float32[]) is the loss
    of ``image`` (float32[1,H,W,3], before the step), ``new_image`` and ``opt_state`` the step's result;
    ``best`` = {"image", "total"} the lowest-loss image so far. When ``total`` exceeds :data:`DIVERGED`
    times the best, the step is undone: the next image is the best one and the optimiser's memory is
    ``init``'s fresh state, so the next step is a short gradient step and the curvature is learned
    again. Returns (next image, optimiser state, updated best).

    Without it a blurred start could throw the quasi-Newton steps off for good: tubingen at 400 px on
    the sqrt2 ladder went from a loss of 2.2e12 to 4.8e13 in one step at the last scale and ended in
    coloured noise (2026-12-05). At the default two scales the same photo's first steps climbed from
    3.3e12 to 6.3e13 and the run ended with swirls over the river (layout 0.831, with the guard 0.968)."""
    better = total < best["total"]
    best = {"image": jnp.where(better, image, best["image"]), "total": jnp.minimum(total, best["total"])}
    diverged = total > DIVERGED * best["total"]
    fresh = init(best["image"])
    opt_state = jax.tree.map(lambda f, o: jnp.where(diverged, f, o), fresh, opt_state)
    return jnp.where(diverged, best["image"], new_image), opt_state, best


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
