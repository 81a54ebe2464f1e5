"""Model files by name: the one resolver for shipped models (package data) and model files.

Shipped models live in the installed package, under ``jaxstyle/assets/`` (read through
:mod:`importlib.resources`, so they are found wherever jaxstyle is installed). Each *kind* of
model has its own folder there and its own reader:

* ``transform``: ``assets/<style>.msgpack`` (+ ``.msgpack.json``, its metadata), the Johnson
  transform nets; ``assets/<style>_fast.msgpack`` is the half-width ``--fast`` variant of
  ``<style>``. ``assets/paper/`` holds the paper's comparison models (not listed as styles; see
  :func:`asset`).

* ``decoders``: ``assets/decoders/<name>.msgpack``, the decoders of arbitrary-style transfer
  (:mod:`jaxstyle.methods.arbitrary.vgg_decoders`); ``photo`` is the default set.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.resources
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaxstyle.errors import OptionError, WeightsError

MODEL_SUFFIX = ".msgpack"
FAST_SUFFIX = "_fast"  # assets/<style>_fast.msgpack: the half-width variant of <style>

Reader = Callable[[Path], tuple[Any, dict]]
"""A model file -> ``(params, metadata)``; raises WeightsError (one line) on a bad file."""


@dataclass(frozen=True)
class Kind:
    """One kind of shipped model file.

    name: the key passed as ``kind=`` (``"transform"``).
    folder: its folder under ``jaxstyle/assets/`` (``""``: the top level), or an absolute folder for a
        kind whose files ship elsewhere (joined with :func:`assets_dir` as a path, so an absolute one wins).
    read: the file reader, ``path -> (params, metadata)``.
    what: how errors name it (``"transform model"``).
    hint: appended to the error for an unknown name.
    """

    name: str
    folder: str
    read: Reader
    what: str
    hint: str = ""


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add (or replace) a kind of shipped model; returns it.

    Each kind is registered once, by the module that owns its file format (this module knows no
    net): ``transform`` by :mod:`jaxstyle.methods.transform.net`, ``decoders`` by
    :mod:`jaxstyle.methods.arbitrary.vgg_decoders`. Look a kind's models up through that module (or after
    importing it)."""
    KINDS[kind.name] = kind
    return kind


_files = contextlib.ExitStack()
atexit.register(_files.close)
_assets: Path | None = None


def assets_dir() -> Path:
    """The installed ``jaxstyle/assets`` folder as a file-system path."""
    global _assets
    if _assets is None:
        # A plain install gives a real folder; a zipped one is extracted once, for this process.
        _assets = _files.enter_context(importlib.resources.as_file(importlib.resources.files("jaxstyle") / "assets"))
    return _assets


def asset(relative: str) -> Path:
    """A file shipped under ``jaxstyle/assets``, e.g. ``asset("paper/starry_night_warmup.msgpack")``."""
    return assets_dir() / relative


def _kind(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise OptionError(f"unknown model kind {kind!r} (known: {', '.join(KINDS) or 'none registered yet'})") from None


def shipped(kind: str = "transform", fast: bool = False) -> dict[str, Path]:
    """Names of the shipped models of ``kind`` -> their files, sorted by name.

    ``<name>_fast.msgpack`` is the fast variant of ``<name>``: listed (under ``<name>``) only with
    ``fast=True``, and never among the full models.
    """
    folder = assets_dir() / _kind(kind).folder
    files = {p.name[: -len(MODEL_SUFFIX)]: p for p in sorted(folder.glob(f"*{MODEL_SUFFIX}")) if p.is_file()}
    if fast:
        return {name[: -len(FAST_SUFFIX)]: path for name, path in files.items() if name.endswith(FAST_SUFFIX)}
    return {name: path for name, path in files.items() if not name.endswith(FAST_SUFFIX)}


def resolve(name_or_path: str | os.PathLike[str], kind: str = "transform", fast: bool = False) -> Path:
    """A shipped model's name (``scream``) or a model file's path -> the file.

    A shipped name wins over a file of the same name in the current folder. ``fast`` picks the
    shipped name's fast variant (OptionError for a file or a name without one). Raises
    WeightsError (one line, naming the shipped choices) when it is neither.
    """
    spec = _kind(kind)
    key = str(name_or_path)
    if fast:
        variants = shipped(kind, fast=True)
        if key not in variants and Path(key).exists():
            raise OptionError(f"fast picks the fast variant of a shipped style, and {key} is a file; "
                              "pass a model file without fast", fields=("fast",))
        if key not in variants:
            raise OptionError(f"fast: no fast model for {key!r}; fast models ship for: "
                              f"{', '.join(variants) or 'none'} (to make one: bin/train --teacher MODEL --width 16)",
                              fields=("fast",))
        return variants[key]
    names = shipped(kind)
    if key in names:
        return names[key]
    path = Path(name_or_path)
    if path.is_file():
        return path
    hint = f"; {spec.hint}" if spec.hint else ""
    raise WeightsError(f"no {spec.what} {key!r}: not a file and not a shipped model "
                       f"({', '.join(names) or 'none shipped yet'}){hint}")


def load(name_or_path: str | os.PathLike[str], kind: str = "transform", fast: bool = False) -> tuple[Any, dict]:
    """``(params, metadata)`` of a shipped model or a model file (see :func:`resolve`).

    For ``transform``: params float32 ``{"params": {...}}``, metadata the training record.
    """
    return _kind(kind).read(resolve(name_or_path, kind, fast))


# -- the model file format (msgpack, no pickle) ---------------------------------------------------------


def write_file(path: str | os.PathLike[str], fmt: str, version: int, params: Any, metadata: dict,
               dtype: Any = "float16") -> Path:
    """Write ``{"format", "version", "metadata" (JSON text), "params" (as dtype)}`` to one msgpack file,
    atomically, plus ``<path>.json`` with the metadata. A failure raises WeightsError and leaves nothing."""
    import json

    import jax
    import numpy as np
    from flax import serialization

    from jaxstyle import atomic

    path = Path(path)
    meta = {**metadata, "stored_dtype": np.dtype(dtype).name}
    tree = {"format": fmt, "version": version, "metadata": json.dumps(meta, sort_keys=True),
            "params": jax.tree.map(lambda a: np.asarray(a, dtype=dtype), params)}
    for target, data in ((path, serialization.msgpack_serialize(tree)),
                         (path.with_name(path.name + ".json"), json.dumps(meta, indent=1, sort_keys=True).encode())):
        try:
            atomic.write_atomic(target, data)
        except OSError as err:
            raise WeightsError(f"{target}: cannot write the model file ({err.strerror or err})") from None
    return path


def read_file(path: str | os.PathLike[str], fmt: str, version: int, what: str, hint: str = "") -> tuple[Any, dict]:
    """``(params as float32 numpy, metadata)`` of a :func:`write_file` file of format ``fmt``.

    Safe: msgpack only (no pickle). A missing, corrupt or foreign file, another version or unreadable
    metadata raise WeightsError (one line, naming ``what`` the file should be, then ``hint``).
    """
    import json

    import jax
    import numpy as np
    from flax import serialization

    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise WeightsError(f"{path}: cannot read model file ({err.strerror or err}){tail}") from None
    try:
        tree = serialization.msgpack_restore(data)
    except Exception as err:  # msgpack raises several unrelated types on garbage
        raise WeightsError(f"{path}: not a jaxstyle model file (corrupt or truncated: {type(err).__name__}){tail}"
                           ) from None
    if not isinstance(tree, dict) or tree.get("format") != fmt:
        raise WeightsError(f"{path}: not a jaxstyle {what} file{tail}")
    if tree.get("version") != version:
        raise WeightsError(f"{path}: model format version {tree.get('version')} is not supported{tail}")
    try:
        metadata = json.loads(tree["metadata"])
    except (KeyError, TypeError, ValueError):
        raise WeightsError(f"{path}: model file has no readable metadata{tail}") from None
    try:
        params = jax.tree.map(lambda a: np.asarray(a, dtype=np.float32), tree.get("params"))
    except (TypeError, ValueError):
        raise WeightsError(f"{path}: model file has unreadable parameters{tail}") from None
    return params, metadata
