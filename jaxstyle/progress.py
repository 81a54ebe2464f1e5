"""The progress protocol of the package: how a long run tells its caller how far it is.

* :class:`Progress`: a callback ``progress(done, metrics)``, called by a run as it goes (``done``
  counted from 1: steps, images or frames so far; ``metrics`` host floats such as ``{"total": loss}``
  or ``{"images_per_s": 12.5}``, ``{}`` when there are none). The Gatys runs, batches of photos and
  videos (:mod:`jaxstyle.run`, :mod:`jaxstyle.video`) report through it; the command line draws it
  as a bar (``jaxstyle.cli.common.step_progress``), the web page as a job's fraction done.
* The paper's experiments (:mod:`jaxstyle.paper`) know a part's total only inside it: they send it along,
  ``progress(done, {"steps": total})``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Progress(Protocol):
    """``progress(done, metrics)``: ``done`` (int, from 1) units of work finished, ``metrics`` host floats."""

    def __call__(self, done: int, metrics: Mapping[str, float], /) -> None: ...

