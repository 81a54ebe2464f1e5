"""bench/gatys_vs_pastiche's per-step times from callbacks that come back a read at a time."""

import pytest

from bench.gatys_vs_pastiche import _spread_stamps


def test_spread_stamps_gives_each_step_of_a_read_its_share():
    # step 1 read alone at t=1.0; steps 2-5 came back together at t=3.0; steps 6-7 at t=4.0
    stamps = [1.0, 3.0, 3.0001, 3.0002, 3.0003, 4.0, 4.0001]
    spread = _spread_stamps(stamps)
    assert spread == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0], abs=1e-3)
    assert all(b > a for a, b in zip(spread, spread[1:], strict=False))  # one step after another
    assert _spread_stamps([0.0, 1.0, 2.0]) == [0.0, 1.0, 2.0]  # read every step: unchanged
