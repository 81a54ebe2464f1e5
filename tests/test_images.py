"""jaxstyle.io.images: loading odd and broken files, atomic saving, resizing, contact sheets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers.imagefiles import bomb_png, noise_png
from PIL import Image

from jaxstyle.errors import ImageError
from jaxstyle.io import images
from jaxstyle.io.images import (
    fit_long_side,
    fit_pixels,
    list_images,
    load_image,
    make_grid,
    resize,
    save_image,
    to_float_image,
    to_uint8,
)


def _check_float_rgb(img: np.ndarray, height: int, width: int) -> None:
    assert img.dtype == np.float32
    assert img.shape == (height, width, 3)
    assert img.min() >= 0.0 and img.max() <= 1.0


def _assert_image_error(path: Path, **kwargs) -> str:
    with pytest.raises(ImageError) as info:
        load_image(path, **kwargs)
    message = str(info.value)
    assert path.name in message
    assert "\n" not in message
    return message


# --- broken inputs ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    assert "no such file" in _assert_image_error(tmp_path / "nope.jpg")


def test_directory(tmp_path):
    folder = tmp_path / "folder.png"
    folder.mkdir()
    assert "folder" in _assert_image_error(folder)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert "empty" in _assert_image_error(empty)


def test_text_named_jpg(tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not\nan image\n")
    assert "not an image" in _assert_image_error(fake)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated(tmp_path, ext):
    full = tmp_path / f"full{ext}"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(full)
    cut = tmp_path / f"cut{ext}"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert "truncated" in _assert_image_error(cut).lower()


def test_truncated_ignores_global_pil_setting(tmp_path, monkeypatch):
    from PIL import ImageFile

    full = noise_png(tmp_path / "full.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[:600])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    _assert_image_error(cut)


def test_too_small(tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (5, 40)).save(small)
    assert "at least 16" in _assert_image_error(small, min_side=16)
    _check_float_rgb(load_image(small, min_side=5), 40, 5)


def test_decompression_bomb_refused_before_decode(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png")
    message = _assert_image_error(bomb)
    assert "pixels" in message and "larger max_pixels" in message  # the field; the CLI shows --max-pixels


def test_max_pixels_limit_and_override(tmp_path):
    img = noise_png(tmp_path / "img.png", size=100)  # 10,000 pixels
    assert "pixels" in _assert_image_error(img, max_pixels=9_999)
    _check_float_rgb(load_image(img, max_pixels=10_000), 100, 100)
    _check_float_rgb(load_image(img, max_pixels=None), 100, 100)


def test_pil_global_limit_does_not_override_ours(tmp_path, monkeypatch):
    img = noise_png(tmp_path / "img.png", size=100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL would refuse (> 2x) this file
    _check_float_rgb(load_image(img), 100, 100)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored after the header read


def test_pil_bomb_error_becomes_image_error(tmp_path, monkeypatch):
    path = noise_png(tmp_path / "img.png")

    def refuse(*args, **kwargs):
        raise Image.DecompressionBombError("Image size (4096 pixels) exceeds limit")

    monkeypatch.setattr(images.Image, "open", refuse)
    assert "pixels" in _assert_image_error(path)


# --- unusual but valid inputs ----------------------------------------------------------------


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(path, quality=100)  # pure red
    img = load_image(path)
    _check_float_rgb(img, 6, 8)
    np.testing.assert_allclose(img[3, 4], [1.0, 0.0, 0.0], atol=0.02)


def test_16bit_png(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16)).save(path)
    img = load_image(path)
    _check_float_rgb(img, 1, 3)
    np.testing.assert_allclose(img[0, :, 0], [0.0, 0.5, 1.0], atol=1e-4)
    np.testing.assert_array_equal(img[..., 0], img[..., 2])


def test_32bit_int_and_float_modes():
    as_int = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert as_int.mode == "I"
    np.testing.assert_allclose(to_float_image(as_int)[0, :, 1], [0.0, 1.0])
    as_float = Image.fromarray(np.array([[0.25, 2.0]], dtype=np.float32))
    assert as_float.mode == "F"
    np.testing.assert_allclose(to_float_image(as_float)[0, :, 1], [0.25, 1.0])


def test_palette_png_with_transparency(tmp_path):
    path = tmp_path / "palette.png"
    pal = Image.new("P", (4, 2), 0)
    pal.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    pal.putpixel((3, 1), 1)
    pal.save(path, transparency=1)
    img = load_image(path)
    _check_float_rgb(img, 2, 4)
    np.testing.assert_allclose(img[0, 0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(img[1, 3], [1.0, 1.0, 1.0])  # transparent -> white


def test_grayscale_and_bilevel(tmp_path):
    gray = tmp_path / "gray.png"
    Image.new("L", (3, 2), 51).save(gray)
    img = load_image(gray)
    _check_float_rgb(img, 2, 3)
    np.testing.assert_allclose(img, 0.2, atol=1e-6)

    bilevel = tmp_path / "bw.png"
    Image.new("1", (3, 2), 1).save(bilevel)
    np.testing.assert_allclose(load_image(bilevel), 1.0)


def test_rgba_and_la_over_white(tmp_path):
    path = tmp_path / "rgba.png"
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent black
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black
    Image.fromarray(rgba).save(path)
    img = load_image(path)
    _check_float_rgb(img, 2, 2)
    np.testing.assert_allclose(img[0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(img[0, 1], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(img[1, 0], 1 - 128 / 255, atol=1e-6)

    la_path = tmp_path / "la.png"
    Image.fromarray(np.array([[[0, 0], [0, 255]]], dtype=np.uint8)).save(la_path)  # mode LA
    np.testing.assert_allclose(load_image(la_path)[0], [[1, 1, 1], [0, 0, 0]])


def test_exif_orientation(tmp_path):
    path = tmp_path / "rotated.jpg"
    im = Image.new("RGB", (20, 10), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 5, 5))  # red in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    im.save(path, exif=exif.tobytes(), quality=95)
    img = load_image(path)
    _check_float_rgb(img, 20, 10)
    np.testing.assert_allclose(img[1, -2], [1.0, 0.0, 0.0], atol=0.05)  # now top-right
    np.testing.assert_allclose(img[1, 1], [0.0, 0.0, 1.0], atol=0.05)


def test_shared_content_image(data_dir):
    img = load_image(data_dir / "content" / "cat.jpg")
    _check_float_rgb(img, 300, 451)


# --- in-memory conversions -------------------------------------------------------------------


def test_to_float_image():
    u8 = np.full((2, 3, 3), 255, dtype=np.uint8)
    np.testing.assert_array_equal(to_float_image(u8), np.ones((2, 3, 3), np.float32))
    gray = to_float_image(np.full((2, 3), 0.5))
    assert gray.shape == (2, 3, 3) and gray.dtype == np.float32
    assert to_float_image(Image.new("RGB", (3, 2), (255, 0, 0)))[1, 2, 0] == 1.0
    for bad in (np.zeros((2, 3, 4)), np.zeros((2, 3, 3, 1)), np.zeros(5), np.zeros((0, 3, 3))):
        with pytest.raises(ImageError):
            to_float_image(bad)
    with pytest.raises(ImageError):
        to_float_image(np.full((2, 2, 3), np.nan))


def test_to_uint8_rounds_and_clips():
    out = to_uint8(np.array([[[-0.5, 0.5, 2.0]]], dtype=np.float32))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[[0, 128, 255]]])


def test_resize_and_fit():
    img = np.random.default_rng(2).random((40, 100, 3)).astype(np.float32)
    out = resize(img, 20, 30)
    _check_float_rgb(out, 20, 30)
    _check_float_rgb(resize(img, 80, 200), 80, 200)
    flat = np.full((10, 10, 3), 0.3, np.float32)
    np.testing.assert_allclose(resize(flat, 7, 13), 0.3, atol=1e-5)  # float, no 8-bit rounding
    assert fit_long_side(img, 50).shape == (20, 50, 3)
    assert fit_long_side(img.transpose(1, 0, 2), 50).shape == (50, 20, 3)
    assert fit_long_side(np.zeros((1, 1000, 3), np.float32), 10).shape == (1, 10, 3)
    h, w, _ = fit_pixels(img, 1000).shape
    assert abs(h * w - 1000) < 60 and abs(w / h - 2.5) < 0.2


# --- saving ----------------------------------------------------------------------------------


def test_save_png_round_trip_exact(tmp_path):
    u8 = np.random.default_rng(3).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    out = save_image(tmp_path / "out.png", u8.astype(np.float32) / 255)
    assert out == tmp_path / "out.png"
    np.testing.assert_array_equal(to_uint8(load_image(out)), u8)
    save_image(tmp_path / "out.png", u8)  # overwrite, uint8 input
    np.testing.assert_array_equal(to_uint8(load_image(out)), u8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp files left


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".JPG"])
def test_save_formats(tmp_path, ext):
    path = save_image(tmp_path / f"out{ext}", np.full((8, 8, 3), 0.5, np.float32))
    np.testing.assert_allclose(load_image(path), 0.5, atol=0.02)
    assert [p.name for p in tmp_path.iterdir()] == [f"out{ext}"]


def test_save_to_missing_folder(tmp_path):
    target = tmp_path / "missing" / "out.png"
    with pytest.raises(ImageError, match="does not exist"):
        save_image(target, np.zeros((4, 4, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_save_to_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ImageError, match="not writable"):
            save_image(folder / "out.png", np.zeros((4, 4, 3), np.float32))
    finally:
        folder.chmod(0o700)


def test_save_unknown_extension(tmp_path):
    with pytest.raises(ImageError, match="extension"):
        save_image(tmp_path / "out.xyz", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ImageError, match="extension"):
        save_image(tmp_path / "out", np.zeros((4, 4, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_save_failure_removes_temp_file(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageError, match="disk full"):
        save_image(tmp_path / "out.png", np.zeros((4, 4, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


# --- listing and grids -----------------------------------------------------------------------


def test_list_images(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.webp", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    odd = tmp_path / "odd.data"
    odd.write_bytes(b"x")
    found = list_images([tmp_path])
    assert found == [tmp_path / "a.JPG", tmp_path / "b.png", tmp_path / "sub" / "c.webp"]
    assert list_images([tmp_path], recursive=False) == found[:2]
    assert list_images([odd, tmp_path / "b.png"]) == [odd, tmp_path / "b.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="no images found in"):
        list_images([empty])
    with pytest.raises(ImageError, match="missing"):
        list_images([tmp_path / "missing"])


def test_make_grid():
    tiles = [np.zeros((20, 40, 3), np.float32), np.full((10, 10, 3), 0.5, np.float32), np.ones((5, 5, 3))]
    plain = make_grid(tiles, columns=2, tile_height=32, pad=4)
    assert plain.dtype == np.float32
    # columns: widths 64 and 32; two rows of 32 px; 4 px padding around and between
    assert plain.shape == (4 + 2 * (32 + 4), 4 + 64 + 4 + 32 + 4, 3)
    assert plain[0, 0].tolist() == [1.0, 1.0, 1.0]  # white background
    assert plain[4 + 16, 4 + 32].tolist() == [0.0, 0.0, 0.0]  # first tile
    labelled = make_grid(tiles, labels=["black", "grey", "white"], columns=2, tile_height=32, pad=4)
    assert labelled.shape[0] > plain.shape[0] and labelled.shape[1] == plain.shape[1]
    label_band = labelled[4 + 32 : 4 + 32 + 10, 4 : 4 + 64]
    assert label_band.min() < 0.5  # dark text was drawn under the first tile
    assert make_grid(tiles).shape[2] == 3
    with pytest.raises(ImageError):
        make_grid(tiles, labels=["only one"])
