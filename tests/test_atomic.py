"""jaxstyle.atomic: the one atomic-write helper every output goes through."""

from __future__ import annotations

import os
import stat

import pytest

from jaxstyle import atomic


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    assert atomic.write_atomic(target, '{"a": "é"}') == target
    assert target.read_text(encoding="utf-8") == '{"a": "é"}'
    atomic.write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert _hidden(tmp_path) == []


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "model.msgpack"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError, match="boom"), atomic.atomic_open(target) as f:
        f.write(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"good"
    assert _hidden(tmp_path) == []


def test_keyboard_interrupt_leaves_nothing(tmp_path):
    target = tmp_path / "new.png"
    with pytest.raises(KeyboardInterrupt), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_extension_and_is_unique(tmp_path):
    target = tmp_path / "clip.mp4"
    with atomic.atomic_path(target) as first, atomic.atomic_path(target) as second:
        assert first != second
        assert first.suffix == second.suffix == ".mp4"
        assert first.parent == tmp_path and first.name.startswith(".")
        assert first.exists() and first.stat().st_size == 0
        first.write_bytes(b"1")
        second.write_bytes(b"2")
    assert target.read_bytes() == b"1"  # the outer block finishes last, so its file wins, whole
    assert _hidden(tmp_path) == []


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic.write_atomic(tmp_path / "w.npz", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_missing_folder_raises_oserror_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic.write_atomic(tmp_path / "no" / "such" / "file.txt", "x")
    assert list(tmp_path.iterdir()) == []
