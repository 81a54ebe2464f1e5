"""The user cache folder (built-in style images, the ported VGG19) and file digests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_ENV = "JAXSTYLE_CACHE"


def cache_dir() -> Path:
    """``$JAXSTYLE_CACHE``, else ``$XDG_CACHE_HOME/jaxstyle``, else ``~/.cache/jaxstyle`` (not created)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "jaxstyle"
    return Path.home() / ".cache" / "jaxstyle"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
