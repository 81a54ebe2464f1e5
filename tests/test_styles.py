"""jaxstyle.io.styles: built-in names from the local folder, the cache, or a (faked) download."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request

import numpy as np
import pytest

from jaxstyle.errors import StyleError
from jaxstyle.io import styles
from jaxstyle.io.styles import BUILTIN_STYLES, STYLES_DIR_ENV, load_style, resolve_style

NAMES = ["scream", "starry_night", "wave", "udnie", "composition_vii"]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No styles folder, an empty cache, and a network that must not be used unless a test says so."""
    monkeypatch.delenv(STYLES_DIR_ENV, raising=False)
    monkeypatch.setenv("JAXSTYLE_CACHE", str(tmp_path / "cache"))

    def no_network(url, timeout=None):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path / "cache" / "styles"


def test_builtin_table():
    assert sorted(BUILTIN_STYLES) == sorted(NAMES)
    for name, source in BUILTIN_STYLES.items():
        assert source.filename == f"{name}.jpg"
        assert source.url.startswith(
            "https://raw.githubusercontent.com/jcjohnson/fast-neural-style/"
            "813c83441953ead2adb3f65f4cc2d5599d735fa7/images/styles/"
        )
        assert len(source.sha256) == 64
    assert BUILTIN_STYLES["scream"].url.endswith("/the_scream.jpg")


def test_checksums_match_shared_manifest(data_dir):
    sums = dict(line.split()[::-1] for line in (data_dir / "SHA256SUMS").read_text().splitlines() if line)
    for source in BUILTIN_STYLES.values():
        assert sums[f"styles/{source.filename}"] == source.sha256


@pytest.mark.parametrize("name", NAMES)
def test_builtin_names_resolve_from_styles_dir(name, data_dir, monkeypatch):
    monkeypatch.setenv(STYLES_DIR_ENV, str(data_dir / "styles"))
    path = resolve_style(name)
    assert path == data_dir / "styles" / f"{name}.jpg"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == BUILTIN_STYLES[name].sha256


def test_load_style(data_dir, monkeypatch):
    monkeypatch.setenv(STYLES_DIR_ENV, str(data_dir / "styles"))
    img = load_style("starry_night")
    assert img.dtype == np.float32 and img.shape == (640, 1024, 3)


def test_unknown_name_lists_valid_names():
    with pytest.raises(StyleError) as info:
        resolve_style("foo")
    message = str(info.value)
    assert "unknown style 'foo'" in message
    for name in NAMES:
        assert name in message


def test_existing_file_resolves_to_itself(tmp_path):
    own = tmp_path / "my style.png"
    own.write_bytes(b"any bytes: checked later by load_image")
    assert resolve_style(own) == own
    assert resolve_style(str(own)) == own


def test_wrong_file_in_styles_dir(tmp_path, monkeypatch):
    (tmp_path / "wave.jpg").write_bytes(b"not the wave")
    monkeypatch.setenv(STYLES_DIR_ENV, str(tmp_path))
    with pytest.raises(StyleError, match="sha256"):
        resolve_style("wave")
    with pytest.raises(StyleError, match="not found"):
        resolve_style("udnie")


def test_no_network_and_empty_cache(offline):
    with pytest.raises(StyleError) as info:
        resolve_style("scream")
    message = str(info.value)
    assert STYLES_DIR_ENV in message and "network" in message and "\n" not in message
    assert not offline.exists() or list(offline.iterdir()) == []


def test_download_lands_in_cache(offline, data_dir, monkeypatch):
    payload = (data_dir / "styles" / "udnie.jpg").read_bytes()
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append((url, timeout))
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    path = resolve_style("udnie")
    assert path == offline / "udnie.jpg"
    assert path.read_bytes() == payload
    assert requested == [(BUILTIN_STYLES["udnie"].url, styles.DOWNLOAD_TIMEOUT_S)]
    assert [p.name for p in offline.iterdir()] == ["udnie.jpg"]  # no temp files

    # Second call: served from the cache, no download.
    requested.clear()
    assert resolve_style("udnie") == path and requested == []


def test_download_checksum_mismatch_leaves_nothing(offline, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(b"an error page"))
    with pytest.raises(StyleError, match="sha256"):
        resolve_style("wave")
    assert list(offline.iterdir()) == []


def test_damaged_cache_entry_is_replaced(offline, data_dir, monkeypatch):
    offline.mkdir(parents=True)
    (offline / "wave.jpg").write_bytes(b"damaged")
    payload = (data_dir / "styles" / "wave.jpg").read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(payload))
    assert resolve_style("wave").read_bytes() == payload


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXSTYLE_CACHE", str(tmp_path / "a"))
    assert styles.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("JAXSTYLE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert styles.cache_dir() == tmp_path / "xdg" / "jaxstyle"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert styles.cache_dir() == tmp_path / "home" / ".cache" / "jaxstyle"
