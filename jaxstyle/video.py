"""Video: stylise a clip frame by frame with a one-pass method, smooth it over time, measure flicker.

A frame is what an image is everywhere else in jaxstyle (``float32[H, W, 3]``, RGB in ``[0, 1]``,
see :mod:`jaxstyle.io.images`); a clip in memory is ``float32[T, H, W, 3]``. Decoded frames arrive as
``uint8[H, W, 3]``. ffmpeg (the binary bundled with ``imageio-ffmpeg``) decodes and encodes; the
clip is streamed in batches, never held whole in memory.

The methods that may stylise frames are the registered ones marked ``per_frame``
(:func:`frame_methods`, from :mod:`jaxstyle.methods.registry`); their stylizer is built as for photos
(:func:`jaxstyle.run.build_stylizer`) and passed to :func:`stylize_video`.

Every problem with a file becomes a :class:`~jaxstyle.errors.VideoError` with a one-line message
that names the file; ffmpeg's multi-line log never reaches the user. Probing, reading frames and the
writer's checks are :mod:`jaxstyle.io.videofile`'s (their names are importable from here too).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np

from jaxstyle import atomic
from jaxstyle.errors import OptionError, VideoError, one_line
from jaxstyle.io import images
from jaxstyle.io.videofile import (
    _COPY_AUDIO,
    CRF,
    FALLBACK_FPS,
    OUTPUT_SUFFIXES,
    VIDEO_SUFFIXES,
    VideoInfo,
    _abort,
    _check_written,
    _exact_fps,
    _send,
    check_output,
    is_video_path,
    iter_frames,
    probe,
)
from jaxstyle.methods import registry
from jaxstyle.nn.vgg import MIN_SIDE
from jaxstyle.progress import Progress

__all__ = [
    "CRF", "FALLBACK_FPS", "OUTPUT_SUFFIXES", "SMOOTH_TAU", "VIDEO_SUFFIXES", "VideoInfo", "check_output",
    "check_smooth", "even_shape", "flicker", "is_video_path", "iter_frames", "prepare_frames", "probe",
    "smooth_frames", "stylize_video", "working_shape",
]

#: Motion scale of :func:`smooth_frames`: a mean input change of ``tau`` per pixel cuts the carry-over by e.
SMOOTH_TAU = 0.05


def frame_methods() -> tuple[str, ...]:
    """The methods that may stylise a video frame by frame: the registered one-pass methods marked
    ``per_frame`` (:func:`jaxstyle.methods.registry.names`), in registration order."""
    return registry.names(per_frame=True)


def check_smooth(smooth: float) -> None:
    """Raise OptionError unless ``0 <= smooth < 1`` (1 would freeze the first frame forever)."""
    if not (math.isfinite(smooth) and 0.0 <= smooth < 1.0):
        raise OptionError(f"smooth must be at least 0 and below 1, got {smooth}", fields=("smooth",))


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
    stylizer ``float32[N,h,w,3] -> float32[N,h,w,3]`` (any :func:`frame_methods` method's, built by
    :func:`jaxstyle.run.build_stylizer`: :func:`jaxstyle.run.transform_stylizer`'s, or the arbitrary method's
    :func:`jaxstyle.methods.arbitrary.stylizer.make_stylizer`, whose style is fixed for every frame), into
    an H.264 video.

    Frames are decoded as rgb24, resized so the long side is ``size`` (if given), cropped to even
    sides (see :func:`working_shape`), stylised ``batch_size`` at a time (nets through
    :func:`jaxstyle.run.transform_stylizer`, with ``weights``, ``strength``, ``preserve_color`` as there),
    smoothed over time (:func:`smooth_frames` with ``smooth``), and encoded with libx264
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
    from jaxstyle import run
    from jaxstyle.methods.transform import net as transform

    check_smooth(smooth)
    # A prepared stylizer (run.transform_stylizer's, stylizer.make_stylizer's) has its look fixed already.
    stylize = models if callable(models) else run.transform_stylizer(
        models, weights=weights, strength=strength, preserve_color=preserve_color)
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
