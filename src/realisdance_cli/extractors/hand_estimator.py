"""HaMeR on the hands of this run's DWPose stream -> `mano` records for the pose track.

Boxes are made as RealisDance's `hamer-main/inference_video.py` makes them: left hand = points
92-112 of the 134-point layout, right = 113-133; a hand is used when more than 6 of its 42
coordinates are known (a point scoring under 0.3 is unknown), and its box spans the known points.
Crops are made as HaMeR's demo `ViTDetDataset` makes them, with RealisDance's rescale factor 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from realisdance_cli.extractors.estimator import Estimator
from realisdance_cli.extractors.hamer.config import HamerConfig
from realisdance_cli.extractors.hamer.network import Hamer
from realisdance_cli.geometry.cameras import full_frame_focal, full_frame_translation
from realisdance_cli.geometry.crops import expand_to_aspect, patch_transform, warp
from realisdance_cli.original import SCORE_THRESHOLD
from realisdance_cli.track import LEFT_HAND, RIGHT_HAND

MIN_KNOWN_COORDINATES = 6
SIDES = ((False, LEFT_HAND), (True, RIGHT_HAND))
RESCALE_FACTOR = 2.0  # RealisDance's inference_video.py (the HaMeR demo default is 2.5)


@dataclass(frozen=True)
class HandBox:
    box: np.ndarray  # x0, y0, x1, y1 in pixels
    right: bool

    @property
    def usable(self) -> bool:
        """A box with no extent cannot be cropped (the original would fail on it)."""
        return bool(self.box[2] > self.box[0] or self.box[3] > self.box[1])


def hand_boxes(keypoints: np.ndarray, scores: np.ndarray) -> list[HandBox]:
    """The hands of one frame's people (keypoints (K, 134, 2), scores (K, 134)), left first."""
    boxes = []
    for person_points, person_scores in zip(keypoints, scores, strict=True):
        for right, side in SIDES:
            points = person_points[side]
            known = (person_scores[side] >= SCORE_THRESHOLD) & np.isfinite(points).all(axis=1)
            if 2 * int(known.sum()) > MIN_KNOWN_COORDINATES:
                seen = points[known]
                boxes.append(HandBox(np.concatenate([seen.min(axis=0), seen.max(axis=0)]), right))
    return boxes


@dataclass
class HandCrop:
    pixels: np.ndarray  # (3, S, S) float32, normalised RGB
    center: np.ndarray  # (2,) box centre in the frame (not mirrored)
    size: float  # side of the square the crop covers, in frame pixels
    frame_size: tuple[int, int]  # width, height of the frame


def _blurred(frame: np.ndarray, sigma: float, window: tuple[slice, slice]) -> np.ndarray:
    """The `window` of scikit-image's `gaussian(frame, sigma, channel_axis=2, preserve_range=True)`
    (float64, SciPy's nearest-edge filter, truncate 4), blurring only as far around it as the
    filter reaches."""
    from scipy import ndimage

    rows, cols = window
    radius = int(4.0 * sigma + 0.5)
    height, width = frame.shape[:2]
    outer = (
        slice(max(rows.start - radius, 0), min(rows.stop + radius, height)),
        slice(max(cols.start - radius, 0), min(cols.stop + radius, width)),
    )
    part = ndimage.gaussian_filter(
        frame[outer].astype(np.float64), sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0
    )
    inner = (
        slice(rows.start - outer[0].start, rows.stop - outer[0].start),
        slice(cols.start - outer[1].start, cols.stop - outer[1].start),
    )
    return part[inner]


def crop_hand(frame_bgr: np.ndarray, box: np.ndarray, right: bool, config: HamerConfig) -> HandCrop:
    """One hand's network input from an (H, W, 3) BGR frame and its (4,) xyxy box: the square
    around the box, anti-alias blurred, left hands mirrored, ImageNet-normalised RGB."""
    box = np.asarray(box, dtype=np.float32)
    center = (box[2:4] + box[0:2]) / 2.0
    scale = RESCALE_FACTOR * (box[2:4] - box[0:2]) / 200.0
    side = float(expand_to_aspect(scale * 200, config.bbox_shape).max())
    out = config.image_size
    height, width = frame_bgr.shape[:2]
    reach = side / 2 + 2  # the warp below reads within side / 2 + 1 of the centre
    rows, cols = window = (
        slice(max(math.floor(center[1] - reach), 0), min(math.ceil(center[1] + reach) + 1, height)),
        slice(max(math.floor(center[0] - reach), 0), min(math.ceil(center[0] + reach) + 1, width)),
    )
    downsampling = side / out / 2.0
    region = _blurred(frame_bgr, (downsampling - 1) / 2, window) if downsampling > 1.1 else frame_bgr[window]
    # A frame-sized picture holding only the window (the original blurs, converts and, for left
    # hands, flips the whole frame): untouched zero pages cost nothing, and the warp reads none.
    image = np.zeros(frame_bgr.shape, region.dtype)
    cx = float(center[0])
    if right:
        image[window] = region
    else:
        image[rows, width - cols.stop : width - cols.start] = region[:, ::-1]
        cx = width - cx - 1
    patch = warp(image, patch_transform(cx, float(center[1]), side, side, out, out), (out, out))
    rgb = np.transpose(patch[:, :, ::-1], (2, 0, 1)).astype(np.float32)
    mean = 255.0 * np.array(config.image_mean)
    std = 255.0 * np.array(config.image_std)
    pixels = ((rgb - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
    return HandCrop(pixels, center, side, (width, height))


class HandEstimator(Estimator[HandBox, HandCrop]):
    """HaMeR on every hand DWPose saw: MANO rotations, shape and cameras; left hands are estimated
    mirrored, as right hands, and their crop camera's x is mirrored back."""

    stream = "mano"
    model: Hamer

    def find(self, frame_rgb: np.ndarray, pose: dict[str, np.ndarray]) -> list[HandBox]:
        return hand_boxes(pose["keypoints"], pose["scores"])

    def describe(self, frame_rgb: np.ndarray, item: HandBox) -> dict[str, Any]:
        config = self.model.config
        height, width = frame_rgb.shape[:2]
        return {
            "is_right": item.right,
            "focal": full_frame_focal(config.focal_length, config.image_size, width, height),
            "box": item.box,
            "valid": item.usable,
        }

    def preprocess(self, frame_rgb: np.ndarray, item: HandBox) -> HandCrop:
        return crop_hand(frame_rgb[:, :, ::-1], item.box, item.right, self.model.config)

    def name_outputs(self, outputs: Any) -> dict[str, torch.Tensor]:
        rotations, betas, cam = outputs
        return {"rotations": rotations, "betas": betas, "cam": cam}

    def postprocess(
        self, outputs: dict[str, torch.Tensor], crops: list[HandCrop], known: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        rotations, cam = outputs["rotations"], outputs["cam"]
        cam[:, 1] *= torch.from_numpy(np.where(known["is_right"], 1.0, -1.0).astype(np.float32))
        full = full_frame_translation(
            cam,
            torch.from_numpy(np.stack([c.center for c in crops])).float(),
            torch.tensor([c.size for c in crops], dtype=torch.float32),
            torch.tensor([c.frame_size for c in crops], dtype=torch.float32),
            torch.from_numpy(known["focal"]),
        )
        return {
            "global_orient": rotations[:, :1].numpy(),
            "hand_pose": rotations[:, 1:].numpy(),
            "betas": outputs["betas"].numpy(),
            "cam_crop": cam.numpy(),
            "cam_t_full": full.numpy(),
            "valid": np.isfinite(full.numpy()).all(axis=1),
        }
