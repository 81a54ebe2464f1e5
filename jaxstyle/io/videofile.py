"""Video files: probe a clip, stream its frames in, check where a video can be written, and the
pieces of writing one (ffmpeg's writer: frames in, its failures as one-line errors).

Decoded frames are ``uint8[H, W, 3]`` RGB. ffmpeg (the binary bundled with ``imageio-ffmpeg``) decodes
and encodes. Every problem with a file becomes a :class:`~jaxstyle.errors.VideoError` with a one-line
message that names the file; ffmpeg's multi-line log never reaches the user. Stylising a clip is
:mod:`jaxstyle.video`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import subprocess
from collections.abc import Generator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np

from jaxstyle.errors import ImageError, VideoError, one_line
from jaxstyle.io import images

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
