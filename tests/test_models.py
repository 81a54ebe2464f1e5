"""The one model resolver: shipped models are package data, names and paths both resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaxstyle.errors import OptionError, WeightsError
from jaxstyle.io import modelfile
from jaxstyle.methods.transform import net as transform

REPO = Path(__file__).resolve().parents[1]


def test_shipped_models_are_package_data():
    assets = modelfile.assets_dir()
    assert assets == (REPO / "jaxstyle" / "assets").resolve() or assets.name == "assets"
    full = modelfile.shipped()
    assert {"scream", "starry_night", "wave"} <= set(full)
    for name, path in full.items():
        assert path.parent == assets and path.name == f"{name}.msgpack"
        assert json.loads(path.with_name(path.name + ".json").read_text())  # its metadata ships beside it
    assert modelfile.asset("paper/starry_night_warmup.msgpack").is_file()
    assert modelfile.asset("paper/starry_night_nowarmup.msgpack").is_file()
    assert "paper" not in full and not any(name.endswith("_fast") for name in full)


def test_resolve_names_paths_and_fast_variants(tmp_path, monkeypatch):
    shipped = modelfile.shipped()
    assert modelfile.resolve("scream") == shipped["scream"]
    assert modelfile.resolve("scream", fast=True).name == "scream_fast.msgpack"
    assert modelfile.resolve(shipped["wave"]) == shipped["wave"]  # a path stays itself
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scream").write_bytes(b"not a model")  # a shipped name wins over a stray file
    assert modelfile.resolve("scream") == shipped["scream"]
    with pytest.raises(WeightsError, match=r"no transform model 'nope': .*scream.*gatys"):
        modelfile.resolve("nope")
    with pytest.raises(OptionError, match="no fast model for 'nope'"):
        modelfile.resolve("nope", fast=True)
    with pytest.raises(OptionError, match="unknown model kind"):
        modelfile.resolve("scream", kind="nope")


def test_load_returns_params_and_metadata():
    params, meta = modelfile.load("wave")
    assert transform.architecture(params) == {"width": 32, "residual_blocks": 5}
    assert meta["style"] == "wave"
    fast_params, fast_meta = modelfile.load("wave", fast=True)
    assert transform.architecture(fast_params)["width"] == 16 and fast_meta["teacher"] == "wave"


def test_a_second_kind_uses_the_same_resolver(tmp_path, monkeypatch):
    (tmp_path / "decoders").mkdir()
    (tmp_path / "decoders" / "relu4.msgpack").write_bytes(b"abc")
    monkeypatch.setitem(modelfile.KINDS, "decoder", modelfile.Kind(
        "decoder", str(tmp_path / "decoders"), lambda path: (path.read_bytes(), {"file": path.name}), "decoder"))
    assert modelfile.shipped("decoder") == {"relu4": tmp_path / "decoders" / "relu4.msgpack"}
    assert modelfile.load("relu4", kind="decoder") == (b"abc", {"file": "relu4.msgpack"})
    with pytest.raises(WeightsError, match=r"no decoder 'relu5'.*\(relu4\)$"):
        modelfile.resolve("relu5", kind="decoder")
