"""Fuzz our file readers with many more examples than the test suite runs.

The same targets and strategies as ``tests/test_fuzz.py`` (``tests/helpers/fuzzing.py``): the
restricted legacy-torch reader (``jaxstyle.io.torchfile.read_legacy_torch``) and ``images.load_image``, fed
random bytes and mutated small valid files (PNG, JPEG, GIF, TIFF, WebP). Every input must give a
clean load or one of our own errors; anything else (another exception, a malformed result, a
hang) is a failure, recorded with its input.

    .venv/bin/python -m bench.fuzz                      # 5000 examples per target
    .venv/bin/python -m bench.fuzz --examples 2000 --targets image:png,torch:mutated
    .venv/bin/python -m bench.fuzz --quick              # 20 examples per target, JSON in a temporary folder
    #   --out bench/results/fuzz.json (default)   --seed N (default 0: same inputs every run)

Prints a table (target, examples, clean loads, our errors, other failures, seconds) and writes
it as JSON with the machine, versions and every failure (error + input as hex). Exit code 1 if
any target had another failure.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings

from bench._common import REPO, machine_info, out_path
from tests.helpers import fuzzing

DEFAULT_OUT = REPO / "bench" / "results" / "fuzz.json"
QUICK_EXAMPLES = 20
#: Failures kept per target in the JSON (each with its input).
KEEP_FAILURES = 20


def run_target(target: fuzzing.Target, examples: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Feed ``target`` about ``examples`` generated inputs; count the outcomes, keep failures."""
    counts: collections.Counter[str] = collections.Counter()
    failures: list[dict[str, str]] = []

    @hypothesis.seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(data=target.strategy)
    def property_(data: bytes) -> None:
        outcome, err = fuzzing.feed(target, data, workdir)
        counts[outcome] += 1
        if outcome == fuzzing.OTHER and len(failures) < KEEP_FAILURES:
            failures.append({"error": fuzzing.describe(err), "input_hex": data.hex()})

    start = time.perf_counter()
    property_()
    return {"target": target.name, "examples": sum(counts.values()),
            **{outcome: counts[outcome] for outcome in fuzzing.OUTCOMES},
            "seconds": round(time.perf_counter() - start, 1), "failures": failures}


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (libtiff and libjpeg print every corrupt file they see) and warnings."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as devnull, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("target", "examples", "clean loads", "our errors", "other failures", "seconds")
    lines = [header] + [(r["target"], r["examples"], r["clean"], r["ours"], r["other"], r["seconds"]) for r in rows]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        cells = [str(v).rjust(w) for v, w in zip(line, widths, strict=True)]
        print("  ".join([str(line[0]).ljust(widths[0]), *cells[1:]]))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        for failure in r["failures"][:3]:
            print(f"{r['target']}: {failure['error']}")


def main(argv: list[str] | None = None) -> int:
    names = [t.name for t in fuzzing.targets()]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"a smoke run: {QUICK_EXAMPLES} examples per target, the JSON in a temporary folder")
    p.add_argument("--examples", type=int, default=None, help="inputs per target (default: 5000)")
    p.add_argument("--targets", default=",".join(names), help=f"comma-separated subset of {', '.join(names)}")
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed; same seed, same inputs (default: 0)")
    p.add_argument("--out", type=Path, default=None, help=f"JSON results (default: {DEFAULT_OUT})")
    args = p.parse_args(argv)
    if args.examples is None:
        args.examples = QUICK_EXAMPLES if args.quick else 5000
    args.out = out_path(args.out, DEFAULT_OUT, args.quick)
    wanted = [name.strip() for name in args.targets.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(names))
    if unknown or args.examples < 1:
        p.error(f"unknown targets {unknown}" if unknown else "--examples must be positive")

    started = time.strftime("%Y-%m-%d %H:%M:%S")
    rows = []
    with tempfile.TemporaryDirectory(prefix="jaxstyle-fuzz-") as tmp:
        for target in (t for t in fuzzing.targets() if t.name in wanted):
            with quiet_stderr():
                rows.append(run_target(target, args.examples, args.seed, Path(tmp)))
            print(f"{target.name}: {rows[-1]['examples']} examples, {rows[-1]['other']} other failures "
                  f"({rows[-1]['seconds']} s)", file=sys.stderr)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"started": started, "examples_per_target": args.examples, "seed": args.seed,
               "hang_seconds": fuzzing.HANG_SECONDS, "rows": rows,
               "machine": machine_info(("numpy", "pillow", "hypothesis"), devices=False)}
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    tmp_out.write_text(json.dumps(payload, indent=1))
    os.replace(tmp_out, args.out)
    print(f"wrote {args.out}")
    return 1 if any(r["other"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
