"""Video in and out: probe a clip, stylise it frame by frame with a transform net, measure flicker.

A frame is what an image is everywhere else in jaxstyle (``float32[H, W, 3]``, RGB in ``[0, 1]``,
see :mod:`jaxstyle.io.images`); a clip in memory is ``float32[T, H, W, 3]``. Decoded frames arrive as
``uint8[H, W, 3]``. ffmpeg (the binary bundled with ``imageio-ffmpeg``) decodes and encodes; the
clip is streamed in batches, never held whole in memory.

Every problem with a file becomes a :class:`~jaxstyle.errors.VideoError` with a one-line message
that names the file; ffmpeg's multi-line log never reaches the user.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
import re
import subprocess
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np

from jaxstyle import atomic
from jaxstyle.errors import ImageError, OptionError, VideoError, one_line
from jaxstyle.io import images
from jaxstyle.nn.vgg import MIN_SIDE
from jaxstyle.progress import Progress

#: File extensions read as videos (by suffix, case-insensitive).
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm"})
#: Extensions a stylised video can be written to: containers that hold H.264 video and AAC audio.
OUTPUT_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
#: ffmpeg demuxers accepted as video containers. Anything else is refused, even when ffmpeg could
#: read it: a PNG renamed to .mp4 decodes as a one-frame "video" through ``png_pipe``.
_DEMUXERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"})
#: Source audio codecs copied as they are (all four output containers hold them); others become AAC.
_COPY_AUDIO = frozenset({"aac", "mp3"})
#: Frame rate used when ffmpeg reports none.
FALLBACK_FPS = 25.0
#: Motion scale of :func:`smooth_frames`: a mean input change of ``tau`` per pixel cuts the carry-over by e.
SMOOTH_TAU = 0.05
#: x264 constant rate factor: 18 is near-transparent; stylised frames are full of fine texture.
CRF = 18
_FFMPEG_TIMEOUT_S = 120
_PIXELS_ADVICE = "pass a larger max_pixels if the machine has the memory (and a smaller size for smaller frames)"

# imageio-ffmpeg logs warnings (resized reads of rotated clips, killed processes) to stderr;
# jaxstyle reports problems itself, one line each.
logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)
# imageio-ffmpeg starts ffmpeg with ``preexec_fn=os.setpgrp`` (to shield it from Ctrl-C), which runs
# Python in the forked child of a multithreaded process: JAX warns about that (a possible deadlock).
# Without it the fork goes straight to exec; on Ctrl-C ffmpeg stops too, and the partial output
# is removed anyway.
os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a clip before decoding it.

    ``width`` x ``height``: the decoded frames' size in pixels (after the container's rotation).
    ``fps``: frames per second (:data:`FALLBACK_FPS` if the file gives none). ``frames``: the
    estimated frame count (duration x fps), ``None`` if unknown. ``duration`` in seconds or ``None``.
    ``audio_codec``: the first audio stream's codec (e.g. ``"aac"``), ``None`` without audio.
    """

    path: Path
    width: int
    height: int
    fps: float
    frames: int | None
    duration: float | None
    codec: str
    audio_codec: str | None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video by its extension (:data:`VIDEO_SUFFIXES`, case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def check_smooth(smooth: float) -> None:
    """Raise OptionError unless ``0 <= smooth < 1`` (1 would freeze the first frame forever)."""
    if not (math.isfinite(smooth) and 0.0 <= smooth < 1.0):
        raise OptionError(f"smooth must be at least 0 and below 1, got {smooth}", fields=("smooth",))


# --------------------------------------------------------------------------------------------
# ffmpeg plumbing


def _ffmpeg_log(args: Sequence[str]) -> str:
    """Run the bundled ffmpeg with ``args``; returns its log (stderr) whatever the exit status."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=_FFMPEG_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "ffmpeg timed out"
    return done.stderr.decode(errors="replace")


def _reason(log: str) -> str:
    """ffmpeg's own explanation on one line: its last component message (``[in#0 @ 0x..] ...``)
    without the prefix, else its last line; at most 200 characters."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    tagged = [line for line in lines if line.startswith("[")]
    text = (tagged or lines or ["no details"])[-1]
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)
    text = re.sub(r"^Error opening input:\s*", "", text)
    return one_line(text)[:200]


def _streams(log: str) -> tuple[list[str], list[str]]:
    """The (video, audio) stream descriptions of input #0 in an ``ffmpeg -i`` log; cover art
    (``attached pic``) does not count as video."""
    found = re.findall(r"^\s*Stream #0:\d+\S*: (Video|Audio): (.*)$", log, flags=re.MULTILINE)
    video = [rest for kind, rest in found if kind == "Video" and "(attached pic)" not in rest]
    audio = [rest for kind, rest in found if kind == "Audio"]
    return video, audio


def _codec(description: str) -> str:
    """``"aac (LC) (mp4a / ...), 44100 Hz, ..."`` -> ``"aac"``."""
    return description.split()[0].rstrip(",") if description.split() else "unknown"


def _exact_fps(fps: float) -> Fraction:
    """ffmpeg prints rates rounded (29.97, 23.98); NTSC-style rates become exactly N*1000/1001."""
    ntsc = round(fps * 1.001)
    if ntsc > 0 and abs(fps * 1.001 - ntsc) < 0.01 and abs(fps - ntsc) > 0.01:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def _check_input_file(path: Path) -> None:
    name = str(path)
    if not path.exists():
        raise VideoError(f"{name}: no such file")
    if path.is_dir():
        raise VideoError(f"{name}: is a folder, not a video file")
    if not is_video_path(path):
        known = ", ".join(sorted(VIDEO_SUFFIXES))
        raise VideoError(f"{name}: unsupported video format {path.suffix.lower()!r} (use one of {known})")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{name}: permission denied")
    if path.stat().st_size == 0:
        raise VideoError(f"{name}: file is empty (0 bytes)")


def _open_frames(path: Path, max_pixels: int | None) -> tuple[dict, Generator[bytes, None, None]]:
    """Start decoding ``path`` to rgb24: (imageio-ffmpeg's metadata, a generator of raw frames).

    The size is checked against ``max_pixels`` before any frame is decoded. The caller closes the
    generator (that stops ffmpeg).
    """
    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(gen)
        width, height = meta["size"]
        images.check_pixels(width, height, max_pixels, f"{path}: video frame", _PIXELS_ADVICE)
    except ImageError as err:
        gen.close()
        raise VideoError(str(err)) from None
    except (OSError, RuntimeError, StopIteration, KeyError, IndexError, ValueError, AttributeError) as err:
        gen.close()
        raise VideoError(f"{path}: not a readable video ({_reason(str(err))})") from None
    return meta, gen


def probe(path: str | os.PathLike[str], *, max_pixels: int | None = images.DEFAULT_MAX_PIXELS,
          min_side: int = 1) -> VideoInfo:
    """Read a clip's header and decode its first frame: size, frame rate, frame count, audio.

    Raises:
        VideoError: missing file, folder, empty file, an extension not in :data:`VIDEO_SUFFIXES`,
            not a video container (an image or text file renamed), no video stream (audio only),
            corrupt or truncated data, no decodable frame, frames over ``max_pixels`` pixels
            (``None``: no limit) or with a side below ``min_side``.
    """
    path = Path(path)
    name = str(path)
    _check_input_file(path)
    log = _ffmpeg_log(["-i", name])
    container = re.search(r"^Input #0, (.+?), from ", log, flags=re.MULTILINE)
    if container is None:
        raise VideoError(f"{name}: not a readable video ({_reason(log)})")
    if container.group(1) not in _DEMUXERS:
        raise VideoError(f"{name}: not a video container (ffmpeg reads it as {container.group(1)}); "
                         "use MP4, MOV, MKV, WebM or AVI")
    video, audio = _streams(log)
    if not video:
        raise VideoError(f"{name}: has no video stream" + (" (audio only)" if audio else ""))
    meta, gen = _open_frames(path, max_pixels)
    try:
        first = next(gen, None)
    except (OSError, RuntimeError) as err:
        raise VideoError(f"{name}: cannot decode the first frame ({_reason(str(err))})") from None
    finally:
        gen.close()
    if first is None:
        raise VideoError(f"{name}: the video has no frames")
    width, height = meta["size"]
    if min(width, height) < min_side:
        raise VideoError(f"{name}: frames are {width}x{height} pixels, sides must be at least {min_side} pixels")
    fps = float(meta.get("fps") or 0.0) or FALLBACK_FPS
    duration = float(meta.get("duration") or 0.0) or None
    frames = max(1, round(duration * fps)) if duration else None
    return VideoInfo(path, int(width), int(height), fps, frames, duration, _codec(video[0]),
                     _codec(audio[0]) if audio else None)


def iter_frames(path: str | os.PathLike[str], *, max_pixels: int | None = images.DEFAULT_MAX_PIXELS
                ) -> Generator[np.ndarray, None, None]:
    """The frames of a clip in order, each ``uint8[H, W, 3]`` RGB (read-only views; copy to modify).

    Call :func:`probe` first for the checks and clear messages on bad files.

    Raises:
        VideoError: a file ffmpeg cannot open, or a frame it cannot decode.
    """
    path = Path(path)
    meta, gen = _open_frames(path, max_pixels)
    width, height = meta["size"]
    try:
        for index, raw in enumerate(_guarded(gen, path)):
            if len(raw) != width * height * 3:
                raise VideoError(f"{path}: frame {index + 1} has the wrong size (a corrupt stream?)")
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
    finally:
        gen.close()


def _guarded(gen: Generator[bytes, None, None], path: Path) -> Generator[bytes, None, None]:
    """``gen`` with imageio-ffmpeg's read errors turned into a one-line VideoError."""
    count = 0
    while True:
        try:
            raw = next(gen)
        except StopIteration:
            return
        except (OSError, RuntimeError) as err:
            raise VideoError(f"{path}: cannot decode frame {count + 1} ({_reason(str(err))})") from None
        count += 1
        yield raw


# --------------------------------------------------------------------------------------------
# Pure functions over frames


def flicker(frames: np.ndarray | Sequence[np.ndarray]) -> float:
    """Mean absolute frame-to-frame change: ``mean |f_t - f_{t-1}|`` over all pixels, channels and pairs.

    frames: ``float[T, H, W, 3]`` in ``[0, 1]`` (or a sequence of ``float[H, W, 3]``). Returns a float
    in ``[0, 1]``: 0 for a still clip (or fewer than two frames); a few hundredths for ordinary video.
    Computed one pair at a time (no ``[T-1, H, W, 3]`` temporary).
    """
    if len(frames) < 2:
        return 0.0
    diffs = [np.mean(np.abs(np.asarray(b, np.float32) - np.asarray(a, np.float32)))
             for a, b in zip(frames[:-1], frames[1:], strict=True)]
    return float(np.mean(diffs))


def smooth_frames(stylised: np.ndarray, inputs: np.ndarray, smooth: float, *,
                  prev_output: np.ndarray | None = None, prev_input: np.ndarray | None = None,
                  tau: float = SMOOTH_TAU) -> np.ndarray:
    """Motion-aware temporal smoothing of a stylised clip (a per-pixel, motion-gated moving average).

    A transform net stylises each frame on its own, so small changes of the input (sensor noise,
    compression) turn into large, flickering changes of the painted texture. This filter carries
    the previous *output* over where the *input* did not change, and follows the new frame where it
    did::

        m_t   = smooth * exp(-mean_c |in_t - in_{t-1}| / tau)       per pixel, float[H, W, 1]
        out_t = m_t * out_{t-1} + (1 - m_t) * stylised_t

    Static regions thus average over about ``1 / (1 - smooth)`` frames and stop flickering; a
    region whose input changes by ``tau`` or more (motion, a cut) mostly takes the new frame, which
    limits ghosting. ``smooth = 0`` returns ``stylised`` unchanged. The first frame passes through
    unless ``prev_output``/``prev_input`` (the frame before this chunk, for streaming in batches)
    are given.

    Args:
        stylised: ``float32[T, H, W, 3]`` in ``[0, 1]``, the transform net's outputs.
        inputs: ``float32[T, H, W, 3]`` in ``[0, 1]``, the frames they were made from.
        smooth: strength in ``[0, 1)``.
        prev_output, prev_input: ``float32[H, W, 3]``, the previous chunk's last output and input.
        tau: the motion scale, on the ``[0, 1]`` pixel scale.

    Returns:
        ``float32[T, H, W, 3]`` in ``[0, 1]``.
    """
    check_smooth(smooth)
    stylised = np.asarray(stylised, np.float32)
    if smooth == 0.0:
        return stylised
    inputs = np.asarray(inputs, np.float32)
    out = np.empty_like(stylised)
    for t in range(len(stylised)):
        before_in = inputs[t - 1] if t else prev_input
        before_out = out[t - 1] if t else prev_output
        if before_in is None or before_out is None:
            out[t] = stylised[t]
            continue
        change = np.mean(np.abs(inputs[t] - before_in), axis=-1, keepdims=True)
        m = np.float32(smooth) * np.exp(-change / np.float32(tau))
        out[t] = m * before_out + (1.0 - m) * stylised[t]
    return out


def working_shape(shape: tuple[int, int], size: int | None, max_pixels: int | None) -> tuple[int, int]:
    """The (H, W) frames are resized to before stylisation: the source's ``shape`` or, with ``size``,
    scaled so the long side is ``size`` (aspect kept). They are then cropped to :func:`even_shape`.

    Raises:
        ImageError: the resized frame has more than ``max_pixels`` pixels (checked before resizing).
        OptionError: a side of the written frame below :data:`jaxstyle.nn.vgg.MIN_SIDE` (as for images).
    """
    resized = (shape[0], shape[1]) if size is None else images.long_side_shape(shape, size)
    if size is not None:
        images.check_pixels(resized[1], resized[0], max_pixels, "the resized video frame")
    h, w = even_shape(resized)
    if min(h, w) < MIN_SIDE:
        raise OptionError(f"the video frames would be {w}x{h} px; both sides must be at least {MIN_SIDE} "
                          "(raise size)", fields=("size",))
    return resized


def even_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """(H, W) rounded down to even sides: H.264 with 4:2:0 chroma needs them, so a frame with an odd
    side loses its last row or column (one pixel; nothing is rescaled)."""
    h, w = shape
    return h - h % 2, w - w % 2


def prepare_frames(frames: Sequence[np.ndarray], shape: tuple[int, int], max_pixels: int | None
                   ) -> np.ndarray:
    """Decoded ``uint8[H0, W0, 3]`` frames -> ``float32[N, h, w, 3]`` in ``[0, 1]``: resized to ``shape``
    (H, W) from :func:`working_shape` if they differ (``images.resize``), then cropped to
    :func:`even_shape` ``(h, w)``."""
    h, w = even_shape(shape)
    out = []
    for frame in frames:
        img = images.to_float_image(frame)
        if img.shape[:2] != tuple(shape):
            img = images.resize(img, *shape, max_pixels=max_pixels)
        out.append(img[:h, :w])
    return np.stack(out)


# --------------------------------------------------------------------------------------------
# Writing


def check_output(dst: str | os.PathLike[str], src: str | os.PathLike[str] | None = None) -> Path:
    """Check, before any work, that a video can be written at ``dst``; returns it as a Path.

    Raises:
        VideoError: an extension not in :data:`OUTPUT_SUFFIXES`, a folder, a missing or read-only
            output folder, or ``dst`` is the input ``src`` itself.
    """
    dst = Path(dst)
    if dst.suffix.lower() not in OUTPUT_SUFFIXES:
        known = ", ".join(OUTPUT_SUFFIXES)
        raise VideoError(f"{dst}: cannot write a video as {dst.suffix.lower() or 'a file without extension'!r} "
                         f"(use one of {known}; H.264 video, AAC audio)")
    images.check_output_target(dst, VideoError)
    if src is not None and dst.exists() and Path(src).exists() and os.path.samefile(src, dst):
        raise VideoError(f"{dst}: the output would overwrite the input video")
    return dst


class _Abort(BaseException):
    """Thrown into imageio-ffmpeg's writer generator: its BaseException branch kills ffmpeg at once."""


def _abort(writer: Any) -> None:
    with contextlib.suppress(BaseException):
        writer.throw(_Abort())


def _send(writer: Any, frame: np.ndarray, dst: Path) -> None:
    try:
        writer.send(np.ascontiguousarray(frame))
    except (OSError, RuntimeError, StopIteration) as err:
        raise VideoError(f"{dst}: ffmpeg stopped while writing the video ({_reason(str(err))})") from None


def _check_written(tmp: Path, dst: Path, frames: int, audio: bool) -> None:
    """The encoded file must decode to ``frames`` frames (and carry audio if ``audio``): imageio-ffmpeg
    does not report an encoder that failed while finishing the file (disk full, muxing error)."""
    try:
        count, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp))
    except (OSError, RuntimeError) as err:
        raise VideoError(f"{dst}: the encoded video is unreadable ({_reason(str(err))})") from None
    if count != frames:
        raise VideoError(f"{dst}: the encoded video has {count} frames instead of {frames}")
    if audio and not _streams(_ffmpeg_log(["-i", str(tmp)]))[1]:
        raise VideoError(f"{dst}: the audio track could not be copied")


def _batches(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def stylize_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    models: Mapping[str, Any] | Sequence[Mapping[str, Any]] | Callable[[np.ndarray], np.ndarray],
    *,
    weights: Sequence[float] | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    smooth: float = 0.0,
    batch_size: int = 4,
    size: int | None = None,
    max_pixels: int | None = images.DEFAULT_MAX_PIXELS,
    on_frames: Callable[[int], None] | None = None,
    progress: Progress | None = None,
) -> dict:
    """Stylise a clip frame by frame with a transform net (or a blend of several), or with a prepared
    stylizer ``float32[N,h,w,3] -> float32[N,h,w,3]`` (the arbitrary method's
    :func:`jaxstyle.methods.arbitrary.wct.make_stylizer`, whose style statistics are fixed for every
    frame), into an H.264 video.

    Frames are decoded as rgb24, resized so the long side is ``size`` (if given), cropped to even
    sides (see :func:`working_shape`), stylised ``batch_size`` at a time with
    :func:`jaxstyle.methods.transform.net.stylize_batch` (``weights``, ``strength``, ``preserve_color`` as
    there), smoothed over time (:func:`smooth_frames` with ``smooth``), and encoded with libx264
    (yuv420p, CRF :data:`CRF`) at the source's frame rate. The source's first audio track is kept:
    copied if AAC or MP3, else re-encoded as AAC. The video goes to a hidden temporary file next to
    ``dst``, is checked (frame count, audio), then renamed over ``dst``; on any failure or Ctrl-C
    the temporary file is removed, so no half-written output is ever left.

    After each batch, ``on_frames(n)`` is called with the number of frames just written, and
    ``progress(frames written so far, {"frames_per_s": ...})`` (:class:`jaxstyle.progress.Progress`).

    Returns:
        A report: ``frames``, ``fps``, ``size`` ``[h, w]``, ``source_size`` ``[H, W]``, ``seconds``,
        ``frames_per_second``, ``flicker_in`` / ``flicker_out`` (:func:`flicker` of the input frames
        and of the frames sent to the encoder), ``smooth``, ``audio_kept`` (bool) and ``audio``
        (``"copied aac"``, ``"re-encoded pcm_s16le as aac"`` or ``"none"``).

    Raises:
        VideoError: a bad input (see :func:`probe`) or output (see :func:`check_output`), or ffmpeg failing.
        OptionError: a bad ``smooth``, ``batch_size``, ``size``, ``weights`` or ``strength``.
    """
    from jaxstyle.methods.transform import net as transform

    check_smooth(smooth)
    stylize: Callable[[np.ndarray], np.ndarray]
    if callable(models):  # a prepared stylizer (e.g. wct.make_stylizer): its look is fixed already
        stylize = models
    else:
        nets = [models] if isinstance(models, Mapping) else list(models)
        transform.check_blend(len(nets), weights, strength)
        stylize = functools.partial(transform.stylize_batch, nets, weights=weights, strength=strength,
                                    preserve_color=preserve_color)
    if batch_size < 1:
        raise OptionError(f"batch size must be at least 1, got {batch_size}")
    src, dst = Path(src), check_output(dst, src)
    info = probe(src, max_pixels=max_pixels, min_side=MIN_SIDE)
    shape = working_shape((info.height, info.width), size, max_pixels)
    h, w = even_shape(shape)
    audio_codec = None if info.audio_codec is None else "copy" if info.audio_codec in _COPY_AUDIO else "aac"

    start = time.perf_counter()
    frames_in = iter_frames(src, max_pixels=max_pixels)
    count, sum_in, sum_out = 0, 0.0, 0.0
    prev_in = prev_out = None
    try:
        with atomic.atomic_path(dst) as tmp:  # ffmpeg picks the container by tmp's extension
            writer = imageio_ffmpeg.write_frames(
                str(tmp), (w, h), fps=_exact_fps(info.fps), codec="libx264", pix_fmt_out="yuv420p", quality=None,
                macro_block_size=2, ffmpeg_log_level="quiet", output_params=["-crf", str(CRF)],
                audio_path=str(src) if audio_codec else None, audio_codec=audio_codec,
            )
            try:
                writer.send(None)  # starts ffmpeg
                for batch in _batches(frames_in, batch_size):
                    inputs = prepare_frames(batch, shape, max_pixels)
                    # A short last batch is padded to batch_size frames: it reuses the compiled shape.
                    outputs = stylize(transform.pad_batch(inputs, batch_size if count else None))[:len(inputs)]
                    outputs = smooth_frames(outputs, inputs, smooth, prev_output=prev_out, prev_input=prev_in)
                    for frame in outputs:
                        _send(writer, images.to_uint8(frame), dst)
                    chain_in = inputs if prev_in is None else np.concatenate([prev_in[None], inputs])
                    chain_out = outputs if prev_out is None else np.concatenate([prev_out[None], outputs])
                    sum_in += flicker(chain_in) * (len(chain_in) - 1)
                    sum_out += flicker(chain_out) * (len(chain_out) - 1)
                    prev_in, prev_out = inputs[-1], outputs[-1]
                    count += len(batch)
                    if on_frames is not None:
                        on_frames(len(batch))
                    if progress is not None:
                        progress(count, {"frames_per_s": count / max(time.perf_counter() - start, 1e-9)})
                if count == 0:
                    raise VideoError(f"{src}: the video has no frames")
                writer.close()  # ffmpeg finishes the file
            except BaseException:
                _abort(writer)
                raise
            _check_written(tmp, dst, count, audio_codec is not None)
    except OSError as err:
        raise VideoError(f"{dst}: cannot write the video ({one_line(err)})") from None
    finally:
        frames_in.close()
    seconds = time.perf_counter() - start
    pairs = max(count - 1, 1)
    if audio_codec is None:
        audio = "none"
    else:
        audio = f"copied {info.audio_codec}" if audio_codec == "copy" else f"re-encoded {info.audio_codec} as aac"
    return {
        "method": "transform", "input": str(src), "output": str(dst), "frames": count, "fps": info.fps,
        "size": [h, w], "source_size": [info.height, info.width], "seconds": seconds,
        "frames_per_second": count / max(seconds, 1e-9), "flicker_in": sum_in / pairs,
        "flicker_out": sum_out / pairs, "smooth": smooth, "audio_kept": audio_codec is not None, "audio": audio,
    }
