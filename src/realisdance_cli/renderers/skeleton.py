"""The DWPose skeleton picture, drawn exactly as the original release's `draw_pose`.

The released animator was trained on these pictures, so every primitive matches the original:
OpenCV ellipses for 17 limbs (stick width 4), the canvas dimmed to 60 %, joint circles (radius 4),
hand dots (radius 4, colour (0, 0, 255)) and 20 hand edges coloured around the HSV wheel
(thickness 2), and optional white face dots (radius 3). Points are drawn when their pixel
coordinates, truncated to integers, exceed 0.01 (the original's `eps` test), so -1 means hidden.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

STICK_WIDTH = 4
EPS = 0.01

# OpenPose limbs as 1-based joint pairs; only the first 17 are drawn (the last two are ear-shoulder).
LIMBS = (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12), (12, 13),
    (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18), (3, 17), (6, 18),
)  # fmt: skip
BODY_COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
# Hand edges: wrist to each finger's base, then along the finger (21 points: wrist, 5 x 4 joints).
HAND_EDGES = tuple(
    (0 if joint == 0 else 4 * finger + joint, 4 * finger + joint + 1)
    for finger in range(5)
    for joint in range(4)
)


def _hsv_wheel(fraction: float) -> tuple[float, float, float]:
    """matplotlib's `hsv_to_rgb([fraction, 1, 1]) * 255`, computed the same way in float64."""
    h6 = fraction * 6.0
    sector = math.floor(h6) % 6
    f = h6 - math.floor(h6)
    rising, falling = f, 1.0 - f
    rgb = (
        (1.0, rising, 0.0),
        (falling, 1.0, 0.0),
        (0.0, 1.0, rising),
        (0.0, falling, 1.0),
        (rising, 0.0, 1.0),
        (1.0, 0.0, falling),
    )[sector]
    return (rgb[0] * 255.0, rgb[1] * 255.0, rgb[2] * 255.0)


HAND_EDGE_COLOURS = tuple(_hsv_wheel(index / float(len(HAND_EDGES))) for index in range(len(HAND_EDGES)))


def draw_body(canvas: np.ndarray, candidate: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Limbs, the 0.6 dimming, then joints; returns a new canvas (the dimming makes a copy)."""
    height, width = canvas.shape[:2]
    for limb, colour in zip(LIMBS[:17], BODY_COLOURS, strict=False):
        for person in subset:
            index = person[np.array(limb) - 1]
            if -1 in index:
                continue
            ys = candidate[index.astype(int), 0] * float(width)
            xs = candidate[index.astype(int), 1] * float(height)
            mean_x, mean_y = np.mean(xs), np.mean(ys)
            length = ((xs[0] - xs[1]) ** 2 + (ys[0] - ys[1]) ** 2) ** 0.5
            angle = math.degrees(math.atan2(xs[0] - xs[1], ys[0] - ys[1]))
            polygon = cv2.ellipse2Poly(
                (int(mean_y), int(mean_x)), (int(length / 2), STICK_WIDTH), int(angle), 0, 360, 1
            )
            cv2.fillConvexPoly(canvas, np.asarray(polygon), colour)
    canvas = (canvas * 0.6).astype(np.uint8)
    for joint, colour in enumerate(BODY_COLOURS):
        for person in subset:
            index = int(person[joint])
            if index == -1:
                continue
            x, y = candidate[index][0:2]
            cv2.circle(canvas, (int(x * width), int(y * height)), 4, colour, thickness=-1)
    return canvas


def draw_hands(canvas: np.ndarray, hands: np.ndarray) -> np.ndarray:
    height, width = canvas.shape[:2]
    for peaks in hands:
        pixels = [(int(x * width), int(y * height)) for x, y in peaks]
        for x, y in pixels:
            if x > EPS and y > EPS:
                cv2.circle(canvas, (x, y), 4, (0, 0, 255), thickness=-1)
        for (a, b), colour in zip(HAND_EDGES, HAND_EDGE_COLOURS, strict=True):
            (x1, y1), (x2, y2) = pixels[a], pixels[b]
            if x1 > EPS and y1 > EPS and x2 > EPS and y2 > EPS:
                cv2.line(canvas, (x1, y1), (x2, y2), colour, thickness=2)
    return canvas


def draw_face(canvas: np.ndarray, faces: np.ndarray) -> np.ndarray:
    height, width = canvas.shape[:2]
    for landmarks in faces:
        for x, y in landmarks:
            px, py = int(x * width), int(y * height)
            if px > EPS and py > EPS:
                cv2.circle(canvas, (px, py), 3, (255, 255, 255), thickness=-1)
    return canvas


def draw_pose(pose: Mapping[str, Any], height: int, width: int, *, face: bool = False) -> np.ndarray:
    """The skeleton picture (uint8, H x W x 3) of one original-format pose dict."""
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas = draw_body(canvas, np.asarray(pose["bodies"]["candidate"]), np.asarray(pose["bodies"]["subset"]))
    canvas = draw_hands(canvas, np.asarray(pose["hands"]))
    if face and "faces" in pose:
        canvas = draw_face(canvas, np.asarray(pose["faces"]))
    return canvas
