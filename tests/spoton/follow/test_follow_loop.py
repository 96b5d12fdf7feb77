"""The closed follow loop over the PTZ camera simulator keeps a PETS pedestrian centred (a loose check of bench/follow.py)."""
from __future__ import annotations

import pytest

from bench.follow import run_follow
from spoton.evaluation.mot import MotBoxes

pytestmark = pytest.mark.integration


def test_closed_loop_keeps_the_target_centred_and_reacquires_it(sample_video, shared_dir):
    gt = MotBoxes.read_mot(shared_dir / "pets" / "gt_view1_frames0000-0399.txt")
    run = run_follow(sample_video, gt, gt_id=9, start=0, frames=250, camera="sim")
    assert run.visible >= 200
    assert run.centred_fraction >= 0.7, run
    assert run.time_to_lock_s is not None and run.commands > 10
    assert any(right for _, right in run.reacquisitions), run.reacquisitions
