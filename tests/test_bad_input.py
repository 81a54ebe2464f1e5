"""Bad input, as one matrix: every case through ``bin/stylize``, ``bin/train`` and the Python API.

An invalid case must end with exit code 2 (the API: one of the typed errors of ``jaxstyle.errors``)
and exactly one line on stderr that names the file (or option) and the problem, with no traceback,
and must leave no output file and no temporary file behind. Valid but unusual images must work end
to end. The resource limits (``--max-pixels``) are checked before anything is allocated.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest
from helpers.imagefiles import UNUSUAL, bomb_png, noise, truncated
from helpers.torchfile import evil_reduce, legacy_bytes
from PIL import Image

import jaxstyle
from jaxstyle import data, vgg_weights
from jaxstyle.cli import stylize as stylize_cli
from jaxstyle.cli import train as train_cli
from jaxstyle.errors import ImageError, JaxstyleError
from jaxstyle.io import images
from jaxstyle.methods.transform import net as transform

REPO = Path(__file__).resolve().parents[1]
ENTRIES = ("stylize", "train", "api")


@pytest.fixture(scope="module")
def tiny_params() -> dict:
    """A transform net small enough to run in milliseconds (width 8, one residual block)."""
    return jax.jit(transform.init_params, static_argnums=(1, 2))(jax.random.key(0), 8, 1)  # one compile


@dataclasses.dataclass
class Setup:
    """Valid inputs for everything but the case under test, and the folders it must leave clean."""

    root: Path
    model: Path  # the tiny transform net (.msgpack)
    photo: Path  # 48x32 RGB PNG
    style: Path  # 32x32 RGB PNG
    data: Path  # a folder of two 40x40 training photos
    out: Path  # the output folder: must be empty after an invalid case
    workdir: Path  # bin/train's --workdir


@pytest.fixture
def setup(tmp_path: Path, tiny_params: dict) -> Setup:
    model = transform.save_transform(tmp_path / "tiny.msgpack", tiny_params, {"style": "test"})
    photo, style = tmp_path / "photo.png", tmp_path / "style.png"
    Image.fromarray(noise(32, 48, seed=10)).save(photo)
    Image.fromarray(noise(32, 32, seed=11)).save(style)
    (tmp_path / "data").mkdir()
    for i in range(2):
        Image.fromarray(noise(40, 40, seed=20 + i)).save(tmp_path / "data" / f"{i}.png")
    (tmp_path / "out").mkdir()
    return Setup(tmp_path, model, photo, style, tmp_path / "data", tmp_path / "out", tmp_path / "work")


# --------------------------------------------------------------------------------------------
# The cases. Each builds its bad input in ``s.root`` and says how every entry point meets it.


@dataclasses.dataclass
class Bad:
    """One invalid input. ``stylize`` / ``train``: options that replace the valid defaults (see
    ``_stylize_argv`` / ``_train_argv``); ``api``: a call that must raise a ``JaxstyleError``.
    ``subject`` and ``problem`` are regexes the one-line message must both match."""

    subject: str
    problem: str
    stylize: dict[str, Any]
    train: dict[str, Any]
    api: Callable[[], Any]
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    marker: Path | None = None  # a file the payload would create: must not exist afterwards


def _image_case(path: Path, subject: str, problem: str, api: Callable[[], Any] | None = None) -> Bad:
    """A bad image file: the content photo of bin/stylize, the style image of bin/train, and
    (unless ``api`` says otherwise) ``jaxstyle.load_image``."""
    return Bad(subject, problem, {"input": path}, {"--style": path}, api or (lambda: jaxstyle.load_image(path)))


def _missing_file(s: Setup) -> Bad:
    return _image_case(s.root / "missing.jpg", r"missing\.jpg", r"no such file|not a file")


def _directory(s: Setup) -> Bad:
    folder = s.root / "folder.jpg"
    folder.mkdir()
    return _image_case(folder, r"folder\.jpg", r"folder|no images found")


def _zero_bytes(s: Setup) -> Bad:
    path = s.root / "empty.jpg"
    path.write_bytes(b"")
    return _image_case(path, r"empty\.jpg", r"empty \(0 bytes\)")


def _text_as_jpeg(s: Setup) -> Bad:
    path = s.root / "notes.jpg"
    path.write_text("this is not\nan image\n")
    return _image_case(path, r"notes\.jpg", r"not an image")


def _truncated_jpeg(s: Setup) -> Bad:
    return _image_case(truncated(s.root / "cut.jpg", "JPEG"), r"cut\.jpg", r"truncated")


def _truncated_png(s: Setup) -> Bad:
    return _image_case(truncated(s.root / "cut.png", "PNG"), r"cut\.png", r"truncated")


def _bomb(s: Setup) -> Bad:
    path = bomb_png(s.root / "bomb.png")  # 70 bytes claiming 50000x50000: refused from the header
    return _image_case(path, r"bomb\.png", r"50000x50000 = 2,500,000,000 pixels.*--max-pixels.*--size")


def _tiny_image(name: str, size: tuple[int, int]) -> Callable[[Setup], Bad]:
    """An image with a side below 16 px (VGG pools four times). The API keeps the size (``size=None``)."""

    def case(s: Setup) -> Bad:
        path = s.root / name
        Image.fromarray(noise(size[1], size[0], seed=3)).save(path)
        return _image_case(path, rf"{re.escape(name)}|{size[0]}x{size[1]}", r"at least 16",
                           _gatys(s, path, size=None))

    return case


def _gatys(s: Setup, content: Path | None = None, **options: Any) -> Callable[[], Any]:
    """``jaxstyle.gatys`` on the valid photo (or ``content``) and style at 32 px, 1 iteration, with ``options``."""

    def call() -> Any:
        photo, style = images.load_image(content or s.photo), images.load_image(s.style)
        return jaxstyle.gatys(photo, style, **{"size": 32, "iterations": 1, **options})

    return call


def _size(value: int) -> Callable[[Setup], Bad]:
    problems = {0: r"positive", 8: r"at least 16", 10**6: r"more than the limit of 50,000,000.*--max-pixels"}

    def case(s: Setup) -> Bad:
        return Bad(r"--(image-)?size", problems[value], {"--size": value}, {"--image-size": value},
                   _gatys(s, size=value))

    return case


def _iterations(value: int) -> Callable[[Setup], Bad]:
    def case(s: Setup) -> Bad:
        gatys = {"--method": "gatys", "--style": s.style, "--size": 32, "--iterations": value}
        return Bad(r"--(iterations|steps)", r"positive|between 1 and 100,000|at most 10,000,000", gatys,
                   {"--steps": value}, _gatys(s, iterations=value))

    return case


def _output_folder(kind: str) -> Callable[[Setup], Bad]:
    def case(s: Setup) -> Bad:
        folder = s.out / kind
        if kind == "read_only":
            folder.mkdir()
            folder.chmod(0o500)
            if os.access(folder, os.W_OK):
                folder.chmod(0o700)
                pytest.skip("chmod does not stop this user (root) from writing")
        target = folder / "result.png"
        problem = "does not exist" if kind == "missing" else "not writable"
        return Bad(kind, problem, {"--out": target}, {"--out": folder / "model.msgpack"},
                   lambda: images.save_image(target, np.zeros((16, 16, 3), np.float32)))

    return case


def _model_case(path: Path, subject: str, problem: str) -> Bad:
    return Bad(subject, problem, {"--style": path}, {"--init-from": path}, lambda: jaxstyle.load_transform(path))


def _corrupt_model(s: Setup) -> Bad:
    path = s.root / "cut.msgpack"
    path.write_bytes(s.model.read_bytes()[: s.model.stat().st_size // 2])
    return _model_case(path, r"cut\.msgpack", r"corrupt or truncated")


def _foreign_model(s: Setup) -> Bad:
    """A well-formed model file whose down2 conv has 12 output channels instead of 16."""
    params, _ = transform.read_transform(s.model)
    conv = params["params"]["down2"]["conv"]["conv"]
    conv["kernel"], conv["bias"] = conv["kernel"][..., :12], conv["bias"][:12]
    path = transform.save_transform(s.root / "other.msgpack", params, {})
    return _model_case(path, r"other\.msgpack", r"another architecture")


def _vgg_case(path: Path, subject: str, problem: str, api: Callable[[], Any], marker: Path, s: Setup) -> Bad:
    """Poisoned VGG weights (``$JAXSTYLE_VGG_WEIGHTS``) met by Gatys and by training."""
    gatys = {"--method": "gatys", "--style": s.style, "--size": 32, "--iterations": 1}
    return Bad(subject, problem, gatys, {}, api, env={vgg_weights.ENV_VAR: str(path)}, marker=marker)


def _evil_npz(s: Setup) -> Bad:
    """An npz whose ``conv1_1/w`` is an object array: its pickle would run ``os.system``."""
    marker, path = s.root / "pwned-npz", s.root / "evil.npz"
    header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
    with zipfile.ZipFile(path, "w") as zf, zf.open("conv1_1/w.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, header)
        member.write(b"\x80\x02" + evil_reduce(marker) + b".")
    return _vgg_case(path, r"evil\.npz", r"pickle", lambda: jaxstyle.load_vgg_params(path), marker, s)


def _evil_torch(s: Setup) -> Bad:
    """A legacy torch file whose state-dict pickle names ``os.system`` (ported with bin/port-weights)."""
    marker, path = s.root / "pwned-torch", s.root / "evil.bin"
    key = b"block1_conv1_W_q"
    main = b"\x80\x02}X" + len(key).to_bytes(4, "little") + key + evil_reduce(marker) + b"s."
    path.write_bytes(legacy_bytes({}, main=main))
    return _vgg_case(path, r"evil\.bin", r"pickle|forbidden global 'os\.system'",
                     lambda: vgg_weights.port(path, s.out / "vgg19.npz"), marker, s)


CASES: dict[str, Callable[[Setup], Bad]] = {
    "missing_file": _missing_file,
    "directory": _directory,
    "zero_bytes": _zero_bytes,
    "text_named_jpg": _text_as_jpeg,
    "truncated_jpeg": _truncated_jpeg,
    "truncated_png": _truncated_png,
    "decompression_bomb": _bomb,
    "one_pixel": _tiny_image("one.png", (1, 1)),
    "smaller_than_network": _tiny_image("small.png", (40, 15)),
    "size_0": _size(0),
    "size_8": _size(8),
    "size_1e6": _size(10**6),
    "iterations_0": _iterations(0),
    "iterations_-1": _iterations(-1),
    "iterations_1e9": _iterations(10**9),
    "out_in_missing_folder": _output_folder("missing"),
    "out_in_read_only_folder": _output_folder("read_only"),
    "truncated_model": _corrupt_model,
    "model_of_other_architecture": _foreign_model,
    "vgg_npz_with_pickle": _evil_npz,
    "vgg_torch_forbidden_global": _evil_torch,
}


# --------------------------------------------------------------------------------------------
# Running one case through one entry point.


def _flatten(options: dict[str, Any]) -> list[str]:
    return [str(x) for key, value in options.items() for x in (key, value)]


def _stylize_argv(bad: Bad, s: Setup) -> list[str]:
    options = {"--style": s.model, "--out": s.out / "result.png", **bad.stylize}
    return [str(options.pop("input", s.photo)), *_flatten(options)]


def _train_argv(bad: Bad, s: Setup) -> list[str]:
    options = {"--style": s.style, "--data": s.data, "--workdir": s.workdir, "--out": s.out / "model.msgpack",
               "--steps": 1, "--batch-size": 1, "--image-size": 16, "--style-size": 32, "--width": 8,
               **bad.train}
    return _flatten(options)


def _exit_code(main: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse refuses bad values before main's body runs
        return exc.code


def _field_subject(subject: str) -> str:
    """A subject or problem regex as the Python API says it: option fields, not flags (``--(image-)?size``
    -> ``(image_)?size``); the command line shows the flags."""
    return re.sub(r"--([a-z(][a-z()|?-]*)", lambda m: m.group(1).replace("-", "_"), subject)


def _check_message(message: str, bad: Bad, api: bool = False) -> None:
    lines = message.strip().splitlines()
    assert len(lines) == 1, message
    assert "Traceback" not in message
    subject = _field_subject(bad.subject) if api else bad.subject
    assert re.search(subject, lines[0]), (subject, lines[0])
    problem = _field_subject(bad.problem) if api else bad.problem
    assert re.search(problem, lines[0], re.IGNORECASE), (problem, lines[0])


def _check_nothing_written(bad: Bad, s: Setup) -> None:
    leftovers = [p for p in s.out.rglob("*") if p.is_file()]
    assert not leftovers, leftovers  # neither an output nor a hidden temporary file
    assert not (s.workdir / "checkpoints").exists()
    if bad.marker is not None:
        assert not bad.marker.exists(), "the pickle payload ran"


#: Every case through every entry point. One is slow (23 s in a full run on 2026-12-02; the others ~1 s):
#: the pickled VGG through ``train``.
BAD_INPUT_CASES = [
    pytest.param(name, entry, marks=pytest.mark.slow if (name, entry) == ("vgg_npz_with_pickle", "train") else ())
    for entry in ENTRIES
    for name in CASES
]


@pytest.mark.parametrize(("name", "entry"), BAD_INPUT_CASES)
def test_bad_input(name: str, entry: str, setup: Setup, capsys, monkeypatch) -> None:
    bad = CASES[name](setup)
    for key, value in bad.env.items():
        monkeypatch.setenv(key, value)
    if entry == "api":
        with pytest.raises(JaxstyleError) as info:
            bad.api()
        _check_message(str(info.value), bad, api=True)
    else:
        main, argv = (stylize_cli.main, _stylize_argv) if entry == "stylize" else (train_cli.main, _train_argv)
        assert _exit_code(main, argv(bad, setup)) == 2
        _check_message(capsys.readouterr().err, bad)
    _check_nothing_written(bad, setup)


@pytest.mark.parametrize("name", ["truncated_jpeg", "decompression_bomb", "size_1e6", "vgg_torch_forbidden_global"])
def test_bad_input_through_bin_stylize(name: str, setup: Setup) -> None:
    """A real process: exit 2 and one line on stderr; no traceback reaches the user."""
    bad = CASES[name](setup)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **bad.env}
    proc = subprocess.run([str(REPO / "bin" / "stylize"), *_stylize_argv(bad, setup)], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    _check_message(proc.stderr, bad)
    _check_nothing_written(bad, setup)


def test_evil_npz_payload_is_live_with_pickle_allowed(setup: Setup) -> None:
    """Control: the npz above really runs its command when loaded with ``allow_pickle=True``."""
    bad = _evil_npz(setup)
    with np.load(bad.env[vgg_weights.ENV_VAR], allow_pickle=True) as npz:
        npz["conv1_1/w"]
    assert bad.marker.exists()


def test_save_transform_to_missing_folder_raises_typed_error(tmp_path: Path, tiny_params: dict) -> None:
    with pytest.raises(JaxstyleError, match="missing/model.msgpack: cannot write"):
        transform.save_transform(tmp_path / "missing" / "model.msgpack", tiny_params, {})
    assert not (tmp_path / "missing").exists()


# --------------------------------------------------------------------------------------------
# Valid but unusual inputs work end to end.


def test_help_says_how_images_are_read(capsys) -> None:
    with pytest.raises(SystemExit):
        stylize_cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "composited over white" in text and "EXIF orientation is applied" in text
    assert "at most 100,000" in text and "default: 50,000,000" in text


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_unusual_image_works_end_to_end(name: str, setup: Setup, capsys) -> None:
    suffix, content = UNUSUAL[name]()
    path = setup.root / f"{name}{suffix}"
    path.write_bytes(content)
    out = setup.out / "result.png"
    assert stylize_cli.main([str(path), "--style", str(setup.model), "--out", str(out)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    with Image.open(out) as result:
        assert result.mode == "RGB"
        assert result.size == ((24, 40) if name == "exif_rotated_jpeg" else (40, 24))  # upright: rotated
    assert [p.name for p in setup.out.iterdir()] == ["result.png"]


# --------------------------------------------------------------------------------------------
# Resource limits.


def test_max_pixels_refuses_inputs_and_sizes_and_says_what_to_do(setup: Setup, capsys) -> None:
    base = [str(setup.photo), "--style", str(setup.model), "--out", str(setup.out / "result.png")]
    assert stylize_cli.main([*base, "--max-pixels", "1000"]) == 2  # the photo has 1,536
    err = capsys.readouterr().err
    assert "photo.png" in err and "48x32 = 1,536 pixels" in err and "--max-pixels" in err and "--size" in err
    assert stylize_cli.main([*base, "--max-pixels", "2000", "--size", "64"]) == 2  # 64x43 after resizing
    err = capsys.readouterr().err
    assert "64x43 = 2,752 pixels" in err and "--max-pixels" in err and "--size" in err
    assert stylize_cli.main([*base, "--max-pixels", "2000"]) == 0
    with Image.open(setup.out / "result.png") as result:
        assert result.size == (48, 32)


def test_resize_limit_is_checked_before_allocating() -> None:
    img = np.zeros((30, 40, 3), np.float32)
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match="more than the limit"):
            images.fit_long_side(img, 10**6)  # 1e6 x 750,000 float32 RGB would be 9 TB
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_huge_training_photo_is_skipped_and_counted(tmp_path: Path, caplog) -> None:
    Image.fromarray(noise(40, 40, seed=30)).save(tmp_path / "good.png")
    bomb_png(tmp_path / "huge.png")
    pipeline = data.make_pipeline(str(tmp_path), batch_size=2, image_size=16, seed=0, num_threads=0)
    batch = next(iter(pipeline))
    assert batch.shape == (2, 16, 16, 3)
    assert pipeline.stats["skipped"] == 1
    assert any("huge.png" in r.getMessage() and "pixels" in r.getMessage() for r in caplog.records)


def test_train_help_states_its_limits(capsys) -> None:
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "at most 10,000,000" in text and "default: 50,000,000" in text and "skipped and counted" in text


def test_bad_init_from_leaves_no_workdir(setup: Setup, capsys) -> None:
    """A corrupt --init-from is refused before train.run writes --workdir/config.json, so the
    corrected command is not then refused as "a checkpoint of a different model"."""
    bad = _corrupt_model(setup)
    assert train_cli.main(_train_argv(bad, setup)) == 2
    capsys.readouterr()
    assert not setup.workdir.exists()
