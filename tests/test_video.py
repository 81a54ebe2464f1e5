"""Video stylisation: probe, stylize_video round trips (frames, size, audio), smoothing, bad input, bin/stylize."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import imageio_ffmpeg
import jax
import numpy as np
import pytest
from PIL import Image

from jaxstyle import video
from jaxstyle.cli import stylize
from jaxstyle.errors import OptionError, VideoError
from jaxstyle.methods.transform import net as transform

FRAMES, WIDTH, HEIGHT, FPS = 10, 64, 48, 10


def _write_clip(path: Path, width: int = WIDTH, height: int = HEIGHT, pix_fmt: str = "yuv420p", seed: int = 0) -> Path:
    """A square moving right over a two-tone background, with fresh noise in every frame (flicker)."""
    rng = np.random.default_rng(seed)
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=FPS, pix_fmt_out=pix_fmt, quality=None,
                                         macro_block_size=1, ffmpeg_log_level="quiet", output_params=["-crf", "10"])
    writer.send(None)
    for t in range(FRAMES):
        frame = np.full((height, width, 3), 90.0, np.float32)
        frame[:, : width // 2] = (200, 120, 60)
        frame[10:26, 4 + 3 * t : 20 + 3 * t] = (30, 200, 90)
        frame += rng.normal(0.0, 8.0, frame.shape)
        writer.send(np.clip(frame, 0, 255).astype(np.uint8))
    writer.close()
    return path


def _ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Clips (silent, with audio, odd-sized), an audio-only file and a tiny transform net (width 8, one block)."""
    root = tmp_path_factory.mktemp("media")
    clip = _write_clip(root / "clip.mp4")
    _ffmpeg("-i", str(clip), "-f", "lavfi", "-i", f"sine=frequency=440:duration={FRAMES / FPS}",
            "-c:v", "copy", "-c:a", "aac", "-shortest", str(root / "talk.mp4"))
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(root / "song.mp4"))
    _write_clip(root / "odd.mkv", 65, 47, pix_fmt="yuv444p")  # x264 takes odd sides in 4:4:4 only
    params = jax.jit(transform.init_params, static_argnums=(1, 2))(jax.random.key(0), 8, 1)
    model = transform.save_transform(root / "tiny.msgpack", params, {"style": "tiny"})
    return {"clip": clip, "talk": root / "talk.mp4", "song": root / "song.mp4", "odd": root / "odd.mkv",
            "model": model}


@pytest.fixture(scope="module")
def model(media: dict[str, Path]) -> dict:
    return transform.load_transform(media["model"])


def _frames(path: Path) -> np.ndarray:
    return np.stack(list(video.iter_frames(path)))


def _leftovers(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith(".")]


# --------------------------------------------------------------------------------------------
# Pure functions


def test_flicker_measures_mean_frame_change() -> None:
    still = np.full((3, 4, 4, 3), 0.5, np.float32)
    assert video.flicker(still) == 0.0 and video.flicker(still[:1]) == 0.0
    steps = np.stack([np.full((4, 4, 3), v, np.float32) for v in (0.0, 0.2, 0.1)])
    assert video.flicker(steps) == pytest.approx(0.15)


def test_smooth_frames_steadies_still_regions_and_follows_motion() -> None:
    rng = np.random.default_rng(0)
    inputs = np.zeros((6, 8, 8, 3), np.float32)
    inputs[:, :, 4:] = np.arange(6, dtype=np.float32)[:, None, None, None] * 0.3  # right half: big changes
    stylised = rng.random((6, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(video.smooth_frames(stylised, inputs, 0.0), stylised)  # 0: off
    out = video.smooth_frames(stylised, inputs, 0.8)
    assert out.dtype == np.float32 and out.shape == stylised.shape
    np.testing.assert_array_equal(out[0], stylised[0])
    assert video.flicker(out[:, :, :4]) < 0.5 * video.flicker(stylised[:, :, :4])  # still: steadied
    np.testing.assert_allclose(out[1:, :, 4:], stylised[1:, :, 4:], atol=0.01)  # moving: the new frame
    # In chunks, carrying the previous frame over, the result is the same as in one go.
    head = video.smooth_frames(stylised[:4], inputs[:4], 0.8)
    tail = video.smooth_frames(stylised[4:], inputs[4:], 0.8, prev_output=head[-1], prev_input=inputs[3])
    np.testing.assert_allclose(np.concatenate([head, tail]), out, atol=1e-6)
    with pytest.raises(OptionError, match="^smooth must be at least 0"):
        video.smooth_frames(stylised, inputs, 1.0)


def test_is_video_path_and_working_shape() -> None:
    assert video.is_video_path("a/b.MP4") and video.is_video_path("x.webm") and not video.is_video_path("x.png")
    assert video.working_shape((47, 65), None, None) == (47, 65)
    assert video.even_shape((47, 65)) == (46, 64)
    assert video.working_shape((480, 640), 33, None) == (25, 33)
    with pytest.raises(OptionError, match="at least 16"):
        video.working_shape((480, 640), 20, None)


# --------------------------------------------------------------------------------------------
# probe and stylize_video


def test_probe(media: dict[str, Path]) -> None:
    info = video.probe(media["clip"])
    assert (info.width, info.height, info.fps, info.frames, info.has_audio) == (WIDTH, HEIGHT, FPS, FRAMES, False)
    talk = video.probe(media["talk"])
    assert talk.has_audio and talk.audio_codec == "aac"


def test_round_trip_keeps_frames_size_and_audio(media: dict[str, Path], model: dict, tmp_path: Path) -> None:
    out = tmp_path / "talk_tiny.mp4"
    calls: list[int] = []
    report = video.stylize_video(media["talk"], out, model, batch_size=4, on_frames=calls.append)
    assert calls == [4, 4, 2]
    assert report["frames"] == FRAMES and report["size"] == [HEIGHT, WIDTH] and report["fps"] == FPS
    assert report["audio_kept"] and report["audio"] == "copied aac"
    frames = _frames(out)
    assert frames.shape == (FRAMES, HEIGHT, WIDTH, 3) and frames.dtype == np.uint8
    info = video.probe(out)
    assert info.has_audio and info.fps == FPS
    assert report["flicker_in"] > 0.01 and report["flicker_out"] > 0.0
    assert _leftovers(tmp_path) == []


def test_odd_sides_lose_one_pixel(media: dict[str, Path], model: dict, tmp_path: Path) -> None:
    out = tmp_path / "odd.mkv"
    report = video.stylize_video(media["odd"], out, model)
    assert report["source_size"] == [47, 65] and report["size"] == [46, 64] and not report["audio_kept"]
    assert _frames(out).shape == (FRAMES, 46, 64, 3)


def test_smoothing_lowers_flicker_and_output_is_deterministic(media: dict[str, Path], model: dict,
                                                              tmp_path: Path) -> None:
    plain = video.stylize_video(media["clip"], tmp_path / "a.mp4", model)
    again = video.stylize_video(media["clip"], tmp_path / "b.mp4", model)
    smooth = video.stylize_video(media["clip"], tmp_path / "c.mp4", model, smooth=0.6)
    np.testing.assert_array_equal(_frames(tmp_path / "a.mp4"), _frames(tmp_path / "b.mp4"))
    assert plain["flicker_out"] == again["flicker_out"] and plain["flicker_in"] == smooth["flicker_in"]
    assert smooth["flicker_out"] < 0.8 * plain["flicker_out"], (plain, smooth)
    assert video.flicker(_frames(tmp_path / "c.mp4") / 255.0) < video.flicker(_frames(tmp_path / "a.mp4") / 255.0)


def test_interrupt_leaves_nothing(media: dict[str, Path], model: dict, tmp_path: Path) -> None:
    def stop(count: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        video.stylize_video(media["talk"], tmp_path / "out.mp4", model, on_frames=stop)
    assert os.listdir(tmp_path) == []


def _audio_only(media: dict[str, Path], d: Path) -> Path:
    return media["song"]


def _png_as_mp4(media: dict[str, Path], d: Path) -> Path:
    Image.new("RGB", (64, 48), "red").save(d / "photo.mp4", format="PNG")
    return d / "photo.mp4"


def _text_as_mp4(media: dict[str, Path], d: Path) -> Path:
    (d / "notes.mp4").write_text("not a video\n" * 20)
    return d / "notes.mp4"


def _truncated(media: dict[str, Path], d: Path) -> Path:
    (d / "cut.mp4").write_bytes(media["clip"].read_bytes()[:1500])
    return d / "cut.mp4"


def _xyz(media: dict[str, Path], d: Path) -> Path:
    (d / "clip.xyz").write_bytes(media["clip"].read_bytes())
    return d / "clip.xyz"


BAD_INPUTS = [
    (_audio_only, "no video stream"),
    (_png_as_mp4, "not a video container"),
    (_text_as_mp4, "not a readable video"),
    (_truncated, "not a readable video"),
    (_xyz, "unsupported video format '.xyz'"),
    (lambda media, d: d / "missing.mp4", "no such file"),
]


@pytest.mark.parametrize("make_input, message", BAD_INPUTS)
def test_bad_video_raises_one_line_error(media: dict[str, Path], model: dict, tmp_path: Path, make_input,
                                         message: str) -> None:
    src = make_input(media, tmp_path)
    out = tmp_path / "out" / "result.mp4"
    out.parent.mkdir()
    with pytest.raises(VideoError) as err:
        video.stylize_video(src, out, model)
    text = str(err.value)
    assert message in text and str(src) in text and "\n" not in text, text
    assert os.listdir(out.parent) == []


# --------------------------------------------------------------------------------------------
# bin/stylize


def _exit_code(argv: list[str]) -> int:
    try:
        return stylize.main(argv)
    except SystemExit as exc:  # argparse rejects bad values before main's body runs
        return exc.code


def test_cli_stylizes_a_video(media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "r.json"
    assert stylize.main([str(media["talk"]), "--style", str(media["model"]), "--smooth", "0.5",
                         "--batch-size", "4", "--report", str(report)]) == 0
    out = tmp_path / "talk_tiny.mp4"  # default: <stem>_<style>.mp4 in the current folder
    line = capsys.readouterr().out.strip()
    assert len(line.splitlines()) == 1 and "10 frames at 10 fps" in line and "flicker" in line, line
    assert "audio copied aac" in line
    assert _frames(out).shape == (FRAMES, HEIGHT, WIDTH, 3) and video.probe(out).has_audio
    data = json.loads(report.read_text())
    assert data["frames"] == FRAMES and data["smooth"] == 0.5 and data["style"] == str(media["model"])
    assert {"flicker_in", "flicker_out", "audio_kept", "seconds", "machine"} <= set(data)
    sized = tmp_path / "small.mkv"
    assert stylize.main([str(media["clip"]), "--style", str(media["model"]), "--size", "32", "--out", str(sized)]) == 0
    assert _frames(sized).shape == (FRAMES, 24, 32, 3)
    assert "no audio" in capsys.readouterr().out


@pytest.mark.parametrize(
    "make_input, options, message",
    [
        *[(make, [], msg.split(" '")[0]) for make, msg in BAD_INPUTS if make is not _xyz],
        (lambda media, d: media["clip"], ["--method", "gatys"], "--method transform"),
        (lambda media, d: media["clip"], ["--method", "texture"], "--method transform"),
        (lambda media, d: media["clip"], ["--smooth", "1"], "--smooth"),
        (lambda media, d: media["clip"], ["--out", "{d}/result.xyz"], "cannot write a video as '.xyz'"),
        (lambda media, d: media["clip"], ["--out", "{d}/result.png"], "cannot write a video as '.png'"),
        (lambda media, d: media["clip"], ["--max-pixels", "1000"], "more than the limit"),
        (lambda media, d: media["clip"], ["--size", "8"], "at least 16"),
        (lambda media, d: media["clip"], ["--sheet"], "--sheet"),
    ],
)
def test_cli_bad_video_exits_2_with_one_line(media: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str], make_input, options: list[str],
                                             message: str) -> None:
    src = make_input(media, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    options = [o.format(d=out) for o in options]
    argv = [str(src), "--style", str(media["model"]), *options]
    if "--out" not in options:
        argv += ["--out", str(out / "result.mp4")]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err, err
    assert os.listdir(out) == [] and _leftovers(tmp_path) == []


def test_cli_video_alone_and_smooth_with_video_only(media: dict[str, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "p.png"
    Image.new("RGB", (32, 32), "gray").save(photo)
    for argv, needle in (([str(photo), "--smooth", "0.5"], "--smooth works with a video"),
                         ([str(media["clip"]), str(media["clip"])], "one video per run"),
                         ([str(photo), str(media["clip"])], "one video per run")):
        assert _exit_code([*argv, "--style", str(media["model"]), "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err
    assert sorted(os.listdir(tmp_path)) == ["p.png"]
    before = media["clip"].read_bytes()
    assert _exit_code([str(media["clip"]), "--style", str(media["model"]), "--out", str(media["clip"])]) == 2
    assert "overwrite the input" in capsys.readouterr().err and media["clip"].read_bytes() == before


def test_cli_arbitrary_video_is_steady_with_smooth(media: dict[str, Path], tmp_path: Path, data_dir: Path) -> None:
    """A video with a painting file: the arbitrary method (one style preparation for every frame); --smooth
    lowers the flicker of its output too, and the clip keeps its frame count and size."""
    from jaxstyle.cli import stylize
    from jaxstyle.methods.arbitrary import vgg_decoders

    decoders = vgg_decoders.save_decoders(tmp_path / "dec.msgpack",
                                       vgg_decoders.init_decoders(jax.random.key(0), (1, 2), width=0.25), {})
    base = [str(media["clip"]), "--style", str(data_dir / "styles" / "wave.jpg"), "--decoders", str(decoders),
            "--style-size", "64"]
    assert stylize.main([*base, "--out", str(tmp_path / "plain.mp4")]) == 0
    assert stylize.main([*base, "--smooth", "0.6", "--out", str(tmp_path / "smooth.mp4")]) == 0
    plain, smooth = _frames(tmp_path / "plain.mp4"), _frames(tmp_path / "smooth.mp4")
    assert plain.shape == smooth.shape == _frames(media["clip"]).shape
    assert video.flicker(smooth / 255.0) < video.flicker(plain / 255.0)


def test_cli_microast_video_is_steady_with_smooth(media: dict[str, Path], tmp_path: Path, data_dir: Path) -> None:
    """A video with a painting file and the default arbitrary model (MicroAST): the painting's code is
    prepared once for every frame; --smooth lowers the flicker; frame count and size are kept."""
    from jaxstyle.cli import stylize

    base = [str(media["clip"]), "--style", str(data_dir / "styles" / "wave.jpg"), "--style-size", "64"]
    assert stylize.main([*base, "--out", str(tmp_path / "plain.mp4")]) == 0
    assert stylize.main([*base, "--smooth", "0.6", "--out", str(tmp_path / "smooth.mp4")]) == 0
    plain, smooth = _frames(tmp_path / "plain.mp4"), _frames(tmp_path / "smooth.mp4")
    assert plain.shape == smooth.shape == _frames(media["clip"]).shape
    assert video.flicker(smooth / 255.0) < video.flicker(plain / 255.0)
