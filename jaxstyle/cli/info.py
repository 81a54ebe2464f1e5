"""``jaxstyle info``: every shipped model with its source and licence, and the versions, devices and
caches in use (``--json`` for a machine-readable record)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from jaxstyle.cli.common import ArgumentParser, cli_entry

DESCRIPTION = """\
List every model shipped inside jaxstyle (the transform nets and their --fast variants, the paper's
comparison nets, the decoders of the WCT/AdaIN arbitrary models, and MicroAST) with where it comes
from and its licence; then the versions of jaxstyle and the packages it runs on, the devices JAX
sees, and the caches and folders in use."""

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "pillow")
OWN_SOURCE = "trained by the jaxstyle project"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def shipped_models() -> list[dict[str, Any]]:
    """One record per shipped model file: kind, name, file, bytes, source, licence, stored dtype."""
    from jaxstyle.io import modelfile
    from jaxstyle.methods.arbitrary import microast, vgg_decoders  # noqa: F401 (they register their kinds)
    from jaxstyle.methods.transform import net  # noqa: F401

    own_license = "MIT (jaxstyle's)"
    records = []
    for kind in sorted(modelfile.KINDS):
        files = {**modelfile.shipped(kind)}
        if kind == "transform":
            fast = modelfile.shipped(kind, fast=True)
            files.update({f"{name}{modelfile.FAST_SUFFIX}": path for name, path in fast.items()})
            paper = modelfile.assets_dir() / "paper"
            files.update({f"paper/{p.name[: -len(modelfile.MODEL_SUFFIX)]}": p
                          for p in sorted(paper.glob(f"*{modelfile.MODEL_SUFFIX}"))})
        for name, path in sorted(files.items()):
            meta_path = path.with_name(path.name + ".json")
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            records.append({"kind": kind, "name": name, "file": str(path.relative_to(modelfile.assets_dir())),
                            "bytes": path.stat().st_size, "source": meta.get("source", OWN_SOURCE),
                            "license": meta.get("license", own_license), "stored_dtype": meta.get("stored_dtype")})
    return records


def environment() -> dict[str, Any]:
    """Versions, JAX's devices, and the caches and folders jaxstyle reads."""
    import jax

    from jaxstyle import __version__
    from jaxstyle.cache import CACHE_ENV, cache_dir
    from jaxstyle.io import modelfile, styles
    from jaxstyle.vgg_weights import ENV_VAR, read_meta, vgg_weights_path

    vgg_path = vgg_weights_path()
    try:
        vgg_source: Any = read_meta(vgg_path).get("source") if vgg_path.is_file() else "not ported yet (first use)"
    except Exception as err:  # noqa: BLE001 (a damaged cache file is reported, not raised)
        vgg_source = f"unreadable: {type(err).__name__}"
    return {
        "versions": {"jaxstyle": __version__, "python": platform.python_version(),
                     **{name: _version(name) for name in PACKAGES}},
        "devices": [{"platform": d.platform, "kind": d.device_kind, "id": d.id} for d in jax.devices()],
        "default_backend": jax.default_backend(),
        "cpus": os.cpu_count(),
        "paths": {"assets": str(modelfile.assets_dir()), "cache": str(cache_dir()),
                  "cache_from": CACHE_ENV if os.environ.get(CACHE_ENV) else "default",
                  "vgg19": str(vgg_path), "vgg19_from": ENV_VAR if os.environ.get(ENV_VAR) else "default",
                  "vgg19_source": vgg_source,
                  "styles_dir": os.environ.get(styles.STYLES_DIR_ENV) or None},
    }


def _text(models: list[dict[str, Any]], env: dict[str, Any]) -> str:
    lines = ["shipped models:"]
    width = max(len(f"{m['kind']}/{m['name']}") for m in models)
    for m in models:
        lines.append(f"  {m['kind'] + '/' + m['name']:<{width}}  {m['bytes'] / 1e6:5.2f} MB  {m['license']}; "
                     f"{m['source']}")
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v))
    lines.append("devices: " + ", ".join(f"{d['platform']}:{d['id']} ({d['kind']})" for d in env["devices"])
                 + f"; {env['cpus']} CPUs")
    for key in ("assets", "cache", "vgg19", "vgg19_source", "styles_dir"):
        lines.append(f"{key}: {env['paths'][key] or '(not set: built-in styles are downloaded into the cache)'}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="info", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    models, env = shipped_models(), environment()
    if args.json:
        print(json.dumps({"models": models, **env}, indent=1))
    else:
        print(_text(models, env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
