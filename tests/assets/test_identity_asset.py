import math

import numpy as np
import pandas as pd

from assets.identity import cross_camera_agreement


def test_agreement_is_the_median_over_cross_camera_pairs_only():
    boxes = pd.DataFrame({
        "global_id":    [1, 1, 1, 1, 1, 2, 2],
        "global_frame": [0, 0, 0, 1, 1, 0, 0],
        "camera":       ["cam1", "cam2", "cam1", "cam1", "cam3", "cam2", "cam3"],
        "map_x":        [0.0, 1.0, 5.0, 2.0, 2.0, 0.0, np.nan],
        "map_y":        [0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0],
    })
    # frame 0 of id 1: cam1-cam2 pairs at 1 m and 4 m (the cam1-cam1 pair does not count);
    # frame 1: cam1-cam3 at 3 m; id 2 has one located box only
    median, pairs = cross_camera_agreement(boxes)
    assert pairs == 3
    assert median == 3.0


def test_no_instant_seen_by_two_cameras_gives_nan():
    boxes = pd.DataFrame({"global_id": [1, 2], "global_frame": [0, 0], "camera": ["cam1", "cam2"],
                          "map_x": [0.0, 1.0], "map_y": [0.0, 0.0]})
    median, pairs = cross_camera_agreement(boxes)
    assert pairs == 0 and math.isnan(median)
