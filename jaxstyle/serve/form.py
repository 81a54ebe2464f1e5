"""Reading and checking a job form (``POST /api/jobs``): multipart parsing with byte caps, every field
checked (:func:`parse_job`) before anything is queued. Client errors are ``HTTPException`` 4xx.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import Request

from jaxstyle import run
from jaxstyle.errors import JaxstyleError, OptionError, one_line
from jaxstyle.io import images
from jaxstyle.methods import registry
from jaxstyle.methods.arbitrary import stylizer
from jaxstyle.nn import vgg
from jaxstyle.options import check_strength
from jaxstyle.serve.limits import MB, Limits


def web_methods() -> tuple[str, ...]:
    """The methods the page offers: the registered ones with ``web`` (:mod:`jaxstyle.methods.registry`)."""
    return registry.names(web=True)


def __getattr__(name: str) -> Any:
    # METHODS: the methods the page offers (web_methods), read from the registry when asked for.
    if name == "METHODS":
        return web_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Form fields the page sends: text fields (capped at ``_MAX_TEXT_BYTES``) and image files.
TEXT_FIELDS = frozenset({"method", "style", "strength", "preserve_color", "model"})
FILE_FIELDS = frozenset({"photo", "style_image"})
_MAX_TEXT_BYTES = 256


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """A validated job: ``photo`` and ``style_image`` are decoded float32[H,W,3] arrays."""

    method: str
    style: str | None  # a shipped model / built-in style name; None: ``style_image`` is the style
    strength: float
    preserve_color: bool
    photo: np.ndarray
    style_image: np.ndarray | None = None
    model: str = stylizer.DEFAULT_MODEL  # a method with models only (arbitrary: one of stylizer.model_names())


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


def style_names(method: str) -> list[str]:
    """The style names ``method`` takes (its registered ``style_names``): shipped nets for transform,
    built-in paintings otherwise."""
    return registry.get(method).names_of_styles()


def _those(names: tuple[str, ...], has: str) -> str:
    """The ``names`` of methods whose registered ``has`` is set, joined by "and"."""
    return " and ".join(name for name in names if getattr(registry.get(name), has))


async def parse_job(form: dict[str, bytes], limits: Limits, decoders: anyio.CapacityLimiter,
                    unavailable: Mapping[str, str] | None = None) -> JobRequest:
    """Check every field of a job form (names, ranges, images) before anything is queued.

    Without a ``method``, :func:`jaxstyle.run.default_method` picks it, as on the command line: ``arbitrary``
    (MicroAST) for any painting, built-in or uploaded; ``transform`` only for a model file.
    The methods and what each takes (style images, strength, models) are the registry's
    (:mod:`jaxstyle.methods.registry`). ``unavailable``: method or model -> why it cannot run here (503).
    Images are decoded in a thread, at most ``decoders`` at a time (each may briefly take a few hundred
    MB); the photo is kept at the size the method works at (``max_side`` for one pass; ``gatys_size`` for
    back-propagation), a style image at the method's ``style_side`` if it has one (arbitrary: the size
    its statistics are taken at, :data:`stylizer.DEFAULT_STYLE_SIZE`).
    """
    has_style_image = bool(form.get("style_image"))
    style_name = _text(form, "style", "")
    method = _text(form, "method", run.default_method([style_name] if style_name else [],
                                                      style_image=has_style_image))
    offered = web_methods()
    if method not in offered:
        raise HTTPException(400, f"unknown method {method[:40]!r}; use one of {', '.join(offered)}")
    if unavailable and method in unavailable:
        raise HTTPException(503, f"method {method} is not available on this server: {unavailable[method]}")
    chosen = registry.get(method)
    allowed = chosen.names_of_styles()
    if has_style_image and not chosen.style_images:
        raise HTTPException(400, f"a style image works with methods {_those(offered, 'style_images')} ({method} "
                            "uses trained models)")
    if not has_style_image and style_name not in allowed:
        raise HTTPException(400, f"unknown style {style_name[:40]!r} for {method}; choose one of {', '.join(allowed)}")
    style: str | None = None if has_style_image else style_name
    strength = _strength(_text(form, "strength", "1"))
    if strength != 1.0 and not chosen.strength:
        raise HTTPException(400, f"strength works with methods {_those(offered, 'strength')}")
    model = _text(form, "model", stylizer.DEFAULT_MODEL)
    if "model" in form and chosen.models is None:
        raise HTTPException(400, f"model works with method {_those(offered, 'models')}")
    if chosen.models is not None:
        models = chosen.models()
        if model not in models:
            raise HTTPException(400, f"unknown model {model[:40]!r}; use one of {', '.join(models)}")
        if unavailable and model in unavailable:
            raise HTTPException(503, f"model {model} is not available on this server: {unavailable[model]}")
    preserve_color = _text(form, "preserve_color", "").lower() in ("1", "true", "on", "yes")
    if "photo" not in form:
        raise HTTPException(400, "no photo: send the image in the form field 'photo'")
    side = limits.max_side if chosen.one_pass else limits.gatys_size
    photo = await anyio.to_thread.run_sync(_decode, form["photo"], "photo", limits, side, limiter=decoders)
    style_image = None
    if has_style_image:
        style_side = chosen.style_side or limits.max_side
        style_image = await anyio.to_thread.run_sync(_decode, form["style_image"], "style image", limits,
                                                     style_side, limiter=decoders)
    return JobRequest(method, style, strength, preserve_color, photo, style_image, model)
