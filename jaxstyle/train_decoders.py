"""Training the arbitrary-style decoders (:mod:`jaxstyle.methods.arbitrary.vgg_decoders`, used by
:mod:`jaxstyle.methods.arbitrary.wct`) with the transform nets' loop: :class:`DecoderConfig`, the
optimiser, the decoders as a :class:`jaxstyle.train_loop.Mode`, and :func:`run_decoders`.

It sits beside :mod:`jaxstyle.train`, not in the method's package: a method imports no trainer.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax

from jaxstyle import atomic, train_loop, vgg_weights
from jaxstyle.errors import JaxstyleError, OptionError
from jaxstyle.machine import machine_info
from jaxstyle.methods.arbitrary import vgg_decoders
from jaxstyle.options import option
from jaxstyle.progress import Progress
from jaxstyle.train_config import MAX_STEPS, describe_data, fields_with
from jaxstyle.train_setup import RunResult, jsonable, mesh_and_global_batch, pipeline_and_batches, sample_crop


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """Training the arbitrary-style decoders: each learns to reconstruct photos from VGG19's relu{k}_1
    (pixel MSE + re-encoded feature error, :func:`jaxstyle.methods.arbitrary.vgg_decoders.decoders_loss`).
    The defaults are the shipped set's CPU budget (docs/results.md, "Arbitrary style"). The fields with the
    ``workdir`` role identify a workdir's decoders: a resumed run must have the saved values."""

    data: str = ""
    steps: int = option(1100, f"total steps, at most {MAX_STEPS:,}", kind="positive_int")
    batch_size: int = option(4, "images per step per process", kind="positive_int", roles=("workdir",))
    image_size: int = option(128, "random square crops of this size (a multiple of 8)", kind="positive_int",
                             roles=("workdir",))
    levels: tuple[int, ...] = option((1, 2, 3, 4), "the relu K_1 levels to train a decoder for", kind="ints",
                                     metavar="K1,K2,...", roles=("workdir",))
    width: float = option(0.5, "the decoders' channels as a share of VGG19's (0.5: a quarter of the work)",
                          kind="float", roles=("workdir",))
    lr: float = option(5e-4, "peak Adam learning rate (100 warmup steps, cosine decay to 5%%)", kind="float")
    feature_weight: float = option(1.0, "weight of the re-encoded feature error against the pixel error",
                                   kind="float")
    seed: int = option(0, "seed for init and data order", kind="int", roles=("workdir",))

    def validate(self) -> None:
        """Raise :class:`OptionError` (naming the field) for a value training cannot run with."""
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


def decoder_mode(config: DecoderConfig, vgg_params: Any) -> train_loop.Mode:
    """Decoder training as a :class:`jaxstyle.train_loop.Mode`; the samples are the deepest decoder's
    reconstruction of the sample crop."""
    deepest = max(config.levels)

    def sample(params: Any, images: jax.Array) -> jax.Array:
        return vgg_decoders.decode(params[f"dec{deepest}"], vgg_decoders.encode(vgg_params, images, deepest))

    return train_loop.Mode(init_params=lambda key: vgg_decoders.init_decoders(key, config.levels, config.width),
                           phases=(train_loop.Phase(_DecoderLoss(config.feature_weight)),),
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
    progress: Progress | None = None,
    max_seconds: float | None = None,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Train (or resume) the decoders in ``workdir`` until ``config.steps`` with the transform nets'
    loop (:func:`jaxstyle.train_loop.fit`: sharded jitted step, Orbax resume, metrics, plot, samples);
    ``out``: the decoder file (:func:`jaxstyle.methods.arbitrary.vgg_decoders.save_decoders`)."""
    config.validate()
    mesh, global_batch = mesh_and_global_batch(config.batch_size)
    pipeline, batches = pipeline_and_batches(config, batches)
    vgg_params = vgg_weights.on_device(vgg_params, upto=[vgg_decoders.level_layer(max(config.levels))])
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "config.json"
    current = jsonable(config)
    if config_path.exists():
        saved = json.loads(config_path.read_text())
        diff = [k for k in fields_with("workdir", DecoderConfig) if saved.get(k) != current[k]]
        if diff:
            raise JaxstyleError(f"{workdir} holds decoders trained with other {', '.join(diff)}; use another workdir",
                                fields=("workdir",))
    elif jax.process_index() == 0:
        atomic.write_atomic(config_path, json.dumps(current, indent=1))
    sample_image = sample_crop(pipeline, config.image_size)
    training = decoder_mode(config, vgg_params)
    schedule = train_loop.Schedule(config.steps, checkpoint_every, log_every, sample_every, max_seconds)
    result = train_loop.fit(train_loop.Trainer(training, mesh, {"vgg": vgg_params}, config.seed),
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
