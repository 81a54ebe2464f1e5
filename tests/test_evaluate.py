"""bin/evaluate: Tables 1-2 and the figures end to end on the shipped nets and tiny images; the nets' table
and its rendering; bad input."""

import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image

from jaxstyle import paper as evaluate
from jaxstyle.cli import evaluate as evaluate_cli
from jaxstyle.errors import OptionError
from jaxstyle.io import images

NET_LABELS = ["transform net", "transform net + warmup", "transform net + teacher warmup"]


def _table_rows(markdown):
    """The data rows of every markdown table: lists of cell texts (header and rule lines skipped)."""
    rows, previous = [], ""
    for line in markdown.splitlines():
        if line.startswith("|") and not line.startswith("|---") and previous.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        previous = line
    return rows


def _finite(text):
    value = float(text)
    assert math.isfinite(value), text
    return value


@pytest.mark.slow  # 73 s
def test_evaluate_writes_tables_json_and_figures(tmp_path, data_dir, monkeypatch, capsys):
    # The three shipped nets: --model by default, the other two named by their options (a copy for
    # --teacher-model, to see the option picks the file).
    warmup = evaluate.DEFAULT_MODELS["transform_warmup"]
    teacher = tmp_path / "teacher.msgpack"
    shutil.copy(evaluate.DEFAULT_MODELS["transform_teacher"], teacher)
    nets = ["--warmup-model", str(warmup), "--teacher-model", str(teacher)]
    grids = []  # (labels, columns, images) of each contact sheet the figures make
    make_grid = images.make_grid

    def recording_make_grid(imgs, labels=None, columns=None, **kwargs):
        grids.append((list(labels or []), columns, list(imgs)))
        return make_grid(imgs, labels, columns, **kwargs)

    monkeypatch.setattr(images, "make_grid", recording_make_grid)
    content = tmp_path / "content"
    content.mkdir()
    for name in ("tubingen.jpg", "golden_gate.jpg", "stata.jpg"):  # --limit 2 takes golden_gate, stata
        img = images.fit_long_side(images.load_image(data_dir / "content" / name), 40)
        images.save_image(content / f"{name[:-4]}.png", img)
    out = tmp_path / "out"

    code = evaluate_cli.main(["--content", str(content), "--limit", "2", "--size", "32", "--iterations", "3",
                              "--table2-iterations", "2", "--table2-size", "32x24", "--figure-iterations", "3",
                              "--repeats", "1", *nets, "--out", str(out)])
    assert code == 0, capsys.readouterr().err

    results = json.loads((out / "results.json").read_text())
    t1 = results["table1"]
    assert [row["image"] for row in t1["rows"]] == ["golden_gate.png", "stata.png"]
    assert evaluate.METHODS == ("input", "backprop", "transform", "transform_warmup", "transform_teacher")
    for losses in [row["losses"] for row in t1["rows"]] + [t1["mean"]]:
        assert list(losses) == list(evaluate.METHODS)
        for method, terms in losses.items():
            assert all(math.isfinite(terms[k]) and terms[k] >= 0 for k in evaluate.TERMS), (method, terms)
        for net in evaluate.NET_KEYS:  # g = c: 0 up to rounding; each net really changes the photo
            assert losses["input"]["content"] < 1e-6 * losses[net]["content"], net
        # Three different nets, three different outputs.
        assert len({losses[net]["total"] for net in evaluate.NET_KEYS}) == 3
    t2 = results["table2"]
    assert t2["shape"] == [24, 32] and t2["backprop"]["iterations"] == 2
    assert t2["backprop"]["extrapolated"]["iterations"] == 400
    for key in ("compile_seconds", "steady_seconds", "per_iteration_seconds", "seconds"):
        assert math.isfinite(t2["backprop"][key]) and t2["backprop"][key] > 0
    for method in evaluate.NET_KEYS:
        assert all(math.isfinite(t2[method][k]) and t2[method][k] > 0 for k in ("first_call_seconds", "mean_seconds"))
    models = results["settings"]["models"]
    assert list(models) == list(evaluate.NET_KEYS)
    assert models["transform"]["path"].endswith("paper/starry_night_nowarmup.msgpack")  # the default
    assert models["transform_warmup"]["warmup_steps"] == 200 and models["transform"]["warmup_steps"] == 0
    assert models["transform_teacher"]["path"].endswith("teacher.msgpack")
    assert models["transform_teacher"]["teacher_steps"] == 200
    assert models["transform_teacher"]["phases"] == [{"phase": "teacher", "steps": 200},
                                                     {"phase": "perceptual", "steps": 1800}]
    assert results["machine"]["jax"] and results["machine"]["device_kind"]

    # Table 1: 3 terms x (2 images + mean) rows, each with 5 finite numbers (input, back-prop, 3 nets).
    table1 = (out / "table1.md").read_text()
    rows1 = _table_rows(table1)
    assert len(rows1) == 3 * 3 and sum(r[0] == "**mean**" for r in rows1) == 3
    assert all(len(r) == 6 and all(_finite(c) is not None for c in r[1:]) for r in rows1)
    assert "| image | input photo (g = c) | back-prop | " + " | ".join(NET_LABELS) + " |" in table1
    assert "- transform net + teacher warmup: `" in table1
    assert "(200 teacher-warmup steps (MicroAST), 2000 training steps)" in table1
    assert "starry_night_warmup.msgpack` (200 warmup steps, 2000 training steps)" in table1
    # Table 2: back-prop measured + extrapolated, the three nets; four finite numbers each.
    rows2 = _table_rows((out / "table2.md").read_text())
    assert [r[0] for r in rows2] == ["back-prop", "back-prop", *NET_LABELS]
    assert "extrapolated" in rows2[1][1]
    assert all(_finite(c) > 0 for r in rows2 for c in r[2:])
    header = (out / "table2.md").read_text()
    assert "jax " in header and "date:" in header and "32x24 (w x h)" in header

    for i in range(1, 5):  # figure3 and figure4: one per content image (only 2 here)
        with Image.open(out / f"figure{i}.png") as im:
            im.load()
            assert im.size[0] > im.size[1] > 0
    assert not (out / "figure5.png").exists()
    assert sorted(results["figures"]) == ["figure1", "figure2", "figure3", "figure4"]
    # Figures 3-4: one row of 5 panels, photo | the 3 nets | back-prop, each at the photo's size.
    rows = [g for g in grids if g[0] and g[0][0].startswith("photo (") and g[0][-1] == "back-prop"]
    assert [g[0][0] for g in rows] == ["photo (golden_gate.png)", "photo (stata.png)"]
    for (labels, columns, imgs), name in zip(rows, ("figure3", "figure4"), strict=True):
        assert labels[1:] == [*NET_LABELS, "back-prop"] and columns == len(imgs) == 5
        assert len({img.shape for img in imgs}) == 1
        h, w = imgs[0].shape[:2]
        tile = round(w * 128 / h)  # tile height 128 at --size 32, pad 8
        with Image.open(out / f"{name}.png") as im:
            assert im.size[0] == 8 + 5 * (tile + 8)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left

    # --only table2 re-times Table 2 and keeps Table 1 and the figures of the run before.
    code = evaluate_cli.main(["--content", str(content), "--limit", "2", "--only", "table2",
                              "--table2-iterations", "3", "--table2-size", "32x24", "--repeats", "1",
                              *nets, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    again = json.loads((out / "results.json").read_text())
    assert again["table2"]["backprop"]["iterations"] == 3 and again["parts_run"] == ["table2"]
    assert all(again["table2"][net]["mean_seconds"] > 0 for net in evaluate.NET_KEYS)
    assert again["table1"] == results["table1"] and again["figures"] == results["figures"]
    assert again["table1"]["context"]["settings"]["size"] == 32 and again["settings"]["size"] == 256
    assert _table_rows((out / "table1.md").read_text()) == rows1
    assert "content long side 32 px" in (out / "table1.md").read_text()


@pytest.mark.parametrize("args, needle", [
    (["--content", "/no/such/folder"], "no such content folder"),
    (["--model", "no_such_model"], "no transform model 'no_such_model'"),
    (["--table2-iterations", "1"], "--table2-iterations"),
    (["--content", "{tmp}/photo.png"], "must be a folder of images, not a file"),
    (["--content", "{tmp}/empty"], "no images found"),
    (["--style", "no_such_style"], "unknown style 'no_such_style'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, data_dir, capsys, args, needle):
    (tmp_path / "photo.png").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    base = ["--content", str(data_dir / "content"), "--out", str(tmp_path / "out")]
    assert evaluate_cli.main(base + [a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evaluate: error:") and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()  # nothing written before the inputs are checked


def test_bad_option_value_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        evaluate_cli.main(["--size", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("evaluate: error: argument --size") and err.count("\n") == 1, err


def test_render_markdown_formats_numbers():
    assert evaluate.fmt(0.0) == "0" and evaluate.fmt(1.23456) == "1.235"
    assert float(evaluate.fmt(3.2e7)) == pytest.approx(3.2e7) and "," not in evaluate.fmt(3.2e7)
    assert np.isclose(float(evaluate.fmt(1.5e-5)), 1.5e-5)


def test_results_record_paths_without_the_machines_folders(tmp_path, monkeypatch):
    """results.json names its inputs relative to the working folder, or by their last two parts: the
    committed results/results.json holds no absolute path either."""
    import json
    from pathlib import Path

    from jaxstyle.cli.evaluate import portable

    monkeypatch.chdir(tmp_path)
    assert portable(tmp_path / "results") == "results"
    assert portable("/elsewhere/data/content") == "data/content"
    assert portable("weights/x.msgpack") == "weights/x.msgpack"

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict | list):
            for item in value.values() if isinstance(value, dict) else value:
                yield from strings(item)

    committed = Path(__file__).resolve().parents[1] / "results" / "results.json"
    assert not [s for s in strings(json.loads(committed.read_text())) if s.startswith("/")]


def test_the_nets_table_keeps_the_first_two_keys_and_labels():
    """One ordered table of nets; the first two keep the keys and labels older results.json files use."""
    assert [(n.key, n.label, n.option) for n in evaluate.NETS] == [
        ("transform", "transform net", "--model"),
        ("transform_warmup", "transform net + warmup", "--warmup-model"),
        ("transform_teacher", "transform net + teacher warmup", "--teacher-model")]
    assert evaluate.METHODS == ("input", "backprop", *evaluate.NET_KEYS)
    assert all(evaluate.METHOD_LABELS[n.key] == n.label for n in evaluate.NETS)
    for net in evaluate.NETS:
        assert evaluate.DEFAULT_MODELS[net.key].is_file(), net
    teacher = evaluate.load_model(evaluate.DEFAULT_MODELS["transform_teacher"]).metadata
    assert teacher["teacher_steps"] == 200 and teacher["teacher"].startswith("microast")


def test_help_documents_each_net_option(capsys):
    with pytest.raises(SystemExit):
        evaluate_cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for net in evaluate.NETS:
        assert f"{net.option} MODEL" in text and f"the shipped {net.default}" in text, net
    assert "trained with teacher warmup" in text
    args = evaluate_cli.build_parser().parse_args(["--teacher-model", "x.msgpack"])
    assert args.transform_teacher == "x.msgpack"
    assert args.transform == str(evaluate.DEFAULT_MODELS["transform"])


def test_an_unknown_net_key_is_refused_before_any_work():
    photo = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(OptionError, match="unknown transform net"):
        evaluate.table1([("p", photo)], photo, {"transform_other": None}, vgg_params=None)


def _results(nets):
    """A results dict as bin/evaluate writes it, with made-up numbers, for ``nets`` (keys of NETS)."""
    methods = ["input", "backprop", *nets]
    losses = {m: {"content": 1.0 + i, "style": 10.0 + i, "total": 100.0 + i} for i, m in enumerate(methods)}
    metadata = {"transform": {"warmup_steps": 0, "steps": 2000},
                "transform_warmup": {"warmup_steps": 200, "steps": 2000},
                "transform_teacher": {"warmup_steps": 0, "teacher_steps": 200, "steps": 2000,
                                      "teacher": "microast with starry_night.jpg"}}
    timing = {"first_call_seconds": 1.5, "mean_seconds": 0.25, "min_seconds": 0.2, "std_seconds": 0.01, "repeats": 2}
    return {
        "date": "2026-12-05T00:00:00+00:00", "machine": evaluate.machine_info(),
        "settings": {"size": 32, "preset": "paper", "models": {
            k: {"name": f"{k}.msgpack", "path": f"{k}.msgpack", **metadata[k]} for k in nets}},
        "table1": {"rows": [{"image": "a.png", "shape": [24, 32], "losses": losses, "backprop_seconds": 1.0}],
                   "mean": losses, "iterations": 3, "style": "starry_night", "loss": evaluate.loss_settings()},
        "table2": {"shape": [24, 32], "image": "a.png",
                   "backprop": {"iterations": 2, "seconds": 2.0, "compile_seconds": 1.5, "steady_seconds": 0.5,
                                "per_iteration_seconds": 0.5, "extrapolated": None},
                   **{k: timing for k in nets}},
    }


def test_tables_render_a_column_per_net_and_older_results_with_two():
    md = evaluate.render_markdown(_results(evaluate.NET_KEYS))
    table1 = md["table1.md"]
    rows1 = _table_rows(table1)
    assert len(rows1) == 3 * 2 and all(len(r) == 6 for r in rows1)
    assert rows1[1][1:] == ["1", "2", "3", "4", "5"]  # the mean row of L_content, in METHODS order
    assert "| image | input photo (g = c) | back-prop | " + " | ".join(NET_LABELS) + " |" in table1
    assert "- transform net: `transform.msgpack` (0 warmup steps, 2000 training steps)" in table1
    assert "- transform net + warmup: `transform_warmup.msgpack` (200 warmup steps, 2000 training steps)" in table1
    assert ("- transform net + teacher warmup: `transform_teacher.msgpack` (200 teacher-warmup steps (MicroAST), "
            "2000 training steps)") in table1
    assert [r[0] for r in _table_rows(md["table2.md"])] == ["back-prop", *NET_LABELS]

    old = evaluate.render_markdown(_results(("transform", "transform_warmup")))  # a results.json from before
    assert all(len(r) == 5 for r in _table_rows(old["table1.md"]))
    assert "teacher" not in old["table1.md"] and "teacher" not in old["table2.md"]
    assert [r[0] for r in _table_rows(old["table2.md"])] == ["back-prop", *NET_LABELS[:2]]
