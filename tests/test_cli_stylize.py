"""bin/stylize end to end: outputs decode at the right size, reports, and bad input."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxstyle.cli import stylize


def _content(data_dir):
    return str(data_dir / "content" / "cat.jpg")


@pytest.mark.slow  # 15 s
def test_gatys_writes_image_and_report(tmp_path, data_dir):
    out, report = tmp_path / "o.png", tmp_path / "r.json"
    rc = stylize.main([_content(data_dir), "--method", "gatys", "--style", "starry_night", "--size", "48",
                       "--iterations", "3", "--out", str(out), "--report", str(report), "--save-every", "2"])
    assert rc == 0
    img = Image.open(out)
    assert max(img.size) == 48 and img.size == (48, 32)  # cat.jpg is 451x300
    data = json.loads(report.read_text())
    for key in ("method", "iterations", "seconds", "content_loss", "style_loss", "size", "history"):
        assert key in data
    assert data["method"] == "gatys" and data["iterations"] == 3 and data["size"] == [32, 48]
    assert len(data["history"]) == 4 and np.isfinite(data["style_loss"])
    assert (tmp_path / "o_iter00002.png").exists()


@pytest.mark.slow  # 11 s
@pytest.mark.usefixtures("builtin_styles")
def test_texture_writes_requested_size(tmp_path):
    out = tmp_path / "t.png"
    assert stylize.main(["--method", "texture", "--style", "wave", "--size", "40", "--iterations", "2",
                         "--out", str(out)]) == 0
    assert max(Image.open(out).size) == 40


@pytest.mark.slow  # 17 s
def test_transform_folder_and_sheet(tmp_path, data_dir):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("cat.jpg", "chicago.jpg"):
        Image.open(data_dir / "content" / name).resize((40, 30)).save(src / name)
    out = tmp_path / "out"
    out.mkdir()
    assert stylize.main([str(src), "--style", "starry_night", "--method", "transform", "--out", str(out)]) == 0
    for name in ("cat_starry_night.png", "chicago_starry_night.png"):
        assert Image.open(out / name).size == (40, 30)
    assert stylize.main([str(src / "cat.jpg"), "--sheet", "--style", "starry_night", "--out", str(out)]) == 0
    assert Image.open(out / "cat_sheet.png").size[0] > 80


def _exit_code(argv):
    try:
        return stylize.main(argv)
    except SystemExit as exc:  # argparse rejects bad values before main's body runs
        return exc.code


def _blank(d):
    Image.new("RGB", (64, 64), "gray").save(d / "ok.png")
    return d / "ok.png"


def _text(d):
    (d / "text.jpg").write_text("not an image")
    return d / "text.jpg"


def _tiny(d):
    Image.new("RGB", (8, 8)).save(d / "tiny.png")
    return d / "tiny.png"


@pytest.mark.parametrize(
    "make_input, options, message",
    [
        (lambda d: d / "missing.jpg", [], "missing.jpg"),
        (_text, [], "text.jpg"),
        (_tiny, [], "tiny.png"),
        (_blank, ["--size", "0"], "--size"),
        (_blank, ["--iterations", "0"], "--iterations"),
        (_blank, ["--style", "nosuchstyle"], "nosuchstyle"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys, make_input, options, message):
    path = make_input(tmp_path)
    out = tmp_path / "result.png"
    painting = tmp_path / "painting.png"  # a style file, so that no case needs a built-in style's download
    Image.fromarray((np.random.default_rng(0).random((48, 48, 3)) * 255).astype(np.uint8)).save(painting)
    defaults = {"--style": str(painting), "--iterations": "2", "--size": "32"}
    defaults.update(dict(zip(options[::2], options[1::2], strict=True)))
    argv = [str(path), "--method", "gatys", "--out", str(out)] + [x for kv in defaults.items() for x in kv]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp files left


@pytest.mark.slow  # 14 s
def test_transform_strength_blend_and_preserve_color(tmp_path, capsys):
    from jaxstyle import color

    rng = np.random.default_rng(0)
    photo = tmp_path / "p.png"
    pixels = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(photo)
    out = tmp_path / "o.png"
    net = ["--method", "transform", "--out", str(out)]
    assert stylize.main([str(photo), "--style", "scream", "--strength", "0", *net]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), pixels)  # strength 0: the photo back
    assert stylize.main([str(photo), "--style", "scream,wave", "--style-weights", "1,0", *net]) == 0
    blended = np.asarray(Image.open(out))
    assert stylize.main([str(photo), "--style", "scream", *net]) == 0
    np.testing.assert_array_equal(blended, np.asarray(Image.open(out)))  # (1, 0) is scream alone
    assert stylize.main([str(photo), "--style", "wave", "--preserve-color", *net]) == 0
    kept = color.rgb_to_ycbcr(np.asarray(Image.open(out)).astype(np.float32) / 255)
    source = color.rgb_to_ycbcr(pixels.astype(np.float32) / 255)
    assert min(np.corrcoef(kept[..., c].ravel(), source[..., c].ravel())[0, 1] for c in (1, 2)) > 0.9
    capsys.readouterr()
    for argv, needle in ((["--style", "scream,wave", "--style-weights", "1"], "one weight per style"),
                         (["--style", "scream", "--style-weights", "1,2"], "several comma-separated"),
                         (["--style", "scream", "--strength", "2"], "between 0 and 1"),
                         (["--method", "gatys", "--style", "wave", "--strength", "0.5"],
                          "works with --method transform")):
        assert _exit_code([str(photo), *argv, "--out", str(tmp_path / "bad.png")]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "bad.png").exists()


@pytest.mark.slow  # 41 s
def test_gatys_multiscale_cli(tmp_path, data_dir):
    out, report = tmp_path / "m.png", tmp_path / "m.json"
    assert stylize.main([_content(data_dir), "--method", "gatys", "--style", "wave", "--size", "64",
                         "--scales", "2", "--scale-step", "2", "--scale-iterations", "2,1", "--out", str(out),
                         "--report", str(report)]) == 0
    assert Image.open(out).size == (64, 43)
    data = json.loads(report.read_text())
    assert len(data["history"]) == 4  # 2 + 1 iterations + the final evaluation
    assert data["scales"] == [[22, 32, 2], [43, 64, 1]] and data["optimizer"] == "lbfgs"
    assert _exit_code([_content(data_dir), "--method", "gatys", "--style", "wave", "--scale-iterations", "2,x",
                       "--out", str(tmp_path / "bad.png")]) == 2


def test_sheet_has_one_labelled_tile_per_style(tmp_path, data_dir):
    from jaxstyle.io import images

    photo = tmp_path / "cat.png"
    Image.open(data_dir / "content" / "cat.jpg").resize((64, 48)).save(photo)
    assert stylize.main([str(photo), "--sheet", "--style", "scream,wave", "--out", str(tmp_path)]) == 0
    sheet = np.asarray(Image.open(tmp_path / "cat_sheet.png").convert("RGB"))
    tiles = [images.load_image(photo)] + [images.load_image(tmp_path / f"cat_{s}.png") for s in ("scream", "wave")]
    expected = images.to_uint8(images.make_grid(tiles, ["photo", "scream", "wave"]))
    # The photo and exactly one tile per style, in order (up to the PNG rounding of the saved tiles).
    assert sheet.shape == expected.shape
    assert np.abs(sheet.astype(int) - expected).max() <= 2
    # The labels are drawn: a band of dark text pixels under the tiles that an unlabelled grid lacks.
    assert images.make_grid(tiles, ["", "", ""]).shape[0] < sheet.shape[0]
    assert (sheet[-20:].min(axis=-1) < 100).sum() > 20


def test_sheet_out_file_writes_that_file(tmp_path, data_dir, capsys):
    """``--sheet --out sheet.png`` writes the sheet to that file (only it); a folder still works."""
    photo = tmp_path / "cat.png"
    Image.fromarray((np.random.default_rng(1).random((32, 40, 3)) * 255).astype(np.uint8)).save(photo)
    out = tmp_path / "out"
    out.mkdir()
    assert stylize.main([str(photo), "--sheet", "--style", "scream,wave", "--out", str(out / "sheet.png")]) == 0
    assert [p.name for p in out.iterdir()] == ["sheet.png"]
    assert stylize.main([str(photo), "--sheet", "--style", "scream,wave", "--out", str(out)]) == 0
    folder_sheet = np.asarray(Image.open(out / "cat_sheet.png").convert("RGB"))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "sheet.png").convert("RGB")), folder_sheet)
    capsys.readouterr()
    other = tmp_path / "dog.png"
    Image.fromarray((np.random.default_rng(2).random((32, 40, 3)) * 255).astype(np.uint8)).save(other)
    for argv, message in (([str(photo), str(other)], "for one photo"), ([str(photo)], "does not exist")):
        target = out / "two.png" if message == "for one photo" else tmp_path / "missing" / "s.png"
        assert stylize.main([*argv, "--sheet", "--style", "scream", "--out", str(target)]) == 2
        assert message in capsys.readouterr().err
        assert not target.exists()



@pytest.mark.usefixtures("builtin_styles")
def test_a_painting_name_defaults_to_the_arbitrary_model_a_model_file_to_its_net():
    """Without --method: a built-in painting's name runs MicroAST with that painting (it won 6 of 6 blind
    pairs against the shipped nets, 2026-12-04), a model file its transform net, no style the nets' sheet."""
    from jaxstyle import run

    assert run.default_method(["scream"]) == "arbitrary"
    assert run.default_method(["scream", "wave"]) == "arbitrary"
    assert run.default_method(["udnie"]) == "arbitrary"
    assert run.default_method(["weights/mine.msgpack"]) == "transform"
    assert run.default_method([]) == "transform"
    assert run.default_method(["scream.msgpack"], style_image=True) == "arbitrary"


def test_transform_and_arbitrary_model_flags_come_from_their_options_dataclasses():
    """--fast is TransformOptions' field (the transform method's options), --arbitrary-model and --decoders
    ArbitraryModelOptions' (choices: the model registry); each options class checks its values."""
    import dataclasses

    from jaxstyle.errors import OptionError
    from jaxstyle.methods import registry
    from jaxstyle.methods.arbitrary import stylizer
    from jaxstyle.methods.arbitrary.method import ArbitraryModelOptions
    from jaxstyle.methods.transform.options import TransformOptions

    assert registry.get("transform").options_class() is TransformOptions
    parser = stylize.build_parser()
    actions = {action.dest: action for action in parser._actions}
    fast = actions["fast"]
    assert fast.option_strings == ["--fast"] and fast.default is False
    assert fast.help == TransformOptions.__dataclass_fields__["fast"].metadata["help"]
    assert tuple(actions["arbitrary_model"].choices) == stylizer.model_names()
    assert actions["decoders"].metavar == "NAME|FILE"
    assert {f.name for f in dataclasses.fields(ArbitraryModelOptions)} == {"arbitrary_model", "decoders"}
    TransformOptions(fast=True).validate()
    with pytest.raises(OptionError) as error:
        TransformOptions(fast="yes").validate()  # type: ignore[arg-type]
    assert error.value.fields == ("fast",)
    assert ArbitraryModelOptions().resolve() == stylizer.DEFAULT_MODEL
    assert ArbitraryModelOptions(decoders="photo").resolve() == "wct"
    with pytest.raises(OptionError):
        ArbitraryModelOptions("microast", decoders="photo").validate()


def test_offline_a_shipped_name_without_its_painting_keeps_the_net(monkeypatch, tmp_path):
    """No styles folder, an empty cache and no network: `--style scream` cannot have the painting MicroAST
    needs, so it runs the shipped net (which needs none) instead of failing, as before the default moved."""
    import urllib.error
    import urllib.request

    from jaxstyle import run
    from jaxstyle.io.styles import STYLES_DIR_ENV

    monkeypatch.delenv(STYLES_DIR_ENV, raising=False)
    monkeypatch.setenv("JAXSTYLE_CACHE", str(tmp_path / "cache"))

    def no_network(url, timeout=None):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert run.default_method(["scream"]) == "transform"
    assert run.default_method(["udnie"]) == "arbitrary"  # no net: the arbitrary model's own error says why
