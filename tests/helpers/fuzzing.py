"""Fuzz targets and Hypothesis strategies, shared by ``tests/test_fuzz.py`` and ``bench/fuzz.py``.

A *target* is a file reader of ours plus a strategy for the bytes it is fed. Feeding one input has
exactly three possible outcomes:

* ``clean``: the reader returned a well-formed result (checked: an image is ``float32[H, W, 3]``
  in ``[0, 1]``; a torch state dict is ``{str: ndarray}``);
* ``ours``: it raised one of our own errors (a :class:`jaxstyle.errors.JaxstyleError` subclass);
* ``other``: anything else, including a malformed result or no result within the hard timeout.
  These are the bugs.
"""

from __future__ import annotations

import contextlib
import signal
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from jaxstyle.errors import JaxstyleError
from jaxstyle.io import images
from jaxstyle.io.torchfile import read_legacy_torch

from .imagefiles import fuzz_seeds
from .torchfile import contiguous, legacy_bytes

CLEAN, OURS, OTHER = "clean", "ours", "other"
OUTCOMES = (CLEAN, OURS, OTHER)

#: Largest random input; mutations may grow a seed file by a few hundred bytes more.
MAX_RANDOM_BYTES = 4096
#: Mutations applied to a seed file per example (at least one).
MAX_MUTATIONS = 6
#: Seconds after which one input counts as a hang (an ``other`` outcome).
HANG_SECONDS = 20.0

_IMAGE_MAGICS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"II*\x00", b"MM\x00*", b"RIFF", b"BM")
#: Leading bytes that the mutations of each seed file keep: its signature (WebP: RIFF, size, WEBP).
_SIGNATURE_BYTES = {"torch": 2, "png": 8, "jpeg": 2, "gif": 6, "tiff": 4, "webp": 12}
_INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)


class Hang(BaseException):
    """Raised by :func:`hard_timeout`. A ``BaseException``, so no ``except Exception`` in the code
    under test can turn a hang into an ordinary error."""


@contextlib.contextmanager
def hard_timeout(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread after ``seconds`` (SIGALRM; a no-op elsewhere)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no result after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------------------------
# Strategies


@st.composite
def _position(draw: st.DrawFn, length: int, keep: int) -> int:
    """An offset in ``[keep, length)``, biased toward the 64 bytes after ``keep`` (where headers live)."""
    if length <= keep + 1:
        return min(keep, max(length - 1, 0))
    return draw(st.integers(keep, min(keep + 63, length - 1)) | st.integers(keep, length - 1))


@st.composite
def _mutate_once(draw: st.DrawFn, data: bytes, keep: int) -> bytes:
    """One random edit at or after offset ``keep``: flip bits, set an interesting byte, insert,
    delete, or truncate."""
    kind = draw(st.sampled_from(("flip", "set", "insert", "delete", "truncate")))
    if len(data) <= keep:
        return data + draw(st.binary(min_size=1, max_size=16)) if kind == "insert" else data
    at = draw(_position(len(data), keep))
    if kind == "flip":
        mask = draw(st.integers(1, 255))
        return data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]
    if kind == "set":
        value = draw(st.sampled_from(_INTERESTING_BYTES) | st.integers(0, 255))
        return data[:at] + bytes([value]) + data[at + 1 :]
    if kind == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    if kind == "delete":
        return data[:at] + data[at + draw(st.integers(1, 16)) :]
    return data[:at]


@st.composite
def mutations(draw: st.DrawFn, seed: bytes, keep: int = 0) -> bytes:
    """``seed`` after 1..:data:`MAX_MUTATIONS` random edits (see ``_mutate_once``) that leave its first
    ``keep`` bytes (the format signature) alone, so the input reaches the format's decoder; random
    bytes after a real signature are ``random_bytes``' job."""
    data = seed
    for _ in range(draw(st.integers(1, MAX_MUTATIONS))):
        data = draw(_mutate_once(data, keep))
    return data


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute the CRC of every complete PNG chunk, so a mutation reaches the decoder instead of
    stopping at the checksum (PIL checks it first). Bytes after a broken chunk header stay as they are."""
    out, at = bytearray(data), 8
    while at + 12 <= len(out):
        (length,) = struct.unpack(">I", out[at : at + 4])
        end = at + 8 + length
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack(">I", zlib.crc32(out[at + 4 : end]))
        at = end + 4
    return bytes(out)


def random_bytes(magics: tuple[bytes, ...] = ()) -> st.SearchStrategy[bytes]:
    """Random bytes, half of them starting with one of ``magics`` (so they get past format sniffing)."""
    raw = st.binary(max_size=MAX_RANDOM_BYTES)
    if not magics:
        return raw
    return raw | st.tuples(st.sampled_from(magics), raw).map(b"".join)


def torch_seed() -> bytes:
    """A small valid legacy ``torch.save`` file: a float32[2, 3] and a uint8[4] tensor."""
    return legacy_bytes(contiguous({"weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                                    "index": np.arange(4, dtype=np.uint8)}))


# --------------------------------------------------------------------------------------------
# Targets


def _check_image(result: Any) -> None:
    assert isinstance(result, np.ndarray), type(result)
    assert result.dtype == np.float32 and result.ndim == 3 and result.shape[2] == 3, (result.dtype, result.shape)
    assert np.isfinite(result).all() and result.min() >= 0.0 and result.max() <= 1.0, "values outside [0, 1]"


def _check_state_dict(result: Any) -> None:
    assert isinstance(result, dict), type(result)
    for name, value in result.items():
        assert isinstance(name, str) and isinstance(value, np.ndarray), (name, type(value))


@dataclass(frozen=True)
class Target:
    """A reader under test: ``read(path)``, ``check(result)`` on what it returns, the strategy for
    its input bytes, and the valid ``seed`` file that strategy mutates (``None``: random bytes)."""

    name: str
    strategy: st.SearchStrategy[bytes]
    read: Callable[[Path], Any]
    check: Callable[[Any], None]
    suffix: str
    seed: bytes | None = None


def targets() -> list[Target]:
    """Every fuzz target: the legacy-torch reader and ``images.load_image``, on random and mutated bytes."""
    torch_read, image_read = read_legacy_torch, images.load_image
    torch = torch_seed()
    found = [
        Target("torch:random", random_bytes((b"\x80\x02",)), torch_read, _check_state_dict, ".bin"),
        Target("torch:mutated", mutations(torch, _SIGNATURE_BYTES["torch"]), torch_read, _check_state_dict, ".bin",
               torch),
        Target("image:random", random_bytes(_IMAGE_MAGICS), image_read, _check_image, ".img"),
    ]
    for fmt, seed in fuzz_seeds().items():
        strategy = mutations(seed, _SIGNATURE_BYTES[fmt])
        strategy = strategy.map(fix_png_crcs) if fmt == "png" else strategy
        found.append(Target(f"image:{fmt}", strategy, image_read, _check_image, f".{fmt}", seed))
    return found


def feed(target: Target, data: bytes, workdir: Path) -> tuple[str, BaseException | None]:
    """Write ``data`` to a file in ``workdir``, read it with ``target``; return (outcome, error)."""
    path = workdir / f"input{target.suffix}"
    path.write_bytes(data)
    try:
        with hard_timeout(HANG_SECONDS):
            result = target.read(path)
        target.check(result)
    except JaxstyleError as err:
        return OURS, err
    except (Exception, Hang) as err:
        return OTHER, err
    return CLEAN, None


def describe(err: BaseException | None) -> str:
    """``TypeName: message`` on one line (at most 300 characters)."""
    if err is None:
        return ""
    return f"{type(err).__name__}: {' '.join(str(err).split())}"[:300]
