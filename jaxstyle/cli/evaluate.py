"""``bin/evaluate``: rerun the paper's quantitative section (Tables 1-2, Figures 1-5)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from jaxstyle import paper
from jaxstyle.cli.common import ArgumentParser, cli_entry, positive_int, progress_bar
from jaxstyle.errors import OptionError

_NET_LINES = "\n".join(f"             {net.label:<31} trained {net.trained}" for net in paper.NETS)

DESCRIPTION = f"""\
Reproduce the paper's results section on this machine and write it to --out.

  Table 1  L_content(g, c) and L_style(g, s) (the paper's definitions, our VGG19, alpha=1,
           beta=1e3, avg pooling) of: the input photo itself (g = c, a reference row),
           back-propagation (Gatys et al., sign optimizer) and the transform nets (inputs below):
{_NET_LINES}
           for every content image and their mean.
           Content resized to --size (long side); the style to the same pixel count.
  Table 2  runtime at 400x300 (--table2-size) of back-prop (--table2-iterations, extrapolated to
           {paper.PAPER_ITERATIONS} if fewer) and of one forward pass of each transform net,
           compilation (cold jit caches) apart from the steady state; the first
           content photo, resized to exactly that size. Runs first.
  Figures  figure1.png  one photo in {', '.join(paper.FIGURE1_STYLES)} by back-prop
           figure2.png  texture synthesis: the style and its texture
           figure3.png.. photo | the {len(paper.NETS)} transform nets, in the order above | back-prop,
                         for the first {paper.TRANSFORM_FIGURES} content images

Writes table1.md, table2.md, results.json (every number and the settings) and the figures,
each atomically; results.json and the tables are updated as each part finishes.
Back-prop is slow on a CPU (about 1 s per iteration at 400x300): shrink --size, --limit,
--iterations, --table2-iterations and --figure-iterations, or --skip-figures.
"""

EPILOG = """\
examples:
  bin/evaluate                                   # the full run: 400 iterations, 256 px, all photos
  bin/evaluate --limit 4 --iterations 200 --table2-iterations 50 --out results
  bin/evaluate --content my_photos/ --style wave --model wave.msgpack --warmup-model wave_warmup.msgpack \\
               --teacher-model wave_teacher.msgpack
  bin/evaluate --size 128 --iterations 50 --skip-figures --out /tmp/quick
"""



def portable(path: str | Path) -> str:
    """A path as results.json records it, without the machine's folders: relative to the working folder
    when inside it, else its last two parts (``/data/photos/content`` -> ``photos/content``)."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(Path(*p.parts[-2:]))

def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="evaluate", description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    i = p.add_argument_group("inputs")
    i.add_argument("--content", type=Path, default=None, metavar="DIR",
                   help="folder of content photos (default: $JAXSTYLE_DATA/content, else ./content; bin/evaluate "
                   f"sets $JAXSTYLE_DATA to the data beside the checkout: {paper.default_content_dir()})")
    i.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N photos (sorted by name)")
    i.add_argument("--style", default=paper.DEFAULT_STYLE,
                   help="style image: a built-in name or an image file (default: %(default)s)")
    for net in paper.NETS:
        i.add_argument(net.option, dest=net.key, default=str(paper.DEFAULT_MODELS[net.key]), metavar="MODEL",
                       help=f"the '{net.label}' column: a transform net trained {net.trained}, a .msgpack file "
                       f"or a shipped model name (default: the shipped {net.default})")
    w = p.add_argument_group("work (shrink these on a CPU)")
    w.add_argument("--size", type=positive_int, default=256,
                   help="long side of the content images in Table 1 and the figures, px (default: %(default)s)")
    w.add_argument("--iterations", type=positive_int, default=paper.PAPER_ITERATIONS,
                   help="back-prop iterations for Table 1 (default: %(default)s, as in the paper)")
    w.add_argument("--table2-iterations", type=positive_int, default=None, metavar="N",
                   help="back-prop iterations actually run for Table 2, at least 2 (default: --iterations); "
                   f"fewer than {paper.PAPER_ITERATIONS} adds a row extrapolated to {paper.PAPER_ITERATIONS}")
    w.add_argument("--figure-iterations", type=positive_int, default=None, metavar="N",
                   help="back-prop / texture iterations for the figures (default: --iterations; equal "
                   "settings reuse Table 1's back-prop images)")
    w.add_argument("--table2-size", type=_size_wh, default=paper.TABLE2_SHAPE, metavar="WxH",
                   help="Table 2's image size, width x height (default: 400x300, the paper's)")
    w.add_argument("--repeats", type=positive_int, default=5,
                   help="Table 2: timed calls of each transform net after the first (default: %(default)s)")
    w.add_argument("--skip-figures", action="store_true", help="tables only")
    w.add_argument("--only", type=_parts, default=None, metavar="PARTS",
                   help="run only these parts (comma list of table1, table2, figures); the other parts "
                        "of an existing results.json in --out are kept, e.g. --only table2 to re-time "
                        "on a quiet machine")
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, default=Path("results"), metavar="DIR",
                   help="output folder, created if missing (default: %(default)s)")
    return p


def _size_wh(text: str) -> tuple[int, int]:
    """argparse type: ``WxH`` (e.g. ``400x300``) -> (height, width)."""
    parts = text.lower().split("x")
    try:
        w, h = (int(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 400x300, got {text!r}") from None
    from jaxstyle.nn.vgg import MIN_SIDE

    if min(w, h) < MIN_SIDE:
        raise argparse.ArgumentTypeError(f"sides must be at least {MIN_SIDE} px, got {text}")
    return h, w


def _prepare_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OptionError(f"--out {out}: cannot create the output folder ({err.strerror or err})") from None
    if not out.is_dir():
        raise OptionError(f"--out {out}: not a folder")
    if not os.access(out, os.W_OK | os.X_OK):
        raise OptionError(f"--out {out}: the output folder is not writable")


PARTS = ("table1", "table2", "figures")


def _parts(text: str) -> frozenset[str]:
    parts = frozenset(p.strip() for p in text.split(",") if p.strip())
    unknown = sorted(parts - set(PARTS))
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(unknown) or '(none)'}; use {', '.join(PARTS)}")
    return parts


def _previous_results(out: Path) -> dict:
    """results.json from an earlier run in ``out`` (empty when there is none or it is unreadable)."""
    try:
        previous = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return {}
    return previous if isinstance(previous, dict) else {}


def _log(message: str) -> None:
    print(message, flush=True)


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from jaxstyle.io import images, styles
    from jaxstyle.vgg_weights import load_vgg_params

    parts = args.only or frozenset(PARTS)
    if args.skip_figures:
        parts = parts - {"figures"}
    table2_iterations = args.table2_iterations or args.iterations
    figure_iterations = args.figure_iterations or args.iterations
    if table2_iterations < 2:
        raise OptionError("--table2-iterations must be at least 2 (the first iteration is compilation)")

    # Every input is checked before any slow work.
    content_dir = args.content if args.content is not None else paper.default_content_dir()
    paths = paper.list_content(content_dir, args.limit)
    raw = {p.name: images.load_image(p) for p in paths}
    contents = [(name, paper.working_content(img, args.size, name)) for name, img in raw.items()]
    style_path = styles.resolve_style(args.style)
    style = images.load_image(style_path)
    nets = {net.key: paper.load_model(getattr(args, net.key)) for net in paper.NETS}
    figure_styles = {} if "figures" not in parts else {name: styles.load_style(name) for name in paper.FIGURE1_STYLES}
    _prepare_out(args.out)
    vgg_params = load_vgg_params()

    def model_info(m: paper.Model) -> dict:
        return {"name": portable(m.name), "path": portable(m.path),
                **{k: m.metadata.get(k) for k in ("warmup_steps", "teacher_steps", "teacher", "phases", "steps",
                                                  "style")}}

    results: dict = {
        "date": paper.now_iso(),
        "machine": paper.machine_info(),
        "command": ["bin/evaluate", *(sys.argv[1:] if argv is None else argv)],
        "settings": {
            "content_dir": portable(content_dir), "images": [p.name for p in paths],
            "style": args.style, "style_path": portable(style_path), "size": args.size,
            "iterations": args.iterations, "table2_iterations": table2_iterations,
            "table2_shape": list(args.table2_size), "figure_iterations": figure_iterations,
            "repeats": args.repeats, "skip_figures": args.skip_figures, "out": portable(args.out),
            "models": {key: model_info(m) for key, m in nets.items()},
            "loss": paper.loss_settings(), "preset": paper.PRESET,
        },
        "table1": None, "table2": None, "figures": None,
    }
    if args.only:
        # Parts not rerun are kept, each table with the context (date, machine, settings) it was made in.
        previous = _previous_results(args.out)
        for part in set(PARTS) - parts:
            kept = previous.get(part)
            if isinstance(kept, dict) and part != "figures" and not kept.get("context"):
                kept = {**kept, "context": paper.context(previous)}
            results[part] = kept
        results["parts_run"] = sorted(parts)
    _log(f"evaluate: {len(contents)} photo(s) from {content_dir}, style {args.style}, back-prop preset {paper.PRESET}; "
         f"{paper.machine_line(results['machine'])}")
    cache: dict = {}

    # Table 2 first: it times compilation from cleared jit caches, which would otherwise throw away
    # what Table 1 and the figures share.
    def run_part(part: str, compute) -> None:
        """Compute one part with a progress bar, store it (tables with their run context), save."""
        bar = progress_bar(0, desc=part.replace("table", "table "), unit="step")

        def progress(done: int, metrics: Mapping[str, float]) -> None:
            """The part's steps on the bar; its total comes with them (``metrics["steps"]``)."""
            total = int(metrics["steps"])
            if bar.total != total:
                bar.total = total
                bar.refresh()
            bar.update(done - bar.n)

        try:
            value = compute(progress)
        finally:
            bar.close()
        results[part] = value if part == "figures" else {**value, "context": paper.context(results)}
        paper.write_results(args.out, results)

    name, first = next(iter(raw.items()))
    if "table2" in parts:
        run_part("table2", lambda progress: paper.table2(
            first, style, nets, vgg_params=vgg_params, iterations=table2_iterations,
            shape=args.table2_size, repeats=args.repeats, image_name=name, progress=progress, log=_log))
    if "table1" in parts:
        run_part("table1", lambda progress: paper.table1(
            contents, style, nets, vgg_params=vgg_params, iterations=args.iterations,
            style_name=args.style, cache=cache, progress=progress, log=_log))
    if "figures" in parts:
        run_part("figures", lambda progress: paper.figures(
            args.out, contents, style, figure_styles, nets, vgg_params=vgg_params,
            iterations=figure_iterations, style_name=args.style, cache=cache, progress=progress, log=_log))

    for text in paper.render_markdown(results).values():
        print(text)
    written = [*(f"{p}.md" for p in ("table1", "table2") if p in parts), "results.json",
               *(f"{k}.png" for k in (results["figures"] or {}) if "figures" in parts)]
    _log(f"wrote {', '.join(written)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
