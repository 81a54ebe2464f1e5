"""A minimal ``torch.save`` writer without torch, for tests and the fuzzer.

Pickle protocol 2 plus torch's persistent ids, the same layout as ``torch.save(...,
_use_new_zipfile_serialization=False)`` (legacy) or the zip format, so nothing imports torch.
Arrays are NumPy; a :class:`Tensor` is a strided view of a 1-D :class:`Storage`.
"""

from __future__ import annotations

import collections
import io
import pickle
import shlex
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


# ------------------------------------------------------------------------------------------------
# A minimal torch.save writer (no torch).


class _Global:
    """Pickled as ``GLOBAL module\\nname`` without importing ``module``."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # save_reduce insists on a callable
        raise AssertionError("never called")


REBUILD = _Global("torch._utils", "_rebuild_tensor_v2")
STORAGE_TYPES = {np.dtype(np.float32): _Global("torch", "FloatStorage"),
                 np.dtype(np.uint8): _Global("torch", "ByteStorage"),
                 np.dtype(np.float64): _Global("torch", "DoubleStorage")}


@dataclass(eq=False)
class Storage:
    key: str
    data: np.ndarray  # 1-D


@dataclass(eq=False)
class Tensor:
    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _TorchPickler(pickle._Pickler):  # the pure-Python pickler lets us emit arbitrary GLOBALs
    def __init__(self, file, zip_ids: bool = False):
        super().__init__(file, protocol=2)
        self.zip_ids = zip_ids

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            pid = ("storage", STORAGE_TYPES[obj.data.dtype], obj.key, "cpu", obj.data.size)
            return pid if self.zip_ids else (*pid, None)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, _Global):
            return obj.name  # a string: pickle as a global (-> save_global below)
        if isinstance(obj, Tensor):
            return REBUILD, (obj.storage, obj.offset, obj.size, obj.stride, False, collections.OrderedDict())
        return NotImplemented

    def save_global(self, obj, name=None):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def contiguous(arrays: dict[str, np.ndarray]) -> dict[str, Tensor]:
    """One storage per array, C-contiguous tensors."""
    out = {}
    for i, (name, a) in enumerate(arrays.items()):
        strides = tuple(s // a.itemsize for s in np.ascontiguousarray(a).strides)
        out[name] = Tensor(Storage(str(1000 + i), np.ascontiguousarray(a).ravel()), 0, a.shape, strides)
    return out


def _storages(tensors: dict[str, Tensor]) -> list[Storage]:
    return list({id(t.storage): t.storage for t in tensors.values()}.values())


def legacy_bytes(tensors: dict[str, Tensor], *, sys_info: bytes | None = None, main: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    pickle.dump(LEGACY_MAGIC, buf, protocol=2)
    pickle.dump(1001, buf, protocol=2)
    buf.write(sys_info if sys_info is not None else pickle.dumps(SYS_INFO, protocol=2))
    if main is not None:
        buf.write(main)
    else:
        _TorchPickler(buf).dump(tensors)
    storages = _storages(tensors)
    pickle.dump([s.key for s in storages], buf, protocol=2)
    for s in storages:
        buf.write(struct.pack("<q", s.data.size))
        buf.write(s.data.astype(s.data.dtype.newbyteorder("<")).tobytes())
    return buf.getvalue()


def write_torch_zip(path: Path, tensors: dict[str, Tensor]) -> None:
    buf = io.BytesIO()
    _TorchPickler(buf, zip_ids=True).dump(tensors)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
        for s in _storages(tensors):
            zf.writestr(f"archive/data/{s.key}", s.data.tobytes())


def evil_reduce(marker: Path) -> bytes:
    """Opcodes for ``os.system("touch <marker>")``: GLOBAL 'os system', a 1-tuple, REDUCE."""
    cmd = f"touch {shlex.quote(str(marker))}".encode()
    return b"cos\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R"
