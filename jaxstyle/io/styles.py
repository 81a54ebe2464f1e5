"""Built-in style images by name (``scream``, ``starry_night``, ...).

A style argument is either a path to an image file or one of :data:`BUILTIN_STYLES`. A built-in
name is looked up, in order, in ``$JAXSTYLE_STYLES_DIR`` (a folder of ``<name>.jpg`` files, for
offline machines and CI), in the cache (``$JAXSTYLE_CACHE``, else ``$XDG_CACHE_HOME/jaxstyle``, else
``~/.cache/jaxstyle``; subfolder ``styles/``), and is otherwise downloaded into the cache. The
SHA-256 of the file is checked in every case.
"""

from __future__ import annotations

import http.client
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jaxstyle import atomic
from jaxstyle.cache import cache_dir, sha256_file
from jaxstyle.errors import StyleError
from jaxstyle.io.images import load_image

STYLES_DIR_ENV = "JAXSTYLE_STYLES_DIR"
DOWNLOAD_TIMEOUT_S = 30

_SOURCE = (
    "https://raw.githubusercontent.com/jcjohnson/fast-neural-style/"
    "813c83441953ead2adb3f65f4cc2d5599d735fa7/images/styles/"
)


@dataclass(frozen=True)
class StyleSource:
    """Where a built-in style comes from.

    ``filename`` is the local name (in ``$JAXSTYLE_STYLES_DIR`` and the cache), ``url`` the pinned
    download address, ``sha256`` the hex digest the file must have.
    """

    filename: str
    url: str
    sha256: str


BUILTIN_STYLES: dict[str, StyleSource] = {
    "scream": StyleSource(
        "scream.jpg", _SOURCE + "the_scream.jpg",
        "f3075cddeb974a9ee1d6418f7f33fd05185a7ac7dcb4288bd2805d499a9dcaee",
    ),
    "starry_night": StyleSource(
        "starry_night.jpg", _SOURCE + "starry_night.jpg",
        "0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098",
    ),
    "wave": StyleSource(
        "wave.jpg", _SOURCE + "wave.jpg",
        "14bcf58a39b7095168f27756d76d0c615bb8954acc5eae9e62c66a9684c2ee2b",
    ),
    "udnie": StyleSource(
        "udnie.jpg", _SOURCE + "udnie.jpg",
        "c3d3d4b9e325b485820d1a91df3bad591c2bab86919412e9f1b424e862cf204a",
    ),
    "composition_vii": StyleSource(
        "composition_vii.jpg", _SOURCE + "composition_vii.jpg",
        "8f992ed4aecd6dd56972d7bc8166761de7c94e670ee6effa8fd05f3daeb33409",
    ),
}


def _download(name: str, source: StyleSource, target: Path) -> None:
    """Fetch ``source.url`` into ``target`` atomically; nothing is left behind on failure."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                try:
                    with urllib.request.urlopen(source.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                        shutil.copyfileobj(response, f)
                except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
                    reason = " ".join(str(getattr(err, "reason", err)).split())
                    raise StyleError(
                        f"cannot download style '{name}' from {source.url} ({reason}); no network? set "
                        f"{STYLES_DIR_ENV} to a folder with {source.filename} or pass the path of an image file"
                    ) from None
                f.flush()
                os.fsync(f.fileno())
            actual = sha256_file(tmp)
            if actual != source.sha256:
                raise StyleError(
                    f"downloaded style '{name}' from {source.url} has sha256 {actual}, expected "
                    f"{source.sha256}; not cached"
                )
    except OSError as err:
        raise StyleError(f"cannot write the style cache {target.parent}: {err}") from None


def resolve_style(name_or_path: str | os.PathLike[str]) -> Path:
    """The image file for a style: an existing file path as is, or a built-in name's verified file.

    Raises:
        StyleError: neither a file nor a built-in name; a checksum mismatch; a failed download.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    text = str(name_or_path)
    if text.strip().lower().replace("-", "_") not in BUILTIN_STYLES:
        what = "a folder, not an image file" if path.is_dir() else "not a file"
        raise StyleError(f"unknown style {text!r}: {what} and not one of {', '.join(BUILTIN_STYLES)}")
    return builtin_style(text)


def builtin_style(name: str) -> Path:
    """The verified image file of a built-in style name (never a path: no file named ``name`` is read).

    Raises:
        StyleError: not a built-in name; a checksum mismatch; a failed download.
    """
    text = name
    name = text.strip().lower().replace("-", "_")
    source = BUILTIN_STYLES.get(name)
    if source is None:
        raise StyleError(f"unknown style {text!r}: not one of {', '.join(BUILTIN_STYLES)}")

    styles_dir = os.environ.get(STYLES_DIR_ENV)
    if styles_dir:
        local = Path(styles_dir).expanduser() / source.filename
        if not local.is_file():
            raise StyleError(f"style '{name}': {local} not found ({STYLES_DIR_ENV}={styles_dir})")
        actual = sha256_file(local)
        if actual != source.sha256:
            raise StyleError(
                f"style '{name}': {local} has sha256 {actual}, expected {source.sha256} "
                f"(wrong or damaged file in {STYLES_DIR_ENV})"
            )
        return local

    cached = cache_dir() / "styles" / source.filename
    if cached.is_file():
        if sha256_file(cached) == source.sha256:
            return cached
        cached.unlink(missing_ok=True)  # damaged cache entry: fetch it again
    _download(name, source, cached)
    return cached


def load_style(name_or_path: str | os.PathLike[str], **load_image_kwargs: Any) -> np.ndarray:
    """:func:`~jaxstyle.io.images.load_image` of :func:`resolve_style` (``float32[H, W, 3]`` in ``[0, 1]``)."""
    return load_image(resolve_style(name_or_path), **load_image_kwargs)
