"""Atomic file writes: the one way jaxstyle writes an output file.

Every writer goes through a hidden temporary file in the destination's folder, created with
``O_EXCL`` (so two writers never share one, and the umask applies as usual), and renames it over
the destination only when the write finished. A reader never sees a partial file; a failure, an
exception or Ctrl-C leaves the destination as it was and no temporary file behind. ``OSError``
propagates: each caller turns it into its own one-line error.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary file next to ``path`` (same extension) to be written by name.

    For writers that take a file name (ffmpeg, ``np.savez``): on a clean exit the temporary file
    replaces ``path``; on any exception it is removed. Check the written file inside the block.
    """
    path = Path(path)
    while True:
        tmp = path.parent / f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Yield a binary file object whose contents replace ``path`` (flushed and fsynced) on a clean exit."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` (``str`` is written as UTF-8). Returns ``path`` as a Path."""
    with atomic_open(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)
