"""The sample's floor-plan drawing: a 1 m grid, labelled axes, the cameras' footprints and the zones."""
from __future__ import annotations

import math

import cv2
import numpy as np

from spoton.site.model import FloorPlan

FLOOR_PLAN_PIXELS_PER_METRE = 20
FLOOR_PLAN_MARGIN_M = 2.0
FLOOR_PLAN_IMAGE_KEY = "floor_plan.png"

# Named floor areas (metres) for occupancy / dwell analytics.
ZONES_M: dict[str, tuple[tuple[float, float], ...]] = {
    "crossing": ((-11.0, -10.5), (-5.0, -10.5), (-5.0, -3.5), (-11.0, -3.5)),
    "north_path": ((-10.0, -3.5), (-5.0, -3.5), (-5.0, 7.0), (-10.0, 7.0)),
    "east_road": ((-5.0, -11.5), (7.0, -11.5), (7.0, -5.5), (-5.0, -5.5)),
    "south_path": ((-15.0, -16.5), (-8.0, -16.5), (-8.0, -10.5), (-15.0, -10.5)),
}

CAMERA_COLOURS_BGR = [(40, 40, 220), (40, 150, 40), (200, 110, 20), (160, 40, 160), (0, 140, 220)]


def floor_plan_around(cameras, zones) -> FloorPlan:
    """A +Y-up floor plan spanning every footprint and zone plus a margin, on whole metres."""
    points = np.concatenate([c.footprint_m for c in cameras] + [z.polygon_m for z in zones])
    xmin, ymin = np.floor(points.min(axis=0) - FLOOR_PLAN_MARGIN_M)
    xmax, ymax = np.ceil(points.max(axis=0) + FLOOR_PLAN_MARGIN_M)
    ppm = float(FLOOR_PLAN_PIXELS_PER_METRE)
    size = (int(round((xmax - xmin) * ppm)), int(round((ymax - ymin) * ppm)))
    return FloorPlan(FLOOR_PLAN_IMAGE_KEY, size, 1.0 / ppm, (float(xmin), float(ymax)), "up")


def draw_floor_plan(floor_plan: FloorPlan, cameras, zones) -> np.ndarray:
    """Render the floor plan (BGR): 1 m grid, labelled axes, camera footprints, zones."""
    w, h = floor_plan.size_px
    ppm = floor_plan.pixels_per_metre
    xmin, ymin, xmax, ymax = floor_plan.bounds_m
    image = np.full((h, w, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX

    for x in range(int(math.ceil(xmin)), int(math.floor(xmax)) + 1):
        px = int(round((x - xmin) * ppm))
        colour = (120, 120, 120) if x == 0 else (200, 200, 200) if x % 5 == 0 else (232, 232, 232)
        cv2.line(image, (px, 0), (px, h - 1), colour, 1)
    for y in range(int(math.ceil(ymin)), int(math.floor(ymax)) + 1):
        py = int(round((ymax - y) * ppm))
        colour = (120, 120, 120) if y == 0 else (200, 200, 200) if y % 5 == 0 else (232, 232, 232)
        cv2.line(image, (0, py), (w - 1, py), colour, 1)

    overlay = image.copy()
    for i, camera in enumerate(cameras):
        colour = CAMERA_COLOURS_BGR[i % len(CAMERA_COLOURS_BGR)]
        polygon = np.round(floor_plan.to_pixels(camera.footprint_m)).astype(np.int32)
        cv2.fillPoly(overlay, [polygon], colour, lineType=cv2.LINE_AA)
    image = cv2.addWeighted(overlay, 0.12, image, 0.88, 0)
    for i, camera in enumerate(cameras):
        colour = CAMERA_COLOURS_BGR[i % len(CAMERA_COLOURS_BGR)]
        polygon = np.round(floor_plan.to_pixels(camera.footprint_m)).astype(np.int32)
        cv2.polylines(image, [polygon], True, colour, 2, lineType=cv2.LINE_AA)

    for zone in zones:
        polygon = np.round(floor_plan.to_pixels(zone.polygon_m)).astype(np.int32)
        cv2.polylines(image, [polygon], True, (60, 60, 60), 1, lineType=cv2.LINE_AA)
        top_left = polygon[np.argmin(polygon[:, 0] + polygon[:, 1])]
        cv2.putText(image, zone.name, (int(top_left[0]) + 3, int(top_left[1]) + 13), font, 0.4,
                    (60, 60, 60), 1, cv2.LINE_AA)

    # axis labels every 5 m along the bottom and left edges
    for x in range(int(math.ceil(xmin / 5) * 5), int(xmax) + 1, 5):
        px = int(round((x - xmin) * ppm))
        if px > w - 110:
            continue
        cv2.putText(image, f"{x}", (px + 2, h - 6), font, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    for y in range(int(math.ceil(ymin / 5) * 5), int(ymax) + 1, 5):
        py = int(round((ymax - y) * ppm))
        if py < 45:
            continue
        cv2.putText(image, f"{y}", (3, py - 3), font, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.putText(image, "X (m) ->", (w - 90, h - 6), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "Y (m) ^", (3, 30), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)

    # legend
    x0, y0 = w - 150, 12
    cv2.rectangle(image, (x0 - 8, y0 - 6), (w - 6, y0 + 18 * len(cameras) + 20), (255, 255, 255), -1)
    cv2.rectangle(image, (x0 - 8, y0 - 6), (w - 6, y0 + 18 * len(cameras) + 20), (150, 150, 150), 1)
    for i, camera in enumerate(cameras):
        colour = CAMERA_COLOURS_BGR[i % len(CAMERA_COLOURS_BGR)]
        y = y0 + 18 * i + 8
        cv2.line(image, (x0, y), (x0 + 22, y), colour, 3)
        cv2.putText(image, f"{camera.name} footprint", (x0 + 28, y + 4), font, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
    y = y0 + 18 * len(cameras) + 8
    cv2.line(image, (x0, y), (x0 + 22, y), (60, 60, 60), 1)
    cv2.putText(image, "zone", (x0 + 28, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "grid: 1 m", (10, 14), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return image
