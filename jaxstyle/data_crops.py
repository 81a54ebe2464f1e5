"""Compact copies of a training set (:func:`prepare_crops`): every image decoded once, scaled down and
written as a flat folder of JPEGs that :mod:`jaxstyle.data` reads faster."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from jaxstyle import atomic
from jaxstyle.data_decode import _check_int, decode_uint8
from jaxstyle.errors import ImageError, OptionError, one_line
from jaxstyle.io import images

log = logging.getLogger("jaxstyle.data")


# --------------------------------------------------------------------------------------------
# Compact copies
# --------------------------------------------------------------------------------------------


def _flat_names(files: Sequence[Path], root: Path) -> list[str]:
    """Unique flat ``.jpg`` names: ``sub/dir/a.png`` -> ``sub__dir__a.jpg`` (``a_png.jpg`` ... on clashes)."""
    names: list[str] = []
    taken: set[str] = set()
    for f in files:
        rel = f.relative_to(root) if f.is_relative_to(root) else Path(f.name)
        stem = "__".join(rel.with_suffix("").parts)
        name = f"{stem}.jpg"
        if name.lower() in taken:
            base = f"{stem}_{f.suffix.lstrip('.').lower()}"
            name, n = f"{base}.jpg", 1
            while name.lower() in taken:
                n += 1
                name = f"{base}_{n}.jpg"
        taken.add(name.lower())
        names.append(name)
    return names


def prepare_crops(
    src_folder: str | os.PathLike[str], dst_folder: str | os.PathLike[str], size: int, quality: int = 92
) -> int:
    """Write a compact training copy: every decodable image, short side resized to ``size``.

    Images under ``src_folder`` (recursive) are decoded upright (EXIF applied), resized so the
    short side is exactly ``size`` pixels with the aspect kept (Lanczos when shrinking, bicubic
    when enlarging; nothing is cropped), and saved as JPEG at ``quality`` into ``dst_folder``
    (created if needed) with flat names (``sub/a.png`` -> ``sub__a.jpg``). Each file is written
    atomically (temporary file + rename), so an interrupted run leaves no partial JPEG.
    Undecodable files are skipped with a warning. Returns how many images were written.

    Raises:
        OptionError: ``size < 1``, ``quality`` outside 1..100, or ``dst_folder`` inside
            ``src_folder`` (it would overwrite or re-ingest its own output).
        ImageError: missing or empty ``src_folder``.
    """
    size = _check_int("size", size, 1)
    quality = _check_int("quality", quality, 1)
    if quality > 100:
        raise OptionError(f"quality must be between 1 and 100, got {quality}")
    src, dst = Path(src_folder).resolve(), Path(dst_folder).resolve()
    if dst == src or dst.is_relative_to(src):
        raise OptionError(f"destination {dst_folder} must not be inside the source folder {src_folder}")
    files = images.list_images([src], recursive=True)
    dst.mkdir(parents=True, exist_ok=True)
    names = _flat_names(files, src)

    def one(item: tuple[Path, str]) -> bool:
        path, name = item
        try:
            img = Image.fromarray(decode_uint8(path, size))
        except Exception as err:
            log.warning("skipping undecodable image %s: %s", path, one_line(err))
            return False
        w, h = img.size
        scale = size / min(w, h)
        new = (size, max(1, round(h * scale))) if w <= h else (max(1, round(w * scale)), size)
        if new != img.size:
            method = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
            img = img.resize(new, method, reducing_gap=3.0 if scale < 1 else None)
        try:
            with atomic.atomic_open(dst / name) as f:
                img.save(f, format="JPEG", quality=quality)
        except OSError as err:
            raise ImageError(f"{dst / name}: could not write image ({one_line(err)})") from None
        return True

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return sum(pool.map(one, zip(files, names, strict=True)))
