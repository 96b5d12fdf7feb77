"""Draw tracked people on a frame: one box and an "ID n" tag per track.

A track keeps its colour in every frame and every view (the colour is a function of the
track id only), so a viewer can follow one person by colour alone. The tag sits on a filled
patch of the box colour with black or white text, whichever contrasts more, so it stays
readable on any background.
"""
from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

from spoton.records import Tracks

_GOLDEN = (math.sqrt(5) - 1) / 2  # successive ids land far apart on the hue circle
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def track_color(track_id: int) -> tuple[int, int, int]:
    """BGR colour of a track: stable per id, and neighbouring ids get very different hues."""
    hue = (int(track_id) * _GOLDEN) % 1.0
    # alternate brightness too, so ids whose hues happen to be close still differ
    value = 0.95 if int(track_id) % 2 == 0 else 0.75
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, value)
    return int(round(b * 255)), int(round(g * 255)), int(round(r * 255))


def _text_color(bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    b, g, r = bgr
    luminance = 0.299 * r + 0.587 * g + 0.114 * b
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def draw_tracks(image: np.ndarray, tracks: Tracks, *, labels: list[str] | None = None) -> np.ndarray:
    """Return a copy of ``image`` (BGR uint8) with each track's box and label ("ID 17" by default).

    ``labels`` replaces the default text, one string per track (e.g. a global identity).
    Boxes partly outside the frame are clipped; boxes with non-finite coordinates are skipped.
    """
    canvas = np.array(image, dtype=np.uint8, copy=True)
    if canvas.ndim == 2:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)
    if canvas.ndim != 3 or canvas.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3 BGR (or H x W grayscale), got shape {canvas.shape}")
    if labels is not None and len(labels) != len(tracks):
        raise ValueError(f"labels has {len(labels)} entries but there are {len(tracks)} tracks: "
                         "give one label per track")
    height, width = canvas.shape[:2]
    side = min(height, width)
    thickness = max(2, round(side / 300))
    font_scale = max(0.4, side / 1100)
    text_thickness = max(1, round(side / 500))
    pad = max(2, round(side / 200))

    for i in range(len(tracks)):
        box = tracks.xyxy[i]
        if not np.all(np.isfinite(box)):
            continue
        x1, x2 = (int(round(float(np.clip(v, 0, width - 1)))) for v in (box[0], box[2]))
        y1, y2 = (int(round(float(np.clip(v, 0, height - 1)))) for v in (box[1], box[3]))
        colour = track_color(int(tracks.track_id[i]))
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)

        text = labels[i] if labels is not None else f"ID {int(tracks.track_id[i])}"
        (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, font_scale, text_thickness)
        tag_h = text_h + baseline + 2 * pad
        tag_w = text_w + 2 * pad
        top = y1 - tag_h if y1 - tag_h >= 0 else y1  # above the box, else just inside it
        left = min(max(x1, 0), max(width - tag_w, 0))
        cv2.rectangle(canvas, (left, top), (left + tag_w, top + tag_h), colour, cv2.FILLED)
        cv2.putText(canvas, text, (left + pad, top + pad + text_h), _FONT, font_scale,
                    _text_color(colour), text_thickness, cv2.LINE_AA)
    return canvas
