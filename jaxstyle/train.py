"""Training a transform net for one style: its config, params, losses and optimiser, as a
:class:`jaxstyle.trainer.Mode`; :func:`run` sets the inputs up and hands the loop to
:func:`jaxstyle.trainer.fit` (sharded jitted step, checkpoints, metrics, samples).

VGG params and style Grams are jit arguments (``frozen``), not baked-in constants.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from jaxstyle import atomic, color, objective, trainer, vgg_weights
from jaxstyle.errors import JaxstyleError, OptionError
from jaxstyle.machine import machine_info
from jaxstyle.methods.arbitrary import vgg_decoders
from jaxstyle.methods.transform import net as transform
from jaxstyle.nn import vgg
from jaxstyle.options import option

# 40k steps is the default (2 COCO epochs); 10 million is 250 times that and weeks on any machine, so
# more is a typo.
MAX_STEPS = 10_000_000


#: Style-layer weights that make each layer's E_l weigh the same for a photo against a painting (the median
#: over the five shared paintings of 128 px photo crops' E_l, each scaled so that the sum at the photo equals
#: the paper's equal weights'); docs/results.md, "Why the transform nets striped".
BALANCED_STYLE_LAYER_WEIGHTS: tuple[float, ...] = (112.0, 2.12, 2.03, 0.0416, 3385.0)

#: ``teacher="microast"``: the arbitrary-style model MicroAST, given the run's style painting.
MICROAST_TEACHER = "microast"
#: The teacher phase's losses. A warmup defaults to ``l1+vgg``, measured 2026-12-04 on the 2-core CPU box
#: (shared, load ~8): a width-32 net fitted to MicroAST's scream (painting at 512 px) on 128 px crops of
#: the 500 BSDS photos, batch 4, Adam 1e-3, 250 steps each, then run on four 512 px content photos
#: (golden_gate, tubingen, chicago, stata) against MicroAST's own output there:
#:   pixel L1:             L1 0.086 0.073 0.081 0.056, PSNR 18.7 19.7 18.9 21.9 dB, relu1_1/relu2_1 0.58 0.53 0.57 0.47
#:   L1 + relu1_1/relu2_1: L1 0.065 0.064 0.061 0.085, PSNR 20.8 20.8 20.9 19.4 dB, relu1_1/relu2_1 0.49 0.49 0.49 0.45
#: (the photo itself: L1 0.25 0.17 0.31 0.20, relu 0.98 0.95 1.19 0.98; relu: mean |difference| over the mean
#: response to MicroAST's output). The feature term is closer on 3 of 4 photos in pixels and on all 4 in
#: features, and its sky keeps some of the teacher's brush texture where pixel L1 is a smooth blur; it costs
#: 1.47x per step (3.26 against 2.22 s). Both nets left one blob in the golden_gate sky at 250 steps.
#: Distillation (``teacher_steps`` 0) keeps MSE, as the shipped --fast nets were trained.
TEACHER_LOSSES = ("auto", "mse", "l1", "l1+vgg")
#: The shallow VGG19 layers (their ReLU responses, relu1_1 and relu2_1) of the ``l1+vgg`` teacher loss.
TEACHER_FEATURE_LAYERS = ("conv1_1", "conv2_1")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters. Adam 1e-3 and batch 4 follow Johnson et al.; the loss is the paper's (content
    conv4_2, Gram style on conv1_1..conv5_1, β=1e3) with the recipe in docs/results.md (section "Why the
    transform nets striped"): the loss sees the clipped output, the style layers are balanced, α=3, a TV
    term strong enough to matter (1e7), a tonal-layout term and a range penalty, on 128 px crops. The
    shipped nets add ``warmup_steps=100``. ``steps`` stays Johnson's 40k (2 COCO epochs) for a GPU; the
    shipped CPU nets saw 500."""

    style: str = "starry_night"
    data: str = ""
    steps: int = option(40_000, f"total steps, at most {MAX_STEPS:,}", kind="positive_int")
    batch_size: int = option(4, "images per step per process", kind="positive_int")
    image_size: int = option(128, "random square crops of this size (the loss weights below are tuned for 128: "
                             "content, TV and layout grow with the pixel count, the style term does not)",
                             kind="positive_int")
    style_size: int = option(512, "long side of the style image for its Grams", kind="positive_int")
    content_weight: float = option(3.0, "alpha", kind="float")
    style_weight: float = option(1e3, "beta", kind="float")
    tv_weight: float = option(1e7, "total variation weight", kind="float")
    style_layer_weights: tuple[float, ...] = option(
        BALANCED_STYLE_LAYER_WEIGHTS, "weights of the style layers conv1_1,conv2_1,conv3_1,conv4_1,conv5_1 "
        "(default: each layer weighs the same at the photo; the paper's 0.2 each leaves conv4_1 95%% of the loss)",
        kind="floats", metavar="W1,...,W5", show_default=False)
    content_layer: str = option(objective.CONTENT_LAYER, "the VGG layer whose responses the content loss compares",
                                choices=vgg.VGG_LAYERS, metavar="LAYER")
    layout_weight: float = option(3e8, "weight of the tonal-layout term: squared error between the output's and the "
                                  "photo's luminance, both box-filtered by 4 (it keeps light and dark where the photo "
                                  "has them, which VGG's content layers do not)", kind="float")
    range_weight: float = option(1e8, "weight of the penalty on output values outside [0,1] (the loss itself sees "
                                 "the clipped output, as inference returns it)", kind="float")
    lr: float = option(1e-3, "Adam learning rate", kind="float")
    warmup_steps: int = option(0, "first train this many steps toward the identity (output = input), as in the "
                               "paper", kind="int", show_default=False)
    seed: int = option(0, "seed for init and data order", kind="int")
    width: int = option(32, "channels of the first conv; 16 makes a faster, lighter net", kind="positive_int")
    residual_blocks: int = 5
    pooling: str = "avg"
    dtype: str = option("float32", "compute dtype of the transform net", choices=("float32", "bfloat16"))
    init_from: str = option("", "start from a trained model (file or shipped name) instead of random init: "
                            "fine-tuning to a new style takes far fewer steps", metavar="MODEL", show_default=False)
    # a teacher: a model that stylises the batch; the net first learns to reproduce its output
    teacher: str = option("", "a teacher that stylises each training batch: a transform net (file or shipped name), "
                          "or 'microast' (the arbitrary-style model MicroAST with this run's --style painting at "
                          "--style-size). The net learns to reproduce its output for --teacher-steps steps, then the "
                          "perceptual loss takes over. With --teacher-steps 0 every step is distillation (pixel MSE to "
                          "the teacher's output: no VGG, fast steps); a transform net's style is the default --style",
                          metavar="MODEL", show_default=False)
    teacher_steps: int = option(0, "with --teacher: steps fitted to the teacher's output before the perceptual loss "
                                "takes over (0: every step, distillation)", kind="int", show_default=False)
    teacher_loss: str = option("auto", "distance to the teacher's output: mse (pixels), l1 (pixels), or l1+vgg "
                               "(pixel L1 plus the L1 of VGG19 relu1_1 and relu2_1, each relative to the "
                               "teacher's); auto: mse for distillation (--teacher-steps 0), l1+vgg for a warmup",
                               choices=("auto", "mse", "l1", "l1+vgg"))

    def __post_init__(self) -> None:
        # a list from the command line or a JSON file becomes a tuple: the config is hashable (it keys the step)
        object.__setattr__(self, "style_layer_weights", tuple(self.style_layer_weights))

    def validate(self) -> None:
        """Raise :class:`OptionError` (naming the field) for a value training cannot run with."""
        for name in ("steps", "batch_size", "image_size", "style_size", "width", "residual_blocks"):
            if getattr(self, name) <= 0:
                raise OptionError(f"{name} must be positive, got {getattr(self, name)}", fields=(name,))
        if self.steps > MAX_STEPS:
            raise OptionError(f"steps must be at most {MAX_STEPS:,}, got {self.steps:,}", fields=("steps",))
        if self.image_size < vgg.MIN_SIDE:
            raise OptionError(f"image_size must be at least {vgg.MIN_SIDE} (VGG pools 4 times), got "
                              f"{self.image_size}", fields=("image_size",))
        if self.warmup_steps < 0:
            raise OptionError(f"warmup_steps must be >= 0, got {self.warmup_steps}", fields=("warmup_steps",))
        if not self.lr > 0:
            raise OptionError(f"lr must be positive, got {self.lr}", fields=("lr",))
        if len(self.style_layer_weights) != len(objective.STYLE_LAYERS) or not all(
                w >= 0 and math.isfinite(w) for w in self.style_layer_weights):
            raise OptionError(f"style_layer_weights must be {len(objective.STYLE_LAYERS)} finite numbers >= 0, got "
                              f"{list(self.style_layer_weights)}", fields=("style_layer_weights",))
        for name in ("content_weight", "style_weight", "tv_weight", "layout_weight", "range_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise OptionError(f"{name} must be a finite number >= 0, got {value}", fields=(name,))
        if self.dtype not in ("float32", "bfloat16"):
            raise OptionError(f"dtype must be float32 or bfloat16, got {self.dtype}", fields=("dtype",))
        if self.teacher_loss not in TEACHER_LOSSES:
            raise OptionError(f"teacher_loss must be one of {', '.join(TEACHER_LOSSES)}, got {self.teacher_loss!r}",
                              fields=("teacher_loss",))
        if self.teacher_steps < 0:
            raise OptionError(f"teacher_steps must be >= 0, got {self.teacher_steps}", fields=("teacher_steps",))
        if not self.teacher:
            for name, default in (("teacher_steps", 0), ("teacher_loss", "auto")):
                if getattr(self, name) != default:
                    raise OptionError(f"{name} needs a teacher (set teacher to a model or 'microast')",
                                      fields=(name, "teacher"))
        if self.teacher and self.warmup_steps:
            raise OptionError("warmup_steps (toward the identity) does not apply with teacher: the teacher phase is "
                              "the warmup (set teacher_steps)", fields=("warmup_steps", "teacher"))

    def teacher_kind(self) -> str:
        """``""`` (no teacher), ``"microast"`` or ``"transform"`` (a transform net's file or shipped name)."""
        if not self.teacher:
            return ""
        return "microast" if self.teacher == MICROAST_TEACHER else "transform"

    def perceptual_steps(self) -> int:
        """How many of ``steps`` train on the perceptual loss (all but the teacher's; 0 for distillation)."""
        if not self.teacher:
            return self.steps
        return max(self.steps - self.teacher_steps, 0) if self.teacher_steps else 0

    def resolved_teacher_loss(self) -> str:
        """``teacher_loss`` with ``auto`` resolved: mse for distillation (``teacher_steps`` 0, as the --fast nets
        were trained), l1+vgg for a teacher warmup (measured: :data:`TEACHER_LOSSES`). It depends on
        ``teacher_steps`` alone, not on ``steps``: a run resumed with more steps keeps its teacher loss."""
        if self.teacher_loss != "auto":
            return self.teacher_loss
        return "l1+vgg" if self.teacher_steps else "mse"

    def loss_spec(self) -> objective.LossSpec:
        """The perceptual loss of the net's output: the paper's layers, this config's weights, never tiled
        (training crops are small)."""
        layer_weights = tuple(zip(objective.STYLE_LAYERS, map(float, self.style_layer_weights), strict=True))
        return objective.LossSpec(content_weight=float(self.content_weight), style_weight=float(self.style_weight),
                                  tv_weight=float(self.tv_weight), style_layer_weights=layer_weights,
                                  content_layer=self.content_layer, pooling=self.pooling, tile=0)

    def model(self) -> transform.TransformNet:
        return transform.TransformNet(self.width, self.residual_blocks, dtype=jnp.dtype(self.dtype))


# -- state and step --------------------------------------------------------------------------------


def _param_role(path: tuple, _leaf: Any) -> str:
    """``frozen`` for biases that a later instance norm cancels exactly: the bias of every conv but
    the last, and the residual blocks' closing norm2 bias (a constant shift of the residual stream,
    removed by the next norm). Their true gradient is zero, and Adam would turn float noise in it
    into ±lr steps (which also made data-parallel runs drift apart)."""
    names = [getattr(k, "key", str(k)) for k in path]
    if names[-1] != "bias":
        return "adam"
    cancelled = ("conv" in names and names[1] != "out") or "norm2" in names
    return "frozen" if cancelled else "adam"


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Adam on every parameter that matters (see :func:`_param_role`). The same object for the same
    hyper-parameters, so that it keys the compiled step (:func:`jaxstyle.trainer.compiled_step`)."""
    return _adam(float(config.lr))


@functools.lru_cache(maxsize=8)
def _adam(lr: float) -> optax.GradientTransformation:
    return optax.multi_transform(
        {"adam": optax.adam(lr), "frozen": optax.set_to_zero()},
        lambda params: jax.tree_util.tree_map_with_path(_param_role, params),
    )


def init_state(config: TrainConfig, key: jax.Array) -> dict[str, Any]:
    """``{"params", "opt_state", "step": int32[]}`` for a fresh run (see :func:`init_params`)."""
    return mode(config).init_state(key)


def init_params(config: TrainConfig, key: jax.Array) -> Any:
    """A transform net's params for a fresh run: random, ``init_from``'s, or with a transform-net ``teacher``
    the teacher's narrowed to ``config.width`` (when it is as wide, with the same blocks)."""
    if config.init_from:
        # Fine-tuning: start from a trained model (another style's converges in far fewer steps).
        params = jax.tree.map(jnp.asarray, transform.load_transform(config.init_from))
        arch = transform.architecture(params)
        if (arch["width"], arch["residual_blocks"]) != (config.width, config.residual_blocks):
            raise OptionError(f"init_from {config.init_from} has width {arch['width']} and "
                              f"{arch['residual_blocks']} residual blocks; this run wants {config.width} and "
                              f"{config.residual_blocks}", fields=("init_from",))
    else:
        teacher = transform.load_transform(config.teacher) if config.teacher_kind() == "transform" else None
        if teacher is not None and _narrows_to(teacher, config):
            # Distillation: the student starts as the teacher cut down to its width (transform.narrow),
            # which converges several times faster than a random init (docs/performance.md, "--fast").
            params = jax.tree.map(jnp.asarray, transform.narrow(teacher, config.width))
        else:
            # One compiled init instead of ~140 tiny op-by-op compilations (about 10 s on a CPU).
            params = jax.jit(transform.init_params, static_argnums=(1, 2))(key, config.width, config.residual_blocks)
    return params


def _narrows_to(teacher: Any, config: TrainConfig) -> bool:
    """Whether the teacher can be cut down to the student: as wide or wider, the same residual blocks."""
    arch = transform.architecture(teacher)
    return arch["residual_blocks"] == config.residual_blocks and arch["width"] >= config.width


def perceptual_loss(
    params: Any, batch: jax.Array, frozen: Mapping[str, Any], config: TrainConfig
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """α·L_content + β·L_style + γ·TV of the net's output, per image and batch-averaged.

    batch: float32[N,H,W,3] in [0,1]; frozen: ``{"vgg": params, "grams": {layer: float32[C,C]}}``.
    """
    return output_loss(_forward(config, params, batch), batch, frozen, config)


def output_loss(
    out: jax.Array, batch: jax.Array, frozen: Mapping[str, Any], config: TrainConfig
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The perceptual loss (:func:`jaxstyle.objective.loss_terms` with ``config.loss_spec()``) of the net's
    output ``out`` for input ``batch`` (both float32[N,H,W,3]): the content target is the input's responses.

    The loss sees ``clip(out, 0, 1)``, the picture inference returns, with a straight-through gradient:
    the clip passes the gradient on unchanged, so a clipped value the loss wants back inside [0,1] still
    gets it (with the plain clip's zero gradient, clipped channels stayed clipped and grew magenta blobs
    on white, docs/results.md). ``range_weight`` times ``range`` (the squared part of ``out`` outside
    [0,1], summed per image like TV, batch mean) keeps the values the loss pushes out from drifting."""
    spec = config.loss_spec()
    target = None
    if spec.content_weight:
        target = vgg.features(frozen["vgg"], batch, (spec.content_layer,), spec.pooling)[spec.content_layer]
        target = jax.lax.stop_gradient(target)
    shown = out + jax.lax.stop_gradient(jnp.clip(out, 0.0, 1.0) - out)  # clip, straight-through gradient
    total, terms = objective.loss_terms(shown, {"content": target, "grams": frozen["grams"]}, frozen["vgg"], spec)
    outside = jnp.mean(jnp.sum(jnp.square(out - shown), axis=(1, 2, 3)))
    layout = layout_error(shown, batch) if config.layout_weight else jnp.float32(0.0)
    total = total + config.range_weight * outside + config.layout_weight * layout
    return total, {"loss": total, "content": terms["content"], "style": terms["style"], "tv": terms["tv"],
                   "range": outside, "layout": layout}


LAYOUT_BOX = 4


def layout_error(out: jax.Array, photo: jax.Array) -> jax.Array:
    """Σ per image (batch mean) of the squared difference of the BT.601 luminance of ``out`` and ``photo``
    (float32[N,H,W,3] in [0,1]), each box-filtered by :data:`LAYOUT_BOX` (a ragged edge is dropped)."""
    luma = jnp.asarray(color.LUMA_WEIGHTS)
    n, h, w, _ = out.shape
    hb, wb = h // LAYOUT_BOX, w // LAYOUT_BOX

    def low(images: jax.Array) -> jax.Array:
        y = (images[:, : hb * LAYOUT_BOX, : wb * LAYOUT_BOX] @ luma).reshape(n, hb, LAYOUT_BOX, wb, LAYOUT_BOX)
        return y.mean(axis=(2, 4))

    return jnp.mean(jnp.sum(jnp.square(low(out) - low(photo)), axis=(1, 2)))


def _forward(config: TrainConfig, params: Any, batch: jax.Array) -> jax.Array:
    """The student net's output float32[N,H,W,3] (not clipped: the losses pull it into range)."""
    return config.model().apply(params, batch)  # type: ignore[return-value]


def identity_loss(params: Any, batch: jax.Array, frozen: Mapping[str, Any], config: TrainConfig):
    """Warmup (the paper's): mean squared pixel error between output and input."""
    del frozen
    out = _forward(config, params, batch)
    pixel = jnp.mean(jnp.square(out - batch))
    return pixel, {"loss": pixel, "pixel": pixel}


# -- the teacher -------------------------------------------------------------------------------------

#: ``apply(teacher_params, batch float32[N,H,W,3] in [0,1]) -> float32[N,H,W,3] in [0,1]``: a teacher's
#: stylisation; pure and jittable (it runs inside the train step), a module-level function (hashable).
TeacherApply = Callable[[Any, jax.Array], jax.Array]


def _transform_teacher(params: Any, batch: jax.Array) -> jax.Array:
    """A transform net of any width (read off its shapes), clipped to [0,1] as at inference."""
    net = transform.TransformNet(**transform.architecture(params))  # type: ignore[arg-type]
    return jnp.clip(net.apply(params, batch), 0.0, 1.0)  # type: ignore[arg-type]


def _microast_teacher(params: Any, batch: jax.Array) -> jax.Array:
    """MicroAST with a fixed painting: ``params = {"model": MicroAST params, "code": the painting's style code}``;
    sides padded to multiples of 4 and cropped back, clipped to [0,1] as the stylizer does."""
    from jaxstyle.methods.arbitrary import microast
    from jaxstyle.nn import layers

    padded, (h, w) = layers.pad_to_multiple(batch, microast.MULTIPLE)
    out = microast.forward(params["model"], padded, params["code"])
    return jnp.clip(out[:, :h, :w], 0.0, 1.0)


_TEACHER_APPLY: dict[str, TeacherApply] = {"transform": _transform_teacher, "microast": _microast_teacher}


@dataclasses.dataclass(frozen=True, eq=False)
class Teacher:
    """A model that stylises the training batch, built once from the config (:func:`make_teacher`).

    ``teacher(batch)`` = ``apply(params, batch)``: float32[N,H,W,3] in [0,1] -> the same shape, in [0,1].
    The train step calls ``apply`` with ``params`` from its frozen inputs (``frozen["teacher"]``), so the
    teacher runs sharded with the batch. ``description``: what the exported metadata names (a shipped
    name, a file's name, or "microast with <painting>"; never a path); ``sha256``: the model file's, if any.
    """

    apply: TeacherApply
    params: Any
    description: str
    sha256: str | None = None

    def __call__(self, batch: jax.Array) -> jax.Array:
        return self.apply(self.params, batch)


def make_teacher(config: TrainConfig, style_image: np.ndarray | None = None) -> Teacher | None:
    """The config's teacher (None without one). A transform net is loaded from its file or shipped name;
    MicroAST takes ``style_image`` (float32[h,w,3] in [0,1], already at ``style_size``; its style code is
    computed here, once). Errors (a missing model, no painting) are one-line :class:`JaxstyleError`s."""
    kind = config.teacher_kind()
    if not kind:
        return None
    if kind == "microast":
        from jaxstyle.methods.arbitrary import microast

        if style_image is None:
            raise OptionError("teacher microast needs the style painting (--style)", fields=("style", "teacher"))
        model = jax.tree.map(jnp.asarray, microast.load_params())
        code = jax.jit(microast.style_code)(model, jnp.asarray(style_image, jnp.float32))
        return Teacher(_microast_teacher, {"model": model, "code": code},
                       f"microast with {describe_style(config.style)}")
    path = transform.resolve_transform(config.teacher)
    params = jax.tree.map(jnp.asarray, transform.load_transform(config.teacher))
    return Teacher(_transform_teacher, params, describe_model(config.teacher),
                   hashlib.sha256(path.read_bytes()).hexdigest())


def describe_model(name_or_path: str) -> str:
    """A model as metadata names it: a shipped name as is, a file by its name only (no folders)."""
    return name_or_path if name_or_path in transform.shipped_models() else Path(name_or_path).name


def describe_style(name_or_path: str) -> str:
    """A style painting as metadata names it: a built-in's file name (``starry_night.jpg``), else the file's name."""
    from jaxstyle.io.styles import BUILTIN_STYLES

    source = BUILTIN_STYLES.get(name_or_path.strip().lower().replace("-", "_"))
    return source.filename if source is not None else Path(name_or_path).name


def describe_data(spec: str) -> str:
    """The training data as metadata names it: a TFDS spec as is, a folder by its own name (no path)."""
    if not spec:
        return "batches given in code"
    if spec.startswith("tfds:"):
        return spec
    return f"photo folder {Path(spec).name or spec}"


def teacher_loss(params: Any, batch: jax.Array, frozen: Mapping[str, Any], config: TrainConfig,
                 apply: TeacherApply):
    """The distance between the net's output and the teacher's (``apply(frozen["teacher"], batch)``, in [0,1]).

    batch: float32[N,H,W,3] in [0,1]. By ``config.resolved_teacher_loss()``: ``mse`` the mean squared error in
    [0,1] pixels (the distillation of the --fast nets), ``l1`` the mean absolute error, ``l1+vgg`` that plus, for
    each of :data:`TEACHER_FEATURE_LAYERS`, the mean absolute difference of the VGG19 responses
    (``frozen["vgg"]``) divided by the mean absolute response to the teacher's output (so each layer weighs
    about as much as the pixels). The student's output is not clipped, so it is also pulled back into range.
    ``psnr`` (dB) is that of the student's output against the teacher's.
    """
    target = jax.lax.stop_gradient(apply(frozen["teacher"], batch))
    out = _forward(config, params, batch)
    mse = jnp.mean(jnp.square(out - target))
    kind = config.resolved_teacher_loss()
    pixel = mse if kind == "mse" else jnp.mean(jnp.abs(out - target))
    metrics = {"pixel": pixel, "psnr": -10.0 * jnp.log10(jnp.maximum(mse, 1e-12))}
    total = pixel
    if kind == "l1+vgg":
        both = vgg.features(frozen["vgg"], jnp.concatenate([out, target]), TEACHER_FEATURE_LAYERS, config.pooling)
        terms = []
        for layer in TEACHER_FEATURE_LAYERS:
            ours, theirs = jnp.split(both[layer], 2)
            theirs = jax.lax.stop_gradient(theirs)
            terms.append(jnp.mean(jnp.abs(ours - theirs)) / (jnp.mean(jnp.abs(theirs)) + 1e-6))
        metrics["features"] = jnp.mean(jnp.stack(terms))
        total = total + metrics["features"]
    return total, {"loss": total, **metrics}


@dataclasses.dataclass(frozen=True)
class _ConfigLoss:
    """A loss above as the trainer's ``loss_fn(params, images, frozen, key)``; hashable, so equal losses
    share one compiled step. ``config`` keeps only the fields the losses read (:func:`_loss_fields`);
    ``teacher``: the teacher's ``apply`` for :func:`teacher_loss`."""

    fn: Callable
    config: TrainConfig
    teacher: TeacherApply | None = None

    def __call__(self, params: Any, images: jax.Array, frozen: Any, key: jax.Array):
        del key  # these losses are deterministic
        if self.teacher is not None:
            return self.fn(params, images, frozen, self.config, self.teacher)
        return self.fn(params, images, frozen, self.config)


def _loss_fields(config: TrainConfig) -> TrainConfig:
    """The net's architecture, the loss weights and pooling, the resolved teacher loss; every other field at
    its default, so that runs differing in style, seed, steps or data share a compilation of the step."""
    keep = ("width", "residual_blocks", "dtype", "content_weight", "style_weight", "tv_weight", "style_layer_weights",
            "content_layer", "layout_weight", "range_weight", "pooling")
    return TrainConfig(**{name: getattr(config, name) for name in keep},
                       teacher_loss=config.resolved_teacher_loss() if config.teacher else "auto")


def phase_plan(config: TrainConfig) -> tuple[tuple[str, int], ...]:
    """``((name, steps), ...)``: the phases of ``config.steps`` in order, those with steps only. Names:
    ``identity warmup``, ``teacher`` and ``perceptual``."""
    if config.teacher:
        plan = (("teacher", config.steps - config.perceptual_steps()), ("perceptual", config.perceptual_steps()))
    else:
        warmup = min(config.warmup_steps, config.steps)
        plan = (("identity warmup", warmup), ("perceptual", config.steps - warmup))
    return tuple((name, n) for name, n in plan if n)


def mode(config: TrainConfig) -> trainer.Mode:
    """Transform-net training as a :class:`jaxstyle.trainer.Mode`: an optional identity warmup
    (``warmup_steps``) or teacher phase (``teacher``: ``teacher_steps``, or every step), then the perceptual
    loss."""
    loss_config = _loss_fields(config)
    perceptual = trainer.Phase(_ConfigLoss(perceptual_loss, loss_config))
    phases: tuple[trainer.Phase, ...] = (perceptual,)
    if config.teacher:
        taught = _ConfigLoss(teacher_loss, loss_config, _TEACHER_APPLY[config.teacher_kind()])
        phases = (trainer.Phase(taught, config.teacher_steps), perceptual) if config.perceptual_steps() else (
            trainer.Phase(taught),)
    elif config.warmup_steps:
        phases = (trainer.Phase(_ConfigLoss(identity_loss, loss_config), config.warmup_steps), *phases)
    return trainer.Mode(init_params=functools.partial(init_params, config), phases=phases,
                        optimizer=make_optimizer(config), sample_fn=_sample)


def _sample(params: Any, images: jax.Array) -> jax.Array:
    return transform.apply(params, images)


def data_mesh() -> Mesh:
    """A 1-D mesh over every device of every process, axis ``data``."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def maybe_initialize_distributed() -> None:
    """Call ``jax.distributed.initialize`` when the environment asks for several processes.

    Set ``JAXSTYLE_COORDINATOR=host:port``, ``JAXSTYLE_NUM_PROCESSES`` and ``JAXSTYLE_PROCESS_ID``
    (or the cluster variables jax detects itself, with ``JAXSTYLE_DISTRIBUTED=1``). On CPU the
    collectives go through gloo.
    """
    coordinator = os.environ.get("JAXSTYLE_COORDINATOR")
    if not coordinator and os.environ.get("JAXSTYLE_DISTRIBUTED") != "1":
        return
    platforms = jax.config.jax_platforms  # type: ignore[attr-defined]
    if platforms in (None, "", "cpu") and os.environ.get("JAX_PLATFORMS", "cpu") == "cpu":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator:
        jax.distributed.initialize(coordinator, int(os.environ["JAXSTYLE_NUM_PROCESSES"]),
                                   int(os.environ["JAXSTYLE_PROCESS_ID"]))
    else:
        jax.distributed.initialize()


def style_grams(vgg_params: Any, style: np.ndarray, config: TrainConfig) -> dict[str, jax.Array]:
    """Target Grams of the style image (float32[h,w,3] in [0,1] at ``style_size``), rescaled to the
    number of positions the training crops have at each layer."""
    return objective.style_grams(vgg_params, style, config.loss_spec(), (config.image_size, config.image_size))


# -- the loop --------------------------------------------------------------------------------------


@dataclasses.dataclass
class RunResult:
    params: Any
    steps: int
    resumed_from: int
    seconds: float
    last_metrics: dict[str, float]


def run(
    config: TrainConfig,
    workdir: str | os.PathLike[str],
    *,
    checkpoint_every: int = 1000,
    log_every: int = 50,
    sample_every: int = 1000,
    batches: Iterator[np.ndarray] | None = None,
    vgg_params: Any = None,
    style_image: np.ndarray | None = None,
    sample_image: np.ndarray | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: trainer.Progress | None = None,
    max_seconds: float | None = None,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Train (or resume) in ``workdir`` until ``config.steps``; returns the final params.

    With ``config.teacher`` the net first learns to reproduce that teacher's output (:func:`teacher_loss`,
    :func:`make_teacher`) for ``teacher_steps``, then trains on the perceptual loss; a transform-net teacher
    with no perceptual phase (distillation) needs no style image and no VGG.

    ``batches`` overrides the data pipeline (tests); otherwise ``config.data`` is read through
    :func:`jaxstyle.data.make_pipeline`, sharded per process. The loop, checkpoints, metrics,
    samples and the ``max_seconds`` limit are :func:`jaxstyle.trainer.fit`'s; ``progress(step,
    metrics)`` is called after each step. ``out``: the trained model file, with its metadata.
    """
    from jaxstyle.io import images as imagelib

    config.validate()
    primary = jax.process_index() == 0
    mesh, global_batch = _mesh_and_global_batch(config.batch_size)
    # Inputs first: a bad style, teacher or data folder must fail before the workdir is touched.
    needs_style = config.teacher_kind() == "microast" or config.perceptual_steps() > 0
    if style_image is None and needs_style:
        from jaxstyle.io.styles import load_style

        style_image = load_style(config.style)
    if style_image is not None:
        style_image = imagelib.fit_long_side(imagelib.to_float_image(style_image), config.style_size)
    teacher = make_teacher(config, style_image)
    pipeline, batches = _pipeline(config, batches)
    # --init-from is read (and its architecture checked) before the workdir is touched too.
    training = mode(config)
    initial = training.init_state(jax.random.key(config.seed))
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    _check_workdir_config(workdir, config, primary)

    frozen: dict[str, Any] = {}
    if teacher is not None:
        frozen["teacher"] = teacher.params
    if config.perceptual_steps() or (teacher is not None and config.resolved_teacher_loss() == "l1+vgg"):
        # only the shallow layers when no perceptual step follows
        frozen["vgg"] = (vgg_weights.on_device(vgg_params) if config.perceptual_steps() else
                         vgg_weights.on_device(vgg_params, upto=TEACHER_FEATURE_LAYERS))
    if config.perceptual_steps():
        assert style_image is not None  # loaded above when a perceptual phase follows
        frozen["grams"] = style_grams(frozen["vgg"], style_image, config)
    if sample_image is None:
        sample_image = _sample_crop(pipeline, config.image_size)
    schedule = trainer.Schedule(config.steps, checkpoint_every, log_every, sample_every, max_seconds)
    result = trainer.fit(trainer.Trainer(training, mesh, frozen, config.seed), initial, workdir, batches, schedule,
                         global_batch=global_batch, sample_image=sample_image, progress=progress or None, log=log)
    if out is not None and primary:
        meta = export_metadata(config, result.steps, result.total_seconds, result.images_seen, pipeline, teacher)
        transform.save_transform(out, result.params, meta)
        log(f"wrote {out}")
    return RunResult(result.params, result.steps, result.resumed_from, result.seconds, result.last_metrics)


def _mesh_and_global_batch(batch_size: int) -> tuple[Mesh, int]:
    """The data mesh over every device, and the global batch (``batch_size`` per process), which must
    split evenly over the devices."""
    mesh = data_mesh()
    global_batch = batch_size * jax.process_count()
    if global_batch % mesh.devices.size:
        raise OptionError(f"the global batch ({global_batch}) must be a multiple of the device count "
                          f"({mesh.devices.size})", fields=("batch_size",))
    return mesh, global_batch


def _pipeline(config: TrainConfig | DecoderConfig, batches: Iterator[np.ndarray] | None
              ) -> tuple[Any, Iterator[np.ndarray]]:
    """``(pipeline, batches)``: ``batches`` as given (tests; no pipeline), else ``config.data`` through
    :func:`jaxstyle.data.make_pipeline`, sharded per process, and its iterator."""
    from jaxstyle import data as datalib

    if batches is not None:
        return None, batches
    pipeline = datalib.make_pipeline(config.data, batch_size=config.batch_size, image_size=config.image_size,
                                     seed=config.seed, shard_index=jax.process_index(),
                                     shard_count=jax.process_count(), num_threads=min(16, os.cpu_count() or 4))
    return pipeline, iter(pipeline)


def _sample_crop(pipeline: Any, image_size: int) -> np.ndarray | None:
    """The image the samples show: a fixed crop (seed 0) of the pipeline's first file, float32[S,S,3]
    in [0,1]; None without a pipeline."""
    from jaxstyle import data as datalib

    if pipeline is None:
        return None
    crop = datalib.random_crop(datalib.decode_uint8(pipeline.files[0]), np.random.default_rng(0), image_size)
    return crop.astype(np.float32) / 255.0


ARCH_KEYS = ("width", "residual_blocks", "image_size", "style", "style_size", "content_weight", "style_weight",
             "tv_weight", "style_layer_weights", "content_layer", "layout_weight", "range_weight", "warmup_steps",
             "pooling", "seed", "batch_size", "init_from", "teacher", "teacher_steps", "teacher_loss")


def _check_workdir_config(workdir: Path, config: TrainConfig, primary: bool) -> None:
    """A workdir belongs to one model: refuse to resume a run with different settings."""
    path = workdir / "config.json"
    current = _jsonable(config)
    defaults = _jsonable(TrainConfig())  # a key added since the workdir was made has its default
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except ValueError:
            raise JaxstyleError(f"{path}: unreadable run config; use a fresh workdir", fields=("workdir",)) from None
        diff = [k for k in ARCH_KEYS if saved.get(k, defaults[k]) != current[k]]
        if diff:
            what = ", ".join(f"{k}={saved.get(k, defaults[k])!r} (now {current[k]!r})" for k in diff)
            raise JaxstyleError(f"{workdir} holds a checkpoint of a different model: {what}; use another workdir",
                                fields=("workdir",))
    if primary:
        atomic.write_atomic(path, json.dumps(current, indent=1))


def _jsonable(config: Any) -> dict[str, Any]:
    """The config's fields as JSON would read them back (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def export_metadata(config: TrainConfig, steps: int, seconds: float, images_seen: int, pipeline: Any,
                    teacher: Teacher | None = None) -> dict:
    """The exported model's training record: the config, the phases with the steps each ran (of ``steps``
    done), the teacher's description, the data's; no machine paths (models, paintings and folders by name)."""
    from jaxstyle.vgg_weights import read_meta

    try:
        vgg_source = read_meta().get("source")
    except Exception:  # metadata is informative only
        vgg_source = None
    if config.teacher and teacher is None:
        teacher = make_teacher(config) if config.teacher_kind() == "transform" else None
    phases, done = [], 0
    for name, planned in phase_plan(config):
        ran = max(0, min(planned, steps - done))
        phases.append({"phase": name, "steps": ran})
        done += planned
    counts = {p["phase"]: p["steps"] for p in phases}
    teacher_meta: dict[str, Any] = {}
    if config.teacher:
        kind = config.resolved_teacher_loss()
        narrowed = (config.teacher_kind() == "transform" and not config.init_from and teacher is not None
                    and _narrows_to(teacher.params, config))
        teacher_meta = {
            "teacher": teacher.description if teacher is not None else f"microast with {describe_style(config.style)}",
            "teacher_loss": kind, "teacher_steps": counts.get("teacher", 0),
            "loss": {"mse": "distillation: MSE to the teacher's output, [0,1] pixels",
                     "l1": "L1 to the teacher's output, [0,1] pixels",
                     "l1+vgg": "L1 to the teacher's output in [0,1] pixels plus the relative L1 of VGG19 relu1_1 "
                               "and relu2_1"}[kind] + ("; then the perceptual loss" if counts.get("perceptual")
                                                       else ""),
            "teacher_sha256": teacher.sha256 if teacher is not None else None,
            "student_init": "the teacher narrowed (transform.narrow)" if narrowed else None}
    return {
        **teacher_meta,
        "style": Path(config.style).name, "steps": steps, "warmup_steps": counts.get("identity warmup", 0),
        "perceptual_steps": counts.get("perceptual", 0), "phases": phases,
        "image_size": config.image_size, "batch_size": config.batch_size, "style_size": config.style_size,
        "content_weight": config.content_weight, "style_weight": config.style_weight, "tv_weight": config.tv_weight,
        "style_layer_weights": list(config.style_layer_weights), "content_layer": config.content_layer,
        "layout_weight": config.layout_weight, "range_weight": config.range_weight,
        "lr": config.lr, "seed": config.seed, "data": describe_data(config.data),
        "init_from": describe_model(config.init_from) if config.init_from else None,
        "data_files": pipeline.stats.get("files") if pipeline is not None else None,
        "wall_seconds": round(seconds, 1), "images_seen": images_seen,
        "machine": machine_info(),
        "jax": jax.__version__, "vgg": vgg_source,
    }


# -- decoders for arbitrary styles (jaxstyle.methods.arbitrary.wct) ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """Training the arbitrary-style decoders: each learns to reconstruct photos from VGG19's relu{k}_1
    (pixel MSE + re-encoded feature error, :func:`jaxstyle.methods.arbitrary.vgg_decoders.decoders_loss`).
    The defaults are the shipped set's CPU budget (docs/results.md, "Arbitrary style")."""

    data: str = ""
    steps: int = option(1100, f"total steps, at most {MAX_STEPS:,}", kind="positive_int")
    batch_size: int = option(4, "images per step per process", kind="positive_int")
    image_size: int = option(128, "random square crops of this size (a multiple of 8)", kind="positive_int")
    levels: tuple[int, ...] = option((1, 2, 3, 4), "the relu K_1 levels to train a decoder for", kind="ints",
                                     metavar="K1,K2,...")
    width: float = option(0.5, "the decoders' channels as a share of VGG19's (0.5: a quarter of the work)",
                          kind="float")
    lr: float = option(5e-4, "peak Adam learning rate (100 warmup steps, cosine decay to 5%%)", kind="float")
    feature_weight: float = option(1.0, "weight of the re-encoded feature error against the pixel error",
                                   kind="float")
    seed: int = option(0, "seed for init and data order", kind="int")

    def validate(self) -> None:
        if self.steps > MAX_STEPS:
            raise OptionError(f"steps must be at most {MAX_STEPS:,}, got {self.steps:,}", fields=("steps",))
        for name in ("steps", "batch_size", "image_size"):
            if getattr(self, name) <= 0:
                raise OptionError(f"{name} must be positive, got {getattr(self, name)}", fields=(name,))
        if not self.levels or any(k not in vgg_decoders.LEVELS for k in self.levels):
            raise OptionError(f"levels must be some of {', '.join(map(str, vgg_decoders.LEVELS))}, got "
                              f"{list(self.levels)}", fields=("levels",))
        multiple = 2 ** (max(self.levels) - 1)
        if self.image_size % multiple or self.image_size < 16:
            raise OptionError(f"image_size must be a multiple of {multiple} and at least 16, got {self.image_size}",
                              fields=("image_size",))
        if not 0 < self.width <= 2:
            raise OptionError(f"width must be in (0, 2], got {self.width}", fields=("width",))
        for name in ("lr", "feature_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)) or (name == "lr" and value == 0):
                raise OptionError(f"{name} must be a finite number > 0, got {value}", fields=(name,))


def decoder_optimizer(config: DecoderConfig) -> optax.GradientTransformation:
    """Adam with a 100-step warmup (a tenth of a shorter run) and a cosine decay to 5% over ``steps``, the
    gradient clipped at norm 1."""
    warmup = min(100, max(1, config.steps // 10))
    schedule = optax.warmup_cosine_decay_schedule(0.0, config.lr, warmup, max(config.steps, warmup + 1),
                                                  config.lr * 0.05)
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


@dataclasses.dataclass(frozen=True)
class _DecoderLoss:
    """:func:`vgg_decoders.decoders_loss` as the trainer's ``loss_fn`` (hashable: equal losses share a compilation)."""

    feature_weight: float

    def __call__(self, params: Any, images: jax.Array, frozen: Any, key: jax.Array):
        del key  # deterministic
        return vgg_decoders.decoders_loss(params, frozen["vgg"], images, self.feature_weight)


def decoder_mode(config: DecoderConfig, vgg_params: Any) -> trainer.Mode:
    """Decoder training as a :class:`jaxstyle.trainer.Mode`; the samples are the deepest decoder's
    reconstruction of the sample crop."""
    deepest = max(config.levels)

    def sample(params: Any, images: jax.Array) -> jax.Array:
        return vgg_decoders.decode(params[f"dec{deepest}"], vgg_decoders.encode(vgg_params, images, deepest))

    return trainer.Mode(init_params=lambda key: vgg_decoders.init_decoders(key, config.levels, config.width),
                        phases=(trainer.Phase(_DecoderLoss(config.feature_weight)),),
                        optimizer=decoder_optimizer(config), sample_fn=sample,
                        plot_keys=("loss", *(f"pixel{k}" for k in config.levels)))


def run_decoders(
    config: DecoderConfig,
    workdir: str | os.PathLike[str],
    *,
    checkpoint_every: int = 250,
    log_every: int = 25,
    sample_every: int = 250,
    batches: Iterator[np.ndarray] | None = None,
    vgg_params: Any = None,
    out: str | os.PathLike[str] | None = None,
    progress: trainer.Progress | None = None,
    max_seconds: float | None = None,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Train (or resume) the decoders in ``workdir`` until ``config.steps`` with the transform nets'
    loop (:func:`jaxstyle.trainer.fit`: sharded jitted step, Orbax resume, metrics, plot, samples);
    ``out``: the decoder file (:func:`jaxstyle.methods.arbitrary.vgg_decoders.save_decoders`)."""
    config.validate()
    mesh, global_batch = _mesh_and_global_batch(config.batch_size)
    pipeline, batches = _pipeline(config, batches)
    vgg_params = vgg_weights.on_device(vgg_params, upto=[vgg_decoders.level_layer(max(config.levels))])
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "config.json"
    current = _jsonable(config)
    if config_path.exists():
        saved = json.loads(config_path.read_text())
        diff = [k for k in ("levels", "width", "image_size", "batch_size", "seed") if saved.get(k) != current[k]]
        if diff:
            raise JaxstyleError(f"{workdir} holds decoders trained with other {', '.join(diff)}; use another workdir",
                                fields=("workdir",))
    elif jax.process_index() == 0:
        atomic.write_atomic(config_path, json.dumps(current, indent=1))
    sample_image = _sample_crop(pipeline, config.image_size)
    training = decoder_mode(config, vgg_params)
    schedule = trainer.Schedule(config.steps, checkpoint_every, log_every, sample_every, max_seconds)
    result = trainer.fit(trainer.Trainer(training, mesh, {"vgg": vgg_params}, config.seed),
                         training.init_state(jax.random.key(config.seed)), workdir, batches, schedule,
                         global_batch=global_batch, sample_image=sample_image, progress=progress, log=log)
    if out is not None and jax.process_index() == 0:
        meta = {"kind": "decoders", "steps": result.steps, "seconds": round(result.total_seconds, 1),
                "images_seen": result.images_seen, "data": describe_data(config.data),
                "config": {**current, "data": describe_data(config.data)},
                "last_metrics": result.last_metrics, "machine": machine_info()}
        vgg_decoders.save_decoders(out, result.params, meta)
        log(f"wrote {out}")
    return RunResult(result.params, result.steps, result.resumed_from, result.seconds, result.last_metrics)
