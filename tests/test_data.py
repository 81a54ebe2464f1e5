"""jaxstyle.data: the grain training pipeline (folder and TFDS sources), resume, skipping, sharding."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxstyle import data
from jaxstyle.errors import ImageError, JaxstyleError, OptionError

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _take(pipeline_or_iter, n: int) -> list[np.ndarray]:
    it = iter(pipeline_or_iter)
    return [next(it) for _ in range(n)]


def _jpeg_bytes(array: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _noise(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _colour(i: int) -> tuple[int, int, int]:
    """Distinct, JPEG-robust solid colours (spaced 60 apart per channel)."""
    return (20 + 60 * (i % 4), 20 + 60 * ((i // 4) % 4), 20 + 60 * ((i // 16) % 4))


def _colour_index(batch_image: np.ndarray, n: int) -> int:
    mean = batch_image.reshape(-1, 3).mean(axis=0)
    dists = [np.abs(mean - np.array(_colour(i))).max() for i in range(n)]
    assert min(dists) < 3, f"crop is not one of the solid colours: {mean}"
    return int(np.argmin(dists))


def _write_bad_files(folder: Path) -> None:
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is not a JPEG\n")
    whole = _jpeg_bytes(_noise(80, 100, 7))
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])


@pytest.fixture
def train_dir(data_dir: Path) -> Path:
    """The shared COCO stand-in: 500 JPEGs of 481x321 / 321x481 (``conftest.data_dir``)."""
    return data_dir / "train"


# --------------------------------------------------------------------------------------------
# folder source
# --------------------------------------------------------------------------------------------


def test_folder_batches_shape_dtype_and_determinism(train_dir: Path) -> None:
    a = _take(data.make_pipeline(str(train_dir), batch_size=4, image_size=64, seed=0), 3)
    b = _take(data.make_pipeline(str(train_dir), batch_size=4, image_size=64, seed=0), 3)
    c = _take(data.make_pipeline(str(train_dir), batch_size=4, image_size=64, seed=1), 3)
    for batch in a:
        assert isinstance(batch, np.ndarray)
        assert batch.shape == (4, 64, 64, 3) and batch.dtype == np.uint8
        assert batch.std() > 10  # real photo content, not blank padding
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c, strict=True))
    # Four images within a batch are different crops.
    assert len({a[0][i].tobytes() for i in range(4)}) == 4


def test_resume_from_json_state_continues_identically(train_dir: Path) -> None:
    spec = str(train_dir)
    it = iter(data.make_pipeline(spec, batch_size=4, image_size=64, seed=3, num_threads=2))
    _take(it, 3)
    state = json.loads(json.dumps(it.get_state()))
    expected = _take(it, 2)

    # A different thread count must not change the stream either.
    it2 = iter(data.make_pipeline(spec, batch_size=4, image_size=64, seed=3, num_threads=0))
    it2.set_state(state)
    for x, y in zip(expected, _take(it2, 2), strict=True):
        np.testing.assert_array_equal(x, y)


def test_corrupt_files_are_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Image.fromarray(_noise(40, 60, 1)).save(tmp_path / "a.jpg")
    Image.fromarray(_noise(30, 20, 2)).save(tmp_path / "b.png")  # smaller than image_size: enlarged
    rgba = np.dstack([_noise(50, 50, 3), np.full((50, 50), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    _write_bad_files(tmp_path)

    pipeline = data.make_pipeline(str(tmp_path), batch_size=2, image_size=32, seed=0, num_threads=2)
    with caplog.at_level(logging.WARNING, logger="jaxstyle.data"):
        batches = _take(pipeline, 6)  # 12 good images = 4 epochs of 6 files: every file was seen
    assert all(b.shape == (2, 32, 32, 3) and b.dtype == np.uint8 for b in batches)
    stats = pipeline.stats
    assert stats["files"] == 6
    assert stats["skipped"] == 3
    assert stats["decoded"] >= 12
    warnings = [r for r in caplog.records if "skipping undecodable image" in r.getMessage()]
    assert sorted(Path(r.args[0]).name for r in warnings) == ["empty.jpg", "notes.jpg", "truncated.jpg"]


def test_empty_folder_raises(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ImageError, match="no images found"):
        data.make_pipeline(str(tmp_path), batch_size=2, image_size=32, seed=0)


def test_all_corrupt_folder_raises_clearly(tmp_path: Path) -> None:
    _write_bad_files(tmp_path)
    with pytest.raises(ImageError, match=r"no decodable images in .* \(3 files, all corrupt\)") as info:
        data.make_pipeline(str(tmp_path), batch_size=2, image_size=32, seed=0)
    assert isinstance(info.value, JaxstyleError)


def test_files_broken_after_start_fail_instead_of_spinning(tmp_path: Path) -> None:
    good = tmp_path / "only.jpg"
    Image.fromarray(_noise(40, 40, 0)).save(good)
    pipeline = data.make_pipeline(str(tmp_path), batch_size=2, image_size=16, seed=0, num_threads=0)
    good.write_bytes(b"overwritten with garbage")
    with pytest.raises(ValueError, match="skipped 100"):
        next(iter(pipeline))
    assert pipeline.stats["skipped"] == 1


def test_shards_are_disjoint_and_follow_file_order(tmp_path: Path) -> None:
    n = 10
    for i in range(n):
        Image.new("RGB", (12, 9), _colour(i)).save(tmp_path / f"{i:02d}.png")
    seen = []
    for shard in range(2):
        pipeline = data.make_pipeline(
            str(tmp_path), batch_size=1, image_size=4, seed=5, shard_index=shard, shard_count=2, num_threads=2
        )
        epoch = [int(pipeline.order[k]) for k in range(5)]
        assert epoch == [int(i) for i in data.file_order(n, seed=5, shard_index=shard, shard_count=2)[:5]]
        # What the pipeline actually yields, identified by colour, is exactly `order`.
        yielded = [_colour_index(b[0], n) for b in _take(pipeline, 5)]
        assert yielded == epoch
        assert sorted(epoch) == list(range(shard, n, 2))
        assert [p.name for p in pipeline.files] == [f"{i:02d}.png" for i in range(shard, n, 2)]
        seen.append(set(epoch))
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(n))


def test_shards_of_the_train_folder_never_share_a_file(train_dir: Path) -> None:
    p0 = data.make_pipeline(str(train_dir), batch_size=4, image_size=32, seed=0, shard_index=0, shard_count=2)
    p1 = data.make_pipeline(str(train_dir), batch_size=4, image_size=32, seed=0, shard_index=1, shard_count=2)
    files0 = {p0.source.files[int(i)] for i in p0.order[:250]}
    files1 = {p1.source.files[int(i)] for i in p1.order[:250]}
    assert len(files0) == len(files1) == 250
    assert not files0 & files1
    assert p0.stats["shard_files"] == p1.stats["shard_files"] == 250
    # The next epoch is a different permutation of the same files.
    second = [int(i) for i in p0.order[250:500]]
    assert {p0.source.files[i] for i in second} == files0
    assert second != [int(i) for i in p0.order[:250]]


def test_random_crop_shapes_and_determinism() -> None:
    for h, w in [(1, 1), (5, 300), (321, 481), (64, 64)]:
        img = _noise(h, w, h)
        a = data.random_crop(img, np.random.default_rng(0), 48)
        b = data.random_crop(img, np.random.default_rng(0), 48)
        assert a.shape == (48, 48, 3) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)


def test_decode_applies_exif_orientation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.fromarray(_noise(20, 40, 0)).save(tmp_path / "r.jpg", exif=exif)
    assert data.decode_uint8(tmp_path / "r.jpg").shape == (40, 20, 3)


def test_bad_options() -> None:
    spec = "unused"
    with pytest.raises(OptionError):
        data.make_pipeline(spec, batch_size=0, image_size=32, seed=0)
    with pytest.raises(OptionError):
        data.make_pipeline(spec, batch_size=2, image_size=32, seed=0, shard_index=2, shard_count=2)
    with pytest.raises(OptionError):
        data.make_pipeline(spec, batch_size=2, image_size=32, seed=-1)
    with pytest.raises(OptionError, match="tfds:NAME"):
        data.make_pipeline("tfds:", batch_size=2, image_size=32, seed=0)
    assert data.parse_spec("tfds:coco/2014") == ("tfds", "coco/2014", "train")
    assert data.parse_spec("tfds:coco/2014:train[:10%]") == ("tfds", "coco/2014", "train[:10%]")


# --------------------------------------------------------------------------------------------
# TFDS source (no TensorFlow: the builder is restored from files, decoding uses PIL)
# --------------------------------------------------------------------------------------------


def _tfds_metadata(root: Path, num_examples: int) -> tuple[Path, object]:
    """``root/coco/2014/1.1.0`` with features.json and dataset_info.json, as ``tfds build`` writes."""
    tfds = pytest.importorskip("tensorflow_datasets")
    folder = root / "coco" / "2014" / "1.1.0"
    folder.mkdir(parents=True)
    features = tfds.features.FeaturesDict({
        "image": tfds.features.Image(encoding_format="jpeg"),
        "image/filename": tfds.features.Text(),
        "image/id": np.int64,
    })
    features.save_config(str(folder))
    info = {
        "name": "coco", "version": "1.1.0", "configName": "2014", "fileFormat": "array_record",
        "moduleName": "tensorflow_datasets.object_detection.coco",
        "splits": [{"name": "train", "numBytes": "1000", "shardLengths": [str(num_examples)],
                    "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"}],
    }
    (folder / "dataset_info.json").write_text(json.dumps(info))
    return folder, features


def test_tfds_mock_data_yields_batches(tmp_path: Path) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    _tfds_metadata(tmp_path, 8)
    # USE_FILES: metadata from our data_dir, random examples instead of ArrayRecord files.
    # (USE_CODE would run COCO's builder code, whose _info() needs TensorFlow.)
    with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_FILES, data_dir=str(tmp_path)):
        pipeline = data.make_pipeline("tfds:coco/2014", batch_size=2, image_size=32, seed=0)
        batches = _take(pipeline, 3)
        again = _take(data.make_pipeline("tfds:coco/2014", batch_size=2, image_size=32, seed=0), 3)
    assert all(b.shape == (2, 32, 32, 3) and b.dtype == np.uint8 for b in batches)
    for x, y in zip(batches, again, strict=True):
        np.testing.assert_array_equal(x, y)
    assert pipeline.stats["files"] == 8 and pipeline.stats["skipped"] == 0


def test_tfds_real_array_record_without_tensorflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arm = pytest.importorskip("array_record.python.array_record_module")
    n = 6
    folder, features = _tfds_metadata(tmp_path, n)
    writer = arm.ArrayRecordWriter(str(folder / "coco-train.array_record-00000-of-00001"), "group_size:1")
    for i in range(n):
        jpeg = _jpeg_bytes(np.full((20 + i, 30, 3), _colour(i), np.uint8), quality=95)
        if i == 4:
            jpeg = jpeg[:40]  # a broken image inside a valid record
        writer.write(features.serialize_example({"image": io.BytesIO(jpeg), "image/filename": f"{i}.jpg",
                                                 "image/id": i}))
    writer.close()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))

    pipeline = data.make_pipeline("tfds:coco/2014", batch_size=1, image_size=8, seed=2, num_threads=2)
    yielded = [_colour_index(b[0], n) for b in _take(pipeline, 10)]  # two epochs of the 5 good ones
    expected = [int(i) for i in pipeline.order[:12] if int(i) != 4]
    assert yielded == expected[:10]
    assert pipeline.stats == {"files": n, "shard_files": n, "skipped": 1, "decoded": pipeline.stats["decoded"]}


def test_tfds_not_prepared_says_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(JaxstyleError, match=r"not prepared .*tfds build coco/2014 .*--manual_dir") as info:
        data.make_pipeline("tfds:coco/2014", batch_size=2, image_size=32, seed=0)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------
# prepare_crops
# --------------------------------------------------------------------------------------------


def test_prepare_crops(train_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    originals = sorted(train_dir.glob("*.jpg"))[:5]
    for k, path in enumerate(originals):  # links, not copies of the shared data
        (src / ("sub" if k == 0 else "") / path.name).symlink_to(path)
    (src / "broken.jpg").write_text("not an image")
    dst = tmp_path / "out"

    assert data.prepare_crops(src, dst, 96) == 5
    written = sorted(p.name for p in dst.iterdir())
    assert len(written) == 5 and f"sub__{originals[0].name}" in written  # flat names, no temp files
    for path in dst.iterdir():
        with Image.open(path) as img:
            assert img.format == "JPEG"
            img.load()
            assert min(img.size) == 96
            assert max(img.size) in (143, 144)  # 481x321 keeps its aspect
    with pytest.raises(OptionError, match="inside the source"):
        data.prepare_crops(src, src / "crops", 96)
