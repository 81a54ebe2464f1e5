"""Run a few training steps on deterministic synthetic batches and save the final params.

Used by tests in subprocesses (forced device counts, jax.distributed). Usage:
  python -m tests.helpers.train_worker OUT.npz WORKDIR GLOBAL_BATCH STEPS [--mesh-devices N]
Each process feeds its slice of the same global batches, so any process layout sees the same data.
"""

import sys

import jax
import numpy as np


def global_batches(global_batch: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    while True:
        yield (rng.random((global_batch, size, size, 3)) * 255).astype(np.uint8)


def main() -> None:
    from jaxstyle import train

    train.maybe_initialize_distributed()
    out, workdir, global_batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    mesh_devices = int(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "--mesh-devices" else None
    nproc, pid = jax.process_count(), jax.process_index()
    local = global_batch // nproc
    batches = (b[pid * local : (pid + 1) * local] for b in global_batches(global_batch, 32))
    config = train.TrainConfig(style="synthetic", steps=steps, batch_size=local, image_size=32, style_size=32,
                               width=8, residual_blocks=1)
    style = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    if mesh_devices is not None:
        train.data_mesh = lambda: jax.sharding.Mesh(np.asarray(jax.devices()[:mesh_devices]), ("data",))
    result = train.run(config, workdir, batches=batches, style_image=style, checkpoint_every=steps,
                       progress=False, log=lambda _: None)
    if pid == 0:
        leaves = {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(result.params))}
        np.savez(out, devices=np.int64(jax.device_count()), **leaves)


if __name__ == "__main__":
    main()
