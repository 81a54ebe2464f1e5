"""The local web page (``jaxstyle serve``): the Starlette app in :mod:`jaxstyle.serve.app`, the page
itself in ``page.html`` (package data)."""

from jaxstyle.serve.app import (
    DEFAULT_GATYS_ITERATIONS,
    DEFAULT_GATYS_SIZE,
    DEFAULT_KEEP_RESULTS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_QUEUED,
    DEFAULT_MAX_SIDE,
    DEFAULT_MAX_UPLOAD_BYTES,
    MB,
    METHODS,
    Job,
    JobRequest,
    Limits,
    QueueFullError,
    Stylist,
    Worker,
    create_app,
    page_text,
)

__all__ = [
    "DEFAULT_GATYS_ITERATIONS", "DEFAULT_GATYS_SIZE", "DEFAULT_KEEP_RESULTS", "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_QUEUED", "DEFAULT_MAX_SIDE", "DEFAULT_MAX_UPLOAD_BYTES", "MB", "METHODS", "Job", "JobRequest",
    "Limits", "QueueFullError", "Stylist", "Worker", "create_app", "page_text",
]
