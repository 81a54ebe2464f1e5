"""User-facing option fields: one declaration gives a field its default, its help and its kind.

An options dataclass (:class:`jaxstyle.methods.gatys.presets.GatysOptions`, :class:`jaxstyle.train.TrainConfig`)
declares each field with :func:`option`; the command line is generated from that metadata
(:mod:`jaxstyle.cli.options`), so the defaults and help live in one place. Validation errors
name the fields (``iterations must be ...``) and list them in ``OptionError.fields``; only the
command line turns them into flags.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from jaxstyle.errors import OptionError

KINDS = ("int", "positive_int", "float", "str", "floats", "ints", "flag")


def option(default: Any, help: str, *, kind: str = "str", group: str = "", choices: tuple[Any, ...] | None = None,
           metavar: str | None = None, show_default: bool = True, roles: tuple[str, ...] = ()) -> Any:
    """A dataclass field with ``default`` and its command-line description in ``metadata``.

    kind: how the command line parses it (``positive_int``, ``floats`` for a comma list, ``flag`` for a
    boolean switch, ...); group: the help section; show_default: append "(default: ...)" to the help;
    roles: where else the dataclass uses the field (e.g. :func:`jaxstyle.train_config.fields_with`).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown option kind {kind!r}")
    meta: dict[str, Any] = {"help": help, "kind": kind, "group": group, "show_default": show_default}
    if choices is not None:
        meta["choices"] = choices
    if metavar is not None:
        meta["metavar"] = metavar
    if roles:
        meta["roles"] = roles
    return dataclasses.field(default=default, metadata=meta)


def check_strength(value: float) -> float:
    """``value`` if it is a blend strength, a finite float in [0, 1] (0: the photo, 1: the full style), else
    OptionError naming the ``strength`` field. The one check every method, the command line and the web
    page use."""
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise OptionError(f"strength must be between 0 and 1, got {value}", fields=("strength",))
    return value
