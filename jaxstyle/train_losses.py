"""The losses a transform net trains on, and the teacher some runs learn from first.

* :func:`perceptual_loss` / :func:`output_loss`: the paper's content + style + TV of the net's output, with
  the tonal-layout term (:func:`layout_error`) and the range penalty; :func:`identity_loss`: the warmup
  toward the identity.
* :class:`Teacher` / :func:`make_teacher`: a model (a transform net, or MicroAST with the run's painting)
  that stylises each batch; :func:`teacher_loss`: the distance of the net's output to the teacher's.

Every loss is ``(params, batch float32[N,H,W,3] in [0,1], frozen, config[, apply]) -> (float32[] loss,
{name: float32[]} metrics)``, pure and jittable; :mod:`jaxstyle.train_mode` hands them to the trainer.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import color, objective
from jaxstyle.errors import OptionError
from jaxstyle.methods.transform import net as transform
from jaxstyle.nn import vgg
from jaxstyle.train_config import TEACHER_FEATURE_LAYERS, TrainConfig, describe_model, describe_style


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


#: A teacher's ``apply`` by :meth:`TrainConfig.teacher_kind`.
TEACHER_APPLY: dict[str, TeacherApply] = {"transform": _transform_teacher, "microast": _microast_teacher}


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
