"""Same inputs and seed, same machine -> bit-identical outputs: Gatys, training, inference.

Every comparison is exact (``np.testing.assert_array_equal``), not a tolerance.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

import jaxstyle
from jaxstyle import train
from jaxstyle.io import images


@pytest.mark.slow  # 18 s
def test_gatys_is_bit_identical(small_pair, vgg_params) -> None:
    content, style = small_pair

    def run(seed: int, **options) -> jaxstyle.GatysResult:
        return jaxstyle.gatys(content, style, vgg_params=vgg_params, size=32, iterations=3, seed=seed, **options)

    first, second = run(0), run(0)
    np.testing.assert_array_equal(first.image, second.image)
    assert first.history == second.history
    # The default recipe starts from the photo itself (no randomness); with the paper's content + noise
    # init the seed is what varies, and the same seed still gives the same image.
    noisy = run(0, init="content+noise")
    np.testing.assert_array_equal(noisy.image, run(0, init="content+noise").image)
    assert not np.array_equal(noisy.image, run(1, init="content+noise").image)


@pytest.mark.slow  # 53 s
def test_training_is_bit_identical(tmp_path: Path, data_dir: Path, vgg_params) -> None:
    # The sizes of tests/test_train.py's small_config: one suite run compiles this train step once.
    config = train.TrainConfig(style="starry_night", data=str(data_dir / "train"), steps=2, batch_size=2,
                               image_size=32, style_size=64, width=8, residual_blocks=1, seed=5)

    def run(workdir: Path) -> dict:
        result = train.run(config, workdir, vgg_params=vgg_params, checkpoint_every=2, progress=False,
                           log=lambda _: None)
        return result.params

    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    leaves = jax.tree.leaves_with_path(first)
    assert leaves and jax.tree.structure(first) == jax.tree.structure(second)
    for (path, a), b in zip(leaves, jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=jax.tree_util.keystr(path))


@pytest.mark.slow  # 11 s
def test_inference_is_bit_identical(data_dir: Path) -> None:
    photo = images.to_uint8(images.fit_long_side(images.load_image(data_dir / "content" / "cat.jpg"), 48))
    params = jaxstyle.load_transform("starry_night")
    first, second = jaxstyle.stylize(photo, params), jaxstyle.stylize(photo, params)
    assert first.dtype == np.uint8 and first.shape == photo.shape
    np.testing.assert_array_equal(first, second)
