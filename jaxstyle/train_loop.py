"""The training run, generic over what is trained: setup, one loop, periodic hooks.

A :class:`Mode` says what is trained: how its params start (``init_params``), the loss of each
phase (``phases``, e.g. an identity warmup, then the perceptual loss), the optimiser, and how a
sample image is drawn (``sample_fn``). Everything else is shared by every mode: the sharded,
jitted, donating train step (:class:`Trainer`), Orbax checkpoints with the data-iterator
position (resume after a crash or Ctrl-C), metrics.jsonl and its loss plot, sample images,
the time limit, and the all-process agreement these need. Transform nets
(:func:`jaxstyle.train.run`) are one mode, the arbitrary-style decoders
(:func:`jaxstyle.train_decoders.run_decoders`) another; each plugs in with its own ``Mode``.

The train state is a plain dict ``{"params", "opt_state", "step": int32[]}``. The step is pure:
``(state, uint8 batch) -> (state, metrics)``, data-parallel over every device of every process:
the batch is sharded on the ``data`` axis of a 1-D mesh and the state replicated, so XLA inserts
the gradient all-reduce. The per-step PRNG key is ``fold_in(key(seed), step)`` (the same on
every process, and the same after a resume). Metrics reach the host every ``log_every`` steps
(and at checkpoints), not every step.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
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

from jaxstyle import atomic
from jaxstyle.errors import JaxstyleError, NonFiniteLossError
from jaxstyle.progress import Progress

#: ``loss_fn(params, images, frozen, key) -> (loss, metrics)``: images float32[N,H,W,3] in [0,1],
#: ``frozen`` the mode's fixed inputs (replicated), ``key`` this step's PRNG key; metrics
#: ``{name: float32[]}`` with ``"loss"`` among them.
LossFn = Callable[[Any, jax.Array, Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of training with one loss. ``loss_fn`` is hashed: it keys the compiled step, so
    equal losses (e.g. of runs that differ only in their style image) share one compilation.
    steps: how many steps the phase lasts (None: to the end). Entering a later phase starts the
    optimiser state afresh (the earlier loss's moment estimates would be on another scale)."""

    loss_fn: LossFn
    steps: int | None = None


@dataclasses.dataclass(frozen=True)
class Mode:
    """What one kind of training trains.

    init_params(key) -> params (a pytree of arrays); phases: run in order; optimizer: kept for the
    whole run (the step closes over this object, it is never rebuilt); sample_fn(params, images
    float32[1,H,W,3] in [0,1]) -> the same, for sample images; plot_keys: the metrics drawn in
    loss.png (those present).
    """

    init_params: Callable[[jax.Array], Any]
    phases: tuple[Phase, ...]
    optimizer: optax.GradientTransformation
    sample_fn: Callable[[Any, jax.Array], jax.Array] | None = None
    plot_keys: tuple[str, ...] = ("loss", "content", "style", "tv", "pixel")

    def phase_at(self, step: int) -> int:
        """The index of the phase that step ``step`` (0-based: the step taken from state step ``step``) is in."""
        end = 0
        for index, phase in enumerate(self.phases):
            if phase.steps is None:
                return index
            end += phase.steps
            if step < end:
                return index
        return len(self.phases) - 1

    def init_state(self, key: jax.Array) -> dict[str, Any]:
        """``{"params", "opt_state", "step": int32[]}`` of a fresh run."""
        params = self.init_params(key)
        return {"params": params, "opt_state": self.optimizer.init(params), "step": jnp.zeros((), jnp.int32)}


def _step(state: dict, batch: jax.Array, frozen: Any, seed: jax.Array, loss_fn: LossFn,
          optimizer: optax.GradientTransformation) -> tuple[dict, dict]:
    images = batch.astype(jnp.float32) / 255.0
    step_key = jax.random.fold_in(jax.random.key(seed), state["step"])
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], images, frozen, step_key)
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {**metrics, "grad_norm": optax.tree.norm(grads)}
    return {"params": params, "opt_state": opt_state, "step": state["step"] + 1}, metrics


@functools.lru_cache(maxsize=8)
def compiled_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, mesh: Mesh) -> Callable:
    """The jitted ``step(state, batch uint8[B,H,W,3], frozen, seed uint32[]) -> (state, metrics)`` (state
    donated); the loss gets the key ``fold_in(key(seed), step)``."""
    replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    return jax.jit(functools.partial(_step, loss_fn=loss_fn, optimizer=optimizer),
                   in_shardings=(replicated, batch_sharding, replicated, replicated),
                   out_shardings=(replicated, replicated), donate_argnums=(0,))


class Trainer:
    """The jitted steps and the shardings of one mode on one mesh; ``frozen`` is put on the devices once."""

    def __init__(self, mode: Mode, mesh: Mesh, frozen: Any, seed: int = 0) -> None:
        self.mode = mode
        self.mesh = mesh
        self.replicated = NamedSharding(mesh, P())
        self.batch_sharding = NamedSharding(mesh, P("data"))
        self.frozen = jax.device_put(frozen, self.replicated)
        # The seed, not a key: a host value can be put on every process's devices (a key made here could not).
        self.seed = jax.device_put(np.uint32(seed), self.replicated)
        self._steps = [compiled_step(phase.loss_fn, mode.optimizer, mesh) for phase in mode.phases]

    def step(self, state: dict, batch: jax.Array, phase: int = -1) -> tuple[dict, dict]:
        """Pure ``(state, batch) -> (state, metrics)`` with the loss of phase ``phase`` (default: the last)."""
        return self._steps[phase](state, batch, self.frozen, self.seed)

    def fresh_opt_state(self, state: dict) -> dict:
        """``state`` with the optimiser state started afresh (replicated)."""
        return {**state, "opt_state": self.replicate(self.mode.optimizer.init(state["params"]))}

    def shard_batch(self, local_batch: np.ndarray) -> jax.Array:
        """This process's uint8[B,H,W,3] -> a global array sharded over the ``data`` axis."""
        return jax.make_array_from_process_local_data(self.batch_sharding, local_batch)

    def replicate(self, tree: Any) -> Any:
        return jax.device_put(tree, self.replicated)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How long to train and how often each hook runs (in steps; max_seconds in training seconds)."""

    steps: int
    checkpoint_every: int = 1000
    log_every: int = 50
    sample_every: int = 1000
    max_seconds: float | None = None


@dataclasses.dataclass
class FitResult:
    params: Any  # on the host
    steps: int
    resumed_from: int
    seconds: float  # of this run
    total_seconds: float  # of every run in the workdir, this one included
    images_seen: int  # over every run in the workdir
    last_metrics: dict[str, float]


def fit(trainer: Trainer, initial: dict, workdir: Path, batches: Iterator[np.ndarray], schedule: Schedule, *,
        global_batch: int, sample_image: np.ndarray | None = None, progress: Progress | None = None,
        log: Callable[[str], None] = print) -> FitResult:
    """Train ``initial`` (or the workdir's latest checkpoint) until ``schedule.steps``.

    batches: this process's uint8[B,H,W,3] batches; if it has ``get_state``/``set_state`` (a grain
    iterator) its position is checkpointed and restored. Checkpoints (Orbax, async, the last 3
    kept) hold the train state and the data position; a NaN/Inf loss stops the run before anything
    non-finite is saved; Ctrl-C saves the state reached and re-raises KeyboardInterrupt.
    """
    return _Run(trainer, workdir, batches, schedule, global_batch, sample_image, progress, log).fit(initial)


class _Run:
    """One call of :func:`fit`: the loop, and the hooks it calls between steps."""

    def __init__(self, trainer: Trainer, workdir: Path, batches: Iterator[np.ndarray], schedule: Schedule,
                 global_batch: int, sample_image: np.ndarray | None, progress: Progress | None,
                 log: Callable[[str], None]) -> None:
        import orbax.checkpoint as ocp

        self.ocp = ocp
        self.trainer, self.workdir, self.batches, self.schedule = trainer, workdir, batches, schedule
        self.global_batch, self.sample_image, self.progress, self.log = global_batch, sample_image, progress, log
        self.primary = jax.process_index() == 0
        self.resumable = hasattr(batches, "get_state") and hasattr(batches, "set_state")
        self.metrics_path = workdir / "metrics.jsonl"
        # A checkpoint is written to a temporary folder and renamed when complete, so a kill during a
        # write leaves only a temporary folder, which the next start removes.
        options = ocp.CheckpointManagerOptions(max_to_keep=3, enable_async_checkpointing=True, create=True,
                                               cleanup_tmp_directories=True)
        self.manager = ocp.CheckpointManager(workdir / "checkpoints", options=options, item_names=("state", "data"))
        self.seconds_before, self.images_before, self.images_seen = 0.0, 0, 0
        self.t0 = time.perf_counter()
        self.last: dict[str, float] = {}

    # -- setup -----------------------------------------------------------------------------------

    def restore(self, state: dict) -> tuple[dict, int]:
        ocp = self.ocp
        latest = self.manager.latest_step()
        if latest is None:
            return state, 0
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        try:
            restored = self.manager.restore(latest, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
        except (ValueError, KeyError, TypeError) as err:
            raise JaxstyleError(f"{self.workdir}: cannot restore checkpoint {latest} ({str(err).splitlines()[0]}); "
                                "use a fresh workdir", fields=("workdir",)) from None
        data = restored["data"]
        self.seconds_before = float(data.get("seconds", 0.0))
        self.images_before = int(data.get("images", 0))
        if self.resumable:
            self.batches.set_state(  # type: ignore[attr-defined]  # a grain iterator (self.resumable)
                {"next_index": int(data["positions"][jax.process_index()])})
        start = int(restored["state"]["step"])
        self.log(f"resuming from step {start} ({self.workdir})")
        return restored["state"], start

    # -- hooks -----------------------------------------------------------------------------------

    def save(self, step: int, state: dict) -> None:
        ocp = self.ocp
        positions = _gather_positions(self.batches if self.resumable else None)
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=ocp.args.JsonSave({
                "positions": positions, "seconds": self.seconds_before + time.perf_counter() - self.t0,
                "images": self.images_before + self.images_seen})))

    def read_metrics(self, step: int, metrics: dict, window: list) -> None:
        """Metrics to the host: checked finite, with the throughput since the last read, appended to metrics.jsonl."""
        last = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if not _finite(last):
            raise NonFiniteLossError(
                f"non-finite loss at step {step} ({last}); stopped, the last good checkpoint is kept "
                f"(step {self.manager.latest_step()}); try a lower lr", fields=("lr",))
        now = time.perf_counter()
        last["images_per_s"] = window[1] / max(now - window[0], 1e-9)
        window[:] = [now, 0]
        self.last = last
        if self.primary:
            with self.metrics_path.open("a") as f:
                f.write(json.dumps({"step": step, "time": time.time(), **last}) + "\n")

    def write_sample(self, step: int, state: dict) -> None:
        sample_fn = self.trainer.mode.sample_fn
        if sample_fn is None or self.sample_image is None:
            return
        sample_dir = self.workdir / "samples"
        sample_dir.mkdir(exist_ok=True)
        from jaxstyle.io import images as imagelib

        out = sample_fn(jax.device_get(state["params"]), jnp.asarray(self.sample_image)[None])
        imagelib.save_image(sample_dir / f"step{step:07d}.png", np.asarray(out[0]))

    # -- the loop --------------------------------------------------------------------------------

    def fit(self, initial: dict) -> FitResult:
        trainer, schedule, mode = self.trainer, self.schedule, self.trainer.mode
        state, start = self.restore(trainer.replicate(initial))
        if self.primary:
            trim_metrics(self.metrics_path, start)
        self.t0 = time.perf_counter()
        window = [self.t0, 0]  # [start time, images] since the last metrics read
        step, metrics = start, None
        stop = _StopRequest()
        try:
            stop.install()
            while step < schedule.steps:
                if stop.requested:
                    raise KeyboardInterrupt
                phase = mode.phase_at(step)
                if phase and mode.phase_at(step - 1) != phase:
                    state = trainer.fresh_opt_state(state)
                state, metrics = trainer.step(state, trainer.shard_batch(next(self.batches)), phase)
                step += 1
                self.images_seen += self.global_batch
                window[1] += self.global_batch
                out_of_time = False
                if schedule.max_seconds is not None and step % schedule.log_every == 0:
                    # every process checks at the same steps, and they stop together
                    out_of_time = _agree(time.perf_counter() - self.t0 > schedule.max_seconds)
                last_step = step == schedule.steps or out_of_time
                boundary = step % schedule.checkpoint_every == 0 or last_step
                if step % schedule.log_every == 0 or boundary or step == start + 1:
                    self.read_metrics(step, metrics, window)
                if self.progress:
                    self.progress(step, self.last)
                if boundary:
                    self.save(step, state)
                    if self.primary:
                        write_loss_plot(self.metrics_path, self.workdir / "loss.png", mode.plot_keys)
                if self.primary and (step % schedule.sample_every == 0 or last_step):
                    self.write_sample(step, state)
                if out_of_time:
                    self.log(f"stopping at step {step}: the time limit of {schedule.max_seconds:g} s is reached")
                    break
        except KeyboardInterrupt:
            self.interrupted(step, start, state, metrics)
            raise
        finally:
            stop.uninstall()
            self.manager.wait_until_finished()
            self.manager.close()
        seconds = time.perf_counter() - self.t0
        return FitResult(jax.device_get(state["params"]), step, start, seconds, self.seconds_before + seconds,
                         self.images_before + self.images_seen, self.last)

    def interrupted(self, step: int, start: int, state: dict, metrics: dict | None) -> None:
        # Ctrl-C: keep the work done since the last checkpoint. The state may be unusable after a
        # second Ctrl-C inside a step (its buffers were donated), and may not be finite (the last
        # step's metrics were not checked): save only when neither is the case.
        usable = not any(leaf.is_deleted() for leaf in jax.tree.leaves(state) if isinstance(leaf, jax.Array))
        latest = self.manager.latest_step()
        if usable and metrics is not None and step > start and step != latest and _finite(
                {k: float(v) for k, v in jax.device_get(metrics).items()}):
            self.save(step, state)
            self.log(f"interrupted: saved a checkpoint at step {step}; rerun the same command to resume")
        else:
            self.log(f"interrupted at step {step}; the last checkpoint (step {latest}) is kept")


def _finite(metrics: Mapping[str, float]) -> bool:
    return all(math.isfinite(v) for v in metrics.values())


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


_COLOURS = {"loss": "black", "content": "blue", "style": "red", "tv": "green", "pixel": "purple"}
_OTHER_COLOURS = ("orange", "brown", "grey", "teal", "olive")


def write_loss_plot(metrics_path: Path, out_path: Path, keys: tuple[str, ...] = Mode.plot_keys,
                    width: int = 640, height: int = 360) -> None:
    """A log-scale plot of the loss terms ``keys`` (those present) from metrics.jsonl, drawn with PIL (PNG)."""
    from PIL import Image, ImageDraw

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    keys = tuple(k for k in keys if any(k in r for r in rows))
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
        for i, (k, pts) in enumerate(points.items()):
            colour = _COLOURS.get(k, _OTHER_COLOURS[i % len(_OTHER_COLOURS)])
            xy = [(margin + (s - s_lo) / (s_hi - s_lo) * (width - 10 - margin),
                   height - margin - (math.log10(v) - lo) / (hi - lo) * (height - margin - 10)) for s, v in pts]
            if len(xy) > 1:
                draw.line(xy, fill=colour, width=2)
            draw.text((margin + 8 + 70 * i, 14), k, fill=colour)
        draw.text((4, height - margin + 4), f"steps {s_lo}..{s_hi}   log10 loss {lo:.1f}..{hi:.1f}", fill="black")
    with atomic.atomic_open(out_path) as f:
        img.save(f, format="PNG")
