"""Training input pipeline for feed-forward style-transfer networks (grain, no TensorFlow).

:func:`make_pipeline` turns a *spec* into an endless, deterministic, checkpointable stream of
``uint8[batch_size, image_size, image_size, 3]`` batches (RGB, values ``0..255``)::

    pipeline = make_pipeline("/data/coco/train2014", batch_size=4, image_size=256, seed=0)
    it = iter(pipeline)                 # a grain DatasetIterator
    batch = next(it)                    # np.ndarray uint8[4, 256, 256, 3]
    state = it.get_state()              # {"next_index": int}: JSON-safe, goes into a checkpoint
    it2 = iter(make_pipeline(...same args...)); it2.set_state(state)   # continues exactly like `it`
    pipeline.stats                      # {"files": ..., "skipped": ..., ...}

Specs
-----
* A folder (searched recursively, hidden files skipped; :func:`jaxstyle.io.images.list_images`):
  COCO's ``train2014/`` or any folder of photos. Files are decoded on demand with PIL straight to
  ``uint8`` RGB (EXIF orientation applied; big JPEGs decoded at reduced scale with
  ``Image.draft``). Corrupt, truncated or undecodable files are **skipped and counted**
  (``stats["skipped"]``, a warning logged once per file), never fatal. Before any batch is built
  the files of this shard are probed in order until one decodes, so a folder (shard) where every
  file is corrupt raises :class:`~jaxstyle.errors.ImageError` at :func:`make_pipeline` time; an
  empty folder raises there too.
* ``tfds:NAME[/CONFIG][:SPLIT]``, e.g. ``tfds:coco/2014`` (split ``train`` by default; TFDS split
  slicing such as ``train[:10%]`` works): a dataset *already prepared* in the ArrayRecord format
  under ``$TFDS_DATA_DIR`` (default ``~/tensorflow_datasets``), read through TFDS's random-access
  data source. Reading needs ``tensorflow-datasets`` but **not** TensorFlow: the builder is
  restored from the prepared files (``dataset_info.json`` / ``features.json``) instead of the
  dataset's Python code, which for COCO imports TensorFlow. Elements are dicts whose ``"image"``
  is ``uint8[H, W, 3]``; everything else is dropped.

Preparing COCO 2014 for ``tfds:coco/2014`` (once, on any machine; TensorFlow is needed only here)::

    pip install 'jaxstyle[tfds]' tensorflow
    # Optional: put the already downloaded COCO zips (train2014.zip, val2014.zip, test2014.zip,
    # annotations_trainval2014.zip, image_info_test2014.zip) in one folder, e.g. ~/coco_zips;
    # TFDS then uses them instead of downloading ~20 GB from images.cocodataset.org.
    tfds build coco/2014 --file_format array_record --manual_dir ~/coco_zips [--data_dir DIR]

``--file_format array_record`` matters: TFDS's default (TFRecord) cannot be read by index. The
simpler route needs no TFDS at all: unzip ``train2014.zip`` and pass the folder, or ship a small
copy made by :func:`prepare_crops`.

Augmentation
------------
Every element: resize so the **short** side is a random integer in
``[image_size, round(image_size * 1.15)]`` (bilinear, on ``uint8``; small images are enlarged),
take a random ``image_size`` square from it, flip it left-right with probability 1/2. The random
numbers come from the per-element ``np.random.Generator`` grain derives from the seed and the
element's position in the stream (never global state), so the same seed gives the same batches
whatever ``num_threads`` is, and each epoch is cropped (and shuffled) differently.

Determinism, resume and sharding
--------------------------------
The stream is ``source[shard_index::shard_count] -> shuffle -> repeat forever -> crop -> batch``,
all keyed by ``seed`` (and the shard). grain's iterator state is just the position in that
stream (``{"next_index": n}``, counted in source elements, including skipped ones), so
``set_state`` on a fresh iterator of an identically built pipeline resumes bit-exactly. The
shards of one folder are disjoint (file ``i`` belongs to shard ``i % shard_count``); each process
gets its own ``batch_size`` batches.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grain
import numpy as np
from PIL import Image, ImageOps

from jaxstyle import atomic
from jaxstyle.errors import ImageError, JaxstyleError, OptionError, one_line
from jaxstyle.io import images

__all__ = [
    "FolderSource",
    "Pipeline",
    "TfdsSource",
    "decode_uint8",
    "file_order",
    "make_pipeline",
    "parse_spec",
    "prepare_crops",
    "random_crop",
]

log = logging.getLogger(__name__)

#: Random short side is drawn from ``[image_size, round(image_size * MAX_UPSCALE)]``.
MAX_UPSCALE = 1.15
#: Files whose header claims more pixels than this are skipped (decompression bombs).
MAX_PIXELS = images.DEFAULT_MAX_PIXELS

_TFDS_PREFIX = "tfds:"


def _max_short_side(image_size: int) -> int:
    return max(image_size, round(image_size * MAX_UPSCALE))


# --------------------------------------------------------------------------------------------
# Decoding and augmentation
# --------------------------------------------------------------------------------------------


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode as an 8-bit RGB PIL image (alpha and 16-bit modes via :mod:`jaxstyle.io.images`)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("L", "CMYK", "YCbCr") or (img.mode == "P" and "transparency" not in img.info):
        return img.convert("RGB")
    # Alpha (composited over white), 16/32-bit integer, float, bilevel, palette with transparency.
    return Image.fromarray(images.to_uint8(images.to_float_image(img)))


def decode_uint8(path: str | os.PathLike[str], min_short_side: int | None = None) -> np.ndarray:
    """Decode an image file as ``uint8[H, W, 3]`` RGB (``0..255``), upright (EXIF applied).

    ``min_short_side``: the caller only needs an image whose short side is at least this many
    pixels; JPEGs much bigger than that are decoded at 1/2, 1/4 or 1/8 scale (``Image.draft``,
    DCT scaling: several times faster), never below ``min_short_side``. ``None``: full size.

    Raises whatever PIL raises for an unreadable file (``OSError``, ``ValueError``, ...), or
    :class:`~jaxstyle.errors.ImageError` for an empty file or one above :data:`MAX_PIXELS`.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: file is empty (0 bytes)")
    with Image.open(path) as img:
        width, height = img.size
        images.check_pixels(width, height, MAX_PIXELS, f"{path}: image", "too large to train on")
        if min_short_side is not None and min(width, height) >= 2 * min_short_side:
            ratio = min_short_side / min(width, height)
            img.draft("RGB", (math.ceil(width * ratio), math.ceil(height * ratio)))
        img.load()
        upright = ImageOps.exif_transpose(img, in_place=False) if _has_orientation(img) else img
        return np.asarray(_to_rgb(upright), dtype=np.uint8)


def _has_orientation(img: Image.Image) -> bool:
    try:
        return img.getexif().get(0x0112, 1) != 1  # ExifTags.Base.Orientation
    except Exception:  # a broken EXIF block is not a broken image
        return False


def _as_rgb_array(image: Any) -> np.ndarray:
    """``uint8[H, W]``, ``[H, W, 1]``, ``[H, W, 3]`` or ``[H, W, 4]`` as ``uint8[H, W, 3]``."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ImageError(f"expected a uint8 image, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0 or array.shape[-1] not in (1, 3, 4):
        raise ImageError(f"expected an image of shape [H, W, 1|3|4], got {list(array.shape)}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.shape[-1] == 4:
        array = images.to_uint8(images.to_float_image(Image.fromarray(array, "RGBA")))
    return array


def random_crop(image: np.ndarray, rng: np.random.Generator, image_size: int) -> np.ndarray:
    """The training augmentation: random rescale, random square crop, random left-right flip.

    Args:
        image: ``uint8[H, W, 3]`` RGB, any size.
        rng: the only source of randomness (grain's per-element generator).
        image_size: side of the output square.

    Returns:
        ``uint8[image_size, image_size, 3]``: a crop of ``image`` after resizing it (bilinear) so
        its short side is a random integer in ``[image_size, round(image_size * 1.15)]``,
        mirrored left-right with probability 1/2.
    """
    h, w = image.shape[:2]
    short = int(rng.integers(image_size, _max_short_side(image_size) + 1))
    scale = short / min(h, w)
    new_h, new_w = max(image_size, round(h * scale)), max(image_size, round(w * scale))
    top = int(rng.integers(0, new_h - image_size + 1))
    left = int(rng.integers(0, new_w - image_size + 1))
    flip = bool(rng.random() < 0.5)
    # Resample only the crop window: same pixels as resizing to (new_w, new_h) then cropping.
    sx, sy = w / new_w, h / new_h
    box = (left * sx, top * sy, (left + image_size) * sx, (top + image_size) * sy)
    crop = Image.fromarray(image).resize((image_size, image_size), Image.Resampling.BILINEAR, box=box)
    if flip:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.uint8)


class _RandomCrop(grain.transforms.RandomMap):
    """grain transform wrapping :func:`random_crop` (``None``, a skipped file, never reaches it)."""

    def __init__(self, image_size: int):
        self.image_size = image_size

    def random_map(self, element: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_crop(element, rng, self.image_size)


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


# --------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------


def _seeds(seed: int, shard_index: int) -> tuple[int, int]:
    """Shuffle and crop seeds (32-bit) for one shard, derived from the user's seed."""
    shuffle_seed, crop_seed = np.random.SeedSequence([seed, shard_index]).generate_state(2, dtype=np.uint32)
    return int(shuffle_seed), int(crop_seed)


def _arrange(ds: grain.MapDataset, *, seed: int, shard_index: int, shard_count: int) -> grain.MapDataset:
    """This shard's slice, shuffled (differently each epoch), repeated forever."""
    shuffle_seed, _ = _seeds(seed, shard_index)
    return ds[shard_index::shard_count].shuffle(seed=shuffle_seed).repeat(None)


def file_order(num_files: int, *, seed: int, shard_index: int = 0, shard_count: int = 1) -> grain.MapDataset:
    """Source indices in the order :func:`make_pipeline` reads them (an endless ``MapDataset[int]``).

    Element ``k`` is the index (into the sorted file list / TFDS split) of the ``k``-th element
    the pipeline with these arguments decodes; the first ``ceil((num_files - shard_index) /
    shard_count)`` elements are one epoch of this shard.
    """
    return _arrange(grain.MapDataset.range(num_files), seed=seed, shard_index=shard_index, shard_count=shard_count)


class Pipeline:
    """An endless stream of ``uint8[batch_size, image_size, image_size, 3]`` batches.

    ``iter(pipeline)`` returns a fresh grain ``DatasetIterator`` (``get_state`` / ``set_state``);
    ``pipeline.dataset`` is the underlying ``grain.IterDataset``. Iterators of one pipeline share
    its source and so its :attr:`stats`.
    """

    def __init__(
        self,
        dataset: grain.IterDataset,
        source: _SkippingSource,
        *,
        spec: str,
        order: grain.MapDataset,
        shard_index: int,
        shard_count: int,
    ):
        self.dataset = dataset
        self.source = source
        self.spec = spec
        #: Source indices in reading order (see :func:`file_order`).
        self.order = order
        self.shard_index = shard_index
        self.shard_count = shard_count

    def __iter__(self) -> grain.DatasetIterator:
        return iter(self.dataset)

    @property
    def files(self) -> list[Path]:
        """This shard's files (folder specs; empty for TFDS)."""
        if isinstance(self.source, FolderSource):
            return self.source.files[self.shard_index::self.shard_count]
        return []

    @property
    def stats(self) -> dict[str, int]:
        """``files``: elements in the whole source (files or TFDS examples); ``shard_files``: in
        this shard; ``skipped``: distinct corrupt ones seen so far (this process); ``decoded``:
        successful decodes so far (repeats included)."""
        total = len(self.source)
        return {
            "files": total,
            "shard_files": len(range(self.shard_index, total, self.shard_count)),
            "skipped": self.source.skipped,
            "decoded": self.source.decoded,
        }

    def __repr__(self) -> str:
        return f"Pipeline({self.spec!r}, shard {self.shard_index}/{self.shard_count}, {self.source!r})"


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OptionError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _probe(source: _SkippingSource, shard_index: int, shard_count: int, what: str) -> None:
    """Decode this shard's elements in order until one works; raise if none does."""
    indices = range(shard_index, len(source), shard_count)
    for index in indices:
        if source[index] is not None:
            return
    shard = f", shard {shard_index} of {shard_count}" if shard_count > 1 else ""
    raise ImageError(f"no decodable images in {what} ({len(indices)} files{shard}, all corrupt)")


def make_pipeline(
    spec: str | os.PathLike[str],
    *,
    batch_size: int,
    image_size: int,
    seed: int,
    shard_index: int = 0,
    shard_count: int = 1,
    num_threads: int = 4,
) -> Pipeline:
    """Build the training input pipeline (see the module docstring for specs and guarantees).

    Args:
        spec: a folder of images (recursive), or ``tfds:NAME[/CONFIG][:SPLIT]``.
        batch_size: images per batch, for this process.
        image_size: side of the square crops.
        seed: any integer >= 0; same seed (and shard) => same batches.
        shard_index, shard_count: this process reads source elements ``shard_index::shard_count``.
        num_threads: decoding threads (0: decode in the calling thread).

    Returns:
        A :class:`Pipeline`; ``next(iter(pipeline))`` is ``uint8[batch_size, image_size,
        image_size, 3]``.

    Raises:
        OptionError: a bad argument or spec.
        ImageError: missing or empty folder, or no decodable image in this shard.
        JaxstyleError: a TFDS dataset that is not installed / prepared / readable.
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    image_size = _check_int("image_size", image_size, 1)
    seed = _check_int("seed", seed, 0)
    shard_count = _check_int("shard_count", shard_count, 1)
    shard_index = _check_int("shard_index", shard_index, 0)
    num_threads = _check_int("num_threads", num_threads, 0)
    if shard_index >= shard_count:
        raise OptionError(f"shard_index must be below shard_count ({shard_count}), got {shard_index}")

    kind, name, split = parse_spec(os.fspath(spec))
    source: _SkippingSource
    if kind == "folder":
        files = images.list_images([name], recursive=True)
        source = FolderSource(files, min_short_side=_max_short_side(image_size))
        what = name
    else:
        source = _tfds_source(name, split)
        what = f"tfds:{name}:{split}"
    if shard_index >= len(source):
        raise OptionError(f"shard {shard_index} of {shard_count} is empty: {what} has only {len(source)} files")
    _probe(source, shard_index, shard_count, what)

    _, crop_seed = _seeds(seed, shard_index)
    arrange = {"seed": seed, "shard_index": shard_index, "shard_count": shard_count}
    ds = _arrange(grain.MapDataset.source(source), **arrange)
    ds = ds.random_map(_RandomCrop(image_size), seed=crop_seed)
    read_options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=max(2 * batch_size, num_threads))
    it_ds = ds.to_iter_dataset(read_options).batch(batch_size, drop_remainder=True)
    # Files that break after the probe (deleted, overwritten) must not make the stream spin
    # forever: fail once 100% of a window of 1000 elements were skipped.
    it_ds = grain.experimental.WithOptionsIterDataset(
        it_ds, grain.experimental.DatasetOptions(filter_raise_threshold_ratio=1.0)
    )
    order = file_order(len(source), **arrange)
    return Pipeline(it_ds, source, spec=os.fspath(spec), order=order, shard_index=shard_index,
                    shard_count=shard_count)


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
