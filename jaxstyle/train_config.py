"""A transform-net training run's settings: :class:`TrainConfig` (every field declared once, with its help
for the command line and its roles for the run's records), its checks, and the constants behind its defaults.

A field's ``roles`` (metadata, :func:`fields_with`) say where else it counts, so that no list of field
names is kept by hand: ``workdir`` (a workdir holds one model: a resumed run must match), ``step`` (the
losses read it: it keys the compiled step), ``export`` (recorded as is in the exported model's metadata).
:func:`describe_model`, :func:`describe_style` and :func:`describe_data` name a config's inputs in those
records without machine paths.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from jaxstyle import objective
from jaxstyle.errors import OptionError
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


#: The roles a field may have (its ``metadata["roles"]``); see the module's docstring.
ROLES = ("workdir", "step", "export")


#: The roles of a loss weight (the run's model, the compiled step, the record), and of a setting that shapes the
#: run (the workdir's model, the record).
_LOSS_WEIGHT = ("workdir", "step", "export")
_RUN_SHAPE = ("workdir", "export")


def _field(default: Any, *roles: str) -> Any:
    """A field with no command-line help (its flag, if any, is the command's own) and ``roles``."""
    return dataclasses.field(default=default, metadata={"roles": roles})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters. Adam 1e-3 and batch 4 follow Johnson et al.; the loss is the paper's (content
    conv4_2, Gram style on conv1_1..conv5_1, β=1e3) with the recipe in docs/results.md (section "Why the
    transform nets striped"): the loss sees the clipped output, the style layers are balanced, α=3, a TV
    term strong enough to matter (1e7), a tonal-layout term and a range penalty, on 128 px crops. The
    shipped nets add ``warmup_steps=100``. ``steps`` stays Johnson's 40k (2 COCO epochs) for a GPU; the
    shipped CPU nets saw 500."""

    style: str = _field("starry_night", "workdir")
    data: str = ""
    steps: int = option(40_000, f"total steps, at most {MAX_STEPS:,}", kind="positive_int")
    batch_size: int = option(4, "images per step per process", kind="positive_int", roles=_RUN_SHAPE)
    image_size: int = option(128, "random square crops of this size (the loss weights below are tuned for 128: "
                             "content, TV and layout grow with the pixel count, the style term does not)",
                             kind="positive_int", roles=_RUN_SHAPE)
    style_size: int = option(512, "long side of the style image for its Grams", kind="positive_int", roles=_RUN_SHAPE)
    content_weight: float = option(3.0, "alpha", kind="float", roles=_LOSS_WEIGHT)
    style_weight: float = option(1e3, "beta", kind="float", roles=_LOSS_WEIGHT)
    tv_weight: float = option(1e7, "total variation weight", kind="float", roles=_LOSS_WEIGHT)
    style_layer_weights: tuple[float, ...] = option(
        BALANCED_STYLE_LAYER_WEIGHTS, "weights of the style layers conv1_1,conv2_1,conv3_1,conv4_1,conv5_1 "
        "(default: each layer weighs the same at the photo; the paper's 0.2 each leaves conv4_1 95%% of the loss)",
        kind="floats", metavar="W1,...,W5", show_default=False, roles=_LOSS_WEIGHT)
    content_layer: str = option(objective.CONTENT_LAYER, "the VGG layer whose responses the content loss compares",
                                choices=vgg.VGG_LAYERS, metavar="LAYER", roles=_LOSS_WEIGHT)
    layout_weight: float = option(3e8, "weight of the tonal-layout term: squared error between the output's and the "
                                  "photo's luminance, both box-filtered by 4 (it keeps light and dark where the photo "
                                  "has them, which VGG's content layers do not)", kind="float", roles=_LOSS_WEIGHT)
    range_weight: float = option(1e8, "weight of the penalty on output values outside [0,1] (the loss itself sees "
                                 "the clipped output, as inference returns it)", kind="float", roles=_LOSS_WEIGHT)
    lr: float = option(1e-3, "Adam learning rate", kind="float", roles=("export",))
    warmup_steps: int = option(0, "first train this many steps toward the identity (output = input), as in the "
                               "paper", kind="int", show_default=False, roles=("workdir",))
    seed: int = option(0, "seed for init and data order", kind="int", roles=_RUN_SHAPE)
    width: int = option(32, "channels of the first conv; 16 makes a faster, lighter net", kind="positive_int",
                       roles=("workdir", "step"))
    residual_blocks: int = _field(5, "workdir", "step")
    pooling: str = _field("avg", "workdir", "step")
    dtype: str = option("float32", "compute dtype of the transform net", choices=("float32", "bfloat16"),
                        roles=("step",))
    init_from: str = option("", "start from a trained model (file or shipped name) instead of random init: "
                            "fine-tuning to a new style takes far fewer steps", metavar="MODEL", show_default=False,
                            roles=("workdir",))
    # a teacher: a model that stylises the batch; the net first learns to reproduce its output
    teacher: str = option("", "a teacher that stylises each training batch: a transform net (file or shipped name), "
                          "or 'microast' (the arbitrary-style model MicroAST with this run's --style painting at "
                          "--style-size). The net learns to reproduce its output for --teacher-steps steps, then the "
                          "perceptual loss takes over. With --teacher-steps 0 every step is distillation (pixel MSE to "
                          "the teacher's output: no VGG, fast steps); a transform net's style is the default --style",
                          metavar="MODEL", show_default=False, roles=("workdir",))
    teacher_steps: int = option(0, "with --teacher: steps fitted to the teacher's output before the perceptual loss "
                                "takes over (0: every step, distillation)", kind="int", show_default=False,
                                roles=("workdir",))
    teacher_loss: str = option("auto", "distance to the teacher's output: mse (pixels), l1 (pixels), or l1+vgg "
                               "(pixel L1 plus the L1 of VGG19 relu1_1 and relu2_1, each relative to the "
                               "teacher's); auto: mse for distillation (--teacher-steps 0), l1+vgg for a warmup",
                               choices=TEACHER_LOSSES, roles=("workdir",))

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
        """The transform net this config trains (``width``, ``residual_blocks``, compute ``dtype``)."""
        return transform.TransformNet(self.width, self.residual_blocks, dtype=jnp.dtype(self.dtype))


def fields_with(role: str, cls: type = TrainConfig) -> tuple[str, ...]:
    """The names of ``cls``'s fields with ``role`` among their ``metadata["roles"]``, in declaration order."""
    if role not in ROLES:
        raise ValueError(f"unknown field role {role!r}")
    return tuple(f.name for f in dataclasses.fields(cls) if role in f.metadata.get("roles", ()))


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
