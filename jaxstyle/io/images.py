"""Reading, writing, resizing and tiling images.

Every image inside jaxstyle is a ``float32`` NumPy array of shape ``[H, W, 3]``: RGB, values in
``[0, 1]``, rows top to bottom. This module is the only place that talks to PIL; it turns every
problem with a file into an :class:`~jaxstyle.errors.ImageError` with a one-line message that
names the file.
"""

from __future__ import annotations

import io
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFile, ImageFont, ImageOps, UnidentifiedImageError

from jaxstyle import atomic
from jaxstyle.errors import ImageError, OptionError, one_line

# 50 megapixels is about a 8660x5770 photo: larger than any camera most people own, and as a
# float32 RGB array already 600 MB, before the network's activations (which are many times that).
# A file that claims more is either a decompression bomb (a few KB that expand to gigabytes) or a
# job that should run at a smaller size. The same limit applies to resizing (``--size``), checked
# before anything is allocated. Callers can raise it (``--max-pixels``).
DEFAULT_MAX_PIXELS = 50_000_000

#: How to get past :func:`check_pixels`: for a planned resize, and for a file that is too large.
# Advice in the messages below names option fields (the command line shows them as flags).
RESIZE_ADVICE = "use a smaller size or style_size, or pass a larger max_pixels if the machine has the memory"
FILE_ADVICE = ("a decompression bomb, or simply too large: if you trust the file, pass a larger max_pixels "
               "(and a smaller size to keep the output small)")
ADVICE_FIELDS = ("size", "style_size", "max_pixels")

#: File extensions that :func:`list_images` treats as images when expanding a folder.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})

_SAVE_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

# Guards the brief swap of PIL's global MAX_IMAGE_PIXELS while a file's header is read.
_OPEN_LOCK = threading.Lock()


def check_pixels(width: int, height: int, max_pixels: int | None, what: str, advice: str = RESIZE_ADVICE,
                 fields: tuple[str, ...] = ADVICE_FIELDS) -> None:
    """Refuse an image of ``width x height`` pixels above ``max_pixels`` (``None``: no limit).

    Called with sizes from a file header or a planned resize, *before* any pixel is allocated.
    ``what`` starts the message (e.g. ``"photo.jpg: image"``, ``"the resized image"``), ``advice`` ends it.

    Raises:
        ImageError: ``"<what> is WxH = N pixels, more than the limit of M; <advice>"``, naming ``fields``.
    """
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(f"{what} is {width}x{height} = {width * height:,} pixels, more than the limit of "
                         f"{max_pixels:,}; {advice}", fields=fields)


def load_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS, min_side: int = 1
) -> np.ndarray:
    """Read an image file as ``float32[H, W, 3]`` RGB in ``[0, 1]``, upright.

    * The EXIF orientation tag is applied, so the array looks like the photo does in a viewer.
    * The header size is checked against ``max_pixels`` (``None``: no limit) *before* any pixel
      data is decoded, so a decompression bomb costs nothing.
    * The whole file is decoded; truncated or corrupt files are errors, never half-grey images.
    * Modes: 8-bit RGB / grayscale / bilevel / palette as usual; CMYK and YCbCr converted to RGB;
      16-bit integer (``I;16*``) divided by 65535; 32-bit ``I`` divided by 65535 when its values fit
      in 16 bits (how 16-bit PNG/TIFF often load), else by 2**31 - 1; float ``F`` taken as already
      in ``[0, 1]`` and clipped. Grayscale is repeated into the three channels.
    * Transparency (RGBA, LA, PA, palette with a transparent colour) is composited over **white**.

    Raises:
        ImageError: missing file, folder, empty file, not an image, truncated or corrupt data,
            more than ``max_pixels`` pixels, or a side shorter than ``min_side``.
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise ImageError(f"{name}: no such file")
    if path.is_dir():
        raise ImageError(f"{name}: is a folder, not an image file")
    return _decode(path, name, max_pixels, min_side)


def decode_image(
    data: bytes, name: str = "image", *, max_pixels: int | None = DEFAULT_MAX_PIXELS, min_side: int = 1
) -> np.ndarray:
    """:func:`load_image` for an image file's bytes already in memory (an upload, say).

    Same checks, same result; ``name`` only labels the error messages (nothing is opened by name).
    """
    return _decode(io.BytesIO(data), name, max_pixels, min_side)


def _decode(source: Path | io.BytesIO, name: str, max_pixels: int | None, min_side: int) -> np.ndarray:
    """The shared body of :func:`load_image` and :func:`decode_image`: header pixel check, full
    decode, EXIF rotation, mode conversion, side check; every failure an ImageError naming ``name``."""
    try:
        size = source.stat().st_size if isinstance(source, Path) else source.getbuffer().nbytes
        if size == 0:
            raise ImageError(f"{name}: file is empty (0 bytes)")
        # Truncated files must fail loudly instead of decoding to a partly grey image.
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        with _open_header(source) as img:
            check_pixels(*img.size, max_pixels, f"{name}: image", FILE_ADVICE)
            img.load()
            # Some formats only learn their final size while decoding: check again.
            check_pixels(*img.size, max_pixels, f"{name}: image", FILE_ADVICE)
            array = _pil_to_float(ImageOps.exif_transpose(img), name)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{name}: too many pixels ({one_line(err)}); {FILE_ADVICE}", fields=ADVICE_FIELDS) from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as err:
        raise ImageError(f"{name}: corrupt or truncated image ({one_line(err)})") from None
    if min(array.shape[:2]) < min_side:
        h, w = array.shape[:2]
        raise ImageError(f"{name}: image is {w}x{h} pixels, sides must be at least {min_side} pixels")
    return array


def _open_header(source: Path | io.BytesIO) -> Image.Image:
    """``Image.open`` (header only) with PIL's own global pixel limit switched off.

    :func:`_decode` checks ``max_pixels`` itself right after this, with a clearer message and a
    limit the caller chooses; PIL's global limit would otherwise refuse or warn about sizes the
    caller explicitly allowed. The swap is done under a lock and always restored.
    """
    with _OPEN_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(source)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _over_white(values: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return values * alpha[..., None] + (1.0 - alpha[..., None])


def _pil_to_float(img: Image.Image, name: str = "image") -> np.ndarray:
    """A decoded PIL image of any common mode as ``float32[H, W, 3]`` in ``[0, 1]``."""
    mode = img.mode
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
        mode = img.mode
    if mode == "1":
        img, mode = img.convert("L"), "L"
    if mode in ("RGBa", "La"):  # premultiplied alpha
        img = img.convert("RGBA" if mode == "RGBa" else "LA")
        mode = img.mode

    if mode in ("RGB", "L"):
        out = np.asarray(img, dtype=np.float32) / 255.0
    elif mode in ("RGBA", "LA"):
        raw = np.asarray(img, dtype=np.float32) / 255.0
        out = _over_white(raw[..., :-1], raw[..., -1])
    elif mode.startswith("I;16"):
        out = np.asarray(img).astype(np.float32) / 65535.0
    elif mode == "I":
        raw = np.asarray(img).astype(np.float64)
        scale = 65535.0 if raw.size == 0 or (raw.min() >= 0 and raw.max() <= 65535) else 2.0**31 - 1
        out = (raw / scale).astype(np.float32)
    elif mode == "F":
        out = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    else:  # CMYK, YCbCr, LAB, HSV, ...
        try:
            converted = img.convert("RGB")
        except ValueError as err:
            raise ImageError(f"{name}: unsupported colour mode {mode} ({one_line(err)})") from None
        out = np.asarray(converted, dtype=np.float32) / 255.0

    if out.ndim == 2:
        out = out[..., None]
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def to_float_image(img: Image.Image | np.ndarray) -> np.ndarray:
    """Any in-memory image as ``float32[H, W, 3]`` in ``[0, 1]``.

    Accepts a PIL image (any mode :func:`load_image` handles), ``uint8`` (divided by 255),
    ``uint16`` (divided by 65535), ``bool``, or float arrays (taken as ``[0, 1]`` and clipped), of
    shape ``[H, W]`` (grayscale, repeated to RGB), ``[H, W, 1]`` or ``[H, W, 3]``.

    Raises:
        ImageError: any other shape, an empty image, or NaN / Inf values.
    """
    if isinstance(img, Image.Image):
        return _pil_to_float(img)
    array = np.asarray(img)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"expected an image of shape [H, W, 3] or [H, W], got {list(np.shape(img))}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ImageError(f"expected a numeric image array, got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ImageError("image contains NaN or Inf values")
    return np.clip(array, 0.0, 1.0)


def resize(img: np.ndarray, height: int, width: int, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Resize ``float32[H, W, 3]`` to ``float32[height, width, 3]`` in ``[0, 1]``.

    Each channel is resampled in float (PIL mode ``F``, no 8-bit rounding): Lanczos when either side
    shrinks (anti-aliased), bicubic when only enlarging. The result is clipped to ``[0, 1]`` because
    both filters overshoot at sharp edges.

    Raises:
        OptionError: a side below 1 pixel.
        ImageError: more than ``max_pixels`` pixels (``None``: no limit), refused before allocating.
    """
    if height < 1 or width < 1:
        raise OptionError(f"cannot resize to {width}x{height}: sides must be at least 1 pixel")
    check_pixels(width, height, max_pixels, "the resized image")
    img = to_float_image(img)
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img.copy()
    method = Image.Resampling.LANCZOS if height < h or width < w else Image.Resampling.BICUBIC
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c])).resize((width, height), method))
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def fit_long_side(img: np.ndarray, size: int, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Resize so the longer side is ``size`` pixels, keeping the aspect ratio (other side >= 1).

    ``max_pixels``: as for :func:`resize` (the result's pixel count is checked before resizing).
    """
    return resize(img, *long_side_shape(np.shape(img)[:2], size), max_pixels=max_pixels)


def long_side_shape(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """(H, W) scaled so the longer side is ``size``, aspect kept (other side >= 1)."""
    if size < 1:
        raise OptionError(f"image size must be at least 1 pixel, got {size}")
    h, w = shape[:2]
    if h >= w:
        return size, max(1, round(w * size / h))
    return max(1, round(h * size / w)), size


def fit_pixels(img: np.ndarray, pixels: int, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Resize to about ``pixels`` pixels in total (``H * W``), keeping the aspect ratio."""
    if pixels < 1:
        raise OptionError(f"pixel count must be at least 1, got {pixels}")
    h, w = np.shape(img)[:2]
    scale = math.sqrt(pixels / (h * w))
    return resize(img, max(1, round(h * scale)), max(1, round(w * scale)), max_pixels=max_pixels)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """``float[H, W, 3]`` in ``[0, 1]`` to ``uint8[H, W, 3]`` (rounded, clipped; NaN -> 0).

    A ``uint8`` array is returned unchanged.
    """
    array = np.asarray(img)
    if array.dtype == np.uint8:
        return array
    array = np.nan_to_num(array.astype(np.float32), nan=0.0)
    return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)


def encode_png(img: np.ndarray) -> bytes:
    """An image (as :func:`save_image` takes) as the bytes of a PNG file, in memory."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(to_float_image(img))).save(buffer, format="PNG")
    return buffer.getvalue()


def check_output_path(path: str | os.PathLike[str]) -> str:
    """Check, before any work, that an image can be written at ``path``; returns the PIL format.

    Raises:
        ImageError: unknown extension, missing or read-only output folder, or ``path`` is a folder.
    """
    path = Path(path)
    ext = path.suffix.lower()
    fmt = _SAVE_FORMATS.get(ext)
    if fmt is None:
        known = ", ".join(sorted(_SAVE_FORMATS))
        raise ImageError(f"{path}: cannot tell the image format from extension {ext!r} (use one of {known})")
    check_output_target(path, ImageError)
    return fmt


def check_output_target(path: Path, error: type[Exception]) -> None:
    """Raise ``error`` unless ``path`` could be written: not a folder, in an existing writable folder."""
    if path.is_dir():
        raise error(f"{path}: is a folder, not an output file")
    folder = path.parent
    if not folder.is_dir():
        raise error(f"{path}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise error(f"{path}: output folder {folder} is not writable")


def save_image(path: str | os.PathLike[str], img: np.ndarray, *, quality: int = 95) -> Path:
    """Write ``img`` (``float[H, W, 3]`` in ``[0, 1]``, ``uint8[H, W, 3]`` or grayscale ``[H, W]``).

    The format comes from the extension: .jpg/.jpeg, .png, .webp, .bmp, .tif/.tiff. ``quality``
    applies to JPEG and WebP. The write is atomic: the image goes to a hidden temporary file in the
    same folder, is flushed to disk, then renamed over ``path``; a reader never sees a partial
    file, and a failure leaves no temporary file behind. Returns ``path``.

    Raises:
        ImageError: unknown extension, missing or read-only output folder, or a failed write.
    """
    path = Path(path)
    fmt = check_output_path(path)
    if not 1 <= quality <= 100:
        raise OptionError(f"image quality must be between 1 and 100, got {quality}")

    pil = Image.fromarray(to_uint8(to_float_image(img)))
    options: dict[str, object] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        with atomic.atomic_open(path) as f:
            pil.save(f, format=fmt, **options)
    except OSError as err:
        raise ImageError(f"{path}: could not write image ({one_line(err)})") from None
    return path


def list_images(paths: Sequence[str | os.PathLike[str]], recursive: bool = True) -> list[Path]:
    """Expand command-line inputs into image files.

    A file is kept as given, whatever its extension. A folder becomes its image files (by
    :data:`IMAGE_EXTENSIONS`, case-insensitive; hidden files skipped), searched recursively unless
    ``recursive`` is false, sorted by path.

    Raises:
        ImageError: a path that does not exist, or a folder with no images.
    """
    result: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            candidates = p.rglob("*") if recursive else p.iterdir()
            found = sorted(
                f for f in candidates
                if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".") and f.is_file()
            )
            if not found:
                raise ImageError(f"no images found in {p}")
            result.extend(found)
        elif p.exists():
            result.append(p)
        else:
            raise ImageError(f"{p}: no such file or folder")
    return result


def make_grid(
    images: Sequence[np.ndarray],
    labels: Sequence[str] | None = None,
    columns: int | None = None,
    tile_height: int = 256,
    pad: int = 8,
) -> np.ndarray:
    """A contact sheet: images scaled to ``tile_height`` (aspect kept), laid out in ``columns``
    (default: about square), on white, each with its label (PIL's default font) underneath.

    Returns ``float32[H, W, 3]`` in ``[0, 1]``.
    """
    if not images:
        raise ImageError("make_grid needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ImageError(f"make_grid got {len(images)} images but {len(labels)} labels")
    n = len(images)
    columns = max(1, min(columns or math.ceil(math.sqrt(n)), n))
    rows = math.ceil(n / columns)

    tiles = []
    for im in images:
        im = to_float_image(im)
        h, w = im.shape[:2]
        tiles.append(to_uint8(resize(im, tile_height, max(1, round(w * tile_height / h)))))

    font = ImageFont.load_default()
    label_height = 0
    if labels is not None:
        text_heights = [ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), t, font=font)[3]
                        for t in labels]
        label_height = round(max(text_heights, default=0)) + pad // 2
    col_widths = [max(t.shape[1] for t in tiles[c::columns]) for c in range(columns)]
    cell_height = tile_height + label_height
    canvas = Image.new(
        "RGB", (pad + sum(w + pad for w in col_widths), pad + rows * (cell_height + pad)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        x = pad + sum(w + pad for w in col_widths[:c])
        y = pad + r * (cell_height + pad)
        canvas.paste(Image.fromarray(tile), (x, y))
        if labels is not None:
            text = labels[i]
            while text and draw.textlength(text, font=font) > col_widths[c]:
                text = text[:-1]
            draw.text((x, y + tile_height + pad // 2), text, fill="black", font=font)
    return to_float_image(canvas)
