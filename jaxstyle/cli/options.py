"""Options dataclasses as the one source of truth for the command line, and field names <-> flags.

A core options dataclass (:class:`jaxstyle.methods.gatys.presets.GatysOptions`, :class:`jaxstyle.train.TrainConfig`)
describes each user-facing field in its metadata (:func:`jaxstyle.options.option`): help, kind,
group. :func:`add_options` turns those fields into argparse options (name, default, help),
:func:`from_args` turns the parsed namespace back into the dataclass. The one place a field name
becomes a flag is :func:`jaxstyle.cli.common.flag` (core errors name fields;
:func:`jaxstyle.cli.common.cli_entry` shows them as flags).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from jaxstyle.cli.common import flag, float_list, int_list, positive_int

T = TypeVar("T")

#: argparse ``type`` of each field kind (``metadata["kind"]``).
KINDS: dict[str, Callable[[str], Any]] = {
    "int": int, "positive_int": positive_int, "float": float, "str": str, "floats": float_list, "ints": int_list,
}
def add_options(groups: Callable[[str], Any], cls: type, *, skip: tuple[str, ...] = (),
                overrides: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Add an argparse option for every field of dataclass ``cls`` with ``help`` in its metadata.

    groups(name) -> the parser or argument group for ``metadata["group"]``. The default is the
    field's (shown in the help as "(default: ...)"); ``overrides[field]`` replaces metadata keys
    (``help``, ``default``, ``group``...) where a command differs. Booleans become ``store_true``
    flags; ``choices`` and ``metavar`` come from the metadata too.
    """
    overrides = overrides or {}
    for field in dataclasses.fields(cls):
        meta = {**field.metadata, **overrides.get(field.name, {})}
        if field.name in skip or "help" not in meta:
            continue
        default = meta.get("default", field.default)
        kwargs: dict[str, Any] = {"dest": field.name, "default": default}
        help_text = meta["help"]
        if meta.get("kind") == "flag":
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = KINDS[meta.get("kind", "str")]
            if "choices" in meta:
                kwargs["choices"] = meta["choices"]
            if "metavar" in meta:
                kwargs["metavar"] = meta["metavar"]
            if meta.get("show_default", True) and default is not None:
                help_text += " (default: %(default)s)"
        groups(meta.get("group", "")).add_argument(flag(field.name), help=help_text, **kwargs)


def unset_for_preset(cls: type, name: str, preset: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """:func:`add_options` overrides for the fields that preset ``name`` sets (``preset``: {field: value}):
    unset (``None``) unless given, so that the preset decides them; their help shows both defaults
    ("default: 100; paper: 400", from the field's default and ``preset``)."""

    def shown(value: Any) -> str:
        return f"{round(value, 3):g}" if isinstance(value, float) else str(value)

    overrides: dict[str, dict[str, Any]] = {}
    for field in dataclasses.fields(cls):
        if field.name not in preset or "help" not in field.metadata:
            continue
        help_text = field.metadata["help"]
        if field.default is not None:
            differs = "" if preset[field.name] == field.default else f"; {name}: {shown(preset[field.name])}"
            help_text += f" (default: {shown(field.default)}{differs})"
        overrides[field.name] = {"default": None, "help": help_text, "show_default": False}
    return overrides


def given(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options that are fields of dataclass ``cls``, less the unset ones (``None``)."""
    names = {field.name for field in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def from_args(cls: type[T], args: argparse.Namespace, **values: Any) -> T:
    """``cls`` from the parsed options that are its fields (``None``: the field's default), then ``values``."""
    return cls(**{**given(cls, args), **values})
