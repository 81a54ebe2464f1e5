"""The optimisers of the image (the paper's sign update, Adam, L-BFGS, via optax) and the one jitted step.

The image itself is the parameter: float32[1,H,W,3] RGB in [0,1]. One jitted step (:func:`make_step`)
computes the paper's loss (:mod:`jaxstyle.objective`) with ``jax.value_and_grad`` through the VGG19
and applies an optax update, then clips the image back into [0,1].
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxstyle import objective
from jaxstyle.errors import OptionError
from jaxstyle.methods.gatys import tiling
from jaxstyle.methods.gatys.presets import AUTO, DEFAULT_LR, OPTIMIZERS
from jaxstyle.objective import LossSpec


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


def resolve_optimizer(name: str, scales: int) -> str:
    """``auto`` -> ``sign`` for a one-scale plan, ``adam`` for coarse to fine; other names as given."""
    if name != AUTO:
        return name
    return "sign" if scales == 1 else "adam"
