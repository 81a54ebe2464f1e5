"""Crash-safe training: ``bin/train`` killed at random points resumes and ends where an
uninterrupted run ends; no checkpoint is ever unreadable; Ctrl-C saves before exiting."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

STEPS = 12
CHECKPOINT_EVERY = 2


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    rng = np.random.default_rng(0)
    (root / "data").mkdir()
    for i in range(10):
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(root / "data" / f"{i}.png")
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(root / "style.png")
    return root


def _start(inputs: Path, workdir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "jaxstyle.cli.train", "--style", str(inputs / "style.png"),
           "--data", str(inputs / "data"), "--workdir", str(workdir), "--steps", str(STEPS),
           "--batch-size", "2", "--image-size", "32", "--style-size", "32", "--width", "8",
           "--checkpoint-every", str(CHECKPOINT_EVERY), "--log-every", "1", "--sample-every", "1000"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen, condition, timeout: float = 180.0) -> bool:
    """Poll ``condition()`` every 2 ms until it holds (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    proc.kill()
    raise AssertionError("bin/train did not reach the kill point in time")


def _metrics_inode(workdir: Path) -> int | None:
    path = workdir / "metrics.jsonl"
    return path.stat().st_ino if path.exists() else None


def _logged_steps(workdir: Path, old_inode: int | None) -> int:
    """Rows of metrics.jsonl written by the current run: a (re)start rewrites the file (new inode),
    keeping only the steps up to the checkpoint it resumes from."""
    path = workdir / "metrics.jsonl"
    try:
        if path.stat().st_ino == old_inode:
            return 0
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


def _temporary(workdir: Path) -> set[str]:
    """Names of the checkpoint folders being written (Orbax renames them when complete)."""
    folder = workdir / "checkpoints"
    return {p.name for p in folder.iterdir() if "tmp" in p.name} if folder.is_dir() else set()


def _restore_all(workdir: Path) -> dict[int, dict]:
    """Every checkpoint in the workdir, restored (an unreadable one fails the test)."""
    import orbax.checkpoint as ocp

    restored = {}
    with ocp.CheckpointManager(workdir / "checkpoints", item_names=("state", "data")) as manager:
        for step in manager.all_steps():
            restored[step] = manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(), data=ocp.args.JsonRestore()))
            assert int(restored[step]["state"]["step"]) == step
    return restored


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


@pytest.mark.slow  # 452 s
def test_sigkill_and_sigint_at_random_points_lose_nothing(tmp_path, inputs):
    rng = random.Random(7)
    reference = tmp_path / "reference"
    code, _, err = _finish(_start(inputs, reference))
    assert code == 0, err

    workdir = tmp_path / "killed"
    cycles = []
    # 1: SIGKILL in the middle of a step; 2: SIGKILL while a checkpoint is being written.
    latest = 0
    for kind in ("step", "checkpoint"):
        stale = _temporary(workdir)  # left by the previous kill; the next start removes them
        inode = _metrics_inode(workdir)
        proc = _start(inputs, workdir)
        if kind == "step":
            target = latest + rng.randint(3, 5)
            reached = _wait_for(proc, lambda t=target, i=inode: _logged_steps(workdir, i) >= t)
            time.sleep(rng.uniform(0.0, 0.05))
        else:
            reached = _wait_for(proc, lambda s=stale: bool(_temporary(workdir) - s))
        assert reached, f"bin/train ended before the {kind} kill point"
        proc.send_signal(signal.SIGKILL)
        code, out, err = _finish(proc)
        assert code == -signal.SIGKILL
        checkpoints = _restore_all(workdir)  # none unreadable
        assert max(checkpoints, default=0) >= latest  # a kill never loses a complete checkpoint
        latest = max(checkpoints, default=0)
        cycles.append((kind, latest))

    # 3: Ctrl-C mid-run saves a checkpoint of the step it stopped at, then exits 130.
    stale, inode = _temporary(workdir), _metrics_inode(workdir)
    proc = _start(inputs, workdir)
    last = latest
    assert _wait_for(proc, lambda: _logged_steps(workdir, inode) >= last + 1 and not (_temporary(workdir) - stale))
    proc.send_signal(signal.SIGINT)
    code, out, err = _finish(proc)
    assert code == 130, err
    if last:
        assert f"resuming from step {last}" in out + err
    saved = max(_restore_all(workdir))
    assert saved > last
    if saved % CHECKPOINT_EVERY:  # stopped between two regular checkpoints: Ctrl-C wrote this one
        assert f"interrupted: saved a checkpoint at step {saved}" in out + err

    # 4: the last run finishes from where the others stopped.
    code, out, err = _finish(_start(inputs, workdir))
    assert code == 0, err
    assert f"resuming from step {saved}" in out + err
    final = _restore_all(workdir)[STEPS]["state"]
    expected = _restore_all(reference)[STEPS]["state"]
    for a, b in zip(jax.tree.leaves(final["params"]), jax.tree.leaves(expected["params"]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(final["opt_state"]), jax.tree.leaves(expected["opt_state"]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    # The metrics log is whole: one row per step, each step once, no half-written line.
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert not any("tmp" in p.name for p in (workdir / "checkpoints").iterdir())
    print("kill cycles (kind, latest checkpoint after the kill):", cycles)
