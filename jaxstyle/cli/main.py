"""``jaxstyle``: the one console script; ``jaxstyle COMMAND [options]`` runs ``jaxstyle.cli.COMMAND``.

The subcommands are the same programs as the checkout's launchers (``bin/stylize`` is
``jaxstyle stylize``). Dispatch imports only the chosen command, so ``jaxstyle --help`` is instant.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from jaxstyle.cli.common import EXIT_USAGE

#: subcommand -> (module under jaxstyle.cli, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "stylize": ("stylize", "stylise photos, folders or videos (transform nets, Gatys, texture)"),
    "train": ("train", "train a transform net for a style (or distil a --fast one)"),
    "serve": ("serve", "a local web page for stylising photos (127.0.0.1)"),
    "evaluate": ("evaluate", "rerun the paper's Tables 1-2 and Figures 1-5"),
    "port-weights": ("port_weights", "port the VGG19 weights into the cache (else done on first use)"),
    "info": ("info", "the shipped models with their source and licence; versions, devices, caches"),
}


def usage() -> str:
    """The text of ``jaxstyle --help``."""
    width = max(map(len, COMMANDS))
    lines = [
        "usage: jaxstyle COMMAND [options]",
        "",
        "Artistic style transfer in JAX: Gatys back-propagation, texture synthesis, transform nets.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()),
        "",
        "Run 'jaxstyle COMMAND --help' for a command's options.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; returns its exit code (2 for an unknown or missing command)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args and args[0] == "--version":
        from jaxstyle import __version__

        print(f"jaxstyle {__version__}")
        return 0
    if not args or args[0] not in COMMANDS:
        what = f"unknown command {args[0]!r}" if args else "no command given"
        print(f"jaxstyle: error: {what}; choose one of {', '.join(COMMANDS)} (see jaxstyle --help)",
              file=sys.stderr)
        return EXIT_USAGE
    module = importlib.import_module(f"jaxstyle.cli.{COMMANDS[args[0]][0]}")
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
