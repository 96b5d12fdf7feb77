"""spoton.annotate: boxes and ID tags drawn on a copy, colours stable per track id."""
from __future__ import annotations

import numpy as np
import pytest

from spoton.annotate import draw_tracks, track_color
from spoton.records import Tracks


def make_tracks(boxes, ids) -> Tracks:
    n = len(ids)
    return Tracks(np.array(boxes, np.float32).reshape(n, 4), np.array(ids), np.ones(n),
                  np.zeros(n), np.arange(n))


def edge_pixels(image: np.ndarray, box) -> np.ndarray:
    """Pixels on the left and right edges of a box (the top edge holds the label)."""
    x1, y1, x2, y2 = box
    return np.concatenate([image[y1 + 10:y2 - 10, x1], image[y1 + 10:y2 - 10, x2]])


def test_draws_on_a_copy_and_marks_each_box(frame_100):
    boxes = [(100, 200, 180, 400), (400, 150, 470, 330)]
    tracks = make_tracks(boxes, [17, 4])
    before = frame_100.copy()
    out = draw_tracks(frame_100, tracks)
    np.testing.assert_array_equal(frame_100, before)  # input untouched
    assert out.shape == frame_100.shape and out.dtype == np.uint8
    for box, track_id in zip(boxes, [17, 4]):
        colour = np.array(track_color(track_id))
        edges = edge_pixels(out, box)
        assert np.mean(np.all(np.abs(edges.astype(int) - colour) <= 30, axis=1)) > 0.9
        x1, y1, x2, y2 = box
        # the label patch above the box changed the pixels there
        above = (slice(max(y1 - 12, 0), y1 - 2), slice(x1 + 2, x1 + 30))
        assert np.abs(out[above].astype(int) - frame_100[above]).mean() > 20
    # far from any box nothing changed
    np.testing.assert_array_equal(out[500:, 600:], frame_100[500:, 600:])


def test_colours_stable_per_id_and_distinct_between_ids(frame_100):
    box = (300, 200, 380, 380)
    first = draw_tracks(frame_100, make_tracks([box], [7]))
    again = draw_tracks(np.zeros_like(frame_100), make_tracks([(10, 100, 60, 200), box], [3, 7]))
    np.testing.assert_array_equal(edge_pixels(first, box)[:20], edge_pixels(again, box)[:20])
    other = draw_tracks(frame_100, make_tracks([box], [8]))
    assert not np.array_equal(edge_pixels(first, box), edge_pixels(other, box))
    colours = [track_color(i) for i in range(64)]
    assert len(set(colours)) == 64
    assert track_color(12345) == track_color(12345)
    for a, b in zip(colours, colours[1:]):  # neighbouring ids are far apart
        assert np.abs(np.subtract(a, b)).sum() > 60


def test_label_text_readable_on_dark_and_bright_backgrounds():
    tracks = make_tracks([(50, 60, 150, 200)], [17])
    for background in (0, 255):
        image = np.full((240, 320, 3), background, np.uint8)
        out = draw_tracks(image, tracks)
        tag = out[60 - 18:60, 50:110].astype(int)
        # the tag has both its fill colour and a contrasting text colour
        assert tag.std() > 30


def test_custom_labels_empty_tracks_and_clipping(frame_100):
    out = draw_tracks(frame_100, Tracks.empty())
    np.testing.assert_array_equal(out, frame_100)
    assert out is not frame_100
    tracks = make_tracks([(-50, -40, 100, 120), (700, 500, 900, 700)], [1, 2])
    out = draw_tracks(frame_100, tracks, labels=["G3", "G4"])  # partly outside: clipped
    assert not np.array_equal(out, frame_100)
    with pytest.raises(ValueError, match="one label per track"):
        draw_tracks(frame_100, tracks, labels=["only one"])
    nan_box = make_tracks([(np.nan, 0, 10, 10)], [5])
    np.testing.assert_array_equal(draw_tracks(frame_100, nan_box), frame_100)
