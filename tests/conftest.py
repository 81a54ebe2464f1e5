"""Shared test setup: where the shared read-only data lives, and an isolated style cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The shared data folder: ``$JAXSTYLE_DATA``, else ``<repo>/../shared/data``; skips if missing."""
    path = Path(os.environ.get("JAXSTYLE_DATA") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} (set JAXSTYLE_DATA)")
    return path


@pytest.fixture(name="data_dir")
def _data_dir_fixture() -> Path:
    return data_dir()


@pytest.fixture(autouse=True, scope="session")
def _jaxstyle_env(tmp_path_factory: pytest.TempPathFactory):
    """Built-in styles come from the shared data (no network); the cache is a throwaway folder.

    The ported VGG19 stays where it was found before the cache moved (``make test`` ports it into
    the user cache first), pinned by ``$JAXSTYLE_VGG_WEIGHTS`` so no test ports it again.
    """
    from jaxstyle import vgg_weights

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(vgg_weights.ENV_VAR, str(vgg_weights.vgg_weights_path()))
        styles = Path(os.environ.get("JAXSTYLE_DATA") or REPO.parent / "shared" / "data") / "styles"
        if not os.environ.get("JAXSTYLE_STYLES_DIR") and styles.is_dir():
            mp.setenv("JAXSTYLE_STYLES_DIR", str(styles))
        mp.setenv("JAXSTYLE_CACHE", str(tmp_path_factory.mktemp("jaxstyle-cache")))
        yield


#: The built-in style names the tests use.
TEST_STYLES = ("wave", "starry_night", "scream")


@pytest.fixture(scope="session")
def builtin_styles() -> None:
    """Skips a test that names a built-in style where neither the shared styles nor the network give one.

    The session's ``$JAXSTYLE_STYLES_DIR`` (the shared data) is read first; without it each style is
    downloaded once into the session's throwaway cache, and an offline machine skips.
    """
    from jaxstyle.errors import StyleError
    from jaxstyle.io import styles

    try:
        for name in TEST_STYLES:
            styles.builtin_style(name)
    except StyleError as err:
        pytest.skip(f"built-in styles unavailable: {err}")


@pytest.fixture(scope="session")
def vgg_params():
    """The ported VGG19 (``make test`` ports it first)."""
    from jaxstyle.vgg_weights import load_vgg_params

    return load_vgg_params()


@pytest.fixture(scope="session")
def small_pair():
    """A real content/style pair from the shared data, float32 in [0,1]."""
    from jaxstyle.io import images

    root = data_dir()
    content = images.fit_long_side(images.load_image(root / "content" / "tubingen.jpg"), 96)
    style = images.load_image(root / "styles" / "starry_night.jpg")
    return content, style
