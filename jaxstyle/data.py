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

import os
from pathlib import Path

import grain
import numpy as np

from jaxstyle.data_crops import prepare_crops
from jaxstyle.data_decode import (
    MAX_PIXELS,
    MAX_UPSCALE,
    _check_int,
    _max_short_side,
    _RandomCrop,
    decode_uint8,
    random_crop,
)
from jaxstyle.data_sources import FolderSource, TfdsSource, _SkippingSource, _tfds_source, parse_spec
from jaxstyle.errors import ImageError, OptionError
from jaxstyle.io import images

__all__ = [
    "MAX_PIXELS",
    "MAX_UPSCALE",
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
