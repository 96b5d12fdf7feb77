import numpy as np
import pyarrow as pa

from spoton.environment import FrameClock


def test_frame_clock_reads_step_and_rate_from_a_frames_table():
    global_frame = np.array([3, 6, 9, 12, 3, 6])  # two cameras, every 3rd frame of a 7 fps clock
    assert FrameClock.of(global_frame, global_frame / 7.0) == FrameClock(step=3, fps=7.0)
    assert FrameClock.of(pa.chunked_array([[0, 1, 2]]), pa.chunked_array([[0.0, 0.1, 0.2]])) == FrameClock(1, 10.0)
    assert FrameClock.of([], []) == FrameClock(1, 1.0)  # nothing decoded: a harmless default
