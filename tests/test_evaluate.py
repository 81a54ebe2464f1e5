"""bin/evaluate: Tables 1-2 and the figures end to end on tiny models and images; bad input."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from jaxstyle import paper as evaluate
from jaxstyle import train
from jaxstyle.cli import evaluate as evaluate_cli
from jaxstyle.io import images


def _train_tiny(tmp_path, data_dir, vgg_params, name, warmup_steps=0):
    config = train.TrainConfig(style="starry_night", data=str(data_dir / "train"), steps=3, batch_size=2,
                               image_size=32, style_size=64, width=8, residual_blocks=1,
                               warmup_steps=warmup_steps)
    out = tmp_path / f"{name}.msgpack"
    train.run(config, tmp_path / f"work_{name}", vgg_params=vgg_params, out=out, progress=False,
              log=lambda _: None, checkpoint_every=3)
    return out


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


@pytest.mark.slow  # 209 s
def test_evaluate_writes_tables_json_and_figures(tmp_path, data_dir, vgg_params, capsys):
    model = _train_tiny(tmp_path, data_dir, vgg_params, "plain")
    warmup = _train_tiny(tmp_path, data_dir, vgg_params, "warm", warmup_steps=2)
    content = tmp_path / "content"
    content.mkdir()
    for name in ("tubingen.jpg", "golden_gate.jpg", "stata.jpg"):  # --limit 2 takes golden_gate, stata
        img = images.fit_long_side(images.load_image(data_dir / "content" / name), 40)
        images.save_image(content / f"{name[:-4]}.png", img)
    out = tmp_path / "out"

    code = evaluate_cli.main(["--content", str(content), "--limit", "2", "--size", "32", "--iterations", "3",
                              "--table2-iterations", "2", "--table2-size", "32x24", "--figure-iterations", "3",
                              "--repeats", "1",
                              "--model", str(model), "--warmup-model", str(warmup), "--out", str(out)])
    assert code == 0, capsys.readouterr().err

    results = json.loads((out / "results.json").read_text())
    t1 = results["table1"]
    assert [row["image"] for row in t1["rows"]] == ["golden_gate.png", "stata.png"]
    for losses in [row["losses"] for row in t1["rows"]] + [t1["mean"]]:
        assert set(losses) == set(evaluate.METHODS)
        for method, terms in losses.items():
            assert all(math.isfinite(terms[k]) for k in ("content", "style", "total")), (method, terms)
        assert losses["input"]["content"] < 1e-6 * losses["transform"]["content"]  # g = c: 0 up to rounding
    t2 = results["table2"]
    assert t2["shape"] == [24, 32] and t2["backprop"]["iterations"] == 2
    assert t2["backprop"]["extrapolated"]["iterations"] == 400
    for key in ("compile_seconds", "steady_seconds", "per_iteration_seconds", "seconds"):
        assert math.isfinite(t2["backprop"][key]) and t2["backprop"][key] > 0
    for method in ("transform", "transform_warmup"):
        assert all(math.isfinite(t2[method][k]) and t2[method][k] > 0 for k in ("first_call_seconds", "mean_seconds"))
    assert results["settings"]["models"]["transform_warmup"]["warmup_steps"] == 2
    assert results["machine"]["jax"] and results["machine"]["device_kind"]

    # Table 1: 3 terms x (2 images + mean) rows, each with 4 finite numbers (input + 3 methods).
    rows1 = _table_rows((out / "table1.md").read_text())
    assert len(rows1) == 3 * 3 and sum(r[0] == "**mean**" for r in rows1) == 3
    assert all(len(r) == 5 and all(_finite(c) is not None for c in r[1:]) for r in rows1)
    # Table 2: back-prop measured + extrapolated, the two nets; four finite numbers each.
    rows2 = _table_rows((out / "table2.md").read_text())
    assert [r[0] for r in rows2] == ["back-prop", "back-prop", "transform net", "transform net + warmup"]
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
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left

    # --only table2 re-times Table 2 and keeps Table 1 and the figures of the run before.
    code = evaluate_cli.main(["--content", str(content), "--limit", "2", "--only", "table2",
                              "--table2-iterations", "3", "--table2-size", "32x24", "--repeats", "1",
                              "--model", str(model), "--warmup-model", str(warmup), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    again = json.loads((out / "results.json").read_text())
    assert again["table2"]["backprop"]["iterations"] == 3 and again["parts_run"] == ["table2"]
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
