"""The web page's dispatch: a checked job (:class:`jaxstyle.serve.form.JobRequest`) -> the registered method
that runs it (:mod:`jaxstyle.methods.registry`), through :mod:`jaxstyle.run` as the command line does; and the
arbitrary models' weights, loaded once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxstyle import run
from jaxstyle.errors import JaxstyleError, one_line
from jaxstyle.io import images, styles
from jaxstyle.methods import registry
from jaxstyle.methods.arbitrary import microast, stylizer, vgg_decoders
from jaxstyle.methods.registry import StyleJob
from jaxstyle.nn import vgg
from jaxstyle.serve.form import JobRequest
from jaxstyle.serve.jobs import Job
from jaxstyle.serve.limits import Limits


class Stylist:
    """Runs a :class:`JobRequest` in the worker thread through :mod:`jaxstyle.run` (the command line's
    path: any registered one-pass method by :func:`jaxstyle.run.build_stylizer` and
    :func:`jaxstyle.run.stylize_images`, back-propagation by :func:`jaxstyle.run.run_gatys`); caches
    models, VGG19 and built-in styles.

    ``weights``: the arbitrary models' weights by model (``microast``: its params, ``wct``/``adain``: the
    decoders pytree), loaded once by :func:`jaxstyle.serve.app.create_app`; a model without weights is unavailable.
    """

    def __init__(self, limits: Limits, weights: Mapping[str, Any] | None = None) -> None:
        self.limits = limits
        self.weights = dict(weights or {})
        # Weights kept between jobs, by key (StyleJob.cache): the app's, then what the methods load.
        self._cache: dict[str, Any] = dict(self.weights)
        self._styles: dict[str, np.ndarray] = {}

    def __call__(self, request: JobRequest, job: Job) -> np.ndarray:
        if registry.get(request.method).one_pass:
            return self.one_pass(request, job)
        return self.gatys(request, job)

    def one_pass(self, request: JobRequest, job: Job) -> np.ndarray:
        """A registered one-pass method (:func:`jaxstyle.run.build_stylizer`) with the app's weights and the
        ones kept from earlier jobs; a built-in style's painting from :meth:`_builtin_style`, the chosen model
        (a method with models) in its ``model_option`` setting. The photo is already at most ``max_side`` long."""
        method = registry.get(request.method)
        settings: dict[str, Any] = {}
        detail = "" if request.style is None else f" with {request.style}"
        if method.model_option is not None:
            settings[method.model_option], detail = request.model, f" ({request.model})"
        style = request.style_image if request.style is None else request.style
        assert style is not None  # a request has a style image or a style name
        job.message, job.progress = "computing the style's signals", 0.1
        stylize = run.build_stylizer(method.name, StyleJob(
            [style], strength=request.strength, preserve_color=request.preserve_color, settings=settings,
            load_style=self._builtin_style, cache=self._cache))
        photo = request.photo
        job.message, job.progress = f"stylising {photo.shape[1]}x{photo.shape[0]}{detail}", 0.3
        return run.stylize_image(photo, stylize)

    def gatys(self, request: JobRequest, job: Job) -> np.ndarray:
        """Back-propagation at ``gatys_size`` for ``gatys_iterations``; progress through the callback."""
        style = request.style_image if request.style is None else self._builtin_style(request.style)
        assert style is not None  # a request has a style image or a built-in style name
        options = self.limits.gatys_options(request.preserve_color)
        total = run.gatys_steps(request.photo.shape[:2], options)
        vgg_params = self._vgg_params(job)
        job.message = f"step 0 of {total} (the first one compiles)"

        def on_step(step: int, metrics: Any) -> None:
            job.progress = min(step / total, 1.0)
            job.message = f"step {step} of {total}"

        return run.run_gatys(request.photo, [style], options, vgg_params=vgg_params, progress=on_step).image

    def _vgg_params(self, job: Job) -> Any:
        """VGG19's params, loaded on the first job that needs them and kept (shared with the one-pass
        methods' cache)."""
        from jaxstyle.vgg_weights import load_vgg_params

        if "vgg" not in self._cache:
            job.message = "loading VGG19"
            self._cache["vgg"] = load_vgg_params()
        return self._cache["vgg"]

    def _builtin_style(self, name: str) -> np.ndarray:
        if name not in self._styles:
            # builtin_style never treats the name as a path (a file named "scream" here is not read).
            # These are the project's own files: the library's pixel limit, not the upload limit.
            self._styles[name] = images.load_image(styles.builtin_style(name), min_side=vgg.MIN_SIDE)
        return self._styles[name]


def load_app_weights(decoders: Mapping[str, Any] | str | os.PathLike[str] | None,
                     microast_model: Mapping[str, Any] | str | os.PathLike[str] | None = None,
                     ) -> tuple[dict[str, Any], dict[str, str]]:
    """The arbitrary models' weights for an app, by model, and the models that cannot run, with why
    (a missing or bad file: the one-line error, which says how to get it).

    ``decoders``: the wct/adain decoders pytree (used as is), a shipped set's name or a decoder file's path
    (None: the shipped set :data:`vgg_decoders.DEFAULT_DECODERS`). ``microast_model``: MicroAST's params,
    or a model file's path (None: the shipped model).
    """
    weights: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    try:
        source = microast.DEFAULT_NAME if microast_model is None else microast_model
        weights["microast"] = source if isinstance(source, Mapping) else microast.load_params(source)
    except JaxstyleError as err:
        unavailable["microast"] = one_line(err)
    try:
        loaded = decoders if isinstance(decoders, Mapping) else vgg_decoders.load_decoders(
            vgg_decoders.DEFAULT_DECODERS if decoders is None else decoders)
        weights.update(wct=loaded, adain=loaded)
    except JaxstyleError as err:
        unavailable.update(wct=one_line(err), adain=one_line(err))
    if all(model in unavailable for model in stylizer.model_names()):
        unavailable["arbitrary"] = unavailable["microast"]
    return weights, unavailable
