"""One exception family for everything a user can get wrong.

The CLI maps any :class:`JaxstyleError` to a one-line message on stderr and exit
code 2. Core modules raise these and never call ``sys.exit``.
"""

from __future__ import annotations


def one_line(text: object) -> str:
    """``text`` (an exception or any object) as one line: whitespace runs become one space; an
    exception with no message gives its class name."""
    line = " ".join(str(text).split())
    return line or (type(text).__name__ if isinstance(text, BaseException) else "")


class JaxstyleError(Exception):
    """Base class: a problem the user can fix (bad input, missing file, bad option).

    ``fields``: the option fields the message names (by field name, e.g. ``style_size``); the
    command line shows them as its flags (``--style-size``), the Python API as they are.
    """

    def __init__(self, message: str = "", *, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = tuple(fields)


class ImageError(JaxstyleError):
    """An image file that is missing, unreadable, corrupt, too small or too large."""


class WeightsError(JaxstyleError):
    """Model weights that are missing, corrupt, unsafe or of the wrong architecture."""


class StyleError(JaxstyleError):
    """A style name or style file that cannot be resolved."""


class OptionError(JaxstyleError):
    """An option value that makes no sense (non-positive size, unknown optimiser...)."""


class NonFiniteLossError(JaxstyleError):
    """The loss became NaN or Inf; the run stops instead of writing garbage."""


class VideoError(JaxstyleError):
    """A video file that is missing, unreadable, corrupt, has no video stream, or cannot be written."""
