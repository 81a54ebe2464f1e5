"""What a transform-net run writes down: the workdir's ``config.json`` (a workdir holds one model, and a
resumed run must match it) and the exported model's training record (:func:`export_metadata`). Which
fields count where is their ``roles`` (:func:`jaxstyle.train_config.fields_with`), not a list kept here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax

from jaxstyle import atomic
from jaxstyle.errors import JaxstyleError
from jaxstyle.machine import machine_info
from jaxstyle.train_config import TrainConfig, describe_data, describe_model, describe_style, fields_with
from jaxstyle.train_losses import Teacher, make_teacher
from jaxstyle.train_mode import narrows_to, phase_plan
from jaxstyle.train_setup import jsonable

#: The fields a workdir's model is identified by: a resumed run must have the saved values.
ARCH_KEYS = fields_with("workdir")


def check_workdir_config(workdir: Path, config: TrainConfig, primary: bool) -> None:
    """A workdir belongs to one model: refuse to resume a run with different settings."""
    path = workdir / "config.json"
    current = jsonable(config)
    defaults = jsonable(TrainConfig())  # a key added since the workdir was made has its default
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


def export_metadata(config: TrainConfig, steps: int, seconds: float, images_seen: int, pipeline: Any,
                    teacher: Teacher | None = None) -> dict:
    """The exported model's training record: the config, the phases with the steps each ran (of ``steps``
    done), the teacher's description, the data's, the fields with the ``export`` role as they are; no machine
    paths (models, paintings and folders by name)."""
    from jaxstyle.vgg_weights import describe_source, read_meta

    try:
        vgg_source = describe_source(read_meta())
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
    recorded = jsonable(config)
    teacher_meta: dict[str, Any] = {}
    if config.teacher:
        kind = config.resolved_teacher_loss()
        narrowed = (config.teacher_kind() == "transform" and not config.init_from and teacher is not None
                    and narrows_to(teacher.params, config))
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
        **{name: recorded[name] for name in fields_with("export")}, "data": describe_data(config.data),
        "init_from": describe_model(config.init_from) if config.init_from else None,
        "data_files": pipeline.stats.get("files") if pipeline is not None else None,
        "wall_seconds": round(seconds, 1), "images_seen": images_seen,
        "machine": machine_info(),
        "jax": jax.__version__, "vgg": vgg_source,
    }
