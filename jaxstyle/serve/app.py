"""A local web page for jaxstyle: upload a photo, pick a style, download the stylised image.

:func:`create_app` returns a Starlette app (run it with ``bin/serve``, or any ASGI server).

* ``GET /``                        the page: ``page.html`` beside this module (package data; one
                                   self-contained file, inline CSS and JS, no outside assets)
* ``GET /api/styles``              shipped transform models, built-in styles, which methods are
                                   available (``unavailable``: method -> why), the limits
* ``POST /api/jobs``               multipart form -> ``{"id": ...}`` (202); everything is checked first
* ``GET /api/jobs/{id}``           ``{"state": "queued|running|done|error", "progress": 0..1, "message": ...}``,
                                   plus ``"seconds"`` (the job's run time, measured here) once finished
* ``GET /api/jobs/{id}/result.png`` the result once ``done``

Methods: ``arbitrary`` (any painting in one pass, :mod:`jaxstyle.methods.arbitrary.stylizer`; the default when
a style image is uploaded; its ``model`` field picks MicroAST, the default, or WCT/AdaIN), ``transform`` (a
shipped net) and ``gatys`` (back-propagation, minutes). The arbitrary models' weights are loaded once, when
the app is created; a model whose weights cannot be loaded (a missing or corrupt file) gets a one-line 503
and everything else works.

Uploads stay in memory: the body is read with a byte cap (after checking ``Content-Length``), the
client's filename is never used, and styles are picked from fixed lists, never opened by a client-given
path. Jobs run one at a time in a single background thread (they are CPU bound); the last
``keep_results`` finished jobs are kept. Every error is JSON ``{"error": "one line"}``: 4xx for anything
the client sent, 500 only for a bug.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.resources
import logging
import math
import os
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from jaxstyle import drive
from jaxstyle.errors import JaxstyleError, OptionError, one_line
from jaxstyle.io import images, styles
from jaxstyle.methods.arbitrary import microast, stylizer, vgg_decoders
from jaxstyle.methods.gatys import presets
from jaxstyle.methods.transform import net as transform
from jaxstyle.nn import vgg
from jaxstyle.options import check_strength

log = logging.getLogger("jaxstyle.serve")

METHODS = ("arbitrary", "transform", "gatys")
MB = 1_000_000
DEFAULT_MAX_UPLOAD_BYTES = 20 * MB
DEFAULT_MAX_PIXELS = 25_000_000
DEFAULT_GATYS_SIZE = 384
DEFAULT_GATYS_ITERATIONS = 200
DEFAULT_MAX_SIDE = 1024
DEFAULT_KEEP_RESULTS = 16
DEFAULT_MAX_QUEUED = 8

#: Form fields the page sends: text fields (capped at ``_MAX_TEXT_BYTES``) and image files.
TEXT_FIELDS = frozenset({"method", "style", "strength", "preserve_color", "model"})
FILE_FIELDS = frozenset({"photo", "style_image"})
_MAX_TEXT_BYTES = 256


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the server accepts and how hard it works (see ``bin/serve --help``)."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    gatys_size: int = DEFAULT_GATYS_SIZE
    gatys_iterations: int = DEFAULT_GATYS_ITERATIONS
    max_side: int = DEFAULT_MAX_SIDE  # transform and arbitrary photos
    keep_results: int = DEFAULT_KEEP_RESULTS
    max_queued: int = DEFAULT_MAX_QUEUED

    def validate(self) -> None:
        """Raise OptionError for a non-positive limit or gatys settings that :func:`jaxstyle.gatys` refuses."""
        for field in dataclasses.fields(self):
            if getattr(self, field.name) < 1:
                raise OptionError(f"{field.name.replace('_', ' ')} must be at least 1, got {getattr(self, field.name)}")
        for name in ("max_side", "gatys_size"):
            if getattr(self, name) < vgg.MIN_SIDE:
                raise OptionError(f"{name.replace('_', ' ')} must be at least {vgg.MIN_SIDE} px, "
                                  f"got {getattr(self, name)}")
        self.gatys_options().validate()

    def gatys_options(self, preserve_color: bool = False) -> presets.GatysOptions:
        """The :class:`presets.GatysOptions` every gatys job runs with."""
        return presets.GatysOptions(size=self.gatys_size, iterations=self.gatys_iterations,
                                     max_pixels=self.max_pixels, preserve_color=preserve_color)


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """A validated job: ``photo`` and ``style_image`` are decoded float32[H,W,3] arrays."""

    method: str
    style: str | None  # a shipped model / built-in style name; None: ``style_image`` is the style
    strength: float
    preserve_color: bool
    photo: np.ndarray
    style_image: np.ndarray | None = None
    model: str = stylizer.DEFAULT_MODEL  # arbitrary only: one of stylizer.MODELS


@dataclasses.dataclass
class Job:
    """One job's state, read by the API while the worker thread updates it."""

    id: str
    task: Callable[[Job], np.ndarray] | None
    state: str = "queued"
    progress: float = 0.0
    message: str = "waiting for the worker"
    png: bytes | None = None
    seconds: float | None = None  # the run time (task and PNG encoding), set before the final state
    delivered: bool = False  # the client has its outcome (the result, or the error's status)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"state": self.state, "progress": round(self.progress, 4), "message": self.message}
        if self.seconds is not None:
            status["seconds"] = self.seconds
        return status


class QueueFullError(Exception):
    """More than ``max_queued`` jobs are waiting; ``retry_after``: seconds until one is likely free."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


#: Retry-After (s) when the queue is full and no job has finished yet to time.
DEFAULT_RETRY_AFTER_S = 5
MAX_RETRY_AFTER_S = 300


class Worker:
    """Runs jobs one at a time, in order, in one background thread (started with the first job).

    Keeps every queued or running job and the last ``keep`` finished ones; older results are dropped.
    """

    def __init__(self, keep: int, max_queued: int) -> None:
        self._keep, self._max_queued = keep, max_queued
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._job_seconds: float | None = None  # moving average of finished jobs' run time

    def retry_after(self, waiting: int) -> int:
        """Seconds until a queue slot is likely free: the average job time (once known) times the jobs
        ahead, within 1..:data:`MAX_RETRY_AFTER_S`."""
        if self._job_seconds is None:
            return DEFAULT_RETRY_AFTER_S
        return int(min(MAX_RETRY_AFTER_S, max(1, math.ceil(self._job_seconds * max(1, waiting)))))

    def submit(self, task: Callable[[Job], np.ndarray]) -> Job:
        """Queue ``task`` (called with its :class:`Job` in the worker thread; returns the image)."""
        with self._lock:
            waiting = sum(job.state == "queued" for job in self._jobs.values())
            if waiting >= self._max_queued:
                retry = self.retry_after(waiting)
                raise QueueFullError(f"busy: {waiting} jobs are waiting; try again in {retry} s", retry)
            job = Job(uuid.uuid4().hex, task)
            self._jobs[job.id] = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="jaxstyle-worker", daemon=True)
                self._thread.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def close(self, timeout: float = 5.0) -> None:
        """Stop once the jobs queued so far are done; waits up to ``timeout`` s (the thread is a daemon,
        so an unfinished job does not keep the process alive)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            self._run(job)

    def _run(self, job: Job) -> None:
        job.state, job.message = "running", "working"
        started = time.perf_counter()
        png, message = None, "done"
        try:
            assert job.task is not None
            png = images.encode_png(job.task(job))
        except JaxstyleError as err:
            message = one_line(err)
        except Exception as err:  # a bug: log it, tell the page something short
            log.exception("job %s failed", job.id)
            message = f"internal error ({type(err).__name__}): {one_line(err)}"[:300]
        finally:
            job.task = None  # frees the decoded images
            seconds = time.perf_counter() - started
            # The time is in place before the state says finished, so a poll never sees one without it.
            job.seconds = round(seconds, 3)
            if png is not None:
                job.png, job.progress = png, 1.0
            job.message, job.state = message, "done" if png is not None else "error"
            self._job_seconds = seconds if self._job_seconds is None else 0.7 * self._job_seconds + 0.3 * seconds
            self._prune()

    def _prune(self) -> None:
        with self._lock:
            finished = [key for key, job in self._jobs.items() if job.state in ("done", "error")]
            # Past ``keep``, drop what the clients already have first, then the oldest.
            finished.sort(key=lambda key: not self._jobs[key].delivered)  # stable: oldest first in each group
            for key in finished[: max(0, len(finished) - self._keep)]:
                del self._jobs[key]


class Stylist:
    """Runs a :class:`JobRequest` in the worker thread; caches models, VGG19 and built-in styles.

    ``weights``: the arbitrary models' weights by model (``microast``: its params, ``wct``/``adain``: the
    decoders pytree), loaded once by :func:`create_app`; a model without weights is unavailable.
    """

    def __init__(self, limits: Limits, weights: Mapping[str, Any] | None = None) -> None:
        self.limits = limits
        self.weights = dict(weights or {})
        self._models: dict[str, dict] = {}
        self._styles: dict[str, np.ndarray] = {}
        self._vgg: Any = None

    def __call__(self, request: JobRequest, job: Job) -> np.ndarray:
        if request.method == "arbitrary":
            return self.arbitrary(request, job)
        if request.method == "transform":
            return self.transform(request, job)
        return self.gatys(request, job)

    def arbitrary(self, request: JobRequest, job: Job) -> np.ndarray:
        """Any painting in one pass with the app's weights (the photo is already at most ``max_side``)."""
        assert request.model in self.weights  # parse_job refuses models without weights
        style = request.style_image if request.style is None else self._builtin_style(request.style)
        weights: dict[str, Any] = {"microast_params": self.weights[request.model]}
        if request.model != "microast":
            weights = {"decoders": self.weights[request.model], "vgg_params": self._vgg_params(job)}
        job.message, job.progress = "computing the style's signals", 0.1
        stylize = stylizer.make_stylizer(style, model=request.model, strength=request.strength,
                                         preserve_color=request.preserve_color, **weights)
        photo = request.photo
        job.message, job.progress = f"stylising {photo.shape[1]}x{photo.shape[0]} ({request.model})", 0.3
        return stylize(photo[None])[0]

    def transform(self, request: JobRequest, job: Job) -> np.ndarray:
        """A shipped transform net (the photo is already at most ``max_side`` long)."""
        assert request.style is not None
        if request.style not in self._models:
            self._models[request.style] = transform.load_transform(request.style)
        photo = request.photo
        job.message = f"stylising {photo.shape[1]}x{photo.shape[0]} with {request.style}"
        return transform.stylize(photo, self._models[request.style], strength=request.strength,
                                 preserve_color=request.preserve_color)

    def gatys(self, request: JobRequest, job: Job) -> np.ndarray:
        """Back-propagation at ``gatys_size`` for ``gatys_iterations``; progress through the callback."""
        style = request.style_image if request.style is None else self._builtin_style(request.style)
        assert style is not None  # a request has a style image or a built-in style name
        options = self.limits.gatys_options(request.preserve_color)
        total = drive.gatys_steps(request.photo.shape[:2], options)
        vgg_params = self._vgg_params(job)
        job.message = f"step 0 of {total} (the first one compiles)"

        def on_step(step: int, metrics: Any) -> None:
            job.progress = min(step / total, 1.0)
            job.message = f"step {step} of {total}"

        return drive.run_gatys(request.photo, [style], options, vgg_params=vgg_params, progress=on_step).image

    def _vgg_params(self, job: Job) -> Any:
        """VGG19's params, loaded on the first job that needs them and kept."""
        from jaxstyle.vgg_weights import load_vgg_params

        if self._vgg is None:
            job.message = "loading VGG19"
            self._vgg = load_vgg_params()
        return self._vgg

    def _builtin_style(self, name: str) -> np.ndarray:
        if name not in self._styles:
            # builtin_style never treats the name as a path (a file named "scream" here is not read).
            # These are the project's own files: the library's pixel limit, not the upload limit.
            self._styles[name] = images.load_image(styles.builtin_style(name), min_side=vgg.MIN_SIDE)
        return self._styles[name]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# ---------------------------------------------------------------- reading the form


class _FormReader:
    """A streaming multipart parser that keeps the known fields' bytes in memory (filenames ignored)."""

    def __init__(self, boundary: bytes) -> None:
        self.fields: dict[str, bytearray] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._name: str | None = None  # the field being read; None: skipped
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._on_part_begin,
            "on_header_field": lambda data, start, end: self._header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
        })

    def _on_part_begin(self) -> None:
        self._disposition, self._name = b"", None

    def _on_header_end(self) -> None:
        if bytes(self._header_name).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("latin-1")
        if name not in TEXT_FIELDS | FILE_FIELDS:
            return  # unknown fields are skipped, not stored
        if name in self.fields:
            raise HTTPException(400, f"form field {name!r} was sent twice")
        self._name, self.fields[name] = name, bytearray()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name is None:
            return
        value = self.fields[self._name]
        value.extend(data[start:end])
        if self._name in TEXT_FIELDS and len(value) > _MAX_TEXT_BYTES:
            raise HTTPException(400, f"form field {self._name!r} is too long")


async def read_form(request: Request, limit: int) -> dict[str, bytes]:
    """The known fields of a ``multipart/form-data`` body of at most ``limit`` bytes, in memory.

    ``Content-Length`` is checked before reading; the stream is cut off as soon as it passes ``limit``.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise HTTPException(415, "send the form as multipart/form-data")
    too_large = HTTPException(413, f"upload is larger than the limit of {limit / MB:g} MB; use a smaller image")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "bad Content-Length header")
        if int(declared) > limit:
            raise too_large
    reader, received = _FormReader(params[b"boundary"]), 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise too_large
            reader.parser.write(chunk)
        reader.parser.finalize()
    except FormParserError as err:
        raise HTTPException(400, f"malformed form data ({one_line(err)[:120]})") from None
    return {name: bytes(value) for name, value in reader.fields.items()}


def _text(form: dict[str, bytes], name: str, default: str) -> str:
    try:
        return form[name].decode("utf-8").strip() if name in form else default
    except UnicodeDecodeError:
        raise HTTPException(400, f"form field {name!r} is not UTF-8 text") from None


def _strength(text: str) -> float:
    """The form's strength: a number (else 400), then :func:`jaxstyle.options.check_strength`."""
    try:
        value = float(text)
    except ValueError:
        raise HTTPException(400, f"strength must be a number between 0 and 1, got {text[:40]!r}") from None
    try:
        return check_strength(value)
    except OptionError as err:
        raise HTTPException(400, one_line(err)) from None


def _decode(data: bytes, what: str, limits: Limits, long_side: int) -> np.ndarray:
    """An uploaded image as float32[H,W,3] (the shared :func:`images.decode_image` checks), scaled
    down to ``long_side`` if longer, so a waiting job holds megabytes, not a 25-megapixel array."""
    if not data:
        raise HTTPException(400, f"the {what} is empty; choose an image file")
    try:
        image = images.decode_image(data, what, max_pixels=limits.max_pixels, min_side=vgg.MIN_SIDE)
    except JaxstyleError as err:
        raise HTTPException(400, one_line(err)) from None
    if max(image.shape[:2]) > long_side:
        image = images.fit_long_side(image, long_side, max_pixels=limits.max_pixels)
    return image


def _style_names(method: str) -> list[str]:
    """The style names ``method`` takes: shipped nets for transform, built-in paintings otherwise."""
    return list(transform.shipped_models()) if method == "transform" else list(styles.BUILTIN_STYLES)


async def parse_job(form: dict[str, bytes], limits: Limits, decoders: anyio.CapacityLimiter,
                    unavailable: Mapping[str, str] | None = None) -> JobRequest:
    """Check every field of a job form (names, ranges, images) before anything is queued.

    Without a ``method``, an uploaded style image means ``arbitrary`` and a style name ``transform``.
    ``unavailable``: method -> why it cannot run here (503). Images are decoded in a thread, at most
    ``decoders`` at a time (each may briefly take a few hundred MB); the photo is kept at the size the
    method works at (``max_side``; ``gatys_size`` for gatys), an arbitrary style image at the size
    its statistics are taken at (:data:`stylizer.DEFAULT_STYLE_SIZE`).
    """
    has_style_image = bool(form.get("style_image"))
    method = _text(form, "method", "arbitrary" if has_style_image else "transform")
    if method not in METHODS:
        raise HTTPException(400, f"unknown method {method[:40]!r}; use one of {', '.join(METHODS)}")
    if unavailable and method in unavailable:
        raise HTTPException(503, f"method {method} is not available on this server: {unavailable[method]}")
    allowed = _style_names(method)
    style_name = _text(form, "style", "")
    if has_style_image and method == "transform":
        raise HTTPException(400, "a style image works with methods arbitrary and gatys (transform uses trained models)")
    if not has_style_image and style_name not in allowed:
        raise HTTPException(400, f"unknown style {style_name[:40]!r} for {method}; choose one of {', '.join(allowed)}")
    style: str | None = None if has_style_image else style_name
    strength = _strength(_text(form, "strength", "1"))
    if strength != 1.0 and method == "gatys":
        raise HTTPException(400, "strength works with methods transform and arbitrary")
    model = _text(form, "model", stylizer.DEFAULT_MODEL)
    if "model" in form and method != "arbitrary":
        raise HTTPException(400, "model works with method arbitrary")
    if model not in stylizer.MODELS:
        raise HTTPException(400, f"unknown model {model[:40]!r}; use one of {', '.join(stylizer.MODELS)}")
    if method == "arbitrary" and unavailable and model in unavailable:
        raise HTTPException(503, f"model {model} is not available on this server: {unavailable[model]}")
    preserve_color = _text(form, "preserve_color", "").lower() in ("1", "true", "on", "yes")
    if "photo" not in form:
        raise HTTPException(400, "no photo: send the image in the form field 'photo'")
    side = limits.gatys_size if method == "gatys" else limits.max_side
    photo = await anyio.to_thread.run_sync(_decode, form["photo"], "photo", limits, side, limiter=decoders)
    style_image = None
    if has_style_image:
        style_side = stylizer.DEFAULT_STYLE_SIZE if method == "arbitrary" else limits.max_side
        style_image = await anyio.to_thread.run_sync(_decode, form["style_image"], "style image", limits,
                                                     style_side, limiter=decoders)
    return JobRequest(method, style, strength, preserve_color, photo, style_image, model)


# ---------------------------------------------------------------- the app


def page_text() -> str:
    """The web page, ``jaxstyle/serve/page.html`` (package data, read with importlib.resources)."""
    return importlib.resources.files("jaxstyle.serve").joinpath("page.html").read_text(encoding="utf-8")


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
    if all(model in unavailable for model in stylizer.MODELS):
        unavailable["arbitrary"] = unavailable["microast"]
    return weights, unavailable


def create_app(
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    gatys_size: int = DEFAULT_GATYS_SIZE,
    gatys_iterations: int = DEFAULT_GATYS_ITERATIONS,
    max_side: int = DEFAULT_MAX_SIDE,
    keep_results: int = DEFAULT_KEEP_RESULTS,
    max_queued: int = DEFAULT_MAX_QUEUED,
    decoders: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    microast_model: Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> Starlette:
    """The web app. ``max_upload_bytes``: largest request body; ``max_pixels``: largest image (its header
    is checked before decoding); ``gatys_size`` / ``gatys_iterations``: every gatys job's long side and
    steps; ``max_side``: transform and arbitrary photos are scaled down to this long side;
    ``keep_results``: finished jobs kept in memory; ``max_queued``: waiting jobs before new ones get 429;
    ``decoders`` / ``microast_model``: the arbitrary models' weights (see :func:`load_app_weights`), loaded
    here, once. A model whose weights cannot be loaded is unavailable (``app.state.unavailable`` says why);
    the rest works.

    Raises:
        OptionError: a limit below 1, or gatys settings that would be refused.
    """
    limits = Limits(max_upload_bytes, max_pixels, gatys_size, gatys_iterations, max_side, keep_results, max_queued)
    limits.validate()
    weights, unavailable = load_app_weights(decoders, microast_model)
    for model, why in unavailable.items():
        log.info("%s is not available: %s", model, why)
    worker, stylist = Worker(keep_results, max_queued), Stylist(limits, weights)
    image_decoders = anyio.CapacityLimiter(2)

    page_html = page_text()

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(page_html, headers={"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"})

    async def style_list(request: Request) -> JSONResponse:
        return JSONResponse({
            **{method: _style_names(method) for method in METHODS},
            "unavailable": unavailable,
            "models": list(stylizer.MODELS),
            "limits": {"max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels,
                       "gatys_size": limits.gatys_size, "gatys_iterations": limits.gatys_iterations,
                       "max_side": limits.max_side},
        })

    async def submit(request: Request) -> JSONResponse:
        job_request = await parse_job(await read_form(request, limits.max_upload_bytes), limits, image_decoders,
                                      unavailable)
        try:
            job = worker.submit(functools.partial(stylist, job_request))
        except QueueFullError as err:
            raise HTTPException(429, str(err), headers={"Retry-After": str(err.retry_after)}) from None
        return JSONResponse({"id": job.id}, status_code=202)

    def find(request: Request) -> Job:
        job = worker.get(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404, "no such job (unknown id, or an old result that was dropped)")
        return job

    async def status(request: Request) -> JSONResponse:
        job = find(request)
        job.delivered = job.delivered or job.state == "error"
        return JSONResponse(job.status())

    async def result(request: Request) -> Response:
        job = find(request)
        if job.png is None:
            raise HTTPException(404, f"the result is not ready (job is {job.state})")
        job.delivered = True
        return Response(job.png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        worker.close()

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/styles", style_list),
            Route("/api/jobs", submit, methods=["POST"]),
            Route("/api/jobs/{job_id}", status),
            Route("/api/jobs/{job_id}/result.png", result),
        ],
        exception_handlers={HTTPException: _http_error, JaxstyleError: _user_error, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.limits, app.state.worker, app.state.unavailable = limits, worker, unavailable
    return app


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    response = _error(exc.status_code, one_line(exc.detail))
    response.headers.update(exc.headers or {})
    return response


async def _user_error(request: Request, exc: Exception) -> JSONResponse:
    return _error(400, one_line(exc))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, f"internal error ({type(exc).__name__}); see the server's log")


_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
