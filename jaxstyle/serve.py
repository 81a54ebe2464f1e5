"""A local web page for jaxstyle: upload a photo, pick a style, download the stylised image.

:func:`create_app` returns a Starlette app (run it with ``bin/serve``, or any ASGI server).

* ``GET /``                        the page (one self-contained HTML file: inline CSS and JS)
* ``GET /api/styles``              shipped transform models, built-in styles, the limits
* ``POST /api/jobs``               multipart form -> ``{"id": ...}`` (202); everything is checked first
* ``GET /api/jobs/{id}``           ``{"state": "queued|running|done|error", "progress": 0..1, "message": ...}``
* ``GET /api/jobs/{id}/result.png`` the result once ``done``

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
import logging
import math
import queue
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
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

from jaxstyle import backprop, images, styles, transform, vgg
from jaxstyle.errors import JaxstyleError, one_line

log = logging.getLogger("jaxstyle.serve")

METHODS = ("transform", "gatys")
MB = 1_000_000
DEFAULT_MAX_UPLOAD_BYTES = 20 * MB
DEFAULT_MAX_PIXELS = 25_000_000
DEFAULT_GATYS_SIZE = 384
DEFAULT_GATYS_ITERATIONS = 200
DEFAULT_MAX_SIDE = 1024
DEFAULT_KEEP_RESULTS = 16
DEFAULT_MAX_QUEUED = 8

#: Form fields the page sends: text fields (capped at ``_MAX_TEXT_BYTES``) and image files.
TEXT_FIELDS = frozenset({"method", "style", "strength", "preserve_color"})
FILE_FIELDS = frozenset({"photo", "style_image"})
_MAX_TEXT_BYTES = 256


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the server accepts and how hard it works (see ``bin/serve --help``)."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    gatys_size: int = DEFAULT_GATYS_SIZE
    gatys_iterations: int = DEFAULT_GATYS_ITERATIONS
    max_side: int = DEFAULT_MAX_SIDE
    keep_results: int = DEFAULT_KEEP_RESULTS
    max_queued: int = DEFAULT_MAX_QUEUED

    def validate(self) -> None:
        """Raise OptionError for a non-positive limit or gatys settings that :func:`backprop.gatys` refuses."""
        from jaxstyle.errors import OptionError

        for field in dataclasses.fields(self):
            if getattr(self, field.name) < 1:
                raise OptionError(f"{field.name.replace('_', ' ')} must be at least 1, got {getattr(self, field.name)}")
        for name in ("max_side", "gatys_size"):
            if getattr(self, name) < vgg.MIN_SIDE:
                raise OptionError(f"{name.replace('_', ' ')} must be at least {vgg.MIN_SIDE} px, "
                                  f"got {getattr(self, name)}")
        self.gatys_options().validate()

    def gatys_options(self, preserve_color: bool = False) -> backprop.GatysOptions:
        """The :class:`backprop.GatysOptions` every gatys job runs with."""
        return backprop.GatysOptions(size=self.gatys_size, iterations=self.gatys_iterations,
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


@dataclasses.dataclass
class Job:
    """One job's state, read by the API while the worker thread updates it."""

    id: str
    task: Callable[[Job], np.ndarray] | None
    state: str = "queued"
    progress: float = 0.0
    message: str = "waiting for the worker"
    png: bytes | None = None

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "progress": round(self.progress, 4), "message": self.message}


class QueueFullError(Exception):
    """More than ``max_queued`` jobs are waiting."""


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

    def submit(self, task: Callable[[Job], np.ndarray]) -> Job:
        """Queue ``task`` (called with its :class:`Job` in the worker thread; returns the image)."""
        with self._lock:
            waiting = sum(job.state == "queued" for job in self._jobs.values())
            if waiting >= self._max_queued:
                raise QueueFullError(f"busy: {waiting} jobs are waiting; try again in a minute")
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
        try:
            assert job.task is not None
            job.png = images.encode_png(job.task(job))
            job.progress, job.message, job.state = 1.0, "done", "done"
        except JaxstyleError as err:
            job.message, job.state = one_line(err), "error"
        except Exception as err:  # a bug: log it, tell the page something short
            log.exception("job %s failed", job.id)
            job.message, job.state = f"internal error ({type(err).__name__}): {one_line(err)}"[:300], "error"
        finally:
            job.task = None  # frees the decoded images
            self._prune()

    def _prune(self) -> None:
        with self._lock:
            finished = [key for key, job in self._jobs.items() if job.state in ("done", "error")]
            for key in finished[: max(0, len(finished) - self._keep)]:
                del self._jobs[key]


class Stylist:
    """Runs a :class:`JobRequest` in the worker thread; caches models, VGG19 and built-in styles."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._models: dict[str, dict] = {}
        self._styles: dict[str, np.ndarray] = {}
        self._vgg: Any = None

    def __call__(self, request: JobRequest, job: Job) -> np.ndarray:
        if request.method == "transform":
            return self.transform(request, job)
        return self.gatys(request, job)

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
        from jaxstyle.weights import load_vgg_params

        style = request.style_image if request.style is None else self._builtin_style(request.style)
        options = self.limits.gatys_options(request.preserve_color)
        shape = images.long_side_shape(request.photo.shape[:2], self.limits.gatys_size)
        total = sum(its for _, its in backprop.scale_plan(shape, options))
        if self._vgg is None:
            job.message = "loading VGG19"
            self._vgg = load_vgg_params()
        job.message = f"step 0 of {total} (the first one compiles)"

        def on_step(step: int, image: Any, terms: dict[str, float]) -> None:
            job.progress = min(step / total, 1.0)
            job.message = f"step {step} of {total}"

        result = backprop.gatys(request.photo, style, vgg_params=self._vgg, callback=on_step,
                                **dataclasses.asdict(options))
        return result.image

    def _builtin_style(self, name: str) -> np.ndarray:
        if name not in self._styles:
            # builtin_style never treats the name as a path (a file named "scream" here is not read).
            self._styles[name] = images.load_image(styles.builtin_style(name), max_pixels=self.limits.max_pixels,
                                                   min_side=vgg.MIN_SIDE)
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
    try:
        value = float(text)
    except ValueError:
        raise HTTPException(400, f"strength must be a number between 0 and 1, got {text[:40]!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise HTTPException(400, f"strength must be between 0 and 1, got {text[:40]}")
    return value


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


async def parse_job(form: dict[str, bytes], limits: Limits, decoders: anyio.CapacityLimiter) -> JobRequest:
    """Check every field of a job form (names, ranges, images) before anything is queued.

    Images are decoded in a thread, at most ``decoders`` at a time (each may briefly take a few
    hundred MB); the photo is kept at the size the method works at.
    """
    method = _text(form, "method", "transform")
    if method not in METHODS:
        raise HTTPException(400, f"unknown method {method[:40]!r}; use one of {', '.join(METHODS)}")
    allowed = list(transform.shipped_models()) if method == "transform" else list(styles.BUILTIN_STYLES)
    style: str | None = _text(form, "style", "")
    has_style_image = bool(form.get("style_image"))
    if has_style_image and method != "gatys":
        raise HTTPException(400, "a style image works with method gatys (transform uses trained models)")
    if has_style_image:
        style = None
    elif style not in allowed:
        raise HTTPException(400, f"unknown style {style[:40]!r} for {method}; choose one of {', '.join(allowed)}")
    strength = _strength(_text(form, "strength", "1"))
    if strength != 1.0 and method != "transform":
        raise HTTPException(400, "strength works with method transform")
    preserve_color = _text(form, "preserve_color", "").lower() in ("1", "true", "on", "yes")
    if "photo" not in form:
        raise HTTPException(400, "no photo: send the image in the form field 'photo'")
    side = limits.max_side if method == "transform" else limits.gatys_size
    photo = await anyio.to_thread.run_sync(_decode, form["photo"], "photo", limits, side, limiter=decoders)
    style_image = None
    if has_style_image:
        style_image = await anyio.to_thread.run_sync(_decode, form["style_image"], "style image", limits,
                                                     limits.max_side, limiter=decoders)
    return JobRequest(method, style, strength, preserve_color, photo, style_image)


# ---------------------------------------------------------------- the app


def create_app(
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    gatys_size: int = DEFAULT_GATYS_SIZE,
    gatys_iterations: int = DEFAULT_GATYS_ITERATIONS,
    max_side: int = DEFAULT_MAX_SIDE,
    keep_results: int = DEFAULT_KEEP_RESULTS,
    max_queued: int = DEFAULT_MAX_QUEUED,
) -> Starlette:
    """The web app. ``max_upload_bytes``: largest request body; ``max_pixels``: largest image (its header
    is checked before decoding); ``gatys_size`` / ``gatys_iterations``: every gatys job's long side and
    steps; ``max_side``: transform photos are scaled down to this long side; ``keep_results``: finished
    jobs kept in memory; ``max_queued``: waiting jobs before new ones get 429.

    Raises:
        OptionError: a limit below 1, or gatys settings that would be refused.
    """
    limits = Limits(max_upload_bytes, max_pixels, gatys_size, gatys_iterations, max_side, keep_results, max_queued)
    limits.validate()
    worker, stylist = Worker(keep_results, max_queued), Stylist(limits)
    decoders = anyio.CapacityLimiter(2)

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"})

    async def style_list(request: Request) -> JSONResponse:
        return JSONResponse({
            "transform": list(transform.shipped_models()),
            "gatys": list(styles.BUILTIN_STYLES),
            "limits": {"max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels,
                       "gatys_size": limits.gatys_size, "gatys_iterations": limits.gatys_iterations,
                       "max_side": limits.max_side},
        })

    async def submit(request: Request) -> JSONResponse:
        job_request = await parse_job(await read_form(request, limits.max_upload_bytes), limits, decoders)
        try:
            job = worker.submit(functools.partial(stylist, job_request))
        except QueueFullError as err:
            raise HTTPException(429, str(err)) from None
        return JSONResponse({"id": job.id}, status_code=202)

    def find(request: Request) -> Job:
        job = worker.get(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404, "no such job (unknown id, or an old result that was dropped)")
        return job

    async def status(request: Request) -> JSONResponse:
        return JSONResponse(find(request).status())

    async def result(request: Request) -> Response:
        job = find(request)
        if job.png is None:
            raise HTTPException(404, f"the result is not ready (job is {job.state})")
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
    app.state.limits, app.state.worker = limits, worker
    return app


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, one_line(exc.detail))


async def _user_error(request: Request, exc: Exception) -> JSONResponse:
    return _error(400, one_line(exc))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, f"internal error ({type(exc).__name__}); see the server's log")


_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jaxstyle</title>
<style>
  :root { --ink: #1d2433; --muted: #667085; --line: #d9dee8; --accent: #c2410c; --bg: #f6f4ef; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
         background: var(--bg); }
  header { padding: 20px 28px 6px; }
  h1 { margin: 0; font-size: 24px; letter-spacing: .5px; }
  h1 span { color: var(--accent); }
  header p { margin: 2px 0 0; color: var(--muted); }
  main { display: grid; grid-template-columns: minmax(280px, 360px) 1fr; gap: 20px; padding: 16px 28px 28px; }
  @media (max-width: 760px) { main { grid-template-columns: 1fr; } }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 18px; }
  label.field { display: block; font-weight: 600; margin: 14px 0 6px; }
  form > label.field:first-child { margin-top: 0; }
  .hint { color: var(--muted); font-size: 13px; font-weight: 400; }
  input[type=file], select { width: 100%; font: inherit; }
  select { padding: 6px 8px; border: 1px solid var(--line); border-radius: 8px; background: #fff; }
  .methods { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
  .methods label { border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; cursor: pointer; }
  .methods label:has(input:checked) { border-color: var(--accent); background: #fff7ed; }
  .methods small { display: block; color: var(--muted); }
  .row { display: flex; align-items: center; gap: 10px; }
  .row input[type=range] { flex: 1; accent-color: var(--accent); }
  .check { display: flex; align-items: center; gap: 8px; margin-top: 14px; }
  button { margin-top: 18px; width: 100%; padding: 11px; font: inherit; font-weight: 600; color: #fff;
           background: var(--accent); border: 0; border-radius: 8px; cursor: pointer; }
  button:disabled { opacity: .55; cursor: progress; }
  progress { width: 100%; height: 10px; margin-top: 14px; accent-color: var(--accent); }
  #status { color: var(--muted); font-size: 13px; min-height: 1.4em; }
  #error { display: none; margin-top: 12px; padding: 10px 12px; border-radius: 8px; color: #991b1b;
           background: #fef2f2; border: 1px solid #fecaca; }
  .stage { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; align-items: start; }
  @media (max-width: 1000px) { .stage { grid-template-columns: 1fr; } }
  figure { margin: 0; }
  figcaption { font-weight: 600; margin-bottom: 8px; display: flex; justify-content: space-between; }
  .frame { border: 1px dashed var(--line); border-radius: 10px; min-height: 220px; display: grid;
           place-items: center; color: var(--muted); background: #fafaf9; overflow: hidden; }
  .frame img { display: block; width: 100%; height: auto; max-height: 70vh; object-fit: contain; }
  a.download { color: var(--accent); font-weight: 600; text-decoration: none; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<header>
  <h1>jax<span>style</span></h1>
  <p>Neural style transfer on this computer: nothing leaves it.</p>
</header>
<main>
  <form id="form" class="card" novalidate>
    <label class="field" for="photo">Photo <span class="hint" id="limits"></span></label>
    <input type="file" id="photo" name="photo" accept="image/*">

    <label class="field">Method</label>
    <div class="methods">
      <label><input type="radio" name="method" value="transform" checked> Fast
        <small>trained model, seconds</small></label>
      <label><input type="radio" name="method" value="gatys"> Gatys
        <small>any style, minutes</small></label>
    </div>

    <label class="field" for="style">Style</label>
    <select id="style" name="style"></select>
    <div id="style-upload" hidden>
      <label class="field" for="style-image">Style image</label>
      <input type="file" id="style-image" name="style_image" accept="image/*">
    </div>

    <div id="strength-box">
      <label class="field" for="strength">Strength <span class="hint" id="strength-value">100%</span></label>
      <div class="row"><input type="range" id="strength" name="strength" min="0" max="1" step="0.05" value="1">
      </div>
    </div>

    <label class="check"><input type="checkbox" id="preserve-color" name="preserve_color"> Keep the photo's
      colours</label>

    <button type="submit" id="go">Stylise</button>
    <progress id="progress" max="1" value="0" hidden></progress>
    <div id="status"></div>
    <div id="error" role="alert"></div>
  </form>

  <section class="card stage">
    <figure>
      <figcaption>Photo</figcaption>
      <div class="frame" id="photo-frame"><span>choose a photo</span></div>
    </figure>
    <figure>
      <figcaption>Result <a class="download" id="download" download="jaxstyle.png" hidden>Download PNG</a>
      </figcaption>
      <div class="frame"><img id="result" alt="stylised result" hidden><span id="result-empty">nothing yet</span>
      </div>
    </figure>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const UPLOAD_OWN = "__upload__";
let catalogue = { transform: [], gatys: [], limits: {} };
let photoUrl = null;

function pretty(name) { return name.replace(/_/g, " ").replace(/\\b\\w/g, (c) => c.toUpperCase()); }
function method() { return document.querySelector("input[name=method]:checked").value; }

function showError(text) {
  $("error").textContent = text;
  $("error").style.display = text ? "block" : "none";
}

function fillStyles() {
  const select = $("style"), previous = select.value, gatys = method() === "gatys";
  select.replaceChildren();
  for (const name of catalogue[method()]) select.add(new Option(pretty(name), name));
  if (gatys) select.add(new Option("My own style image\\u2026", UPLOAD_OWN));
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
  $("style-upload").hidden = !(gatys && select.value === UPLOAD_OWN);
  $("strength-box").hidden = gatys;
}

async function loadStyles() {
  try {
    const response = await fetch("/api/styles");
    catalogue = await response.json();
    const l = catalogue.limits;
    $("limits").textContent = `up to ${l.max_upload_bytes / 1e6} MB, ${Math.round(l.max_pixels / 1e6)} megapixels`;
    fillStyles();
  } catch (err) {
    showError("cannot reach the server: " + err);
  }
}

function formData() {
  const data = new FormData();
  data.append("method", method());
  const style = $("style").value;
  if (method() === "gatys" && style === UPLOAD_OWN) {
    data.append("style_image", $("style-image").files[0]);
  } else {
    data.append("style", style);
  }
  if (method() === "transform") data.append("strength", $("strength").value);
  if ($("preserve-color").checked) data.append("preserve_color", "1");
  data.append("photo", $("photo").files[0], "photo");
  return data;
}

function checkForm() {
  const photo = $("photo").files[0], limit = catalogue.limits.max_upload_bytes;
  if (!photo) return "choose a photo first";
  if (limit && photo.size > limit) {
    return `the photo is ${(photo.size / 1e6).toFixed(1)} MB; the limit is ${limit / 1e6} MB`;
  }
  if (method() === "gatys" && $("style").value === UPLOAD_OWN && !$("style-image").files[0]) {
    return "choose a style image, or pick a built-in style";
  }
  return "";
}

async function errorOf(response) {
  try { return (await response.json()).error || response.statusText; } catch (e) { return response.statusText; }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function follow(id) {
  for (;;) {
    const response = await fetch(`/api/jobs/${id}`);
    if (!response.ok) throw new Error(await errorOf(response));
    const job = await response.json();
    $("progress").value = job.progress;
    $("status").textContent = job.message;
    if (job.state === "done") return `/api/jobs/${id}/result.png`;
    if (job.state === "error") throw new Error(job.message);
    await sleep(400);
  }
}

async function stylise(event) {
  event.preventDefault();
  showError("");
  const problem = checkForm();
  if (problem) { showError(problem); return; }
  $("go").disabled = true;
  $("progress").hidden = false;
  $("progress").removeAttribute("value");
  $("status").textContent = "uploading";
  try {
    const response = await fetch("/api/jobs", { method: "POST", body: formData() });
    if (!response.ok) throw new Error(await errorOf(response));
    const url = await follow((await response.json()).id);
    $("result").src = url;
    $("result").hidden = false;
    $("result-empty").hidden = true;
    $("download").href = url;
    $("download").hidden = false;
    $("status").textContent = "done";
  } catch (err) {
    showError(err.message || String(err));
    $("status").textContent = "";
    $("progress").hidden = true;
  } finally {
    $("go").disabled = false;
  }
}

function previewPhoto() {
  const file = $("photo").files[0], frame = $("photo-frame");
  if (photoUrl) URL.revokeObjectURL(photoUrl);
  frame.replaceChildren();
  if (!file) { frame.append("choose a photo"); return; }
  photoUrl = URL.createObjectURL(file);
  const img = new Image();
  img.src = photoUrl;
  img.alt = "your photo";
  img.onerror = () => frame.replaceChildren("the browser cannot show this file");
  frame.append(img);
}

$("form").addEventListener("submit", stylise);
$("photo").addEventListener("change", previewPhoto);
$("style").addEventListener("change", fillStyles);
for (const radio of document.querySelectorAll("input[name=method]")) radio.addEventListener("change", fillStyles);
$("strength").addEventListener("input", () => {
  $("strength-value").textContent = Math.round($("strength").value * 100) + "%";
});
loadStyles();
</script>
</body>
</html>
"""
