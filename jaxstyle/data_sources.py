"""Where :mod:`jaxstyle.data`'s training images come from: a folder (:class:`FolderSource`) or a prepared
TFDS dataset (:class:`TfdsSource`), picked by a spec (:func:`parse_spec`); undecodable elements are skipped
and counted, never fatal."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxstyle.data_decode import _as_rgb_array, decode_uint8
from jaxstyle.errors import JaxstyleError, OptionError, one_line

log = logging.getLogger("jaxstyle.data")

_TFDS_PREFIX = "tfds:"


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


class _SkippingSource:
    """Random-access source of ``uint8[H, W, 3]`` images that returns ``None`` for bad elements.

    Subclasses implement ``_load(index)`` and ``_describe(index)``. Each bad element is logged
    once and remembered, so later epochs skip it without decoding it again. Thread-safe.
    """

    def __init__(self, length: int):
        self._length = length
        self._bad: set[int] = set()
        self._decoded = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._length

    def _load(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def _describe(self, index: int) -> str:
        return f"element {index}"

    def __getitem__(self, index: int) -> np.ndarray | None:
        """``uint8[H, W, 3]`` RGB for element ``index`` (taken modulo ``len``), or ``None``."""
        index = index % self._length
        if index in self._bad:
            return None
        try:
            image = _as_rgb_array(self._load(index))
        except Exception as err:  # any decode problem: skip and count, never fatal
            with self._lock:
                first_time = index not in self._bad
                self._bad.add(index)
            if first_time:
                log.warning("skipping undecodable image %s: %s", self._describe(index), one_line(err))
            return None
        with self._lock:
            self._decoded += 1
        return image

    @property
    def skipped(self) -> int:
        """How many distinct bad elements were seen so far."""
        with self._lock:
            return len(self._bad)

    @property
    def decoded(self) -> int:
        """How many elements were decoded successfully so far (repeats included)."""
        with self._lock:
            return self._decoded


class FolderSource(_SkippingSource):
    """grain random-access source over image files: ``uint8[H, W, 3]`` RGB, or ``None`` if corrupt.

    ``files`` is used in the given order (``make_pipeline`` passes the sorted folder listing).
    ``min_short_side`` lets big JPEGs decode at reduced scale (see :func:`decode_uint8`).
    """

    def __init__(self, files: Sequence[str | os.PathLike[str]], *, min_short_side: int | None = None):
        super().__init__(len(files))
        self.files = [Path(f) for f in files]
        self.min_short_side = min_short_side

    def _load(self, index: int) -> np.ndarray:
        return decode_uint8(self.files[index], self.min_short_side)

    def _describe(self, index: int) -> str:
        return str(self.files[index])

    def __repr__(self) -> str:
        return f"FolderSource({len(self.files)} files)"


class TfdsSource(_SkippingSource):
    """Wraps a TFDS random-access data source; element ``i`` is ``data_source[i]["image"]``."""

    def __init__(self, data_source: Sequence[Any], name: str):
        super().__init__(len(data_source))
        self.data_source = data_source
        self.name = name

    def _load(self, index: int) -> np.ndarray:
        element = self.data_source[index]
        return element["image"] if isinstance(element, dict) else element

    def _describe(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def __repr__(self) -> str:
        return f"TfdsSource({self.name}, {len(self)} examples)"


def parse_spec(spec: str) -> tuple[str, str, str]:
    """Split a pipeline spec: ``("folder", path, "")`` or ``("tfds", "NAME[/CONFIG]", SPLIT)``."""
    spec = os.fspath(spec)
    if not spec.startswith(_TFDS_PREFIX):
        return "folder", spec, ""
    rest = spec[len(_TFDS_PREFIX):]
    name, _, split = rest.partition(":")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)?", name):
        raise OptionError(f"bad dataset spec {spec!r}: expected tfds:NAME[/CONFIG][:SPLIT], e.g. tfds:coco/2014")
    return "tfds", name, split or "train"


def _tfds_source(name: str, split: str) -> TfdsSource:
    """Open a prepared TFDS dataset (ArrayRecord) without TensorFlow."""
    hint = (
        f"prepare it once: pip install 'jaxstyle[tfds]' tensorflow, then tfds build {name} "
        f"--file_format array_record --manual_dir DIR (DIR: the downloaded COCO zips); see jaxstyle.data"
    )
    try:
        from tensorflow_datasets.core import read_only_builder
    except ImportError:
        raise JaxstyleError(
            f"tfds:{name} needs tensorflow-datasets: pip install 'jaxstyle[tfds]' (or pass a folder of images)"
        ) from None
    data_dir = os.environ.get("TFDS_DATA_DIR") or None
    where = data_dir or "~/tensorflow_datasets (set TFDS_DATA_DIR)"
    try:
        # From the prepared files, not the dataset's code (COCO's code imports TensorFlow).
        builder = read_only_builder.builder_from_files(name, data_dir=data_dir)
    except Exception as err:
        log.debug("builder_from_files(%s) failed: %s", name, err)
        raise JaxstyleError(f"tfds:{name} is not prepared in {where}; {hint}") from None
    try:
        data_source = builder.as_data_source(split=split)
    except NotImplementedError:
        raise JaxstyleError(
            f"tfds:{name} in {where} is not stored as array_record; rebuild it with --file_format array_record"
        ) from None
    except Exception as err:
        splits = ", ".join(sorted(builder.info.splits.keys())) or "none"
        raise JaxstyleError(
            f"tfds:{name}: cannot read split {split!r} (available: {splits}): {one_line(err)}"
        ) from None
    if len(data_source) == 0:
        raise JaxstyleError(f"tfds:{name}:{split} has no examples")
    return TfdsSource(data_source, f"tfds:{name}:{split}")
