"""Cameras: the weak-perspective crop cameras HaMeR predicts, their translations for the full
frame's perspective camera, the pinhole projection every camera here shares, and a crop's pinhole
camera placed in the full frame.

A weak-perspective crop camera is (s, tx, ty): the crop, `size` pixels wide, sees the object
scaled by s and shifted by (tx, ty) in units of half the crop. Under a perspective camera of
focal length f it is the translation (tx, ty, 2f / (size * s)).
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

import numpy as np
import torch
from numpy.typing import ArrayLike

MIN_DEPTH = 1e-3  # metres: a point no further in front of the camera than this has no image
Focal = TypeVar("Focal", float, np.ndarray)


def weak_perspective_translation(cam: torch.Tensor, focal: float, size: float) -> torch.Tensor:
    """(B, 3) crop cameras (s, tx, ty) -> (B, 3) translations for a camera of focal length `focal`
    (pixels) centred on the `size`-pixel crop."""
    depth = 2 * focal / (size * cam[:, 0] + 1e-9)
    return torch.stack([cam[:, 1], cam[:, 2], depth], dim=-1)


def full_frame_translation(
    cam: torch.Tensor,
    center: torch.Tensor,
    size: torch.Tensor,
    frame_size: torch.Tensor,
    focal: float | torch.Tensor,
) -> torch.Tensor:
    """(B, 3) crop cameras (s, tx, ty) of square crops with centres (B, 2) and sides (B,) in frame
    pixels -> (B, 3) translations for the full frame's camera: focal length `focal` (scalar or
    (B,)), principal point at the centre of the frame, whose (width, height) is `frame_size` (B, 2)
    (HaMeR's `cam_crop_to_full`)."""
    scale = size * cam[:, 0] + 1e-9
    tz = 2 * focal / scale
    tx = 2 * (center[:, 0] - frame_size[:, 0] / 2.0) / scale + cam[:, 1]
    ty = 2 * (center[:, 1] - frame_size[:, 1] / 2.0) / scale + cam[:, 2]
    return torch.stack([tx, ty, tz], dim=-1)


@overload
def project(
    points: torch.Tensor, focal: float | torch.Tensor, princpt: float | torch.Tensor = 0.0
) -> torch.Tensor: ...
@overload
def project(points: np.ndarray, focal: ArrayLike, princpt: ArrayLike = 0.0) -> np.ndarray: ...
def project(points: Any, focal: Any, princpt: Any = 0.0) -> Any:
    """Pinhole projection of camera-frame points (..., 3) (x right, y down, z forward) to image
    points (..., 2): `focal * (x, y) / z + princpt`. `focal` and `princpt` are scalars, (fx, fy) /
    (cx, cy), or anything broadcasting against (..., 2); the principal point defaults to the origin
    (a crop camera's). A point at depth MIN_DEPTH or less, behind the camera, has no image: NaN.
    Tensors are projected by torch (HaMeR's crops: their dtype, promoted as torch promotes);
    anything else in float64 NumPy (the skeleton, the hands' placement)."""
    where: Any = np.where
    if isinstance(points, torch.Tensor):
        where = torch.where
    else:
        points, focal, princpt = (np.asarray(v, np.float64) for v in (points, focal, princpt))
    depth = points[..., 2:]
    in_front = depth > MIN_DEPTH
    with np.errstate(divide="ignore", invalid="ignore"):  # unknown (NaN, infinite) points stay unknown
        pixels = points[..., :2] / where(in_front, depth, 1.0) * focal + princpt
    return where(in_front, pixels, float("nan"))


def full_frame_focal(focal: Focal, crop_size: float, width: int, height: int) -> Focal:
    """The focal length of a crop camera (`focal`, a scalar or (N,), for a `crop_size`-pixel crop)
    scaled to the longer side of a width x height frame, as HaMeR's video script renders whole
    frames."""
    return focal / crop_size * max(width, height)


def crop_camera_in_frame(
    focal: tuple[float, float],
    princpt: tuple[float, float],
    input_size: tuple[int, int],
    box_xywh: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The pinhole camera (fx, fy), (cx, cy) of a network input of `input_size` (height, width),
    cut from the box (4,) x, y, w, h of the frame, as that box's camera in frame pixels:
    (2,) focal lengths and (2,) principal point, float32."""
    x, y, w, h = (float(v) for v in box_xywh)
    input_h, input_w = input_size
    focal_full = np.array([focal[0] / input_w * w, focal[1] / input_h * h], np.float32)
    princpt_full = np.array([princpt[0] / input_w * w + x, princpt[1] / input_h * h + y], np.float32)
    return focal_full, princpt_full
