"""Training a transform net for one style: :func:`run` checks the inputs, sets them up and hands the loop to
:func:`jaxstyle.train_loop.fit` (sharded jitted step, checkpoints, metrics, samples), then exports the model.

The parts live beside it, one responsibility each, and are importable from here as before:
:mod:`jaxstyle.train_config` (:class:`TrainConfig`), :mod:`jaxstyle.train_losses` (the losses and the
teacher), :mod:`jaxstyle.train_mode` (params, optimiser and phases as a trainer Mode),
:mod:`jaxstyle.train_setup` (distributed setup, mesh, data), :mod:`jaxstyle.train_export` (the workdir's
config and the exported metadata) and :mod:`jaxstyle.train_decoders` (the arbitrary-style decoders).

VGG params and style Grams are jit arguments (``frozen``), not baked-in constants.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxstyle import train_loop, vgg_weights
from jaxstyle.methods.transform import net as transform
from jaxstyle.nn import vgg
from jaxstyle.progress import Progress
from jaxstyle.train_config import (
    BALANCED_STYLE_LAYER_WEIGHTS,
    MAX_STEPS,
    MICROAST_TEACHER,
    TEACHER_FEATURE_LAYERS,
    TEACHER_LOSSES,
    TrainConfig,
    describe_data,
    describe_model,
    describe_style,
    fields_with,
)
from jaxstyle.train_decoders import DecoderConfig, decoder_mode, decoder_optimizer, run_decoders
from jaxstyle.train_export import ARCH_KEYS, check_workdir_config, export_metadata
from jaxstyle.train_losses import (
    LAYOUT_BOX,
    TEACHER_APPLY,
    Teacher,
    TeacherApply,
    identity_loss,
    layout_error,
    make_teacher,
    output_loss,
    perceptual_loss,
    teacher_loss,
)
from jaxstyle.train_mode import init_params, init_state, make_optimizer, mode, phase_plan, style_grams
from jaxstyle.train_setup import (
    RunResult,
    data_mesh,
    maybe_initialize_distributed,
    mesh_and_global_batch,
    pipeline_and_batches,
    sample_crop,
)

#: The names this module has always offered, now defined beside it (``train.vgg``: the VGG19 module).
__all__ = [
    "ARCH_KEYS", "BALANCED_STYLE_LAYER_WEIGHTS", "LAYOUT_BOX", "MAX_STEPS", "MICROAST_TEACHER", "TEACHER_APPLY",
    "TEACHER_FEATURE_LAYERS", "TEACHER_LOSSES", "DecoderConfig", "RunResult", "Teacher", "TeacherApply",
    "TrainConfig", "check_workdir_config", "data_mesh", "decoder_mode", "decoder_optimizer", "describe_data",
    "describe_model", "describe_style", "export_metadata", "fields_with", "identity_loss", "init_params", "init_state",
    "layout_error", "make_optimizer", "make_teacher", "maybe_initialize_distributed", "mode", "output_loss",
    "perceptual_loss", "phase_plan", "run", "run_decoders", "style_grams", "teacher_loss", "vgg",
]


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
    progress: Progress | None = None,
    max_seconds: float | None = None,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Train (or resume) in ``workdir`` until ``config.steps``; returns the final params.

    With ``config.teacher`` the net first learns to reproduce that teacher's output (:func:`teacher_loss`,
    :func:`make_teacher`) for ``teacher_steps``, then trains on the perceptual loss; a transform-net teacher
    with no perceptual phase (distillation) needs no style image and no VGG.

    ``batches`` overrides the data pipeline (tests); otherwise ``config.data`` is read through
    :func:`jaxstyle.data.make_pipeline`, sharded per process. The loop, checkpoints, metrics,
    samples and the ``max_seconds`` limit are :func:`jaxstyle.train_loop.fit`'s; ``progress(step,
    metrics)`` is called after each step. ``out``: the trained model file, with its metadata.
    """
    from jaxstyle.io import images as imagelib

    config.validate()
    primary = jax.process_index() == 0
    mesh, global_batch = mesh_and_global_batch(config.batch_size)
    # Inputs first: a bad style, teacher or data folder must fail before the workdir is touched.
    needs_style = config.teacher_kind() == "microast" or config.perceptual_steps() > 0
    if style_image is None and needs_style:
        from jaxstyle.io.styles import load_style

        style_image = load_style(config.style)
    if style_image is not None:
        style_image = imagelib.fit_long_side(imagelib.to_float_image(style_image), config.style_size)
    teacher = make_teacher(config, style_image)
    pipeline, batches = pipeline_and_batches(config, batches)
    # --init-from is read (and its architecture checked) before the workdir is touched too.
    training = mode(config)
    initial = training.init_state(jax.random.key(config.seed))
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    check_workdir_config(workdir, config, primary)

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
        sample_image = sample_crop(pipeline, config.image_size)
    schedule = train_loop.Schedule(config.steps, checkpoint_every, log_every, sample_every, max_seconds)
    loop = train_loop.Trainer(training, mesh, frozen, config.seed)
    result = train_loop.fit(loop, initial, workdir, batches, schedule, global_batch=global_batch,
                            sample_image=sample_image, progress=progress or None, log=log)
    if out is not None and primary:
        meta = export_metadata(config, result.steps, result.total_seconds, result.images_seen, pipeline, teacher)
        transform.save_transform(out, result.params, meta)
        log(f"wrote {out}")
    return RunResult(result.params, result.steps, result.resumed_from, result.seconds, result.last_metrics)
