"""Gatys et al. back-propagation (the module behind ``jaxstyle.gatys``) and texture synthesis
(``jaxstyle.texture``): validate the options, prepare the images, run the scales coarse to fine."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import color, vgg_weights
from jaxstyle.errors import OptionError
from jaxstyle.io import images as imagelib
from jaxstyle.methods.gatys.loop import Callback, GatysResult, initial_image, make_targets, optimise
from jaxstyle.methods.gatys.optimizers import resolve_optimizer
from jaxstyle.methods.gatys.presets import GatysOptions, make_options
from jaxstyle.methods.gatys.pyramid import (
    check_shape,
    scale_plan,
    scale_spec,
    upsample_result,
    working_images,
    working_styles,
)
from jaxstyle.nn import vgg
from jaxstyle.objective import LossSpec


def gatys(
    content: Any,
    style: Any,
    *,
    vgg_params: vgg.Params | None = None,
    style_blend: Sequence[float] | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> GatysResult:
    """Stylise ``content`` with ``style`` by back-propagation (Gatys et al.).

    content, style: PIL images or arrays (uint8[H,W,3] or float32[H,W,3] in [0,1]); ``style``
    may be a list to blend several (``style_blend`` weights). Options: see :class:`GatysOptions`.
    Large outputs run coarse to fine (:func:`scale_plan`): each scale starts from the previous
    result, upsampled, with the content and style images resized by the same factor.
    Returns a :class:`GatysResult`; ``result.image`` is float32[H,W,3] in [0,1] with the long
    side ``size`` (None keeps the content's size). ``callback(step, image, terms)`` counts steps
    over all scales.
    """
    opts = make_options(**options)
    opts.validate()
    styles = style if isinstance(style, (list, tuple)) else [style]
    content_img, style_imgs = working_images(
        imagelib.to_float_image(content), [imagelib.to_float_image(s) for s in styles], opts
    )
    for style_img in style_imgs:
        check_shape(style_img.shape[:2], "style image")
    color.check_weights(len(style_imgs), style_blend)
    photo = content_img
    if opts.preserve_color:
        # Luminance-only transfer (Gatys et al. 2016): optimise a grey image against the style's
        # luminance matched to the photo's, then put the photo's chroma back.
        content_img = color.luminance(photo)
        style_imgs = [color.match_luminance(s, photo) for s in style_imgs]
    result = _coarse_to_fine(content_img, content_img.shape[:2], style_imgs, opts, vgg_params, style_blend,
                             callback)
    if opts.preserve_color:
        result.image = color.keep_colors(result.image, photo)
    return result


@dataclasses.dataclass(frozen=True)
class Scale:
    """One scale of a coarse-to-fine run, prepared before any step: its (H, W) ``shape`` and step
    budget, the photo resized to it (float32[H,W,3] in [0,1]; None for a texture), the loss spec
    weighted for it (:func:`scale_spec`) and the targets (:func:`make_targets`: content responses and
    style Grams at this size)."""

    shape: tuple[int, int]
    iterations: int
    content: np.ndarray | None
    spec: LossSpec
    targets: dict[str, Any]


def prepare_scales(content: np.ndarray | None, full: tuple[int, int], style_imgs: Sequence[np.ndarray],
                   opts: GatysOptions, params: vgg.Params, style_blend: Sequence[float] | None) -> list[Scale]:
    """Every scale of :func:`scale_plan` for an output of (H, W) ``full``, coarsest first: the photo and
    the styles resized by the scale's factor (checked against ``MIN_SIDE``), its spec and its targets.
    All the resizing and target computation of a run happens here, once, before the loop."""
    spec = opts.loss_spec(with_content=content is not None)
    scales = []
    for shape, iterations in scale_plan(full, opts):
        factor = shape[0] / full[0]
        content_s = None if content is None else content if shape == full else imagelib.resize(content, *shape)
        styles_s = style_imgs if shape == full else [
            imagelib.resize(s, max(1, round(s.shape[0] * factor)), max(1, round(s.shape[1] * factor)))
            for s in style_imgs]
        for s in styles_s:
            check_shape(s.shape[:2], "style image at the coarsest scale", ("style_size", "scales"),
                        "raise style_size or lower scales")
        spec_s = scale_spec(spec, shape, full)
        targets = make_targets(params, spec_s, shape, content_s, styles_s, style_blend)
        scales.append(Scale(shape, iterations, content_s, spec_s, targets))
    return scales


def _coarse_to_fine(content: np.ndarray | None, full: tuple[int, int], style_imgs: Sequence[np.ndarray],
                    opts: GatysOptions, vgg_params: vgg.Params | None, style_blend: Sequence[float] | None,
                    callback: Callback | None) -> GatysResult:
    """Run :func:`scale_plan` for an output of (H, W) ``full``: float32[H,W,3] ``content`` (None: a
    texture, no content term, random start), styles at their full-scale working size. The scales are
    prepared first (:func:`prepare_scales`); the loop then only starts each scale from the last
    result and optimises."""
    params = vgg_weights.on_device(vgg_params)
    scales = prepare_scales(content, full, style_imgs, opts, params, style_blend)
    optimizer = resolve_optimizer(opts.optimizer, len(scales))
    key = jax.random.key(opts.seed)
    image, done, runs, previous = None, 0, [], None
    for scale in scales:
        if image is None:
            image = initial_image(opts.init, scale.content, scale.shape, opts.noise, key)
        else:
            assert previous is not None
            # From the photo: its detail re-added, the coarse result low-passed. A texture or a run from noise
            # takes its coarse result as it is (blurred, a texture's periodic energy rose: presets.py).
            photo = opts.init != "random"
            image = jnp.asarray(upsample_result(np.asarray(image[0]), scale.content if photo else None,
                                                previous.content if photo else None, scale.shape,
                                                opts.coarse_blur if photo else 0.0))[None]
        previous = scale

        def on_step(step, img, terms, offset=done):
            if callback is not None:
                callback(offset + step, img, terms)

        run = optimise(image, scale.targets, params, scale.spec, scale.iterations, optimizer, opts.lr, on_step,
                       tol=opts.tol, window=opts.window, ema=opts.ema)
        runs.append(run)
        image = jnp.asarray(run.image)[None]
        done += len(run.history) - 1
    return GatysResult(runs[-1].image, [h for run in runs for h in run.history[:-1]] + runs[-1].history[-1:],
                       sum(run.seconds for run in runs), sum(run.compile_seconds for run in runs),
                       [[*scale.shape, scale.iterations] for scale in scales], optimizer,
                       [run.stops[0] for run in runs])


def texture(
    style: Any,
    size: int | tuple[int, int] = 256,
    *,
    vgg_params: vgg.Params | None = None,
    style_blend: Sequence[float] | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> GatysResult:
    """Texture synthesis: the same optimisation (coarse to fine, as :func:`gatys`) from noise with
    no content term; each finer scale starts from the last result resized up.

    style: one image or a list blended by ``style_blend``; size: the output's long side (aspect
    of the first style kept) or (height, width).
    """
    options.setdefault("init", "random")
    options.setdefault("size", None)
    opts = make_options(**options)
    opts.validate()
    if opts.preserve_color:
        raise OptionError("preserve_color needs a content photo to take the colours from (not a texture)",
                          fields=("preserve_color",))
    style_list = [imagelib.to_float_image(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    color.check_weights(len(style_list), style_blend)
    limit = opts.max_pixels
    if isinstance(size, int):
        if size <= 0:
            raise OptionError(f"texture size must be positive, got {size}")
        shape = imagelib.fit_long_side(style_list[0], size, max_pixels=limit).shape[:2]
    else:
        shape = (int(size[0]), int(size[1]))
        if min(shape) <= 0:
            raise OptionError(f"texture size must be positive, got {size}")
        imagelib.check_pixels(shape[1], shape[0], limit, "the texture")
    check_shape(shape)
    style_imgs = working_styles(style_list, shape, opts)
    for style_img in style_imgs:
        check_shape(style_img.shape[:2], "style image")
    return _coarse_to_fine(None, shape, style_imgs, opts, vgg_params, style_blend, callback)
