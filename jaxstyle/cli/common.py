"""What every command shares: error mapping to exit code 2, progress bars."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NoReturn, Protocol, TypeVar

from jaxstyle.errors import JaxstyleError, OptionError
from jaxstyle.progress import Progress

T = TypeVar("T")

EXIT_USAGE = 2


class Main(Protocol):
    """A command's ``main(argv=None) -> exit code``."""

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def cli_entry(main: Callable[[Sequence[str] | None], int]) -> Main:
    """Wrap a command's ``main`` so user errors become one line on stderr and exit 2.

    Ctrl-C exits 130 with a short message instead of a traceback.
    """

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        module = main.__module__ if main.__module__ != "__main__" else Path(sys.argv[0]).stem
        prog = module.rsplit(".", 1)[-1].replace("_", "-")
        try:
            return main(argv)
        except JaxstyleError as err:
            message = as_flags(str(err).strip().splitlines()[0], err.fields) if str(err).strip() \
                else type(err).__name__
            print(f"{prog}: error: {message}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130

    return wrapper


#: Fields whose flag is not ``--`` + the name with dashes (none yet: the rule holds everywhere).
FLAGS: dict[str, str] = {}


def flag(field: str) -> str:
    """The one mapping of an options field to its command-line flag: ``style_size`` -> ``--style-size``."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def as_flags(message: str, fields: Sequence[str]) -> str:
    """A core message that names option ``fields`` (``size must be positive``), with each of them
    shown as its flag (``--size must be positive``)."""
    for field in fields:
        # whole words only: not inside another flag (--image-size), a path or a file name
        message = re.sub(rf"(?<![\w/.-]){re.escape(field)}(?![\w/-])", flag(field), message)
    return message


def progress(iterable: Iterable[T] | None, total: int | None = None, desc: str = "", unit: str = "it",
             disable: bool | None = None):
    """A tqdm progress bar on stderr; quiet when stderr is not a terminal and
    JAXSTYLE_PROGRESS is unset, so logs and tests stay readable."""
    from tqdm.auto import tqdm

    if disable is None:
        disable = not (sys.stderr.isatty() or os.environ.get("JAXSTYLE_PROGRESS") == "1")
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True,
                file=sys.stderr)


def progress_bar(total: int | None, desc: str = "", unit: str = "it", disable: bool | None = None):
    """A manual tqdm bar (call ``.update()``/``.set_postfix()``); same visibility rule as ``progress``."""
    return progress(None, total=total, desc=desc, unit=unit, disable=disable)


@contextlib.contextmanager
def step_progress(total: int, desc: str = "", unit: str = "step", start: int = 0
                  ) -> Iterator[Progress]:
    """The progress callback core loops take (:class:`jaxstyle.progress.Progress`), ``progress(step, metrics)``
    (step counted from 1, absolute),
    drawn as a :func:`progress_bar` with the loss (``metrics["loss"]`` or ``["total"]``) as its postfix."""
    bar = progress_bar(total, desc=desc, unit=unit)
    bar.update(start)

    def update(step: int, metrics: Mapping[str, float]) -> None:
        bar.update(step - bar.n)
        loss = metrics.get("loss", metrics.get("total"))
        if loss is not None:
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    try:
        yield update
    finally:
        bar.close()


def positive_int(text: str) -> int:
    """argparse type: an integer > 0 (the message names the bad value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def check_output_folder(path: Path, option: str) -> None:
    """Before any work: the folder that ``path`` (the value of ``option``) will be written into must
    exist and be writable, so a long run never fails at its very end."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OptionError(f"{option} {path}: output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OptionError(f"{option} {path}: output folder {parent} is not writable")


def float_list(text: str) -> list[float]:
    """argparse type: comma-separated floats, e.g. ``0.2,0.2,0.2,0.2,0.2``."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def int_list(text: str) -> list[int]:
    """argparse type: comma-separated positive integers, e.g. ``300,150,75``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive whole numbers, got {text!r}")
    return values


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``prog: error: message (see --help)``, exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
