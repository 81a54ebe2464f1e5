"""What the web page accepts and how hard it works: :class:`Limits`, declared once.

Each limit's default and its ``bin/serve`` help live in its field (:func:`jaxstyle.options.option`);
``bin/serve`` generates its flags from them, :func:`jaxstyle.serve.app.create_app` takes them as keywords.
"""

from __future__ import annotations

import dataclasses

from jaxstyle.errors import OptionError
from jaxstyle.methods.gatys import presets
from jaxstyle.nn import vgg
from jaxstyle.options import option

MB = 1_000_000


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the server accepts and how hard it works (see ``bin/serve --help``). Every value is an int >= 1
    (``gatys_iterations`` may be None: the Gatys defaults' budget)."""

    #: The largest request body in bytes (``bin/serve --max-upload-mb`` sets it in MB).
    max_upload_bytes: int = 20 * MB
    max_pixels: int = option(25_000_000, "largest image in pixels, checked from its header before decoding",
                             kind="positive_int")
    gatys_size: int = option(384, "gatys: long side of the result in pixels", kind="positive_int")
    gatys_iterations: int | None = option(
        None, "gatys: steps at the coarsest scale, about 1 s each at 384 px on a laptop CPU (default: the Gatys "
        "defaults, 30 + 70 over two scales, fewer once converged)", kind="positive_int")
    max_side: int = option(1024, "transform and arbitrary: larger photos are scaled down to this long side; "
                           "arbitrary at 1024x768 peaks near 3 GB of memory", kind="positive_int")
    #: Finished jobs kept in memory (older results are dropped).
    keep_results: int = 16
    #: Waiting jobs before new ones get 429.
    max_queued: int = 8

    def validate(self) -> None:
        """Raise OptionError for a non-positive limit or gatys settings that :func:`jaxstyle.gatys` refuses."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and value < 1:
                raise OptionError(f"{field.name.replace('_', ' ')} must be at least 1, got {value}")
        for name in ("max_side", "gatys_size"):
            if getattr(self, name) < vgg.MIN_SIDE:
                raise OptionError(f"{name.replace('_', ' ')} must be at least {vgg.MIN_SIDE} px, "
                                  f"got {getattr(self, name)}")
        self.gatys_options().validate()

    def gatys_options(self, preserve_color: bool = False) -> presets.GatysOptions:
        """The :class:`presets.GatysOptions` every gatys job runs with."""
        return presets.GatysOptions(size=self.gatys_size, iterations=self.gatys_iterations,
                                     max_pixels=self.max_pixels, preserve_color=preserve_color)


#: The defaults, by their older names.
DEFAULT_MAX_UPLOAD_BYTES = Limits.max_upload_bytes
DEFAULT_MAX_PIXELS = Limits.max_pixels
DEFAULT_GATYS_SIZE = Limits.gatys_size
DEFAULT_GATYS_ITERATIONS = Limits.gatys_iterations
DEFAULT_MAX_SIDE = Limits.max_side
DEFAULT_KEEP_RESULTS = Limits.keep_results
DEFAULT_MAX_QUEUED = Limits.max_queued
