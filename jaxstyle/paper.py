"""The paper's quantitative section, rerunnable (the logic behind ``bin/evaluate``).

* :func:`table1` - Table 1: the paper's L_content(g, c) and L_style(g, s), measured with our VGG19,
  of the input photo itself (g = c, a reference), back-propagation (Gatys et al.) and each transform
  net of :data:`NETS` (trained without warmup, with identity warmup, with teacher warmup), per content
  image and their mean.
* :func:`table2` - Table 2: runtime at 400x300 on this machine, compilation apart from steady state.
* :func:`figures` - Figures 1-5 (PNG contact sheets).
* :func:`render_markdown` - ``table1.md`` / ``table2.md`` from the results dict, and
  :func:`write_results`: :mod:`jaxstyle.paper_report`'s, importable from here.
* The models, content photos, loss and back-propagation every part uses (:func:`load_model`,
  :func:`list_content`, :func:`image_losses`, :func:`run_backprop`, ...): :mod:`jaxstyle.paper_setup`'s,
  importable from here.

Images are ``float32[H, W, 3]`` RGB in ``[0, 1]`` (see :mod:`jaxstyle.io.images`); every function here
returns plain JSON-able dicts of Python floats, ints and strings. :func:`table1`, :func:`table2` and
:func:`figures` take the nets as ``{key of NETS: Model}`` and give them their columns in :data:`NETS` order;
they report through ``progress(steps done, {"steps": the part's total})`` (:class:`jaxstyle.progress.Progress`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxstyle.errors import OptionError
from jaxstyle.io import images as imagelib
from jaxstyle.io import modelfile
from jaxstyle.machine import machine_info, machine_line
from jaxstyle.nn.vgg import MIN_SIDE
from jaxstyle.paper_report import (
    METHOD_LABELS,
    METHODS,
    NET_KEYS,
    NETS,
    PRESET,
    TERMS,
    Net,
    context,
    fmt,
    now_iso,
    render_markdown,
    render_table1,
    render_table2,
    write_results,
)
from jaxstyle.paper_setup import (
    Model,
    backprop_key,
    default_content_dir,
    device_vgg,
    image_losses,
    list_content,
    load_model,
    loss_settings,
    loss_spec,
    run_backprop,
    targets_for,
    working_content,
)
from jaxstyle.progress import Progress

__all__ = [
    "DEFAULT_MODELS", "DEFAULT_STYLE", "FIGURE1_STYLES", "METHODS", "METHOD_LABELS", "NETS", "NET_KEYS",
    "PAPER_ITERATIONS", "PRESET", "TABLE2_SHAPE", "TERMS", "TRANSFORM_FIGURES", "Model", "Net", "context",
    "default_content_dir", "device_vgg", "figures", "fmt", "image_losses", "list_content", "load_model",
    "loss_settings", "loss_spec", "machine_info", "machine_line", "now_iso", "render_markdown", "render_table1",
    "render_table2", "run_backprop", "table1", "table2", "targets_for", "time_backprop", "time_transform",
    "working_content", "write_results",
]

#: The paper's back-propagation iteration count (Table 2 is extrapolated to it when fewer are run).
PAPER_ITERATIONS = 400
#: Table 2's image size, (height, width): 400x300 landscape as in the paper.
TABLE2_SHAPE = (300, 400)
#: Figure 1: one photo in these three styles, by back-propagation.
FIGURE1_STYLES = ("scream", "starry_night", "wave")
#: How many content images get a Figure 3, 4, 5.
TRANSFORM_FIGURES = 3
DEFAULT_STYLE = "starry_night"
#: The shipped model file of each net of :data:`NETS`, by key (``bin/evaluate``'s defaults).
DEFAULT_MODELS = {net.key: modelfile.asset(net.default) for net in NETS}


Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class _Steps:
    """The steps of one part (a table, the figures), whose total only the part knows: reported as
    ``progress(steps done, {"steps": total})`` (:class:`jaxstyle.progress.Progress`), first with 0 done."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self._progress, self._total, self.done = progress, float(total), 0
        self.add(0)

    def add(self, n: int = 1) -> None:
        self.done += n
        if self._progress is not None:
            self._progress(self.done, {"steps": self._total})


def _ordered(nets: Mapping[str, Model]) -> list[tuple[Net, Model]]:
    """``{key of NETS: Model}`` -> [(Net, Model)] in :data:`NETS` order; raises OptionError for another key."""
    unknown = sorted(set(nets) - set(NET_KEYS))
    if unknown:
        raise OptionError(f"unknown transform net(s) {', '.join(unknown)}; known: {', '.join(NET_KEYS)}")
    return [(net, nets[net.key]) for net in NETS if net.key in nets]


# -- Table 1 ---------------------------------------------------------------------------------------


def table1(
    contents: Sequence[tuple[str, np.ndarray]],
    style: np.ndarray,
    nets: Mapping[str, Model],
    *,
    vgg_params: Any,
    iterations: int = PAPER_ITERATIONS,
    style_name: str = DEFAULT_STYLE,
    cache: MutableMapping[str, np.ndarray] | None = None,
    progress: Progress | None = None,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Table 1: L_content(g, c) and L_style(g, s) of each method's output g, per image and mean.

    contents: (name, float32[H, W, 3] in [0, 1]) pairs, already at the working size (long side
    ``--size``); style: float32[h, w, 3], any size (scaled to H*W pixels per image, as gatys does);
    nets: ``{key of NETS: Model}``. ``cache`` (optional) receives the back-prop outputs, keyed for
    :func:`figures` to reuse.

    Returns ``{"rows": [{"image", "shape", "losses": {method: {"content", "style", "total"}},
    "backprop_seconds"}], "mean": {method: {...}}, "iterations", "style", "loss"}``; methods are
    ``input`` (g = c, so its content loss is 0), ``backprop`` and the nets' keys, in :data:`METHODS` order.
    """
    from jaxstyle.methods.transform import net as transform

    if not contents:
        raise OptionError("Table 1 needs at least one content image")
    ordered = _ordered(nets)
    methods = ["input", "backprop", *(net.key for net, _ in ordered)]
    params = device_vgg(vgg_params)
    steps = _Steps(progress, len(contents) * (iterations + len(ordered)))
    rows = []
    for name, content in contents:
        targets = targets_for(content, style, params)
        outputs: dict[str, np.ndarray] = {"input": content}

        def on_step(step: int, image: Any, terms: Any) -> None:
            steps.add()

        result = run_backprop(content, style, params, iterations, on_step)
        outputs["backprop"] = result.image
        if cache is not None:
            cache[backprop_key(name, style_name, content.shape, iterations)] = result.image
        for net, model in ordered:
            outputs[net.key] = transform.stylize(content, model.params)
            steps.add()
        losses = {method: image_losses(outputs[method], targets, params) for method in methods}
        rows.append({"image": name, "shape": list(content.shape[:2]), "losses": losses,
                     "backprop_seconds": result.seconds})
        log(f"table 1: {name} {content.shape[1]}x{content.shape[0]}: back-prop {iterations} it in "
            f"{result.seconds:.1f} s; style loss "
            + ", ".join(f"{METHOD_LABELS[m]} {losses[m]['style']:.4g}" for m in methods))
    mean = {method: {term: float(np.mean([r["losses"][method][term] for r in rows])) for term in TERMS}
            for method in methods}
    return {"rows": rows, "mean": mean, "iterations": iterations, "style": style_name,
            "loss": loss_settings()}


# -- Table 2 ---------------------------------------------------------------------------------------


def time_transform(model: Model, content: np.ndarray, repeats: int = 5) -> dict[str, float]:
    """Time one forward pass of ``model`` on float32[H, W, 3] ``content`` (batch of one).

    jax's caches are cleared first, so ``first_call_seconds`` includes tracing and XLA compilation;
    ``mean_seconds`` / ``min_seconds`` are over ``repeats`` further calls (steady state). Every call
    waits for the result (``block_until_ready``). Params are put on the device before timing.
    """
    import jax
    import jax.numpy as jnp

    from jaxstyle.methods.transform import net as transform

    if repeats < 1:
        raise OptionError(f"repeats must be positive, got {repeats}", fields=("repeats",))
    jax.clear_caches()
    params = jax.device_put(model.params)
    x = jax.device_put(jnp.asarray(content)[None])
    start = time.perf_counter()
    transform.apply(params, x).block_until_ready()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        transform.apply(params, x).block_until_ready()
        times.append(time.perf_counter() - start)
    return {"first_call_seconds": first, "mean_seconds": float(np.mean(times)), "min_seconds": float(min(times)),
            "std_seconds": float(np.std(times)), "repeats": repeats}


def time_backprop(content: np.ndarray, style: np.ndarray, vgg_params: Any, iterations: int,
                  target_iterations: int = PAPER_ITERATIONS, progress: Progress | None = None) -> dict[str, Any]:
    """Time ``api.gatys`` for ``iterations`` (>= 2) iterations from cold jit caches.

    ``compile_seconds`` is the first iteration (tracing + compilation + one step);
    ``steady_seconds`` = ``seconds - compile_seconds`` (the other iterations plus the final loss
    evaluation); ``per_iteration_seconds`` is measured between the first and the last step only.
    When ``iterations != target_iterations``, ``extrapolated`` holds the estimate for
    ``target_iterations``: compile + (target - 1) x per-iteration (labelled as extrapolated).
    ``progress(step, {})`` after each step.
    """
    import jax

    if iterations < 2:
        raise OptionError(f"timing back-prop needs at least 2 iterations (the first one compiles), got {iterations}")
    stamps: list[float] = []

    def on_step(step: int, image: Any, terms: Any) -> None:
        jax.block_until_ready(image)  # the step's end, not its dispatch
        stamps.append(time.perf_counter())
        if progress is not None:
            progress(step, {})

    jax.clear_caches()
    result = run_backprop(content, style, vgg_params, iterations, on_step)
    per_iteration = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    out: dict[str, Any] = {
        "iterations": iterations, "seconds": result.seconds, "compile_seconds": result.compile_seconds,
        "steady_seconds": result.seconds - result.compile_seconds, "per_iteration_seconds": per_iteration,
        "final_loss": {k: result.history[-1][k] for k in ("content", "style", "total")}, "extrapolated": None,
    }
    if iterations != target_iterations:
        out["extrapolated"] = {
            "iterations": target_iterations,
            "seconds": result.compile_seconds + (target_iterations - 1) * per_iteration,
            "steady_seconds": (target_iterations - 1) * per_iteration,
            "note": f"extrapolated from {iterations} measured iterations: compile + "
                    f"{target_iterations - 1} x steady per-iteration time",
        }
    return out


def table2(
    content: np.ndarray,
    style: np.ndarray,
    nets: Mapping[str, Model],
    *,
    vgg_params: Any,
    iterations: int = PAPER_ITERATIONS,
    target_iterations: int = PAPER_ITERATIONS,
    shape: tuple[int, int] = TABLE2_SHAPE,
    repeats: int = 5,
    image_name: str = "",
    progress: Progress | None = None,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Table 2: runtime of back-prop and of each net at ``shape`` (height, width; default 300x400).

    content: float32[H, W, 3], any size (resized to exactly ``shape``, aspect not kept);
    style: float32[h, w, 3], any size; nets: ``{key of NETS: Model}``. Returns ``{"shape", "image",
    "backprop": time_backprop(...), "machine"}`` and ``time_transform(...)`` under each net's key.
    """
    h, w = shape
    if min(shape) < MIN_SIDE:
        raise OptionError(f"Table 2 size {w}x{h} is too small (sides of at least {MIN_SIDE} px)")
    ordered = _ordered(nets)
    image = imagelib.resize(content, h, w)
    params = device_vgg(vgg_params)
    steps = _Steps(progress, iterations + len(ordered) * (repeats + 1))
    result: dict[str, Any] = {"shape": [h, w], "image": image_name, "machine": machine_info()}
    result["backprop"] = time_backprop(image, style, params, iterations, target_iterations,
                                       lambda done, metrics: steps.add())
    b = result["backprop"]
    log(f"table 2: back-prop {iterations} it at {w}x{h}: compile {b['compile_seconds']:.2f} s, "
        f"{b['per_iteration_seconds']:.3f} s/it")
    for net, model in ordered:
        timing = result[net.key] = time_transform(model, image, repeats)
        steps.add(repeats + 1)
        log(f"table 2: {net.label} at {w}x{h}: first call {timing['first_call_seconds']:.2f} s, "
            f"steady {timing['mean_seconds'] * 1e3:.1f} ms")
    return result


# -- figures ---------------------------------------------------------------------------------------


def _tile_height(size: int) -> int:
    return int(min(384, max(128, size)))


def figures(
    out_dir: str | os.PathLike[str],
    contents: Sequence[tuple[str, np.ndarray]],
    style: np.ndarray,
    figure_styles: Mapping[str, np.ndarray],
    nets: Mapping[str, Model],
    *,
    vgg_params: Any,
    iterations: int = PAPER_ITERATIONS,
    style_name: str = DEFAULT_STYLE,
    cache: Mapping[str, np.ndarray] | None = None,
    progress: Progress | None = None,
    log: Log = _quiet,
) -> dict[str, str]:
    """Write the paper's figures as PNG into ``out_dir``; returns {figure name: file path}.

    * ``figure1.png``: ``contents[0]`` and its back-prop stylisations in each of ``figure_styles``
      (name -> float32[h, w, 3], the paper's scream, starry_night, wave).
    * ``figure2.png``: texture synthesis of ``style``: the style and the texture side by side.
    * ``figure3.png``...: for each of the first three ``contents``, one row: the photo, each net of
      ``nets`` in :data:`NETS` order (transform net | + warmup | + teacher warmup), back-prop (``style``).

    contents: (name, float32[H, W, 3]) at the working size; nets: ``{key of NETS: Model}``; back-prop
    runs ``iterations`` steps, reusing a :func:`table1` output from ``cache`` when it was made with the
    same settings.
    """
    from jaxstyle.methods.gatys import api
    from jaxstyle.methods.transform import net as transform

    if not contents:
        raise OptionError("the figures need at least one content image")
    ordered = _ordered(nets)
    out = Path(out_dir)
    params = device_vgg(vgg_params)
    cache = dict(cache or {})
    size = max(contents[0][1].shape[:2])
    tile = _tile_height(size)
    fig_contents = list(contents[:TRANSFORM_FIGURES])
    jobs = [(contents[0], name, img) for name, img in figure_styles.items()]
    jobs += [(item, style_name, style) for item in fig_contents]
    todo = {backprop_key(c[0], s, c[1].shape, iterations) for c, s, _ in jobs} - set(cache)
    steps = _Steps(progress, (len(todo) + 1) * iterations + len(ordered) * len(fig_contents))

    def on_step(step: int, image: Any, terms: Any) -> None:
        steps.add()

    def stylised(item: tuple[str, np.ndarray], name: str, img: np.ndarray) -> np.ndarray:
        key = backprop_key(item[0], name, item[1].shape, iterations)
        if key not in cache:
            start = time.perf_counter()
            cache[key] = run_backprop(item[1], img, params, iterations, on_step).image
            log(f"figures: back-prop {item[0]} x {name}, {iterations} it in {time.perf_counter() - start:.1f} s")
        return cache[key]

    written: dict[str, str] = {}
    photo_name, photo = contents[0]
    sheet = [photo] + [stylised(contents[0], name, img) for name, img in figure_styles.items()]
    labels = [f"photo ({photo_name})"] + [f"back-prop: {name}" for name in figure_styles]
    written["figure1"] = str(imagelib.save_image(out / "figure1.png", imagelib.make_grid(
        sheet, labels, columns=len(sheet), tile_height=tile)))

    start = time.perf_counter()
    texture = api.texture(style, size, vgg_params=params, preset=PRESET, iterations=iterations,
                               callback=on_step)
    log(f"figures: texture of {style_name}, {iterations} it in {time.perf_counter() - start:.1f} s")
    written["figure2"] = str(imagelib.save_image(out / "figure2.png", imagelib.make_grid(
        [imagelib.fit_long_side(style, size), texture.image],
        [f"style: {style_name}", f"texture ({iterations} it)"], columns=2, tile_height=tile)))

    for i, item in enumerate(fig_contents):
        name, content = item
        row = [content, *(transform.stylize(content, model.params) for _, model in ordered),
               stylised(item, style_name, style)]
        steps.add(len(ordered))
        labels = [f"photo ({name})", *(net.label for net, _ in ordered), "back-prop"]
        key = f"figure{3 + i}"
        written[key] = str(imagelib.save_image(out / f"{key}.png", imagelib.make_grid(
            row, labels, columns=len(row), tile_height=tile)))
    return written
