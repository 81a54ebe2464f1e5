"""The local web page (``jaxstyle serve``): the Starlette app in :mod:`jaxstyle.serve.app` (routes), the
limits in :mod:`.limits`, form reading and checks in :mod:`.form`, the dispatch to the methods in
:mod:`.stylist`, the job queue and its worker thread in :mod:`.jobs`; the page itself is ``page.html``
(package data)."""

from typing import Any

from jaxstyle.serve.app import create_app, page_text
from jaxstyle.serve.form import JobRequest, web_methods
from jaxstyle.serve.jobs import Job, QueueFullError, Worker
from jaxstyle.serve.limits import (
    DEFAULT_GATYS_ITERATIONS,
    DEFAULT_GATYS_SIZE,
    DEFAULT_KEEP_RESULTS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_QUEUED,
    DEFAULT_MAX_SIDE,
    DEFAULT_MAX_UPLOAD_BYTES,
    MB,
    Limits,
)
from jaxstyle.serve.stylist import Stylist


def __getattr__(name: str) -> Any:
    # METHODS: the methods the page offers (jaxstyle.serve.form.web_methods), read from the registry.
    if name == "METHODS":
        return web_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_GATYS_ITERATIONS", "DEFAULT_GATYS_SIZE", "DEFAULT_KEEP_RESULTS", "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_QUEUED", "DEFAULT_MAX_SIDE", "DEFAULT_MAX_UPLOAD_BYTES", "MB", "METHODS", "Job", "JobRequest",
    "Limits", "QueueFullError", "Stylist", "Worker", "create_app", "page_text",
]
