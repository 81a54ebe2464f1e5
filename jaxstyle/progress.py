"""The progress protocols of the package: how a long run tells its caller how far it is.

* :class:`Progress`: a callback ``progress(done, metrics)``, called by a run as it goes (``done``
  counted from 1: steps, images or frames so far; ``metrics`` host floats such as ``{"total": loss}``
  or ``{"images_per_s": 12.5}``, ``{}`` when there are none). The Gatys runs, batches of photos and
  videos (:mod:`jaxstyle.run`, :mod:`jaxstyle.video`) report through it; the command line draws it
  as a bar (``jaxstyle.cli.common.step_progress``), the web page as a job's fraction done.
* :class:`ProgressBar`: what the paper's experiments (:mod:`jaxstyle.paper`) need of a bar they drive
  themselves, when the work's total is known only inside them: a settable ``total`` and ``update``
  (a tqdm bar fits).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Progress(Protocol):
    """``progress(done, metrics)``: ``done`` (int, from 1) units of work finished, ``metrics`` host floats."""

    def __call__(self, done: int, metrics: Mapping[str, float], /) -> None: ...


class ProgressBar(Protocol):
    """A progress bar a run drives itself (a tqdm bar fits): a settable ``total``, ``update``, ``refresh``."""

    total: float | None

    def update(self, n: float = 1) -> Any: ...

    def refresh(self) -> Any: ...
