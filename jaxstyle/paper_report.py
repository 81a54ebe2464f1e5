"""The paper's results as files (the output half of ``bin/evaluate``): ``table1.md`` / ``table2.md``
rendered from the results dict (:func:`render_markdown`) and ``results.json`` (:func:`write_results`).

The experiments that fill the dict are :mod:`jaxstyle.paper`'s; the names here are importable from there too.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from jaxstyle import atomic
from jaxstyle.errors import OptionError
from jaxstyle.machine import machine_info, machine_line


class Net(NamedTuple):
    """One transform net the evaluation compares with back-prop.

    ``key``: its method key in ``results.json`` (Table 1's losses, Table 2's timings, the settings' models);
    ``label``: its column / row / panel label; ``option``: the ``bin/evaluate`` option naming its model;
    ``default``: the shipped model that option defaults to, relative to ``jaxstyle/assets``;
    ``trained``: how that net was trained (``without warmup``...), for ``--help``; otherwise the three
    shipped nets share their data, steps and seed.
    """

    key: str
    label: str
    option: str
    default: str
    trained: str


#: The transform nets compared, in column order: the one table every part (Tables 1-2, results.json, the
#: figures, the models' lines, ``bin/evaluate``'s options) is driven by. The first two keys and labels are
#: those of results.json files written when only they were compared, which stay readable.
NETS: tuple[Net, ...] = (
    Net("transform", "transform net", "--model", "paper/starry_night_nowarmup.msgpack", "without warmup"),
    Net("transform_warmup", "transform net + warmup", "--warmup-model", "paper/starry_night_warmup.msgpack",
        "with identity warmup (first steps fit the photo)"),
    Net("transform_teacher", "transform net + teacher warmup", "--teacher-model",
        "paper/starry_night_teacherwarmup.msgpack", "with teacher warmup (first steps fit MicroAST)"),
)
NET_KEYS = tuple(net.key for net in NETS)
METHODS = ("input", "backprop", *NET_KEYS)
METHOD_LABELS = {
    "input": "input photo (g = c)",
    "backprop": "back-prop",
    **{net.key: net.label for net in NETS},
}
TERMS = ("content", "style", "total")
#: How a teacher is named in a model's description line, by the first word of its metadata's ``teacher``.
TEACHER_NAMES = {"microast": "MicroAST"}

# The preset every back-prop run here uses: the paper's setting (jaxstyle.methods.gatys.presets.PAPER).
PRESET = "paper"


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# -- output ----------------------------------------------------------------------------------------


def fmt(value: float) -> str:
    """A loss or time for a markdown cell: 4 significant digits, plain float syntax (no commas)."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _display_path(path: str) -> str:
    """A shipped model as ``jaxstyle/assets/...`` (wherever the package is installed), a path under the current
    folder relative to it, any other path as given."""
    resolved = Path(path).resolve()
    for base in (Path(__file__).resolve().parents[1], Path.cwd()):
        if resolved.is_relative_to(base):
            return str(resolved.relative_to(base))
    return str(path)


def context(results: Mapping[str, Any]) -> dict[str, Any]:
    """The run a table was measured in: ``{"date", "machine", "settings", "command"}`` of ``results``."""
    return {key: results.get(key) for key in ("date", "machine", "settings", "command")}


def _context(results: Mapping[str, Any], part: str) -> Mapping[str, Any]:
    """A table's own run context (tables kept from an earlier run carry it), else the top level's."""
    return results[part].get("context") or results


def _header(results: Mapping[str, Any], what: str) -> str:
    machine = results.get("machine") or machine_info()
    return f"_{what} · machine: {machine_line(machine)} · date: {results.get('date', now_iso())}_"


def training_line(model: Mapping[str, Any]) -> str:
    """How a net was trained, from its entry in the settings' ``models`` (its metadata's ``steps``,
    ``warmup_steps``, ``teacher_steps``, ``teacher``): e.g. ``200 warmup steps, 2000 training steps`` or
    ``200 teacher-warmup steps (MicroAST), 2000 training steps``; the steps count includes the warmup's."""
    steps = f"{model.get('steps', '?')} training steps"
    if model.get("teacher_steps"):
        teacher = str(model.get("teacher") or "?").split()[0]
        return f"{model['teacher_steps']} teacher-warmup steps ({TEACHER_NAMES.get(teacher, teacher)}), {steps}"
    return f"{model.get('warmup_steps', '?')} warmup steps, {steps}"


def render_table1(results: Mapping[str, Any]) -> str:
    """Markdown for Table 1 from ``results["table1"]`` (and ``results["settings"]``): a column per method it
    holds, in :data:`METHODS` order (a results.json from before a net was added renders without it)."""
    t = results["table1"]
    s = _context(results, "table1").get("settings") or {}
    loss = t["loss"]
    size = s.get("size")
    models = s.get("models", {})
    header = _header(_context(results, "table1"), (
        f"content long side {size} px, style {t['style']} scaled to the same pixel count; back-prop "
        f"{t['iterations']} iterations (preset {s.get('preset', PRESET)}: sign optimizer, content+noise init)"))
    lines = [
        "# Table 1: content and style loss of each method", "", header, "",
        f"L_content(g, c) = ½ Σ (F − P)² at {loss['content_layer']}; L_style(g, s) = Σ_l w_l E_l over "
        f"{', '.join(loss['style_layers'])} (w_l = {', '.join(f'{v:g}' for v in loss['style_layers'].values())}); "
        f"our ported VGG19 with {loss['pooling']} pooling; total = α·L_content + β·L_style with "
        f"α = {loss['content_weight']:g}, β = {loss['style_weight']:g}. The input photo (g = c) is a reference "
        "row: its content loss is 0 by definition (up to float rounding).",
        "",
    ]
    for net in NETS:
        m = models.get(net.key)
        if m:
            lines.append(f"- {net.label}: `{_display_path(m.get('path') or m['name'])}` ({training_line(m)})")
    lines.append("")
    methods = [m for m in METHODS if m in t["mean"]]
    for term, title in (("content", "L_content(g, c)"), ("style", "L_style(g, s)"),
                        ("total", "α·L_content + β·L_style")):
        lines += [f"## {title}", "", "| image | " + " | ".join(METHOD_LABELS[m] for m in methods) + " |",
                  "|---|" + "---:|" * len(methods)]
        for row in t["rows"]:
            lines.append(f"| {row['image']} | " + " | ".join(fmt(row["losses"][m][term]) for m in methods) + " |")
        lines.append("| **mean** | " + " | ".join(fmt(t["mean"][m][term]) for m in methods) + " |")
        lines.append("")
    return "\n".join(lines)


def render_table2(results: Mapping[str, Any]) -> str:
    """Markdown for Table 2 from ``results["table2"]``: back-prop, then a row per net it holds (:data:`NETS`)."""
    t = results["table2"]
    h, w = t["shape"]
    b = t["backprop"]
    nets = [net for net in NETS if net.key in t]
    repeats = t[nets[0].key]["repeats"] if nets else 0
    header = _header(_context(results, "table2"), (
        f"{w}x{h} (w x h) image{' (' + t['image'] + ')' if t.get('image') else ''}; back-prop measured for "
        f"{b['iterations']} iterations; nets: first call, then mean of {repeats} call(s)"))
    lines = [
        "# Table 2: runtime", "", header, "",
        "Compilation is timed from cold jit caches (`jax.clear_caches()` before each method). Back-prop: "
        "'first call' is the first iteration (trace + compile + one step), 'steady state' the rest of the run "
        "(`seconds − compile_seconds`, including the final loss evaluation), 'per iteration' is measured between "
        "the first and the last step. Transform nets: 'first call' includes compilation, 'steady state' is the "
        "mean of the later calls.",
        "",
        "| method | work | first call incl. compile (s) | steady state (s) | per iteration / image (s) | total (s) |",
        "|---|---|---:|---:|---:|---:|",
        f"| back-prop | {b['iterations']} iterations (measured) | {fmt(b['compile_seconds'])} | "
        f"{fmt(b['steady_seconds'])} | {fmt(b['per_iteration_seconds'])} | {fmt(b['seconds'])} |",
    ]
    e = b.get("extrapolated")
    if e:
        lines.append(f"| back-prop | {e['iterations']} iterations (**extrapolated**) | {fmt(b['compile_seconds'])} | "
                     f"{fmt(e['steady_seconds'])} | {fmt(b['per_iteration_seconds'])} | {fmt(e['seconds'])} |")
    for net in nets:
        n = t[net.key]
        lines.append(f"| {net.label} | 1 forward pass | {fmt(n['first_call_seconds'])} | "
                     f"{fmt(n['mean_seconds'])} | {fmt(n['mean_seconds'])} | "
                     f"{fmt(n['first_call_seconds'] + n['mean_seconds'] * n['repeats'])} |")
    lines.append("")
    if e:
        lines += [f"Extrapolated row: {e['note']}.", ""]
    lines.append("Nets' total = first call + the timed repeats.")
    lines.append("")
    return "\n".join(lines)


def render_markdown(results: Mapping[str, Any]) -> dict[str, str]:
    """``{"table1.md": text, "table2.md": text}`` for the tables present in ``results``."""
    out = {}
    if results.get("table1"):
        out["table1.md"] = render_table1(results)
    if results.get("table2"):
        out["table2.md"] = render_table2(results)
    return out


def _write_text(path: Path, text: str) -> Path:
    try:
        return atomic.write_atomic(path, text)
    except OSError as err:
        raise OptionError(f"{path}: cannot write ({err.strerror or err})") from None


def write_results(out_dir: str | os.PathLike[str], results: Mapping[str, Any]) -> list[Path]:
    """Write ``results.json`` and the markdown tables present in ``results`` (all atomically)."""
    out = Path(out_dir)
    written = [_write_text(out / "results.json", json.dumps(results, indent=1, sort_keys=False) + "\n")]
    for name, text in render_markdown(results).items():
        written.append(_write_text(out / name, text))
    return written
