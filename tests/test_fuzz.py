"""Fuzzing our file readers with Hypothesis: random bytes and mutated small valid files.

The only allowed outcomes are a clean load or one of our own errors (``JaxstyleError``); any other
exception, a malformed result or a hang fails (see ``tests/helpers/fuzzing.py``). The run here is
short and derandomised, so CI sees the same inputs every time; ``bench/fuzz.py`` runs the same
targets with many more examples.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from helpers import fuzzing
from hypothesis import HealthCheck, given, settings

EXAMPLES = 150

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,  # derandomised: nothing to remember, and no .hypothesis/ folder in the checkout
    deadline=timedelta(seconds=5),  # one small file: milliseconds; fuzzing.HANG_SECONDS stops real hangs
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.filterwarnings("ignore")  # PIL warns about corrupt EXIF etc.; warnings are not failures
@pytest.mark.parametrize("target", fuzzing.targets(), ids=lambda t: t.name)
def test_reader_gives_a_clean_load_or_our_error(target: fuzzing.Target, tmp_path: Path) -> None:
    @FUZZ_SETTINGS
    @given(data=target.strategy)
    def property_(data: bytes) -> None:
        outcome, err = fuzzing.feed(target, data, tmp_path)
        if outcome == fuzzing.OTHER:
            raise AssertionError(f"{target.name}: {fuzzing.describe(err)}") from err

    property_()


def test_seed_files_load_cleanly(tmp_path: Path) -> None:
    """The mutated targets start from valid files (else they would only ever test one error path)."""
    seeded = [t for t in fuzzing.targets() if t.seed is not None]
    assert len(seeded) == 6
    for target in seeded:
        assert fuzzing.feed(target, target.seed, tmp_path) == (fuzzing.CLEAN, None), target.name


def test_a_hang_counts_as_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forever(path: Path) -> None:
        while True:
            pass

    monkeypatch.setattr(fuzzing, "HANG_SECONDS", 0.2)
    target = fuzzing.Target("hang", fuzzing.random_bytes(), forever, lambda result: None, ".bin")
    outcome, err = fuzzing.feed(target, b"", tmp_path)
    assert outcome == fuzzing.OTHER and isinstance(err, fuzzing.Hang)
