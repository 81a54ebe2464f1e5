"""One way to run a method on images, shared by the command line, the web page, video and the Python API.

* :func:`default_method`: which method a style means when none is asked for (the command line and the
  web page use this one rule).
* :func:`build_stylizer`: any registered one-pass method (:mod:`jaxstyle.methods.registry`) as a stylizer,
  from a :class:`~jaxstyle.methods.registry.StyleJob`; the front ends build every one-pass method this way.
* :func:`transform_stylizer` (shipped or trained nets) and
  :func:`jaxstyle.methods.arbitrary.stylizer.make_stylizer` (any painting) build a one-pass stylizer,
  ``float32[N,H,W,3] in [0,1] -> the same``; :func:`stylize_images` runs one over photos, same-size
  photos in batches; video (:mod:`jaxstyle.video`) streams frames through the same stylizers.
* :func:`run_gatys` runs back-propagation (or a texture) with the steps :func:`gatys_steps` plans.

Progress goes through :class:`jaxstyle.progress.Progress`, ``progress(done, metrics)``. This module
reads and writes no files. (Named run.py, not stylize.py: a submodule ``jaxstyle.stylize`` would
shadow the ``jaxstyle.stylize`` function.)
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from jaxstyle.errors import OptionError, StyleError
from jaxstyle.io import images as imagelib
from jaxstyle.io import modelfile
from jaxstyle.io import styles as stylelib
from jaxstyle.methods import registry
from jaxstyle.methods.gatys import api, pyramid
from jaxstyle.methods.gatys.loop import GatysResult
from jaxstyle.methods.gatys.presets import GatysOptions
from jaxstyle.methods.registry import StyleJob
from jaxstyle.methods.transform import net as transform
from jaxstyle.progress import Progress

T = TypeVar("T")
#: A one-pass stylizer: ``float32[N,H,W,3] in [0,1] -> float32[N,H,W,3] in [0,1]``.
Stylizer = registry.Stylizer


def default_method(styles: Sequence[str] = (), *, style_image: bool = False) -> str:
    """The method for a style when none is asked for: ``transform`` when every name in ``styles`` is a
    model file (``.msgpack``), or there is none and no style image (the command line's ``--sheet`` of the
    shipped nets); ``arbitrary`` (MicroAST) for any painting: a style image, uploaded or a file, or a
    built-in name, shipped net or not. A shipped net's name whose painting cannot be had here (not in
    ``$JAXSTYLE_STYLES_DIR`` nor cached, and no network to fetch it) keeps its ``transform`` net, as
    before MicroAST was the default: the net needs no painting.

    Measured, 2026-12-04: MicroAST with the painting won 6 of 6 blind pairs (all high confidence) against
    the CPU-trained nets, and 10 of 12 against the H200-trained nets that replaced them (scream,
    starry_night, wave; four photos outside the project's data, 512 px; docs/results.md "The shipped
    models"). The nets stay one flag away
    (``--method transform``, ``--fast``)."""
    if style_image:
        return "arbitrary"
    if all(name.endswith(modelfile.MODEL_SUFFIX) for name in styles):
        return "transform"
    shipped = transform.shipped_models()
    if all(name in shipped for name in styles):
        try:
            for name in styles:
                stylelib.builtin_style(name)  # the painting, from the styles folder, the cache or the network
        except StyleError:
            return "transform"
    return "arbitrary"


def build_stylizer(method: str, job: StyleJob) -> Stylizer:
    """The registered one-pass method ``method`` (:func:`jaxstyle.methods.registry.get`) as a :data:`Stylizer`,
    its style prepared once from ``job``; OptionError for an unknown method or one that is not one pass
    (``gatys``, ``texture``: :func:`run_gatys`)."""
    chosen = registry.get(method)
    if chosen.build is None:
        raise OptionError(f"method {method} optimises each image (run_gatys); it has no one-pass stylizer",
                          fields=("method",))
    return chosen.build(job)


def transform_stylizer(models: Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
                       weights: Sequence[float] | None = None, strength: float = 1.0,
                       preserve_color: bool = False) -> Stylizer:
    """Trained transform net(s) as a :data:`Stylizer`: :func:`jaxstyle.methods.transform.net.stylize_batch`
    with the nets (one params tree, or several mixed by ``weights``), ``strength`` (0: the photo, 1: the
    full style) and ``preserve_color`` bound, checked here (OptionError) before any work."""
    nets = [models] if isinstance(models, Mapping) else list(models)
    transform.check_blend(len(nets), weights, strength)
    return functools.partial(transform.stylize_batch, nets, weights=weights, strength=strength,
                             preserve_color=preserve_color)


def batches(items: Sequence[T], shape_of: Callable[[T], tuple[int, ...]], batch_size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``batch_size`` with one ``shape_of`` each (sizes in first-seen order):
    only same-size images stack into one batch."""
    groups: dict[tuple[int, ...], list[T]] = {}
    for item in items:
        groups.setdefault(tuple(shape_of(item)), []).append(item)
    for group in groups.values():
        for i in range(0, len(group), batch_size):
            yield group[i : i + batch_size]


def stylize_images(photos: Sequence[np.ndarray], stylizer: Stylizer, *,
                   batch_size: int = 8, progress: Progress | None = None) -> Iterator[tuple[int, np.ndarray, float]]:
    """Stylise float32[H,W,3] photos in [0,1] with a one-pass ``stylizer`` (:func:`transform_stylizer`, or
    :func:`jaxstyle.methods.arbitrary.stylizer.make_stylizer`'s), same-size photos ``batch_size`` at a time.

    Yields ``(index into photos, output float32[H,W,3], seconds per image of its batch)``, batch by
    batch; ``progress(images done, {"images_per_s": ...})`` after each batch.
    """
    start, done = time.perf_counter(), 0
    for chunk in batches(list(enumerate(photos)), lambda item: item[1].shape[:2], batch_size):
        t = time.perf_counter()
        outputs = stylizer(np.stack([photo for _, photo in chunk]))
        seconds = (time.perf_counter() - t) / len(chunk)
        for (index, _), output in zip(chunk, outputs, strict=True):
            yield index, output, seconds
        done += len(chunk)
        if progress is not None:
            progress(done, {"images_per_s": done / max(time.perf_counter() - start, 1e-9)})


def stylize_image(photo: np.ndarray, stylizer: Stylizer) -> np.ndarray:
    """One float32[H,W,3] photo in [0,1] through :func:`stylize_images` -> float32[H,W,3]."""
    return next(stylize_images([photo], stylizer, batch_size=1))[1]


#: A texture's long side when ``options.size`` is None.
TEXTURE_SIZE = 256


def gatys_steps(content_shape: tuple[int, int] | None, options: GatysOptions,
                style_shape: tuple[int, int] | None = None) -> int:
    """The steps a run takes at most: over every scale of the plan for a content photo of (H, W)
    ``content_shape`` (before resizing to ``options.size``), or for a texture (``content_shape`` None)
    at its size with the aspect of the first style, of (H, W) ``style_shape``."""
    if content_shape is None:
        shape = imagelib.long_side_shape(style_shape or (1, 1), options.size or TEXTURE_SIZE)
    else:
        shape = content_shape if options.size is None else imagelib.long_side_shape(content_shape, options.size)
    return sum(iterations for _, iterations in pyramid.scale_plan(shape, options))


def run_gatys(content: np.ndarray | None, styles: Sequence[np.ndarray], options: GatysOptions, *,
              vgg_params: Any = None, style_blend: Sequence[float] | None = None, progress: Progress | None = None,
              snapshot_every: int | None = None, on_snapshot: Callable[[int, np.ndarray], None] | None = None
              ) -> GatysResult:
    """Back-propagation (:func:`jaxstyle.methods.gatys.api.gatys`) of ``content`` float32[H,W,3], or
    with ``content`` None a texture of long side ``options.size`` (:func:`jaxstyle.methods.gatys.api.texture`).

    progress(step, {"total": ...}) for each step, as its loss comes back to the host (every
    :data:`loop.READ_EVERY` steps, in a burst); on_snapshot(step, image float32[H,W,3]) every
    ``snapshot_every`` steps before the last.
    """
    total = gatys_steps(None if content is None else content.shape[:2], options, styles[0].shape[:2])

    def on_step(step: int, image: Any, terms: Mapping[str, Any]) -> None:
        if progress is not None:
            progress(step, {"total": terms["total"]})
        if on_snapshot is not None and snapshot_every and step % snapshot_every == 0 and step < total:
            on_snapshot(step, np.asarray(image[0]))

    values = dataclasses.asdict(options)
    if content is None:
        values = {k: v for k, v in values.items() if k not in ("size", "init")}  # texture: from noise
        size = options.size or TEXTURE_SIZE
        return api.texture(list(styles), size, vgg_params=vgg_params, style_blend=style_blend,
                           callback=on_step, **values)
    return api.gatys(content, list(styles), vgg_params=vgg_params, style_blend=style_blend, callback=on_step,
                     **values)
