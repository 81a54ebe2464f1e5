"""Training a transform net for one style: train state, pure jitted step, loop, checkpoints.

The train state is a plain dict ``{"params", "opt_state", "step"}``. The step is pure:
``train_step(state, batch) -> (state, metrics)``, jitted once, data-parallel over every
local device (and every process after ``jax.distributed.initialize``): the batch is sharded
on the ``data`` axis of a 1-D mesh and the state is replicated, so XLA inserts the gradient
all-reduce. VGG params and style Grams are jit arguments, not baked-in constants.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxstyle import atomic, models, objective, transform, vgg
from jaxstyle.errors import JaxstyleError, NonFiniteLossError, OptionError
from jaxstyle.machine import machine_info


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters. Defaults follow Johnson et al. (Adam 1e-3, batch 4, 256 px, 40k steps
    = 2 COCO epochs) with the paper's loss (content conv4_2, style conv1_1..conv5_1, α=1, β=1e3 as
    for back-prop) and a small TV weight that removes high-frequency noise."""

    style: str = "starry_night"
    data: str = ""
    steps: int = 40_000
    batch_size: int = 4
    image_size: int = 256
    style_size: int = 512
    content_weight: float = 1.0
    style_weight: float = 1e3
    tv_weight: float = 1e5
    lr: float = 1e-3
    warmup_steps: int = 0
    seed: int = 0
    width: int = 32
    residual_blocks: int = 5
    pooling: str = "avg"
    dtype: str = "float32"
    init_from: str = ""
    teacher: str = ""  # distillation: match this model's output instead of the perceptual loss


    def validate(self) -> None:
        for name in ("steps", "batch_size", "image_size", "style_size", "width", "residual_blocks"):
            if getattr(self, name) <= 0:
                raise OptionError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.image_size < 16:
            raise OptionError(f"--image-size must be at least 16 (VGG pools 4 times), got {self.image_size}")
        if self.warmup_steps < 0:
            raise OptionError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if not self.lr > 0:
            raise OptionError(f"--lr must be positive, got {self.lr}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise OptionError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        if self.dtype not in ("float32", "bfloat16"):
            raise OptionError(f"--dtype must be float32 or bfloat16, got {self.dtype}")
        if self.teacher and self.warmup_steps:
            raise OptionError("--warmup-steps does not apply with --teacher (distillation has no perceptual loss "
                              "to warm up for)")

    def loss_spec(self) -> objective.LossSpec:
        """The perceptual loss of the net's output: the paper's layers, this config's weights, never tiled
        (training crops are small)."""
        return objective.LossSpec(content_weight=float(self.content_weight), style_weight=float(self.style_weight),
                                  tv_weight=float(self.tv_weight), pooling=self.pooling, tile=0)

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
    """Adam on every parameter that matters (see :func:`_param_role`)."""
    return optax.multi_transform(
        {"adam": optax.adam(config.lr), "frozen": optax.set_to_zero()},
        lambda params: jax.tree_util.tree_map_with_path(_param_role, params),
    )


def init_state(config: TrainConfig, key: jax.Array) -> dict[str, Any]:
    """``{"params", "opt_state", "step": int32[]}`` for a fresh run: random params, ``--init-from``'s, or
    with ``--teacher`` the teacher's narrowed to ``config.width`` (when it is as wide, with the same blocks)."""
    if config.init_from:
        # Fine-tuning: start from a trained model (another style's converges in far fewer steps).
        params = jax.tree.map(jnp.asarray, transform.load_transform(config.init_from))
        arch = transform.architecture(params)
        if (arch["width"], arch["residual_blocks"]) != (config.width, config.residual_blocks):
            raise OptionError(f"--init-from {config.init_from} has width {arch['width']} and "
                              f"{arch['residual_blocks']} residual blocks; this run wants {config.width} and "
                              f"{config.residual_blocks}")
    else:
        teacher = transform.load_transform(config.teacher) if config.teacher else None
        if teacher is not None and _narrows_to(teacher, config):
            # Distillation: the student starts as the teacher cut down to its width (transform.narrow),
            # which converges several times faster than a random init (docs/performance.md, "--fast").
            params = jax.tree.map(jnp.asarray, transform.narrow(teacher, config.width))
        else:
            # One compiled init instead of ~140 tiny op-by-op compilations (about 10 s on a CPU).
            params = jax.jit(transform.init_params, static_argnums=(1, 2))(key, config.width, config.residual_blocks)
    return {"params": params, "opt_state": make_optimizer(config).init(params), "step": jnp.zeros((), jnp.int32)}


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
    return output_loss(config.model().apply(params, batch), batch, frozen, config)


def output_loss(
    out: jax.Array, batch: jax.Array, frozen: Mapping[str, Any], config: TrainConfig
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The perceptual loss (:func:`jaxstyle.objective.loss_terms` with ``config.loss_spec()``) of the net's
    output ``out`` for input ``batch`` (both float32[N,H,W,3]): the content target is the input's responses."""
    spec = config.loss_spec()
    target = None
    if spec.content_weight:
        target = vgg.features(frozen["vgg"], batch, (spec.content_layer,), spec.pooling)[spec.content_layer]
        target = jax.lax.stop_gradient(target)
    total, terms = objective.loss_terms(out, {"content": target, "grams": frozen["grams"]}, frozen["vgg"], spec)
    return total, {"loss": total, "content": terms["content"], "style": terms["style"], "tv": terms["tv"]}


def identity_loss(params: Any, batch: jax.Array, frozen: Mapping[str, Any], config: TrainConfig):
    """Warmup (the paper's): mean squared pixel error between output and input."""
    del frozen
    out = config.model().apply(params, batch)
    pixel = jnp.mean(jnp.square(out - batch))
    return pixel, {"loss": pixel, "pixel": pixel}


def distill_loss(params: Any, batch: jax.Array, frozen: Mapping[str, Any], config: TrainConfig):
    """Distillation: mean squared error, in [0,1] pixels, between the net's output and the teacher's.

    batch: float32[N,H,W,3] in [0,1]; frozen: ``{"teacher": params}`` of any width (read off its
    shapes). The teacher's output is clipped to [0,1] as at inference; the student's is not, so it is
    also pulled back into range. ``psnr`` (dB) is that of the student's output against the teacher's.
    """
    teacher = frozen["teacher"]
    target = transform.TransformNet(**transform.architecture(teacher)).apply(teacher, batch)
    target = jax.lax.stop_gradient(jnp.clip(target, 0.0, 1.0))
    out = config.model().apply(params, batch)
    pixel = jnp.mean(jnp.square(out - target))
    return pixel, {"loss": pixel, "pixel": pixel, "psnr": -10.0 * jnp.log10(jnp.maximum(pixel, 1e-12))}


def _step(state, batch, frozen, config: TrainConfig, loss_fn: Callable):
    images = batch.astype(jnp.float32) / 255.0
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], images, frozen, config)
    updates, opt_state = make_optimizer(config).update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {**metrics, "grad_norm": optax.tree.norm(grads)}
    return {"params": params, "opt_state": opt_state, "step": state["step"] + 1}, metrics


@dataclasses.dataclass
class Trainer:
    """Holds the jitted steps and the shardings for one config on one mesh."""

    config: TrainConfig
    mesh: Mesh
    frozen: dict[str, Any]

    def __post_init__(self) -> None:
        self.replicated = NamedSharding(self.mesh, P())
        self.batch_sharding = NamedSharding(self.mesh, P("data"))
        self.frozen = jax.device_put(self.frozen, self.replicated)
        # Only what changes the computation keys the compiled step, so runs that differ in style,
        # seed or warmup share one compilation.
        loss_config = dataclasses.replace(self.config, style="", data="", warmup_steps=0, seed=0, steps=1)
        self._main = _compiled_step(loss_config, "distill" if self.config.teacher else "perceptual", self.mesh)
        self._identity = _compiled_step(loss_config, "identity", self.mesh)

    def train_step(self, state: dict, batch: jax.Array) -> tuple[dict, dict]:
        """Pure ``(state, batch) -> (state, metrics)`` with the perceptual loss, or with ``config.teacher``
        the distillation loss (``frozen`` is then ``{"teacher": params}``)."""
        return self._main(state, batch, self.frozen)

    def warmup_step(self, state: dict, batch: jax.Array) -> tuple[dict, dict]:
        """The same with the identity (pixel) loss, for the first ``warmup_steps`` steps."""
        return self._identity(state, batch, self.frozen)

    def shard_batch(self, local_batch: np.ndarray) -> jax.Array:
        """This process's uint8[B,H,W,3] -> a global array sharded over the ``data`` axis."""
        return jax.make_array_from_process_local_data(self.batch_sharding, local_batch)

    def replicate(self, tree: Any) -> Any:
        return jax.device_put(tree, self.replicated)


@functools.lru_cache(maxsize=8)
def _compiled_step(config: TrainConfig, kind: str, mesh: Mesh) -> Callable:
    replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    loss_fn = {"perceptual": perceptual_loss, "identity": identity_loss, "distill": distill_loss}[kind]
    return jax.jit(functools.partial(_step, config=config, loss_fn=loss_fn),
                   in_shardings=(replicated, batch_sharding, replicated),
                   out_shardings=(replicated, replicated), donate_argnums=(0,))


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
    if jax.config.jax_platforms in (None, "", "cpu") and os.environ.get("JAX_PLATFORMS", "cpu") == "cpu":
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


def _finite(metrics: Mapping[str, float]) -> bool:
    return all(math.isfinite(v) for v in metrics.values())


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
    progress: bool | None = None,
    max_seconds: float | None = None,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Train (or resume) in ``workdir`` until ``config.steps``; returns the final params.

    With ``config.teacher`` (a model file or shipped name) the net learns to reproduce that model's
    output (:func:`distill_loss`): no style image and no VGG are needed.

    ``batches`` overrides the data pipeline (tests); otherwise ``config.data`` is read through
    :func:`jaxstyle.data.make_pipeline`, sharded per process. Checkpoints (Orbax, async, the
    last 3 kept) hold the train state and the data-iterator position; a NaN/Inf loss stops the
    run before anything non-finite is saved. ``max_seconds`` ends the run early (checkpointed
    and exported as usual) once that much training time has passed.
    """
    import orbax.checkpoint as ocp

    from jaxstyle import data as datalib
    from jaxstyle import images as imagelib
    from jaxstyle.cli.common import progress_bar

    config.validate()
    primary = jax.process_index() == 0
    mesh = data_mesh()
    n_dev = mesh.devices.size
    global_batch = config.batch_size * jax.process_count()
    if global_batch % n_dev:
        raise OptionError(f"the global batch ({global_batch}) must be a multiple of the device count ({n_dev})")
    # Inputs first: a bad style, teacher or data folder must fail before the workdir is touched.
    teacher = jax.tree.map(jnp.asarray, transform.load_transform(config.teacher)) if config.teacher else None
    if style_image is None and teacher is None:
        from jaxstyle.styles import load_style

        style_image = load_style(config.style)
    if style_image is not None:
        style_image = imagelib.fit_long_side(imagelib.to_float_image(style_image), config.style_size)
    pipeline = None
    if batches is None:
        pipeline = datalib.make_pipeline(config.data, batch_size=config.batch_size, image_size=config.image_size,
                                         seed=config.seed, shard_index=jax.process_index(),
                                         shard_count=jax.process_count(),
                                         num_threads=min(16, os.cpu_count() or 4))
        batches = iter(pipeline)
    # --init-from is read (and its architecture checked) before the workdir is touched too.
    initial = init_state(config, jax.random.key(config.seed))
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    _check_workdir_config(workdir, config, primary)

    if teacher is not None:
        frozen: dict[str, Any] = {"teacher": teacher}
    else:
        vgg_params = vgg.to_device(vgg_params)
        frozen = {"vgg": vgg_params, "grams": style_grams(vgg_params, style_image, config)}
    trainer = Trainer(config, mesh, frozen)

    # A checkpoint is written to a temporary folder and renamed when complete, so a kill during a
    # write leaves only a temporary folder, which the next start removes.
    options = ocp.CheckpointManagerOptions(max_to_keep=3, enable_async_checkpointing=True, create=True,
                                           cleanup_tmp_directories=True)
    manager = ocp.CheckpointManager(workdir / "checkpoints", options=options, item_names=("state", "data"))
    state = trainer.replicate(initial)
    start, seconds_before, images_before = 0, 0.0, 0
    latest = manager.latest_step()
    if latest is not None:
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        try:
            restored = manager.restore(latest, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
        except (ValueError, KeyError, TypeError) as err:
            raise JaxstyleError(f"{workdir}: cannot restore checkpoint {latest} ({str(err).splitlines()[0]}); "
                                "use a fresh --workdir") from None
        state = restored["state"]
        start = int(state["step"])
        positions = restored["data"]["positions"]
        seconds_before = float(restored["data"].get("seconds", 0.0))
        images_before = int(restored["data"].get("images", 0))
        if pipeline is not None:
            batches.set_state({"next_index": int(positions[jax.process_index()])})
        log(f"resuming from step {start} ({workdir})")
    if sample_image is None and pipeline is not None:
        sample_image = datalib.random_crop(datalib.decode_uint8(pipeline.files[0]), np.random.default_rng(0),
                                           config.image_size).astype(np.float32) / 255.0

    metrics_path = workdir / "metrics.jsonl"
    if primary:
        trim_metrics(metrics_path, start)
    bar = progress_bar(config.steps, desc=f"train {config.style}", unit="step", disable=None if progress is None
                       else not progress)
    bar.update(start)
    t0 = time.perf_counter()
    images_seen = 0
    window_start, window_images = time.perf_counter(), 0
    last: dict[str, float] = {}
    step = start
    def save(at_step: int, state: dict) -> None:
        positions = _gather_positions(batches if pipeline is not None else None)
        manager.save(at_step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=ocp.args.JsonSave({
                "positions": positions, "seconds": seconds_before + time.perf_counter() - t0,
                "images": images_before + images_seen})))

    stop = _StopRequest()
    try:
        stop.install()
        while step < config.steps:
            if stop.requested:
                raise KeyboardInterrupt
            if config.warmup_steps and step == config.warmup_steps:
                # Switch to the perceptual loss with fresh Adam moments: the warmup's pixel-loss
                # statistics are ~1e12x smaller and would make the first perceptual steps huge.
                state = {**state, "opt_state": trainer.replicate(make_optimizer(config).init(state["params"]))}
            batch = trainer.shard_batch(next(batches))
            step_fn = trainer.warmup_step if step < config.warmup_steps else trainer.train_step
            state, metrics = step_fn(state, batch)
            step += 1
            images_seen += global_batch
            window_images += global_batch
            bar.update(1)
            out_of_time = False
            if max_seconds is not None and step % log_every == 0:  # every process checks at the same steps
                out_of_time = _agree(time.perf_counter() - t0 > max_seconds)
            boundary = step % checkpoint_every == 0 or step == config.steps or out_of_time
            if step % log_every == 0 or boundary or step == start + 1:
                last = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if not _finite(last):
                    raise NonFiniteLossError(
                        f"non-finite loss at step {step} ({last}); stopped, the last good checkpoint is kept "
                        f"(step {manager.latest_step()}); try a lower --lr")
                now = time.perf_counter()
                last["images_per_s"] = window_images / max(now - window_start, 1e-9)
                window_start, window_images = now, 0
                bar.set_postfix(loss=f"{last['loss']:.4g}", refresh=False)
                if primary:
                    with metrics_path.open("a") as f:
                        f.write(json.dumps({"step": step, "time": time.time(), **last}) + "\n")
            if boundary:
                save(step, state)
                if primary:
                    write_loss_plot(metrics_path, workdir / "loss.png")
            if primary and sample_image is not None and (step % sample_every == 0 or boundary and (
                    step == config.steps or out_of_time)):
                sample_dir = workdir / "samples"
                sample_dir.mkdir(exist_ok=True)
                stylised = transform.apply(jax.device_get(state["params"]), jnp.asarray(sample_image)[None])
                imagelib.save_image(sample_dir / f"step{step:07d}.png", np.asarray(stylised[0]))
            if out_of_time:
                log(f"stopping at step {step}: --max-seconds {max_seconds:g} reached")
                break
    except KeyboardInterrupt:
        # Ctrl-C: keep the work done since the last checkpoint. The state may be unusable after a
        # second Ctrl-C inside a step (its buffers were donated), and may not be finite (the last
        # step's metrics were not checked): save only when neither is the case.
        usable = not any(leaf.is_deleted() for leaf in jax.tree.leaves(state) if isinstance(leaf, jax.Array))
        if usable and step > start and step != manager.latest_step() and _finite(
                {k: float(v) for k, v in jax.device_get(metrics).items()}):
            save(step, state)
            log(f"interrupted: saved a checkpoint at step {step}; rerun the same command to resume")
        else:
            log(f"interrupted at step {step}; the last checkpoint (step {manager.latest_step()}) is kept")
        raise
    finally:
        stop.uninstall()
        bar.close()
        manager.wait_until_finished()
        manager.close()
    seconds = time.perf_counter() - t0
    params = jax.device_get(state["params"])
    if out is not None and primary:
        meta = export_metadata(config, step, seconds_before + seconds, images_before + images_seen, pipeline)
        transform.save_transform(out, params, meta)
        log(f"wrote {out}")
    return RunResult(params, step, start, seconds, last)


class _StopRequest:
    """Ctrl-C during training: the first press asks the loop to stop after the current step (so
    the state it saves is whole); a second press stops at once. Main thread only."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        sys.stderr.write("\nCtrl-C: stopping after this step and saving a checkpoint (press again to stop now)\n")


def _agree(flag: bool) -> bool:
    """All processes stop together: true if any process says so."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))


def _gather_positions(iterator: Any) -> list[int]:
    """Every process's data-iterator position (grain ``next_index``), in process order."""
    local = int(iterator.get_state()["next_index"]) if iterator is not None else 0
    if jax.process_count() == 1:
        return [local]
    from jax.experimental import multihost_utils

    return [int(v) for v in np.asarray(multihost_utils.process_allgather(np.int64(local))).reshape(-1)]


ARCH_KEYS = ("width", "residual_blocks", "image_size", "style", "style_size", "content_weight", "style_weight",
             "tv_weight", "warmup_steps", "pooling", "seed", "batch_size", "init_from", "teacher")


def _check_workdir_config(workdir: Path, config: TrainConfig, primary: bool) -> None:
    """A workdir belongs to one model: refuse to resume a run with different settings."""
    path = workdir / "config.json"
    current = dataclasses.asdict(config)
    defaults = dataclasses.asdict(TrainConfig())  # a key added since the workdir was made has its default
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except ValueError:
            raise JaxstyleError(f"{path}: unreadable run config; use a fresh --workdir") from None
        diff = [k for k in ARCH_KEYS if saved.get(k, defaults[k]) != current[k]]
        if diff:
            what = ", ".join(f"{k}={saved.get(k, defaults[k])!r} (now {current[k]!r})" for k in diff)
            raise JaxstyleError(f"{workdir} holds a checkpoint of a different model: {what}; use another --workdir")
    if primary:
        atomic.write_atomic(path, json.dumps(current, indent=1))


def export_metadata(config: TrainConfig, steps: int, seconds: float, images_seen: int, pipeline: Any) -> dict:
    from jaxstyle.weights import read_meta

    try:
        vgg_source = read_meta().get("source")
    except Exception:  # metadata is informative only
        vgg_source = None
    teacher = {}
    if config.teacher:
        teacher_file = models.resolve(config.teacher)
        narrowed = not config.init_from and _narrows_to(transform.read_transform(teacher_file)[0], config)
        teacher = {"teacher": config.teacher, "loss": "distillation: MSE to the teacher's output, [0,1] pixels",
                   "teacher_sha256": hashlib.sha256(teacher_file.read_bytes()).hexdigest(),
                   "student_init": "the teacher narrowed (transform.narrow)" if narrowed else None}
    return {
        **teacher,
        "style": config.style, "steps": steps, "warmup_steps": config.warmup_steps,
        "image_size": config.image_size, "batch_size": config.batch_size, "style_size": config.style_size,
        "content_weight": config.content_weight, "style_weight": config.style_weight, "tv_weight": config.tv_weight,
        "lr": config.lr, "seed": config.seed, "data": config.data, "init_from": config.init_from or None,
        "data_files": pipeline.stats.get("files") if pipeline is not None else None,
        "wall_seconds": round(seconds, 1), "images_seen": images_seen,
        "machine": machine_info(),
        "jax": jax.__version__, "vgg": vgg_source,
    }


def trim_metrics(path: Path, upto_step: int) -> None:
    """Keep the complete rows of metrics.jsonl with ``step <= upto_step`` (atomic rewrite).

    After a crash the file can end in a half-written line, and hold rows for steps past the
    checkpoint the run resumes from; those steps are trained again and logged anew.
    """
    if not path.exists():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= upto_step:
            kept.append(line)
    atomic.write_atomic(path, "".join(line + "\n" for line in kept))


def write_loss_plot(metrics_path: Path, out_path: Path, width: int = 640, height: int = 360) -> None:
    """A log-scale plot of the loss terms from metrics.jsonl, drawn with PIL (PNG)."""
    from PIL import Image, ImageDraw

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    keys = [k for k in ("loss", "content", "style", "tv", "pixel") if any(k in r for r in rows)]
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    margin = 40
    draw.rectangle([margin, 10, width - 10, height - margin], outline="black")
    points = {k: [(r["step"], r[k]) for r in rows if k in r and r[k] > 0] for k in keys}
    values = [math.log10(v) for pts in points.values() for _, v in pts]
    steps = [s for pts in points.values() for s, _ in pts]
    if values and steps:
        lo, hi = min(values), max(values)
        hi = hi if hi > lo else lo + 1
        s_lo, s_hi = min(steps), max(steps)
        s_hi = s_hi if s_hi > s_lo else s_lo + 1
        colours = {"loss": "black", "content": "blue", "style": "red", "tv": "green", "pixel": "purple"}
        for i, (k, pts) in enumerate(points.items()):
            xy = [(margin + (s - s_lo) / (s_hi - s_lo) * (width - 10 - margin),
                   height - margin - (math.log10(v) - lo) / (hi - lo) * (height - margin - 10)) for s, v in pts]
            if len(xy) > 1:
                draw.line(xy, fill=colours[k], width=2)
            draw.text((margin + 8 + 70 * i, 14), k, fill=colours[k])
        draw.text((4, height - margin + 4), f"steps {s_lo}..{s_hi}   log10 loss {lo:.1f}..{hi:.1f}", fill="black")
    with atomic.atomic_open(out_path) as f:
        img.save(f, format="PNG")
