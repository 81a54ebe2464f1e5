"""What the benchmarks share: the checkout's paths, a timer, machine info and the peers' venvs.

Benchmarks are modules of the ``bench`` package (``.venv/bin/python -m bench.gatys_vs_pastiche``
from the checkout root), so they import this and ``jaxstyle`` without touching ``sys.path``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench._jsonl_server import timed
from jaxstyle.machine import machine_info as _machine_info

__all__ = ["REPO", "RESULTS", "ensure_venv", "log", "machine_info", "out_path", "require_venv", "timed", "venv_python"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"  # git-ignored


def log(message: str) -> None:
    """A time-stamped progress line on stderr, flushed (benchmarks print their tables on stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_info(packages: Iterable[str] = ("flax", "optax"), **extra: Any) -> dict[str, Any]:
    """:func:`jaxstyle.machine.machine_info` with the benchmark's own fields (``extra``) added."""
    return {**_machine_info(packages), **extra}


def out_path(out: Path | None, default: Path, quick: bool) -> Path:
    """Where a benchmark writes: ``out`` if given; else, with ``--quick`` (a smoke run on tiny inputs, which
    measures nothing worth keeping), ``default``'s name in a fresh temporary folder; else ``default``."""
    if out is not None:
        return out
    if quick:
        return Path(tempfile.mkdtemp(prefix="jaxstyle-bench-")) / default.name
    return default


def venv_python(venv: Path) -> Path:
    """The Python of a venv folder."""
    return venv / "bin" / "python"


def _ready(python: Path, check: str) -> bool:
    return python.exists() and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0


def require_venv(venv: Path, check: str, hint: str) -> Path:
    """The Python of an existing peer venv in which ``check`` (Python source) runs; else exits with ``hint``."""
    python = venv_python(venv)
    if not _ready(python, check):
        raise SystemExit(f"{venv} is not set up ({hint})")
    return python


def ensure_venv(venv: Path, installs: Sequence[Sequence[str]], check: str, what: str) -> Path:
    """The Python of ``venv``, created first if ``check`` does not run there: ``python3 -m venv``, then
    one ``pip install`` per entry of ``installs`` (its arguments). Exits with a message on failure."""
    python = venv_python(venv)
    if _ready(python, check):
        return python
    log(f"setting up {venv} ({what})")
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    for args in installs:
        if subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args]).returncode != 0:
            raise SystemExit(f"could not pip install {' '.join(args)} into {venv}")
    if not _ready(python, check):
        raise SystemExit(f"{venv} is not usable after installing; remove it and rerun")
    return python
