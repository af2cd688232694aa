"""Crops: boxes grown to a network's aspect, the affine transforms that map them onto the
network's input, and the warp that cuts them.

Boxes are pixels of the frame, xyxy (x0, y0, x1, y1) or xywh (x, y, width, height) as named;
transforms are OpenCV's (2, 3) float64 affine matrices from frame pixels to crop pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def expand_to_aspect(size: np.ndarray, aspect: Sequence[int]) -> np.ndarray:
    """(2,) box size (w, h) grown to the w:h `aspect` by lengthening one side (HaMeR's
    `expand_to_aspect_ratio`) -> (2,)."""
    w, h = size
    target_w, target_h = aspect
    if h / w < target_h / target_w:
        return np.array([w, max(w * target_h / target_w, h)])
    return np.array([max(h * target_w / target_h, w), h])


def fit_box(box_xywh: np.ndarray, width: int, height: int, aspect: float, ratio: float) -> np.ndarray | None:
    """(4,) xywh box -> (4,) float32 xywh: clipped to the width x height frame, grown to the w/h
    `aspect` around its centre, then by `ratio` (SMPLer-X's `process_bbox`); None for a box that
    has no area inside the frame."""
    x, y, w, h = (float(v) for v in box_xywh)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1))
    if not (w * h > 0 and x2 > x1 and y2 > y1):
        return None
    w, h = x2 - x1, y2 - y1
    cx, cy = x1 + w / 2.0, y1 + h / 2.0
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    w, h = w * ratio, h * ratio
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h], dtype=np.float32)


def box_to_center_scale(box_xyxy: np.ndarray, aspect: float, padding: float) -> tuple[np.ndarray, np.ndarray]:
    """(4,) xyxy box -> its (2,) centre and (2,) size grown by `padding` and then to the w/h
    `aspect` (mmpose's `bbox_xyxy2cs` and `_fix_aspect_ratio`), float64."""
    x0, y0, x1, y1 = (np.array([value]) for value in box_xyxy)
    center = np.hstack([x0 + x1, y0 + y1]) * 0.5
    scale = np.hstack([x1 - x0, y1 - y0]) * padding
    w, h = scale[:1], scale[1:]
    scale = np.where(w > h * aspect, np.hstack([w, w / aspect]), np.hstack([h * aspect, h]))
    return center, scale


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point that makes a right angle at b with a, turned counter-clockwise."""
    direction = a - b
    return b + np.r_[-direction[1], direction[0]]


def center_scale_transform(center: np.ndarray, scale: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The (2, 3) transform that maps the region of (2,) `center` and (2,) `scale` (its width
    decides) onto a picture of `size` (width, height) (mmpose's `get_warp_matrix` without rotation)."""
    width, height = size
    src = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = center
    src[1, :] = center + np.array([0.0, scale[0] * -0.5])
    src[2, :] = _third_point(src[0, :], src[1, :])
    dst = np.zeros((3, 2), dtype=np.float32)
    dst[0, :] = [width * 0.5, height * 0.5]
    dst[1, :] = np.array([width * 0.5, height * 0.5]) + np.array([0.0, width * -0.5])
    dst[2, :] = _third_point(dst[0, :], dst[1, :])
    return cv2.getAffineTransform(src, dst)


def patch_transform(cx: float, cy: float, width: float, height: float, out_w: int, out_h: int) -> np.ndarray:
    """The (2, 3) transform that maps the `width` x `height` box around (cx, cy) onto an
    `out_w` x `out_h` picture (`gen_trans_from_patch_cv` of HaMeR and SMPLer-X without rotation
    or scale; float32 points, as there)."""
    src = np.array([[cx, cy], [cx, cy + height * 0.5], [cx + width * 0.5, cy]], dtype=np.float32)
    half_w, half_h = out_w * 0.5, out_h * 0.5
    dst = np.array([[half_w, half_h], [half_w, half_h + half_h], [half_w + half_w, half_h]], dtype=np.float32)
    return cv2.getAffineTransform(src, dst)


def warp(image: np.ndarray, transform: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The (height, width, C) crop of (H, W, C) `image` through the (2, 3) `transform`, `size`
    (width, height): bilinear, black beyond the image."""
    return np.asarray(
        cv2.warpAffine(
            image,
            transform,
            (int(size[0]), int(size[1])),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    )
