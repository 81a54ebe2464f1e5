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


#: Tests marked ``slow`` (``make check`` runs ``-m "not slow"``; ``make test`` runs all): every test that
#: took 10 s or more in a full run (``--durations``, 2026-12-02, 2-core box under load ~15: the suite took
#: 43 min there). Seconds measured in that run, per test function (all its parameters).
SLOW_TESTS = {
    "test_crash_resume.py::test_sigkill_and_sigint_at_random_points_lose_nothing": 452,
    "test_backprop.py::test_multiscale_is_not_worse_than_single_scale_at_equal_iterations": 253,
    "test_evaluate.py::test_evaluate_writes_tables_json_and_figures": 209,
    "test_train.py::test_two_processes_with_jax_distributed_equal_single_process": 165,
    "test_fast.py::test_distillation_lowers_loss_and_exports_a_width_16_model": 120,
    "test_train.py::test_two_device_sharded_step_equals_one_device": 99,
    "test_train.py::test_loss_falls_on_real_photos": 96,
    "test_fast.py::test_train_cli_teacher_takes_the_teachers_style_and_needs_no_vgg": 67,
    "test_tiling.py::test_tiled_gradient_equals_whole_gradient": 61,
    "test_backprop.py::test_other_optimizers_also_converge": 79,
    "test_determinism.py::test_training_is_bit_identical": 53,
    "test_backprop.py::test_texture_synthesis_lowers_style_loss_tenfold": 50,
    "test_train.py::test_warmup_brings_output_close_to_input": 50,
    "test_backprop.py::test_gatys_lowers_total_and_style_loss": 49,
    "test_backprop.py::test_multiscale_gives_requested_size_and_beats_single_scale_at_equal_cost": 47,
    "test_tiling.py::test_tiled_gatys_matches_whole": 43,
    "test_train.py::test_resume_restores_state_and_matches_uninterrupted_run": 41,
    "test_cli_stylize.py::test_gatys_multiscale_cli": 41,
    "test_fast.py::test_narrow_cuts_a_net_to_a_smaller_width_and_starts_the_student": 34,
    "test_fast.py::test_channel_padding_of_9x9_convs_is_exact": 33,
    "test_train.py::test_nan_loss_stops_and_keeps_last_good_checkpoint": 28,
    "test_backprop.py::test_gatys_blend_and_preserve_color": 28,
    "test_tiling.py::test_tiled_adam_lowers_the_loss": 22,
    "test_fast.py::test_stylize_fast_cli": 20,
    "test_tiling.py::test_auto_tiling_leaves_small_images_bit_identical": 19,
    "test_serve_load.py::test_fifty_clients_are_all_answered_and_memory_stays_bounded": 19,
    "test_determinism.py::test_gatys_is_bit_identical": 18,
    "test_cli_stylize.py::test_transform_folder_and_sheet": 17,
    "test_serve.py::test_gatys_job_with_uploaded_style": 16,
    "test_train.py::test_cli_bad_inputs_exit_2": 16,
    "test_cli_stylize.py::test_gatys_writes_image_and_report": 15,
    "test_cli_stylize.py::test_transform_strength_blend_and_preserve_color": 14,
    "test_cli_stylize.py::test_texture_writes_requested_size": 11,
    "test_determinism.py::test_inference_is_bit_identical": 11,
    "test_serve.py::test_browser_end_to_end": 11,  # skipped without chromium
    "test_bad_input.py::test_bad_input[vgg_npz_with_pickle-train]": 23,  # one case: the others take ~1 s
    # Measured under load (about 3x a quiet machine's times):
    "test_universal.py::test_brief_training_lowers_reconstruction_loss": 60,  # all four levels
    "test_universal.py::test_cli_writes_an_arbitrary_image_of_the_right_size": 20,
    "test_universal.py::test_tiled_matches_untiled": 100,
    "test_universal.py::test_train_decoders_cli_lowers_loss_resumes_and_exports": 40,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        key = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        if key in SLOW_TESTS or f"{item.path.name}::{item.name}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
