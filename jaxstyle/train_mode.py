"""Transform-net training as a :class:`jaxstyle.train_loop.Mode`: how the params start (random, fine-tuned
from a model, or a teacher narrowed), the optimiser, and the phases (identity warmup or teacher, then the
perceptual loss) with the losses of :mod:`jaxstyle.train_losses`; the style Grams the perceptual loss
compares with.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxstyle import objective, train_loop
from jaxstyle.errors import OptionError
from jaxstyle.methods.transform import net as transform
from jaxstyle.train_config import TrainConfig, fields_with
from jaxstyle.train_losses import TEACHER_APPLY, TeacherApply, identity_loss, perceptual_loss, teacher_loss


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
    hyper-parameters, so that it keys the compiled step (:func:`jaxstyle.train_loop.compiled_step`)."""
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
        if teacher is not None and narrows_to(teacher, config):
            # Distillation: the student starts as the teacher cut down to its width (transform.narrow),
            # which converges several times faster than a random init (docs/performance.md, "--fast").
            params = jax.tree.map(jnp.asarray, transform.narrow(teacher, config.width))
        else:
            # One compiled init instead of ~140 tiny op-by-op compilations (about 10 s on a CPU).
            params = jax.jit(transform.init_params, static_argnums=(1, 2))(key, config.width, config.residual_blocks)
    return params


def narrows_to(teacher: Any, config: TrainConfig) -> bool:
    """Whether the teacher can be cut down to the student: as wide or wider, the same residual blocks."""
    arch = transform.architecture(teacher)
    return arch["residual_blocks"] == config.residual_blocks and arch["width"] >= config.width

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
    """The fields with the ``step`` role (the net's architecture, the loss weights and pooling) and the
    resolved teacher loss; every other field at
    its default, so that runs differing in style, seed, steps or data share a compilation of the step."""
    return TrainConfig(**{name: getattr(config, name) for name in fields_with("step")},
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


def mode(config: TrainConfig) -> train_loop.Mode:
    """Transform-net training as a :class:`jaxstyle.train_loop.Mode`: an optional identity warmup
    (``warmup_steps``) or teacher phase (``teacher``: ``teacher_steps``, or every step), then the perceptual
    loss."""
    loss_config = _loss_fields(config)
    perceptual = train_loop.Phase(_ConfigLoss(perceptual_loss, loss_config))
    phases: tuple[train_loop.Phase, ...] = (perceptual,)
    if config.teacher:
        taught = _ConfigLoss(teacher_loss, loss_config, TEACHER_APPLY[config.teacher_kind()])
        phases = (train_loop.Phase(taught, config.teacher_steps), perceptual) if config.perceptual_steps() else (
            train_loop.Phase(taught),)
    elif config.warmup_steps:
        phases = (train_loop.Phase(_ConfigLoss(identity_loss, loss_config), config.warmup_steps), *phases)
    return train_loop.Mode(init_params=functools.partial(init_params, config), phases=phases,
                           optimizer=make_optimizer(config), sample_fn=_sample)


def _sample(params: Any, images: jax.Array) -> jax.Array:
    """The net's picture of ``images`` (float32[N,H,W,3] in [0,1]) as inference returns it, clipped to [0,1]."""
    return transform.apply(params, images)


def style_grams(vgg_params: Any, style: np.ndarray, config: TrainConfig) -> dict[str, jax.Array]:
    """Target Grams of the style image (float32[h,w,3] in [0,1] at ``style_size``), rescaled to the
    number of positions the training crops have at each layer."""
    return objective.style_grams(vgg_params, style, config.loss_spec(), (config.image_size, config.image_size))
