"""The one model resolver: shipped models are package data, names and paths both resolve."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import msgpack
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
    assert modelfile.asset("paper/starry_night_teacherwarmup.msgpack").is_file()
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


_MACHINE_PATH = re.compile(r"(?<![\w.])(?:/(?:work|home|tmp|root|Users|mnt|var|opt|srv|data)(?:/|\b)|~/|[A-Za-z]:\\)")


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_no_shipped_metadata_holds_an_absolute_path():
    """Shipped files describe where they came from without this machine's paths: every text file under
    jaxstyle/assets and the metadata embedded in every model file (read as msgpack, params left alone)."""
    assets = modelfile.assets_dir()
    texts: dict[str, str] = {}
    for path in sorted(assets.rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(assets))
        if path.suffix == ".msgpack":
            tree = msgpack.unpackb(path.read_bytes(), raw=False, strict_map_key=False)
            meta = json.loads(tree["metadata"])
            texts[f"{name} (embedded metadata)"] = "\n".join(_strings(meta))
            for value in _strings(meta):
                assert not Path(value).is_absolute(), (name, value)
        else:
            texts[name] = path.read_text(encoding="utf-8")
    assert any(name.endswith("(embedded metadata)") for name in texts) and any(n.endswith(".json") for n in texts)
    found = {name: _MACHINE_PATH.findall(text) for name, text in texts.items()}
    assert not {name: hits for name, hits in found.items() if hits}
