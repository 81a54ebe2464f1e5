"""The method registry is the one source of the methods: a method registered here (through the public
:func:`jaxstyle.methods.registry.register`, removed after each test) is offered by ``stylize``'s parser
with its options' flags, runs through :func:`jaxstyle.run.stylize_images` and the command line, is on the
web page and runs there, and may stylise video frames. The same for an arbitrary-style model
(:func:`jaxstyle.methods.arbitrary.stylizer.register_model`)."""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from jaxstyle import run, video
from jaxstyle.cli import stylize
from jaxstyle.methods import registry
from jaxstyle.methods.arbitrary import method as arbitrary_method
from jaxstyle.methods.arbitrary import stylizer
from jaxstyle.methods.registry import Method, StyleJob
from jaxstyle.options import option

NAME = "negative"


@dataclasses.dataclass(frozen=True)
class NegativeOptions:
    """The dummy method's options: one generated flag, ``--negative-gain``."""

    negative_gain: float = option(1.0, "negative: how far towards the negative, in [0, 1]", kind="float",
                                  group=NAME)


def build_negative(job: StyleJob) -> registry.Stylizer:
    """``x -> x + gain * (1 - 2x)``: the photo (gain 0) to its negative (gain 1); the style is ignored."""
    gain = float(job.setting("negative_gain", 1.0))

    def stylize_batch(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        return images + gain * (1.0 - 2.0 * images)

    return stylize_batch


@pytest.fixture
def negative() -> Iterator[Method]:
    method = registry.register(Method(
        NAME, "the photo's negative, instant", options=f"{__name__}:NegativeOptions", build=build_negative,
        per_frame=True, web=True, style_images=False, style_names=lambda: ["plain"],
        help_title="negative (a test's method)"))
    try:
        yield method
    finally:
        registry.unregister(NAME)
    assert NAME not in registry.names()


def _photo(height: int = 20, width: int = 24) -> np.ndarray:
    return np.random.default_rng(0).random((height, width, 3), dtype=np.float32)


def test_builtin_methods_are_the_registered_ones():
    assert registry.names() == ("transform", "arbitrary", "gatys", "texture")
    assert stylize.METHODS == registry.names()
    assert video.frame_methods() == ("transform", "arbitrary")
    assert registry.names(web=True) == ("transform", "arbitrary", "gatys")
    assert stylizer.MODELS == stylizer.model_names() == ("microast", "wct", "adain")
    assert arbitrary_method.STYLE_SIZE == stylizer.DEFAULT_STYLE_SIZE
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("gatys"))


def test_a_registered_method_is_offered_and_runs(negative, tmp_path):
    parser = stylize.build_parser()
    args = parser.parse_args(["in.png", "--method", NAME, "--style", "plain", "--negative-gain", "0.25"])
    assert args.method == NAME and args.negative_gain == 0.25
    assert "negative (a test's method)" in parser.format_help() and "--negative-gain" in parser.format_help()
    assert NAME in video.frame_methods() and NAME in stylize.METHODS

    photos = [_photo(), _photo(16, 16), _photo()]
    stylizer_ = run.build_stylizer(NAME, StyleJob(["plain"], settings=vars(args)))
    outputs = {index: output for index, output, _ in run.stylize_images(photos, stylizer_, batch_size=2)}
    for index, photo in enumerate(photos):
        np.testing.assert_allclose(outputs[index], photo + 0.25 * (1 - 2 * photo), atol=1e-6)

    src, out = tmp_path / "photo.png", tmp_path / "out.png"
    Image.fromarray((photos[0] * 255).round().astype(np.uint8)).save(src)
    assert stylize.main([str(src), "--method", NAME, "--style", "plain", "--out", str(out)]) == 0
    written = np.asarray(Image.open(out), np.float32) / 255
    expected = 1 - np.asarray(Image.open(src), np.float32) / 255
    assert np.abs(written - expected).max() <= 1 / 255 + 1e-6


def test_an_unregistered_method_is_gone(negative):
    registry.unregister(NAME)
    try:
        with pytest.raises(SystemExit):
            stylize.build_parser().parse_args(["in.png", "--method", NAME])
        assert NAME not in video.frame_methods()
    finally:
        registry.register(negative)


def test_a_registered_method_is_on_the_web_page_and_runs_there(negative):
    from starlette.testclient import TestClient

    from jaxstyle.serve import create_app, form, page_text

    assert form.METHODS == registry.names(web=True) and NAME in form.METHODS
    assert f'value="{NAME}"' in page_text()
    photo = (_photo(24, 32) * 255).round().astype(np.uint8)
    data = io.BytesIO()
    Image.fromarray(photo).save(data, format="PNG")
    with TestClient(create_app(decoders={}, microast_model={})) as client:  # no weights loaded
        catalogue = client.get("/api/styles").json()
        assert catalogue[NAME] == ["plain"]
        assert catalogue["methods"][NAME] == {"label": "Negative", "strength": False, "style_images": False,
                                              "models": False}
        bad = client.post("/api/jobs", data={"method": NAME, "style": "plain", "strength": "0.5"},
                          files={"photo": ("p.png", data.getvalue(), "image/png")})
        assert bad.status_code == 400 and "strength works with methods" in bad.json()["error"]
        response = client.post("/api/jobs", data={"method": NAME, "style": "plain"},
                               files={"photo": ("p.png", data.getvalue(), "image/png")})
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        for _ in range(200):
            status = client.get(f"/api/jobs/{job_id}").json()
            if status["state"] in ("done", "error"):
                break
            time.sleep(0.05)
        assert status["state"] == "done", status
        result = np.asarray(Image.open(io.BytesIO(client.get(f"/api/jobs/{job_id}/result.png").content)))
    assert np.abs(result.astype(int) - (255 - photo.astype(int))).max() <= 1


def test_a_registered_arbitrary_model_is_offered_and_runs():
    def make_flat(paintings, *, style_weights, strength, **unused):
        mean = np.mean([p.reshape(-1, 3).mean(0) for p in paintings], axis=0)

        def stylize_batch(images: np.ndarray) -> np.ndarray:
            return (1 - strength) * images + strength * np.broadcast_to(mean, images.shape)

        return stylize_batch

    from jaxstyle.serve import page_text

    stylizer.register_model(stylizer.Model("flat", make_flat, label="Flat: the painting's mean colour"))
    try:
        assert "flat" in stylizer.MODELS
        assert '<option value="flat">Flat: the painting&#x27;s mean colour</option>' in page_text()
        args = stylize.build_parser().parse_args(["in.png", "--arbitrary-model", "flat"])
        assert args.arbitrary_model == "flat"
        painting = np.full((20, 20, 3), 0.5, np.float32)
        job = StyleJob([painting], strength=0.5, settings={"arbitrary_model": "flat"})
        photo = _photo()
        output = run.stylize_image(photo, run.build_stylizer("arbitrary", job))
        np.testing.assert_allclose(output, 0.5 * photo + 0.25, atol=1e-6)
        with pytest.raises(Exception, match="decoders and levels work with the wct and adain models, not flat"):
            stylizer.resolve_model("flat", decoder_options=True)
    finally:
        stylizer.unregister_model("flat")
    assert stylizer.model_names() == ("microast", "wct", "adain")
