"""The ``transform`` method's user options (:class:`TransformOptions`): the command line's transform flags
are generated from its fields (:func:`jaxstyle.cli.options.add_options`)."""

from __future__ import annotations

import dataclasses

from jaxstyle.errors import OptionError
from jaxstyle.options import option

# Measured by bench/shipped_models.py --fast and bench/inference_vs_peers.py (docs/performance.md, "--fast").
# Help text: ``%%`` is argparse's escaped percent sign.
FAST_NOTE = ("about 2.6x faster on a CPU (400x300: 99 vs 263 ms on 2 cores), 0.85 MB instead of 3.4; the output "
             "is 24-28 dB PSNR from the full model's, with the same layout and a little softer strokes (74-90%% of "
             "its style-loss reduction)")


@dataclasses.dataclass(frozen=True)
class TransformOptions:
    """Options of the ``transform`` method (:func:`jaxstyle.methods.transform.method.build`, its settings by
    field name). ``fast``: the shipped styles' half-width nets instead of the full ones.

    Only the stylizer's settings live here: ``--sheet`` (every model on one photo, written as a contact
    sheet) is a way the command line writes its outputs, not a setting of the stylizer, so it stays a
    flag of ``bin/stylize``.
    """

    fast: bool = option(
        False, "transform: use the shipped style's half-width model (width 16, distilled from the full one with "
        f"bin/train --teacher): {FAST_NOTE}", kind="flag", group="transform")

    def validate(self) -> None:
        """OptionError naming the field if an option has the wrong type (``fast`` is a bool)."""
        if not isinstance(self.fast, bool):
            raise OptionError(f"fast must be true or false, got {self.fast!r}", fields=("fast",))
