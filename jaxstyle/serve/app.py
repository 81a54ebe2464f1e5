"""A local web page for jaxstyle: upload a photo, pick a style, download the stylised image.

:func:`create_app` returns a Starlette app (run it with ``bin/serve``, or any ASGI server).

* ``GET /``                        the page: ``page.html`` beside this module (package data; one
                                   self-contained file, inline CSS and JS, no outside assets)
* ``GET /api/styles``              shipped transform models, built-in styles, what each method takes
                                   (``methods``: name -> :func:`method_info`), which methods are
                                   available (``unavailable``: method -> why), the limits
* ``POST /api/jobs``               multipart form -> ``{"id": ...}`` (202); everything is checked first
* ``GET /api/jobs/{id}``           ``{"state": "queued|running|done|error", "progress": 0..1, "message": ...}``,
                                   plus ``"seconds"`` (the job's run time, measured here) once finished
* ``GET /api/jobs/{id}/result.png`` the result once ``done``

Methods: the registered ones the page offers (:mod:`jaxstyle.methods.registry`, ``web``; the page's
method buttons are generated from it): ``transform`` (a shipped net), ``arbitrary`` (any painting in one
pass, :mod:`jaxstyle.methods.arbitrary.stylizer`; its ``model`` field picks MicroAST, the default, or
WCT/AdaIN) and ``gatys`` (back-propagation, minutes). A form without ``method`` gets the command line's default
(:func:`jaxstyle.run.default_method`): ``arbitrary`` (MicroAST) for any painting.
The arbitrary models' weights are loaded once, when the app is created; a model whose weights cannot be
loaded (a missing or corrupt file) gets a one-line 503 and everything else works.

Uploads stay in memory: the body is read with a byte cap (after checking ``Content-Length``), the
client's filename is never used, and styles are picked from fixed lists, never opened by a client-given
path. Jobs run one at a time in a single background thread (they are CPU bound); the last
``keep_results`` finished jobs are kept. Every error is JSON ``{"error": "one line"}``: 4xx for anything
the client sent, 500 only for a bug.

The parts: :mod:`.limits` (what is accepted), :mod:`.form` (reading and checking a job form),
:mod:`.stylist` (a job -> the method that runs it), :mod:`.jobs` (the queue and its worker thread);
this module holds the routes.
"""

from __future__ import annotations

import contextlib
import functools
import html
import importlib.resources
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from jaxstyle.errors import JaxstyleError, one_line
from jaxstyle.methods import registry
from jaxstyle.methods.arbitrary import stylizer
from jaxstyle.serve.form import JobRequest, parse_job, read_form, style_names, web_methods
from jaxstyle.serve.jobs import Job, QueueFullError, Worker
from jaxstyle.serve.limits import MB, Limits
from jaxstyle.serve.stylist import Stylist, load_app_weights

log = logging.getLogger("jaxstyle.serve")


def __getattr__(name: str) -> Any:
    # METHODS: the methods the page offers (form.web_methods), read from the registry when asked for.
    if name == "METHODS":
        return web_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# METHODS comes from __getattr__ (the registry), not an assignment.
__all__ = ["MB", "METHODS", "Job", "JobRequest", "Limits", "QueueFullError", "Stylist", "Worker",  # noqa: F822
           "create_app", "load_app_weights", "page_text"]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def method_buttons() -> str:
    """The page's method buttons: one radio button per method it offers (:func:`web_methods`), its title and
    summary from the registry; the first is checked."""
    buttons = []
    for index, name in enumerate(web_methods()):
        method = registry.get(name)
        checked = " checked" if index == 0 else ""
        buttons.append(f'      <label><input type="radio" name="method" value="{html.escape(name)}"{checked}> '
                       f'{html.escape(method.title)}\n        <small>{html.escape(method.summary)}</small></label>')
    return "\n".join(buttons)


def method_info(name: str) -> dict[str, Any]:
    """What the page needs to know of method ``name`` (the registry's): its button's ``label``, whether it
    takes ``strength``, paintings (``style_images``) and a model (``models``)."""
    method = registry.get(name)
    return {"label": method.title, "strength": method.strength, "style_images": method.style_images,
            "models": method.models is not None}


def model_options() -> str:
    """The page's model menu: one option per registered arbitrary model
    (:func:`jaxstyle.methods.arbitrary.stylizer.model_names`), its registered label."""
    return "\n".join(f'        <option value="{html.escape(name)}">'
                     f'{html.escape(stylizer.get_model(name).label or name)}</option>'
                     for name in stylizer.model_names())


def page_text() -> str:
    """The web page, ``jaxstyle/serve/page.html`` (package data, read with importlib.resources), with its
    method buttons (:func:`method_buttons`) and model menu (:func:`model_options`) in place of the
    ``<!-- methods -->`` and ``<!-- models -->`` lines."""
    page = importlib.resources.files("jaxstyle.serve").joinpath("page.html").read_text(encoding="utf-8")
    return page.replace("      <!-- methods -->", method_buttons()).replace("        <!-- models -->",
                                                                            model_options())


def create_app(
    *,
    decoders: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    microast_model: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    **limit_values: int,
) -> Starlette:
    """The web app. ``limit_values``: any :class:`Limits` field by name (``max_upload_bytes``: largest
    request body; ``max_pixels``: largest image, its header checked before decoding; ``gatys_size`` /
    ``gatys_iterations``: every gatys job's long side and steps; ``max_side``: transform and arbitrary
    photos are scaled down to this long side; ``keep_results``: finished jobs kept in memory;
    ``max_queued``: waiting jobs before new ones get 429), the rest at the field's default.
    ``decoders`` / ``microast_model``: the arbitrary models' weights (see :func:`load_app_weights`), loaded
    here, once. A model whose weights cannot be loaded is unavailable (``app.state.unavailable`` says why);
    the rest works.

    Raises:
        OptionError: a limit below 1, or gatys settings that would be refused.
        TypeError: a keyword that is not a :class:`Limits` field.
    """
    limits = Limits(**limit_values)
    limits.validate()
    weights, unavailable = load_app_weights(decoders, microast_model)
    for model, why in unavailable.items():
        log.info("%s is not available: %s", model, why)
    worker, stylist = Worker(limits.keep_results, limits.max_queued), Stylist(limits, weights)
    image_decoders = anyio.CapacityLimiter(2)

    page_html = page_text()

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(page_html, headers={"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"})

    async def style_list(request: Request) -> JSONResponse:
        return JSONResponse({
            **{method: style_names(method) for method in web_methods()},
            "methods": {name: method_info(name) for name in web_methods()},
            "unavailable": unavailable,
            "models": list(stylizer.model_names()),
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
