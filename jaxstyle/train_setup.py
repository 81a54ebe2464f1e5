"""What every training run sets up the same way (transform nets, :mod:`jaxstyle.train`, and decoders,
:mod:`jaxstyle.train_decoders`): several processes (``jax.distributed``), the data mesh and the global
batch, the data pipeline and the sample crop, the config as JSON (:func:`jsonable`), and the result a
run returns.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any, Protocol

import jax
import numpy as np
from jax.sharding import Mesh

from jaxstyle.errors import OptionError


class DataConfig(Protocol):
    """The fields of a run's config that its data pipeline reads."""

    @property
    def data(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def image_size(self) -> int: ...
    @property
    def seed(self) -> int: ...


@dataclasses.dataclass
class RunResult:
    """A finished (or stopped) run: the final params, the step reached, the step it resumed from (0: a fresh
    run), the seconds this call trained and the last metrics read back."""

    params: Any
    steps: int
    resumed_from: int
    seconds: float
    last_metrics: dict[str, float]


def jsonable(config: Any) -> dict[str, Any]:
    """The config's fields as JSON would read them back (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


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


def mesh_and_global_batch(batch_size: int) -> tuple[Mesh, int]:
    """The data mesh over every device, and the global batch (``batch_size`` per process), which must
    split evenly over the devices."""
    mesh = data_mesh()
    global_batch = batch_size * jax.process_count()
    if global_batch % mesh.devices.size:
        raise OptionError(f"the global batch ({global_batch}) must be a multiple of the device count "
                          f"({mesh.devices.size})", fields=("batch_size",))
    return mesh, global_batch


def pipeline_and_batches(config: DataConfig, batches: Iterator[np.ndarray] | None) -> tuple[Any, Iterator[np.ndarray]]:
    """``(pipeline, batches)``: ``batches`` as given (tests; no pipeline), else ``config.data`` through
    :func:`jaxstyle.data.make_pipeline`, sharded per process, and its iterator."""
    from jaxstyle import data as datalib

    if batches is not None:
        return None, batches
    pipeline = datalib.make_pipeline(config.data, batch_size=config.batch_size, image_size=config.image_size,
                                     seed=config.seed, shard_index=jax.process_index(),
                                     shard_count=jax.process_count(), num_threads=min(16, os.cpu_count() or 4))
    return pipeline, iter(pipeline)


def sample_crop(pipeline: Any, image_size: int) -> np.ndarray | None:
    """The image the samples show: a fixed crop (seed 0) of the pipeline's first file, float32[S,S,3]
    in [0,1]; None without a pipeline."""
    from jaxstyle import data as datalib

    if pipeline is None:
        return None
    crop = datalib.random_crop(datalib.decode_uint8(pipeline.files[0]), np.random.default_rng(0), image_size)
    return crop.astype(np.float32) / 255.0
